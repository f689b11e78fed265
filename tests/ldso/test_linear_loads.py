"""What one load costs as it grows (issue 18, class 2: "a chain of 500 libraries, each needing the next"). The work
is counted, not timed: Python-level calls made by ``load``, for a chain of N libraries and of 4N.

The search (load_library, load_deps) is linear in the objects loaded. Before, each library's search rebuilt the
rpath list of its whole needed_by chain and walked the load list for a short name and an inode: N^2 per load, and
N^3 for a tree of N such libraries, each judged in its own load (judging's reach). Relocating each object still
looks at every object of the chain that defines one of its names, as musl's lookup walks the chain: N^2 per load
with symbols, which judging does only for the roots (one, for a chain)."""

from __future__ import annotations

from pathlib import Path

from muslcheck.ldso.dso import Dso
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context
from muslcheck.ldso.search import Process
from muslcheck.targets.directory import DirectoryRoot
from tests.ldso.synthetic import MUSL_LDSO, Lib, Tree, found, musl
from tests.support import python_calls


def _chain(tree: Tree, n: int) -> str:
    """lib0 .. lib{n}: each needs the one below (RPATH $ORIGIN), calls its function, and defines its own."""
    for i in range(n + 1):
        below = (f"lib{i - 1}.so",) if i else ()
        tree.add(f"/chain/lib{i}.so", Lib(needed=below, rpath="$ORIGIN", defines=(f"f{i}",),
                                          plt=(f"f{i - 1}",) if i else ()))
    return f"/chain/lib{n}.so"


def _work(tmp_path: Path, within: str) -> tuple[int, int]:
    """Calls for a chain of 60 and of 240, each loaded cold (its own files, so no memo holds them)."""
    warm, small, large = Tree(tmp_path / "warm"), Tree(tmp_path / "small"), Tree(tmp_path / "large")
    top_small, top_large = _chain(small, 60), _chain(large, 240)
    warm.load(_chain(warm, 3), Context.DLOPEN_NOW)  # what is made once per process (tables, imports)
    work_small = python_calls(lambda: small.load(top_small, Context.DLOPEN_NOW), within)
    work_large = python_calls(lambda: large.load(top_large, Context.DLOPEN_NOW), within)
    result = large.load(top_large, Context.DLOPEN_NOW)
    assert not result.missing and all(not o.unresolved for o in result.objects)
    assert found(result, "lib0.so") == ("/chain/lib0.so", "RPATH of /chain/lib1.so")
    return work_small, work_large


def test_the_search_of_a_chain_four_times_longer_costs_about_four_times_the_work(tmp_path: Path) -> None:
    small, large = _work(tmp_path, within="/ldso/search.py")
    assert large < 5 * small, f"4x the chain: {large / small:.1f}x the calls"


def test_a_whole_load_of_a_chain_four_times_longer_costs_at_most_sixteen_times(tmp_path: Path) -> None:
    small, large = _work(tmp_path, within="")
    assert large < 17 * small, f"4x the chain: {large / small:.1f}x the calls"


def test_an_object_given_a_short_name_late_is_found_before_a_later_one(tmp_path: Path) -> None:
    """DL:1110 walks the load list in order. /x/libfoo.so comes in by path (no short name); libfoo.so is then
    found at /y; libalias.so, a link to /x/libfoo.so, is the object already loaded and gives it the short name
    libfoo.so (DL:1172-1181). A later request for libfoo.so is /x's, the first in the list."""
    tree = Tree(tmp_path)
    tree.add("/x/libfoo.so", Lib(defines=("x_only",)))
    tree.add("/y/libfoo.so", Lib(defines=("y_only",)))
    tree.link("/y/libalias.so", "/x/libfoo.so")
    root = DirectoryRoot(tmp_path)
    process = Process(root, FactsCache(root), musl(library_path="/y"), MUSL_LDSO)
    process.objects.append(Dso("<host program>", "", "host", (), ("host",), None, False))  # as load() does
    first = process.load_library("/x/libfoo.so", None)
    assert isinstance(first, Dso) and first.shortname is None
    second = process.load_library("libfoo.so", None)
    assert isinstance(second, Dso) and second.path == "/y/libfoo.so"
    assert process.load_library("libalias.so", None) is first and first.shortname == "libfoo.so"
    assert process.load_library("libfoo.so", None) is first
    assert [o.path for o in process.objects[1:]] == ["/x/libfoo.so", "/y/libfoo.so"]
