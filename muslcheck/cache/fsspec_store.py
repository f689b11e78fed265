"""The report store on any fsspec filesystem (``s3://bucket/prefix``, ``gs://``, ``memory://``), so workers on
many machines share one cache; ``open_store`` picks ``Store`` for a local directory or ``file://`` URL.

The entries are the directory Store's, byte for byte (the same header: magic, format version, length, the
key's digest, the payload's sha256), verified on every read, under the same fan-out names. What differs
(docs/fleet.md): there is no owner or permission check (the bucket's access policy is the trust boundary),
an object store's PUT is atomic by itself (no temporary file and rename), and eviction is by write time, as an
object's modification time cannot be refreshed on a hit without rewriting it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from contextlib import suppress
from typing import Any

from muslcheck.cache.interface import CacheStore
from muslcheck.cache.store import (
    _FORMAT_VERSION,
    _HEADER,
    _MAGIC,
    _RESCAN_FRACTION,
    _TAG,
    _TAG_NAME,
    _TAG_SIGNATURE,
    DEFAULT_MAX_BYTES,
    CountingStore,
    Store,
    _blocks,
    _Counters,
    _verified,
)
from muslcheck.model.errors import UsageError

_HEX = frozenset("0123456789abcdef")
_LOCAL = ("file://", "local://")


def is_url(location: str) -> bool:
    return "://" in location


def open_store(location: str | os.PathLike[str], *, salt: str, max_bytes: int = DEFAULT_MAX_BYTES) -> CacheStore:
    """A directory (or ``file://`` URL) as the checked directory ``Store``; any other URL as an ``FsspecStore``
    (``UsageError`` when fsspec, or the filesystem's own package, is not installed)."""
    text = os.fspath(location)
    for prefix in _LOCAL:
        if text.startswith(prefix):
            return Store(text.removeprefix(prefix), salt=salt, max_bytes=max_bytes)
    if not is_url(text):
        return Store(text, salt=salt, max_bytes=max_bytes)
    return FsspecStore(text, salt=salt, max_bytes=max_bytes)


class FsspecStore(CountingStore):
    """A bounded key -> bytes store under an fsspec URL; entries are salted as ``Store``'s are. Several processes
    and machines may share one URL. Not thread-safe: one per thread."""

    def __init__(self, url: str, *, salt: str, max_bytes: int = DEFAULT_MAX_BYTES, **storage_options: Any) -> None:
        if max_bytes < 8 * 4096:
            raise ValueError(f"max_bytes must be at least {8 * 4096}, not {max_bytes}")
        try:
            import fsspec
        except ImportError:
            raise UsageError(f"cache {url}: an fsspec URL needs fsspec: pip install 'muslcheck[fleet]'") from None
        self.url = self.location = url
        self.max_bytes = max_bytes
        self.max_payload = max_bytes // 8 - _HEADER.size
        self._salt = salt.encode("utf-8", "surrogatepass") + b"\0"
        self._counts = _Counters()
        self._size: int | None = None
        self._written_since_scan = 0
        self.disabled: str | None = None
        try:
            self._fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as e:  # the filesystem's package (s3fs, gcsfs, ...) is missing
            raise UsageError(f"cache {url}: {e}") from None
        except (ValueError, TypeError) as e:
            raise UsageError(f"cache {url}: not a usable fsspec URL: {e}") from None
        self._root = root.rstrip("/")
        try:
            self.disabled = self._claim()
        except Exception as e:  # any backend's error: no caching, never a failed scan
            self.disabled = f"cannot use {url}: {_describe(e)}"

    def close(self) -> None:
        self.disabled = self.disabled or "closed"

    def put(self, key: str, payload: bytes) -> bool:
        if self.disabled is not None:
            return False
        if len(payload) > self.max_payload:
            self._counts.refused += 1
            return False
        digest = self._digest(key)
        header = _HEADER.pack(_MAGIC, _FORMAT_VERSION, len(payload), digest, hashlib.sha256(payload).digest())
        path = self._path(digest.hex())
        try:
            self._fs.pipe_file(path, header + payload)  # one object: atomic on object stores
        except Exception as e:
            self._counts.write_errors += 1
            self._counts.last_error = f"cannot write to {self.url}: {_describe(e)}"
            return False
        self._counts.writes += 1
        stored = _blocks(_HEADER.size + len(payload))
        self._written_since_scan += stored
        if self._size is not None:
            self._size += stored
        if (self._size is None or self._size > self.max_bytes
                or self._written_since_scan > self.max_bytes // _RESCAN_FRACTION):
            self._trim(keep=path)
        return True

    def discard(self, key: str) -> None:
        if self.disabled is None:
            self._reject(self._path(self._digest(key).hex()), "payload does not decode")

    def trim(self) -> int:
        """Evict the oldest-written entries until under max_bytes (to 7/8 of it); the bytes evicted."""
        return self._trim(keep=None)

    def prune(self) -> int:
        """Remove every entry (all salts); the bytes removed. Only the fan-out prefixes are touched."""
        if self.disabled is not None:
            return 0
        try:
            entries = self._entries()
            for path, _, _ in entries:
                self._fs.rm_file(path)
        except Exception as e:
            self._counts.last_error = f"cannot prune {self.url}: {_describe(e)}"
            return 0
        self._size, self._written_since_scan = 0, 0
        return sum(size for _, size, _ in entries)

    # -- internals

    def _claim(self) -> str | None:
        """None when the prefix is this store's (tagged, or empty and now tagged); else why not to use it."""
        tag = f"{self._root}/{_TAG_NAME}"
        if self._fs.exists(tag):
            return None if self._fs.cat_file(tag)[:len(_TAG_SIGNATURE)] == _TAG_SIGNATURE else \
                f"{self.url}: {_TAG_NAME} is not a cache tag"
        if self._fs.exists(self._root) and self._fs.ls(self._root, detail=False):
            return f"{self.url} is not empty and has no {_TAG_NAME}: not a muslcheck cache"
        self._fs.pipe_file(tag, _TAG)
        return None

    def _digest(self, key: str) -> bytes:
        return hashlib.sha256(self._salt + key.encode("utf-8", "surrogatepass")).digest()

    def _path(self, hexed: str) -> str:
        return f"{self._root}/{hexed[:2]}/{hexed[2:]}"

    def _get(self, key: str) -> bytes | None:
        digest = self._digest(key)
        path = self._path(digest.hex())
        try:
            info = self._fs.info(path)
        except FileNotFoundError:
            return None
        except Exception as e:
            self._counts.last_error = f"cannot read from {self.url}: {_describe(e)}"
            return None
        size = info.get("size")
        if info.get("type") != "file" or not isinstance(size, int) \
                or not _HEADER.size <= size <= _HEADER.size + self.max_payload:
            self._reject(path, f"not an entry (type {info.get('type')}, size {size})")
            return None
        try:
            data = self._fs.cat_file(path)
        except FileNotFoundError:
            return None  # evicted by another writer meanwhile
        except Exception as e:
            self._counts.last_error = f"cannot read from {self.url}: {_describe(e)}"
            return None
        payload, problem = _verified(data, digest)
        if payload is None:
            self._reject(path, problem)
        return payload

    def _reject(self, path: str, problem: str) -> None:
        self._counts.corrupt += 1
        self._counts.last_error = f"corrupt entry {path}: {problem}: removed"
        with suppress(Exception):  # already gone, or not ours to remove: a miss either way
            self._fs.rm(path, recursive=True)

    def _entries(self) -> list[tuple[str, int, float]]:
        """(path, accounted bytes, write time) of every object under the fan-out prefixes."""
        found = []
        for path, info in self._fs.find(self._root, detail=True).items():
            if not path.startswith(self._root + "/"):
                continue
            sub, _, name = path[len(self._root) + 1:].partition("/")
            if len(sub) == 2 and set(sub) <= _HEX and len(name) == 62 and info.get("type") == "file":
                found.append((path, _blocks(int(info.get("size") or 0)), _written_at(info)))
        return found

    def _trim(self, keep: str | None) -> int:
        self._counts.scans += 1
        try:
            entries = self._entries()
        except Exception as e:
            self._counts.last_error = f"cannot scan {self.url}: {_describe(e)}"
            return 0
        total = sum(size for _, size, _ in entries)
        evicted = 0
        if total > self.max_bytes:
            goal = self.max_bytes - self.max_bytes // 8
            for path, size, _ in sorted(entries, key=lambda e: (e[2], e[0])):
                if total <= goal:
                    break
                if path == keep:
                    continue
                try:
                    self._fs.rm_file(path)
                except Exception:
                    continue
                total -= size
                evicted += size
                self._counts.evicted += 1
        self._size = total
        self._written_since_scan = 0
        return evicted


def _written_at(info: dict[str, Any]) -> float:
    """An object's modification time as seconds, from whichever key its filesystem reports (0 if none)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _describe(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else None) or str(e) or type(e).__name__
