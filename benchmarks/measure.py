"""Time whole processes: wall time and peak RSS (``ru_maxrss`` from ``wait4``) of each run.

A child's ``ru_maxrss`` also counts the process it was forked from: across ``exec`` the kernel keeps
the larger of the old image's high-water mark and the new one's. So commands are not spawned from
this (large) Python process but through a small launcher: ``launcher.c`` compiled with ``cc`` into
the cache directory (a floor of about 1 MB), else a minimal Python one (a floor of several MB, which
``Launcher.floor_mb`` measures and the report states).

``ru_maxrss`` from ``wait4`` covers the child and every descendant it reaped, so a driver such as
``xargs -n1 readelf`` reports the largest of its ``readelf`` processes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


@dataclass
class Run:
    wall_s: float
    max_rss_kb: int
    exit_code: int


@dataclass
class Result:
    """One measured case: the runs made, or why there are none."""

    key: str
    label: str
    command: str  # as shown in the report
    runs: list[Run] = field(default_factory=list)
    status: str = "ok"  # "ok", "not installed", "failed", "skipped"
    note: str = ""
    json_bytes: int | None = None  # the size of the JSON report a muslcheck case wrote

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.runs)

    @property
    def wall_s(self) -> float | None:
        return statistics.median(r.wall_s for r in self.runs) if self.ok else None

    @property
    def max_rss_mb(self) -> float | None:
        """The largest per-run peak RSS, in MB (10^6 bytes)."""
        return max(r.max_rss_kb for r in self.runs) * 1024 / 1e6 if self.ok else None

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key, "label": self.label, "command": self.command, "status": self.status,
            "note": self.note, "median_wall_s": self.wall_s, "max_peak_rss_mb": self.max_rss_mb,
            "runs": [{"wall_s": r.wall_s, "max_rss_kb": r.max_rss_kb, "exit_code": r.exit_code} for r in self.runs],
            "json_bytes": self.json_bytes,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Result:
        runs = [Run(r["wall_s"], r["max_rss_kb"], r["exit_code"]) for r in doc["runs"]]
        return cls(doc["key"], doc["label"], doc["command"], runs, doc["status"], doc["note"], doc.get("json_bytes"))


PY_LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.monotonic_ns()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic_ns() - start
with open(out, "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\\n")
"""


class Launcher:
    """The small process each measured command is forked from."""

    def __init__(self, cache: Path) -> None:
        self.argv, self.kind = self._build(cache)
        self.floor_mb = 0.0
        self.floor_mb = self.run(["true"]).max_rss_kb * 1024 / 1e6

    @staticmethod
    def _build(cache: Path) -> tuple[list[str], str]:
        source = Path(__file__).with_name("launcher.c")
        binary = cache / "bin" / "rusage-run"
        cc = shutil.which("cc") or shutil.which("gcc")
        if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
            return [str(binary)], "C"
        if cc:
            binary.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run([cc, "-O2", "-o", str(binary), str(source)], capture_output=True, text=True)
            if proc.returncode == 0:
                return [str(binary)], "C"
        return [sys.executable, "-I", "-S", "-c", PY_LAUNCHER], "Python"

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stderr_to: Path | None = None) -> Run:
        """One whole-process run, stdout discarded, stderr to ``stderr_to``."""
        fd, out = tempfile.mkstemp(prefix="rusage-")
        os.close(fd)
        err = stderr_to.open("wb") if stderr_to else subprocess.DEVNULL
        try:
            subprocess.run(
                [*self.argv, out, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(env) if env is not None else None,
                check=True,
            )
            wall_ns, rss_kb, code = Path(out).read_text().split()
        finally:
            if stderr_to:
                err.close()  # type: ignore[union-attr]
            os.unlink(out)
        return Run(int(wall_ns) / 1e9, int(rss_kb), int(code))


def warm(paths: Iterable[Path]) -> None:
    """Read every regular file under ``paths`` once, so the timed runs find them in the page cache."""
    buf = bytearray(CHUNK)
    for top in paths:
        walk = [(str(top.parent), [], [top.name])] if top.is_file() else os.walk(top)
        for dirpath, _, filenames in walk:
            for name in filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    with open(p, "rb", buffering=0) as f:
                        while f.readinto(buf):
                            pass
                except OSError:
                    pass


def measure(
    launcher: Launcher,
    result: Result,
    argv: Sequence[str],
    *,
    runs: int,
    budget_s: float,
    ok_codes: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
    warm_paths: Sequence[Path] = (),
    stderr_to: Path | None = None,
    before_each: Callable[[], None] | None = None,
) -> Result:
    """Up to ``runs`` runs of ``argv``; fewer when they have already used ``budget_s`` (at least one).
    A run whose exit code is not in ``ok_codes`` fails the case (its stderr's tail goes into the note).
    ``before_each`` prepares each run, untimed."""
    warm(warm_paths)
    spent = 0.0
    for _ in range(runs):
        if before_each is not None:
            before_each()
        run = launcher.run(argv, env=env, stderr_to=stderr_to)
        if run.exit_code not in ok_codes:
            tail = ""
            if stderr_to and stderr_to.exists():
                lines = stderr_to.read_text(errors="replace").strip().splitlines()
                tail = (": " + " / ".join(lines[-3:]))[:400]
            result.status, result.note = "failed", f"exit code {run.exit_code}{tail}"
            result.runs = []
            return result
        result.runs.append(run)
        spent += run.wall_s
        if spent >= budget_s:
            break
    if len(result.runs) < runs:
        result.note = (result.note + "; " if result.note else "") + (
            f"{len(result.runs)} of {runs} runs (time budget {budget_s:.0f} s per case)"
        )
    return result
