"""Synthetic ELF files for fleets (tests/elf/elfbuilder.py: no compiler), as layer entries or directories."""

from __future__ import annotations

from pathlib import Path

from tests.elf.elfbuilder import ElfSpec, Sym
from tests.images import imagebuild

R_JUMP_SLOT = 7
MUSL_INTERP = "/lib/ld-musl-x86_64.so.1"


def library(soname: str, *, needed: tuple[str, ...] = ("libc.so",), uses: tuple[str, ...] = ()) -> bytes:
    """A shared library needing ``needed`` and calling ``uses`` through the PLT (each one relocation)."""
    symbols = [Sym(name) for name in uses]
    relocations = [("jmprel", R_JUMP_SLOT, i + 1) for i in range(len(uses))]
    return ElfSpec(soname=soname, needed=list(needed), symbols=symbols, relocations=relocations).build().data


def program(*, needed: tuple[str, ...] = ("libc.so",), uses: tuple[str, ...] = ()) -> bytes:
    """A musl executable."""
    symbols = [Sym(name) for name in uses]
    relocations = [("jmprel", R_JUMP_SLOT, i + 1) for i in range(len(uses))]
    return ElfSpec(interp=MUSL_INTERP, needed=list(needed), symbols=symbols, relocations=relocations).build().data


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def layer(files: dict[str, bytes]) -> list[imagebuild.Entry]:
    return [imagebuild.file(path, data, mode=0o755) for path, data in files.items()]


__all__ = ["imagebuild", "layer", "library", "program", "write_tree"]
