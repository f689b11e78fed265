"""``release_freed_memory``: what the C allocator holds free between live objects goes back to the system, where
the C library can (glibc's ``malloc_trim``), and is a no-op elsewhere."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from muslcheck.judging.judge import _malloc_trim, release_freed_memory

GLIBC_LINUX = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


def _resident_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc_trim is glibc's")
def test_free_pages_between_live_blocks_go_back_to_the_system() -> None:
    # 200 MB of 1,000-byte blocks (above pymalloc's 512: the C allocator's), nine of ten freed: the freed runs
    # are whole pages the allocator keeps for itself, as the judging's freed loads are
    blocks = [bytearray(1000) for _ in range(200_000)]
    kept = blocks[::10]
    del blocks
    before = _resident_kb()
    release_freed_memory()
    after = _resident_kb()
    assert len(kept) == 20_000
    assert before - after > 50_000, (before, after)  # kB: most of the 180 MB freed


def test_without_malloc_trim_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    _malloc_trim.cache_clear()
    monkeypatch.setattr("ctypes.CDLL", lambda name: object())  # a C library without malloc_trim
    try:
        assert _malloc_trim() is None
        release_freed_memory()  # no error: the pages just stay
    finally:
        monkeypatch.undo()
        _malloc_trim.cache_clear()
    assert (_malloc_trim() is not None) == GLIBC_LINUX
