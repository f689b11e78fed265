"""The generated tables in ``symbols/``: musl exports, loader facts, gcompat, Alpine releases.

The tables ship inside the wheel as ``muslcheck/_symbols``; in a source checkout
they are read from the top-level ``symbols/`` directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from muslcheck.model.errors import InputError, UsageError

# ELF machine names (ElfFacts.machine) with a musl table; loader.json's alpine_arches maps Alpine's names
# (x86, armhf, armv7, ppc64le) onto them. "arm" is musl's hard-float ABI, "ppc64" little-endian.
SUPPORTED_ARCHES = ("x86_64", "aarch64", "i386", "arm", "ppc64", "s390x", "riscv64")
# The arches `muslcheck explain` answers for (glibc-abilists.json covers these two).
EXPLAINED_ARCHES = ("x86_64", "aarch64")


def tables_dir() -> Path:
    packaged = Path(str(resources.files("muslcheck"))) / "_symbols"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "symbols"


def _load(name: str) -> dict[str, Any]:
    path = tables_dir() / name
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read table {path}: {e}") from e
    return data


@dataclass(frozen=True)
class Definition:
    """One symbol as a library defines it: what musl's lookup checks."""

    type: str
    binding: str
    size: int


@dataclass(frozen=True)
class MuslExports:
    version: str
    arch: str
    symbols: dict[str, Definition]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class LoaderRules:
    """Version-dependent behaviour of musl's ldso (symbols/loader.json)."""

    version: str
    reserved_prefixes: tuple[str, ...]
    lfs64: frozenset[str]  # base names remapped from NAME64; empty before 1.2.4
    lfs64_name_max: int  # the longest NAME64 the remap accepts (a fixed buffer in get_lfs64)
    readdir64_r: bool
    relr: bool
    ldso_names: dict[str, str]  # arch -> "ld-musl-x86_64.so.1"
    default_path: str


@dataclass(frozen=True)
class Gcompat:
    version: str
    symbols: frozenset[str]  # on every architecture
    arch_specific: dict[str, frozenset[str]]  # arch -> names only that build has (sysctl on x86_64)
    libc_links: tuple[str, ...]  # sonames gcompat links to libgcompat.so.0
    loader_paths: dict[str, str]  # arch -> glibc PT_INTERP path the stub sits at
    preload: str

    def symbols_for(self, arch: str) -> frozenset[str]:
        return self.symbols | self.arch_specific.get(arch, frozenset())


@dataclass(frozen=True)
class AlpineRelease:
    alpine: str
    musl: str
    source: str


def version_key(v: str) -> tuple[int, ...]:
    """A version compared as numbers: "1.2.10" after "1.2.9"; other characters only separate them."""
    return tuple(int(p) for p in re.findall(r"\d+", v))


EDGE = "edge"


class Catalog:
    """Every table, loaded lazily and once per Catalog."""

    @cached_property
    def alpine_releases(self) -> tuple[AlpineRelease, ...]:
        rows = _load("alpine.json")["releases"]
        releases = [AlpineRelease(r["alpine"], r["musl"], r["source"]) for r in rows]
        return tuple(sorted(releases, key=lambda r: version_key(r.alpine)))

    @cached_property
    def unverified_alpine(self) -> dict[str, str]:
        """Releases whose musl version no cited source confirms yet: release -> why."""
        return {r["alpine"]: r["note"] for r in _load("alpine.json").get("unverified", ())}

    @cached_property
    def _loader(self) -> dict[str, Any]:
        return _load("loader.json")

    @property
    def musl_versions(self) -> tuple[str, ...]:
        return tuple(sorted(self._loader["versions"], key=version_key))

    def loader_rules(self, version: str) -> LoaderRules:
        raw = self._loader
        v = raw["versions"].get(version)
        if v is None:
            raise UsageError(f"unknown musl version {version!r}; known: {', '.join(self.musl_versions)}")
        return LoaderRules(
            version=version,
            reserved_prefixes=tuple(v["reserved_prefixes"]),
            lfs64=frozenset(v["lfs64"] or ()),
            lfs64_name_max=int(v["lfs64_name_max"] or 0),
            readdir64_r=bool(v["readdir64_r"]),
            relr=bool(v["relr"]),
            ldso_names=dict(raw["ldso_names"]),
            default_path=str(raw["default_path"]),
        )

    def musl_exports(self, version: str, arch: str) -> MuslExports:
        if arch not in SUPPORTED_ARCHES:
            raise UsageError(f"no musl table for architecture {arch!r}; known: {', '.join(SUPPORTED_ARCHES)}")
        self.loader_rules(version)  # validates the version
        if not (tables_dir() / f"musl-{version}-{arch}.json").is_file():
            raise UsageError(f"no musl {version} table for {arch} (no Alpine release ships that pair; "
                             f"see symbols/README.md)")
        raw = _load(f"musl-{version}-{arch}.json")
        symbols = {name: Definition(type_, binding, int(size or 0)) for name, type_, binding, size in raw["symbols"]}
        return MuslExports(version, arch, symbols, dict(raw["provenance"]))

    @cached_property
    def gcompat(self) -> Gcompat:
        candidates = sorted(tables_dir().glob("gcompat-*.json"))
        if not candidates:
            raise InputError(f"no gcompat table in {tables_dir()}")
        raw = _load(candidates[-1].name)
        return Gcompat(
            version=str(raw["gcompat"]),
            symbols=frozenset(raw["symbols"]),
            arch_specific={arch: frozenset(names) for arch, names in raw.get("arch_specific", {}).items()},
            libc_links=tuple(raw["libc_links"]),
            loader_paths=dict(raw["loader_paths"]),
            preload=str(raw["preload"]),
        )

    @property
    def glibc_interpreters(self) -> dict[str, str]:
        """arch -> glibc's PT_INTERP on that architecture ("/lib/ld-linux-armhf.so.3")."""
        return dict(self._loader["glibc_interpreters"])

    @property
    def alpine_arches(self) -> dict[str, str]:
        """Alpine's architecture name -> the ELF machine name muslcheck uses ("armv7" -> "arm")."""
        return dict(self._loader["alpine_arches"])

    def newest_alpine(self) -> AlpineRelease:
        return self.alpine_releases[-1]

    def alpine_release(self, alpine: str) -> AlpineRelease:
        """A release by name; ``edge`` (Alpine's rolling branch) is the newest musl that has a table."""
        if alpine == EDGE:
            newest = self.musl_versions[-1]
            return AlpineRelease(EDGE, newest, f"edge: the newest musl muslcheck has tables for ({newest})")
        for release in self.alpine_releases:
            if release.alpine == alpine:
                return release
        known = ", ".join([*(r.alpine for r in self.alpine_releases), EDGE])
        if alpine in self.unverified_alpine:
            raise UsageError(f"Alpine {alpine} is known, but its musl version is not verified (muslcheck versions "
                             f"says why): give --musl X.Y.Z, or one of: {known}")
        raise UsageError(f"unknown Alpine release {alpine!r}; known: {known}")
