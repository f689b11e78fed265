"""ppc64 (little-endian ELFv2, Alpine's ppc64le): calls ``bl`` (a tail call ``b``) to a linker-made call stub
``[std r2, 24(r1);] [addis r12, r2, hi;] ld r12, lo(r12 or r2); mtctr r12; bctr`` (binutils and lld alike), and
calls through a slot the function loads itself (``[addis rX, r2, hi;] ld rY, lo(rX or r2); mtctr rY; bctrl``:
gcc's inline PLT sequences and GOT loads). A slot is addressed from the TOC pointer r2, which a function sets
at its global entry (``addis r2, r12, hi; addi r2, r2, lo``, r12 = that entry); an own function is called at its
local entry, 8 bytes on. So the stubs are resolved here with the calling function's TOC, not by ``plt_slot``.
Big-endian ELFv1 (function descriptors) is not read."""

from __future__ import annotations

import struct
from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct, sign

_STD_R2: Final = 0xF8410018  # std r2, 24(r1)
_ADDIS_R12_R2: Final = 0x3D820000  # addis r12, r2, hi
_LD_R12_R12: Final = 0xE98C0000  # ld r12, lo(r12)
_LD_R12_R2: Final = 0xE9820000  # ld r12, lo(r2)
_MTCTR_R12: Final = 0x7D8903A6
_MTCTR: Final = 0x7C0903A6  # mtctr rS (rS in bits 21-25)
_BCTR, _BCTRL, _BLR = 0x4E800420, 0x4E800421, 0x4E800020


def _words(memory: Memory, address: int, n: int) -> tuple[int, ...]:
    """``n`` words at ``address``, or fewer up to where its segment ends, padded with zeros."""
    for size in range(4 * n, 0, -4):
        code = memory.read_code(address, size)
        if code is not None and len(code) >= 4:
            whole = len(code) // 4
            return (*struct.unpack(f"<{whole}I", code[: 4 * whole]), *(0,) * (n - whole))
    return ()


def toc_of(memory: Memory, function: int) -> int | None:
    """The TOC pointer a function sets at its global entry: at ``function``, or 8 bytes before (a local entry)."""
    for entry in (function, function - 8):
        words = _words(memory, entry, 2)
        if len(words) == 2 and words[0] & 0xFFFF0000 == 0x3C4C0000 and words[1] & 0xFFFF0000 == 0x38420000:
            return entry + (sign(words[0] & 0xFFFF, 16) << 16) + sign(words[1] & 0xFFFF, 16)
    return None


def stub_offset(memory: Memory, target: int) -> int | None:
    """The slot of the call stub at ``target``, as an offset from the TOC pointer; None when it is not one."""
    words = _words(memory, target, 5)
    if not words:
        return None
    i = 1 if words[0] == _STD_R2 else 0
    if words[i] & 0xFFFF0000 == _ADDIS_R12_R2 and words[i + 1] & 0xFFFF0003 == _LD_R12_R12:
        offset, i = (sign(words[i] & 0xFFFF, 16) << 16) + sign(words[i + 1] & 0xFFFC, 16), i + 2
    elif words[i] & 0xFFFF0003 == _LD_R12_R2:
        offset, i = sign(words[i] & 0xFFFC, 16), i + 1
    else:
        return None
    return offset if words[i : i + 2] == (_MTCTR_R12, _BCTR) else None


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    if not memory.little:
        return 0, slots, calls
    toc = toc_of(memory, pc)
    bases: dict[int, int] = {}  # register -> TOC + hi << 16 (addis rX, r2, hi)
    loaded: dict[int, int] = {}  # register -> the slot it was loaded from
    ctr: int | None = None  # the slot loaded into the count register
    furthest = pc
    n = min(len(code) // 4, budget)
    used = 0
    for used, w in enumerate(struct.unpack(f"<{n}I", code[: 4 * n]), 1):
        here, op, rt, ra = pc + 4 * (used - 1), w >> 26, (w >> 21) & 31, (w >> 16) & 31
        target = None
        if op == 18 and not w & 2:  # b / bl
            target = here + sign(w & 0x3FFFFFC, 26)
        elif op == 16 and not w & 3:  # bc: always (BO 1z1zz), or a conditional branch; bcl is not a call
            if rt & 0x14 == 0x14:
                target = here + sign(w & 0xFFFC, 16)
            else:
                furthest = max(furthest, here + sign(w & 0xFFFC, 16))
        elif op == 15 or op == 14:  # addis, addi
            bases.pop(rt, None)
            loaded.pop(rt, None)
            if op == 15 and ra == 2 and toc is not None:
                bases[rt] = toc + (sign(w & 0xFFFF, 16) << 16)
        elif op == 58 and not w & 3:  # ld rT, ds(rA)
            base = toc if ra == 2 else bases.get(ra)
            bases.pop(rt, None)
            loaded.pop(rt, None)
            if base is not None:
                loaded[rt] = base + sign(w & 0xFFFC, 16)
        elif w & 0xFC1FFFFF == _MTCTR:
            ctr = loaded.get(rt)
        elif w in (_BCTR, _BCTRL) and ctr is not None:
            slots.add(ctr)
        if w in (_BCTR, _BLR) and here >= furthest:  # bctr: an indirect jump (a switch, a tail call)
            break
        if target is None:
            continue
        offset = stub_offset(memory, target)
        if offset is not None and toc is None:  # a stub, through a slot not known here
            if not w & 1 and here >= furthest:
                break
            continue
        slot = None if offset is None or toc is None else toc + offset
        reach = direct(here, target, pc, slot, bool(w & 1), furthest, slots, calls)  # bit 0: bl
        if reach is None:
            break
        furthest = reach
    return used, slots, calls


def plt_slot(memory: Memory, target: int) -> int | None:
    """Not known from the stub alone: its slot is relative to the caller's TOC (``stub_offset``, in ``decode``)."""
    return None


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({21, 20}), 22, decode, plt_slot)
