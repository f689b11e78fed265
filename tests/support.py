"""What every test module may need: the repository's root, and how a missing prerequisite is handled."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip locally; under CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


def fetch(cmd: list[str], what: str, timeout: float) -> None:
    """Run a command that fetches test inputs; one that cannot run or fails skips the test (fails it in CI)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"{what}: {e}")
    if proc.returncode != 0:
        unavailable(f"{what}: {proc.stderr.strip()[-400:]}")


def debian_package(package: str, version: str, arch: str, sha256: str, suite: str, dest: Path) -> Path:
    """The extracted root of a pinned Debian package, fetched by symbols/debian.py into ``dest`` once; a download
    that fails skips (fails in CI), another sha256 fails the test."""
    out = dest / "pkgs" / f"{suite}-{arch}" / f"{package}_{version}"
    if not (out / "done").is_file():
        cmd = [sys.executable, str(REPO / "symbols" / "debian.py"), "--dest", str(dest), "--suite", suite,
               "--arch", arch, "--package", f"{package}={version}"]
        fetch(cmd, f"debian.py {package}={version}:{arch}", 900)
    got = (out / "done").read_text().strip()
    if got != sha256:
        pytest.fail(f"{package} {version} {arch}: sha256 {got} is not the pinned {sha256}")
    return out / "root"


def python_calls(run: Callable[[], object], within: str = "") -> int:
    """How many Python-level calls ``run`` makes (to functions of files whose path ends with ``within``): work
    counted, not timed, for the tests that hold an input's growth to the work's."""
    count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        if event == "call" and frame.f_code.co_filename.endswith(within):
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count
