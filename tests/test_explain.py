"""``explain`` and ``symbols``: glibc facts, musl per version, gcompat, cause and fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from muslcheck.cli import main
from muslcheck.elf import read_elf_file
from muslcheck.explain import (
    MuslState,
    ProviderKind,
    explain,
    load_glibc_table,
    provider_of,
    render_explanation,
    render_symbol_table,
    symbol_table,
)
from muslcheck.ldso.tables import Catalog
from muslcheck.model.errors import UsageError
from tests.support import unavailable

SYM = Path(__file__).resolve().parent.parent / "symbols"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def states(e, arch="x86_64"):
    return {r.musl: r.state for r in e.musl if r.arch == arch}


def test_memcpy_chk(catalog):
    e = explain("__memcpy_chk", catalog)
    assert e.glibc is not None and not e.glibc.private
    assert e.glibc.arch("x86_64").introduced == "GLIBC_2.3.4"
    assert e.glibc.first == "GLIBC_2.3.4"
    assert e.glibc.arch("aarch64").introduced == "GLIBC_2.17" and e.glibc.arch("aarch64").at_baseline
    assert e.glibc.libraries == ("libc.so.6",)
    assert all(r.state is MuslState.ABSENT for r in e.musl)
    assert e.gcompat and e.gcompat_version == "1.1.0"
    assert e.cause is not None and "_FORTIFY_SOURCE" in e.cause
    assert "_FORTIFY_SOURCE=0" in e.fix and "gcompat" in e.fix
    text = render_explanation(e)
    assert "GLIBC_2.3.4" in text and "provides it" in text and "absent" in text


def test_fopen64_exported_then_remapped(catalog):
    e = explain("fopen64", catalog)
    for arch in ("x86_64", "aarch64"):
        s = states(e, arch)
        assert s["1.2.2"] is s["1.2.3"] is MuslState.EXPORTED
        assert s["1.2.4"] is s["1.2.5"] is s["1.2.6"] is MuslState.REMAPPED
    row = e.availability("1.2.5", "x86_64")
    assert row.remapped_to == "fopen"
    assert row.text == "remapped to fopen by the loader's LFS64 remap"
    assert e.cause is not None and "LFS64" in e.cause
    assert e.fix.startswith("nothing")


def test_posix_fallocate64_name_length(catalog):
    """17 characters: too long for get_lfs64's buffer in 1.2.4/1.2.5, remapped by 1.2.6."""
    e = explain("posix_fallocate64", catalog)
    s = states(e)
    assert s["1.2.3"] is MuslState.EXPORTED
    assert s["1.2.4"] is s["1.2.5"] is MuslState.ABSENT
    assert s["1.2.6"] is MuslState.REMAPPED
    assert e.resolves_from["x86_64"] == "1.2.6"
    assert not e.gcompat
    assert "musl 1.2.6" in e.fix


def test_statx_needs_alpine_3_20(catalog):
    e = explain("statx", catalog)
    s = states(e)
    assert [v for v, st in s.items() if st is MuslState.EXPORTED] == ["1.2.5", "1.2.6"]
    assert e.resolves_from == {"x86_64": "1.2.5", "aarch64": "1.2.5"}
    assert e.alpine_from["x86_64"] == "3.20"
    assert "Alpine >= 3.20" in e.fix
    assert e.glibc is not None and e.glibc.arch("x86_64").introduced == "GLIBC_2.28"


def test_qsort_r_added_in_1_2_3(catalog):
    e = explain("qsort_r", catalog)
    assert states(e)["1.2.2"] is MuslState.ABSENT
    assert e.cause is not None and "musl added it in 1.2.3" in e.cause
    assert "Alpine >= 3.16" in e.fix


def test_glibc_private(catalog):
    e = explain("__libc_enable_secure", catalog)
    assert e.glibc is not None and e.glibc.private
    assert not e.glibc.arches
    assert ("x86_64", "ld-linux-x86-64.so.2") in e.glibc.private_in
    assert e.cause is not None and e.cause.startswith("GLIBC_PRIVATE")
    assert "GLIBC_PRIVATE" in render_explanation(e)


def test_isoc23_and_fcntl64(catalog):
    e = explain("__isoc23_strtol", catalog)
    assert e.glibc is not None and e.glibc.first == "GLIBC_2.38"
    assert e.cause is not None and "2.38" in e.cause and "_GNU_SOURCE" in e.cause
    assert not e.gcompat
    f = explain("fcntl64", catalog)
    assert all(r.state is MuslState.ABSENT for r in f.musl)
    assert f.cause is not None and "fcntl64" in f.cause


def test_version_suffix_is_ignored(catalog):
    assert explain("memcpy@GLIBC_2.14", catalog).symbol == "memcpy"


def test_unknown_symbol(catalog):
    with pytest.raises(UsageError, match="unknown symbol 'no_such_symbol_xyz'"):
        explain("no_such_symbol_xyz", catalog)


def test_symbol_table_1_2_5(catalog):
    rows = symbol_table(catalog, "1.2.5", "x86_64")
    names = [r[0] for r in rows]
    assert names == sorted(names)
    assert "statx" in names and "fopen64" not in names
    assert "fopen64" in [r[0] for r in symbol_table(catalog, "1.2.3", "x86_64")]
    text = render_symbol_table(rows)
    line = next(ln for ln in text.splitlines() if ln.startswith("statx\t"))
    name, type_, binding, size = line.split("\t")
    assert (name, type_, binding) == ("statx", "FUNC", "GLOBAL") and size.isdigit()
    assert len(text.splitlines()) == len(rows)


def test_symbol_table_unknown_version(catalog):
    with pytest.raises(UsageError):
        symbol_table(catalog, "9.9.9", "x86_64")


def test_glibc_table_loads_with_provenance():
    raw = json.loads((SYM / "glibc-abilists.json").read_text())
    assert raw["kind"] == "glibc-abilists"
    p = raw["provenance"]
    for key in ("package", "version", "sha256", "file", "file_sha256", "generator"):
        assert p[key], key
    assert p["package"] == "ziglang" and len(p["sha256"]) == 64 and len(p["file_sha256"]) == 64
    assert p["file"] == "ziglang/lib/libc/glibc/abilists"
    assert raw["private_provenance"]["package"] == "libc6"
    assert list(raw["symbols"]) == sorted(raw["symbols"])
    table = load_glibc_table()
    assert len(table.symbols) > 3000
    assert table.baseline == {"aarch64": "2.17", "x86_64": "2.2.5"}


def test_abilists_parser_roundtrip():
    """The generator's parser on a tiny hand-made file in zig's format."""
    sys.path.insert(0, str(SYM))
    import glibc  # type: ignore[import-not-found]

    data = (
        b"\x02c\x00m\x00"  # libs
        + b"\x02" + bytes([2, 2, 5, 2, 17, 0])  # versions
        + b"\x01x86_64-linux-gnu\x00"  # targets
        + b"\x02\x00" + b"foo\x00" + b"\x01" + b"\x00" + b"\x80"  # foo: not terminal, c, v0
        + b"\x01" + b"\x81" + b"\x00\x81"  # foo: terminal, m, v0 v1
        + b"\x01\x00" + b"bar\x00" + b"\x01" + b"\x08" + b"\x80" + b"\x81"  # object bar, size 8
        + b"\x00\x00"  # no TLS
    )
    parsed = glibc.parse_abilists(data)
    assert parsed["libs"] == ["c", "m"]
    assert [i["name"] for i in parsed["inclusions"]] == ["foo", "foo", "bar"]
    assert parsed["inclusions"][1]["versions"] == [0, 1]
    assert parsed["inclusions"][2]["size"] == 8
    symbols, baseline = glibc.from_abilists(parsed | {"targets": ["x86_64-linux-gnu", "aarch64-linux-gnu"]})
    assert symbols["foo"]["x86_64"] == {"c": ["2.2.5"], "m": ["2.2.5", "2.17"]}
    assert symbols["bar"]["kind"] == "object" and baseline == {"x86_64": "2.2.5"}


# -- names no C library has (issue 15, part 4) ---------------------------------------------------------------


def test_cxx_runtime_name_from_a_report(catalog):
    """The cxx sample's report prints ``_ZdlPvm@CXXABI_1.3.9``; explain used to refuse it (exit 2)."""
    e = explain("_ZdlPvm@CXXABI_1.3.9", catalog)
    assert e.symbol == "_ZdlPvm"
    assert e.demangled == "operator delete(void*, unsigned long)"
    assert e.provider is not None and e.provider.kind is ProviderKind.CXX_RUNTIME
    assert "libstdc++.so.6" in e.provider.source
    assert e.fix.startswith("apk add libstdc++")
    text = render_explanation(e)
    assert "operator delete(void*, unsigned long)" in text and "apk add libstdc++" in text


@pytest.mark.parametrize(("name", "demangled"), [
    ("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm",
     "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::_M_create(unsigned long&, "
     "unsigned long)"),
    ("_ZSt19__throw_logic_errorPKc", "std::__throw_logic_error(char const*)"),
    ("_ZTIi", "typeinfo for int"),
    ("_ZTVN10__cxxabiv117__class_type_infoE", "vtable for __cxxabiv1::__class_type_info"),
    ("_Znwm", "operator new(unsigned long)"),
    ("__cxa_throw", None),
    ("__gxx_personality_v0", None),
])
def test_cxx_runtime_names_without_a_version(catalog, name, demangled):
    e = explain(name, catalog)
    assert e.provider is not None and e.provider.kind is ProviderKind.CXX_RUNTIME, name
    assert e.demangled == demangled


@pytest.mark.parametrize("name", ["_Unwind_Backtrace", "_Unwind_Resume", "__gcc_personality_v0", "__divti3",
                                  "__udivmodti4", "__floattidf", "__extendhfsf2", "__popcountdi2"])
def test_compiler_runtime_names(catalog, name):
    e = explain(name, catalog)
    assert e.provider is not None and e.provider.kind is ProviderKind.COMPILER_RUNTIME
    assert "libgcc_s.so.1" in e.provider.source and e.fix.startswith("apk add libgcc")


def test_symbol_version_names_the_runtime(catalog):
    """A report's version tag decides even for a name the patterns do not know."""
    assert provider_of("_ZN3foo3barEv", "GLIBCXX_3.4.21")[0].kind is ProviderKind.CXX_RUNTIME
    assert provider_of("__some_helper", "GCC_4.2.0")[0].kind is ProviderKind.COMPILER_RUNTIME


@pytest.mark.parametrize(("name", "host"), [
    ("PyLong_FromLong", "CPython"), ("_Py_Dealloc", "CPython"),
    ("JNI_GetCreatedJavaVMs", "the JVM"), ("JVM_GetStackTraceDepth", "the JVM"),
    ("napi_create_string_utf8", "node"), ("uv_loop_init", "node"), ("_ZN2v87Isolate10GetCurrentEv", "node"),
])
def test_host_apis_are_named_as_the_hosts(catalog, name, host):
    e = explain(name, catalog)
    assert e.provider is not None and e.provider.kind is ProviderKind.HOST
    assert e.provider.source.startswith(f"the host process: {host}")
    assert e.fix.startswith("nothing for the symbol itself")


def test_another_cxx_library(catalog):
    e = explain("_ZN3foo3barEv", catalog)
    assert e.demangled == "foo::bar()"
    assert e.provider is not None and e.provider.kind is ProviderKind.CXX_LIBRARY


@pytest.mark.parametrize("name", ["no_such_symbol_xyz", "_Zgarbage", "greet_value", "EVP_DigestInit"])
def test_unknown_names_still_refused(catalog, name):
    with pytest.raises(UsageError, match="unknown symbol"):
        explain(name, catalog)


def test_libc_names_keep_the_libc_answer(catalog):
    """__cxa_atexit is the C library's (glibc and musl), even though libstdc++ has __cxa_* names."""
    e = explain("__cxa_atexit", catalog)
    assert e.provider is None and e.glibc is not None
    assert all(r.state is MuslState.EXPORTED for r in e.musl)


def _host_library(name: str) -> Path:
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"):
        if (path := Path(directory, name)).is_file():
            return path
    unavailable(f"{name} is not installed")


@pytest.mark.parametrize(("library", "kind"), [("libstdc++.so.6", ProviderKind.CXX_RUNTIME),
                                               ("libgcc_s.so.1", ProviderKind.COMPILER_RUNTIME)])
def test_every_export_of_the_real_runtime_is_attributed_to_it(catalog, library, kind):
    """What the machine's own libstdc++ and libgcc_s export, by name alone (no version tag)."""
    exports = read_elf_file(_host_library(library)).exports
    assert len(exports) > 100
    providers = {e.name: provider_of(e.name)[0] for e in exports}
    wrong = [name for name, p in providers.items() if p is None or p.kind is not kind]
    assert not wrong, wrong[:20]


# -- a target (--alpine/--musl) ------------------------------------------------------------------------------


def test_answer_for_a_target(catalog):
    old = explain("statx", catalog, target_musl="1.2.4", target_alpine="3.18")
    assert old.target is not None and not old.target.resolves
    assert old.target.label == "Alpine 3.18 (musl 1.2.4)"
    assert "Alpine >= 3.20" in old.fix
    assert "target:   Alpine 3.18 (musl 1.2.4): absent" in render_explanation(old)
    new = explain("statx", catalog, target_musl="1.2.5", target_alpine="3.20")
    assert new.target is not None and new.target.resolves
    assert new.fix == "nothing on Alpine 3.20 (musl 1.2.5): musl 1.2.5 exports it"
    remapped = explain("fopen64", catalog, target_musl="1.2.5")
    assert remapped.fix.startswith("nothing on musl 1.2.5: its loader resolves it")
    with pytest.raises(UsageError, match="unknown musl version"):
        explain("statx", catalog, target_musl="9.9.9")


# -- the commands -----------------------------------------------------------------------------------------


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_explain_command_answers_report_names_and_targets():
    cxx = cli("explain", "_ZdlPvm@CXXABI_1.3.9")
    assert cxx.exit_code == 0, cxx.output
    assert "operator delete(void*, unsigned long)" in cxx.stdout and "apk add libstdc++" in cxx.stdout
    assert cli("explain", "PyLong_FromLong").exit_code == 0
    unknown = cli("explain", "no_such_symbol_xyz")
    assert unknown.exit_code == 2 and "unknown symbol" in unknown.stderr
    target = cli("explain", "statx", "--alpine", "3.18")
    assert target.exit_code == 0 and "target:   Alpine 3.18 (musl 1.2.4): absent" in target.stdout
    assert cli("explain", "statx", "--musl", "1.2.5").stdout.count("nothing on musl 1.2.5") == 1
    assert cli("explain", "statx", "--alpine", "9.9").exit_code == 2
    assert cli("explain", "statx", "--alpine", "3.18", "--musl", "1.2.4").exit_code == 2


def _exit_block(help_text: str) -> str:
    return help_text[help_text.index("Exit codes"):]


def test_each_command_shows_its_own_exit_codes():
    scan_help = _exit_block(cli("scan", "--help").stdout)
    assert "--fail-on" in scan_help and "every file was checked" in scan_help
    for command in ("explain", "symbols"):
        block = _exit_block(cli(command, "--help").stdout)
        assert "--fail-on" not in block and "every file was checked" not in block, command
        assert "0  " in block and "2  usage error" in block and "3  input error" in block
    assert "symbol" in _exit_block(cli("explain", "--help").stdout)
    assert "each command's --help" in _exit_block(cli("--help").stdout)
    explain_help = cli("explain", "--help").stdout
    assert "--alpine" in explain_help and "--musl" in explain_help
