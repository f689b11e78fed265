"""The load graph decides each library's context (issue 14, part 1), on synthetic ELF files (tests/elf/elfbuilder.py).

Roots are the executables, what a host loads by itself (here: CPython's extension modules) and the libraries no load
reaches; a library that a root loads is judged inside that load, with the loader's chain: the rpath of each object
up its ``needed_by`` chain, ``$ORIGIN``, and the libraries already loaded, found by name (shared/DESIGN.md §2, DL:1104-
1164). Archives are directories for the model (part 2): the same trees inside a wheel or a zip give the same verdicts.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from muslcheck import Context, FileReport, Report, ScanOptions, Verdict, scan
from muslcheck.judging import judge
from tests.elf.elfbuilder import ElfSpec, Sym
from tests.judging.test_judge_synthetic import MUSL_INTERP, library, write

SITE = "/app/venv/lib/python3.11/site-packages"
EXT = f"{SITE}/pkg/_ext.cpython-311-x86_64-linux-musl.so"
HELPER = f"{SITE}/pkg.libs/libhelper-1a2b.so.1"  # auditwheel's hashed sonames
UNWIND = f"{SITE}/pkg.libs/libgcc_s-3c4d.so.1"
UNREFERENCED = judge.UNREFERENCED


def extension(*, needed: tuple[str, ...], runpath: str | None, uses: tuple[str, ...] = ()) -> ElfSpec:
    """An extension module: it calls CPython (PyLong_FromLong, defined by the interpreter that imports it)."""
    spec = library("_ext.cpython-311-x86_64-linux-musl.so", needed=(*needed, "libc.so"),
                   uses=("PyLong_FromLong", *uses), runpath=runpath)
    spec.soname = None
    return spec


def program(*, needed: tuple[str, ...], runpath: str | None, uses: tuple[str, ...] = ()) -> ElfSpec:
    symbols = [Sym(n) for n in uses]
    return ElfSpec(interp=MUSL_INTERP, needed=[*needed, "libc.so"], runpath=runpath, symbols=symbols,
                   relocations=[("jmprel", 7, i + 1) for i in range(len(uses))])


def auditwheel_tree(root: Path, prefix: str = "") -> None:
    """A repaired wheel's layout: the module finds both vendored libraries through ``$ORIGIN/../pkg.libs``; the
    helper (no rpath of its own, like a vendored libstdc++) needs the unwinder, found there only by that search."""
    write(root, prefix + EXT, extension(needed=("libhelper-1a2b.so.1", "libgcc_s-3c4d.so.1"),
                                        runpath="$ORIGIN/../pkg.libs", uses=("helper_function",)))
    write(root, prefix + HELPER, library("libhelper-1a2b.so.1", needed=("libgcc_s-3c4d.so.1", "libc.so"),
                                         uses=("_Unwind_Resume",), exports=("helper_function",)))
    write(root, prefix + UNWIND, library("libgcc_s-3c4d.so.1", exports=("_Unwind_Resume",)))


def by_path(report: Report) -> dict[str, FileReport]:
    return {f.path: f for f in report.files}


def scanned(root: Path, **options: object) -> dict[str, FileReport]:
    return by_path(scan(root, ScanOptions(musl="1.2.5", jobs=1), **options))


def test_a_library_that_finds_its_dependency_only_through_its_loaders_origin_loads(tmp_path: Path) -> None:
    auditwheel_tree(tmp_path)
    files = scanned(tmp_path)
    helper, ext = files[HELPER], files[EXT]
    # Alone (each file in the context given: what muslcheck did before the load graph), the helper misses the
    # unwinder: nothing it searches holds it.
    alone = scanned(tmp_path, context=Context.DLOPEN_NOW)[HELPER]
    assert [m.name for m in alone.missing_libraries] == ["libgcc_s-3c4d.so.1"] and alone.verdict is Verdict.BLOCKED
    # In the tree, CPython imports the module; its load searches the module's RUNPATH for the helper's needs too.
    assert (ext.context, ext.verdict) == (Context.DLOPEN_NOW, Verdict.NATIVE)
    assert (helper.context, helper.verdict, helper.missing_libraries) == (Context.DLOPEN_NOW, Verdict.NATIVE, ())
    assert helper.notes[0] == f"loaded as a dependency: judged in the load of {EXT}"
    assert files[UNWIND].verdict is Verdict.NATIVE and UNREFERENCED not in files[UNWIND].notes
    [step] = [s for s in helper.load_order if s.name == "libgcc_s-3c4d.so.1"]
    assert step.found_by == f"RUNPATH of {EXT}"
    assert scan(tmp_path, ScanOptions(musl="1.2.5", jobs=1)).verdict is Verdict.NATIVE


def two_roots_tree(root: Path, roots: str) -> tuple[str, str, str]:
    """``libdep.so.1`` needs ``libextra.so.1``, which only the first root's RUNPATH reaches. The roots are two
    programs, or two plugins that nothing loads (each a root of its own: it may be dlopen-ed by name)."""
    write(root, "/app/lib/libdep.so.1", library("libdep.so.1", needed=("libextra.so.1", "libc.so"),
                                                 uses=("extra_function",), exports=("dep_function",)))
    write(root, "/app/extra/libextra.so.1", library("libextra.so.1", exports=("extra_function",)))
    suffix = ".so" if roots == "plugins" else ""
    for path, runpath in ((good := f"/app/{roots}/a-good{suffix}", "$ORIGIN/../lib:$ORIGIN/../extra"),
                          (bad := f"/app/{roots}/b-bad{suffix}", "$ORIGIN/../lib")):
        if roots == "programs":
            write(root, path, program(needed=("libdep.so.1",), runpath=runpath, uses=("dep_function",)))
        else:
            write(root, path, library("plugin.so", needed=("libdep.so.1", "libc.so"), uses=("dep_function",),
                                      runpath=runpath))
    return good, bad, "/app/lib/libdep.so.1"


@pytest.mark.parametrize("roots", ["programs", "plugins"])
def test_a_library_reached_by_two_roots_takes_the_worse_load_and_names_its_root(tmp_path: Path, roots: str) -> None:
    good, bad, dep = two_roots_tree(tmp_path, roots)
    files = scanned(tmp_path)
    assert files[good].verdict is Verdict.NATIVE
    assert files[bad].verdict is Verdict.BLOCKED  # a root's own load holds its libraries' problems too
    lib = files[dep]
    assert lib.verdict is Verdict.BLOCKED
    assert lib.context is (Context.STARTUP_LIBRARY if roots == "programs" else Context.DLOPEN_NOW)
    # named as musl opened it: the root's RUNPATH entry, not normalised
    opened = f"/app/{roots}/../lib/libdep.so.1"
    assert [(m.name, m.needed_by) for m in lib.missing_libraries] == [("libextra.so.1", opened)]
    assert lib.notes[0] == (f"loaded as a dependency: judged in the load of {bad}, the first with the worst verdict "
                            "of the 2 loads in the tree that reach it")
    # extra_function waits on the missing libextra.so.1: listed, but no finding of musl's
    assert [(s.name, s.pending_on) for s in lib.unresolved_symbols] == [("extra_function", "libextra.so.1")]
    assert {f.rule for f in lib.findings} == {"missing-library"}
    assert all(f.message.endswith(f"(in the load of {bad})") for f in lib.findings)
    # The library that only the good root reaches is judged in that load.
    assert files["/app/extra/libextra.so.1"].notes[0] == f"loaded as a dependency: judged in the load of {good}"
    if roots == "plugins":
        assert UNREFERENCED in files[good].notes and UNREFERENCED in files[bad].notes


def test_a_library_nothing_loads_is_judged_alone_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, "/app/lib/libplugin.so", library("libplugin.so", uses=("no_such_function",)))
    plugin = scanned(tmp_path)["/app/lib/libplugin.so"]
    assert (plugin.context, plugin.verdict) == (Context.DLOPEN_NOW, Verdict.BLOCKED)
    assert plugin.notes[0] == "not referenced in the tree: it may be dlopen-ed by name at run time"


def test_a_library_named_by_a_program_that_does_not_find_it_is_still_judged(tmp_path: Path) -> None:
    # The program needs libgone.so.1 and searches only the default path: the file in /opt is never loaded.
    write(tmp_path, "/app/bin/tool", program(needed=("libgone.so.1",), runpath=None, uses=("gone_function",)))
    write(tmp_path, "/opt/elsewhere/libgone.so.1", library("libgone.so.1", uses=("no_such_function",),
                                                            exports=("gone_function",)))
    files = scanned(tmp_path)
    assert [m.name for m in files["/app/bin/tool"].missing_libraries] == ["libgone.so.1"]
    gone = files["/opt/elsewhere/libgone.so.1"]
    assert (gone.context, gone.verdict) == (Context.DLOPEN_NOW, Verdict.BLOCKED)
    assert UNREFERENCED in gone.notes
    assert [s.name for s in gone.unresolved_symbols] == ["no_such_function"]


def test_a_library_shadowed_by_one_already_loaded_under_its_name_is_judged_alone(tmp_path: Path) -> None:
    """libuser.so, alone, finds /app/second/libname.so through its own RUNPATH. In the only real load, the plugin's,
    libname.so is already loaded (from /app/first) when libuser.so asks for it: musl takes that one (DL:1110)."""
    write(tmp_path, "/app/plugin.so", library("plugin.so", needed=("libname.so", "libuser.so", "libc.so"),
                                              runpath="$ORIGIN/first"))
    write(tmp_path, "/app/first/libname.so", library("libname.so", exports=("name_function",)))
    write(tmp_path, "/app/first/libuser.so", library("libuser.so", needed=("libname.so", "libc.so"),
                                                     uses=("name_function",), runpath="$ORIGIN/../second"))
    write(tmp_path, "/app/second/libname.so", library("libname.so", uses=("second_only",)))
    files = scanned(tmp_path)
    user = files["/app/first/libuser.so"]
    assert user.notes[0] == "loaded as a dependency: judged in the load of /app/plugin.so"
    assert [s.path for s in user.load_order if s.name == "libname.so"] == ["/app/first/libname.so"]
    shadowed = files["/app/second/libname.so"]
    assert UNREFERENCED in shadowed.notes and shadowed.verdict is Verdict.BLOCKED
    assert files["/app/plugin.so"].verdict is Verdict.NATIVE


def test_of_libraries_that_load_each_other_and_nothing_else_the_first_is_the_root(tmp_path: Path) -> None:
    write(tmp_path, "/app/lib/liba.so", library("liba.so", needed=("libb.so", "libc.so"), runpath="$ORIGIN",
                                                uses=("b_function",), exports=("a_function",)))
    write(tmp_path, "/app/lib/libb.so", library("libb.so", needed=("liba.so", "libc.so"), runpath="$ORIGIN",
                                                uses=("a_function", "no_such_function"), exports=("b_function",)))
    files = scanned(tmp_path)
    assert UNREFERENCED in files["/app/lib/liba.so"].notes
    b = files["/app/lib/libb.so"]
    assert b.notes[0] == "loaded as a dependency: judged in the load of /app/lib/liba.so"
    assert [s.name for s in b.unresolved_symbols] == ["no_such_function"] and b.verdict is Verdict.BLOCKED


def wheel(root: Path, name: str) -> Path:
    """The tree under ``root`` (site-packages contents), zipped as a wheel or a zip."""
    tree = root / SITE.lstrip("/")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                z.writestr(str(path.relative_to(tree)), path.read_bytes())
    target = root.parent / name
    target.write_bytes(out.getvalue())
    return target


def test_a_wheel_scanned_directly_is_a_tree_its_origin_resolves_in(tmp_path: Path) -> None:
    auditwheel_tree(tmp_path / "src")
    whl = wheel(tmp_path / "src", "pkg-1.0-cp311-cp311-musllinux_1_2_x86_64.whl")
    report = scan(whl, ScanOptions(musl="1.2.5", jobs=1))
    files = by_path(report)
    location = f"{whl.resolve().as_posix()}!"  # a lone archive keeps its whole path
    ext, helper = files[f"{location}/pkg/_ext.cpython-311-x86_64-linux-musl.so"], files[f"{location}/pkg.libs/"
                                                                                         "libhelper-1a2b.so.1"]
    assert ext.missing_libraries == () and ext.verdict is Verdict.NATIVE
    [step] = [s for s in ext.load_order if s.name == "libhelper-1a2b.so.1"]
    assert step.path == f"{location}/pkg/../pkg.libs/libhelper-1a2b.so.1"  # as musl opens it: not normalised
    assert helper.verdict is Verdict.NATIVE and helper.notes[0].endswith(f"in the load of {ext.path}")
    assert report.verdict is Verdict.NATIVE


@pytest.mark.parametrize("name", ["plugins.zip", "pkg-1.0-py3-none-any.whl"])
def test_two_roots_inside_an_archive_and_their_dependency(tmp_path: Path, name: str) -> None:
    src = tmp_path / "src"
    two_roots_tree(src / SITE.lstrip("/"), "plugins")
    archive = wheel(src, name)
    files = by_path(scan(archive, ScanOptions(musl="1.2.5", jobs=1)))
    at = archive.resolve().as_posix()  # a lone archive keeps its whole path
    bad, dep = f"{at}!/app/plugins/b-bad.so", f"{at}!/app/lib/libdep.so.1"
    assert files[f"{at}!/app/plugins/a-good.so"].verdict is Verdict.NATIVE
    assert files[bad].verdict is Verdict.BLOCKED
    assert files[dep].verdict is Verdict.BLOCKED and files[dep].findings[0].message.endswith(f"(in the load of {bad})")


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_graph_does_not_depend_on_the_workers(tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "PARALLEL_MIN_FILES", 1)
    auditwheel_tree(tmp_path)
    two_roots_tree(tmp_path / "programs", "programs")
    two_roots_tree(tmp_path / "plugins", "plugins")
    write(tmp_path, "/app/lib/libplugin.so", library("libplugin.so", uses=("no_such_function",)))
    one = scan(tmp_path, ScanOptions(musl="1.2.5", jobs=1))
    many = scan(tmp_path, ScanOptions(musl="1.2.5", jobs=jobs))
    assert len(one.files) == 12
    assert one.to_json_bytes() == many.to_json_bytes()
