"""s390x: calls through a PLT stub (``brasl %r14``, or ``jg`` as a tail call) and through a GOT slot
(``lgrl %rN, slot`` or ``larl %rN, slot; lg %rN, 0(%rN)``, then ``basr %r14, %rN`` or ``br %rN``). Big-endian;
an instruction's length is in the top two bits of its first byte (2, 4, 4, 6); relative offsets count halfwords.

The ``.bss`` guard (as aarch64's): a word of the object's ``.bss`` loaded and tested (``lt``/``ltg`` from a ``larl``
address) makes the condition code 0, so a ``brc``/``brcl`` right after it whose mask leaves out CC 0 (``jne``) is
never taken."""

from __future__ import annotations

from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct, sign

_LENGTH: Final = (2, 4, 4, 6)
# RIE compare-and-branch (crj, cgrj, cij, cgij, ...) and brxhg/brxlg: 0xEC, a 16-bit offset at bytes 2-3.
_EC_BRANCHES: Final = frozenset([0x44, 0x45, 0x64, 0x65, 0x76, 0x77, 0x7C, 0x7D, 0x7E, 0x7F])
_RI_BRANCHES: Final = frozenset([4, 5, 6, 7])  # 0xA7 brc, bras, brct, brctg: a 16-bit offset
_PLT_LOAD: Final = bytes.fromhex("e31010000004")  # lg %r1, 0(%r1)
_BR_R1: Final = bytes.fromhex("07f1")


def _relative(code: bytes, at: int, size: int) -> int:
    return 2 * sign(int.from_bytes(code[at : at + size], "big"), 8 * size)


def _displacement(code: bytes, at: int) -> int:  # an RXY instruction's 20-bit signed displacement
    return sign((code[at + 2] & 15) << 8 | code[at + 3] | code[at + 4] << 12, 20)


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    addresses: dict[int, int] = {}  # register -> address (larl)
    loaded: dict[int, int] = {}  # register -> the slot it was loaded from (lgrl; larl + lg)
    furthest = pc
    cc_zero = False  # the instruction before set the condition code from a .bss word (0 at load)
    i = used = 0
    while used < budget and i + 2 <= len(code):
        op, r1, low = code[i], code[i + 1] >> 4, code[i + 1] & 15
        size = _LENGTH[op >> 6]
        if i + size > len(code):
            break
        used += 1
        here, at = pc + i, i
        i += size
        if cc_zero and op in (0xA7, 0xC0) and low == 4 and not r1 & 8:
            cc_zero = False
            continue  # brc/brcl M without CC 0 (jne), after a .bss word tested: never taken
        cc_zero = False
        target: int | None = None
        if op == 0xC0 and low in (4, 5):  # brcl M / brasl R: a 32-bit offset
            target, call, always = here + _relative(code, at + 2, 4), low == 5, r1 == 15
        elif op == 0xA7 and low in _RI_BRANCHES:  # brc M / bras R / brct(g): a 16-bit offset
            target, call, always = here + _relative(code, at + 2, 2), low == 5, low == 4 and r1 == 15
        elif (op == 0xEC and code[at + 5] in _EC_BRANCHES) or op in (0x84, 0x85):  # compare and branch, brxh(le)
            target, call, always = here + _relative(code, at + 2, 2), False, False
        if target is not None:
            if call or always:
                reach = direct(here, target, pc, memory.plt_slot(target), call, furthest, slots, calls)
                if reach is None:
                    break
                furthest = reach
            elif r1 or low != 4:  # not a nop (brc 0)
                furthest = max(furthest, target)
        elif op == 0xC0 and low == 0:  # larl
            addresses[r1] = here + _relative(code, at + 2, 4)
            loaded.pop(r1, None)
        elif op == 0xC4 and low == 8:  # lgrl
            loaded[r1] = here + _relative(code, at + 2, 4)
            addresses.pop(r1, None)
        elif op == 0xE3 and code[at + 5] in (0x12, 0x02):  # lt/ltg R1, D(X, B): loads and tests
            base, address = code[at + 2] >> 4, addresses.get(code[at + 2] >> 4) if low == 0 else None
            addresses.pop(r1, None)
            loaded.pop(r1, None)
            if address is not None and base:
                cc_zero = memory.zero_at_load(address + _displacement(code, at))
        elif op == 0xE3 and code[at + 5] == 0x04:  # lg R1, D(X, B): a slot when B holds a larl address, X none
            base, address = code[at + 2] >> 4, addresses.get(code[at + 2] >> 4) if low == 0 else None
            addresses.pop(r1, None)
            loaded.pop(r1, None)
            if address is not None and base:
                loaded[r1] = address + _displacement(code, at)
        elif op == 0x0D and low in loaded:  # basr R1, R2
            slots.add(loaded[low])
        elif op == 0x07 and r1 and low:  # bcr M, R: a return (%r14) or an indirect jump, unconditional when M=15
            if low in loaded:
                slots.add(loaded[low])
            if r1 == 15 and here >= furthest:
                break
        elif op == 0x47 and r1 == 15 and here >= furthest:  # b D(X, B)
            break
    return used, slots, calls


def plt_slot(memory: Memory, target: int) -> int | None:
    """``larl %r1, slot; lg %r1, 0(%r1); br %r1``."""
    code = memory.read_code(target, 14)
    if code is None or memory.little or code[:2] != b"\xc0\x10" or code[6:12] != _PLT_LOAD or code[12:] != _BR_R1:
        return None
    return target + 2 * sign(int.from_bytes(code[2:6], "big"), 32)


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({11, 10}), 12, decode, plt_slot, code_per_instruction=6)
