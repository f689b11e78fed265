"""What the ELF reader hands to the loader model: plain frozen data, no parser types.

The fields are exactly the facts musl's dynamic linker (ldso/dynlink.c) acts on.
Every reader (the fast one in ``reader.py``, and the pyelftools and lief cross-checks in
``tests/elf/crosscheck.py``) must produce identical ``ElfFacts`` for the same input.

A file's dynamic symbols are columns (``Uses``, ``Exports``): one tuple or byte string per field, no object per
symbol. ``SymbolUse`` and ``Export`` are views of one row, made on demand (``facts.uses[i]``, iteration) for
tests, ``explain`` and messages; the loader and the judging read the columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Final, overload


class ElfType(StrEnum):
    EXEC = "EXEC"
    DYN = "DYN"
    REL = "REL"
    CORE = "CORE"
    OTHER = "OTHER"


# st_info's halves by name: binding (st_info >> 4) and type (st_info & 0xf).
BINDING_NAMES: Final = tuple({1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}.get(n, f"BIND_{n}") for n in range(16))
TYPE_NAMES: Final = tuple(
    ("NOTYPE", "OBJECT", "FUNC", "SECTION", "FILE", "COMMON", "TLS")[n] if n < 7 else {10: "GNU_IFUNC"}.get(
        n, f"TYPE_{n}")
    for n in range(16)
)
_BINDING_CODES: Final = {name: n for n, name in enumerate(BINDING_NAMES)}
_TYPE_CODES: Final = {name: n for n, name in enumerate(TYPE_NAMES)}
STB_WEAK: Final = 2

Relocations = tuple[tuple[int, int], ...]  # ((relocation type, count), ...), sorted by type
# What musl's find_sym2 checks of a definition (DL:327-335): (type, binding, plt_only).
Definition = tuple[str, str, bool]


def st_info(binding: str, sym_type: str) -> int:
    """The st_info byte of a binding and a type given by name (``BINDING_NAMES``, ``TYPE_NAMES``)."""
    return _BINDING_CODES[binding] << 4 | _TYPE_CODES[sym_type]


@dataclass(frozen=True, slots=True)
class SymbolUse:
    """A non-local dynamic symbol that the file imports or references (a view of one row of ``Uses``).

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
    relocations: Relocations  # (relocation type number, count), sorted; () if none


@dataclass(frozen=True, slots=True)
class Export:
    """A dynamic symbol definition that musl's lookup may see (a view of one row of ``Exports``).

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


class _Columns:
    """Frozen parallel columns with a private slot for what is derived from them (not a field: it is neither
    compared, pickled nor encoded)."""

    __slots__ = ()
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def _check_lengths(self) -> None:
        rows = len(self.names)
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name.endswith("_table"):
                continue
            if len(value) != rows:
                raise ValueError(f"{type(self).__name__}.{f.name} has {len(value)} rows, names has {rows}")


@dataclass(frozen=True, eq=True)
class Uses(_Columns, Sequence[SymbolUse]):
    """A file's ``SymbolUse`` rows as columns, sorted by (name, version or "", binding, defined).

    ``infos`` holds each row's st_info byte (binding << 4 | type); ``relocations`` each row's index into
    ``relocation_table``, the file's distinct relocation shapes, sorted (so equal uses give equal columns)."""

    __slots__ = (
        "_name_set",
        "defined",
        "infos",
        "names",
        "relocation_table",
        "relocations",
        "version_libraries",
        "versions",
    )
    names: tuple[str, ...]
    versions: tuple[str | None, ...]
    version_libraries: tuple[str | None, ...]
    infos: bytes
    defined: bytes  # 1: st_shndx != SHN_UNDEF
    relocations: tuple[int, ...]
    relocation_table: tuple[Relocations, ...]

    def __post_init__(self) -> None:
        self._check_lengths()

    @overload
    def __getitem__(self, i: int) -> SymbolUse: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[SymbolUse, ...]: ...

    def __getitem__(self, i: int | slice) -> SymbolUse | tuple[SymbolUse, ...]:
        if isinstance(i, slice):
            return tuple(map(self.__getitem__, range(len(self))[i]))
        info = self.infos[i]
        return SymbolUse(self.names[i], self.versions[i], self.version_libraries[i], BINDING_NAMES[info >> 4],
                         TYPE_NAMES[info & 0xF], bool(self.defined[i]), self.relocation_table[self.relocations[i]])

    def __iter__(self) -> Iterator[SymbolUse]:
        return map(self.__getitem__, range(len(self)))

    def weak_undefined(self, i: int) -> bool:
        """Row ``i`` is an undefined WEAK reference: unbound, musl binds it to 0."""
        return not self.defined[i] and self.infos[i] >> 4 == STB_WEAK

    def relocations_of(self, i: int) -> Relocations:
        return self.relocation_table[self.relocations[i]]

    @property
    def name_set(self) -> frozenset[str]:
        """The names of all rows, made once."""
        found: frozenset[str] | None = getattr(self, "_name_set", None)
        if found is None:
            found = frozenset(self.names)
            object.__setattr__(self, "_name_set", found)
        return found

    @classmethod
    def from_rows(cls, rows: Iterable[SymbolUse]) -> Uses:
        """Columns of ``rows``, which must already be in the contract's order."""
        rows = tuple(rows)
        table = sorted({u.relocations for u in rows})
        index = {shape: k for k, shape in enumerate(table)}
        return cls(
            names=tuple(u.name for u in rows), versions=tuple(u.version for u in rows),
            version_libraries=tuple(u.version_library for u in rows),
            infos=bytes(st_info(u.binding, u.type) for u in rows), defined=bytes(u.defined for u in rows),
            relocations=tuple(index[u.relocations] for u in rows), relocation_table=tuple(table),
        )


@dataclass(frozen=True, eq=True)
class Exports(_Columns, Sequence[Export]):
    """A file's ``Export`` rows as columns, sorted by name, then version. ``definitions`` maps each name to its
    first row's definition, what the loader's lookup reads."""

    __slots__ = ("_definitions", "infos", "names", "plt_only", "sizes", "versions")
    names: tuple[str, ...]
    versions: tuple[str | None, ...]
    infos: bytes
    sizes: tuple[int, ...]
    plt_only: bytes  # 1: st_shndx == SHN_UNDEF and st_value != 0

    def __post_init__(self) -> None:
        self._check_lengths()

    @overload
    def __getitem__(self, i: int) -> Export: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Export, ...]: ...

    def __getitem__(self, i: int | slice) -> Export | tuple[Export, ...]:
        if isinstance(i, slice):
            return tuple(map(self.__getitem__, range(len(self))[i]))
        info = self.infos[i]
        return Export(self.names[i], TYPE_NAMES[info & 0xF], BINDING_NAMES[info >> 4], self.sizes[i],
                      self.versions[i], bool(self.plt_only[i]))

    def __iter__(self) -> Iterator[Export]:
        return map(self.__getitem__, range(len(self)))

    def names_of_type(self, sym_type: str) -> tuple[str, ...]:
        """The names of the rows of type ``sym_type`` ("GNU_IFUNC"), in row order."""
        code = _TYPE_CODES[sym_type]
        return tuple(name for name, info in zip(self.names, self.infos, strict=True) if info & 0xF == code)

    @property
    def definitions(self) -> Mapping[str, Definition]:
        """Each name's first definition: (type, binding, plt_only). Made once, from the columns; the definition
        tuples are shared by every file."""
        found: dict[str, Definition] | None = getattr(self, "_definitions", None)
        if found is None:
            kinds = map(_DEFINITIONS.__getitem__, self.infos)
            if any(self.plt_only):
                kinds = map(_definition, self.infos, self.plt_only)
            # Assigned last to first: a name's first row is the one that stays.
            found = dict(zip(reversed(self.names), reversed(list(kinds)), strict=True))
            object.__setattr__(self, "_definitions", found)
        return found

    @classmethod
    def from_rows(cls, rows: Iterable[Export]) -> Exports:
        """Columns of ``rows``, which must already be in the contract's order."""
        rows = tuple(rows)
        return cls(
            names=tuple(e.name for e in rows), versions=tuple(e.version for e in rows),
            infos=bytes(st_info(e.binding, e.type) for e in rows), sizes=tuple(e.size for e in rows),
            plt_only=bytes(e.plt_only for e in rows),
        )


_DEFINITIONS: Final = tuple((TYPE_NAMES[info & 0xF], BINDING_NAMES[info >> 4], False) for info in range(256))
_PLT_DEFINITIONS: Final = tuple((TYPE_NAMES[info & 0xF], BINDING_NAMES[info >> 4], True) for info in range(256))


def _definition(info: int, plt_only: int) -> Definition:
    return (_PLT_DEFINITIONS if plt_only else _DEFINITIONS)[info]


NO_USES: Final = Uses((), (), (), b"", b"", (), ())
NO_EXPORTS: Final = Exports((), (), b"", (), b"")


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
    relocations: Relocations  # every REL/RELA/JMPREL relocation: (type number, count), sorted
    tls_relocations_local: int  # TPOFF-class relocations against symbol 0 or a LOCAL one: they bind to the file itself
    uses: Uses  # sorted by (name, version or "", binding, defined)
    exports: Exports  # sorted by name, then version
    # False for a header-only read (``read_elf(..., symbols=False)``): relocations, uses and exports are empty.
    symbols_read: bool = True
    # What DT_INIT and DT_INIT_ARRAY call through a PLT or GOT slot (elf/constructors/), sorted; () if not read.
    constructor_calls: tuple[str, ...] = ()
    # False: not read yet. Only a lazy dlopen needs them, so a directory's files are read without them and the
    # loader model reads them for the objects a lazy dlopen relocates (``FactsCache.with_constructor_calls``).
    constructors_read: bool = True
    # Which of the strings asked for (``read_elf(..., marks=...)``) occur anywhere in the dynamic string table (every
    # name a symbol has is there, a prefix of it too): a cheap test before the symbols are read. None: not asked.
    dynstr_marks: frozenset[str] | None = None

    def headers(self) -> ElfFacts:
        """These facts as a header-only read gives them: no relocation, use or export (``symbols_read`` False)."""
        return replace(self, relocations=(), tls_relocations_local=0, uses=NO_USES, exports=NO_EXPORTS,
                                   symbols_read=False)
