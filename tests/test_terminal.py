"""The CLI on a terminal (issue 15, part 3): the progress line is gone before any other output, and the
cursor it hid is shown again, also on errors and on Ctrl-C. Driven under a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from muslcheck import __version__
from muslcheck.cli import StderrProgress

REPO = Path(__file__).resolve().parents[1]
HIDE, SHOW = "\033[?25l", "\033[?25h"
_CONTROL = re.compile(r"\x1b\[(\?25[lh]|K|[0-9;]*m)|[\r\n]|[^\x1b\r\n]+")


def screen(raw: str) -> tuple[list[str], bool]:
    """What a terminal shows after ``raw``: its lines, and whether the cursor is visible at the end.

    Understands what the CLI writes: carriage return, newline, erase to the end of the line, cursor
    hide/show, colours (ignored); anything else would fail the test."""
    lines = [""]
    column = 0
    visible = True
    pos = 0
    while pos < len(raw):
        m = _CONTROL.match(raw, pos)
        assert m is not None, f"unexpected control sequence at {pos}: {raw[pos:pos + 20]!r}"
        token = m.group(0)
        pos = m.end()
        if token == "\r":
            column = 0
        elif token == "\n":
            lines.append("")
            column = 0
        elif token == "\033[K":
            lines[-1] = lines[-1][:column]
        elif token == HIDE:
            visible = False
        elif token == SHOW:
            visible = True
        elif token.startswith("\033"):
            continue  # a colour
        else:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + token + line[column + len(token):]
            column += len(token)
    return lines, visible


def run_on_pty(args: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run ``muslcheck ARGS`` with stdout and stderr on one pseudo-terminal; (exit status, bytes as text)."""
    env = {**os.environ, "NO_COLOR": "1", "MUSLCHECK_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "100"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-c", "from muslcheck.cli import main; main()", *args], env)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture()
def one_elf(tmp_path: Path) -> Path:
    """A directory with one dynamic glibc executable in it (the machine's own /bin/true)."""
    true = shutil.which("true") or "/bin/true"
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(Path(true).resolve(), tree / "bin" / "true")
    return tree


def test_report_starts_on_its_own_line_after_the_bar(one_elf: Path, tmp_path: Path) -> None:
    status, raw = run_on_pty(["scan", str(one_elf), "--no-cache"], tmp_path)
    assert status in (0, 1), raw
    assert re.search(r"judging +\[", raw), "the bar was never drawn: this test did not test it"
    lines, cursor_visible = screen(raw)
    header = f"muslcheck {__version__}: "
    assert any(line.startswith(header) for line in lines), lines
    assert not [line for line in lines if "judging" in line], f"the bar is still on the screen: {lines}"
    assert cursor_visible
    assert raw.count(HIDE) == 1 and raw.rindex(SHOW) > raw.rindex(HIDE)
    # and the bar's line was cleared before the report's first byte
    assert raw.index(header) > raw.rindex("\r\033[K")


def test_error_after_the_bar_is_on_its_own_line(one_elf: Path, tmp_path: Path) -> None:
    status, raw = run_on_pty(["scan", str(one_elf), "--no-cache", "-o", f"json={tmp_path}/missing/report.json"],
                             tmp_path)
    assert status == 3, raw
    assert re.search(r"judging +\[", raw)
    lines, cursor_visible = screen(raw)
    errors = [line for line in lines if "error" in line]
    assert errors and all(line.startswith("muslcheck: error: ") for line in errors), lines
    assert cursor_visible


def test_quiet_draws_nothing(one_elf: Path, tmp_path: Path) -> None:
    status, raw = run_on_pty(["scan", str(one_elf), "--no-cache", "-q"], tmp_path)
    assert status in (0, 1), raw
    assert HIDE not in raw and "judging" not in raw


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_cursor_restored_when_the_scan_is_interrupted(interruption: type[BaseException]) -> None:
    """Ctrl-C (KeyboardInterrupt) or an error in the middle of a stage still clears the line and shows the
    cursor: leaving the ``with`` block closes the progress."""
    stream = io.StringIO()
    with pytest.raises(interruption), StderrProgress(enabled=True, stream=stream) as progress:
        progress("reading ELF files", 64, None)
        progress("judging", 3, 10)
        raise interruption()
    lines, cursor_visible = screen(stream.getvalue())
    assert lines == [""] and cursor_visible
    assert stream.getvalue().endswith("\r\033[K" + SHOW)


def test_stages_replace_each_other_on_one_line() -> None:
    stream = io.StringIO()
    with StderrProgress(enabled=True, stream=stream) as progress:
        progress("reading layers", 1, 2)
        progress("reading layers", 2, 2)
        progress("judging", 5, 10)
        lines, cursor_visible = screen(stream.getvalue())
        assert len(lines) == 1 and lines[0].startswith("judging [") and lines[0].endswith(" 50%")
        assert not cursor_visible
        progress.close()
        assert screen(stream.getvalue()) == ([""], True)
        progress.close()  # twice is harmless
    assert stream.getvalue().count(SHOW) == 1


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    with StderrProgress(enabled=False, stream=stream) as progress:
        progress("judging", 1, 2)
    assert stream.getvalue() == ""
