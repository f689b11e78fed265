"""A bounded, content-addressed on-disk cache of ELF facts and reports (design and safety: docs/cache.md).

``Store`` maps string keys to bytes under one directory. Every entry carries a checksum and is
checked on every read: a bad entry is a miss and is removed, never trusted. Writes are atomic
and never raise on I/O errors (a read-only or full disk means no caching, not a failed scan).
The key helpers (``file_key``, ``content_key``, ``layer_key``, ``scan_key``) and the codecs
(``encode_facts``/``decode_facts``, ``encode_report``/``decode_report``) are pure.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import json
import operator
import os
import secrets
import shutil
import stat
import struct
import time
import types
import typing
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain, count, filterfalse, islice, repeat
from pathlib import Path
from typing import Any

from muslcheck import __version__
from muslcheck.elf.facts import ElfFacts
from muslcheck.ldso.tables import tables_dir
from muslcheck.model.report import Report

DEFAULT_MAX_BYTES = 256 << 20
RACY_WINDOW_NS = 2 * 10**9  # see recently_changed
CODEC_VERSION = 1  # bump when an encoding changes (it is part of default_salt, and of every payload)

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


# ---------------------------------------------------------------------------------------------------------------------
# The store


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


class Store:
    """A bounded key -> bytes store in ``directory``; entries are salted, so a new salt starts afresh.

    Not thread-safe: use one Store per thread. Several processes may share a directory.
    """

    def __init__(self, directory: str | os.PathLike[str], *, salt: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 8 * _BLOCK:
            raise ValueError(f"max_bytes must be at least {8 * _BLOCK}, not {max_bytes}")
        self.directory = Path(directory)
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

    @property
    def enabled(self) -> bool:
        return self.disabled is None

    @property
    def stats(self) -> CacheStats:
        c = self._counts
        return CacheStats(str(self.directory), self.disabled, c.hits, c.misses, c.corrupt, c.writes, c.write_errors,
                          c.refused, c.evicted, c.scans, c.last_error)

    def close(self) -> None:
        if self._close_root is not None:
            self._close_root()
            self._root = None
            self.disabled = self.disabled or "closed"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> bytes | None:
        """The payload stored for ``key``, verified; None when absent or bad (a bad entry is removed)."""
        payload = self._get(key) if self._root is not None and self.disabled is None else None
        if payload is None:
            self._counts.misses += 1
        else:
            self._counts.hits += 1
        return payload

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


# ---------------------------------------------------------------------------------------------------------------------
# Keys: canonical JSON strings, so no two different inputs make the same key


def file_key(kind: str, st: os.stat_result, path: str) -> str:
    """A host file by its stat identity (no hashing): any write, chmod, rename over or touch changes it."""
    return _canonical(["file", kind, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, path])


def recently_changed(st: os.stat_result, *, now_ns: int | None = None) -> bool:
    """The file changed within the last 2 s: a write in the same clock tick could leave its stat identity
    unchanged, so its facts may be read but must not be cached (git's "racily clean" rule)."""
    now = time.time_ns() if now_ns is None else now_ns
    return max(st.st_mtime_ns, st.st_ctime_ns) > now - RACY_WINDOW_NS


def directory_fingerprint(root: Path) -> str | None:
    """sha256 over every entry under ``root`` (path, lstat identity, link target), links never followed;
    None when an entry changed too recently to trust its stat identity, or the walk fails."""
    h = hashlib.sha256(b"muslcheck tree\0")
    now = time.time_ns()
    stack = [""]  # directories, relative to root
    top = str(root)
    try:
        while stack:
            directory = stack.pop()
            with os.scandir(os.path.join(top, directory)) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    st = entry.stat(follow_symlinks=False)
                    if recently_changed(st, now_ns=now):
                        return None
                    relative = os.path.join(directory, entry.name)
                    link = os.readlink(entry.path) if entry.is_symlink() else ""
                    h.update(_canonical([relative, st.st_mode, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                         st.st_ctime_ns, link]).encode("utf-8", "surrogateescape"))
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(relative)
    except OSError:
        return None
    return h.hexdigest()


def content_key(sha256_hex: str, kind: str = "facts") -> str:
    """Content by its sha256 (an image member or an archive member read into memory)."""
    if len(sha256_hex) != 64 or not set(sha256_hex) <= _HEX:
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256_hex!r}")
    return _canonical(["content", kind, sha256_hex])


def layer_key(diff_id: str, path: str, kind: str = "facts") -> str:
    """A member of an image layer: the layer's verified diff_id (sha256 of its tar) and the member's path."""
    algorithm, _, hexed = diff_id.partition(":")
    if algorithm != "sha256" or len(hexed) != 64 or not set(hexed) <= _HEX:
        raise ValueError(f"not a sha256 diff_id: {diff_id!r}")
    return _canonical(["layer", kind, diff_id, path])


def scan_key(source_identity: str, options: Mapping[str, object]) -> str:
    """A whole report: what was scanned (image config digest, directory fingerprint) and every option that matters.

    ``options`` must hold JSON values (str, int, float, bool, None, lists, tuples, str-keyed mappings).
    """
    return _canonical(["scan", source_identity, dict(options)])


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@lru_cache(maxsize=8)
def tables_digest(symbols_dir: Path) -> str:
    """sha256 over the names and bytes of the table files (``*.json``) of ``symbols_dir``; computed once."""
    h = hashlib.sha256(b"muslcheck tables\0")
    for path in sorted(symbols_dir.glob("*.json")):
        data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@cache
def code_digest() -> str:
    """sha256 over the muslcheck package's Python sources: a changed checkout is a new tool.

    When the sources cannot be read, a random value: no entry is then ever shared between processes.
    """
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(b"muslcheck code\0")
    try:
        for path in sorted(package.rglob("*.py")):
            data = path.read_bytes()
            h.update(f"{path.relative_to(package).as_posix()}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return "unreadable-" + secrets.token_hex(16)
    return h.hexdigest()


def default_salt(symbols_dir: Path | None = None) -> str:
    """The salt a scan's Store uses: the tool version, its code, the symbol tables and the codec version."""
    tables = tables_digest((symbols_dir or tables_dir()).resolve())
    return f"muslcheck {__version__}; code {code_digest()}; tables {tables}; codec {CODEC_VERSION}"


# ---------------------------------------------------------------------------------------------------------------------
# Codecs: JSON only (no pickle, no marshal); every decoded value is checked against the dataclass's type hints


class _CorruptPayload(ValueError):
    """A payload that does not decode to a value of the expected shape."""


def encode_facts(facts: ElfFacts) -> bytes:
    """ElfFacts as compact JSON (symbols by column, strings in one table), zlib-compressed."""
    return _encode(ElfFacts, facts)


def decode_facts(payload: bytes) -> ElfFacts:
    """The inverse of ``encode_facts``, every value checked; raises ``_CorruptPayload`` for anything else."""
    facts: ElfFacts = _decode(ElfFacts, payload)
    return facts


def encode_report(report: Report) -> bytes:
    """A Report in the same compact form (by column, not ``Report.to_json``: ten times faster to decode)."""
    return _encode(Report, report)


def decode_report(payload: bytes) -> Report:
    """The inverse of ``encode_report``, every value checked; raises ``_CorruptPayload`` for anything else."""
    report: Report = _decode(Report, payload)
    return report


def load_facts(store: Store, key: str) -> ElfFacts | None:
    """Cached facts for ``key``, or None: a missing, corrupt or undecodable entry is a miss (and removed)."""
    payload = store.get(key)
    if payload is None:
        return None
    try:
        return decode_facts(payload)
    except _CorruptPayload:
        store.discard(key)
        return None


def save_facts(store: Store, key: str, facts: ElfFacts) -> bool:
    return store.put(key, encode_facts(facts))


def load_report(store: Store, key: str) -> Report | None:
    """A cached report for ``key``, or None (a missing, corrupt or undecodable entry; removed)."""
    payload = store.get(key)
    if payload is None:
        return None
    try:
        return decode_report(payload)
    except _CorruptPayload:
        store.discard(key)
        return None


def save_report(store: Store, key: str, report: Report) -> bool:
    return store.put(key, encode_report(report))


# -- the codec, built once per dataclass from its type hints (a new field of a known kind needs no change here)
#
# A payload is zlib(JSON [codec version, shape of the class, string table, row]). A dataclass is a positional
# list. A tuple of dataclasses (symbols, findings: nearly all of a payload) is stored by column, and a tuple-valued
# column as per-row counts plus the items flattened, so decoding runs in C: each column's types are checked with
# set(map(type, column)), then map(cls, *columns) builds the objects. Strings in columns are indices into one table
# of distinct strings, so "FUNC" or "GLIBC_2.2.5" is decoded once and shared, as the reader shares it.

_MAX_JSON = 1 << 30  # the decompressed size bound: a payload is checksummed, but never trusted to be small
_FAST_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False, allow_nan=False)
_Index = dict[str | None, int]  # string -> its position in the table being built; None -> -1
_Encode = Callable[[Any, _Index], Any]
_Decode = Callable[[Any, list[Any]], Any]  # (JSON value, string table + [None]) -> value
_ColumnEncode = Callable[[tuple[Any, ...], _Index], Any]
_ColumnDecode = Callable[[Any, list[Any], int], list[Any]]  # (JSON column, table, row count) -> values
_INT = frozenset({int})
_STR = frozenset({str})


def _encode(cls: type, value: Any) -> bytes:
    index: _Index = {None: -1}
    row = _codec(cls)[0](value, index)
    document = [CODEC_VERSION, _shape(cls), list(index)[1:], row]
    return zlib.compress(_FAST_JSON.encode(document).encode("ascii"), 1)


def _decode(cls: type, payload: bytes) -> Any:
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(payload, _MAX_JSON)
        _corrupt_unless(inflater.eof and not inflater.unconsumed_tail and not inflater.unused_data,
                        "truncated, too large, or trailing data")
        version, shape, strings, row = json.loads(text)
        _corrupt_unless(version == CODEC_VERSION and shape == _shape(cls), f"another codec or {cls.__name__} shape")
        _corrupt_unless(type(strings) is list and _types_within(strings, _STR), "bad string table")
        return _codec(cls)[1](row, [*strings, None])
    except _CorruptPayload:
        raise
    except (zlib.error, ValueError, TypeError, RecursionError) as e:  # zlib, JSON, UTF-8, arity, enum value
        raise _CorruptPayload(f"not a {cls.__name__} payload: {type(e).__name__}: {e}") from None


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


@cache
def _shape(cls: type) -> str:
    """A digest of the field names and types of ``cls``, recursively: a payload of another shape is refused."""
    def describe(tp: Any) -> str:
        if _is_dataclass_type(tp):
            fields = ",".join(f"{f.name}:{describe(_hints(tp)[f.name])}" for f in dataclasses.fields(tp))
            return f"{tp.__name__}({fields})"
        if _is_enum(tp):
            return f"{tp.__name__}[{'|'.join(str(m.value) for m in tp)}]"
        return "[" + ",".join(describe(a) for a in typing.get_args(tp)) + "]" + repr(tp)

    return hashlib.sha256(describe(cls).encode()).hexdigest()[:16]


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _is_dataclass_type(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def _plain_types(tp: Any) -> frozenset[type] | None:
    """The exact JSON-native types a plain (possibly optional) hint allows, or None when not plain."""
    if tp in (str, int, bool, type(None)):
        return frozenset({tp})
    if tp is float:
        return frozenset({float, int})
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        members = [_plain_types(a) for a in typing.get_args(tp)]
        if all(m is not None for m in members):
            return frozenset().union(*(m for m in members if m is not None))
    return None


def _optional_of(tp: Any) -> Any:
    """X for ``X | None``; None for any other hint."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def _sequence_item(tp: Any) -> Any:
    """X for ``tuple[X, ...]``; None for any other hint."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def _str_mapping_values(tp: Any) -> frozenset[type] | None:
    """The plain types of V for ``dict[str, V]`` with V plain; None for any other hint."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is dict and args[0] is str:
        return _plain_types(args[1])
    return None


def _corrupt_unless(ok: bool, what: str) -> None:
    if not ok:
        raise _CorruptPayload(what)


def _types_within(values: Any, allowed: frozenset[type]) -> bool:
    return set(map(type, values)) <= allowed


def _init_fields(cls: type) -> list[str]:
    fields = dataclasses.fields(cls)
    if any(f.kw_only or not f.init for f in fields):
        raise TypeError(f"the cache codec builds {cls.__name__} positionally: no keyword-only or non-init fields")
    return [f.name for f in fields]


def _enum_members(tp: Any) -> dict[str, Any]:
    return {m.value: m for m in tp}


@cache
def _codec(tp: Any) -> tuple[_Encode, _Decode]:
    """(encode, decode) of one value of type ``tp``: the fields of a single object (not the hot path)."""
    if _is_dataclass_type(tp):
        return _row_codec(tp)
    allowed = _plain_types(tp)
    if allowed is not None:
        def decode_plain(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) in allowed, f"expected {tp}, got {type(value).__name__}")
            return value
        return (lambda value, index: value), decode_plain
    if _is_enum(tp):
        members = _enum_members(tp)

        def decode_enum(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is str and value in members, f"expected a {tp.__name__} value")
            return members[value]
        return (lambda value, index: value.value), decode_enum
    inner = _optional_of(tp)
    if inner is not None:
        encode_inner, decode_inner = _codec(inner)
        return ((lambda value, index: None if value is None else encode_inner(value, index)),
                (lambda value, table: None if value is None else decode_inner(value, table)))
    mapping = _str_mapping_values(tp)
    if mapping is not None:
        def decode_mapping(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is dict and _types_within(value.values(), mapping), f"bad {tp}")
            return value
        return (lambda value, index: dict(value)), decode_mapping
    item = _sequence_item(tp)
    if item is not None and _is_dataclass_type(item):
        return _table_codec(item)
    if item is not None:
        flat = _Flat.of(item)
        return (lambda value, index: flat.flatten(value)), (lambda value, table: tuple(flat.items(value)))
    raise TypeError(f"the cache codec does not handle {tp!r}")


def _row_codec(cls: type) -> tuple[_Encode, _Decode]:
    """One object as a positional list."""
    names = _init_fields(cls)
    codecs = [_codec(_hints(cls)[name]) for name in names]

    def encode(value: Any, index: _Index) -> Any:
        return [enc(getattr(value, name), index) for (enc, _), name in zip(codecs, names, strict=True)]

    def decode(row: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(row) is list and len(row) == len(names), f"expected a {cls.__name__} row")
        return cls(*[dec(item, table) for (_, dec), item in zip(codecs, row, strict=True)])

    return encode, decode


class _Flat:
    """A ``tuple[X, ...]``, X plain or a fixed tuple of plain values, as one flat list."""

    def __init__(self, width: int, kinds: list[frozenset[type]], tuples: bool) -> None:
        self.width, self.kinds, self.tuples = width, kinds, tuples

    @staticmethod
    def of(item: Any) -> _Flat:
        plain = _plain_types(item)
        if plain is not None:
            return _Flat(1, [plain], False)
        args = typing.get_args(item)
        kinds = [_plain_types(a) for a in args]
        if typing.get_origin(item) is tuple and args and Ellipsis not in args and None not in kinds:
            return _Flat(len(args), [k for k in kinds if k is not None], True)
        raise TypeError(f"the cache codec does not handle tuples of {item!r}")

    def flatten(self, value: Any) -> list[Any]:
        return list(chain.from_iterable(value) if self.tuples else value)

    def items(self, flat: Any) -> list[Any]:
        """The items of a flat list, checked."""
        _corrupt_unless(type(flat) is list and len(flat) % self.width == 0, "bad flat list")
        for position, kinds in enumerate(self.kinds):
            _corrupt_unless(_types_within(flat[position::self.width], kinds), "bad item type")
        if not self.tuples:
            return typing.cast(list[Any], flat)
        return list(zip(*[iter(flat)] * self.width, strict=True))


def _table_codec(cls: type) -> tuple[_Encode, _Decode]:
    """``tuple[cls, ...]`` as [row count, column, column, ...]."""
    names = _init_fields(cls)
    columns = [_column_codec(_hints(cls)[name]) for name in names]
    fields_of: Callable[[Any], Any] = operator.attrgetter(*names) if len(names) > 1 else (
        lambda value: (getattr(value, names[0]),))

    def encode(value: Any, index: _Index) -> Any:
        transposed = list(zip(*map(fields_of, value), strict=True)) if value else [()] * len(names)
        return [len(value), *(enc(column, index) for (enc, _), column in zip(columns, transposed, strict=True))]

    def decode(value: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(value) is list and len(value) == len(names) + 1, f"expected {cls.__name__} columns")
        rows = value[0]
        _corrupt_unless(type(rows) is int and rows >= 0, "bad row count")
        decoded = [dec(column, table, rows) for (_, dec), column in zip(columns, value[1:], strict=True)]
        return tuple(map(cls, *decoded))

    return encode, decode


def _column_codec(tp: Any) -> tuple[_ColumnEncode, _ColumnDecode]:
    """One field of a tuple of dataclasses, for all rows at once: the hot path of decoding."""
    if tp is str or _optional_of(tp) is str:
        return _string_column(optional=tp is not str)
    allowed = _plain_types(tp)
    if allowed is not None:
        def decode_plain(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, allowed), f"bad {tp} column")
            return typing.cast(list[Any], column)
        return (lambda column, index: list(column)), decode_plain
    if _is_enum(tp):
        members = _enum_members(tp)

        def decode_enum(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, _STR), f"bad {tp.__name__} column")
            found = list(map(members.get, column))
            _corrupt_unless(None not in found, f"unknown {tp.__name__} value")
            return found
        return (lambda column, index: [v.value for v in column]), decode_enum
    mapping = _str_mapping_values(tp)
    if mapping is not None:
        def decode_mapping(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, frozenset({dict})), f"bad {tp} column")
            _corrupt_unless(_types_within(chain.from_iterable(map(dict.values, column)), mapping), f"bad {tp} value")
            return typing.cast(list[Any], column)
        return (lambda column, index: list(map(dict, column))), decode_mapping
    if _is_dataclass_type(tp):
        encode_table, decode_table = _table_codec(tp)

        def decode_objects(column: Any, table: list[Any], rows: int) -> list[Any]:
            objects = decode_table(column, table)
            _corrupt_unless(len(objects) == rows, f"bad {tp.__name__} column")
            return list(objects)
        return encode_table, decode_objects
    item = _sequence_item(tp)
    if item is None:
        raise TypeError(f"the cache codec does not handle a column of {tp!r}")
    return _nested_column(item)


def _is_column(column: Any, rows: int) -> bool:
    return type(column) is list and len(column) == rows


def _string_column(optional: bool) -> tuple[_ColumnEncode, _ColumnDecode]:
    lowest = -1 if optional else 0  # -1: None (the table's last element)

    def encode(column: tuple[Any, ...], index: _Index) -> Any:
        new = list(filterfalse(index.__contains__, dict.fromkeys(column)))  # in first-seen order
        index.update(zip(new, count(len(index) - 1)))
        return list(map(index.__getitem__, column))

    def decode(column: Any, table: list[Any], rows: int) -> list[Any]:
        _corrupt_unless(_is_column(column, rows), "bad string column")
        if column:
            _corrupt_unless(_types_within(column, _INT), "bad string index type")
            _corrupt_unless(min(column) >= lowest and max(column) < len(table) - 1, "string index out of range")
        return list(map(table.__getitem__, column))

    return encode, decode


def _nested_column(item: Any) -> tuple[_ColumnEncode, _ColumnDecode]:
    """A ``tuple[item, ...]`` field of every row: per-row counts, then all items (by column for dataclasses)."""
    if _is_dataclass_type(item):
        encode_items, decode_table = _table_codec(item)

        def decode_items(items: Any, table: list[Any]) -> Any:
            return decode_table(items, table)
    else:
        flat = _Flat.of(item)

        def encode_items(items: Any, index: _Index) -> Any:
            return flat.flatten(items)

        def decode_items(items: Any, table: list[Any]) -> Any:
            return flat.items(items)

    def encode(column: tuple[Any, ...], index: _Index) -> Any:
        return [list(map(len, column)), encode_items(tuple(chain.from_iterable(column)), index)]

    def decode(column: Any, table: list[Any], rows: int) -> list[Any]:
        _corrupt_unless(type(column) is list and len(column) == 2, "bad nested column")
        counts, items = column[0], decode_items(column[1], table)
        _corrupt_unless(_is_column(counts, rows), "bad nested counts")
        if counts:
            _corrupt_unless(_types_within(counts, _INT) and min(counts) >= 0 and sum(counts) == len(items),
                            "bad nested counts")
        rest = iter(items)
        return list(map(tuple, map(islice, repeat(rest), counts)))  # in C: no Python frame per row

    return encode, decode
