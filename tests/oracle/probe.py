"""The dlopen probe (samples/harness/dlopen_probe.c) built for musl on any Alpine architecture, at test time: zig
compiles it against the headers of Debian's ``musl-dev`` for that architecture, and zig's ld.lld links it with
that package's crt1.o/crti.o/crtn.o and the musl ``libc.so`` under test. Nothing built is committed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.oracle.loaders import default_cache
from tests.support import REPO, unavailable
from tests.support import debian_package as fetch_debian_package

PROBE_SOURCE = REPO / "samples" / "harness" / "dlopen_probe.c"
MUSL_DEV_SUITE = "trixie"
MUSL_DEV_VERSION = "1.2.5-3.1~deb13u1"
# Debian architecture -> sha256 of musl-dev_MUSL_DEV_VERSION_<arch>.deb
MUSL_DEV_SHA256 = {
    "amd64": "a3f7d47e452129bb65aae201d6c115abf4d5d3efb136b38b7c6b4fa03ec065e9",
    "arm64": "384ea029e3694baac696d3993d93246f9a4b3741c493697e1ceb7256d8820748",
    "i386": "7c6500215eeb2d7479f238969b8e38daafc23d5c746044764a47c80bfe24415f",
    "armhf": "db485234c01cb9887da0907f3e47d36d101a3299528afd3bbeb46edd551c8264",
    "ppc64el": "99d343084123cc212d06d75bf4e221f8017b0828b21a9d298e67fcc9308189e7",
    "s390x": "8fc6480922d04cbec46684d52bc35854a39a590a105eab2fc0656c94f19afe14",
    "riscv64": "1666931c146dd7fec5902c7ecfbf0c8566528362c922a1cfa4ed91c6d3bc97ce",
}


@dataclass(frozen=True)
class MuslTarget:
    debian: str  # Debian's architecture name
    zig: str  # zig's musl target
    triplet: str  # Debian's multiarch directory of musl-dev
    cflags: tuple[str, ...] = ()


MUSL_TARGETS = {  # ELF machine, as muslcheck names it -> how to build for its musl
    "x86_64": MuslTarget("amd64", "x86_64-linux-musl", "x86_64-linux-musl"),
    "aarch64": MuslTarget("arm64", "aarch64-linux-musl", "aarch64-linux-musl"),
    "i386": MuslTarget("i386", "x86-linux-musl", "i386-linux-musl"),
    "arm": MuslTarget("armhf", "arm-linux-musleabihf", "arm-linux-musleabihf"),
    "ppc64": MuslTarget("ppc64el", "powerpc64le-linux-musl", "powerpc64le-linux-musl"),
    "s390x": MuslTarget("s390x", "s390x-linux-musl", "s390x-linux-musl", ("-mcpu=z10",)),  # zig's "generic" fails
    "riscv64": MuslTarget("riscv64", "riscv64-linux-musl", "riscv64-linux-musl"),
}


def zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        unavailable("zig (the PyPI package ziglang) is not installed: it builds the dlopen probe")
    return [sys.executable, "-m", "ziglang"]


def musl_dev(arch: str) -> Path:
    """The extracted pinned musl-dev of ``arch``'s Debian architecture (its ``usr``)."""
    debian = MUSL_TARGETS[arch].debian
    return debian_package("musl-dev", MUSL_DEV_VERSION, debian, MUSL_DEV_SHA256[debian]) / "usr"


def _run(cmd: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        pytest.fail(f"{' '.join(cmd)}:\n{proc.stderr}")


def compile_objects(arch: str, sources: Sequence[Path], out: Path, *, shared: bool = False) -> list[Path]:
    """Each source compiled for ``arch``'s musl (Debian's musl-dev headers) into ``out``."""
    target, usr = MUSL_TARGETS[arch], musl_dev(arch)
    objects = []
    for source in sources:
        obj = out / f"{source.stem}-{arch}.o"
        _run([*zig(), "cc", "-target", target.zig, *target.cflags, "-O1", "-fno-stack-protector", "-w",
              *(["-fPIC"] if shared else []), "-nostdinc", "-isystem", str(usr / "include" / target.triplet),
              "-c", str(source), "-o", str(obj)], out)
        objects.append(obj)
    return objects


def build_probe(arch: str, libc: Path, out: Path, extra_sources: Sequence[Path] = (), *,
                export_dynamic: bool = False) -> Path:
    """The dlopen probe for ``arch``, dynamically linked to ``libc`` (a musl libc.so of that arch); with
    ``export_dynamic`` its own definitions (``extra_sources``: a host's exports) are visible to what it dlopens."""
    target, usr = MUSL_TARGETS[arch], musl_dev(arch)
    out.mkdir(parents=True, exist_ok=True)
    libdir = out / f"libc-{arch}"
    libdir.mkdir(exist_ok=True)
    shutil.copyfile(libc, libdir / "libc.so")
    objects = compile_objects(arch, [PROBE_SOURCE, *extra_sources], out)
    crt = usr / "lib" / target.triplet
    name = "host-probe" if export_dynamic else "probe"
    probe = out / f"{name}-{arch}"
    _run([*zig(), "ld.lld", "-o", str(probe), "-dynamic-linker", "/lib/ld-musl.so.1",
          *(["--export-dynamic"] if export_dynamic else []), str(crt / "crt1.o"), str(crt / "crti.o"),
          *map(str, objects), "-L", str(libdir), "-lc", str(crt / "crtn.o")], out)
    return probe


def build_stub_library(arch: str, soname: str, out: Path) -> Path:
    """An empty shared library named ``soname`` for ``arch``: it stands for glibc's ld.so, which a glibc library
    names in DT_NEEDED, so that the load goes on to its symbols (they are then musl's or missing)."""
    out.mkdir(parents=True, exist_ok=True)
    source = out / "ldso_stub.c"
    source.write_text("int muslcheck_ldso_stub;\n")
    [obj] = compile_objects(arch, [source], out, shared=True)
    stub = out / soname
    # GNU hash only: on s390x musl reads DT_HASH as 64-bit words (Elf_Symndx), as binutils writes it, while lld
    # writes 32-bit ones; muslcheck's reader then finds an impossible symbol count and rejects the file, which
    # musl (that counts symbols only for dladdr) loads. Real libraries carry DT_GNU_HASH.
    _run([*zig(), "ld.lld", "-shared", "--hash-style=gnu", "-soname", soname, "-o", str(stub), str(obj)], out)
    return stub


def debian_library_tree(lib: Path, arch: str, debian_arch: str, packages: Mapping[str, tuple[str, str]],
                        pattern: str, glibc_ldso: str) -> None:
    """``lib`` filled with the shared libraries (their SONAME links too) that ``pattern`` matches in each pinned
    Debian package (name -> (version, sha256)) for ``debian_arch``, and an empty stand-in for glibc's ld.so."""
    lib.mkdir(parents=True, exist_ok=True)
    for package, (version, sha256) in packages.items():
        root = debian_package(package, version, debian_arch, sha256)
        for found in sorted(root.glob(pattern)):
            target = lib / found.name
            if found.is_symlink():
                target.symlink_to(found.readlink())
            else:
                shutil.copyfile(found, target)
    build_stub_library(arch, glibc_ldso, lib)
    for leftover in lib.glob("*.[co]"):
        leftover.unlink()


def debian_package(package: str, version: str, debian_arch: str, sha256: str, suite: str = MUSL_DEV_SUITE) -> Path:
    """The extracted root of a pinned Debian package, in the loaders' cache."""
    return fetch_debian_package(package, version, debian_arch, sha256, suite, default_cache())
