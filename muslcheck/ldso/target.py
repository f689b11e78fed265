"""The musl system a file is loaded into: its tables, environment, and the files an Alpine base provides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from muslcheck.ldso.dso import Definition
from muslcheck.ldso.lru import Bounded
from muslcheck.ldso.tables import Gcompat, LoaderRules, MuslExports
from muslcheck.ldso.tree import join, parent


class Provided(StrEnum):
    """A file an Alpine base provides at a fixed path, whatever the scanned tree holds."""

    LIBC = "libc"  # musl's loader, which is its libc
    GCOMPAT = "gcompat"  # libgcompat.so.0 and its libc.so.6-style links
    STUB = "stub"  # gcompat's loader stub at glibc's PT_INTERP path


# By id of the musl table; bounded, as each scan reads its tables anew (a fleet of 2,000 targets kept 2,000: 1.4 GB).
_LIBC_EXPORTS: Bounded[int, tuple[MuslExports, dict[str, Definition]]] = Bounded(16)


@dataclass(frozen=True)
class Target:
    """The musl system the file is loaded into."""

    arch: str
    musl: MuslExports
    rules: LoaderRules
    gcompat: Gcompat | None = None  # installed on the target: its files exist, its stub serves glibc programs
    library_path: str | None = None  # LD_LIBRARY_PATH
    preload: tuple[str, ...] = ()  # LD_PRELOAD
    replaced: Mapping[str, str] = field(default_factory=dict)  # path -> the OS package that Alpine's replaces

    @property
    def ldso_path(self) -> str:
        return "/lib/" + self.rules.ldso_names[self.arch]

    @cached_property
    def libc_exports(self) -> dict[str, Definition]:
        """One dict per musl table, shared by the targets built on it (so relocation results are too)."""
        entry = _LIBC_EXPORTS.get(id(self.musl))  # the entry keeps the table alive, so the id is not reused
        if entry is None or entry[0] is not self.musl:
            exports = {n: (d.type, d.binding, False) for n, d in self.musl.symbols.items()}
            entry = _LIBC_EXPORTS.put(id(self.musl), (self.musl, exports))
        return entry[1]

    @cached_property
    def virtual_files(self) -> dict[str, Provided]:
        """What an Alpine base provides at fixed paths, besides the scanned tree."""
        files = {self.ldso_path: Provided.LIBC}
        files["/lib/libc.musl-" + self.ldso_path.removeprefix("/lib/ld-musl-")] = Provided.LIBC
        gc = self.gcompat
        if gc is not None:
            files[gc.preload] = Provided.GCOMPAT
            for link in gc.libc_links:
                files[join(parent(gc.preload), link)] = Provided.GCOMPAT
            stub = gc.loader_paths.get(self.arch)
            if stub:
                files["/lib/" + stub.rsplit("/", 1)[-1]] = Provided.STUB
        return files

    @cached_property
    def gcompat_exports(self) -> dict[str, Definition]:
        return {n: ("FUNC", "GLOBAL", False) for n in self.gcompat.symbols_for(self.arch)} if self.gcompat else {}


def gcompat_stub_name(target: Target, interpreter: str | None) -> str | None:
    """The name musl runs under when gcompat's stub is the program's interpreter."""
    if target.gcompat is None or interpreter is None:
        return None
    stub = target.gcompat.loader_paths.get(target.arch)
    if stub is None:
        return None
    name = stub.rsplit("/", 1)[-1]
    return name if interpreter in (stub, "/lib/" + name, "/lib64/" + name) else None
