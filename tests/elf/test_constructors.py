"""What a library's own initialisation calls through its PLT or GOT (muslcheck/elf/constructors/), on libraries
cross-built at test time (zig, or Debian's cross gcc where zig cannot) for every architecture whose code is read,
and what the loader model makes of it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from muslcheck.elf import ElfFacts, read_elf_file
from muslcheck.elf.constructors import MACHINES
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, load
from muslcheck.ldso.tables import Catalog
from muslcheck.ldso.target import Target
from muslcheck.ldso.tree import Resolved
from muslcheck.targets.directory import DirectoryRoot
from tests.support import unavailable

# How each architecture is built: zig's glibc target, or Debian's cross gcc (zig 0.13 lacks s390x libcalls and
# riscv64's start files).
COMPILERS = {
    "x86_64": ("zig", "x86_64-linux-gnu"),
    "aarch64": ("zig", "aarch64-linux-gnu"),
    "i386": ("zig", "x86-linux-gnu"),
    "arm": ("zig", "arm-linux-gnueabihf"),
    "ppc64": ("zig", "powerpc64le-linux-gnu"),
    "s390x": ("gcc", "s390x-linux-gnu-gcc"),
    "riscv64": ("gcc", "riscv64-linux-gnu-gcc"),
}
assert set(MACHINES) <= set(COMPILERS)
READ = sorted(MACHINES)

# gnu_get_libc_version is glibc's alone: musl never defines it, so under RTLD_LAZY its slot stays unrelocated.
SOURCE = """
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
const char *later(void) { return gnu_get_libc_version(); }
int in_helper;
__attribute__((noinline)) static void helper(void) { in_helper = puts("helper"); }
__attribute__((constructor)) static void init(void) { helper(); if (!getenv("X")) abort(); }
"""
# The same name, called by an ordinary function only.
LATER_ONLY = """
#include <gnu/libc-version.h>
const char *later(void) { return gnu_get_libc_version(); }
__attribute__((constructor)) static void init(void) {}
"""
# The constructor calls the glibc-only name itself.
AT_INIT = """
#include <gnu/libc-version.h>
const char *seen;
__attribute__((constructor)) static void init(void) { seen = gnu_get_libc_version(); }
"""


def compiler(arch: str) -> list[str]:
    kind, name = COMPILERS[arch]
    if kind == "gcc":
        if shutil.which(name) is None:
            unavailable(f"{name} is not installed (Debian package gcc-{name.removesuffix('-gcc')})")
        return [name]
    if importlib.util.find_spec("ziglang") is None:
        unavailable("zig (the PyPI package ziglang) is not installed: it cross-builds the libraries")
    return [sys.executable, "-m", "ziglang", "cc", "-target", name]


def build(tmp: Path, arch: str, name: str, source: str, *flags: str) -> Path:
    (tmp / "lib").mkdir(exist_ok=True)
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / "lib" / f"{name}.so"  # -z lazy: zig binds now by default, and a lazy dlopen defers nothing then
    cmd = [*compiler(arch), "-O2", "-fPIC", "-shared", "-fno-stack-protector", "-Wl,-z,lazy",
           f"-Wl,-soname,{name}.so", "-o", str(out), str(src), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        pytest.fail(f"{' '.join(cmd)}:\n{proc.stderr}")
    return out


@pytest.mark.parametrize("arch", READ)
def test_the_calls_an_init_function_and_its_callees_make_through_the_plt(tmp_path: Path, arch: str) -> None:
    facts = read_elf_file(build(tmp_path, arch, "libctor", SOURCE))
    assert facts.machine == arch
    assert {"puts", "getenv", "abort"} <= set(facts.constructor_calls)  # helper() is followed one level
    assert "gnu_get_libc_version" not in facts.constructor_calls  # only later() calls it
    assert list(facts.constructor_calls) == sorted(set(facts.constructor_calls))


@pytest.mark.parametrize("arch", READ)
def test_without_plt_the_got_call_is_found_too(tmp_path: Path, arch: str) -> None:
    facts = read_elf_file(build(tmp_path, arch, "libnoplt", AT_INIT, "-fno-plt"))
    assert "gnu_get_libc_version" in facts.constructor_calls


def test_a_header_only_read_reads_no_code(tmp_path: Path) -> None:
    path = build(tmp_path, "x86_64", "libctor", AT_INIT)
    assert "gnu_get_libc_version" in read_elf_file(path).constructor_calls
    assert read_elf_file(path, symbols=False).constructor_calls == ()


@pytest.mark.parametrize("arch", READ)
def test_a_latent_name_the_constructor_calls_is_fatal_in_a_lazy_dlopen(tmp_path: Path, arch: str) -> None:
    build(tmp_path, arch, "libatinit", AT_INIT)
    build(tmp_path, arch, "liblater", LATER_ONLY)
    catalog = Catalog()
    version = catalog.musl_versions[-1]
    target = Target(arch, catalog.musl_exports(version, arch), catalog.loader_rules(version))
    root = DirectoryRoot(tmp_path)

    def effects(lib: str, context: Context) -> list[tuple[str, Effect, bool]]:
        result = load(root, FactsCache(root), target, f"/lib/{lib}.so", context)
        [obj] = [o for o in result.objects if o.path == f"/lib/{lib}.so"]
        return [(u.name, u.effect, u.called_at_init) for u in obj.unresolved if u.name == "gnu_get_libc_version"]

    assert effects("libatinit", Context.DLOPEN_LAZY) == [("gnu_get_libc_version", Effect.FATAL, True)]
    assert effects("liblater", Context.DLOPEN_LAZY) == [("gnu_get_libc_version", Effect.LATENT, False)]
    # RTLD_NOW and a program's load fail on it anyway: not for the constructor's sake.
    assert effects("libatinit", Context.DLOPEN_NOW) == [("gnu_get_libc_version", Effect.FATAL, False)]


def test_the_report_says_the_constructor_calls_it(tmp_path: Path) -> None:
    from muslcheck import ScanOptions, scan

    build(tmp_path, "x86_64", "libatinit", AT_INIT)
    report = scan(tmp_path / "lib", ScanOptions(context=Context.DLOPEN_LAZY, jobs=1))
    [f] = report.files
    assert [(s.name, s.fatal) for s in f.unresolved_symbols] == [("gnu_get_libc_version", True)]
    assert any("its constructor calls gnu_get_libc_version during dlopen" in note for note in f.notes)



def read_without_constructors(tmp: Path) -> tuple[DirectoryRoot, FactsCache, Resolved, ElfFacts]:
    """libatinit.so built in ``tmp`` and read as a directory's file is: without its constructors' code."""
    build(tmp, "x86_64", "libatinit", AT_INIT)
    root = DirectoryRoot(tmp)
    resolved = root.resolve("/lib/libatinit.so")
    assert isinstance(resolved, Resolved)
    cache = FactsCache(root)
    facts = cache.get(resolved)
    assert isinstance(facts, ElfFacts)
    assert not facts.constructors_read and facts.constructor_calls == ()
    return root, cache, resolved, facts


def test_a_directory_reads_constructor_code_only_for_a_lazy_dlopen(tmp_path: Path) -> None:
    """The loader model reads a directory file's constructor code for the objects a lazy dlopen relocates, once,
    and only for them."""
    root, cache, resolved, _ = read_without_constructors(tmp_path)
    read: list[str] = []
    real = root.read_constructor_calls

    def counted(r: Resolved) -> tuple[str, ...]:
        read.append(r.path)
        return real(r)

    root.read_constructor_calls = counted  # type: ignore[method-assign]
    catalog = Catalog()
    version = catalog.musl_versions[-1]
    target = Target("x86_64", catalog.musl_exports(version, "x86_64"), catalog.loader_rules(version))
    load(root, cache, target, "/lib/libatinit.so", Context.DLOPEN_NOW)
    assert read == []  # RTLD_NOW: the name is fatal anyway, the code is not read
    load(root, cache, target, "/lib/libatinit.so", Context.DLOPEN_LAZY)
    load(root, cache, target, "/lib/libatinit.so", Context.DLOPEN_LAZY)
    assert read == ["/lib/libatinit.so"]  # once: the completed facts replace the cached ones
    completed = cache.get(resolved)
    assert isinstance(completed, ElfFacts) and completed.constructors_read
    assert completed.constructor_calls == read_elf_file(tmp_path / "lib/libatinit.so").constructor_calls
    assert "gnu_get_libc_version" in completed.constructor_calls


def test_a_file_replaced_since_it_was_read_keeps_no_constructor_calls(tmp_path: Path) -> None:
    _, cache, resolved, facts = read_without_constructors(tmp_path)
    other = cache.with_constructor_calls("/lib/libatinit.so", ("another", "inode"), facts)
    assert other.constructors_read and other.constructor_calls == ()  # its latent names stay latent
    same = cache.with_constructor_calls("/lib/libatinit.so", resolved.identity, facts)
    assert "gnu_get_libc_version" in same.constructor_calls
