"""The on-disk store: a bounded key -> bytes map in one directory (design and safety: docs/cache.md).

Every entry carries a checksum and is checked on every read: a bad entry is a miss and is removed, never
trusted. Writes are atomic and never raise on I/O errors (a read-only or full disk means no caching, not a
failed scan). What the payloads mean is not the store's business (``muslcheck.cache.codec``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat
import struct
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Self

DEFAULT_MAX_BYTES = 256 << 20
_MAGIC = b"MUSLCC\r\n"  # \r\n: a text-mode copy of an entry breaks the magic
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIQ32s32s")  # magic, format version, payload length, key digest, payload sha256
_BLOCK = 4096  # entries are accounted in whole filesystem blocks
_TOUCH_AFTER_NS = 60 * 10**9  # a hit refreshes the entry's mtime (its LRU age) when older than this
_STALE_TEMP_NS = 3600 * 10**9  # a temporary file this old is left over from a crash: removed by trim
_RESCAN_FRACTION = 16  # a writer rescans the directory after writing max_bytes / 16 (other writers add too)
_TEMP_PREFIX = ".tmp."
_TAG_NAME = "CACHEDIR.TAG"
_TAG_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"  # https://bford.info/cachedir/
_TAG = _TAG_SIGNATURE + b"\n# This file is a cache directory tag created by muslcheck (see docs/cache.md).\n"
_HEX = frozenset("0123456789abcdef")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def default_cache_dir() -> Path:
    """``$MUSLCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/muslcheck``, else ``~/.cache/muslcheck``."""
    explicit = os.environ.get("MUSLCHECK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "muslcheck"
    try:
        return Path.home() / ".cache" / "muslcheck"
    except RuntimeError:  # no home directory: a per-user directory (Store checks who owns it)
        return Path(os.environ.get("TMPDIR") or "/tmp") / f"muslcheck-cache-{os.geteuid()}"


@dataclass(frozen=True)
class CacheStats:
    """What a Store did so far; ``disabled`` says why it does nothing, ``last_error`` the last failure."""

    directory: str
    disabled: str | None
    hits: int
    misses: int  # includes the corrupt entries
    corrupt: int  # entries found bad (or undecodable) and removed
    writes: int
    write_errors: int  # puts that failed on an OSError (read-only or full disk, ...): nothing cached
    refused: int  # payloads above max_payload, not stored
    evicted: int  # entries removed by trim to stay under max_bytes
    scans: int  # full directory scans (trim)
    last_error: str | None


class _Counters:
    def __init__(self) -> None:
        self.hits = self.misses = self.corrupt = self.writes = self.write_errors = 0
        self.refused = self.evicted = self.scans = 0
        self.last_error: str | None = None


class CountingStore(ABC):
    """What every store shares: hit and miss counts, ``stats``, ``enabled``, and use as a context manager.
    A store says where it is (``location``) and reads one entry (``_get``) when ``_readable()``."""

    location: str
    disabled: str | None
    _counts: _Counters

    @property
    def enabled(self) -> bool:
        return self.disabled is None

    @property
    def stats(self) -> CacheStats:
        c = self._counts
        return CacheStats(self.location, self.disabled, c.hits, c.misses, c.corrupt, c.writes, c.write_errors,
                          c.refused, c.evicted, c.scans, c.last_error)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The payload stored for ``key``, verified; None when absent or bad (a bad entry is removed)."""
        payload = self._get(key) if self._readable() else None
        if payload is None:
            self._counts.misses += 1
        else:
            self._counts.hits += 1
        return payload

    def _readable(self) -> bool:
        return self.disabled is None

    @abstractmethod
    def _get(self, key: str) -> bytes | None: ...


class Store(CountingStore):
    """A bounded key -> bytes store in ``directory``; entries are salted, so a new salt starts afresh.

    Not thread-safe: use one Store per thread. Several processes may share a directory.
    """

    def __init__(self, directory: str | os.PathLike[str], *, salt: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 8 * _BLOCK:
            raise ValueError(f"max_bytes must be at least {8 * _BLOCK}, not {max_bytes}")
        self.directory = Path(directory)
        self.location = str(self.directory)
        self.max_bytes = max_bytes
        self.max_payload = max_bytes // 8 - _HEADER.size
        self._salt = salt.encode("utf-8", "surrogatepass") + b"\0"
        self._counts = _Counters()
        self._size: int | None = None  # running estimate of the bytes held; None until the first scan
        self._written_since_scan = 0
        self._root: int | None = None  # the directory's descriptor: every access is relative to it
        self.disabled: str | None = None  # why this Store does nothing
        try:
            self._root, self.disabled = _open_root(self.directory)
        except OSError as e:
            self.disabled = f"cannot use {self.directory}: {_describe(e)}"
        self._close_root = weakref.finalize(self, os.close, self._root) if self._root is not None else None

    def close(self) -> None:
        if self._close_root is not None:
            self._close_root()
            self._root = None
            self.disabled = self.disabled or "closed"

    def still_at_path(self) -> bool:
        """Whether the directory this store opened is still the one at its path: not removed, nor replaced (a
        long-lived process, a Dask worker, opens its store again otherwise: writes into a removed directory fail,
        and every later scan would miss)."""
        if self._root is None:
            return False
        try:
            held, there = os.fstat(self._root), os.stat(self.directory)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)

    def _readable(self) -> bool:
        return self._root is not None and self.disabled is None

    def put(self, key: str, payload: bytes) -> bool:
        """Store ``payload`` for ``key`` atomically; False (never an exception) when it was not stored."""
        if self._root is None or self.disabled is not None:
            return False
        if len(payload) > self.max_payload:
            self._counts.refused += 1
            return False
        digest = self._digest(key)
        sub, name = digest.hex()[:2], digest.hex()[2:]
        entry = _HEADER.pack(_MAGIC, _FORMAT_VERSION, len(payload), digest, hashlib.sha256(payload).digest())
        try:
            with self._subdir(sub, create=True) as sub_fd:
                assert sub_fd is not None
                _write_atomically(sub_fd, name, entry, payload)
        except OSError as e:
            self._counts.write_errors += 1
            self._counts.last_error = f"cannot write to {self.directory}: {_describe(e)}"
            return False
        self._counts.writes += 1
        stored = _blocks(len(entry) + len(payload))
        self._written_since_scan += stored
        if self._size is not None:
            self._size += stored  # overcounts a replaced entry: trim corrects it
        if (self._size is None or self._size > self.max_bytes
                or self._written_since_scan > self.max_bytes // _RESCAN_FRACTION):
            self._trim(keep=name)  # never the entry just written: mtimes tie within a clock tick
        return True

    def discard(self, key: str) -> None:
        """Remove the entry for ``key`` (its payload did not decode): counted as corrupt."""
        if self._root is None or self.disabled is not None:
            return
        digest = self._digest(key).hex()
        try:
            with self._subdir(digest[:2], create=False) as sub_fd:
                if sub_fd is not None:
                    self._reject(sub_fd, digest, "payload does not decode")
        except OSError as e:
            self._counts.last_error = _describe(e)

    def trim(self) -> int:
        """Scan the directory; evict least-recently-used entries until under max_bytes (to 7/8 of it).

        Also removes what is not an entry inside the fan-out directories (links, directories, left-over
        temporary files). Returns the bytes evicted.
        """
        return self._trim(keep=None)

    def _trim(self, keep: str | None) -> int:
        if self._root is None or self.disabled is not None:
            return 0
        self._counts.scans += 1
        entries: list[tuple[int, int, str, str]] = []  # (mtime_ns, accounted bytes, sub, name)
        total = 0
        try:
            for sub in self._fanout_dirs():
                with self._subdir(sub, create=False) as sub_fd:
                    if sub_fd is not None:
                        total += self._survey(sub_fd, sub, entries)
        except OSError as e:
            self._counts.last_error = f"cannot scan {self.directory}: {_describe(e)}"
            return 0
        evicted = 0
        if total > self.max_bytes:
            entries.sort()
            goal = self.max_bytes - self.max_bytes // 8
            for _mtime_ns, size, sub, name in entries:
                if total <= goal:
                    break
                if name != keep and self._unlink(sub, name):
                    total -= size
                    evicted += size
                    self._counts.evicted += 1
        self._size = total
        self._written_since_scan = 0
        return evicted

    def prune(self) -> int:
        """Remove every entry (all salts); returns the bytes removed. Leaves the directory and its tag."""
        if self._root is None or self.disabled is not None:
            return 0
        removed = 0
        try:
            subs = self._fanout_dirs()
        except OSError as e:
            self._counts.last_error = f"cannot prune {self.directory}: {_describe(e)}"
            return 0
        for sub in subs:
            try:
                with self._subdir(sub, create=False) as sub_fd:
                    if sub_fd is not None:
                        with os.scandir(sub_fd) as it:
                            removed += sum(e.stat(follow_symlinks=False).st_size for e in it
                                           if e.is_file(follow_symlinks=False))
            except OSError as e:
                self._counts.last_error = f"cannot prune {self.directory}: {_describe(e)}"
            _remove(self._root, sub)
        self._size = 0
        self._written_since_scan = 0
        return removed

    # -- internals

    def _digest(self, key: str) -> bytes:
        return hashlib.sha256(self._salt + key.encode("utf-8", "surrogatepass")).digest()

    def _get(self, key: str) -> bytes | None:
        digest = self._digest(key)
        hexed = digest.hex()
        name = hexed[2:]
        try:
            with self._subdir(hexed[:2], create=False) as sub_fd:
                if sub_fd is None:
                    return None
                try:
                    st = os.stat(name, dir_fd=sub_fd, follow_symlinks=False)
                except FileNotFoundError:
                    return None
                if not stat.S_ISREG(st.st_mode):  # never opened: a link, directory, FIFO or device
                    self._reject(sub_fd, hexed, f"not a regular file (mode {st.st_mode:o})")
                    return None
                fd = os.open(name, _READ_FLAGS, dir_fd=sub_fd)
                try:
                    st = os.fstat(fd)
                    problem = self._entry_problem(st)
                    if problem:
                        self._reject(sub_fd, hexed, problem)
                        return None
                    data = _read_exactly(fd, st.st_size)
                    payload, problem = _verified(data, digest)
                    if payload is None:
                        self._reject(sub_fd, hexed, problem)
                        return None
                    if st.st_mtime_ns < _now_ns() - _TOUCH_AFTER_NS:
                        _touch(fd)
                    return payload
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return None  # replaced or evicted by another process meanwhile
        except OSError as e:
            self._counts.last_error = f"cannot read from {self.directory}: {_describe(e)}"
            return None

    def _entry_problem(self, st: os.stat_result) -> str:
        if not stat.S_ISREG(st.st_mode):
            return f"not a regular file (mode {st.st_mode:o})"
        if st.st_uid != os.geteuid():
            return f"owned by uid {st.st_uid}"
        if not _HEADER.size <= st.st_size <= _HEADER.size + self.max_payload:
            return f"size {st.st_size} out of bounds"
        return ""

    def _reject(self, sub_fd: int, hexed: str, problem: str) -> None:
        self._counts.corrupt += 1
        self._counts.last_error = f"corrupt entry {hexed[:2]}/{hexed[2:]}: {problem}: removed"
        _remove(sub_fd, hexed[2:])

    @contextmanager
    def _subdir(self, sub: str, *, create: bool) -> Iterator[int | None]:
        """The fan-out directory ``sub`` as a descriptor (None when absent); never through a link."""
        fd = self._open_subdir(sub, create)
        if fd is None:
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_subdir(self, sub: str, create: bool) -> int | None:
        assert self._root is not None
        try:
            return os.open(sub, _DIR_FLAGS, dir_fd=self._root)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            self._counts.corrupt += 1
            self._counts.last_error = f"{sub} is not a directory: removed"
            _remove(self._root, sub)  # a link or file planted in the fan-out directory's place
        if not create:
            return None
        with suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(sub, 0o700, dir_fd=self._root)
        return os.open(sub, _DIR_FLAGS, dir_fd=self._root)

    def _fanout_dirs(self) -> list[str]:
        assert self._root is not None
        with os.scandir(self._root) as it:
            return sorted(e.name for e in it if len(e.name) == 2 and set(e.name) <= _HEX)

    def _survey(self, sub_fd: int, sub: str, entries: list[tuple[int, int, str, str]]) -> int:
        """Collect the entries of one fan-out directory; remove what does not belong. Returns their bytes."""
        total = 0
        stale_before = _now_ns() - _STALE_TEMP_NS
        with os.scandir(sub_fd) as it:
            found = list(it)
        for e in found:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            regular = stat.S_ISREG(st.st_mode)
            if regular and e.name.startswith(_TEMP_PREFIX):
                if st.st_mtime_ns >= stale_before:
                    total += _blocks(st.st_size)  # another writer's, in flight
                    continue
            elif regular and len(e.name) == 62 and set(e.name) <= _HEX:
                entries.append((st.st_mtime_ns, _blocks(st.st_size), sub, e.name))
                total += _blocks(st.st_size)
                continue
            _remove(sub_fd, e.name)
        return total

    def _unlink(self, sub: str, name: str) -> bool:
        try:
            with self._subdir(sub, create=False) as sub_fd:
                if sub_fd is not None:
                    os.unlink(name, dir_fd=sub_fd)
                    return True
        except OSError:
            pass
        return False


def _open_root(directory: Path) -> tuple[int | None, str | None]:
    """The cache directory as a descriptor, created (0o700, tagged) when absent; or why it must not be used."""
    try:
        os.mkdir(directory, 0o700)
        created = True
    except FileExistsError:
        created = False
    except FileNotFoundError:
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(directory, 0o700)
        created = True
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            return _closed(fd, f"{directory} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
        if st.st_mode & 0o022:
            return _closed(fd, f"{directory} is writable by others (mode {stat.S_IMODE(st.st_mode):o})")
        if not _has_tag(fd):
            with os.scandir(fd) as it:
                empty = next(it, None) is None
            if not (created or empty):
                return _closed(fd, f"{directory} is not empty and has no {_TAG_NAME}: not a muslcheck cache")
            _write_atomically(fd, _TAG_NAME, _TAG, b"")
        return fd, None
    except BaseException:
        os.close(fd)
        raise


def _closed(fd: int, reason: str) -> tuple[None, str]:
    os.close(fd)
    return None, reason


def _has_tag(root: int) -> bool:
    try:
        fd = os.open(_TAG_NAME, _READ_FLAGS, dir_fd=root)
    except FileNotFoundError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, len(_TAG_SIGNATURE)) == _TAG_SIGNATURE
    finally:
        os.close(fd)


def _write_atomically(dir_fd: int, name: str, head: bytes, body: bytes) -> None:
    """Write a temporary file beside ``name`` (0o600, never through a link) and rename it over ``name``."""
    temp = f"{_TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(6)}"
    fd = os.open(temp, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        try:
            _write_all(fd, head)
            _write_all(fd, body)
        finally:
            os.close(fd)
        try:
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as e:
            if e.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise
            _remove(dir_fd, name)  # a directory planted in the entry's place
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    left = size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _verified(data: bytes, digest: bytes) -> tuple[bytes | None, str]:
    """(payload, "") when ``data`` is a sound entry for ``digest``, else (None, what is wrong)."""
    if len(data) < _HEADER.size:
        return None, "truncated header"
    magic, version, length, key_digest, payload_digest = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return None, "bad magic"
    if version != _FORMAT_VERSION:
        return None, f"format version {version}"
    if length != len(data) - _HEADER.size:
        return None, f"payload length {len(data) - _HEADER.size}, header says {length}"
    if key_digest != digest:
        return None, "entry of another key"
    payload = data[_HEADER.size:]
    if hashlib.sha256(payload).digest() != payload_digest:
        return None, "checksum mismatch"
    return payload, ""


def _remove(dir_fd: int, name: str) -> None:
    """Remove ``name`` inside ``dir_fd`` whatever it is, without following links; errors are ignored."""
    try:
        if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _touch(fd: int) -> None:
    with suppress(OSError):  # a read-only cache still serves hits
        os.utime(fd)


def _now_ns() -> int:
    return time.time_ns()


def _blocks(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _describe(e: OSError) -> str:
    return e.strerror or str(e)
