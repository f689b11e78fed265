"""The application around the native files: which package each belongs to, which process loads it,
and which of a package's builds its own loader picks on musl. Decided before any file is judged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from muslcheck.apps.flavour import flavour_of
from muslcheck.apps.model import Choice, Flavour, Host, Identified, Native, Package
from muslcheck.apps.registry import HostProcess, detectors, host_process
from muslcheck.elf import ElfFacts, ElfType
from muslcheck.ldso.facts import ElfFile, FactsCache, FactsView
from muslcheck.ldso.tree import RootFS
from muslcheck.model.options import Context
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata


def host_provides(host: Host) -> tuple[str, ...]:
    """Symbol-name prefixes the host process defines for the libraries it loads."""
    return host_process(host).provides


@dataclass(frozen=True)
class Application:
    target_arch: str  # the architecture whose builds count (JNI and prebuilt variants are chosen for it)
    packages: tuple[Package, ...]
    owner: Mapping[str, Package]  # ELF path -> its package
    hosts: Mapping[str, Host]  # ELF path -> the process that dlopens it
    unused: Mapping[str, str]  # ELF path -> why musl never loads it (another OS or arch, a build not picked)
    choices: Mapping[str, tuple[Choice, ...]]  # package key -> what its loader picks, per native library
    selected: Mapping[str, str]  # ELF path -> how its package's loader picks it on musl
    runtimes: Mapping[str, Package]  # ELF path -> the glibc runtime it belongs to (replaced, not judged)
    problems: tuple[Skip, ...]

    def host_of(self, path: str) -> Host | None:
        return self.hosts.get(path)

    def context_of(self, path: str) -> Context | None:
        """How the process that loads ``path`` by itself dlopens it; None when no host loads it."""
        host = self.hosts.get(path)
        return host_process(host).context if host else None

    def provides_of(self, path: str) -> tuple[str, ...]:
        """Symbol-name prefixes that process defines for the libraries it loads (``Py``, ``JNI_``, ``napi_``)."""
        host = self.hosts.get(path)
        return host_provides(host) if host else ()


def identify(
    root: RootFS,
    cache: FactsCache,
    files: Sequence[ElfFile],
    archives: Sequence[ArchiveMetadata],
    arch: str | None,
    include_runtimes: bool = False,
) -> Application:
    """Every registered detector over the tree, then over each archive; the first claim on a file wins."""
    target_arch = arch or _predominant_arch(files)
    on_disk = FactsView((f for f in files if ARCHIVE_SEPARATOR not in f.path), cache)  # symbols read when needed
    found: list[Identified] = [d.installed(root, on_disk) for d in detectors() if d.installed is not None]

    natives_by_archive: dict[str, list[Native]] = {}
    for f in files:
        if ARCHIVE_SEPARATOR in f.path:  # read from the archive in full
            location, member = f.path.rsplit(ARCHIVE_SEPARATOR, 1)
            natives_by_archive.setdefault(location, []).append(
                Native(f.path, member, f.facts.machine, flavour_of(f.facts))
            )
    readers = [d.archive for d in detectors() if d.archive is not None]
    for archive in archives:
        natives = natives_by_archive.get(archive.location, [])
        read = next((r for reader in readers if (r := reader(archive, natives, target_arch)) is not None), None)
        if read is not None:
            found.append(read)

    owner: dict[str, Package] = {}
    unused: dict[str, str] = {}
    selected: dict[str, str] = {}
    choices: dict[str, tuple[Choice, ...]] = {}
    for each in found:
        for path, package in each.owner.items():
            owner.setdefault(path, package)
        for path, reason in each.unused.items():
            unused.setdefault(path, reason)
        for path, how in each.selected.items():
            selected.setdefault(path, how)
        # the target architecture's: an installed package's choices cover every architecture it ships
        choices.update((key, tuple(c for c in picked if c.arch == target_arch)) for key, picked in each.choices.items())

    runtime_files: dict[str, Package] = {}  # every file a glibc runtime claims, even one a package claimed first
    for each in () if include_runtimes else found:
        for path, package in each.owner.items():
            if package.ecosystem is Ecosystem.RUNTIME and package.details.get("libc") != Flavour.MUSL.value:
                runtime_files[path] = package
                unused.setdefault(path, f"part of the runtime {_title(package)}: {_replacement(package)}")

    needed = frozenset(name for f in files for name in f.facts.needed)  # names a module never goes by
    hosts = {f.path: host for f in files if (host := _host(f, owner.get(f.path), cache, needed)) is not None}
    return Application(
        target_arch=target_arch, packages=tuple(p for each in found for p in each.packages), owner=owner,
        hosts=hosts, unused=unused, choices=choices, selected=selected, runtimes=runtime_files,
        problems=tuple(p for each in found for p in each.problems),
    )


def _title(package: Package) -> str:
    return f"{package.name} {package.version}" if package.version else package.name


def _replacement(package: Package) -> str:
    if package.advice:
        return f"replaced by the Alpine variant of the base image ({package.advice[0]})"
    return "replaced by the Alpine variant of the base image"


def _host(f: ElfFile, package: Package | None, cache: FactsCache, needed: frozenset[str]) -> Host | None:
    """The process that loads ``f`` by itself. What the file is comes first: a module of a host (its exports:
    ``PyInit_*``, ``napi_register_module_v1``, ``JNI_OnLoad``...) is that host's wherever it lives, even inside
    a package of another host. Else its package's host, else the host whose directories hold it. A file that
    only looks like a module by its name, and exports none of it, gets no host from the name: that host's
    names would hide its real errors."""
    lower = f.path.lower()
    processes = [d.host for d in detectors() if d.host is not None]
    facts = _symbols(f, package, lower, processes, cache, needed)
    if facts is not None:
        modules = [p.host for p in processes if p.module(facts)]
        if modules:
            return package.host if package is not None and package.host in modules else modules[0]
    if package is not None and package.host is not None:
        return package.host
    return next((p.host for p in processes if p.loads(lower)), None)


def _symbols(f: ElfFile, package: Package | None, lower: str, processes: Sequence[HostProcess],
             cache: FactsCache, needed: frozenset[str]) -> ElfFacts | None:
    """``f``'s facts with its symbols, for a file that may be a module: a shared object without a program
    interpreter that no file of the tree needs by its SONAME (a module is opened by its path, never needed by
    name: node-gyp gives addons a SONAME all the same), or whose name, place or package a host claims. A
    library that something needs by name, in no host's place, is not read here, nor one whose string table holds
    none of the hosts' marks (``HostProcess.marks``, noted when discovery read its headers)."""
    facts = f.facts
    if facts.elf_type is not ElfType.DYN or facts.interpreter is not None:
        return None
    if facts.soname in needed and (package is None or package.host is None) and not any(
            p.named(lower) or p.loads(lower) for p in processes):
        return None
    if not any(p.may_be_module(facts) for p in processes):  # its string table names no host's module
        return None
    complete = cache.complete(f)
    return complete if isinstance(complete, ElfFacts) else None


def _predominant_arch(files: Sequence[ElfFile]) -> str:
    """The architecture of most files outside archives (a JAR carries every architecture; the tree does not)."""
    counts = Counter(f.facts.machine for f in files if ARCHIVE_SEPARATOR not in f.path)
    if not counts:
        counts = Counter(f.facts.machine for f in files)
    return counts.most_common(1)[0][0] if counts else "x86_64"


