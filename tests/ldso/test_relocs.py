"""do_relocs and find_sym on synthetic trees: lazy and bind-now, weak references, the LFS64 remap, relocation
types musl lacks, initial-exec TLS, DT_RELR. "DL:n" is a line of musl 1.2.5's ldso/dynlink.c."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muslcheck.ldso import relocs
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, LoadResult, RelocationMemo, TlsError, load
from muslcheck.targets.directory import DirectoryRoot
from tests.ldso.synthetic import CATALOG, MUSL_LDSO, Lib, Tree, effects, musl, obj

APP = "/app/bin/app"
PLUGIN = "/lib/libplugin.so"
GONE = Lib(plt=("gone_call",), got=("gone_address",), absolute=("gone_data",), weak=("gone_weak",))
FATAL, LATENT, NULL = Effect.FATAL, Effect.LATENT, Effect.NULL


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.mark.parametrize(
    ("context", "bind_now", "expected"),
    [
        (Context.DLOPEN_LAZY, False, {"gone_call": LATENT, "gone_address": LATENT, "gone_data": FATAL}),
        (Context.DLOPEN_LAZY, True, {"gone_call": FATAL, "gone_address": FATAL, "gone_data": FATAL}),
        (Context.DLOPEN_NOW, False, {"gone_call": FATAL, "gone_address": FATAL, "gone_data": FATAL}),
    ],
)
def test_rtld_lazy_defers_only_plt_and_got(tree: Tree, context: Context, bind_now: bool,
                                           expected: dict[str, Effect]) -> None:
    """DL:436-446; a bind-now object is relocated in full whatever the mode (prepare_lazy, DL:2079-2086)."""
    tree.add(PLUGIN, Lib(plt=GONE.plt, got=GONE.got, absolute=GONE.absolute, weak=GONE.weak, bind_now=bind_now))
    assert effects(tree.load(PLUGIN, context), PLUGIN) == {**expected, "gone_weak": NULL}


def test_start_up_binds_everything_now(tree: Tree) -> None:
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libc.so",), plt=GONE.plt, got=GONE.got, weak=GONE.weak))
    assert effects(tree.load(APP), APP) == {"gone_call": FATAL, "gone_address": FATAL, "gone_weak": NULL}


def test_one_non_plt_relocation_makes_a_lazy_symbol_fatal(tree: Tree) -> None:
    tree.add(PLUGIN, Lib(plt=("gone",), absolute=("gone",)))
    [unresolved] = obj(tree.load(PLUGIN, Context.DLOPEN_LAZY), PLUGIN).unresolved
    assert (unresolved.effect, unresolved.relocations) == (FATAL, ("R_X86_64_64", "R_X86_64_JUMP_SLOT"))


def test_a_dependency_of_a_lazy_dlopen_is_lazy_too(tree: Tree) -> None:
    tree.add(PLUGIN, Lib(needed=("libdep.so",)))
    tree.add("/lib/libdep.so", Lib(plt=("gone",)))
    assert effects(tree.load(PLUGIN, Context.DLOPEN_LAZY), "/lib/libdep.so") == {"gone": LATENT}


def test_a_weak_reference_binds_to_null_and_a_definition_wins(tree: Tree) -> None:  # DL:436-437
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libdep.so",), weak=("hook", "optional")))
    tree.add("/lib/libdep.so", Lib(defines=("hook",)))
    [unresolved] = obj(tree.load(APP), APP).unresolved
    assert (unresolved.name, unresolved.weak, unresolved.effect) == ("optional", True, NULL)


def test_requested_versions_are_never_checked(tree: Tree) -> None:
    """memcpy@GLIBC_2.14 binds to musl's memcpy: find_sym2 never compares versions (DL:312-341)."""
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libc.so.6",), plt=("memcpy", "gnu_get_libc_version"),
                      glibc_version="GLIBC_2.14"))
    [unresolved] = obj(tree.load(APP), APP).unresolved
    assert (unresolved.name, unresolved.version, unresolved.version_library, unresolved.effect) == (
        "gnu_get_libc_version", "GLIBC_2.14", "libc.so.6", FATAL)


def test_ifunc_definitions_are_invisible(tree: Tree) -> None:  # OK_TYPES (DL:302, 334)
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libdep.so",), plt=("fast_path", "slow_path")))
    tree.add("/lib/libdep.so", Lib(defines=("slow_path",), ifuncs=("fast_path",)))
    assert effects(tree.load(APP), APP) == {"fast_path": FATAL}


def test_an_executable_s_plt_address_binds_address_loads_but_not_calls(tree: Tree) -> None:
    """An undefined symbol with a value (the program's canonical PLT entry) satisfies a GLOB_DAT, never a
    JUMP_SLOT: a PLT lookup needs a definition (DL:327-330)."""
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libaddress.so", "libcall.so"), canonical_plt=("ext_fn",)))
    tree.add("/lib/libaddress.so", Lib(got=("ext_fn",)))
    tree.add("/lib/libcall.so", Lib(plt=("ext_fn",)))
    result = tree.load(APP)
    assert effects(result, "/lib/libaddress.so") == {}
    assert effects(result, "/lib/libcall.so") == {"ext_fn": FATAL}


@pytest.mark.parametrize(
    ("version", "remapped", "unresolved"),
    [
        ("1.2.3", [], ["fcntl64"]),  # the *64 names are real exports before 1.2.4
        ("1.2.4", ["fopen64", "readdir64_r"], ["fcntl64", "posix_fallocate64"]),  # 17 bytes: over get_lfs64's 16
        ("1.2.5", ["fopen64", "readdir64_r"], ["fcntl64", "posix_fallocate64"]),
        ("1.2.6", ["fopen64", "posix_fallocate64", "readdir64_r"], ["fcntl64"]),
    ],
)
def test_lfs64_names_bind_by_remap_from_1_2_4(tree: Tree, version: str, remapped: list[str],
                                              unresolved: list[str]) -> None:  # get_lfs64 (DL:348-376)
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libc.so.6",),
                      plt=("fopen64", "posix_fallocate64", "readdir64_r", "fcntl64")))
    app = obj(tree.load(APP, target=musl(version)), APP)
    assert list(app.lfs64_remapped) == remapped
    assert [u.name for u in app.unresolved] == unresolved


def test_the_lfs64_remap_needs_no_libc_in_the_chain(tree: Tree) -> None:
    """get_lfs64 looks in musl itself (find_sym(&ldso, ...)), whatever the program names."""
    tree.add(APP, Lib(interp=MUSL_LDSO, plt=("open64", "open")))
    app = obj(tree.load(APP), APP)
    assert (app.lfs64_remapped, [u.name for u in app.unresolved]) == (("open64",), ["open"])


@pytest.mark.parametrize(("arch", "irelative"), [("x86_64", 37), ("aarch64", 1032)])
def test_irelative_is_an_unsupported_relocation(tree: Tree, arch: str, irelative: int) -> None:  # DL:553-556
    tree.add(PLUGIN, Lib(arch=arch, irelative=3))
    plugin = obj(tree.load(PLUGIN, Context.DLOPEN_NOW, target=musl(arch=arch)), PLUGIN)
    assert (plugin.unsupported_relocations, plugin.wrong_arch) == (((irelative, 3),), None)


def test_a_library_for_another_machine_is_loaded_and_flagged(tree: Tree) -> None:
    """map_library does not compare e_machine; the model flags it."""
    tree.add(PLUGIN, Lib(arch="aarch64"))
    assert obj(tree.load(PLUGIN, Context.DLOPEN_NOW), PLUGIN).wrong_arch == "aarch64"


def test_initial_exec_tls_of_a_dlopened_library_fails(tree: Tree) -> None:  # DL:459-464
    """Its own TLS and a dependency's are both dynamic: loaded after start-up, above static_tls_cnt."""
    tree.add(PLUGIN, Lib(tls=True, own_tpoff=2, needed=("libtls.so",), tpoff=("tls_counter",)))
    tree.add("/lib/libtls.so", Lib(tls=True, tls_defines=("tls_counter",)))
    plugin = obj(tree.load(PLUGIN, Context.DLOPEN_NOW), PLUGIN)
    assert plugin.tls_errors == (TlsError("tls_counter", "/lib/libtls.so"), TlsError(None, PLUGIN))


def test_initial_exec_tls_loaded_at_start_up_is_static(tree: Tree) -> None:
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libplugin.so",)))
    tree.add(PLUGIN, Lib(tls=True, own_tpoff=2, needed=("libtls.so",), tpoff=("tls_counter",)))
    tree.add("/lib/libtls.so", Lib(tls=True, tls_defines=("tls_counter",)))
    result = tree.load(APP)
    assert [o.tls_errors for o in result.objects] == [(), (), ()]


def test_initial_exec_tls_into_a_preloaded_library_is_static(tree: Tree) -> None:
    tree.add(PLUGIN, Lib(needed=("libtls.so",), tpoff=("tls_counter",)))
    tree.add("/lib/libtls.so", Lib(tls=True, tls_defines=("tls_counter",)))
    result = tree.load(PLUGIN, Context.DLOPEN_NOW, target=musl(preload=("/lib/libtls.so",)))
    assert obj(result, PLUGIN).tls_errors == ()


@pytest.mark.parametrize(("version", "ignored"), [("1.2.3", True), ("1.2.4", False)])
def test_dt_relr_is_ignored_before_1_2_4(tree: Tree, version: str, ignored: bool) -> None:  # musl d32dadd6
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("librelr.so",)))
    tree.add("/lib/librelr.so", Lib(relr=True))
    assert tree.load(APP, target=musl(version)).relr_unsupported == (("/lib/librelr.so",) if ignored else ())


# -- the memo and the plan only choose what to walk: they never change an outcome ------------------------------

NAMES = ("open", "open64", "fopen64", "memcpy", "gnu_get_libc_version", "dep_fn", "tls_x")
_names = st.lists(st.sampled_from(NAMES), unique=True, max_size=4).map(tuple)
_tls_names = st.lists(st.sampled_from(("tls_x", "tls_y")), unique=True).map(tuple)
_libs = st.builds(
    Lib, defines=_names, tls_defines=_tls_names, plt=_names, got=_names, absolute=_names, weak=_names,
    tpoff=_tls_names, own_tpoff=st.integers(0, 1), irelative=st.integers(0, 1), tls=st.booleans(),
    bind_now=st.booleans(),
)


def _outcomes(result: LoadResult) -> list[tuple[object, ...]]:
    return [(o.path, o.unresolved, o.unsupported_relocations, o.tls_errors, o.lfs64_remapped) for o in result.objects]


CONTEXTS = (Context.EXECUTABLE, Context.DLOPEN_NOW, Context.DLOPEN_LAZY)


def test_one_memo_keeps_start_up_now_and_lazy_apart(tree: Tree) -> None:
    """The same file against the same definers: dynamic TLS and laziness still change the outcome."""
    tree.add(APP, Lib(interp=MUSL_LDSO, needed=("libdep.so", "libc.so"), tpoff=("tls_x",), plt=("gone",)))
    tree.add("/lib/libdep.so", Lib(tls=True, tls_defines=("tls_x",)))
    directory, target, memo = DirectoryRoot(tree.root), musl(), RelocationMemo()
    facts = FactsCache(directory)
    shared = [load(directory, facts, target, APP, context, memo=memo) for context in CONTEXTS]
    assert [(o.tls_errors, effects(r, APP)) for r in shared for o in r.objects if o.path == APP] == [
        ((), {"gone": FATAL}),
        ((TlsError("tls_x", "/lib/libdep.so"),), {"gone": FATAL}),
        ((TlsError("tls_x", "/lib/libdep.so"),), {"gone": LATENT}),
    ]


@settings(max_examples=80, deadline=None)
@given(program=_libs, dependency=_libs, version=st.sampled_from(CATALOG.musl_versions))
def test_the_plan_and_the_memo_settle_uses_as_a_full_walk_does(program: Lib, dependency: Lib, version: str) -> None:
    """Loads through the plan (set operations, remembered outcomes, one memo for all) equal loads that walk
    every relocation of every use."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Tree(Path(tmp))
        tree.add(APP, replace(program, needed=("libdep.so", "libc.so"), interp=MUSL_LDSO))
        tree.add("/lib/libdep.so", dependency)
        target, memo = musl(version), RelocationMemo()
        directory = DirectoryRoot(tree.root)
        facts = FactsCache(directory)  # the same facts for every load: the memo's results are shared
        planned = [load(directory, facts, target, APP, context, memo=memo) for context in (*CONTEXTS, *CONTEXTS)]
        with mock.patch.object(relocs, "_PLAIN_LOOKUPS", frozenset()):  # no plain use: every one is walked
            walked = [tree.load(APP, context, target=target) for context in (*CONTEXTS, *CONTEXTS)]
    assert [_outcomes(r) for r in planned] == [_outcomes(r) for r in walked]


def _programs(tree: Tree, count: int) -> list[str]:
    """``count`` programs, each with a library of its own and one it shares, each missing symbols."""
    tree.add("/lib/libshared.so", Lib(plt=("shared_gone",), defines=("shared_call",)))
    programs = []
    for k in range(count):
        tree.add(f"/lib/libown{k}.so", Lib(needed=("libshared.so",), plt=(f"own_gone_{k}", "shared_call")))
        tree.add(f"/app/bin/app{k}", Lib(interp=MUSL_LDSO, needed=(f"libown{k}.so", "libc.so"),
                                         plt=(f"app_gone_{k}", "shared_call")))
        programs.append(f"/app/bin/app{k}")
    return programs


def test_the_memos_and_the_facts_cache_are_bounded(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory flat in the number of files: with tiny bounds every table stays within them, and every load still
    reports what an unbounded memo and cache report."""
    programs = _programs(tree, 6)
    directory, target = DirectoryRoot(tree.root), musl()
    unbounded = [_outcomes(load(directory, FactsCache(directory), target, p, Context.EXECUTABLE)) for p in programs]
    for name in ("PLANS", "RESULTS", "RELEVANT", "INVISIBLE"):
        monkeypatch.setattr(RelocationMemo, name, 2)
    monkeypatch.setattr(FactsCache, "SIZE", 2)
    memo, facts = RelocationMemo(), FactsCache(directory)
    bounded = [_outcomes(load(directory, facts, target, p, Context.EXECUTABLE, memo=memo)) for p in programs * 2]
    assert bounded == unbounded * 2
    assert max(len(memo._results), len(memo._plans), len(memo._relevant), len(memo._invisible)) <= 2
    assert len(facts._by_identity) <= 2


def test_the_memo_knows_a_file_by_its_identity(tree: Tree) -> None:
    """The same files read again (new facts objects, as after the facts cache dropped them): the memo's results
    still apply, since they are keyed by the file, not by the id() of facts it would have to keep alive."""
    [program] = _programs(tree, 1)
    directory, target, memo = DirectoryRoot(tree.root), musl(), RelocationMemo()
    first = load(directory, FactsCache(directory), target, program, Context.EXECUTABLE, memo=memo)
    again = load(directory, FactsCache(directory), target, program, Context.EXECUTABLE, memo=memo)
    assert [o.facts is p.facts for o, p in zip(first.objects, again.objects, strict=True) if o.facts] == [False] * 3
    assert all(o.unresolved is p.unresolved for o, p in zip(first.objects, again.objects, strict=True) if o.facts)
