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
from collections.abc import Iterable, Mapping
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
    return _assemble(_raw_lief(binary))


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
