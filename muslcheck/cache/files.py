"""A directory's ELF facts kept between its scans (``targets.directory.KnownFacts``): one store entry per directory
target, not one per file (a ``put`` per file cost 0.1-0.7 ms: docs/cache.md, "A directory's file facts").

For each ELF file the record holds its stat identity (device, inode, size, mtime_ns, ctime_ns, blocks) and, for its
header read (discovery) and its full read (symbols, for a load), the runs of 4 KiB pages the reader read, a sha256
of their bytes and the facts read from them. A file whose identity is the recorded one, and not changed within the
last 2 s, has those pages read again and hashed; only when the digest is the recorded one are the recorded facts
used (the reader's facts are a function of the file's size and those bytes). Anything else is a miss: read as
without the record, and the read recorded.

The payload: a magic, two lengths, the index (``FilesIndex``: an entry per file), every file's header facts as one
table (without the symbol columns, empty in a header read: decoded in C, a column at a time), then each full read's
facts as its own payload, decoded only when a load asks for that file; all through the report's codec. The record
is saved once, at the end of a scan that read or dropped something."""

from __future__ import annotations

import os
import stat
import struct
import typing
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from typing import Any

from muslcheck.cache.codec import _CorruptPayload, _decode, _encode
from muslcheck.cache.interface import CacheStore
from muslcheck.cache.keys import recently_changed, scan_key
from muslcheck.elf import ElfFacts
from muslcheck.elf.facts import NO_EXPORTS, NO_USES
from muslcheck.elf.reader import pages_unchanged
from muslcheck.targets.directory import PagesRead, ReadFacts

RECORD_VERSION = 1  # bump when what a record holds changes (the salt covers the code that reads it)
_MAGIC = b"MCFACTS\0"
_HEAD = struct.Struct("<8sQQ")  # magic, the index's length, the header facts' length
_Identity = tuple[int, int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns, st_blocks

# A header read's facts without the symbol columns (empty there: a facts table with them decoded 1,065 rows in 0.1 s,
# row by row); every other field of ElfFacts, whatever it gains, from its type hints.
_HEAD_FIELDS = tuple(f.name for f in fields(ElfFacts) if f.name not in ("uses", "exports"))
_HINTS = typing.get_type_hints(ElfFacts)
_HeadFacts: Any = make_dataclass("HeadFacts", [(name, _HINTS[name]) for name in _HEAD_FIELDS], frozen=True)
_Heads: Any = make_dataclass("HeadsTable", [("facts", tuple[_HeadFacts, ...])], frozen=True)


@dataclass(frozen=True)
class FileEntry:
    """One ELF file of the record; its header facts are the heads table's row of the same position."""

    identity: tuple[int, ...]  # _Identity
    head_marked: bool  # the headers were read looking for the record's marks (``ElfFacts.dynstr_marks``)
    head_runs: tuple[int, ...]  # (first page, page count) of each run the header read read
    head_digest: bytes
    full_runs: tuple[int, ...]  # the same of the full read; () and b"" when none is recorded
    full_digest: bytes
    full_at: int  # the full facts' payload: where it starts after the index, and its length
    full_size: int


@dataclass(frozen=True)
class FilesIndex:
    entries: tuple[FileEntry, ...]


@dataclass
class _Part:
    """One recorded read of a file: its pages' runs and digest, and its facts (a header's as they are, a full
    read's as its encoded payload)."""

    marked: bool
    runs: tuple[int, ...]
    digest: bytes
    facts: ElfFacts | None = None
    payload: bytes | memoryview = b""


@dataclass
class _File:
    identity: _Identity
    head: _Part | None = None
    full: _Part | None = None


class StoredFiles:
    """The facts record of one directory target in ``store``, loaded at once; ``save`` writes it back when the scan
    changed it. ``record_full``: whether full reads are recorded too (header reads always are)."""

    def __init__(self, store: CacheStore, directory: Path, marks: frozenset[str], *, record_full: bool) -> None:
        self.store, self.marks, self.record_full = store, marks, record_full
        self.key = scan_key("file facts", {"directory": str(directory.resolve()), "marks": sorted(marks),
                                           "record": RECORD_VERSION})
        self.hits = self.misses = 0
        self._recorded: dict[tuple[int, int], _File] = {}  # the record as loaded
        self._files: dict[tuple[int, int], _File] = {}  # what this scan saw, confirmed or read
        self._changed = False
        payload = store.get(self.key)
        if payload is not None:
            try:
                self._recorded = _decode_record(payload)
            except _CorruptPayload:
                store.discard(self.key)

    def facts(self, fd: int, st: os.stat_result, *, symbols: bool, marks: frozenset[str] | None,
              read: ReadFacts) -> ElfFacts:
        # A file with holes is read with its hole map (SEEK_HOLE), which its pages' bytes do not stand for.
        if (marks is not None and marks != self.marks) or not stat.S_ISREG(st.st_mode) \
                or st.st_blocks * 512 < st.st_size or recently_changed(st):
            return read(None)
        key = (st.st_dev, st.st_ino)
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_blocks)
        known = self._files.get(key)
        if known is None or known.identity != identity:
            recorded = self._recorded.get(key)
            known = _File(identity, recorded.head, recorded.full) if recorded and recorded.identity == identity \
                else _File(identity)
            self._files[key] = known
        part = known.full if symbols else known.head
        if part is not None and (symbols or part.marked == (marks is not None)):
            if pages_unchanged(fd, part.runs, part.digest) and (facts := _facts_of(part)) is not None:
                self.hits += 1
                return facts
            if symbols:  # stale: read again below
                known.full = None
            else:
                known.head = None
            self._changed = True
        self.misses += 1
        pages: list[tuple[tuple[int, ...], bytes]] = []
        note: PagesRead = lambda runs, digest: pages.append((runs, digest))  # noqa: E731
        facts = read(note)
        if (symbols and not self.record_full) or (not symbols and (facts.uses != NO_USES or
                                                                  facts.exports != NO_EXPORTS)):
            return facts
        runs, digest = pages[0]
        if symbols:
            known.full = _Part(False, runs, digest, payload=_encode(ElfFacts, facts))
        else:
            known.head = _Part(marks is not None, runs, digest, facts)
        self._changed = True
        return facts

    def save(self) -> bool:
        """One ``put`` of the record when this scan read or dropped something; False when nothing was stored."""
        files = {key: f for key, f in self._files.items() if f.head is not None}
        if not self._changed and files.keys() == self._recorded.keys():
            return False
        return self.store.put(self.key, _encode_record(files))


def _facts_of(part: _Part) -> ElfFacts | None:
    if part.facts is not None:
        return part.facts
    try:
        facts: ElfFacts = _decode(ElfFacts, bytes(part.payload))
    except _CorruptPayload:
        return None
    return facts


def _encode_record(files: dict[tuple[int, int], _File]) -> bytes:
    entries: list[FileEntry] = []
    heads: list[ElfFacts] = []
    payloads: list[bytes | memoryview] = []
    at = 0
    for f in files.values():
        head, full = f.head, f.full
        assert head is not None and head.facts is not None
        if full is None:
            entries.append(FileEntry(f.identity, head.marked, head.runs, head.digest, (), b"", 0, 0))
        else:
            entries.append(FileEntry(f.identity, head.marked, head.runs, head.digest, full.runs, full.digest, at,
                                     len(full.payload)))
            payloads.append(full.payload)
            at += len(full.payload)
        heads.append(head.facts)
    index = _encode(FilesIndex, FilesIndex(tuple(entries)))
    table = _encode(_Heads, _Heads(tuple(_HeadFacts(*[getattr(f, name) for name in _HEAD_FIELDS]) for f in heads)))
    return b"".join([_HEAD.pack(_MAGIC, len(index), len(table)), index, table, *payloads])


def _decode_record(payload: bytes) -> dict[tuple[int, int], _File]:
    """The files of a record, every part checked: its shape (the codec), and each full payload inside the record."""
    if len(payload) < _HEAD.size:
        raise _CorruptPayload("too short for a facts record")
    magic, length, table_length = _HEAD.unpack_from(payload)
    if magic != _MAGIC or length + table_length > len(payload) - _HEAD.size:
        raise _CorruptPayload("not a facts record")
    at = _HEAD.size + length
    index: FilesIndex = _decode(FilesIndex, payload[_HEAD.size : at])
    rows = _decode(_Heads, payload[at : at + table_length]).facts
    rest = memoryview(payload)[at + table_length :]
    if len(index.entries) != len(rows):
        raise _CorruptPayload("entries and header facts differ in number")
    files: dict[tuple[int, int], _File] = {}
    for entry, row in zip(index.entries, rows, strict=True):
        head = ElfFacts(**{name: getattr(row, name) for name in _HEAD_FIELDS}, uses=NO_USES, exports=NO_EXPORTS)
        if len(entry.identity) != 6 or not 0 <= entry.full_at <= entry.full_at + entry.full_size <= len(rest):
            raise _CorruptPayload("bad facts record entry")
        identity: _Identity = entry.identity  # six ints, checked above
        full = _Part(False, entry.full_runs, entry.full_digest,
                     payload=rest[entry.full_at : entry.full_at + entry.full_size]) if entry.full_digest else None
        files[identity[0], identity[1]] = _File(identity, _Part(entry.head_marked, entry.head_runs, entry.head_digest,
                                                                head), full)
    return files
