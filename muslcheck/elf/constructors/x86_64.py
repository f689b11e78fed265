"""x86_64: calls through a PLT stub (``call rel32``, or ``jmp`` as a tail call) and through a GOT slot
(``call *slot(%rip)``, ``-fno-plt``), over a length decoder of the general-purpose, SSE, VEX and EVEX encodings."""

from __future__ import annotations

from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct

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


def immediate_size(table: dict[int, int], op: int, reg: int | None, operand16: bool, rex_w: bool) -> int:
    """Bytes of the immediate of one-byte opcode ``op`` (``reg``: its ModRM reg field), by ``table``'s sizes."""
    imm = table.get(op, 0)
    if imm == -1:
        return 2 if operand16 else 4
    if imm == -2:
        return 8 if rex_w else (2 if operand16 else 4)
    if op in (0xF6, 0xF7) and reg in (0, 1):  # test r/m, imm
        return 1 if op == 0xF6 else 2 if operand16 else 4
    return imm


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


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
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
            end = i + immediate_size(_IMM_1, op, reg, operand16, rex_w)
            here = pc + start
            if op in (0xE8, 0xE9, 0xEB) or 0x70 <= op < 0x80 or 0xE0 <= op < 0xE4:
                target = pc + end + int.from_bytes(code[i:end], "little", signed=True)
                if op in (0xE8, 0xE9, 0xEB):  # call, jmp
                    reach = direct(here, target, pc, memory.plt_slot(target), op == 0xE8, furthest, slots, calls)
                    if reach is None:
                        break
                    furthest = reach
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


_STUB_PREFIXES: Final = (b"\xff\x25", b"\xf3\x0f\x1e\xfa\xff\x25", b"\xf3\x0f\x1e\xfa\xf2\xff\x25", b"\xf2\xff\x25")


def plt_slot(memory: Memory, target: int) -> int | None:
    """``jmp *slot(%rip)``, after an optional ``endbr64`` and ``bnd``."""
    code = memory.read_code(target, 11)
    if code is None:
        return None
    for prefix in _STUB_PREFIXES:
        if code.startswith(prefix) and len(code) >= len(prefix) + 4:
            end = len(prefix) + 4
            return target + end + int.from_bytes(code[len(prefix):end], "little", signed=True)
    return None


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({7, 6}), 8, decode, plt_slot)
