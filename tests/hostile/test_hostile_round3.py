"""Hostile input, round 3 (issue 18 class 2 and part 1): amplifications a probe found after rounds 1 and 2.

- A search order of many directories (a long RPATH) times many missing DT_NEEDED cost their product in lookups, each
  remembered for the rest of the scan: an RPATH of 2,000 directories and 1,024 missing names took 10.6 s and 467 MB
  (the product at 10,000 x 4,096 is 41 million). A long order now looks names up in an index of its directories.
- Every missing library was listed about five times per file, and the fixes matched each against the list of them:
  50 files of 4,096 missing DT_NEEDED made a 97 MB JSON in 37 s and 1.6 GB; 200 files 6.5 GB. At most
  ``MAX_LISTED_LIBRARIES`` are listed per load, the rest counted in one finding.
- The paths a tree resolved were all remembered: now at most a fixed number.

Work is counted (Python-level calls), not timed, except where the cost is a scan in bytecode that no call shows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from muslcheck import scan
from muslcheck.ldso import search
from muslcheck.ldso.load import Context
from muslcheck.targets import directory
from muslcheck.targets.directory import DirectoryRoot
from tests.ldso.synthetic import Lib, Tree, found, musl
from tests.support import python_calls


def _cpu(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def _long_search(tree: Tree, dirs: int, names: int, existing: bool) -> str:
    for i in range(dirs if existing else 0):
        tree.mkdir(f"/r/d{i}")
    tree.add("/app/lib/libx.so", Lib(needed=tuple(f"libmissing{i}.so" for i in range(names)),
                                     rpath=":".join(f"/r/d{i}" for i in range(dirs))))
    return "/app/lib/libx.so"


@pytest.mark.parametrize("existing", [False, True], ids=["absent-directories", "empty-directories"])
def test_a_search_four_times_longer_in_both_directories_and_names_costs_about_four_times(tmp_path: Path,
                                                                                           existing: bool) -> None:
    """The product of directories and names grows 16x here; the work may grow about 4x."""
    work = []
    for n in (150, 600):
        tree = Tree(tmp_path / str(n))
        top = _long_search(tree, n, n, existing)
        result = tree.load(top, Context.DLOPEN_NOW)  # warm: what is made once per process
        assert len(result.missing) == n and all(m.needed_by == top for m in result.missing)
        work.append(python_calls(lambda tree=tree, top=top: tree.load(top, Context.DLOPEN_NOW)))
    assert work[1] < 6 * work[0], f"4x the directories and names: {work[1] / work[0]:.1f}x the calls"


def test_a_long_search_finds_what_the_walk_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index keeps musl's order: a directory before the one holding the library, a broken link that is
    listed but does not open, a directory linked twice into the order, "." (never listed, always opens), and a
    name found only in the system path."""
    tree = Tree(tmp_path)
    dirs = [f"/r/d{i}" for i in range(search.LONG_SEARCH + 10)]
    for d in dirs:
        tree.mkdir(d)
    tree.link("/r/d3/libbroken.so", "/nowhere/libbroken.so")
    tree.add("/r/d70/libbroken.so", Lib(defines=("b",)))
    tree.link("/r/d5/linked", "/r/d71")
    tree.add("/r/d71/libtwice.so", Lib(defines=("t",)))
    tree.add("/usr/lib/libsys.so", Lib(defines=("s",)))
    order = [*dirs[:8], "/r/d5/linked", *dirs[8:], "/r/d5/linked"]  # d71 reached first through the link
    needed = ("libbroken.so", "libtwice.so", "libsys.so", "libnone.so", ".")
    tree.add("/app/lib/libx.so", Lib(needed=needed, rpath=":".join(order), plt=("b", "t", "s")))

    def outcome() -> tuple[object, ...]:
        result = tree.load("/app/lib/libx.so", Context.DLOPEN_NOW)
        return (tuple(found(result, n) for n in needed), tuple((m.name, m.reason) for m in result.missing),
                tuple(u.name for o in result.objects for u in o.unresolved))

    indexed = outcome()
    monkeypatch.setattr(search, "LONG_SEARCH", 10**6)
    assert indexed == outcome()
    assert indexed[0][:3] == (("/r/d70/libbroken.so", "RPATH of /app/lib/libx.so"),
                              ("/r/d5/linked/libtwice.so", "RPATH of /app/lib/libx.so"),
                              ("/usr/lib/libsys.so", "system path"))
    assert [name for name, _ in indexed[1]] == ["libnone.so", "."]


def test_a_long_search_still_finds_the_virtual_files(tmp_path: Path) -> None:
    """musl's own file is on every Alpine system, whatever the tree holds: a long order lists it too."""
    tree = Tree(tmp_path)
    rpath = ":".join([*(f"/r/d{i}" for i in range(search.LONG_SEARCH + 1)), "/lib"])
    tree.add("/app/lib/libx.so", Lib(needed=("libc.musl-x86_64.so.1",), rpath=rpath, plt=("printf",)))
    result = tree.load("/app/lib/libx.so", Context.DLOPEN_NOW, target=musl())
    assert not result.missing
    assert all(not o.unresolved for o in result.objects)


def test_more_missing_libraries_than_listed_are_counted_and_still_block(tmp_path: Path) -> None:
    from muslcheck.judging.verdict import MAX_LISTED_LIBRARIES
    from muslcheck.render import sarif

    extra = 40
    names = tuple(f"libabsent{i:05d}.so" for i in range(MAX_LISTED_LIBRARIES + extra))
    Tree(tmp_path).add("/usr/lib/libmany.so", Lib(needed=("libssl.so.3", *names)))  # one that a package provides
    report = scan(tmp_path, jobs=1)
    [f] = report.files
    assert f.verdict.value == "blocked"
    assert len(f.missing_libraries) == MAX_LISTED_LIBRARIES
    # the blocking ones first, in load order: the packaged libssl.so.3 is among those only counted
    assert [lib.name for lib in f.missing_libraries] == list(names[:MAX_LISTED_LIBRARIES])
    [counted] = [x for x in f.findings if x.subject == f"({extra + 1} more)"]
    assert counted.rule == "missing-library" and counted.level.value == "blocked" and counted.ignored is None
    assert f"{extra} of them not in a package" in counted.message
    assert sum(x.rule == "missing-library" for x in f.findings) == MAX_LISTED_LIBRARIES + 1
    document = sarif.render_sarif(report)
    assert f"{extra + 1} more missing libraries" in document


def test_only_packaged_libraries_past_the_cap_are_counted_as_needing_packages(tmp_path: Path) -> None:
    from muslcheck.judging.verdict import MAX_LISTED_LIBRARIES

    names = tuple(f"libabsent{i:05d}.so" for i in range(MAX_LISTED_LIBRARIES))
    Tree(tmp_path).add("/usr/lib/libmany.so", Lib(needed=(*names, "libssl.so.3")))
    [f] = scan(tmp_path, jobs=1).files
    [counted] = [x for x in f.findings if x.subject == "(1 more)"]
    assert counted.rule == "needs-package" and counted.level.value == "needs-packages"
    assert counted.fix is None  # no package to name for a count
    assert "libssl.so.3" not in json.dumps([lib.name for lib in f.missing_libraries])


def test_a_file_with_four_times_the_missing_libraries_costs_about_four_times_the_work(tmp_path: Path) -> None:
    """The fixes matched each finding against the list of missing libraries (a scan in bytecode, which no call
    count sees): quadratic in them. CPU time of the scan, best of three, as round 2's parse tests do."""
    cost = []
    for n in (1000, 4000):
        tree = Tree(tmp_path / str(n))
        tree.add("/app/lib/libx.so", Lib(needed=tuple(f"libabsent{i}.so" for i in range(n))))
        scan(tree.root, jobs=1)  # warm
        cost.append(min(_cpu(lambda tree=tree: scan(tree.root, jobs=1)) for _ in range(3)))
    assert cost[1] < 8 * cost[0], f"4x the missing libraries: {cost[1] / cost[0]:.1f}x the CPU time"


def test_the_paths_a_directory_resolved_are_remembered_up_to_a_bound(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "_MAX_ENTRIES", 100)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "real").write_bytes(b"x")
    root = DirectoryRoot(tmp_path)
    for i in range(1000):
        assert root.resolve(f"/lib/absent{i}").reason == "no such file"  # type: ignore[union-attr]
    assert len(root._resolved) <= 100 and len(root._entries) <= 100
    assert root.resolve("/lib/real").is_file  # type: ignore[union-attr]


def test_archive_members_past_what_the_facts_cache_keeps_are_judged(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A JAR of more ELF members than the facts cache keeps (1,024): one the cache dropped was read again through
    the tree without its archives, not found, and the scan ended in an internal error."""
    import zipfile

    from muslcheck.ldso.facts import FactsCache

    monkeypatch.setattr(FactsCache, "SIZE", 4)
    data = Lib(plt=("printf",)).build()
    (tmp_path / "app").mkdir()
    with zipfile.ZipFile(tmp_path / "app" / "natives.jar", "w") as jar:
        for i in range(12):
            jar.writestr(f"native/lib{i}.so", data)
    report = scan(tmp_path, jobs=1)
    assert sorted(f.path for f in report.files) == sorted(f"/app/natives.jar!/native/lib{i}.so" for i in range(12))
    assert {f.verdict.value for f in report.files} == {"native"}


def _fan_out_to_missing(tree: Tree, n: int) -> None:
    """A program needing n libraries, each needing n libraries that are not there."""
    tree.add("/app/bin/prog", Lib(needed=tuple(f"lib{i}.so" for i in range(n)), interp="/lib/ld-musl-x86_64.so.1"))
    for i in range(n):
        tree.add(f"/usr/lib/lib{i}.so", Lib(needed=tuple(f"libabsent{i}_{j}.so" for j in range(n))))


def _scan_work(tmp_path: Path, sizes: tuple[int, ...], build: Callable[[Tree, int], None]) -> tuple[list[int], Tree]:
    """The calls a scan of each size's tree makes (each scanned once before, to warm), and the last tree."""
    work = []
    for n in sizes:
        tree = Tree(tmp_path / str(n))
        build(tree, n)
        scan(tree.root, jobs=1)
        work.append(python_calls(lambda tree=tree: scan(tree.root, jobs=1)))
    return work, tree


def test_libraries_judged_in_a_load_with_many_missing_cost_linear_work(tmp_path: Path) -> None:
    """Each library a root's load brings in is judged in it, and each walked every missing library of the load:
    n libraries each missing n cost n^3 (400: 83 s). 4x n is 16x the DT_NEEDED entries; the work may grow about
    that much, not 64x."""
    work, tree = _scan_work(tmp_path, (16, 64), _fan_out_to_missing)
    assert work[1] < 20 * work[0], f"4x the fan-out: {work[1] / work[0]:.1f}x the calls"
    report = scan(tree.root, jobs=1)
    by_path = {f.path: f for f in report.files}
    assert {lib.name for lib in by_path["/usr/lib/lib7.so"].missing_libraries} == {f"libabsent7_{j}.so"
                                                                                   for j in range(64)}
    assert all(f.verdict.value == "blocked" for f in report.files)


def _clique(tree: Tree, n: int) -> None:
    """n libraries that each need all the others (and call one function of each of a few)."""
    for i in range(n):
        others = tuple(f"lib{j}.so" for j in range(n) if j != i)
        tree.add(f"/usr/lib/lib{i}.so", Lib(needed=others, defines=(f"f{i}",),
                                            plt=tuple(f"f{j}" for j in range(n) if j != i)[:4]))


def test_the_reach_of_a_clique_four_times_larger_costs_about_the_sixteen_times_larger_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each library's own load (its reach) walks the DT_NEEDED of every library it brings in: n loads of n^2 entries
    for a clique (400 took 98 s as a fan-out). Past a budget of entries the libraries left get no reach and are
    judged in the load of the root that brings them in. The budget is lowered to make the test small."""
    from muslcheck.judging import judge

    monkeypatch.setattr(judge, "REACH_BUDGET", 2000)
    work, tree = _scan_work(tmp_path, (20, 80), _clique)
    assert work[1] < 16 * work[0], f"4x the clique: {work[1] / work[0]:.1f}x the calls"
    report = scan(tree.root, jobs=1)
    assert len(report.files) == 80 and {f.verdict.value for f in report.files} == {"native"}
    in_first = sum("judged in the load of /usr/lib/lib0.so" in " ".join(f.notes) for f in report.files)
    assert in_first == 79  # one root; every other library judged in its load, as without the budget


def test_a_load_order_longer_than_listed_is_cut_with_a_count(tmp_path: Path) -> None:
    from muslcheck.judging.verdict import MAX_LISTED_OBJECTS

    tree = Tree(tmp_path)
    n = MAX_LISTED_OBJECTS + 10
    tree.add("/usr/lib/libtop.so", Lib(needed=tuple(f"lib{i}.so" for i in range(n))))
    for i in range(n):
        tree.add(f"/usr/lib/lib{i}.so", Lib(defines=(f"f{i}",)))
    by_path = {f.path: f for f in scan(tmp_path, jobs=1).files}
    steps = by_path["/usr/lib/libtop.so"].load_order
    assert len(steps) == MAX_LISTED_OBJECTS + 1
    hidden = n + 3 - MAX_LISTED_OBJECTS  # the host program, libc and libtop.so come first
    assert (steps[-1].name, steps[-1].found_by) == (f"({hidden} more)", "not listed")
    assert [s.path for s in steps[3:6]] == ["/usr/lib/lib0.so", "/usr/lib/lib1.so", "/usr/lib/lib2.so"]


def test_each_scan_reading_its_musl_tables_anew_keeps_a_bounded_number(tmp_path: Path) -> None:
    """libc's exports were kept for every musl table ever read: a fleet of 2,000 targets (each scan reads its own
    tables) grew to 1.4 GB."""
    from muslcheck.ldso import target

    Tree(tmp_path).add("/usr/lib/libx.so", Lib(plt=("printf",)))
    for _ in range(target._LIBC_EXPORTS.size + 8):
        scan(tmp_path, jobs=1)
    assert len(target._LIBC_EXPORTS) <= target._LIBC_EXPORTS.size


def test_tls_errors_and_relocation_types_past_the_cap_are_counted(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One TLS error per initial-exec symbol and one finding per unsupported relocation type (32 bits of them) grew
    with the relocation tables: 20,000 TLS errors made 5.7 MB of JSON. Listed up to the symbols' cap (lowered
    here), the rest counted."""
    from muslcheck.judging import verdict
    from tests.elf.elfbuilder import ElfSpec, Sym

    monkeypatch.setattr(verdict, "MAX_LISTED_SYMBOLS", 16)
    tree = Tree(tmp_path)
    names = tuple(f"t{i}" for i in range(40))
    tree.add("/usr/lib/libt.so", Lib(tls_defines=names, tls=True))
    tree.add("/usr/lib/libu.so", Lib(needed=("libt.so",), tpoff=names))
    symbols = [Sym(f"s{i}", shndx=5, value=0x1000) for i in range(30)]
    tree.write("/usr/lib/librel.so", ElfSpec(symbols=symbols, relocations=[("rela", 200 + i, i + 1)
                                                                           for i in range(30)]).build().data)
    by_path = {f.path: f for f in scan(tmp_path, jobs=1).files}
    tls = by_path["/usr/lib/libu.so"]
    assert tls.verdict.value == "blocked" and len(tls.tls_errors) == 16
    [counted] = [x for x in tls.findings if x.subject == "(24 more)"]
    assert counted.rule == "initial-exec-tls" and "24 more initial-exec TLS errors" in counted.message
    rel = by_path["/usr/lib/librel.so"]
    assert rel.verdict.value == "blocked" and len(rel.unsupported_relocations) == 16
    [counted] = [x for x in rel.findings if x.subject == "(14 more)"]
    assert counted.rule == "unsupported-relocation"
