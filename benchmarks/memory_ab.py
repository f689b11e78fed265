"""Peak memory of two muslcheck checkouts' scans, A and B alternating (A B A B ...), every process counted
(``peak_rss.py``): the parent and its workers summed, their PSS, the largest one, and CPU.

    python3 benchmarks/memory_ab.py --a . --b /path/to/other/checkout --tree /work/bench/growth-1000 --runs 3 -- -j 1

Peak RSS hardly moves from run to run (it is the CPU that a shared machine makes noisy): a few runs are enough.
Each side writes its JSON report under a scratch directory; ``--compare`` checks that both wrote the same bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from peak_rss import Peak, measure

SCAN = "import sys; from muslcheck.cli import main; sys.argv[0] = 'muslcheck'; sys.exit(main())"


def run(src: Path, tree: Path, out: Path, extra: list[str], pycache: Path) -> Peak:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": str(pycache)}
    argv = [sys.executable, "-P", "-c", SCAN, "scan", str(tree), "--no-cache", "-q", "-o", f"json={out}", *extra]
    return measure(argv, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="a checkout (its muslcheck/ is imported)")
    parser.add_argument("--b", type=Path, required=True, help="the other checkout")
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3, help="pairs, after one warm-up pair (default 3)")
    parser.add_argument("--compare", action="store_true", help="fail unless both reports are byte-identical")
    parser.add_argument("extra", nargs="*", help="scan arguments for both (after --; default: -j 1)")
    args = parser.parse_args()
    extra = args.extra or ["-j", "1"]
    with tempfile.TemporaryDirectory(prefix="memory-ab-") as scratch:
        work = Path(scratch)
        peaks: dict[str, list[Peak]] = {"A": [], "B": []}
        for i in range(args.runs + 1):
            for side, src in (("A", args.a), ("B", args.b)):
                peak = run(src.resolve(), args.tree, work / f"{side}.json", extra, work / f"pycache-{side}")
                if i:
                    peaks[side].append(peak)
        same = (work / "A.json").read_bytes() == (work / "B.json").read_bytes()
    for side, runs in peaks.items():
        every, pss = max(p.sum_peak_mb for p in runs), max(p.pss_peak_mb for p in runs)
        cpu, wall = statistics.median(p.cpu_s for p in runs), statistics.median(p.wall_s for p in runs)
        largest = max(p.largest_mb for p in runs)
        print(f"{side}: all processes {every:.1f} MB (PSS {pss:.1f}), largest {largest:.1f} MB, "
              f"processes {runs[-1].processes}, CPU {cpu:.2f} s, wall {wall:.2f} s")
    ratio = statistics.median(a.cpu_s / b.cpu_s for a, b in zip(peaks["A"], peaks["B"], strict=True))
    print(f"CPU A/B {ratio:.3f} (median of {args.runs} pairs); reports {'identical' if same else 'DIFFER'}")
    return 1 if args.compare and not same else 0


if __name__ == "__main__":
    sys.exit(main())
