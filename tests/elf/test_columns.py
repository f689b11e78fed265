"""ElfFacts' symbols as columns (``Uses``, ``Exports``): the rows they hold, the views made from them, the loader's
mapping, pickling, and the name checks that now run over a whole column at once."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import pytest

from muslcheck.elf import Export, SymbolUse, read_elf, read_elf_file
from muslcheck.elf.facts import NO_EXPORTS, NO_USES, Exports, Uses
from muslcheck.model.errors import MalformedElf
from tests.elf.elfbuilder import ElfSpec, Sym
from tests.elf.test_reader_symbols import repeated_names_spec

LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")


def test_rows_rebuild_the_same_columns() -> None:
    """The views of each row, turned back into columns, are the columns: the views lose nothing."""
    facts = read_elf(repeated_names_spec(64, True).build().data)
    assert Uses.from_rows(tuple(facts.uses)) == facts.uses
    assert Exports.from_rows(tuple(facts.exports)) == facts.exports
    assert facts.uses[-1] == tuple(facts.uses)[-1] and facts.exports[1:3] == tuple(facts.exports)[1:3]


def test_a_use_view_carries_every_field() -> None:
    facts = read_elf(repeated_names_spec(64, True).build().data)
    printf = next(u for u in facts.uses if u.name == "printf")
    assert printf == SymbolUse("printf", "GLIBC_2.2.5", "libc.so.6", "GLOBAL", "FUNC", False, ((6, 2), (7, 2)))
    assert Export("aaa", "FUNC", "GLOBAL", 0, None, False) in facts.exports


def test_definitions_keep_the_first_row_of_a_name() -> None:
    """``dup`` is exported as dup@V1 and dup@V2: the loader sees the first in the contract's order, as the
    per-file dict it used to build did."""
    facts = read_elf(repeated_names_spec(64, True).build().data)
    first = {}
    for e in facts.exports:
        first.setdefault(e.name, (e.type, e.binding, e.plt_only))
    assert dict(facts.exports.definitions) == first
    assert facts.exports.definitions is facts.exports.definitions  # made once


def test_plt_only_definitions() -> None:
    """An executable's undefined symbol with a value (its canonical PLT address) is a plt_only definition."""
    spec = ElfSpec(e_type=2, symbols=[Sym("puts", value=0x401030), Sym("main", shndx=5, value=0x401100)])
    facts = read_elf(spec.build().data)
    assert dict(facts.exports.definitions) == {"main": ("FUNC", "GLOBAL", False), "puts": ("FUNC", "GLOBAL", True)}


def test_columns_of_unequal_length_are_refused() -> None:
    with pytest.raises(ValueError, match="infos"):
        Uses(("a", "b"), (None, None), (None, None), b"\x12", b"\0\0", (0, 0), ((),))
    with pytest.raises(ValueError, match="sizes"):
        Exports(("a",), (None,), b"\x12", (), b"\0")


def test_weak_undefined() -> None:
    uses = Uses.from_rows([SymbolUse("w", None, None, "WEAK", "NOTYPE", False, ()),
                           SymbolUse("x", None, None, "WEAK", "FUNC", True, ((6, 1),)),
                           SymbolUse("y", None, None, "GLOBAL", "FUNC", False, ())])
    assert [uses.weak_undefined(i) for i in range(3)] == [True, False, False]


@pytest.mark.skipif(not LIBC.is_file(), reason="needs the machine's glibc")
def test_facts_pickle_to_their_columns() -> None:
    """Between processes the facts travel as columns: equal after the trip, without the loader's mapping, and
    smaller than the same rows as objects."""
    facts = read_elf_file(LIBC)
    assert facts.exports.definitions  # made, and must not travel
    data = pickle.dumps(facts)
    back = pickle.loads(data)
    assert back == facts and tuple(back.uses) == tuple(facts.uses)
    assert getattr(back.exports, "_definitions", None) is None
    as_objects = pickle.dumps((tuple(facts.uses), tuple(facts.exports)))
    assert len(data) < 0.8 * len(as_objects)


def test_empty_columns() -> None:
    assert len(NO_USES) == 0 and not NO_USES and list(NO_EXPORTS) == [] and NO_EXPORTS.definitions == {}
    facts = read_elf(ElfSpec().build().data)
    assert facts.uses == NO_USES and facts.exports == NO_EXPORTS


def _names_with_one_bad_offset(bad_symbol: int) -> bytes:
    """2,000 definitions all named by one 1 MiB string (the budget runs out at the fifth), and symbol
    ``bad_symbol``'s name offset outside the string table."""
    image = ElfSpec(symbols=[Sym("A" * (1 << 20), shndx=5, value=0x10)]
                    + [Sym(f"s{k}", shndx=5, value=0x10) for k in range(2000)]).build()
    data = bytearray(image.data)
    name = image.data.index(b"A" * (1 << 20)) - image.offsets["strtab"]
    for k in range(2000):
        struct.pack_into("<I", data, image.offsets["dynsym"] + 24 * (k + 2), name)
    struct.pack_into("<I", data, image.offsets["dynsym"] + 24 * bad_symbol, 1 << 30)
    return bytes(data)


def test_the_first_bad_name_in_table_order_is_the_error() -> None:
    """Names are checked a column at a time, yet the error is the one a symbol-by-symbol read meets first: a name
    offset outside the string table before the budget runs out, the budget when it runs out first."""
    with pytest.raises(MalformedElf, match="symbol 2 has a name offset outside the string table"):
        read_elf(_names_with_one_bad_offset(2))
    with pytest.raises(MalformedElf, match="four times its size"):
        read_elf(_names_with_one_bad_offset(1500))


def test_a_bad_name_in_a_file_is_malformed_not_a_buffer_error(tmp_path: Path) -> None:
    """The columns are views of the file's memory until cut: an error on the way must still let the file close."""
    path = tmp_path / "bad-name.so"
    path.write_bytes(_names_with_one_bad_offset(2))
    with pytest.raises(MalformedElf, match="outside the string table"):
        read_elf_file(path)
