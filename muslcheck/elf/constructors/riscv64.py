"""riscv64: calls and tail jumps to a PLT stub: ``jal`` / ``c.j`` (the linker relaxes ``call``/``tail`` to them),
or ``auipc rN, hi; jalr rd, lo(rN)`` unrelaxed (``ra``: a call; ``x0``: a tail jump). GOT slots are R_RISCV_64,
which musl binds even under RTLD_LAZY: only PLT slots (JUMP_SLOT) are left unbound, so only stubs matter.
Compressed (RVC) 16-bit instructions have low bits other than 0b11.

The ``.bss`` guard (as aarch64's): ``bnez`` on a register loaded from a word of the object's ``.bss``
(``auipc rN, hi; l[bhwd][u] rD, lo(rN)``, no call or compressed instruction since) is never taken."""

from __future__ import annotations

from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct, sign

_X0, _RA = 0, 1
_AUIPC_T3: Final = 0xE17  # auipc t3 (the low 12 bits)
_LD_T3_T3: Final = 0xE3E03  # ld t3, lo(t3) (the low 20 bits)
_JALR_T1_T3: Final = 0x000E0367  # jalr t1, t3


def _jal_offset(w: int) -> int:
    return sign((w >> 31) << 20 | ((w >> 12) & 0xFF) << 12 | ((w >> 20) & 1) << 11 | ((w >> 21) & 0x3FF) << 1, 21)


def _branch_offset(w: int) -> int:
    return sign((w >> 31) << 12 | ((w >> 7) & 1) << 11 | ((w >> 25) & 0x3F) << 5 | ((w >> 8) & 0xF) << 1, 13)


def _c_j_offset(h: int) -> int:  # c.j: offset[11|4|9:8|10|6|7|3:1|5]
    bits = ((h >> 12) & 1) << 11 | ((h >> 11) & 1) << 4 | ((h >> 9) & 3) << 8 | ((h >> 8) & 1) << 10 \
        | ((h >> 7) & 1) << 6 | ((h >> 6) & 1) << 7 | ((h >> 3) & 7) << 1 | ((h >> 2) & 1) << 5
    return sign(bits, 12)


def _c_branch_offset(h: int) -> int:  # c.beqz / c.bnez: offset[8|4:3] rs1' offset[7:6|2:1|5]
    bits = ((h >> 12) & 1) << 8 | ((h >> 10) & 3) << 3 | ((h >> 5) & 3) << 6 | ((h >> 3) & 3) << 1 \
        | ((h >> 2) & 1) << 5
    return sign(bits, 9)


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    slots: set[int] = set()
    calls: list[int] = []
    furthest = pc
    auipc: tuple[int, int] | None = None  # (register, address) of an auipc just before
    zero: set[int] = set()  # registers that hold a .bss word
    i = used = 0
    while used < budget and i + 2 <= len(code):
        here, previous, auipc = pc + i, auipc, None
        target: int | None = None
        link = _X0
        if code[i] & 3 != 3:  # compressed
            h = int.from_bytes(code[i : i + 2], "little")
            used, i = used + 1, i + 2
            quadrant, funct3 = h & 3, h >> 13
            c_jr = quadrant == 2 and funct3 == 4 and (h >> 2) & 31 == 0 and (h >> 7) & 31 and not (h >> 12) & 1
            if quadrant == 1 and funct3 == 5:  # c.j
                target = here + _c_j_offset(h)
            elif quadrant == 1 and funct3 == 7 and 8 + ((h >> 7) & 7) in zero:  # c.bnez on a .bss word
                continue
            elif quadrant == 1 and funct3 in (6, 7):  # c.beqz, c.bnez
                furthest = max(furthest, here + _c_branch_offset(h))
            elif c_jr and here >= furthest:  # c.jr rs1: a return (ra) or an indirect jump
                break
            elif not c_jr:
                zero.clear()  # any other may write a register
        elif i + 4 > len(code):
            break
        else:
            w = int.from_bytes(code[i : i + 4], "little")
            used, i = used + 1, i + 4
            opcode, rd, rs1 = w & 0x7F, (w >> 7) & 31, (w >> 15) & 31
            rs2 = (w >> 20) & 31
            if opcode == 0x63 and (w >> 12) & 7 == 1 and _X0 in (rs1, rs2) and (rs1 or rs2) in zero:
                continue  # bne rN, x0 (bnez) on a .bss word: never taken
            if opcode in (0x6F, 0x67) and rd != _X0:  # jal, jalr with a link: a call
                zero.clear()
            elif opcode not in (0x63, 0x23, 0x27):  # not a branch or a store: rd may be written
                zero.discard(rd)
            loads_bss = opcode == 0x03 and previous is not None and previous[0] == rs1 and rd != _X0  # auipc + load
            if loads_bss and previous is not None and memory.zero_at_load(previous[1] + sign(w >> 20, 12)):
                zero.add(rd)
            if opcode == 0x17:  # auipc
                auipc = (rd, here + sign(w >> 12, 20) * 4096)
            elif opcode == 0x63:  # conditional branch
                furthest = max(furthest, here + _branch_offset(w))
            elif opcode == 0x6F:  # jal rd
                target, link = here + _jal_offset(w), rd
            elif opcode == 0x67 and (w >> 12) & 7 == 0:  # jalr rd, lo(rs1)
                if previous is not None and previous[0] == rs1:
                    target, link = previous[1] + sign(w >> 20, 12), rd
                elif rd == _X0 and here >= furthest:  # ret, or an indirect jump
                    break
        if target is None:
            continue
        if link != _X0:  # a call (ra, or t0 for millicode)
            zero.clear()
        reach = direct(here, target, pc, memory.plt_slot(target), link != _X0, furthest, slots, calls)
        if reach is None:
            break
        furthest = reach
    return used, slots, calls


def plt_slot(memory: Memory, target: int) -> int | None:
    """``auipc t3, hi; ld t3, lo(t3); jalr t1, t3; nop``."""
    code = memory.read_code(target, 12)
    if code is None or len(code) < 12 or not memory.little:
        return None
    auipc, ld, jalr = (int.from_bytes(code[k : k + 4], "little") for k in (0, 4, 8))
    if auipc & 0xFFF != _AUIPC_T3 or ld & 0xFFFFF != _LD_T3_T3 or jalr != _JALR_T1_T3:
        return None
    return target + sign(auipc >> 12, 20) * 4096 + sign(ld >> 20, 12)


# JUMP_SLOT; RELATIVE (GOT slots are R_RISCV_64: bound eagerly, never latent)
MACHINE: Final = Machine(frozenset({5}), 3, decode, plt_slot)
