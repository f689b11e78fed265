"""The application around the native files: which package each belongs to, which process loads it,
and which of a package's builds its own loader picks on musl. Decided before any file is judged."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from muslcheck.apps import jni, maven, node, python, runtimes
from muslcheck.apps.flavour import flavour_of
from muslcheck.apps.jni import Choice, Native
from muslcheck.apps.model import Flavour, Host, Identified, Package
from muslcheck.ldso.facts import ElfFile, FactsCache, FactsView
from muslcheck.ldso.tree import RootFS
from muslcheck.model.options import Context
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata

_HOST_CONTEXT = {Host.JVM: Context.DLOPEN_LAZY, Host.PYTHON: Context.DLOPEN_NOW, Host.NODE: Context.DLOPEN_LAZY}
_JAVA_ARCHIVES = (".jar", ".war", ".ear")
_OTHER_SYSTEMS = frozenset({"freebsd", "openbsd", "netbsd", "dragonflybsd", "solaris", "sunos", "aix", "darwin",
                            "macos", "osx", "mac", "windows", "win32", "win64"})


_HOST_PROVIDES = {Host.JVM: jni.JVM_PROVIDES, Host.PYTHON: python.CPYTHON_PROVIDES, Host.NODE: node.NODE_PROVIDES}


def host_provides(host: Host) -> tuple[str, ...]:
    """Symbol-name prefixes the host process defines for the libraries it loads."""
    return _HOST_PROVIDES[host]


def package_key(package: Package) -> str:
    return f"{package.ecosystem.value}:{package.name}:{package.location}"


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
        return _HOST_CONTEXT[host] if host else None

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
    target_arch = arch or _predominant_arch(files)
    owner: dict[str, Package] = {}
    packages: list[Package] = []
    problems: list[Skip] = []
    unused: dict[str, str] = {}
    selected: dict[str, str] = {}
    choices: dict[str, tuple[Choice, ...]] = {}

    def take(found: Identified) -> None:
        packages.extend(found.packages)
        owner.update(found.owner)
        problems.extend(found.problems)

    on_disk = FactsView((f for f in files if ARCHIVE_SEPARATOR not in f.path), cache)  # symbols read when needed
    runtime_found = runtimes.identify(root, on_disk)
    take(runtime_found)
    take(python.identify(root, on_disk))
    node_found = node.identify(root, on_disk)
    take(node_found)
    selected.update(node_found.selected)
    unused.update(node_found.unused)

    natives_by_archive: dict[str, list[Native]] = {}
    for f in files:
        if ARCHIVE_SEPARATOR in f.path:  # read from the archive in full
            location, member = f.path.rsplit(ARCHIVE_SEPARATOR, 1)
            natives_by_archive.setdefault(location, []).append(
                Native(f.path, member, f.facts.machine, flavour_of(f.facts))
            )
    for archive in archives:
        natives = natives_by_archive.get(archive.location, [])
        if archive.location.lower().endswith(".whl"):
            wheel, wheel_problems = python.identify_wheel(archive.location, archive.members)
            problems.extend(wheel_problems)
            if wheel is not None:
                packages.append(wheel)
                owner.update((n.path, wheel) for n in natives)
            continue
        declared, pom_problems = maven.identify_archive(archive.location, archive.members)
        problems.extend(pom_problems)
        if not archive.location.lower().endswith(_JAVA_ARCHIVES) and not declared:
            continue
        for n in natives:
            if (reason := _other_system(n)) is not None:
                unused[n.path] = reason
        for package, own in jni.split(declared, natives):
            if package is not None:
                packages.append(package)
                owner.update((n.path, package) for n in own)
            picked = jni.choose(package, own, target_arch)
            if package is not None:
                choices[package_key(package)] = picked
            for choice in picked:
                if choice.selected is not None:
                    selected[choice.selected.path] = choice.how
                for n in choice.unused:
                    unused[n.path] = f"not loaded on musl: {choice.how}"
            for n in own:
                if n.arch != target_arch and n.path not in unused:
                    unused[n.path] = f"built for {n.arch}: loaded only on {n.arch}; the target is {target_arch}"

    runtime_files: dict[str, Package] = {}
    if not include_runtimes:
        for path, package in runtime_found.owner.items():
            if package.details.get("libc") != Flavour.MUSL.value:
                runtime_files[path] = package
                unused.setdefault(path, f"part of the runtime {_title(package)}: {_replacement(package)}")

    hosts = {path: host for path in (f.path for f in files) if (host := _host(path, owner.get(path))) is not None}
    return Application(
        target_arch=target_arch, packages=tuple(packages), owner=owner, hosts=hosts, unused=unused,
        choices=choices, selected=selected, runtimes=runtime_files, problems=tuple(problems),
    )


def _title(package: Package) -> str:
    return f"{package.name} {package.version}" if package.version else package.name


def _replacement(package: Package) -> str:
    if package.advice:
        return f"replaced by the Alpine variant of the base image ({package.advice[0]})"
    return "replaced by the Alpine variant of the base image"


def _host(path: str, package: Package | None) -> Host | None:
    if package is not None and package.host is not None:
        return package.host
    lower = path.lower()
    if lower.endswith(".node"):
        return Host.NODE
    if ARCHIVE_SEPARATOR in lower:
        location = lower.rsplit(ARCHIVE_SEPARATOR, 1)[0]
        if location.endswith(".whl"):
            return Host.PYTHON
        return Host.JVM if location.endswith(_JAVA_ARCHIVES) else None
    if "/site-packages/" in lower or "/dist-packages/" in lower:
        return Host.PYTHON
    if "/jni/" in lower:  # Debian's java.library.path: /usr/lib/<triplet>/jni
        return Host.JVM
    return None


def _other_system(native: Native) -> str | None:
    """Why a native file in an archive is not a Linux build: Android's libc, or its path names another OS."""
    if native.flavour is Flavour.BIONIC:
        return "built for Android (bionic libc): not a Linux library"
    if not jni.is_other_system(native):
        return None
    names = [t for t in re.split(r"[^a-z0-9]+", native.member.lower()) if t in _OTHER_SYSTEMS]
    return f"built for {names[0] if names else 'another OS'} (by its path in the archive): not a Linux library"


def _predominant_arch(files: Sequence[ElfFile]) -> str:
    """The architecture of most files outside archives (a JAR carries every architecture; the tree does not)."""
    counts = Counter(f.facts.machine for f in files if ARCHIVE_SEPARATOR not in f.path)
    if not counts:
        counts = Counter(f.facts.machine for f in files)
    return counts.most_common(1)[0][0] if counts else "x86_64"


