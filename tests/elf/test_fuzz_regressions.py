"""Regressions from the ELF fuzzing campaign (docs/fuzzing.md), each input rebuilt here.

The atheris campaign found no input that makes ``read_elf`` raise anything but ``MalformedElf``.
The review done alongside it found inputs whose cost grew far faster than their size (a hang,
not a crash); those are below, with the limit that now bounds each.
"""

from __future__ import annotations

import struct

import pytest

from muslcheck.elf import read_elf
from muslcheck.model.errors import MalformedElf
from tests.elf.elfbuilder import ElfSpec, Sym

_DT_NEEDED, _DT_STRTAB, _DT_SYMTAB, _DT_STRSZ = 1, 5, 6, 10
_DT_GNU_HASH, _DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFEF5, 0x6FFFFFFE, 0x6FFFFFFF


def elf64(dynamic: list[tuple[int, int]], body: bytes, body_at: int,
          loads: list[tuple[int, int, int]] | None = None) -> bytes:
    """A little-endian ELF64 ET_DYN: ``body`` at file offset ``body_at``, then the dynamic section.

    ``loads`` are (vaddr, offset, filesz) PT_LOAD entries; by default one maps the whole file at 0.
    """
    dyn = b"".join(struct.pack("<QQ", tag, value) for tag, value in [*dynamic, (0, 0)])
    dyn_at = body_at + len(body)
    size = dyn_at + len(dyn)
    phdrs = [struct.pack("<IIQQQQQQ", 1, 4, offset, vaddr, vaddr, filesz, filesz, 0x1000)
             for vaddr, offset, filesz in (loads if loads is not None else [(0, 0, size)])]
    phdrs.append(struct.pack("<IIQQQQQQ", 2, 4, dyn_at, dyn_at, dyn_at, len(dyn), len(dyn), 8))
    ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, len(phdrs), 0, 0, 0
    )
    out = bytearray(size)
    header = ehdr + b"".join(phdrs)
    assert len(header) <= body_at
    out[: len(header)] = header
    out[body_at:dyn_at] = body
    out[dyn_at:] = dyn
    return bytes(out)


def verneed_fan(entries: int, vn_cnt: int) -> bytes:
    """``entries`` verneed entries whose vn_aux all point at one shared chain of ``vn_cnt`` vernaux.

    Each vernaux has vna_other 0 (no version index) and vna_next 16; before the fix every entry
    walked the whole shared chain, entries * vn_cnt steps for a file of 16 * (entries + vn_cnt)
    bytes: 65536 entries of 65535 steps (2 MB) would take about 45 minutes.
    """
    base = 0x1000
    first_need = base + 16  # after a one-byte string table, padded
    chain = first_need + 16 * entries
    needs = b"".join(struct.pack("<HHIII", 1, vn_cnt, 0, chain - (first_need + 16 * k), 16) for k in range(entries))
    auxes = struct.pack("<IHHII", 0, 0, 0, 0, 16) * vn_cnt
    return elf64([(_DT_STRTAB, base), (_DT_STRSZ, 1), (_DT_VERNEED, first_need), (_DT_VERNEEDNUM, entries)],
                 b"\0" + bytes(15) + needs + auxes, base)


def test_shared_vernaux_chain_is_bounded() -> None:
    with pytest.raises(MalformedElf, match="vernaux"):
        read_elf(verneed_fan(entries=200, vn_cnt=2000))


def test_one_vernaux_chain_within_the_budget_is_read() -> None:
    facts = read_elf(verneed_fan(entries=1, vn_cnt=2000))
    assert facts.has_dynamic and len(facts.uses) == 0


def test_overlapping_load_segments() -> None:
    """Two PT_LOAD file images over the same addresses: before, the first in table order won."""
    base = 0x1000
    data = elf64([(_DT_STRTAB, base), (_DT_STRSZ, 1)], b"\0", base,
                 loads=[(0, 0, base + 1 + 32), (base, 0, 16)])
    with pytest.raises(MalformedElf, match="overlap"):
        read_elf(data)


def test_touching_load_segments_are_not_overlapping() -> None:
    """Adjacent images (one ends where the next begins) are fine; a table may start in the second."""
    base = 0x1000
    data = elf64([(_DT_STRTAB, base), (_DT_STRSZ, 1)], b"\0", base,
                 loads=[(base, base, 0x1000), (0, 0, base)])  # out of order, too
    facts = read_elf(data)
    assert facts.has_dynamic and facts.needed == ()


def test_many_load_segments_and_a_long_gnu_hash_chain() -> None:
    """1,000 PT_LOAD entries before the one that maps the file, and a 50,000-word GNU hash chain.

    Each chain word used to be a separate lookup over every PT_LOAD entry (10^8 steps here; with
    65,535 entries and a multi-megabyte chain, hours). Lookups now bisect sorted segments and the
    chain is scanned a block at a time.
    """
    nloads, words = 1000, 50_000
    base = 0x10000
    gnu_hash = struct.pack("<IIIII", 1, 1, 0, 0, 1) + bytes(4 * words)  # one bucket -> symbol 1, no end
    decoys = [((1 << 40) + i * 0x1000, 0, 16) for i in range(nloads)]
    data = elf64([(_DT_GNU_HASH, base), (_DT_SYMTAB, base)], gnu_hash, base,
                 loads=[*decoys, (0, 0, base + len(gnu_hash))])
    with pytest.raises(MalformedElf, match="DT_GNU_HASH chain"):
        read_elf(data)


@pytest.mark.parametrize("nsyms", [1, 15, 16, 17, 47, 48, 49, 200])
@pytest.mark.parametrize(("elf_class", "little"), [(64, True), (64, False), (32, True), (32, False)])
def test_gnu_hash_chain_walk_across_blocks(nsyms: int, elf_class: int, little: bool) -> None:
    """The block-wise chain walk finds the end wherever it falls (elfbuilder puts all in one chain)."""
    spec = ElfSpec(elf_class=elf_class, little_endian=little, hash_style="gnu",
                   symbols=[Sym(f"f{i}", shndx=5, value=0x10 + i) for i in range(nsyms)])
    facts = read_elf(spec.build().data)
    assert sorted(e.name for e in facts.exports) == sorted(f"f{i}" for i in range(nsyms))


def test_gnu_hash_chain_past_the_segment_end() -> None:
    """A chain with no end bit that runs into the end of the file image."""
    spec = ElfSpec(hash_style="gnu", symbols=[Sym("f", shndx=5, value=0x10)])
    image = spec.build()
    data = bytearray(image.data)
    chain = image.offsets["hash"] + 16 + 8 + 4  # header, one 64-bit bloom word, one bucket
    struct.pack_into("<I", data, chain, 0)  # clear the end bit: the walk runs on through the file
    try:
        facts = read_elf(bytes(data))
    except MalformedElf:
        return
    assert [e.name for e in facts.exports] == ["f"]


def shared_name(symbols: int, name_size: int, suffixes: bool) -> bytes:
    """``symbols`` definitions whose names all lie in one ``name_size``-byte string: the same string,
    or (``suffixes``) its successive suffixes. Before the name budget, each symbol decoded its own
    copy: a 1 MB file asked for 2 GB, a 1.7 MB one for 20 GB."""
    image = ElfSpec(symbols=[Sym("A" * name_size, shndx=5, value=0x10)]
                    + [Sym(f"s{k}", shndx=5, value=0x10) for k in range(symbols)]).build()
    data = bytearray(image.data)
    name = image.data.index(b"A" * name_size) - image.offsets["strtab"]
    for k in range(symbols):
        struct.pack_into("<I", data, image.offsets["dynsym"] + 24 * (k + 2), name + (k if suffixes else 0))
    return bytes(data)


@pytest.mark.parametrize("suffixes", [False, True], ids=["same", "suffixes"])
def test_names_sharing_one_string_are_bounded(suffixes: bool) -> None:
    with pytest.raises(MalformedElf, match="names"):
        read_elf(shared_name(symbols=2000, name_size=1 << 20, suffixes=suffixes))


def test_names_sharing_one_string_within_the_budget_are_read() -> None:
    facts = read_elf(shared_name(symbols=3, name_size=1 << 20, suffixes=False))
    assert [len(e.name) for e in facts.exports] == [1 << 20] * 4


def test_needed_entries_sharing_one_string_are_bounded() -> None:
    """100,000 DT_NEEDED entries naming one 64 KiB string (6 GB of names from a 1.6 MB file)."""
    base = 0x1000
    strtab = b"\0" + b"L" * (1 << 16) + b"\0"
    data = elf64([(_DT_STRTAB, base), (_DT_STRSZ, len(strtab)), *[(_DT_NEEDED, 1)] * 100_000], strtab, base)
    with pytest.raises(MalformedElf, match="names"):
        read_elf(data)


def test_uses_merged_from_many_symbols() -> None:
    """4,000 symbols of one name, each with its own relocation type, make one use. Merging them one at
    a time used to copy the growing count each time: 1.4 s for this 200 KB file, minutes for 4 MB."""
    n = 4000
    spec = ElfSpec(symbols=[Sym("x") for _ in range(n)], relocations=[("rela", 100 + k, k + 1) for k in range(n)])
    (use,) = read_elf(spec.build().data).uses
    assert use.relocations == tuple((100 + k, 1) for k in range(n))
