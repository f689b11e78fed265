"""The s390x, riscv64 and ppc64 decoders of muslcheck/elf/constructors/, held against capstone on real Debian
libraries of each architecture: the same contract (init functions and one level of their own callees; calls and
tail jumps through PLT stubs and GOT slots), computed here from capstone's disassembly and pyelftools' reading of
the dynamic section, must name the same symbols as ``read_elf_file(path).constructor_calls``."""

from __future__ import annotations

import importlib.util
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from muslcheck.elf import read_elf_file
from muslcheck.elf.constructors import MACHINES
from muslcheck.elf.constructors.reader import MAX_INIT_FUNCTIONS
from tests.elf.crosscheck import contract_walk, loads_reader
from tests.oracle.probe import debian_package
from tests.support import unavailable

DEBIAN_ARCH = {"s390x": "s390x", "riscv64": "riscv64", "ppc64": "ppc64el"}
# Debian trixie packages whose libraries have constructors (C++ static initialisers, libgcc's, libgomp's, OpenBLAS's),
# pinned by the sha256 of the .deb per Debian architecture.
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "libstdc++6": ("14.2.0-19", {
        "s390x": "6a91f4a1c8c30dc6d0a23ad7ead8a56271b9f6966d6d74734f4b423cdfe5c21b",
        "riscv64": "f285313f34e0d8f65463c669fac8eb29760a3f3fd6459005dd3110cdd2b10fd7",
        "ppc64el": "ee601ab87b7c7ac01f3d7be0fe2423f0ddc3a51b46d3331b4e9dff4110e6a8b9",
    }),
    "libgcc-s1": ("14.2.0-19", {
        "s390x": "b5e87f11a8ac0537d500bf2dba37165bf8d25b5b44add1035a32deddbd4bfdda",
        "riscv64": "16d3f9f534028615413d23f649e5d246baef48fe7db739ad564ef8b9a6e5587c",
        "ppc64el": "9fef01c88bc508ff05ff9ce5d0cc05de36798591e060b07749c3835616ed5696",
    }),
    "libatomic1": ("14.2.0-19", {
        "s390x": "79ce585c987c08702360d5d973fa6f4c596a5c4802d7e3f06294b46f03b0456a",
        "riscv64": "ebaf12b2de00a4b567f70c629c0ff744dc92491029b3219d59c05c733f200c65",
        "ppc64el": "fd421018c73e8f5a2628f233ff1d277d1ebf797b9e204a59e34ed6072167544a",
    }),
    "libgfortran5": ("14.2.0-19", {
        "s390x": "56bb96a579e88fc2104fa5fb753b19c3bf055b54b9fc59c314ac6427fd7926a0",
        "riscv64": "0af32025c3562b0f1de612a657f37331b01ef5dd7c539b479db05d44b69abb0f",
        "ppc64el": "b3a33721de02650b45eef82c26bfcbc97c76f9c65f772f75b28a7239ec57fe7a",
    }),
    "libgomp1": ("14.2.0-19", {
        "s390x": "7297625ed2bd024f2fbb013a3a2c291cd4b0d5fb02afccaeba85c4cb8c386a2d",
        "riscv64": "0d457810c609eed431d438aa3e7a0c5a6974d3dca8e16ecd8fe38a949ba63b0f",
        "ppc64el": "cca95ab0ba3537a573c1d2796b8c1a00ef2839766fbb01b7b8882f47b2d504bb",
    }),
    "libicu76": ("76.1-4", {
        "s390x": "82997b250631263eff1b1a93ebf6575f1928fa61ba4e695560e0b91d6b0bd023",
        "riscv64": "66f0a22cd0b6bd1c72089596b78865778dc6e9d871a92365fb9f697377043045",
        "ppc64el": "f9a4b6407742a78e502f2ffd6933c65353bf302696009eb102df4cfe50bead76",
    }),
    "libprotobuf32t64": ("3.21.12-11+deb13u1", {
        "s390x": "ed112879204e0d7294e6e1701787f21882c54f312d5bed827d4791dbfd87f066",
        "riscv64": "57523cc3e849a2d6a0fca89de8265aad7ddc6a6e433dbd5403aa8b7f89cf9bb5",
        "ppc64el": "0211ee9b741806613b255535c5a9a289e9e02a1bb915d003e95f76df1362d122",
    }),
    "libgrpc29t64": ("1.51.1-6", {
        "s390x": "13e696eeb934fa6903264f8d1a3d7fdf1f20bba53970355f9cdb09d59a27927d",
        "riscv64": "a292d704347c954bd2c83b401200149cced30a1a751c01a49acecc13f56c55f4",
        "ppc64el": "8034350d807cbd9b93a5a7fc93f99b17dbadb321d8663cd413ded7046734fb7c",
    }),
    "libboost-regex1.83.0": ("1.83.0-4.2", {
        "s390x": "0227f0fde96fb6e8d96c5c333a8ef3b5c27c58d42887820520c7ee62821ba2a6",
        "riscv64": "8185880363d3820df66fa62d0bb7a9356641486a845e1e8e012ec65878386ebe",
        "ppc64el": "11f3e239b5462f6429123ca50d49ef30365009214779fe3a7d44f115bd11b672",
    }),
    "libopenblas0-pthread": ("0.3.29+ds-3", {  # gotoblas_init: a symbolic (R_*_64) init entry
        "s390x": "338b36e385563372e9a5dfa30436f6b655a26c1593b8c3861fcaf048c64658fd",
        "riscv64": "acd8d2be64839841ba5a4ecd272dfe64303fb5192e0848ebd2096ab4b99aac30",
        "ppc64el": "3aa1d4399c4f1832ce1a83541550c061ed200999b9fae20487aa90f2fa581b60",
    }),
}
MINE = sorted(DEBIAN_ARCH)


def registered(arch: str) -> None:
    if arch not in MACHINES:
        pytest.skip(f"{arch} is not registered in muslcheck/elf/constructors/machines.py")


# --- the contract, over capstone and pyelftools ---


@dataclass
class Sweep:
    """One function's linear sweep: what the architecture's ``step`` reports moves it."""

    start: int
    furthest: int
    slots: set[int] = field(default_factory=set)
    calls: list[int] = field(default_factory=list)
    registers: dict[str, int] = field(default_factory=dict)  # register -> an address it holds
    loaded: dict[str, int] = field(default_factory=dict)  # register -> the slot it was loaded from
    bss: Callable[[int], bool] = lambda address: False  # .bss (0 at load) that no relocation writes
    zero: set[int] = field(default_factory=set)  # riscv64: registers (x numbers) that hold a .bss word
    cc_zero: bool = False  # s390x: the instruction before set the condition code from a .bss word


# What one instruction is, as ``step`` says: ("call" | "jump" | "branch", target), ("slot-call" | "slot-jump",
# slot), ("end", 0) for a return or an indirect jump, or None.
Step = tuple[str, int] | None
StubSlot = tuple[str | None, int] | None  # a stub's slot: (None, its address) or (register, offset from its value)
Reader = Callable[[int, int], bytes | None]


def _address(text: str) -> int:
    return int(text.strip().lstrip("#"), 16)


# brc/brcl masks that leave out CC 0: never taken after a .bss word (0) was loaded and tested
_NOT_CC0 = frozenset(f"j{g}{c}" for g in ("", "g") for c in ("o", "h", "nle", "l", "nhe", "lh", "ne"))


def _s390x_step(insn: Any, sweep: Sweep) -> Step:
    m, ops = insn.mnemonic, [o.strip() for o in insn.op_str.split(",")] if insn.op_str else []
    cc_zero, sweep.cc_zero = sweep.cc_zero, False
    if cc_zero and m in _NOT_CC0:
        return None
    if m in ("lt", "ltg"):
        memory = re.fullmatch(r"(-?(?:0x)?[0-9a-f]+)\((%r\d+)\)", ops[1])  # D(B), no index
        address = sweep.registers.get(memory[2]) if memory else None
        sweep.registers.pop(ops[0], None)
        sweep.loaded.pop(ops[0], None)
        sweep.cc_zero = memory is not None and address is not None and sweep.bss(address + int(memory[1], 0))
        return None
    if m in ("brasl", "bras"):
        return "call", _address(ops[-1])
    if m in ("j", "jg"):
        return "jump", _address(ops[-1])
    if m in ("jnop", "jgnop"):
        return None
    if re.fullmatch(r"j.*|brct.*|brx.*|c.*j.*", m) and ops and ops[-1].startswith("0x"):
        return "branch", _address(ops[-1])
    if m == "larl":
        sweep.registers[ops[0]] = _address(ops[1])
        sweep.loaded.pop(ops[0], None)
    elif m == "lgrl":
        sweep.loaded[ops[0]] = _address(ops[1])
        sweep.registers.pop(ops[0], None)
    elif m == "lg":
        memory = re.fullmatch(r"(-?(?:0x)?[0-9a-f]+)\((%r\d+)\)", ops[1])  # D(B), no index
        address = sweep.registers.get(memory[2]) if memory else None
        sweep.registers.pop(ops[0], None)
        sweep.loaded.pop(ops[0], None)
        if memory and address is not None:
            sweep.loaded[ops[0]] = address + int(memory[1], 0)
    elif m == "basr" and ops[1] in sweep.loaded:
        return "slot-call", sweep.loaded[ops[1]]
    elif m == "br":
        return ("slot-jump", sweep.loaded[ops[0]]) if ops[0] in sweep.loaded else ("end", 0)
    elif re.fullmatch(r"b[a-z]+r", m) and m not in ("basr", "bcr") and ops[0] in sweep.loaded:
        return "slot-call", sweep.loaded[ops[0]]  # a conditional jump through a loaded slot
    elif m == "b":
        return "end", 0
    return None


def _s390x_stub(insns: list[Any]) -> StubSlot:
    """``larl %r1, slot; lg %r1, 0(%r1); br %r1``."""
    text = [(i.mnemonic, i.op_str) for i in insns[:3]]
    if len(text) == 3 and text[0][0] == "larl" and text[0][1].startswith("%r1,") and text[1:] == [
            ("lg", "%r1, 0(%r1)"), ("br", "%r1")]:
        return None, _address(text[0][1].split(",")[1])
    return None


def _page(text: str) -> int:
    """auipc's 20-bit immediate, as capstone prints it, signed."""
    return ((int(text, 0) & 0xFFFFF) ^ 0x80000) - 0x80000


_RISCV_NAMES = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", *(f"a{k}" for k in range(8)),
                *(f"s{k}" for k in range(2, 12)), "t3", "t4", "t5", "t6"]


def _riscv64_zero(insn: Any, m: str, ops: list[str], previous: dict[str, int], sweep: Sweep) -> bool:
    """The .bss guard: whether this is a bnez on a register that holds a .bss word (never taken); else what the
    instruction does to the registers that do."""
    numbers = {name: k for k, name in enumerate(_RISCV_NAMES)} | {"fp": 8}
    if m in ("bnez", "c.bnez") and numbers.get(ops[0]) in sweep.zero:
        return True
    if m == "bne" and "zero" in ops[:2] and numbers.get(ops[0] if ops[1] == "zero" else ops[1]) in sweep.zero:
        return True
    calls = m in ("jal", "jalr", "c.jalr") and not (ops and ops[0] == "zero")
    if calls or (insn.size == 2 and not re.fullmatch(r"c\.(j|jr|beqz|bnez)|ret|jr", m)):
        sweep.zero.clear()  # a call, or a compressed instruction: the contract forgets every register
    elif insn.size == 4 and not re.fullmatch(r"b[a-z]*|f?s[bhwd]", m):  # the contract: rd, bits 7-11, may be written
        sweep.zero.discard(int.from_bytes(insn.bytes, "little") >> 7 & 31)
    load = re.fullmatch(r"(-?(?:0x)?[0-9a-f]+)\(([a-z0-9]+)\)", ops[1]) if len(ops) == 2 else None
    if (re.fullmatch(r"l[bhwd]u?", m) and load and load[2] in previous and ops[0] != "zero"
            and sweep.bss(previous[load[2]] + int(load[1], 0))):
        sweep.zero.add(numbers[ops[0]])
    return False


def _riscv64_step(insn: Any, sweep: Sweep) -> Step:
    m, ops = insn.mnemonic, [o.strip() for o in insn.op_str.split(",")] if insn.op_str else []
    here, previous, sweep.registers = insn.address, sweep.registers, {}  # an auipc counts just before its jalr
    if _riscv64_zero(insn, m, ops, previous, sweep):
        return None
    if m == "auipc":
        sweep.registers[ops[0]] = here + _page(ops[1]) * 4096
    elif m in ("j", "c.j"):
        return "jump", here + int(ops[0], 0)
    elif m == "jal":
        return ("call" if len(ops) == 1 or ops[0] != "zero" else "jump"), here + int(ops[-1], 0)
    elif re.fullmatch(r"(c\.)?b[a-z]+", m):
        return "branch", here + int(ops[-1], 0)
    elif m in ("jalr", "jr", "c.jr", "ret"):
        if m == "ret":
            link, base, offset = "zero", "ra", 0
        elif m == "jalr" and len(ops) == 3:
            link, base, offset = ops[0], ops[1], int(ops[2], 0)
        else:
            link, base, offset = ("ra" if m == "jalr" else "zero"), ops[0], 0
        if base in previous:
            return ("jump" if link == "zero" else "call"), previous[base] + offset
        return ("end", 0) if link == "zero" else None
    return None


def _riscv64_stub(insns: list[Any]) -> StubSlot:
    """``auipc t3, hi; ld t3, lo(t3); jalr t1, t3, 0``."""
    text = [(i.mnemonic, [o.strip() for o in i.op_str.split(",")]) for i in insns[:3]]
    if (len(text) == 3 and text[0][0] == "auipc" and text[0][1][0] == "t3" and text[1][0] == "ld"
            and text[1][1][0] == "t3" and text[1][1][1].endswith("(t3)") and text[2] == ("jalr", ["t1", "t3", "0"])):
        return None, int(insns[0].address) + _page(text[0][1][1]) * 4096 + int(text[1][1][1].removesuffix("(t3)"), 0)
    return None


def _ppc64_entry(read: Reader, md: Any, start: int) -> dict[str, int]:
    """r2, the TOC pointer, from the function's global entry ``addis r2, r12, hi; addi r2, r2, lo``: at the start,
    or 8 bytes before (a local entry)."""
    for entry in (start, start - 8):
        insns = [(i.mnemonic, i.op_str) for i in md.disasm(read(entry, 8) or b"", entry)]
        if (len(insns) == 2 and insns[0][0] == "addis" and insns[0][1].startswith("r2, r12, ")
                and insns[1][0] == "addi" and insns[1][1].startswith("r2, r2, ")):
            hi, lo = (int(text.split(", ")[2], 0) for text in (insns[0][1], insns[1][1]))
            return {"r2": entry + (hi << 16) + lo}
    return {}


def _ppc64_step(insn: Any, sweep: Sweep) -> Step:
    m, ops = insn.mnemonic.rstrip("+-"), [o.strip() for o in insn.op_str.split(",")] if insn.op_str else []
    link = insn.bytes[0] & 1  # the LK bit: capstone's names are ambiguous (bnl: not less; bnll: and link)
    target = ops[-1] if ops and ops[-1].startswith("0x") else None
    if m in ("b", "bl") and target:
        return ("call" if m == "bl" else "jump"), _address(target)
    if m.startswith("b") and target:  # bc: a conditional branch, or with link, not a call
        return None if link else ("branch", _address(target))
    if m == "addis" or m == "addi":
        if ops[0] != "r2":  # the TOC pointer stays what the entry set
            sweep.registers.pop(ops[0], None)
            sweep.loaded.pop(ops[0], None)
            if m == "addis" and ops[1] == "r2" and "r2" in sweep.registers:
                sweep.registers[ops[0]] = sweep.registers["r2"] + (int(ops[2], 0) << 16)
    elif m == "ld":
        memory = re.fullmatch(r"(-?(?:0x)?[0-9a-f]+)\((r\d+)\)", ops[1])
        base = sweep.registers.get(memory[2]) if memory else None
        if ops[0] != "r2":
            sweep.registers.pop(ops[0], None)
            sweep.loaded.pop(ops[0], None)
        if memory and base is not None:
            sweep.loaded[ops[0]] = base + int(memory[1], 0)
    elif m == "mtctr":
        if ops[0] in sweep.loaded:
            sweep.registers["ctr"] = sweep.loaded[ops[0]]
        else:
            sweep.registers.pop("ctr", None)
    elif m in ("bctr", "bctrl") and "ctr" in sweep.registers:
        return ("slot-jump" if m == "bctr" else "slot-call"), sweep.registers["ctr"]
    elif m in ("bctr", "blr"):
        return "end", 0
    return None


def _ppc64_stub(insns: list[Any]) -> StubSlot:
    """``[std r2, 0x18(r1);] [addis r12, r2, hi;] ld r12, lo(r12 or r2); mtctr r12; bctr``: the slot from r2."""
    text = [(i.mnemonic, i.op_str) for i in insns]
    if text[:1] == [("std", "r2, 0x18(r1)")]:
        text = text[1:]
    offset = 0
    if text and text[0][0] == "addis" and text[0][1].startswith("r12, r2, "):
        offset, text, base = int(text[0][1].split(", ")[2], 0) << 16, text[1:], "r12"
    else:
        base = "r2"
    load = re.fullmatch(rf"r12, (-?(?:0x)?[0-9a-f]+)\({base}\)", text[0][1]) if text and text[0][0] == "ld" else None
    if load is None or text[1:3] != [("mtctr", "r12"), ("bctr", "")]:
        return None
    return "r2", offset + int(load[1], 0)


@dataclass(frozen=True)
class Reference:
    capstone: tuple[str, ...]  # CS_ARCH_*, CS_MODE_*...
    slot_types: frozenset[int]
    relative: int
    step: Callable[[Any, Sweep], Step]
    stub: Callable[[list[Any]], StubSlot]
    stub_size: int
    entry: Callable[[Reader, Any, int], dict[str, int]] = lambda read, md, start: {}  # registers set on entry


REFERENCES = {
    "s390x": Reference(("CS_ARCH_SYSZ", "CS_MODE_BIG_ENDIAN"), frozenset({10, 11}), 12, _s390x_step, _s390x_stub, 14),
    "riscv64": Reference(("CS_ARCH_RISCV", "CS_MODE_RISCV64", "CS_MODE_RISCVC"), frozenset({5}), 3, _riscv64_step,
                         _riscv64_stub, 12),
    "ppc64": Reference(("CS_ARCH_PPC", "CS_MODE_64", "CS_MODE_LITTLE_ENDIAN"), frozenset({20, 21}), 22, _ppc64_step,
                       _ppc64_stub, 20, _ppc64_entry),
}


def _loads(elf: Any, data: bytes) -> Reader:
    loads = [(s["p_vaddr"], s["p_offset"], s["p_filesz"]) for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    return cast(Reader, loads_reader(data, loads))


def reference_calls(path: Path, arch: str) -> tuple[str, ...]:
    import capstone
    from elftools.elf.elffile import ELFFile

    ref = REFERENCES[arch]
    data = path.read_bytes()
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        read, little = _loads(elf, data), elf.little_endian
        bss = [(seg["p_vaddr"] + seg["p_filesz"], seg["p_vaddr"] + seg["p_memsz"]) for seg in elf.iter_segments()
               if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > seg["p_filesz"]]
        [dynamic] = [s for s in elf.iter_segments() if s["p_type"] == "PT_DYNAMIC"]
        tags: dict[str, int] = {}
        for tag in dynamic.iter_tags():
            tags.setdefault(tag.entry.d_tag, tag.entry.d_val)
        names: dict[int, str] = {}
        owns: dict[int, int | None] = {}  # a slot's symbol, when the object defines it: its function
        # an init_array entry the file holds as 0 is a RELATIVE relocation's addend, or an own function's address
        addends: dict[int, int] = {}
        written: set[int] = set()  # the words relocations write
        for table in dynamic.get_relocation_tables().values():
            for r in table.iter_relocations():
                written.add(r["r_offset"] - r["r_offset"] % 8)
                symbol = dynamic.get_symbol(r["r_info_sym"]) if r["r_info_sym"] else None
                own = _own_function(symbol)
                if r["r_info_type"] in ref.slot_types and symbol is not None and r["r_offset"] not in names:
                    names[r["r_offset"]], owns[r["r_offset"]] = symbol.name, own
                if symbol is None and r["r_info_type"] == ref.relative:
                    addends[r["r_offset"]] = r["r_addend"]
                elif own is not None:
                    addends[r["r_offset"]] = own + r["r_addend"]

    def zero_at_load(address: int) -> bool:
        return any(low <= address < high for low, high in bss) and address - address % 8 not in written

    mode = 0
    for name in ref.capstone[1:]:
        mode |= getattr(capstone, name)
    md = capstone.Cs(getattr(capstone, ref.capstone[0]), mode)
    md.skipdata = arch == "ppc64"  # a word capstone cannot decode (padding after a call that never returns)
    word = 8
    starts = [tags["DT_INIT"]] if tags.get("DT_INIT") else []
    for k in range(min(tags.get("DT_INIT_ARRAYSZ", 0) // word, MAX_INIT_FUNCTIONS + 1)):
        at = tags["DT_INIT_ARRAY"] + k * word
        raw = read(at, word)
        value = int.from_bytes(raw, "little" if little else "big") if raw and len(raw) == word else 0
        value = value or addends.get(at, 0)
        if value and value != (1 << 64) - 1:
            starts.append(value)
    stubs: dict[int, StubSlot] = {}

    def stub(target: int, registers: dict[str, int]) -> int | None:
        if target not in stubs:
            raw = read(target, ref.stub_size)
            stubs[target] = ref.stub(list(md.disasm(raw, target, 6))) if raw else None
        found = stubs[target]
        if found is None:
            return None
        base, offset = found
        if base is None:
            return offset
        return registers[base] + offset if base in registers else None

    def sweep(start: int, budget: int) -> tuple[int, set[int], list[int]]:
        s, used = Sweep(start, start, registers=ref.entry(read, md, start), bss=zero_at_load), 0
        for insn in md.disasm(read(start, 6 * budget + 16) or b"", start):
            if used >= budget:
                break
            used += 1
            here, what = insn.address, ref.step(insn, s)
            if what is None:
                continue
            kind, value = what
            if kind == "branch":
                s.furthest = max(s.furthest, value)
            elif kind == "call":
                slot = stub(value, s.registers)
                if slot is None:
                    s.calls.append(value)
                else:
                    s.slots.add(slot)
            elif kind == "slot-call":
                s.slots.add(value)
            elif kind in ("slot-jump", "end"):
                if kind == "slot-jump":
                    s.slots.add(value)
                if here >= s.furthest:
                    break
            else:  # an unconditional jump: into a stub, out of the function (a tail call), or inside it
                slot = stub(value, s.registers)
                if slot is not None:
                    s.slots.add(slot)
                elif value < start or (value > here and here >= s.furthest):
                    s.calls.append(value)
                if here >= s.furthest:
                    break
                if slot is None and value > here:
                    s.furthest = max(s.furthest, value)
        return used, s.slots, s.calls

    return tuple(sorted(contract_walk(starts, sweep, names, owns)))


def _own_function(symbol: Any) -> int | None:
    """Where a pyelftools dynamic symbol is defined, when the object defines it as a function."""
    if symbol is None or not isinstance(symbol["st_shndx"], int) or not symbol["st_shndx"] or not symbol["st_value"]:
        return None
    return int(symbol["st_value"]) if symbol["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE") else None


def libraries(arch: str) -> Iterator[tuple[str, Path]]:
    """(package, library file) of every pinned package of ARCH."""
    if importlib.util.find_spec("capstone") is None or importlib.util.find_spec("elftools") is None:
        unavailable("capstone and pyelftools (the crosscheck extra) decode the reference")
    debian = DEBIAN_ARCH[arch]
    for package, (version, digests) in PACKAGES.items():
        root = debian_package(package, version, debian, digests[debian])
        for path in sorted(root.glob("usr/lib/*-linux-gnu*/**/*.so*")):
            if not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
                yield package, path


@pytest.mark.slow
@pytest.mark.parametrize("arch", MINE)
def test_real_debian_libraries_agree_with_capstone(arch: str) -> None:
    registered(arch)
    if arch not in REFERENCES:
        pytest.skip(f"no capstone reference for {arch} yet")
    compared = {}
    for package, path in libraries(arch):
        facts = read_elf_file(path)
        assert facts.machine == arch, path
        assert facts.constructor_calls == reference_calls(path, arch), (package, path.name)
        compared[path.name] = facts.constructor_calls
    # Not vacuous: libstdc++'s static initialisers call these through the PLT on every architecture.
    [stdcxx] = [calls for name, calls in compared.items() if name.startswith("libstdc++")]
    assert {"__cxa_atexit", "_ZNSt8ios_base4InitC1Ev"} <= set(stdcxx), stdcxx
    # Nor the symbolic init entry and the own PLT calls: gotoblas_init -> openblas_fork_handler@plt (its own) ->
    # pthread_atfork (libc_nonshared) -> __register_atfork@plt, what crashes OpenBLAS's lazy dlopen on musl 1.2.6.
    assert "__register_atfork" in compared["libopenblasp-r0.3.29.so"]
    if arch in ("s390x", "riscv64"):  # and the .bss guard: init calls set_fpu only when options.fpe is set
        assert "feenableexcept" not in compared["libgfortran.so.5.0.0"]
    assert len(compared) >= len(PACKAGES), sorted(compared)


class Image:
    """A memory image for a decoder: segments at their addresses, or (``everywhere``) the same bytes at every
    64-byte boundary, so that any branch target reads as code."""

    def __init__(self, arch: str, segments: dict[int, bytes], everywhere: bytes | None = None) -> None:
        self.arch, self.segments, self.everywhere = arch, segments, everywhere

    @property
    def little(self) -> bool:
        return self.arch != "s390x"

    @property
    def word_size(self) -> int:
        return 8

    @property
    def tags(self) -> dict[int, int]:
        return {}

    def read_code(self, vaddr: int, size: int) -> bytes | None:
        if self.everywhere is not None:
            return self.everywhere[vaddr % 64 : vaddr % 64 + size] if vaddr >= 0 else None
        for start, data in self.segments.items():
            if start <= vaddr < start + len(data):
                return data[vaddr - start : vaddr - start + size]
        return None

    def word(self, vaddr: int) -> int | None:
        raw = self.read_code(vaddr, 8)
        return int.from_bytes(raw, "little" if self.little else "big") if raw and len(raw) == 8 else None

    def plt_slot(self, target: int) -> int | None:
        return MACHINES[self.arch].plt_slot(self, target)

    def zero_at_load(self, vaddr: int) -> bool:  # every other 64 bytes: the .bss guard is exercised too
        return vaddr % 128 < 64


@pytest.mark.parametrize("arch", MINE)
def test_hostile_bytes_never_raise_and_respect_the_budget(arch: str) -> None:
    registered(arch)
    machine, rng = MACHINES[arch], random.Random(19)
    for _ in range(2000):
        code = rng.randbytes(rng.randrange(0, 200))
        budget = rng.randrange(1, 60)
        used, slots, calls = machine.decode(code, 0x1000, budget, Image(arch, {}, code))
        assert 0 <= used <= budget
        assert all(isinstance(s, int) for s in slots) and all(isinstance(c, int) for c in calls)


def _le(*words: int) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


def _rv_jal(rd: int, offset: int) -> int:
    o = offset & 0x1FFFFF
    return (o >> 20 & 1) << 31 | (o >> 1 & 0x3FF) << 21 | (o >> 11 & 1) << 20 | (o >> 12 & 0xFF) << 12 | rd << 7 | 0x6F


def _rv_i(opcode: int, funct3: int, rd: int, rs1: int, imm: int) -> int:
    return (imm & 0xFFF) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode


def _rv_stub(slot_page: int, low: int) -> bytes:  # auipc t3, page; ld t3, low(t3); jalr t1, t3; nop
    return _le(slot_page << 12 | 28 << 7 | 0x17, _rv_i(0x03, 3, 28, 28, low), _rv_i(0x67, 0, 6, 28, 0), 0x13)


# Each: a function at 0x1000 whose conditional branch jumps past a return, then a call or tail jump through a
# stub (at 0x1100, slot 0x2000) and through a second slot; (segments, instructions used, slots, own calls).
HAND_ASSEMBLED: dict[str, tuple[dict[int, bytes], int, set[int], list[int]]] = {
    "s390x": ({
        # cije %r2, 0, 0x100c; br %r14; nopr; nopr; brasl %r14, 0x1200; jg 0x1100
        0x1000: bytes.fromhex("ec280006007e" "07fe" "0707" "0707" "c0e5000000fa" "c0f400000077"),
        # larl %r1, 0x2000; lg %r1, 0(%r1); br %r1
        0x1100: bytes.fromhex("c01000000780" "e31010000004" "07f1"),
    }, 6, {0x2000}, [0x1200]),
    "riscv64": ({
        # c.beqz a0, +6; c.jr ra; c.nop; jal ra, 0x1100; auipc t1, 0; jalr zero, 0x116(t1) (a tail jump to 0x1120)
        0x1000: (0xC119).to_bytes(2, "little") + (0x8082).to_bytes(2, "little") + (0x0001).to_bytes(2, "little")
        + _le(_rv_jal(1, 0x1100 - 0x1006), 6 << 7 | 0x17, _rv_i(0x67, 0, 0, 6, 0x116)),
        0x1100: _rv_stub(1, -0x100) + bytes(16) + _rv_stub(1, -0x118),  # slots 0x2000 and 0x2008
    }, 6, {0x2000, 0x2008}, []),
    "ppc64": ({
        # addis r2, r12, 1; addi r2, r2, 0 (TOC 0x11000); beq 0x1014; blr; nop; bl 0x1100; ld r2, 24(r1);
        # ld r12, -0x7ff8(r2); mtctr r12; bctrl; bl 0x1200; blr
        0x1000: _le(0x3C4C0001, 0x38420000, 0x4182000C, 0x4E800020, 0x60000000, 0x480000ED, 0xE8410018,
                    0xE9828008, 0x7D8903A6, 0x4E800421, 0x480001D9, 0x4E800020),
        # std r2, 24(r1); ld r12, -0x8000(r2); mtctr r12; bctr
        0x1100: _le(0xF8410018, 0xE9828000, 0x7D8903A6, 0x4E800420),
    }, 12, {0x9000, 0x9008}, [0x1200]),
}


@pytest.mark.parametrize("arch", MINE)
def test_a_conditional_branch_past_a_return_keeps_the_sweep_going(arch: str) -> None:
    registered(arch)
    segments, used, slots, calls = HAND_ASSEMBLED[arch]
    assert MACHINES[arch].decode(segments[0x1000], 0x1000, 100, Image(arch, segments)) == (used, slots, calls)
    # Without the budget to reach them, none is found.
    assert MACHINES[arch].decode(segments[0x1000], 0x1000, 2, Image(arch, segments)) == (2, set(), [])
