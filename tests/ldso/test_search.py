"""load_library's search on synthetic trees: order, names musl keeps for itself, objects already loaded, and why
a library is missing. "DL:n" is a line of musl 1.2.5's ldso/dynlink.c."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from muslcheck.ldso.load import Context, MissingReason
from tests.elf.elfbuilder import ElfSpec
from tests.ldso.synthetic import CATALOG, GLIBC_LDSO, MUSL_LDSO, Lib, Tree, found, musl

APP = "/app/bin/app"
DEP = Lib(soname="libdep.so.1", defines=("dep_value",))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def program(*needed: str, rpath: str | None = None, runpath: str | None = None, interp: str = MUSL_LDSO) -> Lib:
    return Lib(needed=needed, rpath=rpath, runpath=runpath, interp=interp)


def test_ld_library_path_comes_first(tree: Tree) -> None:  # DL:1118
    tree.add(APP, program("libdep.so.1", rpath="/rpath"))
    for directory in ("/env", "/rpath", "/lib"):
        tree.add(f"{directory}/libdep.so.1", DEP)
    result = tree.load(APP, target=musl(library_path="/nowhere:/env"))
    assert found(result, "libdep.so.1") == ("/env/libdep.so.1", "LD_LIBRARY_PATH")


def test_rpath_is_inherited_up_the_needed_by_chain(tree: Tree) -> None:  # DL:1119-1123
    """libmid has no rpath: its own dependency is searched in the rpath of the program that needed it."""
    tree.add(APP, program("libmid.so", rpath="/opt/app/lib"))
    tree.add("/opt/app/lib/libmid.so", Lib(needed=("libleaf.so",)))
    tree.add("/opt/app/lib/libleaf.so", Lib())
    result = tree.load(APP)
    assert found(result, "libleaf.so") == ("/opt/app/lib/libleaf.so", f"RPATH of {APP}")
    assert not result.missing


def test_the_requester_s_own_rpath_comes_before_its_parent_s(tree: Tree) -> None:
    tree.add(APP, program("libmid.so", rpath="/parent"))
    tree.add("/parent/libmid.so", Lib(needed=("libleaf.so",), rpath="/own"))
    tree.add("/parent/libleaf.so", Lib())
    tree.add("/own/libleaf.so", Lib())
    assert found(tree.load(APP), "libleaf.so") == ("/own/libleaf.so", "RPATH of /parent/libmid.so")


def test_runpath_replaces_rpath_and_is_inherited_too(tree: Tree) -> None:
    """Unlike glibc, musl treats DT_RUNPATH as DT_RPATH: it is searched for the dependencies of dependencies."""
    tree.add(APP, program("libmid.so", rpath="/old", runpath="/new"))
    tree.add("/old/libmid.so", Lib())
    tree.add("/new/libmid.so", Lib(needed=("libleaf.so",)))
    tree.add("/new/libleaf.so", Lib())
    result = tree.load(APP)
    assert found(result, "libmid.so") == ("/new/libmid.so", f"RUNPATH of {APP}")
    assert found(result, "libleaf.so") == ("/new/libleaf.so", f"RUNPATH of {APP}")


@pytest.mark.parametrize(
    ("runpath", "where"),
    [
        ("$ORIGIN/../lib", "/app/bin/../lib/libdep.so.1"),
        ("${ORIGIN}/../lib", "/app/bin/../lib/libdep.so.1"),
        ("/nowhere:$ORIGIN/../lib", "/app/bin/../lib/libdep.so.1"),
        ("$LIB/../lib:/app/lib", None),  # any other $ token voids the whole path (fixup_rpath, DL:911-916)
    ],
)
def test_origin_expands_to_the_object_s_directory(tree: Tree, runpath: str, where: str | None) -> None:
    tree.add(APP, program("libdep.so.1", runpath=runpath))
    tree.add("/app/lib/libdep.so.1", DEP)
    result = tree.load(APP)
    assert (found(result, "libdep.so.1") or (None, ""))[0] == where


def test_the_default_path_is_lib_usr_local_lib_usr_lib(tree: Tree) -> None:  # DL:1162
    tree.add(APP, program("libdep.so.1"))
    for directory in ("/usr/lib", "/usr/local/lib"):
        tree.add(f"{directory}/libdep.so.1", DEP)
    assert found(tree.load(APP), "libdep.so.1") == ("/usr/local/lib/libdep.so.1", "system path")
    tree.add("/lib/libdep.so.1", DEP)
    assert found(tree.load(APP), "libdep.so.1") == ("/lib/libdep.so.1", "system path")


def test_the_path_file_replaces_the_default_path(tree: Tree) -> None:  # DL:1126-1162
    """Entries are separated by ':' or newlines; the default directories are no longer searched."""
    tree.add(APP, program("libdep.so.1", "libother.so"))
    tree.add("/lib/libdep.so.1", DEP)
    tree.add("/opt/two/libother.so", Lib())
    tree.write("/etc/ld-musl-x86_64.path", "/opt/one\n/opt/two:/opt/three\n")
    result = tree.load(APP)
    assert [m.name for m in result.missing] == ["libdep.so.1"]
    assert found(result, "libother.so") == ("/opt/two/libother.so", "system path")


def test_an_empty_path_file_leaves_no_system_directory(tree: Tree) -> None:
    tree.add(APP, program("libdep.so.1"))
    tree.add("/lib/libdep.so.1", DEP)
    tree.write("/etc/ld-musl-x86_64.path", "")
    assert [(m.name, m.reason) for m in tree.load(APP).missing] == [("libdep.so.1", MissingReason.NOT_FOUND)]


def test_the_path_file_sits_two_levels_above_the_loader_s_name(tree: Tree) -> None:  # DL:1130-1141
    tree.add(APP, program("libdep.so.1", interp="/opt/musl/lib/ld-musl-x86_64.so.1"))
    tree.add("/opt/musl/lib2/libdep.so.1", DEP)
    tree.add("/lib/libdep.so.1", DEP)
    tree.write("/opt/musl/etc/ld-musl-x86_64.path", "/opt/musl/lib2")
    assert found(tree.load(APP), "libdep.so.1") == ("/opt/musl/lib2/libdep.so.1", "system path")


def test_a_name_with_a_slash_is_opened_as_it_is(tree: Tree) -> None:
    tree.add(APP, program("/opt/x/libdep.so.1", "sub/libdep.so.1"))
    tree.add("/opt/x/libdep.so.1", DEP)
    tree.add("/lib/sub/libdep.so.1", DEP)
    result = tree.load(APP)
    assert found(result, "/opt/x/libdep.so.1") == ("/opt/x/libdep.so.1", "path given")
    assert [m.name for m in result.missing] == ["sub/libdep.so.1"]  # relative to the process, never searched


@pytest.mark.parametrize(
    "name",
    ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libxnet.so",
     "libc.so", "libc.musl-x86_64.so.1", MUSL_LDSO],
)
def test_reserved_names_are_musl_itself(tree: Tree, name: str) -> None:  # DL:1072-1104
    tree.add(APP, program(name, "libm.so.6"))
    result = tree.load(APP)
    assert [o.path for o in result.objects if o.is_libc] == [MUSL_LDSO]  # libc joins the chain once
    assert not result.missing


@pytest.mark.parametrize("name", ["libresolv.so.2", "libcrypt.so.1", "libgcc_s.so.1", "libcrypto.so.3"])
def test_other_lib_names_are_searched(tree: Tree, name: str) -> None:
    tree.add(APP, program(name))
    result = tree.load(APP)
    assert [(m.name, m.reason) for m in result.missing] == [(name, MissingReason.NOT_FOUND)]
    assert not any(o.is_libc for o in result.objects)


def test_the_glibc_loader_is_libc_only_when_musl_runs_under_its_name(tree: Tree) -> None:
    """ld-linux-x86-64.so.2 names musl itself under gcompat's stub (DL:1097), and nothing else."""
    tree.add(APP, program("ld-linux-x86-64.so.2", interp=GLIBC_LDSO))
    assert [m.name for m in tree.load(APP).missing] == ["ld-linux-x86-64.so.2"]
    under_stub = tree.load(APP, target=musl(gcompat=CATALOG.gcompat))
    assert under_stub.ldso_name == "ld-linux-x86-64.so.2"
    assert not under_stub.missing


def test_a_library_already_loaded_under_a_name_is_reused_without_a_search(tree: Tree) -> None:  # DL:1110-1115
    """libb's own search would find /usr/lib/libdup.so; the name already loaded wins."""
    tree.add(APP, program("liba.so", "libb.so", rpath="/app/lib"))
    tree.add("/app/lib/liba.so", Lib(needed=("libdup.so",), rpath="/a"))
    tree.add("/app/lib/libb.so", Lib(needed=("libdup.so",)))
    tree.add("/a/libdup.so", Lib())
    tree.add("/usr/lib/libdup.so", Lib())
    result = tree.load(APP)
    assert [o.path for o in result.objects if o.requested_as == "libdup.so"] == ["/a/libdup.so"]


def test_musl_never_matches_a_loaded_library_by_its_soname(tree: Tree) -> None:
    """A library preloaded by path has no short name; its DT_SONAME is never read (DL:1227-1228)."""
    tree.add(APP, program("libdep.so.1"))
    tree.add("/opt/x/libdep.so.1", DEP)
    result = tree.load(APP, target=musl(preload=("/opt/x/libdep.so.1",)))
    assert [(m.name, m.reason) for m in result.missing] == [("libdep.so.1", MissingReason.NOT_FOUND)]


def test_the_same_inode_under_another_name_is_the_same_object(tree: Tree) -> None:  # DL:1172-1181
    tree.add(APP, program("libdep.so.1", "libalias.so"))
    tree.add("/lib/libdep.so.1", DEP)
    tree.link("/lib/libalias.so", "libdep.so.1")
    result = tree.load(APP)
    assert [o.path for o in result.objects[1:]] == ["/lib/libdep.so.1"]
    assert found(result, "libalias.so") is None  # the second name found the first object


def test_dependencies_load_breadth_first(tree: Tree) -> None:  # load_deps (DL:1298)
    tree.add(APP, program("liba.so", "libb.so"))
    tree.add("/lib/liba.so", Lib(needed=("libc.so",)))
    tree.add("/lib/libb.so", Lib(needed=("libd.so",)))
    tree.add("/lib/libd.so", Lib())
    result = tree.load(APP)
    assert [o.path for o in result.objects] == [APP, "/lib/liba.so", "/lib/libb.so", MUSL_LDSO, "/lib/libd.so"]


def test_a_dlopen_with_a_bare_name_searches_the_host_s_paths(tree: Tree) -> None:
    tree.add("/lib/libplugin.so", Lib(needed=("libdep.so.1",)))
    tree.add("/lib/libdep.so.1", DEP)
    result = tree.load("/lib/libplugin.so", Context.DLOPEN_NOW)
    assert [o.path for o in result.objects] == ["<host program>", MUSL_LDSO, "/lib/libplugin.so", "/lib/libdep.so.1"]
    assert [o.runtime_loaded for o in result.objects] == [False, False, True, True]


def _ld_script(tree: Tree) -> None:
    tree.write("/lib/libdep.so.1", "/* GNU ld script */ INPUT(libdep.so.1.2)\n")


def _truncated_elf(tree: Tree) -> None:
    tree.write("/lib/libdep.so.1", Lib().build()[:80])


def _relocatable_object(tree: Tree) -> None:
    tree.write("/lib/libdep.so.1", ElfSpec(e_type=1).build().data)  # ET_REL


def _directory(tree: Tree) -> None:
    tree.mkdir("/lib/libdep.so.1")


def _fifo(tree: Tree) -> None:
    tree.mkdir("/lib")
    os.mkfifo(tree.host("/lib/libdep.so.1"))


@pytest.mark.parametrize(
    ("candidate", "reason", "message"),
    [
        (_ld_script, MissingReason.EXEC_FORMAT, "Exec format error"),
        (_truncated_elf, MissingReason.EXEC_FORMAT, "Exec format error"),
        (_relocatable_object, MissingReason.EXEC_FORMAT, "Exec format error"),
        (_directory, MissingReason.IS_DIRECTORY, "Is a directory"),
        (_fifo, MissingReason.NOT_REGULAR, "not a regular file"),
    ],
)
def test_the_first_candidate_decides_why_a_library_is_missing(
    tree: Tree, candidate: Callable[[Tree], None], reason: MissingReason, message: str
) -> None:
    """path_open stops at the first candidate that opens; map_library then accepts or refuses it (DL:873-897)."""
    tree.add(APP, program("libdep.so.1"))
    candidate(tree)
    tree.add("/usr/lib/libdep.so.1", DEP)  # later on the path: never reached
    [missing] = tree.load(APP).missing
    assert (missing.name, missing.needed_by, missing.reason, missing.message) == ("libdep.so.1", APP, reason, message)


def test_a_library_of_a_replaced_os_package_names_its_owner(tree: Tree) -> None:
    tree.add(APP, program("libdep.so.1"))
    tree.add("/lib/libdep.so.1", DEP)
    [missing] = tree.load(APP, target=musl(replaced={"/lib/libdep.so.1": "libdep1"})).missing
    assert (missing.reason, missing.owner) == (MissingReason.REPLACED, "libdep1")
    assert missing.message == "replaced on Alpine: owned by libdep1"


def test_a_failed_dlopen_is_reported_against_dlopen(tree: Tree) -> None:
    tree.add("/lib/libplugin.so", Lib())
    result = tree.load("/lib/libplugin.so", Context.DLOPEN_NOW, target=musl(replaced={"/lib/libplugin.so": "plug"}))
    assert [(m.name, m.needed_by, m.message) for m in result.missing] == [
        ("/lib/libplugin.so", "dlopen", "replaced on Alpine: owned by plug")]
