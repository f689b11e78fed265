"""A tree of libraries that each need the next (issue 18, class 2: 500 of them took over 110 s). Judging loads
each library in a load of its own to learn what it brings in (the reach), so a chain of N costs the sum of its
loads' sizes, N^2/2 objects: quadratic, where it was cubic. Counted in Python-level calls, not timed."""

from __future__ import annotations

from pathlib import Path

from muslcheck import scan
from muslcheck.model.report import Report
from tests.ldso.synthetic import Lib, Tree
from tests.support import python_calls


def _chain_tree(root: Path, n: int) -> Path:
    tree = Tree(root)
    for i in range(n + 1):
        tree.add(f"/usr/lib/lib{i}.so", Lib(needed=(f"lib{i - 1}.so",) if i else (), defines=(f"f{i}",),
                                            plt=(f"f{i - 1}",) if i else ()))
    return root


def _scan_counting(root: Path) -> tuple[Report, int]:
    scanned: list[Report] = []
    count = python_calls(lambda: scanned.append(scan(root, jobs=1)))
    return scanned[0], count

def test_a_chain_four_times_longer_costs_at_most_sixteen_times_the_work(tmp_path: Path) -> None:
    scan(_chain_tree(tmp_path / "warm", 3), jobs=1)  # what is made once per process
    small, small_work = _scan_counting(_chain_tree(tmp_path / "small", 30))
    large, large_work = _scan_counting(_chain_tree(tmp_path / "large", 120))
    assert [f.verdict.value for f in large.files] == ["native"] * 121
    assert sum("judged in the load of /usr/lib/lib120.so" in " ".join(f.notes) for f in large.files) == 120
    assert len(small.files) == 31
    assert large_work < 17 * small_work, f"4x the chain: {large_work / small_work:.1f}x the calls"


def test_a_file_with_more_unresolved_symbols_than_listed_is_blocked_and_counted(tmp_path: Path) -> None:
    """200,000 glibc-only imports took 499 s and 1.5 GB (SARIF). At most MAX_LISTED_SYMBOLS are listed, the fatal
    ones first; the rest are one finding that counts them, so the verdict and the exit code stay."""
    from muslcheck.judging.verdict import MAX_LISTED_SYMBOLS
    from muslcheck.render import sarif

    extra = 50
    names = tuple(f"__glibc_only_{i:06d}" for i in range(MAX_LISTED_SYMBOLS + extra))
    Tree(tmp_path).add("/usr/lib/libmany.so", Lib(plt=names))
    report = scan(tmp_path, jobs=1)
    [f] = report.files
    assert f.verdict.value == "blocked"
    assert len(f.unresolved_symbols) == MAX_LISTED_SYMBOLS
    assert {s.name for s in f.unresolved_symbols} == set(names[:MAX_LISTED_SYMBOLS])  # the first, by name
    [counted] = [x for x in f.findings if x.subject == f"({extra} more)"]
    assert counted.rule == "unresolved-symbol" and counted.ignored is None
    document = sarif.render_sarif(report)
    assert f"{extra} more unresolved symbols" in document and document.count('"ruleId"') <= MAX_LISTED_SYMBOLS + 2
