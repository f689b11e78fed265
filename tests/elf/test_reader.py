"""What the fast reader reports on sample files, and its API."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import pytest

from muslcheck.elf import ELF_MAGIC, ElfType, Export, is_elf, read_elf, read_elf_file, relocation_name
from tests.elf.conftest import sample

R_X86_64_COPY, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_TPOFF64 = 5, 6, 7, 18


def test_versioned_library(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "libversioned.so"))
    assert (facts.elf_class, facts.little_endian, facts.machine) == (64, True, "x86_64")
    assert facts.elf_type is ElfType.DYN and facts.interpreter is None
    assert facts.soname == "libversioned.so" and facts.has_tls
    exports = {(e.name, e.version): e for e in facts.exports}
    # foo@VERS_1 is hidden (non-default): musl cannot see it, so it is no export.
    assert ("foo", "VERS_2") in exports and ("foo", "VERS_1") not in exports
    assert exports["per_thread", "VERS_1"].type == "TLS"
    assert exports["counter", "VERS_1"] == Export("counter", "OBJECT", "GLOBAL", 4, "VERS_1", False)
    assert "hidden_helper" not in {e.name for e in facts.exports}
    assert [e.name for e in facts.exports] == sorted(e.name for e in facts.exports)


def test_executable_imports(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "uses-nopie"))
    assert facts.elf_type is ElfType.EXEC and facts.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert facts.needed == ("libversioned.so", "libc.so.6")
    uses = {u.name: u for u in facts.uses}
    assert uses["printf"].version == "GLIBC_2.2.5" and uses["printf"].version_library == "libc.so.6"
    assert uses["foo"].version_library == "libversioned.so" and uses["foo"].version == "VERS_2"
    assert uses["maybe_missing"].binding == "WEAK" and not uses["maybe_missing"].defined
    # A copy relocation: the executable defines `counter` and musl copies it from the library.
    assert uses["counter"].defined and uses["counter"].relocations == ((R_X86_64_COPY, 1),)
    assert uses["counter"].version_library is None


def test_pie_runpath(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "uses-pie"))
    assert facts.pie and facts.runpath == "$ORIGIN/lib" and facts.rpath is None


def test_rpath(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "libplain.so"))
    assert facts.rpath == "/opt/x" and facts.runpath is None and not facts.bind_now


def test_bind_now(sample_dir: Path) -> None:
    assert read_elf_file(sample(sample_dir, "libnow.so")).bind_now


def test_relr(sample_dir: Path) -> None:
    assert read_elf_file(sample(sample_dir, "librelr.so")).has_relr
    assert not read_elf_file(sample(sample_dir, "libplain.so")).has_relr


def test_initial_exec_tls(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "libtlsie.so"))
    assert facts.static_tls and facts.has_tls
    assert dict(facts.relocations)[R_X86_64_TPOFF64] == 2
    assert facts.tls_relocations_local == 1  # `own`; `shared_tls` is global and may be interposed
    (shared,) = [u for u in facts.uses if u.name == "shared_tls"]
    assert shared.defined and shared.relocations == ((R_X86_64_TPOFF64, 1),)


def test_ifunc_export(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "libifunc.so"))
    assert {e.name: e.type for e in facts.exports}["answer"] == "GNU_IFUNC"


def test_static_executable(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "hello-static"))
    assert not facts.has_dynamic and len(facts.uses) == 0 and len(facts.exports) == 0 and facts.relocations == ()


def test_musl_executable(sample_dir: Path) -> None:
    facts = read_elf_file(sample(sample_dir, "musl-hello"))
    assert facts.interpreter == "/lib/ld-musl-x86_64.so.1" and facts.needed == ("libc.so",)


def strip_section_headers(data: bytes) -> bytes:
    """What `strip --strip-section-headers` does to the header: the loader never needs them."""
    out = bytearray(data)
    struct.pack_into("<Q", out, 40, 0)  # e_shoff
    struct.pack_into("<HHH", out, 58, 0, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
    return bytes(out)


@pytest.mark.parametrize("name", ["libversioned.so", "uses-nopie", "libtlsie.so", "libsysvhash.so"])
def test_section_headers_are_not_needed(sample_dir: Path, name: str) -> None:
    data = sample(sample_dir, name).read_bytes()
    assert read_elf(strip_section_headers(data)) == read_elf(data)


def test_every_buffer_type(sample_dir: Path) -> None:
    path = sample(sample_dir, "libversioned.so")
    data = path.read_bytes()
    expected = read_elf(data)
    assert read_elf(bytearray(data)) == expected
    assert read_elf(memoryview(data)) == expected
    padded = data + bytes(-len(data) % 4)
    assert read_elf(memoryview(padded).cast("I")) == read_elf(padded)  # any item format
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert read_elf(mapped) == expected
    assert read_elf_file(path) == expected


def test_is_elf() -> None:
    assert ELF_MAGIC == b"\x7fELF"
    assert is_elf(b"\x7fELF\x02\x01") and not is_elf(b"\x7fEL") and not is_elf(b"#!/bin/sh")


@pytest.mark.parametrize(
    ("machine", "rtype", "name"),
    [
        ("x86_64", 7, "R_X86_64_JUMP_SLOT"),
        ("x86_64", 37, "R_X86_64_IRELATIVE"),
        ("x86_64", 18, "R_X86_64_TPOFF64"),
        ("aarch64", 1026, "R_AARCH64_JUMP_SLOT"),
        ("aarch64", 1030, "R_AARCH64_TLS_TPREL64"),
        ("aarch64", 1032, "R_AARCH64_IRELATIVE"),
        ("i386", 37, "R_386_TLS_TPOFF32"),
        ("arm", 160, "R_ARM_IRELATIVE"),
        ("x86_64", 99, "R_X86_64_99"),
        ("EM_1234", 1, "R_EM_1234_1"),
    ],
)
def test_relocation_name(machine: str, rtype: int, name: str) -> None:
    assert relocation_name(machine, rtype) == name
