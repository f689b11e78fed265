"""``explain`` and ``symbols``: glibc facts, musl per version, gcompat, cause and fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from muslcheck.explain import (
    MuslState,
    explain,
    load_glibc_table,
    render_explanation,
    render_symbol_table,
    symbol_table,
)
from muslcheck.ldso.tables import Catalog
from muslcheck.model.errors import UsageError

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
