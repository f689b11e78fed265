"""The oracle itself: the loader-output parser, and the real musl loaders' verdicts on the samples.

No muslcheck code is involved. The expectations below were checked by hand against the real
loaders (see samples/README.md); the sample table doubles as evidence for the model.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from muslcheck.ldso.tables import version_key
from tests.oracle.dlopen import run_dlopen
from tests.oracle.ldd import LoaderReport, parse_loader_output, run_list
from tests.oracle.loaders import EXPECTED_VERSIONS, REQUIRED_VERSIONS

# ---------------------------------------------------------------------------------------------
# parse_loader_output on literal text (DESIGN §2 "Messages")

LDD_TEXT = """\
\t/lib64/ld-linux-x86-64.so.2 (0x7f9340cec000)
\tlibifunc.so => /s/app/bin/../lib/libifunc.so (0x7fe54eebe000)
Error loading shared library libdep.so: No such file or directory (needed by /s/app/bin/app)
\tlibc.so.6 => /lib64/ld-linux-x86-64.so.2 (0x7f9340cec000)
Error relocating /s/app/bin/../lib/libifunc.so: unsupported relocation type 37
Error relocating /s/app/bin/../lib/libifunc.so: unsupported relocation type 37
Error relocating /s/app/bin/app: ifunc_add: symbol not found
Error relocating /s/app/bin/app: __memcpy_chk: symbol not found
"""


CXX = "libstdc++.so.6"
RELRO = "Error relocating /l/x.so: RELRO protection failed: Permission denied"


def test_parse_ldd_listing() -> None:
    r = parse_loader_output(LDD_TEXT)
    assert r.loader_name == "/lib64/ld-linux-x86-64.so.2"
    assert r.loaded == (("libifunc.so", "/s/app/bin/../lib/libifunc.so"),
                        ("libc.so.6", "/lib64/ld-linux-x86-64.so.2"))
    assert r.missing_libraries == {("libdep.so", "/s/app/bin/app")}
    assert r.library_errors == {("libdep.so", "/s/app/bin/app", "No such file or directory")}
    assert r.unresolved_symbols == {("/s/app/bin/app", "ifunc_add"), ("/s/app/bin/app", "__memcpy_chk")}
    assert r.unresolved_in("/app") == {"ifunc_add", "__memcpy_chk"}
    assert r.unsupported_relocations == {("/s/app/bin/../lib/libifunc.so", 37)}
    assert r.unsupported_relocation_counts == ((("/s/app/bin/../lib/libifunc.so", 37), 2),)
    assert r.tls_errors == frozenset() and r.other_errors == ()
    assert not r.clean


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("Error relocating /a b/x.so: _ZdlPvm: symbol not found",
                 LoaderReport(unresolved_symbols=frozenset({("/a b/x.so", "_ZdlPvm")})), id="symbol"),
    pytest.param("Error relocating /l/t.so: tls_counter: initial-exec TLS resolves to dynamic definition in "
                 "/l/t.so", LoaderReport(tls_errors=frozenset({("/l/t.so", "tls_counter", "/l/t.so")})),
                 id="ie-tls"),
    pytest.param("Error relocating /l/x.so: unsupported relocation type 1032",
                 LoaderReport(unsupported_relocations=frozenset({("/l/x.so", 1032)}),
                              unsupported_relocation_counts=((("/l/x.so", 1032), 1),)), id="reloc"),
    pytest.param("Error loading shared library libstdc++.so.6: No error information (needed by /l/c.so)",
                 LoaderReport(missing_libraries=frozenset({(CXX, "/l/c.so")}),
                              library_errors=frozenset({(CXX, "/l/c.so", "No error information")})),
                 id="needed"),
    pytest.param("Error loading shared library /l/gone.so: No such file or directory",  # dlopen's own form
                 LoaderReport(missing_libraries=frozenset({("/l/gone.so", "")}),
                              library_errors=frozenset({("/l/gone.so", "", "No such file or directory")})),
                 id="dlopen-missing"),
    pytest.param(RELRO, LoaderReport(other_errors=(RELRO,)), id="other"),
    pytest.param("\t/tmp/o/lib/ld-musl-x86_64.so.1 (0x7f5cd9c99000)\n",
                 LoaderReport(loader_name="/tmp/o/lib/ld-musl-x86_64.so.1"), id="self"),
    pytest.param("", LoaderReport(), id="empty"),
])
def test_parse_each_message(line: str, expected: LoaderReport) -> None:
    assert parse_loader_output(line) == expected


# ---------------------------------------------------------------------------------------------
# The real loaders

Version = tuple[int, ...]


@pytest.fixture(params=EXPECTED_VERSIONS)
def musl(request: pytest.FixtureRequest, musl_loaders: dict[str, Path]) -> tuple[Version, Path]:
    if request.param not in musl_loaders:
        pytest.skip(f"musl {request.param} not available (have {', '.join(musl_loaders)})")
    return version_key(request.param), musl_loaders[request.param]


@pytest.mark.oracle
def test_required_loaders_present(musl_loaders: dict[str, Path]) -> None:
    if missing := set(REQUIRED_VERSIONS) - set(musl_loaders):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"missing musl loaders {sorted(missing)}")
        pytest.skip(f"missing musl loaders {sorted(missing)}")


def _never(v: Version) -> set[str]:
    return set()


def _always(*tokens: str) -> Callable[[Version], set[str]]:
    return lambda v: set(tokens)


def _when(cond: Callable[[Version], bool], *tokens: str) -> Callable[[Version], set[str]]:
    return lambda v: set(tokens) if cond(v) else set()


GLIBC_ONLY = "gnu_get_libc_version"
# `--list ENTRY`: the errors the loader prints, as tokens: "missing NAME", "FILE: SYMBOL",
# "FILE: reloc TYPE", "FILE: IE TLS SYMBOL" (FILE is a base name).
LIST_EXPECT: dict[str, Callable[[Version], set[str]]] = {
    "hello": _never,
    "hello-musl": _never,
    "musl-lib": _never,
    "fortify": _always("fortify: __memcpy_chk", "fortify: __sprintf_chk", "fortify: __printf_chk"),
    "glibc-backtrace": _always("backtrace: backtrace"),
    "glibc-error": _always("error: error"),
    "glibc-version": _always(f"version: {GLIBC_ONLY}"),
    "glibc-atfork": _always("atfork: __register_atfork"),
    "glibc-qsort-r": _when(lambda v: v < (1, 2, 3), "qsort-r: qsort_r"),
    "glibc-statx": _when(lambda v: v < (1, 2, 5), "statx: statx"),
    # 1.2.2/1.2.3 export the *64 names; 1.2.4+ remap them, but posix_fallocate64 only from 1.2.6 (53ac44ff)
    "lfs64-fob": _when(lambda v: (1, 2, 4) <= v < (1, 2, 6), "lfs64-fob: posix_fallocate64"),
    "lfs64-explicit": _when(lambda v: (1, 2, 4) <= v < (1, 2, 6), "lfs64-explicit: posix_fallocate64"),
    "weak-undef": _never,
    "rpath-origin": _never,
    "runpath-origin": _never,
    "rpath-chain": _never,
    "runpath-chain": _never,  # glibc fails this one: it does not inherit RUNPATH
    "missing-dep": _always("missing libdep.so", "app: greet_value"),
    "ifunc": _always("app: ifunc_add", "libifunc.so: reloc 37"),
    "ie-tls": _never,
    "relr": _never,  # <= 1.2.3 silently ignores DT_RELR: see the dlopen test
    "copy-reloc": _never,
    "reloc-plt": _always(f"libplt.so: {GLIBC_ONLY}"),
    "reloc-plt-now": _always(f"libpltnow.so: {GLIBC_ONLY}"),
    "reloc-got": _always(f"libgot.so: {GLIBC_ONLY}"),
    "reloc-abs64": _always(f"libabs64.so: {GLIBC_ONLY}"),
    "cxx": _always("missing libstdc++.so.6"),  # plus compiler-dependent C++ symbols, not compared
    "gcc-s": _always("missing libgcc_s.so.1", "libgccs.so: _Unwind_Backtrace"),
    "no-libc-needed": _always("libnolibc.so: strlen"),  # nothing names libc, so it is not searched
    # With no JVM or CPython around them (tests/test_hosts_oracle.py loads them into one):
    "jni": _always("libdemojni.so: __memcpy_chk", "libdemojni.so: __snprintf_chk",
                   "libdemojni.so: JNI_GetCreatedJavaVMs"),
    "py-ext": _always("demo.so: PyLong_FromLong"),
}
ONLY_MISSING = {"cxx"}


def tokens(r: LoaderReport) -> set[str]:
    def base(p: str) -> str:
        return Path(p).name

    return ({f"missing {n}" for n, _ in r.missing_libraries}
            | {f"{base(f)}: {s}" for f, s in r.unresolved_symbols}
            | {f"{base(f)}: reloc {t}" for f, t in r.unsupported_relocations}
            | {f"{base(f)}: IE TLS {s}" for f, s, _ in r.tls_errors}
            | set(r.other_errors))


def test_every_sample_has_an_expectation(samples_manifest: dict[str, Any]) -> None:
    assert {s["name"] for s in samples_manifest["samples"]} == set(LIST_EXPECT)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(LIST_EXPECT))
def test_list_sample(name: str, musl: tuple[Version, Path], samples_dir: Path,
                     samples_manifest: dict[str, Any]) -> None:
    v, loader = musl
    sample = next(s for s in samples_manifest["samples"] if s["name"] == name)
    rc, report, raw = run_list(loader, samples_dir / name / sample["entry"])
    got = tokens(report)
    if name in ONLY_MISSING:
        got = {t for t in got if t.startswith("missing ")}
    expected = LIST_EXPECT[name](v)
    assert got == expected, raw
    assert rc == (127 if report.missing_libraries or expected else 0), raw


NOT_FOUND = f"{GLIBC_ONLY}: symbol not found"
IE_TLS = "tls_counter: initial-exec TLS resolves to dynamic definition in"
# (sample, mode) -> None when dlopen succeeds, else a substring of the error.
DLOPEN_EXPECT: dict[tuple[str, str], Callable[[Version], str | None]] = {
    ("ifunc", "lazy"): lambda v: "unsupported relocation type 37",
    ("ifunc", "now"): lambda v: "unsupported relocation type 37",
    ("ie-tls", "lazy"): lambda v: IE_TLS,
    ("ie-tls", "now"): lambda v: IE_TLS,
    ("relr", "lazy"): lambda v: "killed by SIGSEGV" if v < (1, 2, 4) else None,
    ("relr", "now"): lambda v: "killed by SIGSEGV" if v < (1, 2, 4) else None,
    ("reloc-plt", "lazy"): lambda v: None,  # latent: JUMP_SLOT is deferred, crashes on first call
    ("reloc-plt", "now"): lambda v: NOT_FOUND,
    ("reloc-plt-now", "lazy"): lambda v: NOT_FOUND,  # DF_BIND_NOW overrides RTLD_LAZY
    ("reloc-plt-now", "now"): lambda v: NOT_FOUND,
    ("reloc-got", "lazy"): lambda v: None,  # GLOB_DAT is deferred too
    ("reloc-got", "now"): lambda v: NOT_FOUND,
    ("reloc-abs64", "lazy"): lambda v: NOT_FOUND,  # R_X86_64_64 is never deferred
    ("reloc-abs64", "now"): lambda v: NOT_FOUND,
    ("no-libc-needed", "lazy"): lambda v: None,  # the process's libc is already in the global chain
    ("no-libc-needed", "now"): lambda v: None,
}


def test_every_dlopen_sample_has_an_expectation(samples_manifest: dict[str, Any]) -> None:
    declared = {(s["name"], m) for s in samples_manifest["samples"] if s["dlopen"] for m in ("lazy", "now")}
    assert declared == set(DLOPEN_EXPECT)


@pytest.mark.oracle
@pytest.mark.parametrize(("name", "mode"), sorted(DLOPEN_EXPECT))
def test_dlopen_sample(name: str, mode: str, musl: tuple[Version, Path], samples_dir: Path,
                       samples_manifest: dict[str, Any]) -> None:
    v, loader = musl
    (lib,) = next(s for s in samples_manifest["samples"] if s["name"] == name)["dlopen"]
    result = run_dlopen(loader, samples_dir / samples_manifest["harness"], samples_dir / name / lib,
                        mode)
    expected = DLOPEN_EXPECT[name, mode](v)
    if expected is None:
        assert result.ok, result
    else:
        assert not result.ok and expected in (result.error or ""), result


@pytest.mark.oracle
def test_lfs64_names_exported_only_before_1_2_4(musl: tuple[Version, Path]) -> None:
    """fopen64 resolves on <= 1.2.3 through an export, on >= 1.2.4 through the loader's remap."""
    v, loader = musl
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(loader)], capture_output=True, text=True,
                         check=True).stdout
    exported = {f[7] for f in (line.split() for line in out.splitlines()) if len(f) >= 8 and f[6] != "UND"}
    assert ("fopen64" in exported) == (v < (1, 2, 4))
    assert "fopen" in exported


# ---------------------------------------------------------------------------------------------
# The sandbox: the path file is exactly what the test says, never the host's


@pytest.mark.oracle
def test_path_file_controls_search(musl: tuple[Version, Path], samples_dir: Path) -> None:
    _, loader = musl
    app = samples_dir / "missing-dep/app/bin/app"  # PT_INTERP: the path file is /etc/ld-musl-x86_64.path
    lib_dir = str(samples_dir / "rpath-origin/app/lib")  # holds a libdep.so
    assert run_list(loader, app)[1].missing_libraries == {("libdep.so", str(app))}
    rc, report, raw = run_list(loader, app, path_file=f"/nonexistent\n{lib_dir}\n")
    assert rc == 0 and report.loaded[0] == ("libdep.so", f"{lib_dir}/libdep.so"), raw
    rc, report, raw = run_list(loader, app, env_library_path=lib_dir)
    assert rc == 0 and report.clean, raw


@pytest.mark.oracle
def test_path_file_for_a_library(musl: tuple[Version, Path], samples_dir: Path) -> None:
    """No PT_INTERP: the path file is found relative to the loader's own name."""
    _, loader = musl
    lib_dir = samples_dir / "rpath-chain/app/lib"
    rc, report, _ = run_list(loader, lib_dir / "libchaina.so")
    assert rc == 127 and ("libchainb.so", str(lib_dir / "libchaina.so")) in report.missing_libraries
    rc, report, raw = run_list(loader, lib_dir / "libchaina.so", path_file=str(lib_dir))
    assert rc == 0 and report.clean, raw


@pytest.mark.oracle
def test_glibc_names_map_to_the_loader(musl: tuple[Version, Path], samples_dir: Path) -> None:
    _, loader = musl
    rc, report, raw = run_list(loader, samples_dir / "hello/app/bin/hello")
    assert rc == 0 and report.clean, raw
    assert report.loader_name == "/lib64/ld-linux-x86-64.so.2"
    assert report.loaded == (("libc.so.6", "/lib64/ld-linux-x86-64.so.2"),)
