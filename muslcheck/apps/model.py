"""What the application layer knows: which package a native file belongs to, and which process loads it.

Each ecosystem module registers its detector (``registry.register``) and hands back ``Identified`` values;
``application`` merges them, and ``components`` turns them, with the judged files, into report components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from muslcheck.model.report import Ecosystem, Skip

METADATA_MAX_BYTES = 4 << 20  # one metadata file (a RECORD, a package.json, a pom.properties) read whole


class Host(StrEnum):
    """The process that loads a package's native files; each is declared (context, what it provides) with the
    ecosystem whose files it loads (``registry.HostProcess``)."""

    JVM = "jvm"
    PYTHON = "python"
    NODE = "node"


class Flavour(StrEnum):
    """The C library an ELF file was built against, from the file itself."""

    GLIBC = "glibc"
    MUSL = "musl"
    BIONIC = "bionic"  # Android
    UNKNOWN = "unknown"  # no libc evidence (static, or no libc dependency)


@dataclass(frozen=True)
class Package:
    ecosystem: Ecosystem
    name: str
    version: str | None
    location: str  # the JAR, the .dist-info directory, the package's directory, the runtime's home
    host: Host | None = None  # who loads its native files; None: loaded as programs and their libraries
    details: Mapping[str, str] = field(default_factory=dict)  # e.g. {"wheel-tags": "...", "vendor": "..."}
    advice: tuple[str, ...] = ()  # ecosystem fixes, best first ("npm ci on Alpine installs x-linux-x64-musl")
    notes: tuple[str, ...] = ()  # facts the report states about the package


def package_key(package: Package) -> str:
    return f"{package.ecosystem.value}:{package.name}:{package.location}"


@dataclass(frozen=True)
class Native:
    """An ELF file inside an archive, as an archive detector sees it."""

    path: str  # full location: "/app/app.jar!/org/sqlite/native/Linux-Musl/x86_64/libsqlitejdbc.so"
    member: str  # the name inside its innermost archive: "org/sqlite/native/Linux-Musl/x86_64/libsqlitejdbc.so"
    arch: str  # the ELF machine: "x86_64", "aarch64", "arm", "i386", "riscv64", "ppc64", "s390x", ...
    flavour: Flavour  # from the ELF (muslcheck.apps.flavour.flavour_of)


@dataclass(frozen=True)
class Choice:
    """What a library's own loader loads on musl for one architecture."""

    library: str  # "sqlite-jdbc", "netty-transport-native-epoll", or for an unknown library the .so stem
    arch: str
    selected: Native | None  # what the loader loads on musl for this arch; None: it loads nothing (how says why)
    how: str  # one line: how the loader picks on musl
    unused: tuple[Native, ...]  # Linux builds for this arch it never loads on musl (e.g. the glibc one)
    upgrade: str | None  # when no musl build is selected: a fix naming a release that ships one
    # When nothing (or nothing loadable) is selected: what the application then runs instead ("the JDK's own TLS
    # provider"); None when there is no fallback and the feature fails (netty's QUIC, sqlite-jdbc)
    fallback: str | None = None
    lost: str | None = None  # with a fallback, what it costs: "BoringSSL TLS (OpenSSL-only ciphers, speed)"


@dataclass(frozen=True)
class Identified:
    """One detector's result."""

    packages: tuple[Package, ...] = ()
    owner: Mapping[str, Package] = field(default_factory=dict)  # ELF file path -> the package it belongs to
    problems: tuple[Skip, ...] = ()  # metadata that could not be read: findings, the scan goes on
    selected: Mapping[str, str] = field(default_factory=dict)  # ELF path -> how its package's loader picks it
    unused: Mapping[str, str] = field(default_factory=dict)  # ELF path -> why musl never loads it
    choices: Mapping[str, tuple[Choice, ...]] = field(default_factory=dict)  # package_key -> per native library
