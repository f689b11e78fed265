"""The functions a shared object's own initialisation calls through its PLT or GOT, read from its code.

musl runs each object's DT_INIT, then its DT_INIT_ARRAY, once dlopen has relocated every new object
(``do_init_fini``). Under RTLD_LAZY a JUMP_SLOT or GLOB_DAT whose symbol nothing defines is left as the file holds
it (``do_relocs`` defers it): a call through that slot jumps to an unrelocated address, so a latent symbol that a
constructor calls makes ``dlopen`` itself crash. The typical case: aarch64 libgcc's outline-atomics constructor
``init_have_lse_atomics`` calls ``__getauxval``, which musl exports only from 1.2.6.

A small linear disassembly, per architecture (one module each, registered in ``machines.py``; other machines are
not read), from DT_INIT and each DT_INIT_ARRAY entry: the address the file holds, or the one a relocation writes
there (a RELATIVE one's, or that of a function the object defines, named by a symbolic one such as OpenBLAS's
``gotoblas_init`` entry). Everything is found through the dynamic section, never the section headers. A function's
extent is swept until a return or an unconditional jump that no forward branch seen so far jumps past. What is
recorded:

- a direct call or tail jump to a PLT stub, and a call through a GOT slot (``-fno-plt``), whose slot a JUMP_SLOT or
  GLOB_DAT relocation names: that symbol;
- a direct call or tail jump into the object's own code, and a call through a slot whose symbol the object defines
  as a function (musl binds it there unless an object loaded earlier defines the name): followed, ``MAX_DEPTH``
  levels deep.

Bounded: at most ``MAX_INSTRUCTIONS`` instructions per init function (its callees included), ``MAX_INIT_FUNCTIONS``
init functions; a bound reached is reported (``ConstructorCalls.capped``). Conditional paths are all taken, so a
name may be listed that a run never calls, except past a branch taken only when a word of the object's own .bss is
not 0 (aarch64, s390x, riscv64: ``Memory.zero_at_load``; the library's default state). docs/symbols.md has what
each rule costs, measured against the real loader.
An unreadable address ends that path, never the read: nothing here raises.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from muslcheck.elf.constructors.machines import MACHINES
from muslcheck.model.errors import MalformedElf

MAX_INSTRUCTIONS: Final = 2048  # per init function, its callees included
MAX_INIT_FUNCTIONS: Final = 64  # DT_INIT plus DT_INIT_ARRAY entries read
MAX_DEPTH: Final = 2  # levels of the object's own functions followed below an init function
_MAX_NAME: Final = 4096

_DT_NULL, _DT_PLTRELSZ, _DT_STRTAB, _DT_SYMTAB, _DT_RELA, _DT_RELASZ = 0, 2, 5, 6, 7, 8
_DT_STRSZ, _DT_INIT, _DT_REL, _DT_RELSZ, _DT_PLTREL, _DT_JMPREL = 10, 12, 17, 18, 20, 23
_DT_INIT_ARRAY, _DT_INIT_ARRAYSZ = 25, 27
_SHN_LORESERVE, _STT_NOTYPE, _STT_FUNC = 0xFF00, 0, 2
_PT_LOAD, _MAX_SEGMENTS = 1, 4096


class _Layout(Protocol):
    @property
    def bits(self) -> int: ...
    @property
    def word(self) -> str: ...
    @property
    def r_sym_shift(self) -> int: ...
    @property
    def r_type_mask(self) -> int: ...
    @property
    def sym_size(self) -> int: ...
    @property
    def u32(self) -> struct.Struct: ...


class Image(Protocol):
    """What is read: the reader's image of the file (its PT_LOAD address map)."""

    @property
    def layout(self) -> _Layout: ...
    def offset_of(self, vaddr: int, size: int, what: str) -> int: ...
    def extent(self, vaddr: int, offset: int) -> int: ...
    def bytes_at(self, offset: int, size: int, what: str) -> bytes: ...
    def words(self, code: str, offset: int, n: int, what: str, start: int = 0, step: int = 1) -> array[int]: ...


@dataclass(frozen=True, slots=True)
class ConstructorCalls:
    names: tuple[str, ...]  # sorted, distinct
    capped: bool  # a bound was reached: more calls may exist


NONE: Final = ConstructorCalls((), False)


def read_constructor_calls(image: Image, dynamic: tuple[int, int], machine: str) -> ConstructorCalls:
    """The names the init functions of the object with this PT_DYNAMIC (offset, size) call through a slot."""
    if machine not in MACHINES:
        return NONE
    try:
        return _Reader(image, dynamic, machine).calls()
    except (MalformedElf, struct.error, ValueError, IndexError, OverflowError):
        return NONE


class _Reader:
    def __init__(self, image: Image, dynamic: tuple[int, int], machine: str) -> None:
        self.image, self.machine = image, machine
        layout = image.layout
        self.word_size = layout.bits // 8
        self.little = layout.u32.format.startswith("<")
        offset, size = dynamic
        entries = image.words(layout.word, offset, size // self.word_size & ~1, "dynamic section")
        tags: dict[int, int] = {}
        for t, v in zip(entries[0::2], entries[1::2], strict=True):
            if t == _DT_NULL:
                break
            tags[t] = v
        self.tags = tags
        self.spec = MACHINES[machine]
        self._stubs: dict[int, int | None] = {}  # PLT stub address -> its slot
        self._slots: list[tuple[array[int], array[int]]] | None = None  # per table: r_offset, r_info
        self._symbols: dict[int, tuple[int, int, int, int] | None] = {}
        self._bss: list[tuple[int, int]] | None = None  # [start, end) zero-filled at load
        self.capped = False

    # --- memory ---

    def calls(self) -> ConstructorCalls:
        starts = self._init_functions()
        if not starts:
            return NONE
        names: set[str] = set()
        for start in starts[:MAX_INIT_FUNCTIONS]:
            for slot in self._scan(start):
                name = self._slot_name(slot)
                if name:
                    names.add(name)
        capped = self.capped or len(starts) > MAX_INIT_FUNCTIONS
        return ConstructorCalls(tuple(sorted(names)), capped)

    def read_code(self, vaddr: int, size: int) -> bytes | None:
        try:
            return self.image.bytes_at(self.image.offset_of(vaddr, size, "code"), size, "code")
        except MalformedElf:
            return None

    def word(self, vaddr: int) -> int | None:
        raw = self.read_code(vaddr, self.word_size)
        return None if raw is None else int.from_bytes(raw, "little" if self.little else "big")

    def _init_functions(self) -> list[int]:
        tags, starts = self.tags, []
        if tags.get(_DT_INIT):
            starts.append(tags[_DT_INIT])
        if _DT_INIT_ARRAY in tags:
            base = tags[_DT_INIT_ARRAY]
            n = min(tags.get(_DT_INIT_ARRAYSZ, 0) // self.word_size, MAX_INIT_FUNCTIONS + 1)
            relocated: dict[int, int] | None = None
            for k in range(n):
                slot = base + k * self.word_size
                value = self.word(slot)
                if not value:  # the address a relocation writes there: a RELATIVE one's or a symbol's
                    if relocated is None:
                        relocated = self._init_addresses(base, base + n * self.word_size)
                    value = relocated.get(slot, 0)
                mask = (1 << (8 * self.word_size)) - 1
                if value and value != mask:
                    starts.append(value)
        return starts
    def _tables(self) -> Iterator[tuple[int, int, bool]]:
        """(address, size, is RELA) of JMPREL, REL and RELA."""
        tags = self.tags
        if _DT_JMPREL in tags:
            yield tags[_DT_JMPREL], tags.get(_DT_PLTRELSZ, 0), tags.get(_DT_PLTREL) == _DT_RELA
        if _DT_REL in tags:
            yield tags[_DT_REL], tags.get(_DT_RELSZ, 0), False
        if _DT_RELA in tags:
            yield tags[_DT_RELA], tags.get(_DT_RELASZ, 0), True

    def _relocations(self, address: int, size: int, rela: bool) -> tuple[array[int], array[int], array[int] | None]:
        """r_offset, r_info (and r_addend) columns of one table."""
        layout, n = self.image.layout, (3 if rela else 2)
        count = size // (n * self.word_size)
        offset = self.image.offset_of(address, count * n * self.word_size, "relocation table")
        column = self.image.words
        return (column(layout.word, offset, count * n, "relocation table", 0, n),
                column(layout.word, offset, count * n, "relocation table", 1, n),
                column(layout.word, offset, count * n, "relocation table", 2, n) if rela else None)

    def _init_addresses(self, low: int, high: int) -> dict[int, int]:
        """The addresses relocations write into the words in [low, high): a RELA RELATIVE one's addend, and for one
        that names a function this object defines (OpenBLAS's ``gotoblas_init`` entry is R_AARCH64_ABS64), that
        definition plus the addend (a REL one's addend is the word, 0 here). musl binds the name to its first
        definition in load order: this object's own unless an object loaded before it defines the name too."""
        found: dict[int, int] = {}
        layout = self.image.layout
        mask, shift = layout.r_type_mask, layout.r_sym_shift
        for address, size, rela in self._tables():
            offsets, infos, addends = self._relocations(address, size, rela)
            for i, r_offset in enumerate(offsets):
                if not low <= r_offset < high:
                    continue
                if infos[i] >> shift:
                    defined = self.own_definition(infos[i] >> shift)
                    if defined is not None:
                        found[r_offset] = defined + (addends[i] if addends is not None else 0)
                elif addends is not None and infos[i] & mask == self.spec.relative:
                    found[r_offset] = addends[i]
        return found

    def _symbol(self, index: int) -> tuple[int, int, int, int] | None:
        """Dynamic symbol ``index``: (st_name, st_info, st_shndx, st_value)."""
        if index in self._symbols:
            return self._symbols[index]
        found: tuple[int, int, int, int] | None = None
        if _DT_SYMTAB in self.tags:
            layout = self.image.layout
            raw = self.read_code(self.tags[_DT_SYMTAB] + index * layout.sym_size, layout.sym_size)
            if raw is not None:
                order = "<" if self.little else ">"
                if layout.bits == 64:
                    found = struct.unpack_from(order + "IBxHQ", raw)
                else:
                    name, value, _, info, _, shndx = struct.unpack_from(order + "IIIBBH", raw)
                    found = (name, info, shndx, value)
        self._symbols[index] = found
        return found

    def own_definition(self, index: int) -> int | None:
        """Where dynamic symbol ``index`` is defined, when this object defines it as a function (an IFUNC's value
        is its resolver, not the function: not followed)."""
        symbol = self._symbol(index)
        if symbol is None:
            return None
        _, info, shndx, value = symbol
        if not 0 < shndx < _SHN_LORESERVE or info & 15 not in (_STT_NOTYPE, _STT_FUNC) or not value:
            return None
        return value

    def _slot_symbol(self, slot: int) -> int | None:
        """The symbol index of the JUMP_SLOT or GLOB_DAT relocation that fills ``slot``."""
        if self._slots is None:  # the r_offset and r_info columns; searched at C speed, one slot at a time
            self._slots = [self._relocations(address, size, rela)[:2] for address, size, rela in self._tables()]
        layout = self.image.layout
        for offsets, infos in self._slots:
            at = -1
            while True:
                try:
                    at = offsets.index(slot, at + 1)
                except ValueError:
                    break
                if infos[at] & layout.r_type_mask in self.spec.slot_types and infos[at] >> layout.r_sym_shift:
                    return int(infos[at] >> layout.r_sym_shift)
        return None

    def _slot_name(self, slot: int) -> str | None:
        index = self._slot_symbol(slot)
        symbol = None if index is None else self._symbol(index)
        if symbol is None or _DT_STRTAB not in self.tags or symbol[0] >= self.tags.get(_DT_STRSZ, 0):
            return None
        start = self.tags[_DT_STRTAB] + symbol[0]
        try:
            offset = self.image.offset_of(start, 1, "string table")
            text = self.image.bytes_at(offset, min(_MAX_NAME, self.image.extent(start, offset)), "string table")
        except MalformedElf:
            return None
        end = text.find(b"\0")
        return text[:end].decode("utf-8", "surrogateescape") if end > 0 else None

    # --- code ---

    def _scan(self, start: int) -> set[int]:
        """The GOT slots called from the function at ``start`` and its callees."""
        spec = self.spec
        slots: set[int] = set()
        budget = MAX_INSTRUCTIONS
        queue, seen = [(start, 0)], {start}
        while queue and budget > 0:
            function, depth = queue.pop(0)
            address = spec.code_address(function)
            try:
                offset = self.image.offset_of(address, 1, "code")
            except MalformedElf:
                continue
            size = min(self.image.extent(address, offset), spec.code_per_instruction * budget + 16)
            code = self.read_code(address, size)
            if code is None:
                continue
            used, calls, locals_ = spec.decode(code, function, budget, self)
            budget -= used
            slots |= calls
            if depth < MAX_DEPTH:
                own = (self._own_slot_target(slot) for slot in sorted(calls))
                for target in [*locals_, *(t for t in own if t is not None)]:
                    if target not in seen:
                        seen.add(target)
                        queue.append((target, depth + 1))
        if budget <= 0:
            self.capped = True
        return slots

    def _own_slot_target(self, slot: int) -> int | None:
        """Where a call through ``slot`` goes when its symbol is the object's own function (musl binds it there
        unless an object loaded before defines the name)."""
        index = self._slot_symbol(slot)
        return None if index is None else self.own_definition(index)

    def zero_at_load(self, vaddr: int) -> bool:
        """Whether ``vaddr`` lies in a PT_LOAD's memory past its file image (``.bss``, zero when loaded) in a word no
        relocation writes."""
        if self._bss is None:
            self._bss = self._zero_ranges()
        if not any(low <= vaddr < high for low, high in self._bss):
            return False
        if self._slots is None:
            self._slots = [self._relocations(address, size, rela)[:2] for address, size, rela in self._tables()]
        word = vaddr - vaddr % self.word_size
        return not any(word in offsets for offsets, _ in self._slots)

    def _zero_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of each PT_LOAD's memory past its file image, read from the program headers."""
        wide = self.image.layout.bits == 64
        order = "<" if self.little else ">"
        try:
            header = self.image.bytes_at(0, 64 if wide else 52, "ELF header")
            phoff, phentsize, phnum = (struct.unpack_from(order + "Q", header, 32)[0] if wide else
                                       struct.unpack_from(order + "I", header, 28)[0],
                                       *struct.unpack_from(order + "HH", header, 54 if wide else 42))
            entry = 56 if wide else 32
            if phentsize < entry or phnum > _MAX_SEGMENTS:
                return []
            table = self.image.bytes_at(phoff, phentsize * phnum, "program headers")
        except MalformedElf:
            return []
        ranges = []
        for k in range(phnum):
            if wide:
                p_type, _, _, vaddr, _, filesz, memsz = struct.unpack_from(order + "IIQQQQQ", table, k * phentsize)
            else:
                p_type, _, vaddr, _, filesz, memsz = struct.unpack_from(order + "IIIIII", table, k * phentsize)
            if p_type == _PT_LOAD and memsz > filesz:
                ranges.append((vaddr + filesz, vaddr + memsz))
        return ranges

    def plt_slot(self, target: int) -> int | None:
        """The GOT slot of the PLT stub at ``target``, or None when it is not one."""
        if target not in self._stubs:
            self._stubs[target] = self.spec.plt_slot(self, target)
        return self._stubs[target]
