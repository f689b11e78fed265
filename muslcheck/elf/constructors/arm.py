"""arm (armhf, armv7): ARM and Thumb-2 code; a code address with bit 0 set is Thumb. Calls through a PLT stub (``bl``,
``blx``, or ``b`` as a tail call; the stubs are ARM code, entered from Thumb through ``bx pc``) and through a GOT slot
(``-fno-plt``: ``ldr rX, [pc, #lit]``, ``add rX, pc`` or ``ldr rX, [pc, rX]``, ``ldr rX, [rX]``, ``blx rX``)."""

from __future__ import annotations

import struct
from typing import Final

from muslcheck.elf.constructors.machine import Decoded, Machine, Memory, direct, sign

_MASK: Final = 0xFFFFFFFF
_PC: Final = 15
_CALL_CLOBBERED: Final = frozenset({0, 1, 2, 3, 12, 14})
_RETURNS: Final = frozenset({0x01A0F00E, 0x049DF004})  # mov pc, lr; ldr pc, [sp], #4 (less the condition)
# What a register is known to hold: a literal-pool word, an address (pc plus a literal), or a word loaded from an
# address (a GOT slot's contents, kept as the slot's address).
_LITERAL, _ADDRESS, _SLOT = 0, 1, 2
_State = dict[int, tuple[int, int]]


def _thumb_code(address: int) -> int:
    return address & ~1


def _rotated(word: int) -> int:
    """An ARM data-processing immediate: 8 bits rotated right by twice a 4-bit amount."""
    imm, rot = word & 0xFF, (word >> 8 & 0xF) * 2
    return (imm >> rot | imm << (32 - rot)) & _MASK


class _Sweep:
    """What one function's linear sweep has found so far: shared by the ARM and the Thumb decoder."""

    def __init__(self, start: int, memory: Memory) -> None:
        self.start = self.furthest = start
        self.memory = memory
        self.slots: set[int] = set()
        self.calls: list[int] = []
        self.state: _State = {}

    def call(self, target: int, thumb: bool) -> None:
        # A call: where it is does not matter (the target is recorded with its mode bit).
        direct(target, target | thumb, self.start, self.memory.plt_slot(target), True, self.furthest, self.slots,
               self.calls)
        self.clobber()

    def clobber(self) -> None:
        self.state = {r: v for r, v in self.state.items() if r not in _CALL_CLOBBERED}

    def jump(self, here: int, target: int, thumb: bool) -> bool:
        """An unconditional direct jump: whether it ends the sweep."""
        reach = direct(here, target | thumb, self.start, self.memory.plt_slot(target), False, self.furthest,
                       self.slots, self.calls)
        if reach is not None:
            self.furthest = reach
        return reach is None

    def branch(self, target: int, thumb: bool) -> None:
        """A conditional branch. One to before the function's start goes to a part of it placed elsewhere (GCC's
        ``.text.unlikely`` ``fn.cold``): followed as a callee."""
        if target < self.start:
            self.calls.append(target | thumb)
        self.furthest = max(self.furthest, target)

    def literal(self, register: int, address: int) -> None:
        value = self.memory.word(address)
        self.forget(register)
        if value is not None:
            self.state[register] = (_LITERAL, value)

    def add_pc(self, register: int, pc: int) -> None:
        kind, value = self.state.pop(register, (None, 0))
        if kind == _LITERAL:
            self.state[register] = (_ADDRESS, (value + pc) & _MASK)

    def load(self, register: int, base: int, offset: int | None, index: int | None = None) -> None:
        """``ldr register, [base, #offset]`` or ``[base, index]``: a known address's word is a slot's contents."""
        address: int | None = None
        kinds = self.state.get(base), self.state.get(index) if index is not None else None
        if offset is not None and kinds[0] is not None and kinds[0][0] == _ADDRESS:
            address = kinds[0][1] + offset
        elif index is not None and kinds[0] is not None and kinds[1] is not None:
            pair = {kinds[0][0], kinds[1][0]}
            if pair == {_ADDRESS, _LITERAL}:
                address = kinds[0][1] + kinds[1][1]
        self.forget(register)
        if address is not None:
            self.state[register] = (_SLOT, address & _MASK)

    def through(self, register: int) -> None:
        """``blx register`` / ``bx register``: a call through the slot it was loaded from."""
        kind, value = self.state.get(register, (None, 0))
        if kind == _SLOT:
            self.slots.add(value)

    def forget(self, register: int) -> None:
        self.state.pop(register, None)

    def forget_list(self, registers: int) -> None:
        for register in range(16):
            if registers >> register & 1:
                self.forget(register)

    def forget_written16(self, hw: int) -> None:
        """What a 16-bit Thumb instruction not decoded otherwise writes."""
        if hw >> 13 == 1 or hw >> 11 in (0b10011, 0b10100, 0b10101):  # imm8 ops, LDR sp-relative, ADR, ADD sp
            self.forget(hw >> 8 & 7)
        elif hw & 0xFE00 == 0xBC00 or hw >> 11 == 0b11001:  # POP, LDM
            self.forget_list(hw & 0xFF)
        elif hw & 0xFC00 == 0x4400:  # ADD, MOV with high registers
            self.forget(hw & 7 | hw >> 4 & 8)
        else:  # shifts, add/sub, data processing, loads: rd in bits 2-0
            self.forget(hw & 7)

    def forget_written32(self, hw1: int, hw2: int) -> None:
        """What a 32-bit Thumb instruction not decoded otherwise writes."""
        if hw1 & 0xFE50 == 0xE810:  # LDM
            self.forget_list(hw2)
        elif hw1 & 0xFE50 == 0xE850:  # LDRD, LDREX
            self.forget(hw2 >> 12)
            self.forget(hw2 >> 8 & 15)
        elif hw1 & 0xFE10 == 0xF810 or hw1 & 0xFF10 == 0xEE10:  # loads; MRC, VMOV to a core register
            self.forget(hw2 >> 12)
        elif hw1 & 0xFFF0 == 0xEC50:  # VMOV to two core registers
            self.forget(hw2 >> 12)
            self.forget(hw2 >> 8 & 15)
        elif hw1 & 0xEC00 == 0xEC00 or hw1 & 0xFE00 == 0xF800:  # other coprocessor instructions, stores
            pass
        elif hw1 & 0xFF80 == 0xFB80:  # long multiplies
            self.forget(hw2 >> 12)
            self.forget(hw2 >> 8 & 15)
        else:  # data processing, multiplies: rd in bits 11-8
            self.forget(hw2 >> 8 & 15)


def _decode_arm(code: bytes, pc: int, budget: int, sweep: _Sweep) -> int:
    n = min(len(code) // 4, budget)
    used = 0
    for used, w in enumerate(struct.unpack(f"<{n}I", code[: 4 * n]), 1):
        here = pc + 4 * (used - 1)
        cond = w >> 28
        always = cond == 0xE
        if w & 0x0E000000 == 0x0A000000:  # B, BL, BLX imm24
            target = (here + 8 + sign(w & 0xFFFFFF, 24) * 4) & _MASK
            if cond == 0xF:  # BLX: to Thumb code
                sweep.call(target | (w >> 23 & 2), True)
            elif w >> 24 & 1:
                sweep.call(target, False)
            elif not always:
                sweep.branch(target, False)
            elif sweep.jump(here, target, False):
                break
        elif cond == 0xF:
            continue
        elif w & 0x0FFFFFF0 == 0x012FFF30:  # BLX rm
            sweep.through(w & 15)
            sweep.clobber()
        elif w & 0x0FFFFFF0 == 0x012FFF10:  # BX rm: a return (lr) or a tail call
            sweep.through(w & 15)
            if always and here >= sweep.furthest:
                break
        elif w & 0x0F7F0000 == 0x051F0000:  # LDR rt, [pc, #+-imm12]
            offset = w & 0xFFF if w >> 23 & 1 else -(w & 0xFFF)
            if w >> 12 & 15 == _PC:
                if always and here >= sweep.furthest:
                    break
                continue
            sweep.literal(w >> 12 & 15, here + 8 + offset)
        elif w & 0x0FFF0FF0 == 0x008F0000 or w & 0x0FF00FFF == 0x0080000F:  # ADD rd, pc, rm / ADD rd, rn, pc
            rd, other = w >> 12 & 15, (w & 15 if w & 15 != _PC else w >> 16 & 15)
            if rd == other:
                sweep.add_pc(rd, here + 8)
            else:
                sweep.forget(rd)
        elif w & 0x0FFF0FF0 == 0x079F0000:  # LDR rt, [pc, rm]
            rt, rm = w >> 12 & 15, w & 15
            kind, value = sweep.state.get(rm, (None, 0))
            sweep.forget(rt)
            if kind == _LITERAL:
                sweep.state[rt] = (_SLOT, (here + 8 + value) & _MASK)
        elif w & 0x0F700000 == 0x05100000:  # LDR rt, [rn, #+-imm12]
            rt = w >> 12 & 15
            if rt == _PC:
                if always and here >= sweep.furthest:
                    break
                continue
            sweep.load(rt, w >> 16 & 15, w & 0xFFF if w >> 23 & 1 else -(w & 0xFFF))
        elif w & 0x0FF00FF0 == 0x07900000:  # LDR rt, [rn, rm]
            sweep.load(w >> 12 & 15, w >> 16 & 15, None, w & 15)
        elif w & 0x0E108000 == 0x08108000 or w & 0x0FFFFFFF in _RETURNS:  # LDM with pc in its list: a return
            if always and here >= sweep.furthest:
                break
        elif w & 0x0E100000 == 0x08100000:  # LDM: the registers listed
            sweep.forget_list(w & 0xFFFF)
        elif w & 0x0F0000F0 == 0x00000090:  # multiplies: rd in bits 19-16 (and 15-12 for the long ones)
            sweep.forget(w >> 16 & 15)
            sweep.forget(w >> 12 & 15)
        elif w & 0x0C000000 == 0x04000000:  # other loads and stores: a load writes rt
            if w >> 20 & 1:
                sweep.forget(w >> 12 & 15)
        elif w & 0x0F100010 == 0x0E100010:  # MRC, VMOV to a core register
            sweep.forget(w >> 12 & 15)
        elif w & 0x0E000090 == 0x00000090:  # LDRH, LDRSB, LDRD and their stores
            if w >> 20 & 1:
                sweep.forget(w >> 12 & 15)
            elif w & 0x60 == 0x40:  # LDRD: rt and rt + 1
                sweep.forget(w >> 12 & 15)
                sweep.forget((w >> 12 & 15) + 1)
        elif w & 0x0C000000 == 0 and not (8 <= (w >> 21 & 15) <= 11 and w >> 20 & 1):  # all but compares
            sweep.forget(w >> 12 & 15)
    return used


def _thumb_branch(hw1: int, hw2: int) -> int:
    """The offset of a 32-bit Thumb B.W / BL / BLX (encoding T4's S:I1:I2:imm10:imm11:0)."""
    s = hw1 >> 10 & 1
    i1, i2 = 1 ^ (hw2 >> 13 & 1) ^ s, 1 ^ (hw2 >> 11 & 1) ^ s
    return sign(s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1, 25)


def _decode_thumb(code: bytes, pc: int, budget: int, sweep: _Sweep) -> int:
    n = len(code) // 2
    halves = struct.unpack(f"<{n}H", code[: 2 * n])
    used = k = 0
    conditional = 0  # instructions left in the current IT block
    while used < budget and k < n:
        used += 1
        here = pc + 2 * k
        hw1 = halves[k]
        always = conditional == 0
        conditional = max(conditional - 1, 0)
        if hw1 >> 11 in (0b11101, 0b11110, 0b11111):
            if k + 1 >= n:
                break
            hw2 = halves[k + 1]
            k += 2
            if hw1 & 0xF800 == 0xF000 and hw2 & 0x8000:  # branches and miscellaneous control
                op = hw2 & 0xD000
                if op == 0xD000:  # BL
                    sweep.call((here + 4 + _thumb_branch(hw1, hw2)) & _MASK, True)
                elif op == 0xC000:  # BLX: to ARM code
                    sweep.call(((here + 4) & ~3) + _thumb_branch(hw1, hw2) & _MASK, False)
                elif op == 0x9000:  # B.W
                    target = (here + 4 + _thumb_branch(hw1, hw2)) & _MASK
                    if not always:
                        sweep.branch(target, True)
                    elif sweep.jump(here, target, True):
                        break
                elif op == 0x8000 and hw1 >> 7 & 7 != 7:  # B<c>.W (T3)
                    s, j1, j2 = hw1 >> 10 & 1, hw2 >> 13 & 1, hw2 >> 11 & 1
                    offset = sign(s << 20 | j2 << 19 | j1 << 18 | (hw1 & 0x3F) << 12 | (hw2 & 0x7FF) << 1, 21)
                    sweep.branch(here + 4 + offset, True)
            elif (hw1 == 0xE8BD and hw2 & 0x8000) or (hw1 == 0xF85D and hw2 == 0xFB04):  # POP.W {.., pc}, LDR pc
                if always and here >= sweep.furthest:
                    break
            elif hw1 & 0xFF7F == 0xF85F:  # LDR.W rt, [pc, #+-imm12]
                offset = hw2 & 0xFFF if hw1 >> 7 & 1 else -(hw2 & 0xFFF)
                sweep.literal(hw2 >> 12, ((here + 4) & ~3) + offset)
            elif hw1 & 0xFFF0 == 0xF8D0:  # LDR.W rt, [rn, #imm12]
                sweep.load(hw2 >> 12, hw1 & 15, hw2 & 0xFFF)
            elif hw1 & 0xFFF0 == 0xF850 and hw2 & 0x0FF0 == 0:  # LDR.W rt, [rn, rm]
                sweep.load(hw2 >> 12, hw1 & 15, None, hw2 & 15)
            else:
                sweep.forget_written32(hw1, hw2)
            continue
        k += 1
        if hw1 & 0xFF00 == 0xBF00 and hw1 & 15:  # IT: the next 1-4 instructions are conditional
            conditional = 4 - ((hw1 & 15) & -(hw1 & 15)).bit_length() + 1
        elif hw1 & 0xF800 == 0xE000:  # B
            target = (here + 4 + sign(hw1 & 0x7FF, 11) * 2) & _MASK
            if not always:
                sweep.branch(target, True)
            elif sweep.jump(here, target, True):
                break
        elif hw1 & 0xF000 == 0xD000 and hw1 >> 9 & 7 != 7:  # B<c>
            sweep.branch(here + 4 + sign(hw1 & 0xFF, 8) * 2, True)
        elif hw1 & 0xF500 == 0xB100:  # CBZ, CBNZ
            sweep.branch(here + 4 + ((hw1 >> 9 & 1) << 6 | (hw1 >> 3 & 0x1F) << 1), True)
        elif hw1 & 0xFF87 == 0x4780:  # BLX rm
            sweep.through(hw1 >> 3 & 15)
            sweep.clobber()
        elif hw1 & 0xFF87 == 0x4700 or hw1 & 0xFF00 == 0xBD00:  # BX rm (a return, or a tail call), POP {.., pc}
            if hw1 & 0xFF00 == 0x4700:
                sweep.through(hw1 >> 3 & 15)
            if always and here >= sweep.furthest:
                break
        elif hw1 & 0xF800 == 0x4800:  # LDR rt, [pc, #imm8]
            sweep.literal(hw1 >> 8 & 7, ((here + 4) & ~3) + (hw1 & 0xFF) * 4)
        elif hw1 & 0xFF78 == 0x4478:  # ADD rdn, pc
            sweep.add_pc(hw1 & 7 | hw1 >> 4 & 8, here + 4)
        elif hw1 & 0xF800 == 0x6800:  # LDR rt, [rn, #imm5]
            sweep.load(hw1 & 7, hw1 >> 3 & 7, (hw1 >> 6 & 0x1F) * 4)
        elif hw1 & 0xFE00 == 0x5800:  # LDR rt, [rn, rm]
            sweep.load(hw1 & 7, hw1 >> 3 & 7, None, hw1 >> 6 & 7)
        else:
            sweep.forget_written16(hw1)
    return used


def decode(code: bytes, pc: int, budget: int, memory: Memory) -> Decoded:
    thumb = bool(pc & 1)
    start = _thumb_code(pc)
    if not memory.little:
        return 0, set(), []
    sweep = _Sweep(start, memory)
    used = (_decode_thumb if thumb else _decode_arm)(code, start, budget, sweep)
    return used, sweep.slots, sweep.calls


_BX_PC: Final = 0x4778  # Thumb ``bx pc``: on to the ARM code 4 bytes on
_THUMB_FILLERS: Final = frozenset({0x46C0, 0xE7FD})  # ``nop`` (mov r8, r8), ``b.n`` back to the ``bx pc``


def plt_slot(memory: Memory, target: int) -> int | None:
    """The slot of an ARM PLT stub, its ``ip`` (r12) followed through ``add ip, pc|ip, #imm``, ``ldr ip, [pc,
    #imm]``, ``add ip, ip, pc``, ``movw/movt ip`` up to ``ldr pc, [ip, #imm]``; after a Thumb ``bx pc`` entry."""
    address = _thumb_code(target)
    head = memory.read_code(address, 4)
    if head is None or not memory.little:
        return None
    first, second = struct.unpack("<2H", head)
    if first == _BX_PC and second in _THUMB_FILLERS:
        address += 4
    code = memory.read_code(address, 20)
    if code is None:
        return None
    ip: int | None = None
    words: tuple[int, ...] = struct.unpack("<5I", code)
    for k, w in enumerate(words):
        here = address + 4 * k
        if w & 0xFFFFF000 == 0xE28FC000:  # add ip, pc, #imm
            ip = here + 8 + _rotated(w)
        elif w & 0xFFFFF000 == 0xE28CC000 and ip is not None:  # add ip, ip, #imm
            ip += _rotated(w)
        elif w & 0xFFFFF000 == 0xE59FC000:  # ldr ip, [pc, #imm]
            ip = memory.word(here + 8 + (w & 0xFFF))
        elif w == 0xE08CC00F and ip is not None:  # add ip, ip, pc
            ip += here + 8
        elif w & 0xFFF0F000 == 0xE300C000:  # movw ip, #imm16
            ip = (w >> 4 & 0xF000) | (w & 0xFFF)
        elif w & 0xFFF0F000 == 0xE340C000 and ip is not None:  # movt ip, #imm16
            ip = (ip & 0xFFFF) | ((w >> 4 & 0xF000) | (w & 0xFFF)) << 16
        elif w & 0xFF5FF000 == 0xE51CF000 and ip is not None:  # ldr pc, [ip, #+-imm12]{!}
            return (ip + ((w & 0xFFF) if w >> 23 & 1 else -(w & 0xFFF))) & _MASK
        else:
            return None
    return None


# JUMP_SLOT, GLOB_DAT; RELATIVE
MACHINE: Final = Machine(frozenset({22, 21}), 23, decode, plt_slot, code_address=_thumb_code)
