"""Peak memory of a command and every process it starts (a scan's forked workers), sampled from ``/proc``.

``ru_maxrss`` from ``wait4`` is the largest single process's peak, not the sum over processes that run at once;
issue 17's growth target counts all of them. This samples the command's process tree every few milliseconds:

- ``sum_peak_mb``: the largest sum of the tree's resident sets seen at one sample (pages a forked worker still
  shares with its parent count in both, as ``ps`` shows them: an upper bound of the memory they use);
- ``largest_mb``: the largest single process's own high-water mark (``VmHWM``, so a peak between samples counts);
- ``hwm_sum_mb``: the sum of every process's ``VmHWM`` (peaks that need not have coincided: the upper bound);
- ``pss_peak_mb``: the largest sum of their proportional set sizes (``smaps_rollup``: a page shared by k of them
  counts 1/k in each), the memory the processes take from the machine together.

    python3 benchmarks/peak_rss.py [--json] -- muslcheck scan TREE --no-cache -q -o json=/tmp/r.json

Linux only. MB are 10^6 bytes, as ``run.py`` reports them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

INTERVAL_S = 0.005
PSS_EVERY = 10  # smaps_rollup walks the page tables: read it every tenth sample


@dataclass(frozen=True)
class Peak:
    sum_peak_mb: float
    pss_peak_mb: float
    largest_mb: float
    hwm_sum_mb: float
    processes: int
    per_process_mb: tuple[float, ...]  # each process's VmHWM, the command's first
    wall_s: float
    cpu_s: float  # user + system of the command and the processes it waited for (its workers)
    exit_code: int


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(c) for c in text.split())
    except OSError:
        pass
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(_children(p))
    return pids


def _status_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None once the process is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = hwm = None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return (rss, hwm) if rss is not None and hwm is not None else None


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def measure(argv: Sequence[str], interval_s: float = INTERVAL_S, env: Mapping[str, str] | None = None) -> Peak:
    """One run of ``argv``, stdout and stderr discarded."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(env) if env is not None else None)
    hwm: dict[int, int] = {}
    sum_peak = pss_peak = samples = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        total = pss = 0
        for pid in _tree(child.pid):
            kb = _status_kb(pid)
            if kb is None:
                continue
            total += kb[0]
            pss += _pss_kb(pid) if samples % PSS_EVERY == 0 else 0
            hwm[pid] = max(hwm.get(pid, 0), kb[1])
        sum_peak, pss_peak = max(sum_peak, total), max(pss_peak, pss)
        samples += 1
        time.sleep(interval_s)
    wall = time.perf_counter() - start
    # The command's own peak from wait4 (a sample may come just before it): the largest of it and what it reaped.
    hwm[child.pid] = max(hwm.get(child.pid, 0), usage.ru_maxrss)
    mb = 1024 / 1e6
    return Peak(round(sum_peak * mb, 1), round(pss_peak * mb, 1), round(max(hwm.values()) * mb, 1),
                round(sum(hwm.values()) * mb, 1), len(hwm), tuple(round(kb * mb, 1) for kb in hwm.values()),
                round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3), os.waitstatus_to_exitcode(status))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a line of text")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    peak = measure(args.command)
    if args.json:
        print(json.dumps(asdict(peak)))
    else:
        print(f"all processes {peak.sum_peak_mb:.1f} MB (PSS {peak.pss_peak_mb:.1f} MB, sum of their peaks "
              f"{peak.hwm_sum_mb:.1f} MB), largest "
              f"{peak.largest_mb:.1f} MB, {peak.processes} processes "
              f"({', '.join(f'{p:.0f}' for p in peak.per_process_mb)} MB), {peak.wall_s:.2f} s, "
              f"CPU {peak.cpu_s:.2f} s, exit {peak.exit_code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
