"""Hostile zips, round 2 (issue 18, part 1): members that inflate past their declared size (bzip2, lzma,
deflate), entries that overlap, and the metadata kept across a whole scan under one budget.

The zips are written by hand (``_zip``) so that a header can lie; each is a few KB on disk.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from muslcheck.targets import archives, directory, limits
from muslcheck.targets.archives import scan_archive
from muslcheck.targets.limits import Budget, KeepWhole
from tests.hostile.hostile_support import RSS_BOUND_MB, run_scan, skipped

_LZMA_PROPS = {"id": lzma.FILTER_LZMA1, "lc": 3, "lp": 0, "pb": 2, "dict_size": 1 << 20}


def _zip(members: list[tuple[str, int, bytes, int, int]], *, same_offset: int = 0) -> bytes:
    """A zip of (name, method, compressed data, declared size, CRC) members, headers as given (they may lie).

    With ``same_offset``, that many more central entries all point at the first member's local header."""
    out = io.BytesIO()
    central = []
    for name, method, data, size, crc in members:
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(raw), 0))
        out.write(raw + data)
        central.append((raw, method, len(data), size, crc, offset))
    first = central[0]
    central += [(f"copy{i}.so".encode(), *first[1:]) for i in range(same_offset)]
    start = out.tell()
    for raw, method, csize, size, crc, offset in central:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, csize, size,
                              len(raw), 0, 0, 0, 0, 0, offset) + raw)
    end = out.tell()
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), end - start, start, 0))
    return out.getvalue()


def _zeros_bz2(mib: int) -> bytes:
    c = bz2.BZ2Compressor(9)
    block = bytes(1 << 20)
    return b"".join(c.compress(block) for _ in range(mib)) + c.flush()


def _zeros_lzma(mib: int) -> bytes:
    c = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{**_LZMA_PROPS, "preset": 1}])
    block = bytes(1 << 20)
    body = b"".join(c.compress(block) for _ in range(mib)) + c.flush()
    props = bytes([(_LZMA_PROPS["pb"] * 5 + _LZMA_PROPS["lp"]) * 9 + _LZMA_PROPS["lc"]]) + struct.pack("<I", 1 << 20)
    return struct.pack("<BBH", 9, 4, 5) + props + body


def _zeros_deflate(mib: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    return b"".join(c.compress(block) for _ in range(mib)) + c.flush()


def test_members_inflating_past_their_declared_size_are_stopped_while_they_inflate(tmp_path: Path) -> None:
    """512 MiB of zeros in a few hundred bytes, declared as 1,000 bytes: zipfile inflated bzip2 and lzma whole."""
    small = 1000
    crc = zlib.crc32(bytes(small))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "bz.jar").write_bytes(_zip([("lib.so", zipfile.ZIP_BZIP2, _zeros_bz2(512), small, crc)]))
    (tree / "xz.jar").write_bytes(_zip([("lib.so", zipfile.ZIP_LZMA, _zeros_lzma(512), small, crc)]))
    (tree / "fl.jar").write_bytes(_zip([("lib.so", zipfile.ZIP_DEFLATED, _zeros_deflate(512), small, crc)]))
    assert sum(f.stat().st_size for f in tree.iterdir()) < 1_200_000
    result = run_scan(str(tree), work=tmp_path / "w")
    reasons = skipped(result.report)
    for jar in ("bz", "xz", "fl"):
        assert "inflates past its declared size of 1000 bytes" in reasons[f"/{jar}.jar!/lib.so"], reasons
    assert result.rc == 1
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED bzip2/lzma/deflate members inflating 512 MiB past 1,000 declared bytes: {result.measured()}")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_honest_members_of_every_method_still_read(tmp_path: Path, method: int) -> None:
    lib = b"\x7fELF" + os.urandom(3000) + bytes(5000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        z.writestr("lib.so", lib)
        z.writestr("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")
    keep = KeepWhole(lambda name: name.endswith(".MF"), 1 << 20)
    scanned = scan_archive(io.BytesIO(out.getvalue()), "/a.jar", keep)
    assert scanned.archives[0].members == {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n"}
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as z:
        assert archives._read(io.BytesIO(out.getvalue()), z.getinfo("lib.so")) == lib


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    """Every central entry names the same member's bytes: read once each, they multiply memory and time."""
    data = _zeros_deflate(1)
    crc = zlib.crc32(bytes(1 << 20))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "overlap.jar").write_bytes(
        _zip([("lib.so", zipfile.ZIP_DEFLATED, data, 1 << 20, crc)], same_offset=5000))
    result = run_scan(str(tree), work=tmp_path / "w")
    assert "archive members overlap" in skipped(result.report)["/overlap.jar"]
    assert result.rc == 1
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_metadata_kept_has_one_budget_across_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many archives, each under its own limits, together past the scan's budget: the rest is a finding."""
    monkeypatch.setattr(directory, "MAX_KEPT_BYTES", 3 << 20)  # 256 MiB in production: the same code path
    member = b"x" * (1 << 20)
    for n in range(4):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            z.writestr("META-INF/MANIFEST.MF", member)
        (tmp_path / f"a{n}.jar").write_bytes(out.getvalue())
    keep = KeepWhole(lambda name: name.endswith(".MF"), 4 << 20)
    from muslcheck.ldso.facts import FactsCache

    root = directory.DirectoryRoot(tmp_path)
    found = directory.discover(root, FactsCache(root), keep=keep)
    kept = [a for a in found.archives if a.members]
    assert len(kept) == 3
    [over] = [s for s in found.skipped if "metadata files kept in this scan" in s.reason]
    assert over.path == "/a3.jar!/META-INF/MANIFEST.MF" and not over.unchecked
    budget = Budget(limits.MAX_KEPT_BYTES)  # and the default: each call alone gets it whole
    assert scan_archive(io.BytesIO((tmp_path / "a0.jar").read_bytes()), "/a0.jar", keep, budget).archives[0].members
    assert budget.left == limits.MAX_KEPT_BYTES - len(member)


# ---- found by fuzz/fuzz_inputs.py zip (docs/fuzzing.md): each ended the scan with an internal error -----------

def test_an_empty_zip_has_nothing_to_check() -> None:
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()  # the 22-byte end record alone, as an empty JAR holds
    scanned = scan_archive(empty, "/app/empty.jar")
    assert (scanned.elves, scanned.skipped) == ([], [])


def test_corrupt_deflate_data_is_a_finding_on_the_member() -> None:
    garbage = b"\xff" * 64  # an invalid block type at once: zlib.error, which is neither OSError nor ValueError
    scanned = scan_archive(io.BytesIO(_zip([("lib/libx.so", zipfile.ZIP_DEFLATED, garbage, 4096, 0)])),
                           "/app/a.jar")
    assert [(s.path, s.reason) for s in scanned.skipped] == [
        ("/app/a.jar!/lib/libx.so", "unreadable archive member: corrupt deflate data: Error -3 while "
                                    "decompressing data: invalid block type")]


def test_a_zip_needing_a_later_version_to_extract_is_a_corrupt_archive() -> None:
    data = bytearray(_zip([("lib/libx.so", zipfile.ZIP_STORED, b"\x7fELF", 4, zlib.crc32(b"\x7fELF"))]))
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 6, 124)  # "version needed to extract" 12.4: zipfile refuses
    scanned = scan_archive(io.BytesIO(bytes(data)), "/app/a.jar")
    assert [(s.path, s.reason) for s in scanned.skipped] == [("/app/a.jar", "corrupt archive: zip file version 12.4")]


def test_a_member_with_an_empty_name_is_passed_over() -> None:
    elf = b"\x7fELF"
    scanned = scan_archive(io.BytesIO(_zip([("", zipfile.ZIP_STORED, elf, 4, zlib.crc32(elf))])), "/app/a.jar")
    assert (scanned.elves, scanned.skipped) == ([], [])
