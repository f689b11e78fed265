"""The i386 and arm (ARM and Thumb-2) constructor readers (muslcheck/elf/constructors/i386.py, arm.py) held against
capstone on real Debian trixie libraries: the names their init functions (and MAX_DEPTH levels of own callees) call
through a PLT stub or a GOT slot, found again from capstone's disassembly, pyelftools' relocations and the same
sweep contract (linear, up to a return or an unconditional jump no forward branch passes; MAX_INSTRUCTIONS per init
function)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muslcheck.elf import read_elf_file
from muslcheck.elf.constructors import arm, i386
from muslcheck.elf.constructors.reader import MAX_INIT_FUNCTIONS
from tests.elf.crosscheck import contract_walk
from tests.oracle.probe import debian_package
from tests.support import unavailable

# (package, version) -> Debian architecture -> sha256 of the .deb (trixie)
PACKAGES: dict[tuple[str, str], dict[str, str]] = {
    ("libstdc++6", "14.2.0-19"): {
        "i386": "b6020260b92a97ac33ae58a73b16f3ab31fed7632e9b861f7cd5fc393facd6ed",
        "armhf": "9c82eecc30961a3da3e062c0dba8ce076736059f4b8e7794c803985e75aea48b"},
    ("libgfortran5", "14.2.0-19"): {
        "i386": "256f5da47a804ed9d0f9d00f9e89b8fbee1a04c19fce016db78780bfc08204ea",
        "armhf": "93dd46b486b5a08f21c399f27592ac2162cd53681cdc83ecfe9ef305eec15311"},
    ("libgomp1", "14.2.0-19"): {
        "i386": "431057e93fc3025567b30006cf4d509597995557454d31eec759035c43ea129b",
        "armhf": "00e56cbc41157ce7139b758b422133ab2a75bdfc71ee5c8c2ab8dbdc98cb2dbf"},
    ("libssl3t64", "3.5.9-1~deb13u1"): {
        "i386": "ef61d844704251f1cc0e102999e38ee6f9d72844fca168b8e3f7627d3bbd3ac7",
        "armhf": "c5810df536c2d758f5a5fe7dd3b8bfb9ad9b899d87c28d7320e6ca75b5d073d3"},
    ("libicu76", "76.1-4"): {
        "i386": "c82acd8de4eb65a87337f453acc1c241f9c7d0fa52c43a5192bdf5b249901dde",
        "armhf": "654fddca6eab2c797239887ee4284423291151631992f92aafe75596ce725251"},
    ("libprotobuf32t64", "3.21.12-11+deb13u1"): {
        "i386": "4c893e81cef76dd072529e2e18740af928a26af94e5f83421ee29b504a39ebc6",
        "armhf": "a84fde4c5aa651e50e9f2ac1801502f523f7d881704b7b67a175ede8f4659597"},
    ("libtbb12", "2022.1.0-1+deb13u1"): {
        "i386": "37402b3ac59281a4cb8d56ab906edf285885319d1bcf336d350cef421a4511a9",
        "armhf": "bbf036623289e37d0fd6a3f6b993f53b89d1e00830c3920b8c11550761ae50e0"},
    ("libgrpc29t64", "1.51.1-6"): {
        "i386": "5e2502fb48a386f794978d4bc6544e4e8a80fd9b2b304954b42a74177f18df16",
        "armhf": "e651a6339fa8b348161a9f6b226a37d63fc3dfdcec9731c579891fba71ccaf0d"},
}
DEBIAN = {"i386": "i386", "arm": "armhf"}
MODULES = {"i386": i386, "arm": arm}
SLOT_TYPES = {"i386": {7, 6}, "arm": {22, 21}}  # JUMP_SLOT, GLOB_DAT
MASK = 0xFFFFFFFF


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        unavailable(f"{module} is not installed (the crosscheck extra)")


class Image:
    """The file as the loader maps it (PT_LOAD), its dynamic tags and the names of its PLT/GOT slots, read through
    pyelftools."""

    def __init__(self, path: Path, arch: str) -> None:
        from elftools.elf.dynamic import DynamicSegment
        from elftools.elf.elffile import ELFFile

        self.data = path.read_bytes()
        with path.open("rb") as f:
            elf = ELFFile(f)
            self.loads = [(s["p_vaddr"], s["p_offset"], s["p_filesz"]) for s in elf.iter_segments()
                          if s["p_type"] == "PT_LOAD"]
            [dynamic] = [s for s in elf.iter_segments() if isinstance(s, DynamicSegment)]
            self.tags = {t.entry.d_tag: t.entry.d_val for t in dynamic.iter_tags()}
            self.names: dict[int, str] = {}
            self.owns: dict[int, int | None] = {}  # a slot's symbol, when the object defines it: its function
            self.symbolic: dict[int, int] = {}  # a word a relocation fills with an own function's address (REL)
            for table in dynamic.get_relocation_tables().values():
                for r in table.iter_relocations():
                    symbol = dynamic.get_symbol(r["r_info_sym"]) if r["r_info_sym"] else None
                    own = None
                    if (symbol is not None and isinstance(symbol["st_shndx"], int) and symbol["st_shndx"]
                            and symbol["st_value"] and symbol["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE")):
                        own = int(symbol["st_value"])
                    if r["r_info_type"] in SLOT_TYPES[arch] and symbol is not None and r["r_offset"] not in self.names:
                        self.names[r["r_offset"]], self.owns[r["r_offset"]] = symbol.name, own
                    if own is not None:
                        self.symbolic[r["r_offset"]] = own

    def extent(self, vaddr: int) -> int:
        for start, _, size in self.loads:
            if start <= vaddr < start + size:
                return start + size - vaddr
        return 0

    def read(self, vaddr: int, size: int) -> bytes:
        for start, offset, filesz in self.loads:
            if start <= vaddr and vaddr + size <= start + filesz:
                return self.data[offset + vaddr - start : offset + vaddr - start + size]
        return b""

    def word(self, vaddr: int) -> int | None:
        raw = self.read(vaddr, 4)
        return int.from_bytes(raw, "little") if len(raw) == 4 else None

    def init_functions(self) -> list[int]:
        starts = [self.tags["DT_INIT"]] if self.tags.get("DT_INIT") else []
        base, size = self.tags.get("DT_INIT_ARRAY", 0), self.tags.get("DT_INIT_ARRAYSZ", 0)
        for k in range(min(size // 4, MAX_INIT_FUNCTIONS + 1)):
            value = self.word(base + 4 * k)
            if value == 0:  # REL: a symbolic relocation's addend, 0, plus the own function it names
                value = self.symbolic.get(base + 4 * k, 0)
            if value and value != MASK:
                starts.append(value)
        return starts[:MAX_INIT_FUNCTIONS]


def disassembler(arch: int, mode: int, code: bytes, thumb: bool = False) -> Any:
    """Capstone in detail mode, stepping over what it cannot decode as the decoders do: a Thumb halfword that
    opens a 32-bit encoding is 4 bytes, any other 2; ARM 4 bytes; x86 1 byte."""
    from capstone import Cs

    def step(_buffer: Any, size: int, offset: int, _data: Any) -> int:
        if thumb:
            return 4 if offset + 4 <= size and code[offset + 1] >> 3 in (0b11101, 0b11110, 0b11111) else 2
        return 0  # capstone's default for the architecture

    md = Cs(arch, mode)
    md.detail = True
    md.skipdata = True
    md.skipdata_setup = (".skip", step if thumb else None, None)
    return md


class Sweep:
    """One function's sweep: the termination rule, the slots called and the own functions called."""

    def __init__(self, start: int) -> None:
        self.start = self.furthest = start
        self.slots: set[int] = set()
        self.calls: list[int] = []

    def branch(self, target: int, mode_bit: int) -> None:
        """A conditional branch; one to before the start reaches a part placed elsewhere (``fn.cold``): a callee."""
        if target < self.start:
            self.calls.append(target | mode_bit)
        self.furthest = max(self.furthest, target)

    def jump(self, here: int, target: int, mode_bit: int, slot: int | None) -> bool:
        """An unconditional direct jump: whether the sweep ends."""
        if slot is not None:
            self.slots.add(slot)
        elif target < self.start or (target > here and here >= self.furthest):
            self.calls.append(target | mode_bit)
        if here >= self.furthest:
            return True
        if slot is None and target > here:
            self.furthest = max(self.furthest, target)
        return False


def _x86_plt_slot(md: Any, image: Image, target: int) -> int | None:
    from capstone import x86

    for insn in md.disasm(image.read(target, 10), target, 2):
        if insn.mnemonic == "endbr32":
            continue
        [op] = insn.operands if insn.mnemonic == "jmp" and len(insn.operands) == 1 else [None]
        if op is None or op.type != x86.X86_OP_MEM or op.mem.index:
            return None
        if op.mem.base == x86.X86_REG_EBX:
            return (image.tags["DT_PLTGOT"] + op.mem.disp) & MASK
        return op.mem.disp & MASK if op.mem.base == 0 else None
    return None


def _x86_thunk(md: Any, image: Image, target: int) -> int | None:
    """The register ``mov reg, dword ptr [esp]; ret`` at ``target`` loads."""
    from capstone import x86

    insns = list(md.disasm(image.read(target, 4), target, 2))
    if len(insns) == 2 and insns[0].mnemonic == "mov" and insns[1].mnemonic == "ret":
        dest, src = insns[0].operands
        if src.type == x86.X86_OP_MEM and src.mem.base == x86.X86_REG_ESP and not src.mem.disp:
            return int(dest.reg)
    return None


def sweep_i386(image: Image, start: int, budget: int) -> tuple[int, Sweep]:
    from capstone import CS_ARCH_X86, CS_MODE_32, Cs, x86

    helper = Cs(CS_ARCH_X86, CS_MODE_32)
    helper.detail = True
    code = image.read(start, min(image.extent(start), 4 * budget + 16))
    md = disassembler(CS_ARCH_X86, CS_MODE_32, code)
    sweep, known, popped, used = Sweep(start), dict[int, int](), None, 0
    caller_saved = {x86.X86_REG_EAX, x86.X86_REG_ECX, x86.X86_REG_EDX}
    for insn in md.disasm(code, start):
        if used >= budget or insn.address - start > len(code) - 30:
            break
        used += 1
        after_call_next, popped = popped, None
        if not insn.id:  # stepped over
            continue
        here, after, ops = insn.address, insn.address + insn.size, insn.operands
        memory_slot = None
        if ops and ops[0].type == x86.X86_OP_MEM and not ops[0].mem.index:
            base = ops[0].mem.base
            memory_slot = (ops[0].mem.disp & MASK if base == 0 else
                           (known[base] + ops[0].mem.disp) & MASK if base in known else None)
        if insn.id == x86.X86_INS_CALL:
            if ops[0].type == x86.X86_OP_IMM:
                target = ops[0].imm & MASK
                thunk = _x86_thunk(helper, image, target)
                if thunk is not None:
                    known[thunk] = after
                    continue
                if target == after:
                    popped = after
                    continue
                slot = _x86_plt_slot(helper, image, target)
                if slot is not None:
                    sweep.slots.add(slot)
                else:
                    sweep.calls.append(target)
            elif memory_slot is not None:
                sweep.slots.add(memory_slot)
            known = {r: v for r, v in known.items() if r not in caller_saved}
        elif insn.id == x86.X86_INS_JMP:
            if ops[0].type == x86.X86_OP_IMM:
                target = ops[0].imm & MASK
                if sweep.jump(here, target, 0, _x86_plt_slot(helper, image, target)):
                    break
                continue
            if memory_slot is not None:
                sweep.slots.add(memory_slot)
            if here >= sweep.furthest:
                break
        elif x86.X86_GRP_JUMP in insn.groups:  # Jcc, JECXZ, LOOP
            sweep.branch(ops[0].imm & MASK, 0)
        elif x86.X86_GRP_RET in insn.groups:
            if here >= sweep.furthest:
                break
        elif insn.id == x86.X86_INS_POP and ops[0].type == x86.X86_OP_REG and after_call_next is not None:
            known[ops[0].reg] = after_call_next
        elif (insn.id == x86.X86_INS_ADD and ops[0].type == x86.X86_OP_REG and ops[0].reg in known
              and ops[1].type == x86.X86_OP_IMM):
            known[ops[0].reg] = (known[ops[0].reg] + ops[1].imm) & MASK
        else:
            for written in insn.regs_access()[1]:
                known.pop(written, None)
    return used, sweep


def _rotated_immediate(ops: list[Any]) -> int:
    from capstone import arm

    imms = [o.imm for o in ops if o.type == arm.ARM_OP_IMM]
    if len(imms) == 2:  # ``#imm8, #rotation``
        imm, rot = imms
        return (imm >> rot | imm << (32 - rot)) & MASK if rot else imm
    return imms[0] & MASK


def _arm_plt_slot(image: Image, target: int) -> int | None:
    from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, Cs, arm

    thumb = Cs(CS_ARCH_ARM, CS_MODE_THUMB)
    entry = [(i.mnemonic, i.op_str) for i in thumb.disasm(image.read(target & ~1, 4), target & ~1)]
    address = target & ~1
    if entry and entry[0] == ("bx", "pc") and len(entry) == 2 and entry[1][0] in ("mov", "nop", "b"):
        address += 4
    md = Cs(CS_ARCH_ARM, CS_MODE_ARM)
    md.detail = True
    ip: int | None = None
    for insn in md.disasm(image.read(address, 20), address):
        ops, here = insn.operands, insn.address
        regs = [o.reg for o in ops if o.type == arm.ARM_OP_REG]
        if insn.mnemonic == "add" and regs == [arm.ARM_REG_R12, arm.ARM_REG_PC]:
            ip = here + 8 + _rotated_immediate(ops)
        elif insn.mnemonic == "add" and regs == [arm.ARM_REG_R12, arm.ARM_REG_R12] and ip is not None:
            ip += _rotated_immediate(ops)
        elif insn.mnemonic == "add" and regs == [arm.ARM_REG_R12, arm.ARM_REG_R12, arm.ARM_REG_PC] and ip is not None:
            ip += here + 8
        elif insn.mnemonic == "ldr" and ops[0].reg == arm.ARM_REG_R12 and ops[1].mem.base == arm.ARM_REG_PC:
            ip = image.word(here + 8 + ops[1].mem.disp)
        elif insn.mnemonic == "movw" and ops[0].reg == arm.ARM_REG_R12:
            ip = ops[1].imm
        elif insn.mnemonic == "movt" and ops[0].reg == arm.ARM_REG_R12 and ip is not None:
            ip = (ip & 0xFFFF) | ops[1].imm << 16
        elif (insn.mnemonic == "ldr" and ops[0].reg == arm.ARM_REG_PC and ops[1].mem.base == arm.ARM_REG_R12
              and ip is not None):
            return (ip + ops[1].mem.disp) & MASK
        else:
            return None
    return None


def _arm_names() -> dict[int, str]:
    from capstone import arm

    names = ("b", "bl", "blx", "bx", "cbz", "cbnz", "ldr", "add", "it")
    return {getattr(arm, f"ARM_INS_{n.upper()}"): n for n in names}


def sweep_arm(image: Image, function: int, budget: int) -> tuple[int, Sweep]:
    from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, arm

    thumb = function & 1
    start = function & ~1
    code = image.read(start, min(image.extent(start), 4 * budget + 16))
    md = disassembler(CS_ARCH_ARM, CS_MODE_THUMB if thumb else CS_MODE_ARM, code, bool(thumb))
    pc_ahead = 4 if thumb else 8
    ids = _arm_names()  # capstone's instruction ids by name: a mnemonic carries the condition (bne, ldreq)
    sweep, used = Sweep(start), 0
    literal: dict[int, int] = {}  # register -> literal-pool word
    address: dict[int, int] = {}  # register -> pc + literal
    loaded: dict[int, int] = {}  # register -> the slot its word was loaded from
    clobbered = {arm.ARM_REG_R0, arm.ARM_REG_R1, arm.ARM_REG_R2, arm.ARM_REG_R3, arm.ARM_REG_R12, arm.ARM_REG_LR}

    def call(target: int, mode_bit: int) -> None:
        slot = _arm_plt_slot(image, target)
        if slot is not None:
            sweep.slots.add(slot)
        else:
            sweep.calls.append(target | mode_bit)
        for state in (literal, address, loaded):
            for r in clobbered:
                state.pop(r, None)

    for insn in md.disasm(code, start):
        if used >= budget:
            break
        used += 1
        if not insn.id:  # stepped over
            continue
        here, ops, name = insn.address, insn.operands, ids.get(insn.id)
        always = insn.cc in (arm.ARM_CC_AL, arm.ARM_CC_INVALID)
        regs = [o.reg for o in ops if o.type == arm.ARM_OP_REG]
        mem = next((o.mem for o in ops if o.type == arm.ARM_OP_MEM), None)
        writes = set(insn.regs_access()[1])
        if name in ("bl", "blx") and ops[0].type == arm.ARM_OP_IMM:
            to_thumb = thumb ^ (name == "blx")
            call(ops[0].imm & MASK, to_thumb)
            continue
        if name in ("blx", "bx") and ops[0].type == arm.ARM_OP_REG:
            if ops[0].reg in loaded:
                sweep.slots.add(loaded[ops[0].reg])
            if name == "blx":
                for state in (literal, address, loaded):
                    for r in clobbered:
                        state.pop(r, None)
            elif always and here >= sweep.furthest:
                break
            continue
        if name == "b":
            target = ops[0].imm & MASK
            if not always:
                sweep.branch(target, thumb)
            elif sweep.jump(here, target, thumb, _arm_plt_slot(image, target)):
                break
            continue
        if name in ("cbz", "cbnz"):
            sweep.branch(ops[1].imm & MASK, thumb)
            continue
        if arm.ARM_REG_PC in writes and name != "it":  # pop/ldm/ldr/mov into pc: a return
            if always and here >= sweep.furthest:
                break
            continue
        dest = regs[0] if regs else None
        value: tuple[dict[int, int], int] | None = None
        if name == "ldr" and mem is not None and mem.base == arm.ARM_REG_PC and not mem.index:
            word = image.word(((here + pc_ahead) & ~3) + mem.disp)
            value = None if word is None else (literal, word)
        elif name == "ldr" and mem is not None and mem.base == arm.ARM_REG_PC and mem.index in literal:
            value = (loaded, (here + pc_ahead + literal[mem.index]) & MASK)
        elif name == "ldr" and mem is not None and mem.base in address and not mem.index:
            value = (loaded, (address[mem.base] + mem.disp) & MASK)
        elif name == "ldr" and mem is not None and mem.index and {mem.base, mem.index} <= set(literal) | set(address):
            if mem.base in address and mem.index in literal:
                value = (loaded, (address[mem.base] + literal[mem.index]) & MASK)
            elif mem.index in address and mem.base in literal:
                value = (loaded, (address[mem.index] + literal[mem.base]) & MASK)
        elif name == "add" and len(regs) >= 2 and arm.ARM_REG_PC in regs[1:] and dest in literal:
            others = [r for r in regs[1:] if r != arm.ARM_REG_PC]
            if not others or others == [dest]:
                value = (address, (literal[dest] + here + pc_ahead) & MASK)
        for written in writes:
            for state in (literal, address, loaded):
                state.pop(written, None)
        if value is not None and dest is not None:
            value[0][dest] = value[1]
    return used, sweep


def capstone_calls(path: Path, arch: str) -> set[str]:
    image = Image(path, arch)
    sweep_of = sweep_i386 if arch == "i386" else sweep_arm

    def sweep(function: int, budget: int) -> tuple[int, set[int], list[int]]:
        used, swept = sweep_of(image, function, budget)
        return used, swept.slots, swept.calls

    return contract_walk(image.init_functions(), sweep, image.names, image.owns)


def libraries(arch: str, package: str, version: str) -> Iterator[Path]:
    root = debian_package(package, version, DEBIAN[arch], PACKAGES[package, version][DEBIAN[arch]])
    for found in sorted(root.glob("usr/lib/*-linux-gnu*/*.so*")):
        if not found.is_symlink() and found.is_file():
            yield found


@pytest.mark.slow
@pytest.mark.parametrize("package", sorted(PACKAGES), ids=lambda p: p[0])
@pytest.mark.parametrize("arch", sorted(DEBIAN))
def test_constructor_calls_agree_with_capstone(arch: str, package: tuple[str, str]) -> None:
    _need("capstone")
    _need("elftools")
    found = list(libraries(arch, *package))
    assert found, package
    for path in found:
        facts = read_elf_file(path)
        assert facts.machine == arch
        assert set(facts.constructor_calls) == capstone_calls(path, arch), path.name


# Debian's cross gcc (gcc-i686-linux-gnu, gcc-arm-linux-gnueabihf): GCC's code as Debian's libraries have it, which
# zig's clang does not produce: armhf in Thumb-2, i386's -fno-plt calls through %ebx, a constructor's unlikely path
# moved to ``init.cold`` before it.
CROSS_GCC = {"i386": "i686-linux-gnu-gcc", "arm": "arm-linux-gnueabihf-gcc"}
COLD = """
#include <stdio.h>
#include <stdlib.h>
int in_helper;
__attribute__((noinline)) static void helper(void) { in_helper = puts("helper"); }
__attribute__((constructor)) static void init(void) { helper(); if (!getenv("X")) abort(); }
"""
AT_INIT = """
#include <gnu/libc-version.h>
const char *seen;
__attribute__((constructor)) static void init(void) { seen = gnu_get_libc_version(); }
"""


def gcc_build(tmp: Path, arch: str, source: str, *flags: str) -> Path:
    cc = CROSS_GCC[arch]
    if shutil.which(cc) is None:
        unavailable(f"{cc} is not installed (Debian package gcc-{cc.removesuffix('-gcc')})")
    (tmp / "lib.c").write_text(source)
    out = tmp / "lib.so"
    proc = subprocess.run([cc, "-O2", "-fPIC", "-shared", "-fno-stack-protector", "-o", str(out), str(tmp / "lib.c"),
                           *flags], capture_output=True, text=True)
    if proc.returncode:
        pytest.fail(proc.stderr)
    return out


@pytest.mark.parametrize("arch", sorted(DEBIAN))
def test_gcc_code_calls_are_found(tmp_path: Path, arch: str) -> None:
    _need("elftools")
    from elftools.elf.elffile import ELFFile

    path = gcc_build(tmp_path, arch, COLD)
    with path.open("rb") as f:
        symbols = {s.name: s["st_value"] for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    if arch == "arm":
        assert symbols["init"] & 1  # Thumb
    elif "init.cold" in symbols:  # abort() is called from the cold part only
        assert symbols["init.cold"] < symbols["init"]
    assert {"puts", "getenv", "abort"} <= set(read_elf_file(path).constructor_calls)
    without_plt = gcc_build(tmp_path, arch, AT_INIT, "-fno-plt")
    assert "gnu_get_libc_version" in read_elf_file(without_plt).constructor_calls


class Memory:
    """A code image at ``base`` for a decoder, with DT_PLTGOT (tag 3) when given."""

    def __init__(self, arch: str, base: int, code: bytes, pltgot: int | None = None) -> None:
        self.machine, self.base, self.code = MODULES[arch].MACHINE, base, code
        self.tags: Mapping[int, int] = {} if pltgot is None else {3: pltgot}
        self.little, self.word_size = True, 4

    def read_code(self, vaddr: int, size: int) -> bytes | None:
        at = vaddr - self.base
        return self.code[at : at + size] if at >= 0 and at + size <= len(self.code) else None

    def word(self, vaddr: int) -> int | None:
        raw = self.read_code(vaddr, 4)
        return None if raw is None else int.from_bytes(raw, "little")

    def plt_slot(self, target: int) -> int | None:
        return self.machine.plt_slot(self, target)

    def decode(self, function: int, budget: int = 64) -> tuple[int, set[int], list[int]]:
        start = self.machine.code_address(function)
        return self.machine.decode(self.code[start - self.base :], function, budget, self)


def _image(base: int, pieces: dict[int, bytes], size: int = 0x400) -> bytes:
    image = bytearray(b"\xcc" * size)
    for address, code in pieces.items():
        image[address - base : address - base + len(code)] = code
    return bytes(image)


def test_i386_a_got_call_through_a_register_the_thunk_set() -> None:
    # 0x1000 call __x86.get_pc_thunk.bx (0x1100); add $0x2000, %ebx; call *0x10(%ebx); ret
    body = bytes.fromhex("e8fb000000" "81c300200000" "ff9310000000" "c3")
    thunk = bytes.fromhex("8b1c24c3")  # mov (%esp), %ebx; ret
    memory = Memory("i386", 0x1000, _image(0x1000, {0x1000: body, 0x1100: thunk}))
    assert memory.decode(0x1000) == (4, {0x1005 + 0x2000 + 0x10}, [])
    # call 1f; 1: pop %ebx; add $0x2000, %ebx; jmp *0x10(%ebx): a tail call through the slot
    popped = bytes.fromhex("e800000000" "5b" "81c300200000" "ffa310000000")
    memory = Memory("i386", 0x1000, _image(0x1000, {0x1000: popped}))
    assert memory.decode(0x1000) == (4, {0x1005 + 0x2000 + 0x10}, [])
    # %ebx overwritten (mov $0, %ebx) before the call: no slot is claimed
    clobbered = bytes.fromhex("e8fb000000" "81c300200000" "bb00000000" "ff9310000000" "c3")
    memory = Memory("i386", 0x1000, _image(0x1000, {0x1000: clobbered, 0x1100: thunk}))
    assert memory.decode(0x1000)[1] == set()


def test_i386_a_plt_stub_is_read_from_dt_pltgot() -> None:
    # 0x1000 call 0x1200; ret. 0x1200: endbr32; jmp *0x18(%ebx), %ebx being DT_PLTGOT in PIC code.
    body = bytes.fromhex("e8fb010000" "c3")
    stub = bytes.fromhex("f30f1efb" "ffa318000000")
    memory = Memory("i386", 0x1000, _image(0x1000, {0x1000: body, 0x1200: stub}), pltgot=0x4000)
    assert memory.decode(0x1000) == (2, {0x4018}, [])
    assert Memory("i386", 0x1000, memory.code).decode(0x1000) == (2, set(), [0x1200])  # no DT_PLTGOT


def test_thumb_a_conditional_return_in_an_it_block_does_not_end_the_sweep() -> None:
    # 0x1000 (Thumb) it eq; popeq {r4, pc}; bl 0x2000; pop {r4, pc}
    body = bytes.fromhex("08bf" "10bd" "00f0fcff" "10bd")
    # 0x2000: the Thumb entry (bx pc; nop), then ARM: add ip, pc, #0; add ip, ip, #0x1000; ldr pc, [ip, #0x10]!
    stub = bytes.fromhex("7847c046" "00c68fe2" "01ca8ce2" "10f0bce5")
    memory = Memory("arm", 0x1000, _image(0x1000, {0x1000: body, 0x2000: stub}, 0x1100))
    assert memory.decode(0x1001) == (4, {0x2004 + 8 + 0x1000 + 0x10}, [])


def test_thumb_a_got_call_without_plt() -> None:
    # 0x1000 (Thumb) ldr r3, [pc, #12]; add r3, pc; ldr r3, [r3]; blx r3; bx lr; the literal at 0x1010
    slot = 0x3020
    body = bytes.fromhex("034b" "7b44" "1b68" "9847" "7047") + bytes(6) + (slot - 0x1006).to_bytes(4, "little")
    assert Memory("arm", 0x1000, _image(0x1000, {0x1000: body})).decode(0x1001) == (5, {slot}, [])
    # movs r3, #0 between the load and the call: no slot is claimed
    moved = bytes.fromhex("034b" "7b44" "1b68" "0023" "9847" "7047") + bytes(4) + (slot - 0x1006).to_bytes(4, "little")
    assert Memory("arm", 0x1000, _image(0x1000, {0x1000: moved})).decode(0x1001)[1] == set()


def test_arm_calls_keep_their_mode() -> None:
    # 0x1000 (ARM) bl 0x1100; blx 0x1201 (to Thumb); bx lr
    body = bytes.fromhex("3e0000eb" "7d0000fa" "1eff2fe1")
    memory = Memory("arm", 0x1000, _image(0x1000, {0x1000: body}))
    assert memory.decode(0x1000) == (3, set(), [0x1100, 0x1201])


@settings(max_examples=300, deadline=None, database=None)
@given(code=st.binary(min_size=0, max_size=256), thumb=st.booleans(), budget=st.integers(0, 80),
       arch=st.sampled_from(sorted(DEBIAN)))
def test_hostile_bytes_never_raise(code: bytes, thumb: bool, budget: int, arch: str) -> None:
    memory = Memory(arch, 0x1000, code, pltgot=0x1010)
    used, slots, calls = memory.decode(0x1000 | (thumb and arch == "arm"), budget)
    assert 0 <= used <= budget
    assert all(isinstance(s, int) for s in slots) and all(isinstance(c, int) for c in calls)
