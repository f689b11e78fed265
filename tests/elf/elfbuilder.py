"""Build small, valid dynamic ELF images of any class and byte order, for tests.

One PT_LOAD maps the whole file at address 0, so addresses equal file offsets and a
test can corrupt any table by offset. Section headers are optional (the loader does
not need them; pyelftools reads symbol versions through them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

DT = {
    "NULL": 0, "NEEDED": 1, "PLTRELSZ": 2, "HASH": 4, "STRTAB": 5, "SYMTAB": 6, "RELA": 7,
    "RELASZ": 8, "RELAENT": 9, "STRSZ": 10, "SYMENT": 11, "SONAME": 14, "RPATH": 15, "REL": 17,
    "RELSZ": 18, "RELENT": 19, "PLTREL": 20, "TEXTREL": 22, "JMPREL": 23, "BIND_NOW": 24,
    "RUNPATH": 29, "FLAGS": 30, "RELRSZ": 35, "RELR": 36, "RELRENT": 37, "GNU_HASH": 0x6FFFFEF5,
    "VERSYM": 0x6FFFFFF0, "FLAGS_1": 0x6FFFFFFB,
    "VERDEF": 0x6FFFFFFC, "VERDEFNUM": 0x6FFFFFFD, "VERNEED": 0x6FFFFFFE, "VERNEEDNUM": 0x6FFFFFFF,
}  # fmt: skip


@dataclass
class Sym:
    name: str
    bind: int = 1  # STB_GLOBAL
    type: int = 2  # STT_FUNC
    shndx: int = 0  # SHN_UNDEF
    value: int = 0
    size: int = 0
    versym: int = 1


@dataclass
class Image:
    """The built bytes, plus the file offset of each table (for corruption tests)."""

    data: bytes
    offsets: dict[str, int]


@dataclass
class ElfSpec:
    elf_class: int = 64
    little_endian: bool = True
    machine: int = 62  # EM_X86_64
    e_type: int = 3  # ET_DYN
    interp: str | None = None
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    runpath: str | None = None
    rpath: str | None = None
    symbols: list[Sym] = field(default_factory=list)  # index 0 (the null symbol) is added
    # (table, type, symbol index): table is "rela", "rel" or "jmprel" (JMPREL is RELA on 64-bit)
    relocations: list[tuple[str, int, int]] = field(default_factory=list)
    verdefs: list[tuple[int, str]] = field(default_factory=list)  # (index, name); index 1 is the base
    verneeds: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)  # file, [(name, index)]
    hash_style: str = "sysv"  # "sysv", "gnu" or "none"
    flags: int = 0
    flags_1: int = 0
    tls: bool = False  # a PT_TLS header (empty)
    relr: bool = False  # an (empty) DT_RELR table
    section_headers: bool = True

    def build(self) -> Image:
        return _build(self)


def _gnu_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def _build(spec: ElfSpec) -> Image:
    e = "<" if spec.little_endian else ">"
    is64 = spec.elf_class == 64
    word = "Q" if is64 else "I"
    align = 8 if is64 else 4

    strtab = bytearray(b"\0")
    string_offsets: dict[str, int] = {}

    def string(text: str) -> int:
        if text not in string_offsets:
            string_offsets[text] = len(strtab)
            strtab.extend(text.encode() + b"\0")
        return string_offsets[text]

    symbols = [Sym("", bind=0, type=0, versym=0), *spec.symbols]
    sym_names = [string(s.name) if s.name else 0 for s in symbols]
    needed = [string(n) for n in spec.needed]
    soname = string(spec.soname) if spec.soname else None
    runpath = string(spec.runpath) if spec.runpath else None
    rpath = string(spec.rpath) if spec.rpath else None
    verdef_names = [(i, string(n)) for i, n in spec.verdefs]
    verneeds = [(string(f), [(string(n), i) for n, i in auxes]) for f, auxes in spec.verneeds]

    def sym_bytes(s: Sym, name: int) -> bytes:
        info = (s.bind << 4) | s.type
        if is64:
            return struct.pack(e + "IBBHQQ", name, info, 0, s.shndx, s.value, s.size)
        return struct.pack(e + "IIIBBH", name, s.value, s.size, info, 0, s.shndx)

    dynsym = b"".join(sym_bytes(s, n) for s, n in zip(symbols, sym_names, strict=True))
    if spec.hash_style == "sysv":
        n = len(symbols)
        chain = [max(i - 1, 0) for i in range(n)]
        hash_table = struct.pack(e + "II", 1, n) + struct.pack(e + "I", n - 1) + struct.pack(
            e + f"{n}I", *chain
        )
    elif spec.hash_style == "gnu":
        hashes = [_gnu_hash(s.name.encode()) for s in symbols[1:]]
        chain = [h & ~1 for h in hashes]
        if chain:
            chain[-1] |= 1
        bloom = struct.pack(e + word, (1 << (spec.elf_class)) - 1)
        hash_table = (
            struct.pack(e + "IIII", 1, 1, 1, 6)
            + bloom
            + struct.pack(e + "I", 1 if chain else 0)
            + struct.pack(e + f"{len(chain)}I", *chain)
        )
    else:
        hash_table = b""
    versym = struct.pack(e + f"{len(symbols)}H", *(s.versym for s in symbols))

    def verdef_bytes(base: int) -> bytes:
        out = b""
        for k, (index, name) in enumerate(verdef_names):
            next_ = 28 if k + 1 < len(verdef_names) else 0
            out += struct.pack(e + "HHHHIII", 1, 1 if index == 1 else 0, index, 1, 0, 20, next_)
            out += struct.pack(e + "II", name, 0)
        return out

    def verneed_bytes() -> bytes:
        out = b""
        for k, (file, auxes) in enumerate(verneeds):
            size = 16 + 16 * len(auxes)
            next_ = size if k + 1 < len(verneeds) else 0
            out += struct.pack(e + "HHIII", 1, len(auxes), file, 16, next_)
            for j, (name, index) in enumerate(auxes):
                out += struct.pack(e + "IHHII", 0, 0, index, name, 16 if j + 1 < len(auxes) else 0)
        return out

    def reloc_bytes(table: str) -> bytes:
        rela = table == "rela" or (table == "jmprel" and is64)
        out = b""
        for t, r_type, r_sym in spec.relocations:
            if t != table:
                continue
            info = (r_sym << 32 | r_type) if is64 else (r_sym << 8 | r_type)
            out += struct.pack(e + word * (3 if rela else 2), 0x100, info, *((0,) if rela else ()))
        return out

    # Lay out the file.
    ehdr_size, phdr_size = (64, 56) if is64 else (52, 32)
    phnum = 2 + (spec.interp is not None) + spec.tls
    blobs: dict[str, bytes] = {}
    if spec.interp is not None:
        blobs["interp"] = spec.interp.encode() + b"\0"
    blobs["dynsym"] = dynsym
    if hash_table:
        blobs["hash"] = hash_table
    blobs["versym"] = versym
    blobs["verdef"] = b""  # filled after the offset is known (self-relative)
    blobs["verneed"] = verneed_bytes()
    for table in ("rela", "rel", "jmprel"):
        blobs[table] = reloc_bytes(table)
    offsets: dict[str, int] = {}
    position = ehdr_size + phnum * phdr_size
    for name in list(blobs):
        position = -(-position // align) * align
        offsets[name] = position
        if name == "verdef":
            blobs[name] = verdef_bytes(position)
        position += len(blobs[name])

    dyn: list[tuple[int, int]] = [(DT["NEEDED"], n) for n in needed]
    if soname is not None:
        dyn.append((DT["SONAME"], soname))
    if runpath is not None:
        dyn.append((DT["RUNPATH"], runpath))
    if rpath is not None:
        dyn.append((DT["RPATH"], rpath))
    if hash_table:
        dyn.append((DT["HASH" if spec.hash_style == "sysv" else "GNU_HASH"], offsets["hash"]))
    dyn.append((DT["SYMTAB"], offsets["dynsym"]))
    dyn.append((DT["SYMENT"], len(dynsym) // len(symbols)))
    if any(s.versym != 0 for s in symbols) or verdef_names or verneeds:
        dyn.append((DT["VERSYM"], offsets["versym"]))
    if verdef_names:
        dyn += [(DT["VERDEF"], offsets["verdef"]), (DT["VERDEFNUM"], len(verdef_names))]
    if verneeds:
        dyn += [(DT["VERNEED"], offsets["verneed"]), (DT["VERNEEDNUM"], len(verneeds))]
    rela_entry, rel_entry = (24, 16) if is64 else (12, 8)
    if blobs["rela"]:
        dyn += [(DT["RELA"], offsets["rela"]), (DT["RELASZ"], len(blobs["rela"])), (DT["RELAENT"], rela_entry)]
    if blobs["rel"]:
        dyn += [(DT["REL"], offsets["rel"]), (DT["RELSZ"], len(blobs["rel"])), (DT["RELENT"], rel_entry)]
    if blobs["jmprel"]:
        dyn += [
            (DT["JMPREL"], offsets["jmprel"]),
            (DT["PLTRELSZ"], len(blobs["jmprel"])),
            (DT["PLTREL"], DT["RELA"] if is64 else DT["REL"]),
        ]
    if spec.relr:
        dyn += [(DT["RELR"], offsets["dynsym"]), (DT["RELRSZ"], 0), (DT["RELRENT"], 8 if is64 else 4)]
    if spec.flags:
        dyn.append((DT["FLAGS"], spec.flags))
    if spec.flags_1:
        dyn.append((DT["FLAGS_1"], spec.flags_1))
    position = -(-position // align) * align
    offsets["strtab"] = position
    position += len(strtab)
    dyn += [(DT["STRTAB"], offsets["strtab"]), (DT["STRSZ"], len(strtab)), (DT["NULL"], 0)]
    position = -(-position // align) * align
    offsets["dynamic"] = position
    dynamic = b"".join(struct.pack(e + word * 2, t, v) for t, v in dyn)
    position += len(dynamic)

    body = bytearray(position)
    for name, blob in blobs.items():
        body[offsets[name] : offsets[name] + len(blob)] = blob
    body[offsets["strtab"] : offsets["strtab"] + len(strtab)] = strtab
    body[offsets["dynamic"] : offsets["dynamic"] + len(dynamic)] = dynamic

    sections = _section_headers(spec, offsets, blobs, len(strtab), len(dynamic)) if spec.section_headers else []
    shstrtab = bytearray(b"\0")
    shoff = 0
    if sections:
        names = []
        for sec in sections:
            names.append(len(shstrtab))
            shstrtab.extend(sec[0].encode() + b"\0")
        names.append(len(shstrtab))
        shstrtab.extend(b".shstrtab\0")
        shstr_offset = len(body)
        body.extend(shstrtab)
        body.extend(b"\0" * (-len(body) % align))
        shoff = len(body)
        shdr = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
        body.extend(struct.pack(shdr, *([0] * 10)))
        for name_offset, sec in zip(names, sections, strict=False):  # names has one more: .shstrtab
            _, sh_type, sh_flags, off, size, link, info, entsize = sec
            body.extend(struct.pack(shdr, name_offset, sh_type, sh_flags, off, off, size, link, info, align, entsize))
        body.extend(struct.pack(shdr, names[-1], 3, 0, 0, shstr_offset, len(shstrtab), 0, 0, 1, 0))

    file_size = len(body)
    phdrs = b""
    if spec.interp is not None:
        phdrs += _phdr(e, is64, 3, offsets["interp"], len(blobs["interp"]), 1)
    phdrs += _phdr(e, is64, 1, 0, file_size, 0x1000)
    phdrs += _phdr(e, is64, 2, offsets["dynamic"], len(dynamic), align)
    if spec.tls:
        phdrs += _phdr(e, is64, 7, 0, 0, align)
    ident = b"\x7fELF" + bytes([1 + is64, 1 if spec.little_endian else 2, 1, 0]) + bytes(8)
    shnum = len(sections) + 2 if sections else 0
    ehdr = ident + struct.pack(
        e + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"),
        spec.e_type, spec.machine, 1, 0, ehdr_size, shoff, 0, ehdr_size, phdr_size, phnum,
        (64 if is64 else 40) if sections else 0, shnum, shnum - 1 if sections else 0,
    )  # fmt: skip
    body[: len(ehdr) + len(phdrs)] = ehdr + phdrs
    return Image(bytes(body), offsets)


def _phdr(e: str, is64: bool, p_type: int, offset: int, size: int, align: int) -> bytes:
    if is64:
        return struct.pack(e + "IIQQQQQQ", p_type, 4, offset, offset, offset, size, size, align)
    return struct.pack(e + "IIIIIIII", p_type, offset, offset, offset, size, size, 4, align)


def _section_headers(
    spec: ElfSpec, offsets: dict[str, int], blobs: dict[str, bytes], strsz: int, dynsz: int
) -> list[tuple[str, int, int, int, int, int, int, int]]:
    """(name, type, flags, offset, size, link, info, entsize); index 1 is .dynstr, 2 is .dynsym."""
    is64 = spec.elf_class == 64
    sym_size = 24 if is64 else 16
    sections = [
        (".dynstr", 3, 2, offsets["strtab"], strsz, 0, 0, 0),
        (".dynsym", 11, 2, offsets["dynsym"], len(blobs["dynsym"]), 1, 1, sym_size),
        (".dynamic", 6, 3, offsets["dynamic"], dynsz, 1, 0, 16 if is64 else 8),
        (".gnu.version", 0x6FFFFFFF, 2, offsets["versym"], len(blobs["versym"]), 2, 0, 2),
    ]
    if spec.verdefs:
        sections.append((".gnu.version_d", 0x6FFFFFFD, 2, offsets["verdef"], len(blobs["verdef"]), 1,
                         len(spec.verdefs), 0))
    if spec.verneeds:
        sections.append((".gnu.version_r", 0x6FFFFFFE, 2, offsets["verneed"], len(blobs["verneed"]), 1,
                         len(spec.verneeds), 0))
    return sections
