"""The symbol paths the system files rarely reach: repeated names, shared relocation tuples, odd headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from muslcheck.elf import SymbolUse, read_elf
from muslcheck.elf import reader as reader_module
from tests.elf.crosscheck import read_elf_lief
from tests.elf.elfbuilder import ElfSpec, Sym
from tests.elf.test_crosscheck import compare, differences

GLOB_DAT, JUMP_SLOT = 6, 7  # x86_64 and i386
MACHINES = {(64, True): 62, (32, True): 3, (64, False): 21, (32, False): 20}  # big-endian: PowerPC


def repeated_names_spec(elf_class: int, little_endian: bool) -> ElfSpec:
    """Symbols sharing names: exports in two visible versions, uses to merge and uses to keep apart."""
    jump, glob = (JUMP_SLOT, GLOB_DAT) if little_endian else (21, 20)  # PowerPC: JMP_SLOT, GLOB_DAT
    table = "rela" if elf_class == 64 else "rel"
    return ElfSpec(
        elf_class=elf_class,
        little_endian=little_endian,
        machine=MACHINES[elf_class, little_endian],
        needed=["libc.so.6"],
        symbols=[
            Sym("dup", shndx=5, value=0x10, size=8, versym=4),  # 1: dup@V2 (default)
            Sym("dup", shndx=5, value=0x20, size=4, versym=3),  # 2: dup@V1 (visible too)
            Sym("dup", shndx=5, value=0x20, size=4, versym=3),  # 3: the same export again
            Sym("printf", versym=2),  # 4 and 5: one use, relocation counts summed
            Sym("printf", type=1, versym=2),
            Sym("weakling", bind=2),  # 6 and 7: a WEAK and a GLOBAL use of one name
            Sym("weakling"),
            Sym("dup", versym=2),  # 8: an undefined dup besides the definitions
            Sym("aaa", shndx=5, value=0x30),  # 9: sorts first
        ],
        relocations=[("jmprel", jump, 4), ("jmprel", jump, 5), (table, glob, 5), (table, glob, 5),
                     (table, glob, 2), (table, glob, 7), ("jmprel", jump, 8)],
        verdefs=[(1, "libt.so"), (3, "V1"), (4, "V2")],
        verneeds=[("libc.so.6", [("GLIBC_2.2.5", 2)])],
    )


@pytest.mark.parametrize(("elf_class", "little_endian"), [(64, True), (64, False), (32, True), (32, False)])
def test_repeated_names_agree(tmp_path: Path, elf_class: int, little_endian: bool) -> None:
    path = tmp_path / "repeated.so"
    path.write_bytes(repeated_names_spec(elf_class, little_endian).build().data)
    assert compare(path) == []


def test_repeated_names() -> None:
    facts = read_elf(repeated_names_spec(64, True).build().data)
    assert [(e.name, e.version, e.size) for e in facts.exports] == [
        ("aaa", None, 0), ("dup", "V1", 4), ("dup", "V1", 4), ("dup", "V2", 8)
    ]
    uses = [(u.name, u.version, u.binding, u.defined, u.relocations) for u in facts.uses]
    assert uses == [
        ("dup", "GLIBC_2.2.5", "GLOBAL", False, ((JUMP_SLOT, 1),)),
        ("dup", "V1", "GLOBAL", True, ((GLOB_DAT, 1),)),
        ("printf", "GLIBC_2.2.5", "GLOBAL", False, ((GLOB_DAT, 2), (JUMP_SLOT, 2))),
        ("weakling", None, "GLOBAL", False, ((GLOB_DAT, 1),)),
        ("weakling", None, "WEAK", False, ()),
    ]
    printf = facts.uses[2]
    assert printf.type == "FUNC" and printf.version_library == "libc.so.6"  # from the first symbol


def test_relocation_tuples_are_shared_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses share their one-type relocation tuples, up to a bound past which they are simply built."""
    monkeypatch.setattr(reader_module, "_SHARED_RELOCATIONS", {})
    monkeypatch.setattr(reader_module, "_SHARED_RELOCATIONS_MAX", 4)
    count = 12  # symbol k has k GLOB_DAT relocations: 12 distinct (type, count) pairs
    spec = ElfSpec(symbols=[Sym(f"f{k:02}") for k in range(1, count + 1)],
                   relocations=[("rela", GLOB_DAT, k) for k in range(1, count + 1) for _ in range(k)])
    first, second = read_elf(spec.build().data), read_elf(spec.build().data)
    assert first == second
    assert [u.relocations for u in first.uses] == [((GLOB_DAT, k),) for k in range(1, count + 1)]
    assert len(reader_module._SHARED_RELOCATIONS) == 4
    shared = [a.relocations is b.relocations for a, b in zip(first.uses, second.uses, strict=True)]
    assert shared == [True] * 4 + [False] * (count - 4)


def test_non_ascii_names(tmp_path: Path) -> None:
    spec = ElfSpec(symbols=[Sym("café", shndx=5, value=0x10), Sym("naïve")])
    image = spec.build()
    path = tmp_path / "utf8.so"
    path.write_bytes(image.data)
    # Not pyelftools: it decodes names as UTF-8 already, and crosscheck.py decodes them once more.
    facts = read_elf(image.data)
    assert differences(facts, read_elf_lief(path)) == []
    assert [e.name for e in facts.exports] == ["café"] and [u.name for u in facts.uses] == ["naïve"]
    # Bytes that are not UTF-8 survive as surrogate escapes.
    data = bytearray(image.data)
    name = data.index("naïve".encode(), image.offsets["strtab"])
    data[name : name + 6] = b"na\xff\xfeve"
    (use,) = read_elf(bytes(data)).uses
    assert use.name == b"na\xff\xfeve".decode("utf-8", "surrogateescape")


def test_empty_names() -> None:
    """A nameless undefined GLOBAL symbol is a use; a nameless definition is no export."""
    facts = read_elf(ElfSpec(symbols=[Sym(""), Sym("", shndx=5, value=0x10)]).build().data)
    assert tuple(facts.uses) == (SymbolUse("", None, None, "GLOBAL", "FUNC", False, ()),) and len(facts.exports) == 0


@pytest.mark.parametrize("entry_size", [56, 64, 80])
def test_program_header_entry_size(entry_size: int) -> None:
    """Entries larger than Elf64_Phdr are read field by field; the padding is ignored."""
    image = repeated_names_spec(64, True).build()
    data = bytearray(image.data)
    e_phoff, e_phentsize, e_phnum = 32, 54, 56
    (phoff,) = struct.unpack_from("<Q", data, e_phoff)
    (phnum,) = struct.unpack_from("<H", data, e_phnum)
    table = b"".join(bytes(data[phoff + 56 * n : phoff + 56 * (n + 1)]) + b"\xee" * (entry_size - 56)
                     for n in range(phnum))
    struct.pack_into("<Q", data, e_phoff, len(data))  # the new table goes at the end of the file
    struct.pack_into("<H", data, e_phentsize, entry_size)
    assert read_elf(bytes(data) + table) == read_elf(image.data)
