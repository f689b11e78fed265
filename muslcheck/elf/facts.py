"""What the ELF reader hands to the loader model: plain frozen data, no parser types.

The fields are exactly the facts musl's dynamic linker (ldso/dynlink.c) acts on.
Every reader (the fast one in ``reader.py``, and the pyelftools and lief
cross-checks in ``tests/elf/crosscheck.py``) must produce identical ``ElfFacts`` for the
same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ElfType(StrEnum):
    EXEC = "EXEC"
    DYN = "DYN"
    REL = "REL"
    CORE = "CORE"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class SymbolUse:
    """A non-local dynamic symbol that the file imports or references.

    One entry per distinct (name, version, binding, defined) among:
    every undefined (``st_shndx == SHN_UNDEF``) GLOBAL/WEAK symbol, whether or
    not a relocation references it; and every defined non-LOCAL symbol that a
    dynamic relocation references (musl looks those up in the global chain
    too, so interposition or an invisible self-definition matters).
    """

    name: str
    version: str | None  # requested (vernaux) or defining (verdaux) version name; None if unversioned
    version_library: str | None  # the library a requested version's verneed entry names (vn_file), e.g. "libc.so.6"
    binding: str  # "GLOBAL" | "WEAK" | "GNU_UNIQUE" | "BIND_<n>"
    type: str  # "NOTYPE" | "OBJECT" | "FUNC" | "SECTION" | "FILE" | "COMMON" | "TLS" | "GNU_IFUNC" | "TYPE_<n>"
    defined: bool  # st_shndx != SHN_UNDEF
    relocations: tuple[tuple[int, int], ...]  # (relocation type number, count), sorted; () if none


@dataclass(frozen=True, slots=True)
class Export:
    """A dynamic symbol definition that musl's lookup may see.

    Included: non-LOCAL symbols with a name, whose versym is not hidden
    (bit 0x8000), and that are either defined, or undefined with a non-zero
    value (an executable's canonical PLT address: ``plt_only``).
    Symbols with value 0 are left out unless their type is TLS (DL:323-325).
    Type and binding are kept raw: the loader model applies OK_TYPES/OK_BINDS.
    """

    name: str
    type: str
    binding: str
    size: int
    version: str | None  # default version name from verdef; None if unversioned (versym 0/1 or no versym)
    plt_only: bool  # st_shndx == SHN_UNDEF and st_value != 0


@dataclass(frozen=True, slots=True)
class ElfFacts:
    elf_class: int  # 32 or 64
    little_endian: bool
    machine: str  # "x86_64", "aarch64", "i386", "arm", "riscv", "ppc64", "s390x", ... or "EM_<n>"
    elf_type: ElfType
    interpreter: str | None  # PT_INTERP contents without the trailing NUL
    has_dynamic: bool  # PT_DYNAMIC present
    has_tls: bool  # PT_TLS present
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED in file order
    rpath: str | None  # DT_RPATH, raw (no $ORIGIN expansion)
    runpath: str | None  # DT_RUNPATH, raw
    bind_now: bool  # DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW
    static_tls: bool  # DF_STATIC_TLS
    pie: bool  # DF_1_PIE
    has_relr: bool  # DT_RELR present
    textrel: bool  # DT_TEXTREL or DF_TEXTREL
    relocations: tuple[tuple[int, int], ...]  # every REL/RELA/JMPREL relocation: (type number, count), sorted
    tls_relocations_local: int  # TPOFF-class relocations against symbol 0 or a LOCAL one: they bind to the file itself
    uses: tuple[SymbolUse, ...]  # sorted by (name, version or "", binding, defined)
    exports: tuple[Export, ...]  # sorted by name, then version
    # False for a header-only read (``read_elf(..., symbols=False)``): relocations, uses and exports are empty.
    symbols_read: bool = True
