"""Issue 14, part 5, at the file level: the fix lines and findings the judge writes for one file, on synthetic
trees (tests/elf/elfbuilder.py). The component steps (``model.report.file_steps``) are built from the same facts,
so both are held to the same rules:

- a symbol that waits on a missing library is never blamed on musl;
- what ``apk add gcompat`` installs comes from gcompat's generated table (symbols/gcompat-1.1.0.json:
  ``loader_paths``, ``libc_links``): the glibc loader's name is gcompat's, never "ship a musl build";
- where a package is expected there is a package spec (a cited name, ``so:SONAME``), never free text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from muslcheck import Context, FileReport, Report, Verdict
from muslcheck.judging.packages import APK_BY_SONAME
from muslcheck.ldso.tables import Catalog
from muslcheck.model.report import Component
from tests.judging.test_judge_synthetic import MUSL_INTERP, judged, library, program, write

PLUGIN = "/app/lib/libplugin.so"
GLIBC_LOADER_PATH = Catalog().gcompat.loader_paths["x86_64"]  # /lib64/ld-linux-x86-64.so.2
GLIBC_LOADER = GLIBC_LOADER_PATH.rsplit("/", 1)[-1]


def component_of(report: Report, f: FileReport) -> Component:
    return next(c for c in report.components if f.path in c.files)


def every_fix_line(report: Report, f: FileReport) -> list[str]:
    """What a reader sees for the file: its fix lines, its findings' fixes, its component's steps."""
    steps = component_of(report, f).steps
    return [*f.fixes, *(x.fix or "" for x in f.findings), *(s.text for s in steps)]


def is_package_spec(package: str) -> bool:
    return package in APK_BY_SONAME.values() or package == "gcompat" or (
        package.startswith(("so:", "cmd:")) and " " not in package)


def test_a_symbol_waiting_on_an_unpackaged_library_is_not_blamed_on_musl(tmp_path: Path) -> None:
    # libsnappy-like: a soname no cited row names, so apk is asked for whichever package provides it
    write(tmp_path, PLUGIN, library("libplugin.so", needed=("libfoo.so.3", "libc.so"),
                                    uses=("foo_init", "no_such_function")))
    f, report = judged(tmp_path, PLUGIN, context=Context.DLOPEN_NOW)
    assert f.verdict is Verdict.BLOCKED  # the library is not there: the load fails on it
    assert {(s.name, s.pending_on) for s in f.unresolved_symbols} == {
        ("foo_init", "libfoo.so.3"), ("no_such_function", "libfoo.so.3")}  # unversioned: libfoo's to define
    assert [x.rule for x in f.findings] == ["missing-library"]
    lines = every_fix_line(report, f)
    assert not any("musl does not export" in line for line in lines)
    assert "apk add so:libfoo.so.3  (apk installs whichever package provides libfoo.so.3; no verified Alpine name)" \
        in f.fixes
    [finding] = f.findings
    assert finding.fix == "apk add so:libfoo.so.3"
    assert not any("ship a musl build" in line for line in lines)


def test_a_library_no_package_can_hold_gets_a_musl_build_and_its_symbols_still_wait_on_it(tmp_path: Path) -> None:
    # an auditwheel copy (hashed name) that is not in the tree: only a reinstall or a musl build brings it
    hashed = "libhelper-1a2b3c4d.so.1"
    write(tmp_path, PLUGIN, library("libplugin.so", needed=(hashed, "libc.so"), uses=("helper_call",)))
    f, report = judged(tmp_path, PLUGIN, context=Context.DLOPEN_NOW)
    assert f.verdict is Verdict.BLOCKED
    assert [(s.name, s.pending_on) for s in f.unresolved_symbols] == [("helper_call", hashed)]
    assert f.fixes == (f"ship a musl build of {hashed} (not in the tree, and no Alpine package holds it)",)
    assert not any("musl does not export" in line for line in every_fix_line(report, f))
    assert not any(line.startswith("apk add") for line in every_fix_line(report, f))


def test_a_symbol_musl_lacks_is_still_blamed_when_no_library_is_missing(tmp_path: Path) -> None:
    write(tmp_path, PLUGIN, library("libplugin.so", uses=("no_such_function",)))
    f, _ = judged(tmp_path, PLUGIN, context=Context.DLOPEN_NOW)
    assert f.verdict is Verdict.BLOCKED
    assert [s.pending_on for s in f.unresolved_symbols] == [None]
    assert "rebuild against musl: musl does not export no_such_function" in f.fixes


@pytest.mark.parametrize("loader", [GLIBC_LOADER, GLIBC_LOADER_PATH])
def test_the_glibc_loader_is_gcompats_and_never_a_musl_build(tmp_path: Path, loader: str) -> None:
    """gcompat's package puts its loader stub at the glibc interpreter path: a library that names it (by soname or
    by path) needs gcompat for it, and apk cannot be asked for a musl build of glibc's loader."""
    assert loader.rsplit("/", 1)[-1] in Catalog().gcompat.loader_paths["x86_64"]
    write(tmp_path, PLUGIN, library("libplugin.so", needed=(loader, "libfoo.so.3", "libc.so"), uses=("memcpy",)))
    f, report = judged(tmp_path, PLUGIN, context=Context.DLOPEN_NOW)
    assert f.verdict is Verdict.BLOCKED  # libfoo.so.3 is missing either way
    assert {lib.name: lib.package for lib in f.missing_libraries} == {loader: "gcompat", "libfoo.so.3": None}
    lines = every_fix_line(report, f)
    assert not any("ship a musl build" in line for line in lines)
    assert f"apk add gcompat  (its package provides {loader})" in f.fixes
    assert {x.subject: x.fix for x in f.findings} == {
        loader: "apk add gcompat", "libfoo.so.3": "apk add so:libfoo.so.3"}
    assert [s.action for s in component_of(report, f).steps] == ["so:libfoo.so.3", "gcompat"]


def test_a_glibc_loader_beside_a_rebuild_is_not_offered_gcompat_too(tmp_path: Path) -> None:
    """A musl build needs neither: one plan, not two (as the component steps decide)."""
    write(tmp_path, PLUGIN, library("libplugin.so", needed=(GLIBC_LOADER, "libc.so"), uses=("no_such_function",)))
    f, report = judged(tmp_path, PLUGIN, context=Context.DLOPEN_NOW)
    assert f.verdict is Verdict.BLOCKED
    assert "rebuild against musl: musl does not export no_such_function" in f.fixes
    assert not any(line.startswith(("apk add gcompat", "ship a musl build")) for line in f.fixes)
    assert not any(s.action == "gcompat" for s in component_of(report, f).steps)


def dpkg_owns(root: Path, package: str, *paths: str) -> None:
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    with status.open("a") as out:
        out.write(f"Package: {package}\nStatus: install ok installed\nVersion: 1.0\n\n")
    info = root / f"var/lib/dpkg/info/{package}.list"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text("".join(f"{p}\n" for p in paths))


@pytest.mark.parametrize(("soname", "package"), [("libdep.so.3", "so:libdep.so.3"), ("libz.so.1", "zlib")])
def test_a_replaced_os_package_library_gets_a_package_spec(tmp_path: Path, soname: str, package: str) -> None:
    """The OS package's file is replaced on Alpine: its cited Alpine name where there is one, else so:SONAME."""
    write(tmp_path, f"/usr/lib/{soname}", library(soname, exports=("dep_function",)))
    dpkg_owns(tmp_path, "libdep3", f"/usr/lib/{soname}")
    write(tmp_path, "/app/tool", program(MUSL_INTERP, needed=(soname, "libc.so"), uses=("dep_function",)))
    f, report = judged(tmp_path, "/app/tool")
    assert f.verdict is Verdict.NEEDS_PACKAGES
    [lib] = f.missing_libraries
    assert lib.package == package and is_package_spec(lib.package)
    assert lib.reason == "replaced on Alpine: owned by libdep3 1.0 (dpkg)"
    assert [s.pending_on for s in f.unresolved_symbols] == [soname]
    assert f.fixes[0].startswith(f"apk add {package}  (")
    assert [x.fix for x in f.findings] == [f"apk add {package}"]
    assert not any("the Alpine package that replaces" in line or line.startswith("install ")
                   for line in every_fix_line(report, f))
    assert [s.action for s in component_of(report, f).steps] == [package]
