"""What the application layer knows: which package a native file belongs to, and which process loads it.

Detectors (``maven``, ``python``, ``node``, ``runtimes``) read small metadata files and hand back
``Identified`` values; ``components`` turns them, with the judged files, into report components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from muslcheck.model.report import Skip
from muslcheck.targets.limits import KeepWhole

METADATA_MAX_BYTES = 4 << 20  # one metadata file (a RECORD, a package.json, a pom.properties) read whole


class Ecosystem(StrEnum):
    MAVEN = "maven"
    PYPI = "pypi"
    NPM = "npm"
    RUNTIME = "runtime"
    OS_PACKAGE = "os-package"
    FILE = "file"


class Host(StrEnum):
    """The process that loads a package's native files, and so their load context and what it provides."""

    JVM = "jvm"  # System.load: dlopen(RTLD_LAZY)
    PYTHON = "python"  # CPython's extension import: dlopen(RTLD_NOW)
    NODE = "node"  # process.dlopen: dlopen(RTLD_LAZY)


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


@dataclass(frozen=True)
class Identified:
    """One detector's result."""

    packages: tuple[Package, ...] = ()
    owner: Mapping[str, Package] = field(default_factory=dict)  # ELF file path -> the package it belongs to
    problems: tuple[Skip, ...] = ()  # metadata that could not be read: findings, the scan goes on


def is_metadata_path(path: str) -> bool:
    """Small files a detector reads, wherever they sit (an image layer keeps these whole)."""
    parts = path.rsplit("/", 3)
    name = parts[-1]
    directory = parts[-2] if len(parts) > 1 else ""
    if directory.endswith(".dist-info") and name in ("WHEEL", "METADATA", "RECORD"):
        return True
    if name == "package.json" and "node_modules/" in path:
        return True
    if name == "release" or name == "node_version.h":  # a Java runtime's home; Node's headers
        return True
    return name == "pom.properties" or (name == "MANIFEST.MF" and directory == "META-INF")


# What the targets keep whole for the detectors: their metadata files, each up to METADATA_MAX_BYTES.
KEEP_METADATA = KeepWhole(is_metadata_path, METADATA_MAX_BYTES)
