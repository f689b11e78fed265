"""Hostile ELF files, round 2 (issue 18, parts 1 and 3): tables whose sizes a sparse file backs with nothing,
a million DT_NEEDED entries, and a file that shrinks while it is read.

The sparse files claim 1 GiB and hold a few KB of data; before the fix, reading their string table or their
hash-sized symbol table cost 2.1 GB and 3.7 GB of RSS.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from muslcheck.elf import read_elf, read_elf_file, reader
from muslcheck.model.errors import MalformedElf
from tests.hostile.hostile_support import RSS_BOUND_MB, run_scan, skipped

_DT_NEEDED, _DT_HASH, _DT_STRTAB, _DT_SYMTAB, _DT_STRSZ, _DT_SYMENT = 1, 4, 5, 6, 10, 11
_GIB = 1 << 30
_CLAIM = _GIB - 0x10000  # under the 1 GiB file limit, so the tables themselves are what is checked


def _sparse_elf(path: Path, dynamic: list[tuple[int, int]], data_at: dict[int, bytes], size: int) -> None:
    """A little-endian ELF64 ET_DYN of ``size`` bytes holding only its headers, ``data_at`` and, at the end, the
    dynamic section; one PT_LOAD maps the whole file at address 0, so every table is "inside the file"."""
    dyn = b"".join(struct.pack("<QQ", tag, value) for tag, value in [*dynamic, (0, 0)])
    dyn_at = size - len(dyn)
    phdrs = [struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000),
             struct.pack("<IIQQQQQQ", 2, 4, dyn_at, dyn_at, dyn_at, len(dyn), len(dyn), 8)]
    ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + b"".join(phdrs))
        for offset, data in data_at.items():
            f.seek(offset)
            f.write(data)
        f.seek(dyn_at)
        f.write(dyn)


def _sparse_cases(tree: Path) -> None:
    strings = b"\0libc.so.6\0"
    _sparse_elf(tree / "libstrsz.so", [(_DT_NEEDED, 1), (_DT_STRTAB, 0x1000), (_DT_STRSZ, _CLAIM)],
                {0x1000: strings}, _GIB - 0x1000)
    hash_table = struct.pack("<II", 1, _CLAIM // 24) + bytes(4)  # nbucket 1, nchain: a GiB of symbols
    _sparse_elf(tree / "libnchain.so", [(_DT_NEEDED, 1), (_DT_STRTAB, 0x1000), (_DT_STRSZ, len(strings)),
                                       (_DT_HASH, 0x2000), (_DT_SYMTAB, 0x3000), (_DT_SYMENT, 24)],
                {0x1000: strings, 0x2000: hash_table, 0x3000: bytes(24)}, _GIB - 0x1000)


def test_sparse_tables_claiming_a_gib_are_refused_from_the_bytes_that_exist(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    _sparse_cases(tree)
    assert all(f.stat().st_blocks * 512 < 64 << 10 for f in tree.iterdir())  # a few KB really held
    result = run_scan(str(tree), work=tmp_path / "w")
    reasons = skipped(result.report)
    assert f"string table of {_CLAIM} bytes is not backed by the file's data" in reasons["/libstrsz.so"]
    assert "symbol table of" in reasons["/libnchain.so"] and "not backed" in reasons["/libnchain.so"]
    assert result.rc == 1
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED sparse ELF files claiming 1 GiB tables: {result.measured()}")


def test_a_million_needed_entries_are_capped_with_a_finding() -> None:
    entries = [(_DT_NEEDED, 0)] * 1_000_000
    dyn = b"".join(struct.pack("<QQ", t, v) for t, v in [(_DT_STRTAB, 0x1000), (_DT_STRSZ, 1), *entries, (0, 0)])
    dyn_at = 0x1010
    size = dyn_at + len(dyn)
    phdrs = (struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)
             + struct.pack("<IIQQQQQQ", 2, 4, dyn_at, dyn_at, dyn_at, len(dyn), len(dyn), 8))
    ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    data = bytearray(size)
    data[: len(ehdr) + len(phdrs)] = ehdr + phdrs
    data[dyn_at:] = dyn
    with pytest.raises(MalformedElf, match=f"1000000 DT_NEEDED entries .* above the limit of {reader.MAX_NEEDED}"):
        read_elf(bytes(data), symbols=False)


def test_a_file_that_shrinks_while_read_is_a_finding_not_a_signal(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is cut to its first page after its size was taken: a map would raise SIGBUS on the lost pages."""
    path = tmp_path / "libshrink.so"
    strings = b"\0libc.so.6\0"
    _sparse_elf(path, [(_DT_NEEDED, 1), (_DT_STRTAB, 0x1000), (_DT_STRSZ, len(strings))], {0x1000: strings},
                0x4000)
    path.write_bytes(path.read_bytes())  # written whole: no holes, every page is data
    assert read_elf_file(path).needed == ("libc.so.6",)
    real = reader._LazyFile.__init__

    def shrinking(self: reader._LazyFile, fd: int, whole: memoryview, st: os.stat_result) -> None:
        real(self, fd, whole, st)
        os.truncate(path, 0x1000)  # after the size was taken, before a byte was read

    monkeypatch.setattr(reader._LazyFile, "__init__", shrinking)
    with pytest.raises(MalformedElf, match="shrank"):
        read_elf_file(path)


def test_special_files_are_never_opened_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "libfifo.so"
    os.mkfifo(fifo)
    with pytest.raises(MalformedElf, match="not a regular file"):
        read_elf_file(fifo)  # O_NONBLOCK: returns at once, no writer needed
