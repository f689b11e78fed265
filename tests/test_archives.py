"""Native libraries inside JARs, WARs and wheels: found at any depth, judged as their loaders load them,
and every archive limit ends in a skipped entry, never a crash or an unbounded read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from muslcheck import Verdict, scan
from muslcheck.targets import archives

PLT = "reloc-plt/app/lib/libplt.so"  # glibc; gnu_get_libc_version reached only through the PLT


def jar(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_fat_jar_is_read_at_every_depth_and_judged_as_the_jvm_loads_it(samples_dir: Path, tmp_path: Path) -> None:
    lib = (samples_dir / PLT).read_bytes()
    inner = jar({"org/x/native/Linux/x86_64/libx.so": lib, "org/x/native/FreeBSD/amd64/libx.so": lib})
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.jar").write_bytes(jar({"BOOT-INF/lib/x-1.0.jar": inner, "Main.class": b"\xca\xfe"}))
    report = scan(tmp_path)
    files = {f.path: f for f in report.files}
    linux = files["/app/app.jar!/BOOT-INF/lib/x-1.0.jar!/org/x/native/Linux/x86_64/libx.so"]
    assert linux.context == "dlopen-lazy"  # HotSpot: dlopen(path, RTLD_LAZY)
    [symbol] = linux.unresolved_symbols
    assert (symbol.name, symbol.effect, symbol.fatal) == ("gnu_get_libc_version", "latent", False)
    assert linux.verdict is Verdict.BLOCKED  # latent is still a blocker
    other = files["/app/app.jar!/BOOT-INF/lib/x-1.0.jar!/org/x/native/FreeBSD/amd64/libx.so"]
    assert other.verdict is Verdict.NOT_APPLICABLE


def test_a_wheel_extension_is_judged_as_cpython_loads_it(samples_dir: Path, tmp_path: Path) -> None:
    lib = (samples_dir / PLT).read_bytes()
    (tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(jar({"pkg/_ext.so": lib}))
    report = scan(tmp_path)
    [ext] = report.files
    assert ext.context == "dlopen-now"  # CPython's default dlopen flags are RTLD_NOW
    assert [s.fatal for s in ext.unresolved_symbols] == [True]


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"bomb.so": b"\0" * (20 << 20)}, "compression ratio"),
        ({"lib.so": b"\x7fELF" + b"\0" * 100}, "malformed ELF"),
    ],
    ids=["ratio-bomb", "truncated-elf"],
)
def test_bad_members_are_skipped_with_the_reason(tmp_path: Path, members: dict[str, bytes], reason: str) -> None:
    (tmp_path / "a.jar").write_bytes(jar(members))
    [skip] = scan(tmp_path).skipped
    assert skip.path == f"/a.jar!/{next(iter(members))}" and reason in skip.reason


def test_a_nesting_bomb_stops_at_the_depth_limit(tmp_path: Path) -> None:
    data = jar({"lib.so": b"\x7fELF"})
    for _ in range(archives.MAX_DEPTH + 3):
        data = jar({"inner.jar": data})
    (tmp_path / "deep.jar").write_bytes(data)
    [skip] = scan(tmp_path).skipped
    assert f"above the limit of {archives.MAX_DEPTH}" in skip.reason
    assert skip.path.count("!/") == archives.MAX_DEPTH


def test_corrupt_and_encrypted_archives(tmp_path: Path) -> None:
    (tmp_path / "corrupt.jar").write_bytes(b"PK\x03\x04" + b"garbage" * 100)
    good = bytearray(jar({"lib.so": b"\x7fELF" + b"\0" * 64}, zipfile.ZIP_STORED))
    central = good.rfind(b"PK\x01\x02")
    good[central + 8] |= 1  # the encrypted flag in the central directory
    (tmp_path / "locked.jar").write_bytes(bytes(good))
    reasons = {s.path: s.reason for s in scan(tmp_path).skipped}
    assert "no end-of-central-directory" in reasons["/corrupt.jar"]
    assert "encrypted" in reasons["/locked.jar!/lib.so"]


def test_an_archive_declaring_too_many_members_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member count comes from the end-of-central-directory record, before zipfile builds its list;
    a zip of 1,000,000 entries is refused the same way at the default limit."""
    monkeypatch.setattr(archives, "MAX_MEMBERS", 100)
    (tmp_path / "many.jar").write_bytes(jar({f"c{i}.class": b"" for i in range(101)}, zipfile.ZIP_STORED))
    [skip] = scan(tmp_path).skipped
    assert "declares 101 members, above the limit of 100" in skip.reason


def test_declared_entries_reads_zip64_records(tmp_path: Path) -> None:
    out = tmp_path / "z64.zip"
    with zipfile.ZipFile(out, "w", allowZip64=True) as z:
        for i in range(70_000):  # past 65,535: the count lives only in the zip64 record
            z.writestr(f"{i}", b"")
    with open(out, "rb") as f:
        assert archives._declared_entries(f) == 70_000
