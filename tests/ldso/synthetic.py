"""Root trees of synthetic ELF files (built by tests/elf/elfbuilder.py) for the loader model: no toolchain needed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, LoadedObject, LoadResult, Target, load
from muslcheck.ldso.tables import Catalog
from muslcheck.targets.directory import DirectoryRoot
from tests.elf.elfbuilder import ElfSpec, Sym

CATALOG = Catalog()
MUSL_LDSO = "/lib/ld-musl-x86_64.so.1"
GLIBC_LDSO = "/lib64/ld-linux-x86-64.so.2"

_MACHINES = {"x86_64": 62, "aarch64": 183}
# The relocation types a Lib asks for, by machine (elf.h).
_TYPES = {
    "x86_64": {"plt": 7, "got": 6, "absolute": 1, "tpoff": 18, "irelative": 37},
    "aarch64": {"plt": 1026, "got": 1025, "absolute": 257, "tpoff": 1030, "irelative": 1032},
}
_STB_WEAK, _STT_TLS, _STT_GNU_IFUNC, _DF_BIND_NOW = 2, 6, 10, 8


@dataclass(frozen=True)
class Lib:
    """A dynamic ELF file, described by what the loader looks at."""

    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    interp: str | None = None
    defines: tuple[str, ...] = ()  # functions it exports
    tls_defines: tuple[str, ...] = ()  # thread-local objects it exports
    ifuncs: tuple[str, ...] = ()  # functions it exports as STT_GNU_IFUNC
    canonical_plt: tuple[str, ...] = ()  # undefined functions with an address: an executable's PLT entry
    plt: tuple[str, ...] = ()  # functions it calls (JUMP_SLOT)
    got: tuple[str, ...] = ()  # symbols whose address it loads (GLOB_DAT)
    absolute: tuple[str, ...] = ()  # symbols it stores the address of in data (R_X86_64_64)
    weak: tuple[str, ...] = ()  # weak undefined references (GLOB_DAT)
    tpoff: tuple[str, ...] = ()  # thread-local objects reached through initial-exec TLS (TPOFF64)
    own_tpoff: int = 0  # initial-exec relocations against its own TLS (symbol 0)
    irelative: int = 0  # IFUNC resolutions (IRELATIVE, symbol 0)
    tls: bool = False  # a PT_TLS segment
    relr: bool = False  # DT_RELR
    bind_now: bool = False  # DF_BIND_NOW
    glibc_version: str | None = None  # every undefined symbol requests this version of libc.so.6
    arch: str = "x86_64"

    def build(self) -> bytes:
        types = _TYPES[self.arch]
        symbols: list[Sym] = []
        index: dict[str, int] = {}

        def symbol(name: str, sym: Sym) -> int:
            if name not in index:
                symbols.append(sym)
                index[name] = len(symbols)  # elfbuilder puts the null symbol first
            return index[name]

        for k, name in enumerate(self.defines):
            symbol(name, Sym(name, shndx=5, value=0x1000 + 16 * k))
        for k, name in enumerate(self.tls_defines):
            symbol(name, Sym(name, type=_STT_TLS, shndx=5, value=8 * k))
        for k, name in enumerate(self.ifuncs):
            symbol(name, Sym(name, type=_STT_GNU_IFUNC, shndx=5, value=0x3000 + 16 * k))
        for k, name in enumerate(self.canonical_plt):
            symbol(name, Sym(name, value=0x2000 + 16 * k))
        requested = 2 if self.glibc_version else 1  # versym: 1 is unversioned, 2 the verneed entry below
        relocations: list[tuple[str, int, int]] = []
        for kind, table in (("plt", "jmprel"), ("got", "rela"), ("absolute", "rela")):
            for name in getattr(self, kind):
                relocations.append((table, types[kind], symbol(name, Sym(name, versym=requested))))
        for name in self.weak:
            relocations.append(("rela", types["got"], symbol(name, Sym(name, bind=_STB_WEAK, type=0))))
        for name in self.tpoff:
            relocations.append(("rela", types["tpoff"], symbol(name, Sym(name, type=_STT_TLS))))
        relocations += [("rela", types["tpoff"], 0)] * self.own_tpoff
        relocations += [("rela", types["irelative"], 0)] * self.irelative
        return ElfSpec(
            machine=_MACHINES[self.arch], interp=self.interp, needed=list(self.needed), soname=self.soname,
            rpath=self.rpath, runpath=self.runpath, symbols=symbols, relocations=relocations, tls=self.tls,
            relr=self.relr, flags=_DF_BIND_NOW if self.bind_now else 0,
            verneeds=[("libc.so.6", [(self.glibc_version, 2)])] if self.glibc_version else [],
        ).build().data


def musl(version: str = "1.2.5", arch: str = "x86_64", **settings: object) -> Target:
    """The target system: musl ``version`` on ``arch``, with Target's other fields as given."""
    return Target(arch, CATALOG.musl_exports(version, arch), CATALOG.loader_rules(version), **settings)  # type: ignore[arg-type]


class Tree:
    """A root filesystem in a host directory; paths are absolute inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def add(self, path: str, lib: Lib) -> None:
        self.write(path, lib.build())

    def write(self, path: str, data: bytes | str) -> None:
        dest = self.host(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.encode() if isinstance(data, str) else data)

    def mkdir(self, path: str) -> None:
        self.host(path).mkdir(parents=True, exist_ok=True)

    def link(self, path: str, target: str) -> None:
        self.host(path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, self.host(path))

    def load(self, path: str, context: Context = Context.EXECUTABLE, target: Target | None = None,
             **options: object) -> LoadResult:
        directory = DirectoryRoot(self.root)  # a fresh one: it caches what it resolved
        return load(directory, FactsCache(directory), target or musl(), path, context, **options)  # type: ignore[arg-type]


def found(result: LoadResult, name: str) -> tuple[str, str] | None:
    """Where the load found the library requested as ``name``, and how."""
    return next(((o.path, o.found_by) for o in result.objects if o.requested_as == name), None)


def obj(result: LoadResult, path: str) -> LoadedObject:
    [match] = [o for o in result.objects if o.path == path]
    return match


def effects(result: LoadResult, path: str) -> dict[str, Effect]:
    """Each unresolved symbol of the object at ``path``, with what it does."""
    return {u.name: u.effect for u in obj(result, path).unresolved}
