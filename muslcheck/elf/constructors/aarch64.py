"""aarch64: calls through a PLT stub (``bl``, or ``b`` as a tail call) and through a GOT slot
(``adrp xN, page; ldr xN, [xN, #off]; blr xN``).

The ``.bss`` guard: ``cbnz``/``tbnz`` on a register that holds a word of the object's ``.bss``
(``adrp xM, page; ldr(b|h) wN, [xM, #off]``, no call since in that function) is taken as never taken, the word's
value at load (0): what only that branch reaches is not swept (libgfortran's ``set_fpu`` calls ``feenableexcept``
only when ``options.fpe``, a ``.bss`` field that only a Fortran main program sets, is non-zero)."""

from __future__ import annotations

import struct
from typing import Final, cast

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct, sign

_BTI_C: Final = 0xD503245F
_BR_X17: Final = 0xD61F0220
_AUTIA1716: Final = 0xD503219F


def _adrp_offset(word: int) -> int:
    return sign(((word >> 5) & 0x7FFFF) << 2 | (word >> 29) & 3, 21) << 12


_LOAD_SIZES: Final = {0xF9400000: 8, 0xB9400000: 4, 0x79400000: 2, 0x39400000: 1}  # LDR X, W, LDRH, LDRB (imm12)


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    pages: dict[int, int] = {}  # register -> page (adrp), or slot address loaded (ldr)
    loaded: dict[int, int] = {}
    zero: set[int] = set()  # registers that hold a .bss word loaded since the last call
    furthest = pc
    n = min(len(code) // 4, budget)
    words = struct.unpack(f"<{n}I", code[: 4 * n]) if memory.little else ()
    used = 0
    for used, w in enumerate(words, 1):
        here = pc + 4 * (used - 1)
        if w & 0x7C000000 == 0x14000000:  # B / BL imm26
            target = here + sign(w & 0x3FFFFFF, 26) * 4
            if w >> 31:  # BL
                zero.clear()
            reach = direct(here, target, pc, memory.plt_slot(target), bool(w >> 31), furthest, slots, calls)
            if reach is None:
                break
            furthest = reach
            continue
        if w & 0x7E000000 in (0x34000000, 0x36000000) and w >> 24 & 1 and w & 31 in zero:
            continue  # CBNZ/TBNZ on a .bss word: never taken
        if w & 0xFF000010 == 0x54000000 or w & 0x7E000000 == 0x34000000:  # B.cond, CBZ/CBNZ: imm19
            furthest = max(furthest, here + sign((w >> 5) & 0x7FFFF, 19) * 4)
            continue
        if w & 0x7E000000 == 0x36000000:  # TBZ/TBNZ: imm14
            furthest = max(furthest, here + sign((w >> 5) & 0x3FFF, 14) * 4)
            continue
        zero.discard(w & 31)  # any other instruction may write bits 0-4's register (a store's only reads it)
        if w & 0x3A400000 == 0x28400000:  # LDP, LDNP, LDPSW: Rt2 too
            zero.discard((w >> 10) & 31)
        if w & 0x9F000000 == 0x90000000:  # ADRP
            pages[w & 31] = (here & ~0xFFF) + _adrp_offset(w)
            loaded.pop(w & 31, None)
        elif w & 0xFFC00000 in _LOAD_SIZES:  # LDR Xt/Wt, LDRH, LDRB [Xn, #imm]
            base, size = pages.get((w >> 5) & 31), _LOAD_SIZES[w & 0xFFC00000]
            if size == 8:
                loaded.pop(w & 31, None)
            if base is not None:
                address = base + ((w >> 10) & 0xFFF) * size
                if size == 8:
                    loaded[w & 31] = address
                if memory.zero_at_load(address):
                    zero.add(w & 31)
        elif w & 0xFFFFFC1F == 0xD63F0000:  # BLR Xn
            zero.clear()
            if (w >> 5) & 31 in loaded:
                slots.add(loaded[(w >> 5) & 31])
        elif w & 0xFFFFFC1F in (0xD65F0000, 0xD61F0000):  # RET, BR Xn
            if w & 0xFFFFFC1F == 0xD61F0000 and (w >> 5) & 31 in loaded:
                slots.add(loaded[(w >> 5) & 31])
            if here >= furthest:
                break
    return used, slots, calls


def plt_slot(memory: Memory, target: int) -> int | None:
    """``adrp x16, page; ldr x17, [x16, #off]; add x16, x16, #off; br x17``, after an optional ``bti c``, with
    ``autia1716`` before the ``br`` under pointer authentication."""
    code = memory.read_code(target, 20)
    if code is None or not memory.little:
        return None
    words = struct.unpack("<5I", code)
    i = 1 if words[0] == _BTI_C else 0
    adrp, ldr, _, br = cast(tuple[int, int, int, int], words[i : i + 4])
    if adrp & 0x9F00001F != 0x90000010 or ldr & 0xFFC003FF != 0xF9400211:
        return None
    if br != _BR_X17 and not (br == _AUTIA1716 and words[i + 4] == _BR_X17):
        return None
    return (target & ~0xFFF) + _adrp_offset(adrp) + ((ldr >> 10) & 0xFFF) * 8


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({1026, 1025}), 1027, decode, plt_slot)
