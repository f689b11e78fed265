"""Issue 17, part 4: a rescan of a directory judges again only the loads that read something that changed. Every
rescan's report must equal a scan without any cache; the loads judged again are counted to show the reuse."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muslcheck import Context, Report, ScanOptions, scan
from muslcheck.cache import Store, load_judged
from muslcheck.judging import judge as judge_module
from muslcheck.judging import reuse as reuse_module
from muslcheck.judging.reuse import Reuse, changed_paths
from muslcheck.ldso import load as load_module
from muslcheck.model.kept import JudgedState
from muslcheck.model.report import Verdict
from tests.judging.test_judge_synthetic import MUSL_INTERP, library, program, write

GLIBC_INTERP = "/lib64/ld-linux-x86-64.so.2"
scan_module = importlib.import_module("muslcheck.scan")  # the package exports the function under that name


def tree(root: Path) -> None:
    """Two programs sharing libfoo (found by runpath), a plugin dlopen-ed by name, and a loose library."""
    write(root, "/app/bin/server", program(MUSL_INTERP, needed=("libfoo.so.1", "libc.so"), uses=("foo", "memcpy")))
    write(root, "/app/bin/client", program(GLIBC_INTERP, needed=("libfoo.so.1", "libc.so.6"),
                                           uses=("foo", "__memcpy_chk")))
    for name in ("server", "client"):  # $ORIGIN/../lib, as the runpath of real programs says
        spec = program(MUSL_INTERP, needed=("libfoo.so.1", "libc.so"), uses=("foo",))
        spec.runpath = "$ORIGIN/../lib"
        write(root, f"/app/bin/{name}", spec)
    write(root, "/app/lib/libfoo.so.1", library("libfoo.so.1", exports=("foo",), uses=("strlcpy",)))
    write(root, "/app/plugins/libplugin.so", library("libplugin.so", needed=("libbar.so.2", "libc.so"),
                                                     uses=("bar_init", "gnu_get_libc_version")))
    write(root, "/opt/loose/libloose.so", library("libloose.so", uses=("__isoc23_strtol",)))


@pytest.fixture(autouse=True)
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's clock a minute on: past the 2 s in which a stat identity is not trusted (keys.recently_changed).
    Each change here comes after a whole scan, so its stat identity differs anyway."""
    now = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: now() + 60 * 10**9)


class Loads:
    """Counts the simulated loads of the judging (header-only reach loads included)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = load_module.load

        def counting(*args: object, **kwargs: object) -> object:
            self.count += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(judge_module, "load", counting)

    def during(self, action: Callable[[], Report]) -> tuple[Report, int]:
        before = self.count
        report = action()
        return report, self.count - before


@pytest.fixture
def rescan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], tuple[Report, int]]:
    store = Store(tmp_path / "cache", salt="test")
    loads = Loads(monkeypatch)

    def run(root: Path) -> tuple[Report, int]:
        report, counted = loads.during(lambda: scan(root, ScanOptions(musl="1.2.5", jobs=1, cache=store)))
        assert report == scan(root, ScanOptions(musl="1.2.5", jobs=1))  # the same as without any cache
        return report, counted
    return run


def test_a_rescan_after_an_unrelated_change_judges_nothing_again(tmp_path: Path, rescan) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    tree(root)
    first, cold = rescan(root)
    assert cold > 0 and {f.verdict for f in first.files} >= {Verdict.NATIVE, Verdict.BLOCKED}
    (root / "app" / "README").write_text("a file no load reads")
    _, loads = rescan(root)
    assert loads == 0


def test_a_changed_library_judges_again_exactly_the_loads_that_read_it(tmp_path: Path, rescan) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    tree(root)
    _, cold = rescan(root)
    write(root, "/app/lib/libfoo.so.1", library("libfoo.so.1", exports=("foo",)))  # no longer needs strlcpy
    report, loads = rescan(root)
    assert 0 < loads < cold
    foo = next(f for f in report.files if f.path == "/app/lib/libfoo.so.1")
    assert foo.verdict is Verdict.NATIVE
    write(root, "/opt/loose/libloose.so", library("libloose.so"))  # read by its own load only
    _, loose = rescan(root)
    assert 0 < loose < loads


@pytest.mark.parametrize("change", ["path file", "library appears", "link", "removed", "directory becomes link"])
def test_every_kind_of_change_gives_the_report_of_a_fresh_scan(tmp_path: Path, rescan, change: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    tree(root)
    rescan(root)
    if change == "path file":  # every load reads the loader's path file: all are judged again
        (root / "etc").mkdir()
        (root / "etc" / "ld-musl-x86_64.path").write_text("/app/plugins:/lib\n")
    elif change == "library appears":  # the plugin's missing libbar appears on the default path
        write(root, "/lib/libbar.so.2", library("libbar.so.2", exports=("bar_init",)))
    elif change == "link":  # the plugin's missing libbar is now a link to libfoo
        (root / "lib").mkdir()
        os.symlink("/app/lib/libfoo.so.1", root / "lib" / "libbar.so.2")
    elif change == "removed":
        (root / "app" / "lib" / "libfoo.so.1").unlink()
    else:  # /app/lib swapped for a link to a copy with another libfoo
        (root / "other").mkdir()
        write(root, "/other/libfoo.so.1", library("libfoo.so.1", uses=("foo",)))
        for f in (root / "app" / "lib").iterdir():
            f.unlink()
        (root / "app" / "lib").rmdir()
        os.symlink("../other", root / "app" / "lib")
    _, loads = rescan(root)
    assert loads > 0


def test_a_rescan_finds_the_hosts_modules_by_their_marks_as_a_fresh_scan_does(tmp_path: Path, rescan) -> None:  # type: ignore[no-untyped-def]
    """A rescan reads the symbols of a file for the module check only when its string table holds a host's marks
    (``Java_``...): a JNI library is still the JVM's (dlopen-lazy), and no longer once it stops exporting one."""
    root = tmp_path / "root"
    tree(root)
    write(root, "/opt/native/libjni.so", library("libjni.so", exports=("Java_org_Foo_bar",), uses=("memcpy",)))
    first, _ = rescan(root)
    contexts = {f.path: f.context for f in first.files}
    assert contexts["/opt/native/libjni.so"] is Context.DLOPEN_LAZY
    assert contexts["/opt/loose/libloose.so"] is Context.DLOPEN_NOW
    (root / "app" / "README").write_text("a file no load reads")
    again, _ = rescan(root)
    assert again == first
    write(root, "/opt/native/libjni.so", library("libjni.so", exports=("org_Foo_bar",), uses=("memcpy",)))
    changed, _ = rescan(root)
    assert {f.path: f.context for f in changed.files}["/opt/native/libjni.so"] is Context.DLOPEN_NOW


def test_other_options_never_read_the_last_scans_judging(tmp_path: Path, rescan) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    tree(root)
    rescan(root)
    # another context for every file is another key: nothing of the last scan is read
    store = Store(tmp_path / "cache", salt="test")
    with_context = scan(root, ScanOptions(musl="1.2.5", jobs=1, cache=store, context=Context.DLOPEN_LAZY))
    assert with_context == scan(root, ScanOptions(musl="1.2.5", jobs=1, context=Context.DLOPEN_LAZY))


def test_changed_paths_leave_out_directories_that_stay_directories() -> None:
    before = {"/a": "16877 1 2 0 0 0 ", "/a/x": "33188 1 3 10 5 5 ", "/a/y": "33188 1 4 10 5 5 "}
    after = {"/a": "16877 1 2 0 9 9 ", "/a/x": "33188 1 3 11 9 9 ", "/b": "41471 1 9 1 9 9 a"}
    assert changed_paths(before, after) == {"/a/x", "/a/y", "/b"}
    assert changed_paths(after, {**after, "/a": "41471 1 2 1 9 9 b"}) == {"/a"}  # a directory became a link


def test_a_record_holds_until_a_path_it_read_an_ancestor_or_a_listed_entry_changes() -> None:
    reuse = Reuse(None, frozenset({"/usr/lib/libz.so.1", "/opt/app.jar", "/etc/new"}))
    assert reuse.still_holds(("/usr/lib/libc.so", "/usr/lib/libzz.so.1"), ())
    assert not reuse.still_holds(("/usr/lib/libz.so.1",), ())
    assert not reuse.still_holds(("/usr/lib/libz.so.1/x",), ())  # a file became a directory
    assert not reuse.still_holds(("/opt/app.jar!/lib/libx.so",), ())  # a member of a changed archive
    assert reuse.still_holds(("/opt/app.jar2",), ())
    assert not reuse.still_holds((), ("/etc",))  # an entry appeared in a listed directory
    assert reuse.still_holds((), ("/etc/ssl",))


_PATHS = st.lists(st.sampled_from(["a", "b", "a.jar", "a-b", "!", ""]), min_size=1, max_size=5).map(
    lambda parts: "/" + "/".join(parts).replace("/!/", "!/"))


@settings(max_examples=300, deadline=None)
@given(read=st.lists(_PATHS, min_size=8, max_size=60, unique=True), data=st.data())
def test_a_few_changes_are_looked_up_in_the_sorted_read_paths_with_the_same_answer(read: list[str],
                                                                                   data: st.DataObject) -> None:
    """With far fewer changed paths than paths read, ``still_holds`` searches the sorted paths for each change: it
    must answer as the walk over every read path's ancestors does."""
    near = sorted({*read, *(a for path in read for a in reuse_module._ancestors(path))})  # changes that matter
    changed = data.draw(st.frozensets(st.sampled_from(near) | _PATHS, max_size=3))
    walked = not any(path in changed or any(a in changed for a in reuse_module._ancestors(path)) for path in read)
    assert Reuse(None, changed).still_holds(tuple(read), ()) == walked


def test_what_is_kept_reads_back_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    tree(root)
    store = Store(tmp_path / "cache", salt="test")
    saved: list[str] = []
    real: Callable[[Store, str, JudgedState], bool] = scan_module.save_judged

    def saving(store: Store, key: str, state: JudgedState) -> bool:
        saved.append(key)
        return real(store, key, state)
    monkeypatch.setattr(scan_module, "save_judged", saving)
    scan(root, ScanOptions(musl="1.2.5", jobs=1, cache=store))
    (key,) = saved
    state = load_judged(store, key)
    assert state is not None
    assert "/app/lib/libfoo.so.1" in state.manifest
    assert {r.path for r in state.roots} >= {"/app/bin/server", "/app/bin/client", "/opt/loose/libloose.so"}
    server = next(r for r in state.roots if r.path == "/app/bin/server")
    assert "/app/lib/libfoo.so.1" in server.reached and "/app/lib/libfoo.so.1" in server.read


def test_workers_keep_and_reuse_the_same_judging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge_module, "PARALLEL_MIN_FILES", 1)
    root = tmp_path / "root"
    tree(root)
    store = Store(tmp_path / "cache", salt="test")
    scan(root, ScanOptions(musl="1.2.5", jobs=2, cache=store))
    write(root, "/app/lib/libfoo.so.1", library("libfoo.so.1", exports=("foo",)))
    again = scan(root, ScanOptions(musl="1.2.5", jobs=2, cache=store))
    assert again == scan(root, ScanOptions(musl="1.2.5", jobs=1))


def test_a_rescan_that_reuses_nearly_everything_keeps_the_older_state(tmp_path: Path, rescan,  # type: ignore[no-untyped-def]
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One loose library changed of 40 roots: the state it was judged against stays (writing a new one costs more
    than judging that change again next time); the next rescan, after another change, judges both changes again and
    still gives a fresh scan's report. Changes past the share (``_NEW_STATE_SHARE``) write a new state."""
    root = tmp_path / "root"
    tree(root)
    for n in range(36):
        write(root, f"/opt/many/lib{n}.so", library(f"lib{n}.so", uses=("memcpy",)))
    saved: list[JudgedState] = []
    real_save = scan_module.save_judged
    monkeypatch.setattr(scan_module, "save_judged",
                        lambda store, key, state: saved.append(state) or real_save(store, key, state))
    rescan(root)
    assert len(saved) == 1 and len(saved[0].roots) == 40

    def change(n: int) -> None:
        write(root, f"/opt/many/lib{n}.so", library(f"lib{n}.so", uses=("memcpy", f"glibc_only_{n}")))

    change(0)
    _, judged_first = rescan(root)
    assert len(saved) == 1 and judged_first > 0  # judged lib0 again, and kept the first state
    change(1)
    second, judged_second = rescan(root)
    assert len(saved) == 1 and judged_second > judged_first  # lib0 and lib1, both changed since the state kept
    assert {f.path for f in second.files if f.verdict is Verdict.BLOCKED} >= {"/opt/many/lib0.so", "/opt/many/lib1.so"}
    for n in range(2, 6):
        change(n)
    rescan(root)
    assert len(saved) == 2  # 6 of 40 roots changed since it: a new state
    _, judged_after = rescan(root)
    assert judged_after == 0
