"""The ecosystems the application layer knows. Each module of this package that has one ends with its
``register(Detector(...))``: the metadata files it reads, the packages it finds on disk and in archives, and the
host process that loads its native files. Nothing else lists them: ``detectors()`` imports the package's modules
once and returns what they registered.

Detectors are tried in ``order``, and the first claim wins: the owner of a file, the host that loads a file by its
path, the detector that reads an archive.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from muslcheck.apps.model import METADATA_MAX_BYTES
from muslcheck.targets.limits import KeepWhole

if TYPE_CHECKING:
    from muslcheck.apps.model import Host, Identified, Native
    from muslcheck.elf import ElfFacts
    from muslcheck.ldso.tree import RootFS
    from muslcheck.model.options import Context
    from muslcheck.targets.archives import ArchiveMetadata

# A metadata file's name -> whether a path with that name is one the detector reads (a path in the tree,
# or a member name inside an archive). The target readers keep those files whole, and nothing else.
MetadataFiles = Mapping[str, Callable[[str], bool]]
InstalledDetector = Callable[["RootFS", Mapping[str, "ElfFacts"]], "Identified"]
# (the archive and what it holds, its ELF members, the target's architecture) -> None when it is not this one's
ArchiveDetector = Callable[["ArchiveMetadata", Sequence["Native"], str], "Identified | None"]


def anywhere(path: str) -> bool:
    return True


def parent_name(path: str) -> str:
    """The name of the directory that holds ``path`` ("" for a member at the top of an archive)."""
    parts = path.rsplit("/", 2)
    return parts[-2] if len(parts) > 1 else ""


def nowhere(path: str) -> bool:
    return False


@dataclass(frozen=True)
class HostProcess:
    """A process that loads native files by itself, with dlopen. What a file is decides first: a file whose
    symbols are those of this host's modules (``module``) is loaded by it wherever it lives; a name pattern
    (``named``) only says which files are worth reading for that; a package's host and the host's directories
    (``loads``) decide the files that are no host's module (the libraries a module brings in). ``marks``: strings,
    one of which is part of some symbol name of every file ``module`` accepts (its prefixes): a file whose dynamic
    string table holds none of them is not read for ``module`` (None: every candidate is read)."""

    host: Host
    context: Context  # the flags it passes to dlopen
    provides: tuple[str, ...]  # prefixes of the symbol names it defines for the libraries it loads
    loads: Callable[[str], bool]  # by its lowercased path alone: a file that no package claims is loaded by it
    module: Callable[[ElfFacts], bool]  # by its symbols: the file is one of this host's modules (PyInit_*, ...)
    named: Callable[[str], bool] = nowhere  # by its lowercased name: the file may be a module (``*.node``)
    marks: tuple[str, ...] | None = None

    def may_be_module(self, facts: ElfFacts) -> bool:
        """False when ``facts`` cannot satisfy ``module``: its string table holds none of ``marks``."""
        found = facts.dynstr_marks
        return found is None or self.marks is None or not found.isdisjoint(self.marks)


def exports_prefix(facts: ElfFacts, *prefixes: str) -> bool:
    """Whether ``facts`` exports a name that starts with one of ``prefixes`` (its names are sorted)."""
    names = facts.exports.names
    for prefix in prefixes:
        i = bisect.bisect_left(names, prefix)
        if i < len(names) and names[i].startswith(prefix):
            return True
    return False


@dataclass(frozen=True)
class Detector:
    name: str
    order: int  # lower first; the first claim wins (see the module's docstring)
    metadata: MetadataFiles
    installed: InstalledDetector | None = None  # packages in the tree, from the ELF files outside archives
    archive: ArchiveDetector | None = None  # packages in one archive (top-level or nested)
    host: HostProcess | None = None


_REGISTERED: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    """Called once, at the end of the module that defines the detector."""
    if detector.name in _REGISTERED:
        raise ValueError(f"a detector named {detector.name!r} is already registered")
    _REGISTERED[detector.name] = detector
    return detector


@functools.cache
def detectors() -> tuple[Detector, ...]:
    """Every registered detector, in order (this package's modules are imported the first time)."""
    package = importlib.import_module(__package__ or "muslcheck.apps")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    ordered = tuple(sorted(_REGISTERED.values(), key=lambda d: (d.order, d.name)))
    hosts = [d.host.host for d in ordered if d.host is not None]
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"a host is declared by two detectors: {hosts}")
    return ordered


@functools.cache
def module_marks() -> frozenset[str]:
    """Every host's ``marks``: what the target readers look for in each ELF file's string table
    (``ElfFacts.dynstr_marks``), so that ``identify`` reads the symbols only of files that may be a module."""
    return frozenset(m for d in detectors() if d.host is not None and d.host.marks for m in d.host.marks)


@functools.cache
def _hosts() -> dict[Host, HostProcess]:
    return {d.host.host: d.host for d in detectors() if d.host is not None}


def host_process(host: Host) -> HostProcess:
    return _hosts()[host]


def metadata_predicate(registered: Callable[[], Iterable[Detector]]) -> Callable[[str], bool]:
    """Whether a path is a metadata file one of ``registered()`` reads (asked on the first call, once every
    detector has registered): by its name first, one lookup for most paths."""
    by_name: dict[str, tuple[Callable[[str], bool], ...]] | None = None

    def wanted(path: str) -> bool:
        nonlocal by_name
        if by_name is None:
            table: dict[str, list[Callable[[str], bool]]] = {}
            for detector in registered():
                for name, where in detector.metadata.items():
                    table.setdefault(name, []).append(where)
            by_name = {name: tuple(where) for name, where in table.items()}
        conditions = by_name.get(path.rpartition("/")[2])
        if conditions is None:
            return False
        return any(where(path) for where in conditions)

    return wanted


# A small file some registered detector reads, wherever it sits: in a tree, an image layer or an archive.
is_metadata_path = metadata_predicate(detectors)


# What the targets keep whole for the detectors: the metadata files the registered ecosystems declare.
KEEP_METADATA = KeepWhole(is_metadata_path, METADATA_MAX_BYTES)


def imports(facts: ElfFacts, name: str) -> bool:
    """Whether ``facts`` leaves ``name`` undefined, for another object to define (its uses are sorted by name)."""
    uses = facts.uses
    i = bisect.bisect_left(uses.names, name)
    while i < len(uses.names) and uses.names[i] == name:
        if not uses.defined[i]:
            return True
        i += 1
    return False
