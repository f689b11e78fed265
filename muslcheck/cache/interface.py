"""What the scan needs of a report store: bytes under a key, verified on read, never an exception on I/O.

``Store`` (a local directory) and ``FsspecStore`` (an fsspec URL: ``s3://bucket/prefix``, ...) both give it."""

from __future__ import annotations

from typing import Protocol

from muslcheck.cache.store import CacheStats


class CacheStore(Protocol):
    def get(self, key: str) -> bytes | None:
        """The verified payload for ``key``; None when absent or bad (a bad entry is removed)."""
        ...

    def put(self, key: str, payload: bytes) -> bool:
        """Store ``payload`` for ``key``; False (never an exception) when it was not stored."""
        ...

    def discard(self, key: str) -> None:
        """Remove the entry for ``key`` (its payload did not decode)."""
        ...

    def prune(self) -> int:
        """Remove every entry; the bytes removed."""
        ...

    @property
    def stats(self) -> CacheStats: ...

    def close(self) -> None: ...
