"""ELF facts for the loader model: one fast reader, no parser types leak out.

The pyelftools and lief readers it is held against live with the tests (``tests/elf/crosscheck.py``):
the product never imports them (``import lief`` alone costs about 0.6 s).
"""

from __future__ import annotations

from muslcheck.elf.facts import ElfFacts, ElfType, Export, SymbolUse
from muslcheck.elf.reader import ELF_MAGIC, is_elf, read_elf, read_elf_descriptor, read_elf_file
from muslcheck.elf.relocs import relocation_name

__all__ = [
    "ELF_MAGIC",
    "ElfFacts",
    "ElfType",
    "Export",
    "SymbolUse",
    "is_elf",
    "read_elf",
    "read_elf_descriptor",
    "read_elf_file",
    "relocation_name",
]
