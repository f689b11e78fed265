"""Outputs, special inputs and credentials (issue 18, parts 4, 5 and 8), through the real CLI in a subprocess.

The tests run as whatever user runs the suite; as root, replacing /dev/null with a regular file was possible.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from muslcheck.cli import main; main()", "scan", *args,
                           "--no-cache", "-q"], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def target(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("no ELF here\n")
    return tree


def test_a_device_output_gets_a_plain_write_and_stays_a_device(tmp_path: Path, target: Path) -> None:
    before = os.stat("/dev/null")
    result = _cli(str(target), "-o", "json=/dev/null", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert not list(Path("/dev").glob(".null.*"))


def test_a_full_device_is_a_one_line_error(tmp_path: Path, target: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    _one_line_error(_cli(str(target), "-o", "json=/dev/full", cwd=tmp_path), 3, "No space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_symlink_output_is_refused(tmp_path: Path, target: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "out.json").symlink_to(victim)
    _one_line_error(_cli(str(target), "-o", "json=out.json", cwd=tmp_path), 3, "a symbolic link: refused")
    assert victim.read_text() == "keep me" and (tmp_path / "out.json").is_symlink()
    _one_line_error(_cli(str(target), "-o", "json=/dev/stdout", cwd=tmp_path), 3, "a symbolic link: refused")


def test_an_output_name_too_long_is_a_one_line_error(tmp_path: Path, target: Path) -> None:
    _one_line_error(_cli(str(target), "-o", "json=" + "x" * 300, cwd=tmp_path), 3, "File name too long")
    name = "y" * 255  # the longest valid name is written
    assert _cli(str(target), "-o", f"json={name}", cwd=tmp_path).returncode == 0
    assert (tmp_path / name).read_text().startswith("{")


def test_fifo_target_and_ignore_file_are_refused_without_blocking(tmp_path: Path, target: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _one_line_error(_cli(f"docker-archive:{fifo}", cwd=tmp_path), 3, "a FIFO, not a file or directory: refused")
    _one_line_error(_cli(str(fifo), cwd=tmp_path), 3, "not a regular file")
    _one_line_error(_cli(str(target), "--ignore", str(fifo), cwd=tmp_path), 2,
                    "a FIFO, not a file or directory: refused")


def test_a_directory_scan_never_reads_the_docker_config(tmp_path: Path, target: Path) -> None:
    """A FIFO, or a directory, where config.json should be: before, an unreadable one stopped the scan (exit 3)."""
    config = tmp_path / "docker"
    config.mkdir()
    os.mkfifo(config / "config.json")
    result = _cli(str(target), "-o", "json", cwd=tmp_path, env={"DOCKER_CONFIG": str(config)})
    assert result.returncode == 0 and "config" not in result.stderr, result.stderr
    home = tmp_path / "home"
    (home / ".docker" / "config.json").mkdir(parents=True)
    result = _cli(str(target), "-o", "json", cwd=tmp_path, env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
