"""Which C library an ELF file was built against, decided from the file itself (paths are only hints)."""

from __future__ import annotations

from muslcheck.apps.model import Flavour
from muslcheck.elf import ElfFacts


def flavour_of(facts: ElfFacts) -> Flavour:
    """musl: its loader as interpreter, or libc.musl-*/libc.so needed; glibc: ld-linux, libc.so.6, GLIBC_* versions;
    bionic: Android's linker, or libc.so with bionic's LIBC versions."""
    interp = facts.interpreter or ""
    if interp.startswith("/lib/ld-musl-"):
        return Flavour.MUSL
    if interp.startswith("/system/bin/linker"):
        return Flavour.BIONIC
    if "/ld-linux" in interp or interp.startswith("/lib64/ld64.so"):
        return Flavour.GLIBC
    # musl's libc first: a musl build may still need GLIBC_2.0 of libgcc_s.so.1, whose unwinder has that version
    # (rocksdbjni 8.3.2's librocksdbjni-linux-aarch64-musl.so)
    if any(n.startswith("libc.musl-") for n in facts.needed):
        return Flavour.MUSL
    versions = {v for v in facts.uses.versions if v is not None}
    if any(v.startswith("GLIBC_") for v in versions) or "libc.so.6" in facts.needed:
        return Flavour.GLIBC
    if "libc.so" in facts.needed:
        return Flavour.BIONIC if "LIBC" in versions or "liblog.so" in facts.needed else Flavour.MUSL
    return Flavour.UNKNOWN
