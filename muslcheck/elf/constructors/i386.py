"""i386: calls through a PLT stub (``call rel32``, or ``jmp`` as a tail call) and through a GOT slot
(``call *off(%reg)``, ``-fno-plt``, where ``reg`` holds an address this function computed from its own: ``call
__x86.get_pc_thunk.reg`` or ``call 1f; 1: pop %reg``, then ``add $imm32, %reg``). The length decoder is x86_64's
opcode tables read in 32-bit mode: no REX, no RIP-relative addressing, 4-byte moffs and ``mov $imm``."""

from __future__ import annotations

from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct
from muslcheck.elf.constructors.x86_64 import _IMM8_0F, _IMM_1, _MODRM_1, _NO_MODRM_0F, _PREFIXES, immediate_size

_MAX_LENGTH: Final = 15
# 32-bit mode's own one-byte opcodes: imm sizes (far call/jmp ptr16:32, AAM/AAD, group 1 alias 0x82, moffs).
_IMM_32: Final = {**_IMM_1, 0x9A: 6, 0xEA: 6, 0xD4: 1, 0xD5: 1, 0x82: 1, **dict.fromkeys((0xA0, 0xA1, 0xA2, 0xA3), 4)}
_MODRM_32: Final = _MODRM_1 | {0xC4, 0xC5}  # LES, LDS when not VEX
_CALLEE_SAVED: Final = frozenset({3, 5, 6, 7})  # ebx, ebp, esi, edi keep a GOT pointer across calls
_WRITES_REG: Final = frozenset({0x03, 0x0B, 0x13, 0x1B, 0x23, 0x2B, 0x33, 0x8B, 0x8D})  # op r32, r/m32


def _modrm_size(code: bytes, i: int) -> int:
    """Bytes of ModRM, SIB and displacement at ``i`` (mod 00 rm 101 is an absolute disp32)."""
    modrm = code[i]
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return 1
    size = 1
    if rm == 4:
        size += 1
        if mod == 0 and code[i + 1] & 7 == 5:
            return size + 4
    elif mod == 0 and rm == 5:
        return 5
    return size + (1 if mod == 1 else 4 if mod == 2 else 0)


def _thunk_register(memory: Memory, target: int) -> int | None:
    """The register ``__x86.get_pc_thunk.reg`` (``mov (%esp), %reg; ret``) at ``target`` loads, or None."""
    code = memory.read_code(target, 4)
    if code is None or code[0] != 0x8B or code[1] & 0xC7 != 0x04 or code[2] != 0x24 or code[3] != 0xC3:
        return None
    return (code[1] >> 3) & 7


def _branch(target: int, start: int, furthest: int, calls: list[int]) -> int:
    """A conditional branch: how far the function reaches. One to before the function's start goes to a part of it
    placed elsewhere (GCC's ``.text.unlikely`` ``fn.cold``): followed as a callee."""
    if target < start:
        calls.append(target)
    return max(furthest, target)


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    known: dict[int, int] = {}  # register -> the address it holds (the GOT pointer being built)
    popped: int | None = None  # the address ``call 1f`` just pushed, for the ``pop %reg`` at 1:
    furthest = pc
    i = used = 0
    limit = len(code) - 2 * _MAX_LENGTH
    while used < budget and i <= limit:
        used += 1
        start = i
        after_call_next, popped = popped, None
        operand16 = False
        while code[i] in _PREFIXES and i - start < _MAX_LENGTH:
            operand16 |= code[i] == 0x66
            i += 1
        op = code[i]
        i += 1
        here = pc + start
        if op == 0x0F:
            op2 = code[i]
            i += 1
            if op2 in (0x38, 0x3A):
                i += 1 + _modrm_size(code, i + 1) + (1 if op2 == 0x3A else 0)
            elif 0x80 <= op2 < 0x90:  # Jcc rel32
                furthest = _branch(pc + i + 4 + int.from_bytes(code[i : i + 4], "little", signed=True), pc,
                                   furthest, calls)
                i += 4
            elif op2 not in _NO_MODRM_0F:
                known.pop((code[i] >> 3) & 7, None)
                i += _modrm_size(code, i) + (1 if op2 in _IMM8_0F else 0)
            continue
        if op in (0xC4, 0xC5, 0x62) and code[i] >= 0xC0:  # VEX, EVEX (in 32-bit mode: a ModRM byte's mod 11)
            mapping = code[i] & 0x1F if op == 0xC4 else 1 if op == 0xC5 else code[i] & 7
            i += 2 if op == 0xC4 else 1 if op == 0xC5 else 3
            op2 = code[i]
            i += 1
            i += _modrm_size(code, i) + (1 if mapping == 3 or (mapping == 1 and op2 in _IMM8_0F) else 0)
            continue
        modrm = code[i] if op in _MODRM_32 else None
        reg = (modrm >> 3) & 7 if modrm is not None else None
        operand = i
        if modrm is not None:
            i += _modrm_size(code, i)
        end = i + immediate_size(_IMM_32, op, reg, operand16, False)
        after = pc + end
        if op in (0xE8, 0xE9, 0xEB) or 0x70 <= op < 0x80 or 0xE0 <= op < 0xE4:
            target = after + int.from_bytes(code[i:end], "little", signed=True)
            if op == 0xE8:
                thunk = _thunk_register(memory, target)
                if thunk is not None:
                    known[thunk] = after
                elif target == after:  # call 1f; 1: pop %reg
                    popped = after
                else:
                    direct(here, target, pc, memory.plt_slot(target), True, furthest, slots, calls)
                    known = {r: v for r, v in known.items() if r in _CALLEE_SAVED}
            elif op in (0xE9, 0xEB):
                reach = direct(here, target, pc, memory.plt_slot(target), False, furthest, slots, calls)
                if reach is None:
                    break
                furthest = reach
            else:
                furthest = _branch(target, pc, furthest, calls)
        elif op == 0xFF and reg in (2, 4) and modrm is not None:  # call / jmp *disp(%reg)
            mod, base = modrm >> 6, modrm & 7
            if mod in (1, 2) and base != 4 and base in known:
                size = 1 if mod == 1 else 4
                slots.add(known[base] + int.from_bytes(code[operand + 1 : operand + 1 + size], "little",
                                                       signed=True))
            elif mod == 0 and base == 5:  # call / jmp *abs32
                slots.add(int.from_bytes(code[operand + 1 : operand + 5], "little"))
            if reg == 4 and here >= furthest:
                break
            if reg == 2:
                known = {r: v for r, v in known.items() if r in _CALLEE_SAVED}
        elif op in (0xC3, 0xC2) and here >= furthest:
            break
        elif 0x58 <= op < 0x60:  # pop %reg
            known.pop(op & 7, None)
            if after_call_next is not None:
                known[op & 7] = after_call_next
        elif op == 0x81 and modrm is not None and modrm >> 6 == 3 and reg == 0 and modrm & 7 in known:
            known[modrm & 7] = (known[modrm & 7] + int.from_bytes(code[i:end], "little", signed=True)) & 0xFFFFFFFF
        elif 0xB8 <= op < 0xC0 or 0x40 <= op < 0x50:  # mov $imm, inc, dec
            known.pop(op & 7, None)
        elif modrm is not None and reg is not None:
            if op in _WRITES_REG:
                known.pop(reg, None)
            elif modrm >> 6 == 3 and op not in (0x38, 0x39, 0x84, 0x85) and reg != 7:  # a write to r/m
                known.pop(modrm & 7, None)
        i = end
    return used, slots, calls


_STUBS: Final = ((b"\xff\xa3", True), (b"\xff\x25", False),  # jmp *off(%ebx), jmp *abs32
                 (b"\xf3\x0f\x1e\xfb\xff\xa3", True), (b"\xf3\x0f\x1e\xfb\xff\x25", False))  # after endbr32
_DT_PLTGOT: Final = 3


def plt_slot(memory: Memory, target: int) -> int | None:
    """``jmp *off(%ebx)`` (PIC: %ebx holds DT_PLTGOT) or ``jmp *abs32``, after an optional ``endbr32``."""
    code = memory.read_code(target, 10)
    if code is None:
        return None
    for prefix, relative in _STUBS:
        if code.startswith(prefix):
            value = int.from_bytes(code[len(prefix) : len(prefix) + 4], "little", signed=relative)
            if not relative:
                return value
            got = memory.tags.get(_DT_PLTGOT)
            return None if got is None else (got + value) & 0xFFFFFFFF
    return None


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({7, 6}), 8, decode, plt_slot)
