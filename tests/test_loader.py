"""The loader model's search, naming and substitution rules, on trees laid out from the built samples.

Each expectation cites the line of musl 1.2.5's ldso/dynlink.c ("DL:n") it encodes; the
differential tests hold the model against the real loaders as a whole.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from muslcheck.elf import read_elf_file
from muslcheck.ldso.facts import FactsCache, NotLoadable
from muslcheck.ldso.load import Context, Effect, LoadResult, MissingReason, Target, lfs64_base, load
from muslcheck.ldso.search import Process, search_path
from muslcheck.ldso.tables import Catalog
from muslcheck.targets.directory import DirectoryRoot

CATALOG = Catalog()
# missing-dep's program: glibc, NEEDED libdep.so and libc.so.6, RPATH $ORIGIN/../lib, imports greet_value.
APP = "missing-dep/app/bin/app"
DEP = "rpath-origin/app/lib/libdep.so"  # exports greet_value


def target(version: str = "1.2.5", **kwargs: object) -> Target:
    return Target("x86_64", CATALOG.musl_exports(version, "x86_64"), CATALOG.loader_rules(version), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def tree(tmp_path: Path, samples_dir: Path) -> Path:
    """A root holding only the program at /app/bin/app."""
    (tmp_path / "app" / "bin").mkdir(parents=True)
    shutil.copy(samples_dir / APP, tmp_path / "app" / "bin" / "app")
    return tmp_path


def place(samples_dir: Path, root: Path, path: str, source: str = DEP) -> Path:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(samples_dir / source, dest)
    return dest


def run(root: Path, tgt: Target | None = None, context: Context = Context.EXECUTABLE) -> LoadResult:
    directory = DirectoryRoot(root)
    return load(directory, FactsCache(directory), tgt or target(), "/app/bin/app", context)


def found(result: LoadResult, name: str) -> tuple[str, str] | None:
    return next(((o.path, o.found_by) for o in result.objects if o.requested_as == name), None)


def test_rpath_with_origin_finds_the_library(tree: Path, samples_dir: Path) -> None:
    place(samples_dir, tree, "/app/lib/libdep.so")
    result = run(tree)
    assert found(result, "libdep.so") == ("/app/bin/../lib/libdep.so", "RPATH of /app/bin/app")
    assert not result.missing


def test_ld_library_path_comes_before_rpath(tree: Path, samples_dir: Path) -> None:  # DL:1109
    place(samples_dir, tree, "/app/lib/libdep.so")
    place(samples_dir, tree, "/lp/libdep.so")
    result = run(tree, target(library_path="/lp"))
    assert found(result, "libdep.so") == ("/lp/libdep.so", "LD_LIBRARY_PATH")


def test_default_path_is_used_without_a_path_file(tree: Path, samples_dir: Path) -> None:  # DL:1154
    place(samples_dir, tree, "/usr/lib/libdep.so")
    assert found(run(tree), "libdep.so") == ("/usr/lib/libdep.so", "system path")


def test_the_path_file_replaces_the_default_path(tree: Path, samples_dir: Path) -> None:  # DL:1128-1152
    place(samples_dir, tree, "/usr/lib/libdep.so")
    (tree / "etc").mkdir()
    (tree / "etc" / "ld-musl-x86_64.path").write_text("/opt/one:/opt/two\n")
    result = run(tree)
    assert [(m.name, m.needed_by) for m in result.missing] == [("libdep.so", "/app/bin/app")]
    place(samples_dir, tree, "/opt/two/libdep.so")
    assert found(run(tree), "libdep.so") == ("/opt/two/libdep.so", "system path")


def test_an_empty_path_file_searches_no_system_directory(tree: Path, samples_dir: Path) -> None:
    place(samples_dir, tree, "/lib/libdep.so")
    (tree / "etc").mkdir()
    (tree / "etc" / "ld-musl-x86_64.path").write_text("")
    assert [m.name for m in run(tree).missing] == ["libdep.so"]


def test_links_in_the_search_resolve_inside_the_root(tree: Path, samples_dir: Path) -> None:
    place(samples_dir, tree, "/opt/real/libdep.so.1")
    (tree / "lib").mkdir()
    os.symlink("/opt/real/libdep.so.1", tree / "lib" / "libdep.so")
    result = run(tree)
    [obj] = [o for o in result.objects if o.requested_as == "libdep.so"]
    assert obj.path == "/lib/libdep.so"  # musl names the object by the path it searched (DL:1237)
    assert obj.links == ("/lib/libdep.so -> /opt/real/libdep.so.1",)


def test_a_file_that_is_not_elf_stops_the_search(tree: Path, samples_dir: Path) -> None:
    """path_open returns the first file that opens; map_library then fails (DL:873, DL:706)."""
    (tree / "app" / "lib").mkdir()
    (tree / "app" / "lib" / "libdep.so").write_text("/* GNU ld script */ INPUT(libdep.so.1)\n")
    place(samples_dir, tree, "/usr/lib/libdep.so")
    result = run(tree)
    assert [(m.name, m.reason) for m in result.missing] == [("libdep.so", "Exec format error")]


def test_another_libc_found_by_search_is_replaced_by_musl(tree: Path) -> None:
    """A library defining __libc_start_main and stdin is another libc: musl loads itself (DL:1198)."""
    glibc = Path("/lib/x86_64-linux-gnu/libc.so.6").resolve()
    (tree / "app" / "lib").mkdir()
    shutil.copy(glibc, tree / "app" / "lib" / "libdep.so")
    result = run(tree)
    assert found(result, "libdep.so") is None
    assert any(o.is_libc for o in result.objects)
    [app] = [o for o in result.objects if o.path == "/app/bin/app"]
    assert [u.name for u in app.unresolved if u.effect is Effect.FATAL] == ["greet_value"]


def test_a_library_for_another_machine_is_loaded_and_flagged(tree: Path, samples_dir: Path) -> None:
    """musl does not compare e_machine (map_library), so the search stops there; the model flags it."""
    lib = place(samples_dir, tree, "/app/lib/libdep.so")
    data = bytearray(lib.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    lib.write_bytes(bytes(data))
    result = run(tree)
    [obj] = [o for o in result.objects if o.requested_as == "libdep.so"]
    assert obj.wrong_arch == "aarch64"


def test_reserved_names_are_musl_itself(tree: Path) -> None:  # DL:1072-1098
    directory = DirectoryRoot(tree)
    loader = Process(directory, FactsCache(directory), target(), "/lib/ld-musl-x86_64.so.1")
    for name in ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
                 "libxnet.so", "libc.musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1"):
        assert loader.load_library(name, None) is loader.libc, name
    for name in ("libresolv.so.2", "libcrypt.so.1", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libcrypto.so.3"):
        assert loader.load_library(name, None) == NotLoadable(MissingReason.NOT_FOUND), name


def test_the_glibc_loader_name_is_musl_only_when_musl_runs_under_it(tree: Path) -> None:
    directory = DirectoryRoot(tree)
    as_gcompat = Process(directory, FactsCache(directory), target(), "ld-linux-x86-64.so.2")
    assert as_gcompat.load_library("ld-linux-x86-64.so.2", None) is as_gcompat.libc


def test_gcompat_stub_preloads_libgcompat_and_renames_the_loader(tree: Path, samples_dir: Path) -> None:
    place(samples_dir, tree, "/app/lib/libdep.so")
    result = run(tree, target(gcompat=CATALOG.gcompat))
    assert result.ldso_name == "ld-linux-x86-64.so.2"
    assert [o.path for o in result.objects][:2] == ["/app/bin/app", "/lib/libgcompat.so.0"]
    without = run(tree)
    assert without.ldso_name == "/lib64/ld-linux-x86-64.so.2"
    assert "/lib/libgcompat.so.0" not in [o.path for o in without.objects]


def test_runpath_replaces_rpath_and_other_dollar_tokens_void_it(tree: Path) -> None:  # DL:899-930
    facts = read_elf_file(tree / "app" / "bin" / "app")

    def rpath_of(rpath: str | None, runpath: str | None) -> str | None:  # of /opt/x/bin/prog
        return search_path(replace(facts, rpath=rpath, runpath=runpath), origin="/opt/x/bin")

    assert rpath_of("$ORIGIN/../lib:${ORIGIN}/plugins", None) == "/opt/x/bin/../lib:/opt/x/bin/plugins"
    assert rpath_of("/a", "/b") == "/b"
    assert rpath_of("$LIB/x", None) is None
    assert rpath_of("/plain", None) == "/plain"


@pytest.mark.parametrize(
    ("version", "name", "remaps"),
    [
        ("1.2.3", "fopen64", False),  # before 1.2.4 the names are real exports, no remap
        ("1.2.4", "fopen64", True),
        ("1.2.5", "readdir64_r", True),
        ("1.2.5", "posix_fallocate64", False),  # 17 characters do not fit get_lfs64's buffer
        ("1.2.6", "posix_fallocate64", True),
        ("1.2.5", "fcntl64", False),  # never in the list
        ("1.2.5", "__xstat64", True),
    ],
)
def test_lfs64_remap(version: str, name: str, remaps: bool, tree: Path) -> None:  # DL:348-376
    directory = DirectoryRoot(tree)
    loader = Process(directory, FactsCache(directory), target(version), "/lib/ld-musl-x86_64.so.1")
    assert (lfs64_base(name, CATALOG.loader_rules(version), loader.libc.exports) is not None) is remaps
