"""Where worker processes pay: `-j 1` against `-j 2` and the default (`-j 0`) on trees of 100, 600 and 1,000 ELF
files (copies of the benchmark tree's, built by inputs.py), runs alternating so a drifting machine hurts all alike.

    python3 benchmarks/jobs_breakeven.py [--work DIR] [--runs N] [--busy]

`--busy` keeps every CPU loaded by spinning processes while it measures (a shared CI machine). The table it prints
is the one in docs/performance.md ("The default --jobs"); the default must never be slower than `-j 1`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inputs  # beside this script (the path above)

SIZES = (100, 600, 1000)
JOBS = ("1", "2", "0")


def spin() -> None:
    while True:
        pass


def scan_seconds(tree: Path, jobs: str, out: Path) -> float:
    argv = [sys.executable, "-c", "from muslcheck.cli import main; main()", "scan", str(tree), "--no-cache", "-q",
            "-j", jobs, "-o", f"json={out}"]
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "muslcheck-bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="load every CPU with spinning processes meanwhile")
    args = parser.parse_args()
    tree, _ = inputs.build_tree(args.work, args.work / "cache", lambda m: print(m, file=sys.stderr))
    elf_files = inputs.elf_files_under(tree)
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(os.cpu_count() or 1)]
    if args.busy:
        for p in spinners:
            p.start()
    try:
        print("| ELF files | " + " | ".join(f"-j {j} (median)" for j in JOBS) + " | -j 2 / -j 1 | -j 0 / -j 1 |")
        print("|---" * (len(JOBS) + 3) + "|")
        for n in SIZES:
            grown = inputs.build_growth_tree(args.work, tree, elf_files, n, lambda m: print(m, file=sys.stderr))
            times: dict[str, list[float]] = {j: [] for j in JOBS}
            scan_seconds(grown, "1", args.work / "warm.json")  # the page cache and bytecode, once
            for _ in range(args.runs):
                for j in JOBS:
                    times[j].append(scan_seconds(grown, j, args.work / f"j{j}.json"))
            med = {j: statistics.median(t) for j, t in times.items()}
            print(f"| {n:,} | " + " | ".join(f"{med[j]:.2f} s" for j in JOBS)
                  + f" | {med['2'] / med['1']:.2f} | {med['0'] / med['1']:.2f} |")
    finally:
        for p in spinners:
            if p.is_alive():
                p.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
