"""What a target reader keeps, and the budgets that bound it: shared by the directory, archive and image readers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_ELF_BYTES = 1 << 30  # larger ELF files and members are skipped with a finding, never read
MAX_KEPT_BYTES = 256 << 20  # every small file read whole in one scan, together: past this, more are not kept


@dataclass(frozen=True)
class KeepWhole:
    """Small non-ELF files a target reads whole for the stages above it (the metadata files a detector reads):
    which paths, and the largest such file. The readers never decide this themselves."""

    wanted: Callable[[str], bool]
    max_bytes: int

    def __call__(self, path: str, size: int) -> bool:
        return size <= self.max_bytes and self.wanted(path)


def _nothing(path: str) -> bool:
    return False


KEEP_NOTHING = KeepWhole(_nothing, 0)


class Budget:
    """Bytes that may still be taken; a take that would go past the bound is refused whole."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True
