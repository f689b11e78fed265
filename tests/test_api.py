"""The library API, ``muslcheck.scan``, on the samples.

Each expectation is reasoned from samples/README.md (what the real musl loaders printed for the
sample) and from the README's definition of the verdicts, not copied from a muslcheck run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import muslcheck
from muslcheck import Context, FileReport, Report, Verdict, scan
from muslcheck.model.report import SymbolFinding


def file_report(report: Report, path: str) -> FileReport:
    by_path = {f.path: f for f in report.files}
    assert path in by_path, f"{path} not judged; judged: {sorted(by_path)}"
    return by_path[path]


def unresolved(f: FileReport) -> dict[str, SymbolFinding]:
    return {s.name: s for s in f.unresolved_symbols}


def has_fix(f: FileReport, *words: str) -> bool:
    return any(all(w in fix for w in words) for fix in f.fixes)


# ---------------------------------------------------------------------------------------------
# gcompat


def test_fortify_needs_gcompat(samples_dir: Path) -> None:
    # glibc interpreter + __memcpy_chk/__printf_chk/__sprintf_chk: "symbol not found" on every musl,
    # and gcompat provides all three (and the interpreter path).
    report = scan(samples_dir / "fortify")
    assert report.verdict is Verdict.NEEDS_GCOMPAT
    exe = file_report(report, "/app/bin/fortify")
    assert exe.verdict is Verdict.NEEDS_GCOMPAT
    assert exe.context == Context.EXECUTABLE.value
    symbols = unresolved(exe)
    for name in ("__memcpy_chk", "__printf_chk", "__sprintf_chk"):
        assert name in symbols, sorted(symbols)
        assert symbols[name].gcompat is True
        assert symbols[name].fatal is True  # start-up binds everything: ld-musl exits 127
    assert exe.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert has_fix(exe, "apk add gcompat")


def test_fortify_with_gcompat_installed(samples_dir: Path) -> None:
    report = scan(samples_dir / "fortify", gcompat=True)
    exe = file_report(report, "/app/bin/fortify")
    assert report.target.gcompat is True
    # gcompat resolves every missing symbol, so nothing is left unresolved ...
    assert exe.unresolved_symbols == ()
    # ... but the file still depends on gcompat: uninstalling it would break the program.
    assert exe.verdict is Verdict.NEEDS_GCOMPAT


def test_fortify_with_gcompat_installed_resolves_everything(samples_dir: Path) -> None:
    # The part of the gcompat behaviour that does hold today: the shown load is the one with gcompat.
    exe = file_report(scan(samples_dir / "fortify", gcompat=True), "/app/bin/fortify")
    assert exe.unresolved_symbols == ()
    assert exe.verdict is not Verdict.BLOCKED


# ---------------------------------------------------------------------------------------------
# load contexts: TLS, RELR, lazy binding


def test_ie_tls_library_under_dlopen_is_blocked(samples_dir: Path) -> None:
    # libtls.so uses initial-exec TLS (R_X86_64_TPOFF64 tls_counter) for its own variable: fine at
    # start-up, but dlopen fails ("initial-exec TLS resolves to dynamic definition").
    lib = samples_dir / "ie-tls" / "app" / "lib" / "libtls.so"
    alone = scan(lib, context="dlopen-now")
    whole = lib.resolve().as_posix()  # a lone file keeps its whole path
    f = file_report(alone, whole)
    assert f.verdict is Verdict.BLOCKED
    assert f.context == "dlopen-now"
    assert [(t.symbol, t.file, t.definer) for t in f.tls_errors] == [("tls_counter", whole, whole)]
    assert has_fix(f, "global-dynamic")

    in_tree = scan(samples_dir / "ie-tls", context=Context.DLOPEN_NOW)
    f = file_report(in_tree, "/app/lib/libtls.so")
    assert f.verdict is Verdict.BLOCKED
    assert [t.symbol for t in f.tls_errors] == ["tls_counter"]


def test_ie_tls_library_at_startup_is_fine(samples_dir: Path) -> None:
    # Loaded by the executable at start-up, initial-exec TLS is allowed (README: "OK" for ie-tls).
    f = file_report(scan(samples_dir / "ie-tls"), "/app/lib/libtls.so")
    assert f.context == "startup-library"
    assert f.tls_errors == ()
    assert f.verdict is not Verdict.BLOCKED


def test_relr_before_and_after_musl_1_2_4(samples_dir: Path) -> None:
    # musl < 1.2.4 ignores DT_RELR: the relative relocations are never applied (SIGSEGV under dlopen).
    old = file_report(scan(samples_dir / "relr", musl="1.2.3"), "/app/lib/librelr.so")
    assert old.verdict is Verdict.BLOCKED
    assert has_fix(old, "DT_RELR")
    assert has_fix(old, "1.2.4")
    new = file_report(scan(samples_dir / "relr", musl="1.2.4"), "/app/lib/librelr.so")
    assert not has_fix(new, "DT_RELR")
    assert not any("DT_RELR" in n for n in new.notes)
    # librelr calls no libc function and has no other problem: with RELR supported it is native.
    assert new.verdict is Verdict.NATIVE


def test_reloc_plt_latent_under_lazy_fatal_under_now(samples_dir: Path) -> None:
    # gnu_get_libc_version is reached through a JUMP_SLOT only: dlopen(RTLD_LAZY) loads (latent
    # crash on first call), dlopen(RTLD_NOW) fails with "symbol not found".
    lib = "/app/lib/libplt.so"
    lazy = unresolved(file_report(scan(samples_dir / "reloc-plt", context="dlopen-lazy"), lib))
    sym = lazy["gnu_get_libc_version"]
    assert sym.effect == "latent"
    assert sym.fatal is False
    assert sym.relocations == ("R_X86_64_JUMP_SLOT",)

    now = unresolved(file_report(scan(samples_dir / "reloc-plt", context="dlopen-now"), lib))
    assert now["gnu_get_libc_version"].effect == "fatal"
    assert now["gnu_get_libc_version"].fatal is True


def test_unknown_context_is_a_usage_error(samples_dir: Path) -> None:
    with pytest.raises(muslcheck.UsageError, match="context"):
        scan(samples_dir / "reloc-plt", context="dlopen-sometimes")


# ---------------------------------------------------------------------------------------------
# version-dependent symbols


def test_lfs64_explicit_by_musl_version(samples_dir: Path) -> None:
    exe = "/app/bin/lfs64-explicit"

    def names(version: str) -> set[str]:
        return set(unresolved(file_report(scan(samples_dir / "lfs64-explicit", musl=version), exe)))

    # 1.2.3: the *64 names are still real exports of libc.so.
    assert "posix_fallocate64" not in names("1.2.3")
    # 1.2.5: exports removed, the loader's LFS64 remap exists but its name buffer is too short
    # for the 17 characters of "posix_fallocate64": symbol not found.
    v125 = names("1.2.5")
    assert "posix_fallocate64" in v125
    assert v125.isdisjoint({"fopen64", "lseek64", "stat64"})  # these are remapped
    # 1.2.6 (musl commit 53ac44ff) accepts 17 characters.
    assert "posix_fallocate64" not in names("1.2.6")


def test_statx_by_musl_version(samples_dir: Path) -> None:
    # statx was added to musl in 1.2.5.
    exe = "/app/bin/statx"
    old = file_report(scan(samples_dir / "glibc-statx", musl="1.2.4"), exe)
    assert "statx" in unresolved(old)
    assert old.verdict is Verdict.BLOCKED  # gcompat does not provide statx either
    new = file_report(scan(samples_dir / "glibc-statx", musl="1.2.5"), exe)
    assert "statx" not in unresolved(new)


def test_alpine_release_maps_to_musl(samples_dir: Path) -> None:
    report = scan(samples_dir / "hello-musl", alpine="3.18")
    assert report.target.alpine == "3.18"
    assert report.target.musl == "1.2.4"
    assert scan(samples_dir / "hello-musl", musl="1.2.4").target.alpine is None


# ---------------------------------------------------------------------------------------------
# libraries: search paths, missing ones, packages


@pytest.mark.parametrize("sample", ["rpath-chain", "runpath-chain"])
def test_chain_finds_every_library(samples_dir: Path, sample: str) -> None:
    # exe (RPATH/RUNPATH $ORIGIN/../lib) -> libchaina (no rpath) -> libchainb: musl loads both
    # (it searches the requesting chain's rpaths; glibc would fail the RUNPATH case).
    report = scan(samples_dir / sample)
    exe = file_report(report, "/app/bin/app")
    assert exe.missing_libraries == ()
    found = {step.name: step.path for step in exe.load_order}
    assert found.get("libchaina.so", "").endswith("/libchaina.so")
    assert found.get("libchainb.so", "").endswith("/libchainb.so")
    assert all(f.missing_libraries == () for f in report.files)


def test_missing_dep(samples_dir: Path) -> None:
    exe = file_report(scan(samples_dir / "missing-dep"), "/app/bin/app")
    assert [(m.name, m.needed_by) for m in exe.missing_libraries] == [("libdep.so", "/app/bin/app")]
    assert exe.missing_libraries[0].package is None  # not an Alpine package
    assert exe.verdict is Verdict.BLOCKED
    assert "greet_value" in unresolved(exe)


def test_cxx_needs_libstdcxx_package(samples_dir: Path) -> None:
    report = scan(samples_dir / "cxx")
    assert report.verdict is Verdict.NEEDS_PACKAGES
    lib = file_report(report, "/app/lib/libcxx.so")
    assert lib.verdict is Verdict.NEEDS_PACKAGES
    assert [(m.name, m.package) for m in lib.missing_libraries] == [("libstdc++.so.6", "libstdc++")]
    symbols = lib.unresolved_symbols
    cxx_symbols = [s for s in symbols if s.name.startswith("_Z")]
    assert len(cxx_symbols) == 3  # README: "3 C++ symbols not found"
    assert all(s.pending_on == "libstdc++.so.6" for s in cxx_symbols)
    assert has_fix(lib, "apk add libstdc++")


def test_wrong_architecture_library_blocks_the_executable(samples_dir: Path, tmp_path: Path) -> None:
    # musl's map_library never checks e_machine; muslcheck must flag a foreign library anyway.
    tree = tmp_path / "tree"
    shutil.copytree(samples_dir / "rpath-origin", tree, symlinks=True)
    dep = tree / "app" / "lib" / "libdep.so"
    data = bytearray(dep.read_bytes())
    assert int.from_bytes(data[18:20], "little") == 62  # EM_X86_64
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    dep.write_bytes(bytes(data))

    baseline = file_report(scan(samples_dir / "rpath-origin"), "/app/bin/app")
    assert baseline.verdict is not Verdict.BLOCKED  # README: rpath-origin loads on every musl

    report = scan(tree)
    assert file_report(report, "/app/lib/libdep.so").arch == "aarch64"
    exe = file_report(report, "/app/bin/app")
    assert exe.arch == "x86_64"
    assert exe.verdict is Verdict.BLOCKED
    mentioned = " ".join(exe.fixes + exe.notes)
    assert "libdep.so" in mentioned and "aarch64" in mentioned


# ---------------------------------------------------------------------------------------------
# the Report object


def test_report_is_frozen(samples_dir: Path) -> None:
    report = scan(samples_dir / "hello-musl")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.verdict = Verdict.BLOCKED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.files[0].verdict = Verdict.BLOCKED  # type: ignore[misc]
    assert isinstance(report.files, tuple)  # not a list that could be mutated in place


def test_to_json_is_deterministic(samples_dir: Path) -> None:
    first = scan(samples_dir).to_json()
    second = scan(samples_dir).to_json()
    assert first == second
    doc = json.loads(first)
    paths = [f["path"] for f in doc["files"]]
    assert paths == sorted(paths)
    assert sum(doc["summary"].values()) == len(doc["files"])


def test_errors_share_one_root(tmp_path: Path) -> None:
    with pytest.raises(muslcheck.InputError):
        scan(tmp_path / "missing")
    with pytest.raises(muslcheck.UsageError):
        scan(tmp_path, alpine="9.99")
    with pytest.raises(muslcheck.UsageError):
        scan(tmp_path, arch="sparc")
    assert issubclass(muslcheck.InputError, muslcheck.MuslcheckError)
    assert issubclass(muslcheck.UsageError, muslcheck.MuslcheckError)
    assert issubclass(muslcheck.MalformedElf, muslcheck.MuslcheckError)


def test_weak_references_bound_to_null_are_not_unresolved(samples_dir: Path) -> None:
    """weak-undef checks `if (muslcheck_absent)` before calling it: musl binds it to 0, no error, no crash."""
    report = scan(samples_dir / "weak-undef")
    [f] = [f for f in report.files if f.kind == "executable"]
    assert f.weak_unresolved == ("muslcheck_absent",)  # crtstuff's _ITM_* and __gmon_start__ are not listed
    assert "muslcheck_absent" not in unresolved(f)
    assert f.verdict is Verdict.NEEDS_GCOMPAT  # only the glibc interpreter stands in the way


def test_report_round_trips_through_json(samples_dir: Path) -> None:
    report = scan(samples_dir, musl="1.2.3")
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()
    with pytest.raises(ValueError, match="schema_version"):
        Report.from_dict({**report.to_dict(), "schema_version": "4.0"})


def test_report_with_names_that_are_not_utf8_still_renders(samples_dir: Path) -> None:
    """A symbol or soname with bytes that are not UTF-8 is kept as surrogate escapes (as os.fsdecode does):
    the JSON writes them as \\udcXX escapes, and reads them back."""
    report = scan(samples_dir / "fortify")
    odd = dataclasses.replace(report, files=(dataclasses.replace(report.files[0], soname="lib\udcff.so"),
                                             *report.files[1:]))
    for indent in (False, True):
        text = odd.to_json(indent=indent)
        assert "lib\\udcff.so" in text
        assert Report.from_json(text) == odd
        assert odd.to_json_bytes(indent=indent) == text.encode("ascii")
    assert json.loads(report.to_json(indent=True)) == json.loads(report.to_json())
    assert report.to_json_bytes() == report.to_json().encode("utf-8")
