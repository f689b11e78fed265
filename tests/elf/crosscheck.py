"""Independent readers of the same ``ElfFacts``, through pyelftools and lief.

They exist to hold ``reader.py`` to account, so they share nothing with it: each
library extracts raw symbols, relocations and versions through its own API, and
``_assemble`` (written here, plainly) applies the contract of ``facts.py``.

This is the only module that imports pyelftools or lief, and it imports them
inside the functions: ``import lief`` alone costs about 0.6 s.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from muslcheck.elf.facts import ElfFacts, ElfType, Export, Exports, SymbolUse, Uses
from muslcheck.model.errors import MalformedElf

_STB_LOCAL, _STB_GLOBAL, _STB_WEAK = 0, 1, 2
_STT_TLS = 6
_BINDINGS = {1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
_TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS", 10: "GNU_IFUNC"}
_ELF_TYPES = {1: ElfType.REL, 2: ElfType.EXEC, 3: ElfType.DYN, 4: ElfType.CORE}

# e_machine -> (name for ELFCLASS32, name for ELFCLASS64)
_MACHINES = {
    3: ("i386", "i386"),
    8: ("mips", "mips64"),
    20: ("ppc", "ppc"),
    21: ("ppc64", "ppc64"),
    22: ("s390", "s390x"),
    40: ("arm", "arm"),
    43: ("sparc64", "sparc64"),
    62: ("x86_64", "x86_64"),
    183: ("aarch64", "aarch64"),
    243: ("riscv32", "riscv64"),
    258: ("loongarch32", "loongarch64"),
}
# musl's REL_TPOFF/REL_TPOFF_NEG per machine name (arch/*/reloc.h).
_TPOFF = {
    "x86_64": {18},
    "aarch64": {1030},
    "i386": {14, 37},
    "arm": {19},
    "riscv64": {11},
    "riscv32": {10},
    "ppc64": {73},
    "ppc": {73},
    "s390x": {56},
    "mips": {47},
    "mips64": {48},
    "loongarch64": {11},
}

_DT_FLAGS_TEXTREL, _DF_BIND_NOW, _DF_STATIC_TLS = 0x4, 0x8, 0x10
_DF_1_NOW, _DF_1_PIE = 0x1, 0x08000000


@dataclass(frozen=True)
class _Symbol:
    name: str
    bind: int
    type: int
    defined: bool
    value: int
    size: int
    versym: int  # raw versym entry; 0 when there is no versym table


@dataclass
class _Raw:
    """What a library hands over; ``_assemble`` turns it into ``ElfFacts``."""

    elf_class: int
    little_endian: bool
    e_machine: int
    e_type: int
    interpreter: str | None
    has_dynamic: bool
    has_tls: bool
    # Dynamic tags in file order, with string values already resolved for the string tags.
    needed: list[str]
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags: int = 0
    flags_1: int = 0
    bind_now_tag: bool = False
    textrel_tag: bool = False
    has_relr: bool = False
    relocations: list[tuple[int, int]] | None = None  # (type, symbol index)
    symbols: list[_Symbol] | None = None  # the whole table, index 0 included
    versions: dict[int, tuple[str, str | None]] | None = None  # versym index >= 2 -> (name, vn_file)
    code: _Code | None = None  # for constructor_calls


def _from_latin1(text: str) -> str:
    """pyelftools decodes names as latin-1; the contract wants UTF-8 with surrogateescape."""
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


def _assemble(raw: _Raw) -> ElfFacts:
    machine = _MACHINES.get(raw.e_machine, (f"EM_{raw.e_machine}",) * 2)[raw.elf_class == 64]
    relocations = raw.relocations or []
    symbols = raw.symbols or []
    versions = raw.versions or {}
    refs: dict[int, Counter[int]] = {}
    for r_type, r_sym in relocations:
        if r_sym:
            refs.setdefault(r_sym, Counter())[r_type] += 1
    tpoff = _TPOFF.get(machine, set())
    tls_local = sum(
        1
        for r_type, r_sym in relocations
        if r_type in tpoff and (r_sym == 0 or symbols[r_sym].bind == _STB_LOCAL)
    )

    uses: dict[tuple[str, str | None, str, bool], tuple[str, str | None, Counter[int]]] = {}
    exports: list[Export] = []
    for index, sym in enumerate(symbols):
        if index == 0 or sym.bind == _STB_LOCAL:
            continue
        version_index, hidden = sym.versym & 0x7FFF, bool(sym.versym & 0x8000)
        version: str | None = None
        library: str | None = None
        if version_index >= 2:
            if version_index not in versions:
                raise MalformedElf(f"version index {version_index} has no version definition or need")
            version, library = versions[version_index]
        binding = _BINDINGS.get(sym.bind, f"BIND_{sym.bind}")
        sym_type = _TYPES.get(sym.type, f"TYPE_{sym.type}")
        if (not sym.defined and sym.bind in (_STB_GLOBAL, _STB_WEAK)) or index in refs:
            key = (sym.name, version, binding, sym.defined)
            if key not in uses:
                uses[key] = (sym_type, None if sym.defined else library, Counter())
            uses[key][2].update(refs.get(index, Counter()))
        if sym.name and not hidden and (sym.defined or sym.value) and (sym.value or sym.type == _STT_TLS):
            exports.append(Export(sym.name, sym_type, binding, sym.size, version, not sym.defined))

    def use_key(key: tuple[str, str | None, str, bool]) -> tuple[str, str, str, bool, bool]:
        name, version, binding, defined = key
        return name, version or "", binding, defined, version is None

    def export_key(export: Export) -> tuple[str, str, bool, str, str, int, bool]:
        return (export.name, export.version or "", export.version is None, export.type, export.binding,
                export.size, export.plt_only)

    flags, flags_1 = raw.flags, raw.flags_1
    return ElfFacts(
        elf_class=raw.elf_class,
        little_endian=raw.little_endian,
        machine=machine,
        elf_type=_ELF_TYPES.get(raw.e_type, ElfType.OTHER),
        interpreter=raw.interpreter,
        has_dynamic=raw.has_dynamic,
        has_tls=raw.has_tls,
        soname=raw.soname,
        needed=tuple(raw.needed),
        rpath=raw.rpath,
        runpath=raw.runpath,
        bind_now=raw.bind_now_tag or bool(flags & _DF_BIND_NOW) or bool(flags_1 & _DF_1_NOW),
        static_tls=bool(flags & _DF_STATIC_TLS),
        pie=bool(flags_1 & _DF_1_PIE),
        has_relr=raw.has_relr,
        textrel=raw.textrel_tag or bool(flags & _DT_FLAGS_TEXTREL),
        relocations=tuple(sorted(Counter(r_type for r_type, _ in relocations).items())),
        tls_relocations_local=tls_local,
        uses=Uses.from_rows(
            SymbolUse(name, version, library, binding, sym_type, defined, tuple(sorted(counts.items())))
            for (name, version, binding, defined), (sym_type, library, counts) in sorted(
                uses.items(), key=lambda item: use_key(item[0])
            )
        ),
        exports=Exports.from_rows(sorted(exports, key=export_key)),
        constructor_calls=_constructor_calls(raw.code) if raw.code is not None else (),
    )


def _symbol_count(has_hash: bool, hash_count: int, relocations: Iterable[tuple[int, int]]) -> int:
    """The contract's symbol count: the hash table's, raised to cover every relocation's symbol."""
    referenced = max((r_sym + 1 for _, r_sym in relocations if r_sym), default=0)
    return max(hash_count if has_hash else 0, referenced)


# --- pyelftools ------------------------------------------------------------------------------


def read_elf_pyelftools(path: str | os.PathLike[str]) -> ElfFacts:
    """``ElfFacts`` through pyelftools: DynamicSegment for tags, symbols and relocations, and the
    GNU version sections for versions."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        try:
            return _assemble(_raw_pyelftools(ELFFile(stream)))
        except ELFError as e:
            raise MalformedElf(f"pyelftools: {e}") from e


def _raw_pyelftools(elf: Any) -> _Raw:
    from elftools.elf.dynamic import DynamicSegment
    from elftools.elf.enums import (
        ENUM_D_TAG,
        ENUM_E_MACHINE,
        ENUM_E_TYPE,
        ENUM_ST_INFO_BIND,
        ENUM_ST_INFO_TYPE,
        ENUM_ST_SHNDX,
        ENUM_VERSYM,
    )
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
    from elftools.elf.segments import InterpSegment

    def number(enum: Mapping[str, int], value: str | int) -> int:
        return value if isinstance(value, int) else enum[value]

    header = elf.header
    raw = _Raw(
        elf_class=elf.elfclass,
        little_endian=elf.little_endian,
        e_machine=number(ENUM_E_MACHINE, header["e_machine"]),
        e_type=number(ENUM_E_TYPE, header["e_type"]),
        interpreter=None,
        has_dynamic=False,
        has_tls=False,
        needed=[],
    )
    dynamic = None
    for segment in elf.iter_segments():
        if isinstance(segment, InterpSegment) and raw.interpreter is None:
            raw.interpreter = _from_latin1(segment.get_interp_name() or "")
        elif isinstance(segment, DynamicSegment) and dynamic is None:
            dynamic = segment
        elif segment["p_type"] == "PT_TLS":
            raw.has_tls = True
    if dynamic is None:
        return raw
    raw.has_dynamic = True

    tags = {}
    # DynamicTag sets .needed, .soname, .rpath and .runpath dynamically, hence Any.
    for tag in cast(Iterable[Any], dynamic.iter_tags()):
        name = tag.entry.d_tag if isinstance(tag.entry.d_tag, str) else None
        if name == "DT_NEEDED":
            raw.needed.append(_from_latin1(tag.needed))
        elif name == "DT_SONAME":
            raw.soname = _from_latin1(tag.soname)
        elif name == "DT_RPATH":
            raw.rpath = _from_latin1(tag.rpath)
        elif name == "DT_RUNPATH":
            raw.runpath = _from_latin1(tag.runpath)
        elif name is not None:
            tags[name] = tag.entry.d_val
    raw.flags, raw.flags_1 = tags.get("DT_FLAGS", 0), tags.get("DT_FLAGS_1", 0)
    raw.bind_now_tag, raw.textrel_tag = "DT_BIND_NOW" in tags, "DT_TEXTREL" in tags
    raw.has_relr = "DT_RELR" in tags
    assert ENUM_D_TAG["DT_RELR"] == 36

    relocations: list[tuple[int, int]] = []
    tables = cast(dict[str, Any], dynamic.get_relocation_tables())
    for kind, table in tables.items():
        if kind != "RELR":  # RELR entries carry no type or symbol
            relocations.extend((r["r_info_type"], r["r_info_sym"]) for r in table.iter_relocations())
    raw.relocations = relocations
    raw.code = _code_pyelftools(elf, dynamic, tables, raw)

    if "DT_SYMTAB" in tags:
        has_hash = "DT_HASH" in tags or "DT_GNU_HASH" in tags
        count = _symbol_count(has_hash, dynamic.num_symbols() if has_hash else 0, relocations)
        symbols = [dynamic.get_symbol(i) for i in range(count)]
    else:
        symbols = []

    versym_section = verneed = verdef = None
    for section in elf.iter_sections():
        if isinstance(section, GNUVerSymSection):
            versym_section = section
        elif isinstance(section, GNUVerNeedSection):
            verneed = section
        elif isinstance(section, GNUVerDefSection):
            verdef = section
    if "DT_VERSYM" in tags and versym_section is None:
        raise MalformedElf("pyelftools: symbol versions are read from section headers, which are missing")
    versions: dict[int, tuple[str, str | None]] = {}
    if verdef is not None:
        for definition, auxiliaries in verdef.iter_versions():
            names = [_from_latin1(aux.name) for aux in auxiliaries]
            if names and definition["vd_ndx"] & 0x7FFF >= 2:
                versions[definition["vd_ndx"] & 0x7FFF] = (names[0], None)
    if verneed is not None:
        for need, auxiliaries in verneed.iter_versions():
            for aux in auxiliaries:
                if aux["vna_other"] & 0x7FFF >= 2:
                    versions[aux["vna_other"] & 0x7FFF] = (_from_latin1(aux.name), _from_latin1(need.name or ""))
    raw.versions = versions

    def versym(index: int) -> int:
        if versym_section is None:
            return 0
        return number(ENUM_VERSYM, versym_section.get_symbol(index).entry["ndx"])

    raw.symbols = [
        _Symbol(
            name=_from_latin1(sym.name),
            bind=number(ENUM_ST_INFO_BIND, sym["st_info"]["bind"]),
            type=number(ENUM_ST_INFO_TYPE, sym["st_info"]["type"]),
            defined=number(ENUM_ST_SHNDX, sym["st_shndx"]) != 0,
            value=sym["st_value"],
            size=sym["st_size"],
            versym=versym(index),
        )
        for index, sym in enumerate(symbols)
    ]
    return raw


# --- lief ------------------------------------------------------------------------------------


def read_elf_lief(path: str | os.PathLike[str]) -> ElfFacts:
    """``ElfFacts`` through lief: its dynamic entries, dynamic symbols, symbol versions and
    dynamic/PLT-GOT relocations."""
    import lief

    config = lief.ELF.ParserConfig()
    config.parse_symtab_symbols = False
    config.parse_notes = False
    config.parse_overlay = False
    binary = lief.ELF.parse(os.fspath(path), config)
    if binary is None:
        raise MalformedElf("lief could not parse the file")
    raw = _raw_lief(binary)
    if raw.has_dynamic:
        raw.code = _code_lief(binary, raw, path)
    return _assemble(raw)


def _raw_lief(binary: Any) -> _Raw:
    import lief

    ELF = lief.ELF
    header = binary.header
    elf_class = 64 if header.identity_class == ELF.Header.CLASS.ELF64 else 32
    raw = _Raw(
        elf_class=elf_class,
        little_endian=header.identity_data == ELF.Header.ELF_DATA.LSB,
        e_machine=int(header.machine_type),
        e_type=int(header.file_type),
        interpreter=binary.interpreter if binary.has_interpreter else None,
        has_dynamic=any(seg.type == ELF.Segment.TYPE.DYNAMIC for seg in binary.segments),
        has_tls=any(seg.type == ELF.Segment.TYPE.TLS for seg in binary.segments),
        needed=[],
    )
    if not raw.has_dynamic:
        return raw

    Tag = ELF.DynamicEntry.TAG
    tags = {}
    for entry in binary.dynamic_entries:
        if entry.tag == Tag.NEEDED:
            raw.needed.append(entry.name)
        elif entry.tag == Tag.SONAME:
            raw.soname = entry.name
        elif entry.tag == Tag.RPATH:
            raw.rpath = entry.rpath
        elif entry.tag == Tag.RUNPATH:
            raw.runpath = entry.runpath
        else:
            tags[entry.tag] = entry.value
    raw.flags, raw.flags_1 = tags.get(Tag.FLAGS, 0), tags.get(Tag.FLAGS_1, 0)
    raw.bind_now_tag, raw.textrel_tag = Tag.BIND_NOW in tags, Tag.TEXTREL in tags
    raw.has_relr = Tag.RELR in tags

    lief_class = ELF.Header.CLASS.ELF64 if elf_class == 64 else ELF.Header.CLASS.ELF32
    type_mask = 0xFFFFFFFF if elf_class == 64 else 0xFF
    raw.relocations = [
        (reloc.r_info(lief_class) & type_mask, reloc.info)
        for reloc in binary.relocations
        if reloc.purpose in (ELF.Relocation.PURPOSE.DYNAMIC, ELF.Relocation.PURPOSE.PLTGOT)
        and reloc.encoding in (ELF.Relocation.ENCODING.REL, ELF.Relocation.ENCODING.RELA)
    ]

    versions: dict[int, tuple[str, str | None]] = {}
    for definition in binary.symbols_version_definition:
        names = [aux.name for aux in definition.auxiliary_symbols]
        if names and definition.ndx & 0x7FFF >= 2:
            versions[definition.ndx & 0x7FFF] = (names[0], None)
    for need in binary.symbols_version_requirement:
        for aux in need.get_auxiliary_symbols():
            if aux.other & 0x7FFF >= 2:
                versions[aux.other & 0x7FFF] = (aux.name, need.name)
    raw.versions = versions

    has_versym = Tag.VERSYM in tags
    raw.symbols = [
        _Symbol(
            name=sym.name,
            bind=int(sym.binding),
            type=int(sym.type),
            defined=sym.shndx != 0,
            value=sym.value,
            size=sym.size,
            versym=sym.symbol_version.value if has_versym and sym.has_version else 0,
        )
        for sym in binary.dynamic_symbols
    ]
    return raw


# --- constructor calls (ElfFacts.constructor_calls), decoded by capstone ------------------------

_CTOR_MAX_INSTRUCTIONS, _CTOR_MAX_FUNCTIONS, _CTOR_MAX_DEPTH = 2048, 64, 2
_CTOR_SLOTS = {"x86_64": ({6, 7}, 8), "aarch64": ({1025, 1026}, 1027)}  # GLOB_DAT, JUMP_SLOT; RELATIVE


@dataclass
class _Code:
    """What the constructor scan reads, as one library hands it over."""

    machine: str
    word_size: int
    read: Any  # (vaddr, size) -> bytes, or None outside every PT_LOAD file image
    tags: dict[int, int]
    relocations: list[tuple[int, int, int, str | None, int | None]]  # (r_offset, type, addend, symbol name,
    # where the object defines that symbol as a function, or None)
    bss: list[tuple[int, int]]  # [start, end) of each PT_LOAD's memory past its file image


def _constructor_calls(code: _Code) -> tuple[str, ...]:
    """The contract of elf/constructors/, over capstone's decoding."""
    import capstone

    if code.machine not in _CTOR_SLOTS:
        return ()
    slot_types, relative = _CTOR_SLOTS[code.machine]
    slot_names: dict[int, str] = {}
    slot_own: dict[int, int | None] = {}  # a slot's symbol, when the object defines it: its function
    for off, rtype, _, name, own in code.relocations:  # the first relocation of a slot names it
        if rtype in slot_types and name and off not in slot_names:
            slot_names[off], slot_own[off] = name, own
    # an init_array entry the file holds as 0: a RELATIVE relocation's addend, or an own function's address
    addends = {off: add for off, rtype, add, name, _ in code.relocations if rtype == relative and not name}
    addends.update({off: own + add for off, _, add, name, own in code.relocations if name and own is not None})
    starts = [code.tags[12]] if code.tags.get(12) else []
    base, size = code.tags.get(25), code.tags.get(27, 0)
    if base is not None:
        for k in range(min(size // code.word_size, _CTOR_MAX_FUNCTIONS + 1)):
            raw = code.read(base + k * code.word_size, code.word_size)
            value = int.from_bytes(raw, "little") if raw else 0
            value = value or addends.get(base + k * code.word_size, 0)
            if value and value != (1 << 8 * code.word_size) - 1:
                starts.append(value)
    x86 = code.machine == "x86_64"
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64) if x86 else capstone.Cs(capstone.CS_ARCH_ARM64,
                                                                                           capstone.CS_MODE_ARM)
    md.skipdata = not x86  # an undecodable aarch64 word is stepped over, as the fast reader does

    def plt_slot(target: int) -> int | None:
        raw = code.read(target, 20)
        if raw is None:
            return None
        if len(raw) < (11 if x86 else 20):
            return None
        insns = list(md.disasm(raw, target, 5))
        if insns and insns[0].mnemonic in ("endbr64", "bti"):
            insns = insns[1:]
        if x86:
            if insns and insns[0].mnemonic in ("jmp", "bnd jmp") and "[rip" in insns[0].op_str:
                disp = int(insns[0].op_str.split("rip")[1].strip(" +]"), 16) if "+" in insns[0].op_str else 0
                return insns[0].address + insns[0].size + disp
            return None
        if len(insns) < 4 or [i.mnemonic for i in insns[:3]] != ["adrp", "ldr", "add"]:
            return None
        if not insns[0].op_str.startswith("x16,") or not insns[1].op_str.startswith("x17, [x16"):
            return None
        if not (insns[3].mnemonic == "br" and insns[3].op_str == "x17") and not (
                insns[3].mnemonic == "autia1716" and len(insns) > 4 and insns[4].op_str == "x17"):
            return None
        page = int(insns[0].op_str.split("#")[1], 16)
        off = int(insns[1].op_str.split("#")[1].rstrip("]"), 16) if "#" in insns[1].op_str else 0
        return page + off

    written = {off - off % code.word_size for off, *_ in code.relocations}

    def zero_at_load(address: int) -> bool:  # .bss that no relocation writes
        return (any(low <= address < high for low, high in code.bss)
                and address - address % code.word_size not in written)

    def register(name: str) -> int:
        return 31 if name in ("sp", "wsp", "xzr", "wzr") else int(name[1:])

    def sweep(start: int, budget: int) -> tuple[int, set[int], list[int]]:
        slots: set[int] = set()
        calls: list[int] = []
        furthest = start
        regs: dict[str, int] = {}
        loaded: dict[str, int] = {}
        zero: set[int] = set()  # aarch64: registers holding a .bss word loaded since the last call
        used = 0
        raw = code.read(start, 4 * budget + 16) or b""
        for insn in md.disasm(raw, start):
            if used >= budget or (x86 and insn.address + 16 > start + len(raw)):
                break
            used += 1
            here, m, ops = insn.address, insn.mnemonic.removeprefix("notrack ").removeprefix("bnd "), insn.op_str
            if x86:
                direct = ops.startswith("0x")
                is_call, is_jmp = m == "call", m == "jmp"
                cond = (m.startswith("j") and not is_jmp) or m in ("loop", "loope", "loopne")
                ends = m == "ret"
                via_slot = (is_call or is_jmp) and ops.startswith("qword ptr [rip")
                if via_slot:
                    disp = int(ops.split("rip")[1].strip(" +-]"), 16) if ("+" in ops or "-" in ops) else 0
                    disp = -disp if "-" in ops else disp
                    slots.add(here + insn.size + disp)
                    if is_jmp and here >= furthest:
                        break
                    continue
                if (is_jmp or is_call) and not direct:
                    if is_jmp and here >= furthest:
                        break
                    continue
            else:
                first = ops.split(",")[0]
                if m in ("cbnz", "tbnz") and register(first) in zero:
                    continue  # on a .bss word, 0 at load: never taken
                branch = m in ("b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz") or m.startswith("b.")
                if not branch:  # the contract: the register an encoding holds in bits 0-4 may be written
                    word = int.from_bytes(insn.bytes, "little")
                    zero.discard(word & 31)
                    if m in ("ldp", "ldnp", "ldpsw"):
                        zero.discard((word >> 10) & 31)
                if m in ("bl", "blr"):
                    zero.clear()
                if m == "adrp":
                    regs[first] = int(ops.split("#")[1], 16)
                    loaded.pop(first, None)
                    continue
                if (m in ("ldr", "ldrb", "ldrh") and ops[0] in "xw" and "[x" in ops and "]!" not in ops
                        and "], " not in ops and ops.count(",") <= 2):
                    src = ops.split("[")[1].split(",")[0].rstrip("]")
                    if m == "ldr" and first.startswith("x"):
                        loaded.pop(first, None)
                    if src in regs:
                        address = regs[src] + (int(ops.split("#")[1].rstrip("]"), 16) if "#" in ops else 0)
                        if m == "ldr" and first.startswith("x"):
                            loaded[first] = address
                        inner = ops.split("[")[1].split("]")[0].split(",")
                        if (len(inner) == 1 or inner[1].strip().startswith("#")) and zero_at_load(address):
                            zero.add(register(first))
                    continue
                if m in ("blr", "br") and ops in loaded:
                    slots.add(loaded[ops])
                if m in ("ret", "br") and here >= furthest:
                    break
                direct = m in ("b", "bl")
                is_call, is_jmp = m == "bl", m == "b"
                cond = m.startswith("b.") or m in ("cbz", "cbnz", "tbz", "tbnz")
                ends = False
            if cond:
                furthest = max(furthest, int(ops.split("#")[-1] if not x86 else ops, 16))
                continue
            if ends and here >= furthest:
                break
            if not direct:
                continue
            target = int(ops.lstrip("#"), 16)
            slot = plt_slot(target)
            if is_call:
                if slot is not None:
                    slots.add(slot)
                else:
                    calls.append(target)
                continue
            if slot is not None:
                slots.add(slot)
            elif target < start or (target > here and here >= furthest):
                calls.append(target)
            if here >= furthest:
                break
            if slot is None and target > here:
                furthest = max(furthest, target)
        return used, slots, calls

    return tuple(sorted(contract_walk(starts, sweep, slot_names, slot_own)))


Sweep = Callable[[int, int], tuple[int, Collection[int], Sequence[int]]]  # (function, budget) -> used, slots, calls


def contract_walk(starts: Sequence[int], sweep: Sweep, slot_names: Mapping[int, str],
                  slot_own: Mapping[int, int | None]) -> set[str]:
    """The contract's walk, whatever decodes the code: from each init function (the first 64), one budget of 2,048
    instructions for it and the functions it reaches two levels down (direct callees, then own functions called
    through a slot); the names of the slots called."""
    names: set[str] = set()
    for start in starts[:_CTOR_MAX_FUNCTIONS]:
        budget, queue, seen = _CTOR_MAX_INSTRUCTIONS, [(start, 0)], {start}
        while queue and budget > 0:
            function, depth = queue.pop(0)
            used, slots, calls = sweep(function, budget)
            budget -= used
            names |= {slot_names[s] for s in slots if slot_names.get(s)}
            if depth < _CTOR_MAX_DEPTH:
                own = [slot_own[s] for s in sorted(slots) if slot_own.get(s) is not None]
                for target in [*calls, *own]:
                    if target not in seen:
                        seen.add(target)
                        queue.append((target, depth + 1))
    return names


def loads_reader(data: bytes, loads: list[tuple[int, int, int]]) -> Any:
    """(vaddr, size) -> the bytes there, cut at the end of their PT_LOAD file image; None outside every one."""
    def read(vaddr: int, size: int) -> bytes | None:
        for start, offset, filesz in loads:
            if start <= vaddr < start + filesz:
                return data[offset + vaddr - start : offset + min(filesz, vaddr - start + size)]
        return None
    return read


def _code_pyelftools(elf: Any, dynamic: Any, tables: dict[str, Any], raw: _Raw) -> _Code:
    machine = _MACHINES.get(raw.e_machine, ("", ""))[raw.elf_class == 64]
    elf.stream.seek(0)
    data = elf.stream.read()
    loads = [(seg["p_vaddr"], seg["p_offset"], seg["p_filesz"]) for seg in elf.iter_segments()
             if seg["p_type"] == "PT_LOAD"]
    tags = {int(t.entry.d_tag) if isinstance(t.entry.d_tag, int) else _TAG_NUMBERS.get(t.entry.d_tag, -1): t.entry.d_val
            for t in cast(Iterable[Any], dynamic.iter_tags())}
    relocations = []
    for kind, table in tables.items():
        if kind == "RELR":
            continue
        for r in table.iter_relocations():
            symbol = dynamic.get_symbol(r["r_info_sym"]) if r["r_info_sym"] else None
            name = symbol.name if symbol is not None else None
            own = None
            if (symbol is not None and isinstance(symbol["st_shndx"], int) and symbol["st_shndx"] and symbol["st_value"]
                    and symbol["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE")):
                own = int(symbol["st_value"])
            relocations.append((r["r_offset"], r["r_info_type"], r.entry.get("r_addend", 0), name, own))
    bss = [(seg["p_vaddr"] + seg["p_filesz"], seg["p_vaddr"] + seg["p_memsz"]) for seg in elf.iter_segments()
           if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > seg["p_filesz"]]
    return _Code(machine, raw.elf_class // 8, loads_reader(data, loads), tags, relocations, bss)


_TAG_NUMBERS = {"DT_INIT": 12, "DT_INIT_ARRAY": 25, "DT_INIT_ARRAYSZ": 27}


def _code_lief(binary: Any, raw: _Raw, path: str | os.PathLike[str]) -> _Code:
    import lief

    machine = _MACHINES.get(raw.e_machine, ("", ""))[raw.elf_class == 64]
    with open(path, "rb") as f:
        data = f.read()
    loads = [(seg.virtual_address, seg.file_offset, seg.physical_size) for seg in binary.segments
             if seg.type == lief.ELF.Segment.TYPE.LOAD]
    Tag = lief.ELF.DynamicEntry.TAG
    numbers = {Tag.INIT: 12, Tag.INIT_ARRAY: 25, Tag.INIT_ARRAYSZ: 27}
    tags = {numbers[e.tag]: e.value for e in binary.dynamic_entries if e.tag in numbers}
    type_mask = 0xFFFFFFFF if raw.elf_class == 64 else 0xFF
    lief_class = lief.ELF.Header.CLASS.ELF64 if raw.elf_class == 64 else lief.ELF.Header.CLASS.ELF32
    def own(r: Any) -> int | None:
        symbol = r.symbol if r.has_symbol and r.info else None
        if symbol is None or not 0 < symbol.shndx < 0xFF00 or not symbol.value:
            return None
        return int(symbol.value) if int(symbol.type) in (0, 2) else None  # NOTYPE, FUNC

    relocations = [
        (r.address, r.r_info(lief_class) & type_mask, r.addend, r.symbol.name if r.has_symbol and r.info else None,
         own(r))
        for r in binary.relocations
        if r.purpose in (lief.ELF.Relocation.PURPOSE.DYNAMIC, lief.ELF.Relocation.PURPOSE.PLTGOT)
        and r.encoding in (lief.ELF.Relocation.ENCODING.REL, lief.ELF.Relocation.ENCODING.RELA)
    ]
    bss = [(seg.virtual_address + seg.physical_size, seg.virtual_address + seg.virtual_size)
           for seg in binary.segments
           if seg.type == lief.ELF.Segment.TYPE.LOAD and seg.virtual_size > seg.physical_size]
    return _Code(machine, raw.elf_class // 8, loads_reader(data, loads), tags, relocations, bss)
