"""The functions a shared object's own initialisation calls through its PLT or GOT, read from its code.

musl runs each object's DT_INIT, then its DT_INIT_ARRAY, once dlopen has relocated every new object
(``do_init_fini``). Under RTLD_LAZY a JUMP_SLOT or GLOB_DAT whose symbol nothing defines is left as the file holds
it (``do_relocs`` defers it): a call through that slot jumps to an unrelocated address, so a latent symbol that a
constructor calls makes ``dlopen`` itself crash. The typical case: aarch64 libgcc's outline-atomics constructor
``init_have_lse_atomics`` calls ``__getauxval``, which musl exports only from 1.2.6.

A small linear disassembly, per architecture (x86_64 and aarch64; others are not read), from each DT_INIT_ARRAY
entry and DT_INIT. Everything is found through the dynamic section, never the section headers. A function's extent
is swept until a return or an unconditional jump that no forward branch seen so far jumps past. What is recorded:

- a direct call or tail jump to a PLT stub (x86_64 ``jmp *slot(%rip)``, with or without ``endbr64``/``bnd``;
  aarch64 ``adrp x16; ldr x17, [x16, #off]; add; br x17``, with or without ``bti c``), and a call through a GOT
  slot (x86_64 ``call *slot(%rip)``; aarch64 ``adrp; ldr xN; blr xN``), whose slot a JUMP_SLOT or GLOB_DAT
  relocation names: that symbol;
- a direct call or tail jump into the object's own code: followed, ``MAX_DEPTH`` levels deep.

Bounded: at most ``MAX_INSTRUCTIONS`` instructions per init function (its callees included), ``MAX_INIT_FUNCTIONS``
init functions; a bound reached is reported (``ConstructorCalls.capped``). Conditional paths are all taken, so a
name may be listed that a run never calls: docs/symbols.md has what that costs, measured against the real loader.
An unreadable address ends that path, never the read: nothing here raises.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol, cast

from muslcheck.model.errors import MalformedElf

MAX_INSTRUCTIONS: Final = 2048  # per init function, its callees included
MAX_INIT_FUNCTIONS: Final = 64  # DT_INIT plus DT_INIT_ARRAY entries read
MAX_DEPTH: Final = 1  # levels of the object's own functions followed below an init function
_MAX_NAME: Final = 4096

_DT_NULL, _DT_PLTRELSZ, _DT_STRTAB, _DT_SYMTAB, _DT_RELA, _DT_RELASZ = 0, 2, 5, 6, 7, 8
_DT_STRSZ, _DT_INIT, _DT_REL, _DT_RELSZ, _DT_PLTREL, _DT_JMPREL = 10, 12, 17, 18, 20, 23
_DT_INIT_ARRAY, _DT_INIT_ARRAYSZ = 25, 27

# Per machine: the relocation types of a PLT or GOT slot (JUMP_SLOT, GLOB_DAT), and RELATIVE.
_SLOT_TYPES: Final = {"x86_64": (frozenset({7, 6}), 8), "aarch64": (frozenset({1026, 1025}), 1027)}


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
    if machine not in _SLOT_TYPES:
        return NONE
    try:
        return _Reader(image, dynamic, machine).read()
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
        self.slot_types, self.relative = _SLOT_TYPES[machine]
        self._slots: list[tuple[array[int], array[int]]] | None = None  # per table: r_offset, r_info
        self.capped = False

    # --- memory ---

    def read(self) -> ConstructorCalls:
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

    def _bytes(self, vaddr: int, size: int) -> bytes | None:
        try:
            return self.image.bytes_at(self.image.offset_of(vaddr, size, "code"), size, "code")
        except MalformedElf:
            return None

    def _word_at(self, vaddr: int) -> int | None:
        raw = self._bytes(vaddr, self.word_size)
        return None if raw is None else int.from_bytes(raw, "little" if self.little else "big")

    def _init_functions(self) -> list[int]:
        tags, starts = self.tags, []
        if tags.get(_DT_INIT):
            starts.append(tags[_DT_INIT])
        if _DT_INIT_ARRAY in tags:
            base = tags[_DT_INIT_ARRAY]
            n = min(tags.get(_DT_INIT_ARRAYSZ, 0) // self.word_size, MAX_INIT_FUNCTIONS + 1)
            addends: dict[int, int] | None = None
            for k in range(n):
                slot = base + k * self.word_size
                value = self._word_at(slot)
                if not value:  # RELA: the address is the RELATIVE relocation's addend
                    if addends is None:
                        addends = self._relative_addends(base, base + n * self.word_size)
                    value = addends.get(slot, 0)
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

    def _relative_addends(self, low: int, high: int) -> dict[int, int]:
        found: dict[int, int] = {}
        mask = self.image.layout.r_type_mask
        for address, size, rela in self._tables():
            if not rela:
                continue
            offsets, infos, addends = self._relocations(address, size, rela)
            assert addends is not None
            for i, r_offset in enumerate(offsets):
                if low <= r_offset < high and infos[i] & mask == self.relative:
                    found[r_offset] = addends[i]
        return found

    def _slot_name(self, slot: int) -> str | None:
        if self._slots is None:  # the r_offset and r_info columns; searched at C speed, one slot at a time
            self._slots = [self._relocations(address, size, rela)[:2] for address, size, rela in self._tables()]
        layout, index = self.image.layout, None
        for offsets, infos in self._slots:
            at = -1
            while index is None:
                try:
                    at = offsets.index(slot, at + 1)
                except ValueError:
                    break
                if infos[at] & layout.r_type_mask in self.slot_types and infos[at] >> layout.r_sym_shift:
                    index = infos[at] >> layout.r_sym_shift
        if index is None or _DT_SYMTAB not in self.tags or _DT_STRTAB not in self.tags:
            return None
        layout = self.image.layout
        raw = self._bytes(self.tags[_DT_SYMTAB] + index * layout.sym_size, 4)
        if raw is None:
            return None
        name_offset = layout.u32.unpack(raw)[0]
        if name_offset >= self.tags.get(_DT_STRSZ, 0):
            return None
        start = self.tags[_DT_STRTAB] + name_offset
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
        decode = _x86_64 if self.machine == "x86_64" else _aarch64
        slots: set[int] = set()
        budget = MAX_INSTRUCTIONS
        queue, seen = [(start, 0)], {start}
        while queue and budget > 0:
            function, depth = queue.pop(0)
            code = self._bytes(function, 1)
            if code is None:
                continue
            offset = self.image.offset_of(function, 1, "code")
            size = min(self.image.extent(function, offset), 4 * budget + 16)
            code = self._bytes(function, size)
            if code is None:
                continue
            used, calls, locals_ = decode(code, function, budget, self)
            budget -= used
            slots |= calls
            if depth < MAX_DEPTH:
                for target in locals_:
                    if target not in seen:
                        seen.add(target)
                        queue.append((target, depth + 1))
        if budget <= 0:
            self.capped = True
        return slots

    def plt_slot(self, target: int) -> int | None:
        """The GOT slot of the PLT stub at ``target``, or None when it is not one."""
        if self.machine == "x86_64":
            code = self._bytes(target, 11)
            if code is None:
                return None
            for prefix in (b"\xff\x25", b"\xf3\x0f\x1e\xfa\xff\x25", b"\xf3\x0f\x1e\xfa\xf2\xff\x25", b"\xf2\xff\x25"):
                if code.startswith(prefix) and len(code) >= len(prefix) + 4:
                    end = len(prefix) + 4
                    return target + end + int.from_bytes(code[len(prefix):end], "little", signed=True)
            return None
        code = self._bytes(target, 20)
        if code is None or not self.little:
            return None
        words = struct.unpack("<5I", code)
        i = 1 if words[0] == _BTI_C else 0
        adrp, ldr, _, br = cast(tuple[int, int, int, int], words[i : i + 4])
        if adrp & 0x9F00001F != 0x90000010 or ldr & 0xFFC003FF != 0xF9400211:
            return None
        if br != _BR_X17 and not (br == _AUTIA1716 and words[i + 4] == _BR_X17):
            return None
        return (target & ~0xFFF) + _adrp_offset(adrp) + ((ldr >> 10) & 0xFFF) * 8


_Decoded = tuple[int, set[int], list[int]]  # (instructions used, GOT slots called, own functions called)

def _jump(here: int, target: int, start: int, slot: int | None, furthest: int, slots: set[int],
          calls: list[int]) -> bool:
    """An unconditional jump at ``here`` in the function at ``start``: whether it ends the sweep. Into a PLT stub,
    or back before the function's start, or forward from its known end: a tail call. Else a jump inside it."""
    if slot is not None:
        slots.add(slot)
        return here >= furthest
    if target < start or (target > here and here >= furthest):
        calls.append(target)
    return here >= furthest


# --- aarch64 ---

_BTI_C: Final = 0xD503245F
_BR_X17: Final = 0xD61F0220
_AUTIA1716: Final = 0xD503219F


def _sign(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def _adrp_offset(word: int) -> int:
    return _sign(((word >> 5) & 0x7FFFF) << 2 | (word >> 29) & 3, 21) << 12


def _aarch64(code: bytes, pc: int, budget: int, reader: _Reader) -> _Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    pages: dict[int, int] = {}  # register -> page (adrp), or slot address loaded (ldr)
    loaded: dict[int, int] = {}
    furthest = pc
    n = min(len(code) // 4, budget)
    words = struct.unpack(f"<{n}I", code[: 4 * n]) if reader.little else ()
    used = 0
    for used, w in enumerate(words, 1):
        here = pc + 4 * (used - 1)
        if w & 0x7C000000 == 0x14000000:  # B / BL imm26
            target = here + _sign(w & 0x3FFFFFF, 26) * 4
            slot = reader.plt_slot(target)
            if w >> 31:  # BL
                if slot is not None:
                    slots.add(slot)
                else:
                    calls.append(target)
                continue
            if _jump(here, target, pc, slot, furthest, slots, calls):
                break
            furthest = max(furthest, target if slot is None and target > here else furthest)
            continue
        if w & 0xFF000010 == 0x54000000 or w & 0x7E000000 == 0x34000000:  # B.cond, CBZ/CBNZ: imm19
            furthest = max(furthest, here + _sign((w >> 5) & 0x7FFFF, 19) * 4)
        elif w & 0x7E000000 == 0x36000000:  # TBZ/TBNZ: imm14
            furthest = max(furthest, here + _sign((w >> 5) & 0x3FFF, 14) * 4)
        elif w & 0x9F000000 == 0x90000000:  # ADRP
            pages[w & 31] = (here & ~0xFFF) + _adrp_offset(w)
            loaded.pop(w & 31, None)
        elif w & 0xFFC00000 == 0xF9400000:  # LDR Xt, [Xn, #imm]
            base = pages.get((w >> 5) & 31)
            loaded.pop(w & 31, None)
            if base is not None:
                loaded[w & 31] = base + ((w >> 10) & 0xFFF) * 8
        elif w & 0xFFFFFC1F == 0xD63F0000:  # BLR Xn
            if (w >> 5) & 31 in loaded:
                slots.add(loaded[(w >> 5) & 31])
        elif w & 0xFFFFFC1F in (0xD65F0000, 0xD61F0000):  # RET, BR Xn
            if w & 0xFFFFFC1F == 0xD61F0000 and (w >> 5) & 31 in loaded:
                slots.add(loaded[(w >> 5) & 31])
            if here >= furthest:
                break
    return used, slots, calls


# --- x86_64 ---

# One-byte opcodes: which take a ModRM byte, and the size of their immediate (-1: 4, or 2 with 0x66; -2: the B8
# family, 8 with REX.W).
_MODRM_1: Final = frozenset(
    [b + k for b in range(0x00, 0x40, 8) for k in range(4)] + [0x62, 0x63, 0x69, 0x6B] + list(range(0x80, 0x90))
    + [0xC0, 0xC1, 0xC6, 0xC7, 0xD0, 0xD1, 0xD2, 0xD3] + list(range(0xD8, 0xE0)) + [0xF6, 0xF7, 0xFE, 0xFF]
)
_IMM_1: Final = {
    **{b + 4: 1 for b in range(0x00, 0x40, 8)}, **{b + 5: -1 for b in range(0x00, 0x40, 8)},
    0x68: -1, 0x69: -1, 0x6A: 1, 0x6B: 1, **dict.fromkeys(range(0x70, 0x80), 1), 0x80: 1, 0x81: -1, 0x83: 1,
    0xA8: 1, 0xA9: -1, **dict.fromkeys(range(0xB0, 0xB8), 1), **dict.fromkeys(range(0xB8, 0xC0), -2),
    0xC0: 1, 0xC1: 1, 0xC2: 2, 0xC6: 1, 0xC7: -1, 0xC8: 3, 0xCA: 2, 0xCD: 1, **dict.fromkeys(range(0xE0, 0xE8), 1),
    0xE8: 4, 0xE9: 4, 0xEB: 1, **dict.fromkeys((0xA0, 0xA1, 0xA2, 0xA3), 8),
}
_NO_MODRM_0F: Final = frozenset([0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0E, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
                                 0x37, 0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA, *range(0x80, 0x90),
                                 *range(0xC8, 0xD0)])
_IMM8_0F: Final = frozenset([0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6])
_PREFIXES: Final = frozenset([0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65])


def _modrm_size(code: bytes, i: int) -> tuple[int, int | None]:
    """(bytes of ModRM, SIB and displacement at ``i``, the RIP-relative displacement's offset or None)."""
    modrm = code[i]
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return 1, None
    size = 1
    if rm == 4:
        size += 1
        if mod == 0 and code[i + 1] & 7 == 5:
            return size + 4, None
    elif mod == 0 and rm == 5:
        return 5, i + 1
    return size + (1 if mod == 1 else 4 if mod == 2 else 0), None


def _x86_64(code: bytes, pc: int, budget: int, reader: _Reader) -> _Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    furthest = pc
    i = used = 0
    limit = len(code) - 16
    while used < budget and i <= limit:
        used += 1
        start = i
        operand16 = False
        while code[i] in _PREFIXES:
            operand16 |= code[i] == 0x66
            i += 1
        rex_w = False
        if code[i] & 0xF0 == 0x40:
            rex_w = bool(code[i] & 8)
            i += 1
        op = code[i]
        i += 1
        rip: int | None = None
        imm = 0
        if op in (0xC4, 0xC5, 0x62):  # VEX, EVEX
            if op == 0xC4:
                mapping = code[i] & 0x1F
                i += 2
            elif op == 0xC5:
                mapping = 1
                i += 1
            else:
                mapping = code[i] & 7
                i += 3
            op2 = code[i]
            i += 1
            size, rip = _modrm_size(code, i)
            i += size
            imm = 1 if mapping == 3 or (mapping == 1 and op2 in _IMM8_0F) else 0
        elif op == 0x0F:
            op2 = code[i]
            i += 1
            if op2 in (0x38, 0x3A):
                i += 1
                size, rip = _modrm_size(code, i)
                i += size
                imm = 1 if op2 == 0x3A else 0
            elif op2 in _NO_MODRM_0F:
                if 0x80 <= op2 < 0x90:  # Jcc rel32
                    furthest = max(furthest, pc + i + 4 + int.from_bytes(code[i : i + 4], "little", signed=True))
                    imm = 4
            else:
                size, rip = _modrm_size(code, i)
                i += size
                imm = 1 if op2 in _IMM8_0F else 0
        else:
            reg = None
            if op in _MODRM_1:
                reg = (code[i] >> 3) & 7
                size, rip = _modrm_size(code, i)
                i += size
            imm = _IMM_1.get(op, 0)
            if imm == -1:
                imm = 2 if operand16 else 4
            elif imm == -2:
                imm = 8 if rex_w else (2 if operand16 else 4)
            elif op == 0xF6 and reg in (0, 1):
                imm = 1
            elif op == 0xF7 and reg in (0, 1):
                imm = 2 if operand16 else 4
            end = i + imm
            here = pc + start
            if op in (0xE8, 0xE9, 0xEB) or 0x70 <= op < 0x80 or 0xE0 <= op < 0xE4:
                target = pc + end + int.from_bytes(code[i:end], "little", signed=True)
                if op == 0xE8 or op in (0xE9, 0xEB):
                    slot = reader.plt_slot(target)
                    if op == 0xE8:
                        if slot is not None:
                            slots.add(slot)
                        else:
                            calls.append(target)
                    elif _jump(here, target, pc, slot, furthest, slots, calls):
                        break
                    elif slot is None and target > here:
                        furthest = max(furthest, target)
                else:
                    furthest = max(furthest, target)
            elif op == 0xFF and reg in (2, 4) and rip is not None:  # call / jmp *slot(%rip)
                slots.add(pc + end + int.from_bytes(code[rip : rip + 4], "little", signed=True))
                if reg == 4 and here >= furthest:
                    break
            elif (op in (0xC3, 0xC2) or (op == 0xFF and reg == 4)) and here >= furthest:
                break
            i = end
            continue
        i += imm
    return used, slots, calls
