"""Judging in worker processes (``jobs``) and reading symbols only when a file is judged."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from muslcheck.elf import read_elf_file
from muslcheck.judging import judge
from muslcheck.judging.judge import _Share, _Workers
from muslcheck.ldso.facts import ElfFile
from muslcheck.model.errors import WorkerDied
from muslcheck.model.report import Skip
from muslcheck.scan import scan


@pytest.fixture
def every_file_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers even for a handful of files, so that the samples take the parallel path."""
    monkeypatch.setattr(judge, "PARALLEL_MIN_FILES", 1)


@pytest.mark.usefixtures("every_file_in_parallel")
@pytest.mark.parametrize("context", [None, "executable", "dlopen-now"])
def test_workers_give_the_same_report(samples_dir: Path, context: str | None) -> None:
    """Every sample at once: executables, the libraries they load at start-up (merged across workers),
    JNI and extension modules, archives; in small shares over two workers."""
    one = scan(samples_dir, context=context, jobs=1)
    two = scan(samples_dir, context=context, jobs=2)
    assert len(one.files) > 20
    assert two == one
    assert two.to_json() == one.to_json()


@pytest.mark.parametrize(("cpus", "load", "runnable", "jobs"), [
    (1, 0.0, 0, 1), (2, 0.0, 0, 2), (64, 0.0, 0, judge.MAX_DEFAULT_JOBS),
    (2, 0.4, 1, 2),  # a little background work still leaves both cores
    (2, 1.0, 1, 1), (2, 2.5, 3, 1),  # a busy machine: one process, never slower than -j 1
    (8, 3.0, 3, 5), (8, 20.0, 20, 1),
    (2, 1.0, 0, 2), (8, 20.0, 2, 6),  # the average still counts a scan that just ended; nothing runs now
    (2, 0.0, 2, 2),  # a burst of runnable tasks alone does not hold the scan back: the average decides
    (2, 2.0, None, 1),  # no /proc: the average alone
])
def test_default_jobs_follow_the_idle_cpus_allowed(monkeypatch: pytest.MonkeyPatch, cpus: int, load: float,
                                                  runnable: int | None, jobs: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(judge, "_runnable_others", lambda: runnable)
    assert judge.default_jobs() == jobs


def test_runnable_tasks_are_read_from_proc_where_it_exists() -> None:
    runnable = judge._runnable_others()
    if not Path("/proc/loadavg").exists():
        assert runnable is None
    else:
        assert runnable is not None and runnable >= 0


def _pid_of_worker(judging: object, files: object) -> _Share:
    return _Share(files={"pid": Skip(str(os.getpid()), "")})


def _interrupts_of_worker(judging: object, files: object) -> _Share:
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    return _Share(files={"sigint": Skip("ignored" if ignored else "handled", "")})


def test_workers_leave_ctrl_c_to_the_parent() -> None:
    """Ctrl-C reaches the whole process group: only the parent acts on it (it stops the pool), so the
    workers print no traceback of their own."""
    with _Workers(judging=None, candidates=[None] * 4, jobs=2) as workers:  # type: ignore[arg-type]
        seen = {share.files["sigint"].path for share in workers.map(_interrupts_of_worker, range(4))}
    assert seen == {"ignored"}
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def _killed_worker(judging: object, files: object) -> _Share:
    if files == [1]:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return _Share()


def test_a_killed_worker_ends_the_scan_with_an_error_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="a worker process died"), \
            _Workers(judging=None, candidates=[0, 1, 2, 3], jobs=2) as workers:  # type: ignore[arg-type]
        list(workers.map(_killed_worker, [0, 1, 2, 3]))
    assert time.monotonic() - started < 30  # a pool that replaces the dead worker waits forever


_TEST_PROCESS = os.getpid()


def _die_in_a_worker(judging: object, files: object) -> _Share:
    if os.getpid() != _TEST_PROCESS:  # never the test process itself
        os.kill(os.getpid(), signal.SIGKILL)
    return _Share()


def test_the_cli_says_a_worker_died_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from muslcheck.cli import main

    monkeypatch.setattr(judge, "_judge_roots", _die_in_a_worker)
    monkeypatch.setattr(judge, "PARALLEL_MIN_FILES", 1)
    (tmp_path / "bin").mkdir()
    shutil.copy("/bin/true", tmp_path / "bin" / "true")
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "-j", "2", "--no-cache"])
    assert result.exit_code == 3
    assert result.output.strip().splitlines()[-1].startswith("muslcheck: error: a worker process died")


def test_shares_run_in_forked_workers() -> None:
    candidates = [None] * 64
    with _Workers(judging=None, candidates=candidates, jobs=2) as workers:  # type: ignore[arg-type]
        pids = {share.files["pid"].path for share in workers.map(_pid_of_worker, range(64))}
    assert str(os.getpid()) not in pids
    assert 1 <= len(pids) <= 2
    with _Workers(judging=None, candidates=candidates, jobs=1) as workers:  # type: ignore[arg-type]
        assert [s.files["pid"].path for s in workers.map(_pid_of_worker, [0, 1])] == [str(os.getpid())]


def _break_a_symbol_name(path: Path) -> None:
    """Point the name of the last dynamic symbol far outside the string table: the headers stay valid."""
    with open(path, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        offset, size, entsize = dynsym["sh_offset"], dynsym["sh_size"], dynsym["sh_entsize"]
    with open(path, "r+b") as f:
        f.seek(offset + size - entsize)  # st_name is the first word of Elf64_Sym
        f.write((0x7FFF0000).to_bytes(4, "little"))


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.usefixtures("every_file_in_parallel")
def test_malformed_symbols_found_when_judged_are_skipped(samples_dir: Path, tmp_path: Path, jobs: int) -> None:
    root = tmp_path / "root"
    shutil.copytree(samples_dir / "fortify", root, symlinks=True)
    victim = root / "app/bin/fortify"
    _break_a_symbol_name(victim)
    assert read_elf_file(victim, symbols=False).needed  # discovery reads the headers without complaint

    report = scan(root, jobs=jobs)

    assert "/app/bin/fortify" not in {f.path for f in report.files}
    skipped = {s.path: s.reason for s in report.skipped}
    assert re.fullmatch(r"malformed ELF: symbol \d+ has a name offset outside the string table",
                        skipped["/app/bin/fortify"])
    assert not report.complete


def test_headers_only_read_leaves_the_symbols_out(samples_dir: Path) -> None:
    path = samples_dir / "fortify/app/bin/fortify"
    head, full = read_elf_file(path, symbols=False), read_elf_file(path)
    assert full.symbols_read and full.uses and full.relocations
    assert not head.symbols_read and len(head.uses) == 0 and len(head.exports) == 0 and head.relocations == ()
    keep = ("machine", "elf_type", "interpreter", "soname", "needed", "rpath", "runpath", "bind_now", "pie")
    assert all(getattr(head, name) == getattr(full, name) for name in keep)


def test_facts_are_completed_on_demand(samples_dir: Path) -> None:
    from muslcheck.ldso.facts import FactsCache, FactsView
    from muslcheck.targets.directory import DirectoryRoot

    root = DirectoryRoot(samples_dir / "fortify")
    st = (samples_dir / "fortify/app/bin/fortify").stat()
    light = read_elf_file(samples_dir / "fortify/app/bin/fortify", symbols=False)
    cache = FactsCache(root)
    cache.remember((st.st_dev, st.st_ino), light)
    view = FactsView([ElfFile("/app/bin/fortify", (st.st_dev, st.st_ino), light, ())], cache)
    assert list(view) == ["/app/bin/fortify"] and len(view) == 1
    # Completed with the symbols; a directory's files leave the constructors' code for a lazy dlopen to read.
    assert view["/app/bin/fortify"] == read_elf_file(samples_dir / "fortify/app/bin/fortify", constructors=False)
