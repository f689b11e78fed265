"""A tree of libraries that each need the next (issue 18, class 2: 500 of them took over 110 s). Judging loads
each library in a load of its own to learn what it brings in (the reach), so a chain of N costs the sum of its
loads' sizes, N^2/2 objects: quadratic, where it was cubic. Counted in Python-level calls, not timed."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

from muslcheck import scan
from muslcheck.model.report import Report
from tests.ldso.synthetic import Lib, Tree


def _chain_tree(root: Path, n: int) -> Path:
    tree = Tree(root)
    for i in range(n + 1):
        tree.add(f"/usr/lib/lib{i}.so", Lib(needed=(f"lib{i - 1}.so",) if i else (), defines=(f"f{i}",),
                                            plt=(f"f{i - 1}",) if i else ()))
    return root


def _scan_counting(root: Path) -> tuple[Report, int]:
    count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        report = scan(root, jobs=1)
    finally:
        sys.setprofile(None)
    return report, count


def test_a_chain_four_times_longer_costs_at_most_sixteen_times_the_work(tmp_path: Path) -> None:
    scan(_chain_tree(tmp_path / "warm", 3), jobs=1)  # what is made once per process
    small, small_work = _scan_counting(_chain_tree(tmp_path / "small", 30))
    large, large_work = _scan_counting(_chain_tree(tmp_path / "large", 120))
    assert [f.verdict.value for f in large.files] == ["native"] * 121
    assert sum("judged in the load of /usr/lib/lib120.so" in " ".join(f.notes) for f in large.files) == 120
    assert len(small.files) == 31
    assert large_work < 17 * small_work, f"4x the chain: {large_work / small_work:.1f}x the calls"
