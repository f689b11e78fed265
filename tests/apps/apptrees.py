"""Trees for the detector tests: files put at in-root paths, and the ELF facts a scan hands a detector."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from muslcheck.elf import ElfFacts, is_elf, read_elf_file


def put(tree: Path, path: str, content: bytes | str | Path | dict[str, object]) -> None:
    """A file at ``path`` inside ``tree``: bytes, text, a copy of a host file, or a dict as JSON."""
    target = tree / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        shutil.copyfile(content, target)
    elif isinstance(content, dict):
        target.write_text(json.dumps(content))
    else:
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def elves_of(tree: Path) -> dict[str, ElfFacts]:
    """Every ELF file of the tree by its in-root path, with its facts."""
    return {"/" + str(p.relative_to(tree)): read_elf_file(p)
            for p in sorted(tree.rglob("*")) if p.is_file() and is_elf(p.read_bytes()[:4])}
