"""This checkout's directory scan against another revision's, in one run: A and B alternate (A B A B ...), and
each ratio is taken pair by pair, so a drift of the machine's speed moves both sides. CPU (user + system, from
``wait4``) is the figure to quote on a shared machine; wall time is printed too.

    python3 benchmarks/against.py --baseline 297a267 --tree ~/.cache/muslcheck-bench/work/tree
    python3 benchmarks/against.py --baseline /path/to/checkout --tree DIR --runs 9 -- -j 2

The tree is any directory (``run.py --keep`` leaves the 1,065-ELF benchmark tree in its work directory). A
revision is checked out into a temporary git worktree, removed at the end. Nothing is written into the
repository. Arguments after ``--`` go to both scans (default: ``-j 1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
Run = tuple[float, float, float]  # user s, system s, wall s
SCAN = "import sys; from muslcheck.cli import main; sys.argv[0] = 'muslcheck'; sys.exit(main())"


def run_once(src: Path, tree: Path, out: Path, extra: Sequence[str], pycache: Path) -> Run:
    """(user s, system s, wall s) of one scan with ``src``'s muslcheck, from ``wait4``."""
    # Compiled bytecode, as an installed muslcheck has (PYTHONDONTWRITEBYTECODE would compile every module at
    # every run, and the larger tree would pay more), kept in the scratch directory, not the checkout.
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": str(pycache)}
    argv = [sys.executable, "-P", "-c", SCAN, "scan", str(tree), "--no-cache", "-q", "-o", f"json={out}", *extra]
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        err = child.stderr.read().decode(errors="replace") if child.stderr else ""
        sys.exit(f"against.py: the scan with {src} exited {child.returncode}: {err.strip()[-400:]}")
    return usage.ru_utime, usage.ru_stime, wall


def checkout(baseline: str, scratch: Path) -> Path:
    if Path(baseline).is_dir():
        return Path(baseline).resolve()
    where = scratch / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(where), baseline], check=True)
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a git revision of this repository, or a checkout")
    parser.add_argument("--tree", type=Path, required=True, help="the directory both scan")
    parser.add_argument("--runs", type=int, default=7, help="pairs counted, after one warm-up pair (default 7)")
    parser.add_argument("extra", nargs="*", help="scan arguments for both (after --; default: -j 1)")
    args = parser.parse_args()
    extra = args.extra or ["-j", "1"]
    with tempfile.TemporaryDirectory(prefix="muslcheck-against-") as tmp:
        scratch = Path(tmp)
        base = checkout(args.baseline, scratch)
        try:
            sides = {"A": REPO, "B": base}
            figures: dict[str, list[Run]] = {"A": [], "B": []}
            for n in range(args.runs + 1):
                for side, src in sides.items():
                    got = run_once(src, args.tree, scratch / f"{side}.json", extra, scratch / f"pycache-{side}")
                    if n:  # the first pair warms the page cache and the bytecode
                        figures[side].append(got)
        finally:
            if base != Path(args.baseline).resolve():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)

    measures: dict[str, Callable[[Run], float]] = {
        "user s": lambda r: r[0], "system s": lambda r: r[1], "CPU s": lambda r: r[0] + r[1], "wall s": lambda r: r[2],
    }
    print(f"A = this checkout ({REPO}), B = {args.baseline}; `muslcheck scan {args.tree} --no-cache "
          f"{' '.join(extra)}`; {args.runs} pairs, medians; load average {os.getloadavg()[0]:.2f}")
    print("| | A | B | A/B (pairwise median) |\n|---|---|---|---|")
    for label, of in measures.items():
        a, b = (statistics.median(map(of, figures[side])) for side in ("A", "B"))
        pairs = statistics.median(of(x) / of(y) for x, y in zip(figures["A"], figures["B"], strict=True))
        print(f"| {label} | {a:.2f} | {b:.2f} | {pairs:.3f} |")

if __name__ == "__main__":
    main()
