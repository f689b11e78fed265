"""The Java ecosystem: every archive no other ecosystem reads (a JAR, WAR, EAR, or a zip of them), its Maven
packages (``maven``), and the build of each JNI library that its own loader picks on musl (``jni``), all loaded by
the JVM."""

from __future__ import annotations

from collections.abc import Sequence

from muslcheck.apps import jni, maven
from muslcheck.apps.model import Choice, Host, Identified, Native, Package, package_key
from muslcheck.apps.registry import Detector, HostProcess, exports_prefix, register
from muslcheck.elf import ElfFacts
from muslcheck.model.options import Context
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata

# Prefixes of the symbols the JVM process itself offers to JNI libraries: the java launcher dlopens libjvm with
# RTLD_GLOBAL, and libjvm exports the three JNI_ invocation functions, JVM_*, jio_*, AsyncGetCallTrace, the gHotSpot*
# serviceability tables and numa_error/numa_warn (nm -D libjvm.so of OpenJDK 17 and Temurin 25; make/hotspot/symbols).
# Only those three JNI_ names: a JNI_-named symbol of another library (HawtJNI's JNI_ATTACH_THREAD_LOCAL_KEY) is not
# the JVM's.
JVM_PROVIDES: tuple[str, ...] = ("JNI_CreateJavaVM", "JNI_GetCreatedJavaVMs", "JNI_GetDefaultJavaVMInitArgs", "JVM_",
                                 "jio_", "AsyncGetCallTrace", "gHotSpot", "numa_error", "numa_warn")


def identify_archive(archive: ArchiveMetadata, natives: Sequence[Native], target_arch: str) -> Identified:
    """The archive's Maven packages, and for the target architecture what each JNI library's loader loads."""
    declared, problems = maven.identify_archive(archive.location, archive.members)
    packages: list[Package] = []
    owner: dict[str, Package] = {}
    choices: dict[str, tuple[Choice, ...]] = {}
    selected: dict[str, str] = {}
    unused = {n.path: reason for n in natives if (reason := jni.other_system(n)) is not None}
    for package, own in jni.split(declared, natives):
        if package is not None:
            packages.append(package)
            owner.update((n.path, package) for n in own)
        picked = jni.choose(package, own, target_arch)
        # A library with no build for the target architecture in this archive (netty's epoll classifier JAR for
        # aarch_64 beside the x86_64 one, as Spark ships them) loads nothing from it on glibc either: not a failure
        # on musl. Its loader looks up the resource on the whole class path, where another JAR may hold that build.
        elsewhere = {c.library for c in picked if c.selected is None and not c.unused}
        picked = tuple(c for c in picked if c.library not in elsewhere)
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
                if elsewhere and not any(m.arch == target_arch for m in own):
                    unused[n.path] += f" (this archive holds no {target_arch} build)"
    return Identified(tuple(packages), owner, problems, selected, unused, choices)


def _jvm_loads(path: str) -> bool:
    """An archive's member (Java reads every archive another ecosystem does not), or Debian's java.library.path
    (/usr/lib/<triplet>/jni)."""
    return ARCHIVE_SEPARATOR in path or "/jni/" in path


_JNI_EXPORTS = ("JNI_OnLoad", "Java_")


def _jni_library(facts: ElfFacts) -> bool:
    """A JNI library: it exports ``JNI_OnLoad`` (or a static library's ``JNI_OnLoad_<name>``) or a native
    method's ``Java_<class>_<method>``."""
    return exports_prefix(facts, *_JNI_EXPORTS)


register(Detector(
    name="java",
    order=30,  # after python: a wheel is Python's; every other archive is Java's
    metadata=maven.METADATA_FILES,
    archive=identify_archive,
    # System.load: dlopen(RTLD_LAZY)
    host=HostProcess(Host.JVM, Context.DLOPEN_LAZY, JVM_PROVIDES, _jvm_loads, _jni_library, marks=_JNI_EXPORTS),
))
