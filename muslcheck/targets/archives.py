"""Native libraries inside archives: JAR, WAR, EAR (nested at any depth), wheels and zips.

Members are read in memory, never extracted. A location names the path through every archive,
``/app/app.jar!/BOOT-INF/lib/sqlite-jdbc.jar!/org/sqlite/native/Linux/x86_64/libsqlitejdbc.so``.
Every limit that is hit becomes a skipped entry naming the limit, and the rest goes on.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from muslcheck.elf import ELF_MAGIC, ElfFacts, read_elf
from muslcheck.ldso.tree import Resolved, RootFS, Unresolvable
from muslcheck.model.errors import MalformedElf
from muslcheck.model.report import Skip
from muslcheck.targets.limits import KEEP_NOTHING, MAX_ELF_BYTES, MAX_KEPT_BYTES, Budget, KeepWhole

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".zip", ".whl")
ARCHIVE_SEPARATOR = "!/"  # between an archive's location and a member's name
MAX_DEPTH = 5  # archives inside archives
MAX_MEMBERS = 200_000  # per archive, from its end-of-central-directory record, before parsing
MAX_RATIO = 200  # uncompressed / compressed size of one member
MAX_NESTED_BYTES = 512 << 20  # a nested archive read into memory
MAX_TOTAL_BYTES = 4 << 30  # uncompressed bytes read from one top-level archive, nested ones included
MAX_METADATA_MEMBERS = 10_000  # pom.properties, manifests, dist-info files kept per archive
_READ_CHUNK = 64 << 10  # compressed bytes given to a decompressor at once


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _native_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith((".so", ".node")) or ".so." in base


@dataclass(frozen=True)
class ArchiveElf:
    location: str  # "/app/app.jar!/lib/x.so"
    facts: ElfFacts


@dataclass(frozen=True)
class ArchiveMetadata:
    """One archive (top-level or nested) and the metadata files it holds (pom.properties, MANIFEST.MF, WHEEL...)."""

    location: str
    members: dict[str, bytes]  # member name inside this archive -> content


@dataclass(frozen=True)
class ArchiveScan:
    elves: list[ArchiveElf]
    skipped: list[Skip]
    archives: list[ArchiveMetadata]


class MemberOverlay:
    """A root filesystem plus what was read inside its archives (ELF members, kept metadata), so that each archive
    is a directory for the loader model, as once installed: ``/x.whl!`` holds ``numpy/``, ``numpy.libs/``..., and
    ``$ORIGIN/../../numpy.libs`` of ``/x.whl!/numpy/core/m.so`` is ``/x.whl!/numpy.libs``. Inside an archive ``..``
    is lexical (members are no links); from an archive's root it leads to the directory that holds the archive."""

    def __init__(self, base: RootFS, members: Mapping[str, ElfFacts],
                 metadata: Sequence[ArchiveMetadata] = ()) -> None:
        self.base = base
        self.members = dict(members)
        self.kept = {  # the metadata files kept whole
            f"{a.location}{ARCHIVE_SEPARATOR}{name}": data for a in metadata for name, data in a.members.items()
        }
        self.archives = {a.location for a in metadata}  # every archive read, nested ones too
        self.children: dict[str, set[str]] = {f"{a}!": set() for a in self.archives}  # directory -> its names
        for location in (*self.members, *self.kept):
            path = location
            if any(part in ("", ".", "..") for part in location.split(ARCHIVE_SEPARATOR, 1)[1].split("/")):
                continue  # a name that is no path inside the archive ("../../etc/x.so"): found as it is, only
            while ARCHIVE_SEPARATOR in path:
                head, name = path.rsplit("/", 1)
                self.children.setdefault(head, set()).add(name)
                if head.endswith("!"):
                    self.archives.add(head[:-1])
                    head = head[:-1]
                path = head

    def resolve(self, path: str) -> Resolved | Unresolvable:
        if path in self.members or path in self.kept:  # as found, whatever its name holds ("../" included)
            return Resolved(path, (), True, False, ("archive", path))
        where = self._where(path) if "!" in path else path
        if not isinstance(where, _Inside):
            return self.base.resolve(where)
        inside = where.location
        if inside in self.members or inside in self.kept:
            return Resolved(inside, (), True, False, ("archive", inside))
        if inside in self.children:
            return Resolved(inside, (), False, True, ("archive-dir", inside))
        if inside in self.archives:  # an archive inside an archive: a file, not a library
            return Resolved(inside, (), True, False, ("archive", inside))
        return Unresolvable(inside, "no such file", ())

    def _where(self, path: str, through_links: bool = True) -> _Inside | str:
        """``path`` inside a known archive (normalised), or the path for the base tree to resolve: one that names
        no archive, or whose ``..`` climbs out of the outermost archive."""
        parts = path.split("/")
        at = next((i for i, part in enumerate(parts)
                   if part.endswith("!") and "/".join(parts[: i + 1])[:-1] in self.archives), None)
        if at is None:
            return self._through_link(path) if through_links else path
        inner: list[str] = []
        for i in range(at + 1, len(parts)):
            part = parts[i]
            if part in ("", "."):
                continue
            if part != "..":
                inner.append(part)
            elif inner:
                inner.pop()
            else:  # above the archive's root: the directory that holds it
                return "/".join([*parts[:at], *parts[i + 1 :]]) or "/"
        return _Inside("/".join([*parts[: at + 1], *inner]))

    def _through_link(self, path: str) -> _Inside | str:
        """An archive named by another path than its own (a link to it, a ``..`` on the way): the archive as the
        base tree resolves it, then the rest inside it."""
        outer, sep, rest = path.partition(ARCHIVE_SEPARATOR)
        if sep:
            found = self.base.resolve(outer)
            if isinstance(found, Resolved) and found.path != outer and found.path in self.archives:
                return self._where(f"{found.path}{ARCHIVE_SEPARATOR}{rest}", through_links=False)
        return path

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        facts = self.members.get(resolved.path)
        if facts is not None:
            return facts
        if resolved.path in self.kept or resolved.path in self.archives:  # metadata, a nested archive
            raise MalformedElf("not an ELF file")
        return self.base.read_facts(resolved)

    def read_constructor_calls(self, resolved: Resolved) -> tuple[str, ...]:
        facts = self.members.get(resolved.path)
        return facts.constructor_calls if facts is not None else self.base.read_constructor_calls(resolved)

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        data = self.kept.get(resolved.path)
        return data[:limit] if data is not None else self.base.read_head(resolved, limit)

    def list_dir(self, path: str) -> list[str]:
        where = self._where(path) if "!" in path else path
        if isinstance(where, _Inside):
            return sorted(self.children.get(where.location, ()))
        return self.base.list_dir(where)


@dataclass(frozen=True)
class _Inside:
    location: str  # normalised: "/x.whl!/numpy.libs/libgcc_s.so.1"


class BufferReader(io.RawIOBase):
    """A seekable read-only stream over a buffer, without the copy io.BytesIO makes of a bytearray."""

    def __init__(self, buffer: bytes | bytearray | memoryview) -> None:
        self.view = memoryview(buffer)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(b), len(self.view) - self.pos))
        b[:n] = self.view[self.pos : self.pos + n]
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.view)}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos


def scan_archive(stream: BinaryIO, location: str, keep: KeepWhole = KEEP_NOTHING,
                 kept: Budget | None = None) -> ArchiveScan:
    """Every ELF file in the archive at ``location`` (a seekable stream), the members ``keep`` asks for
    (its archives' metadata), and what could not be read.

    ``kept`` bounds the metadata kept in memory: pass one Budget for a whole scan (default: this archive alone
    gets ``MAX_KEPT_BYTES``). It is taken before a member is read."""
    scanned = ArchiveScan([], [], [])
    _scan(stream, location, 1, _Budgets(Budget(MAX_TOTAL_BYTES), kept or Budget(MAX_KEPT_BYTES)), keep, scanned)
    return scanned


@dataclass(frozen=True)
class _Budgets:
    read: Budget  # uncompressed bytes read from one top-level archive
    kept: Budget  # metadata bytes kept, across the scan


def _scan(stream: BinaryIO, location: str, depth: int, budgets: _Budgets, keep: KeepWhole,
          scanned: ArchiveScan) -> None:
    budget = budgets.read
    found, skipped = scanned.elves, scanned.skipped
    entries = _declared_entries(stream)
    if entries is None:
        skipped.append(Skip(location, "not a zip archive (no end-of-central-directory record)"))
        return
    if entries > MAX_MEMBERS:
        skipped.append(Skip(location, f"archive declares {entries} members, above the limit of {MAX_MEMBERS}: "
                                         "not read"))
        return
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            struct.error) as e:
        skipped.append(Skip(location, f"corrupt archive: {e}"))
        return
    with archive:
        overlap = _overlapping(archive)
        if overlap is not None:
            skipped.append(Skip(location, overlap))
            return
        metadata = ArchiveMetadata(location, {})
        scanned.archives.append(metadata)
        for info in archive.infolist():
            if not info.filename or info.is_dir():  # an empty name is neither a file nor a directory
                continue
            inner = f"{location}{ARCHIVE_SEPARATOR}{info.filename}"
            if keep.wanted(info.filename):
                _read_metadata(stream, info, inner, budgets, keep.max_bytes, metadata, skipped)
                continue
            nested = is_archive_name(info.filename)
            if not (nested or _native_name(info.filename)):
                continue
            problem = _refuse(info, nested, depth)
            if problem is not None:
                skipped.append(Skip(inner, problem))
                continue
            if not budget.take(info.file_size):
                skipped.append(Skip(inner, f"more than {MAX_TOTAL_BYTES} uncompressed bytes read from this "
                                              "archive: the rest is not read"))
                return
            try:
                data = _read(stream, info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, lzma.LZMAError) as e:
                skipped.append(Skip(inner, f"unreadable archive member: {e}"))
                continue
            if nested:
                _scan(io.BytesIO(data), inner, depth + 1, budgets, keep, scanned)
            elif data.startswith(ELF_MAGIC):
                try:
                    found.append(ArchiveElf(inner, read_elf(data)))
                except MalformedElf as e:
                    skipped.append(Skip(inner, f"malformed ELF: {e}"))


def _read_metadata(stream: BinaryIO, info: zipfile.ZipInfo, inner: str, budgets: _Budgets, max_bytes: int,
                   metadata: ArchiveMetadata, skipped: list[Skip]) -> None:
    """Keep a small metadata member; one that cannot be kept is a finding (no ELF code goes unchecked)."""
    if len(metadata.members) >= MAX_METADATA_MEMBERS:
        return
    problem = _refuse(info, False, 0)
    if problem is None and info.file_size > max_bytes:
        problem = f"metadata file of {info.file_size} bytes, above the limit of {max_bytes}: not read"
    if problem is None and not budgets.read.take(info.file_size):
        problem = f"more than {MAX_TOTAL_BYTES} uncompressed bytes read from this archive: not read"
    if problem is None and not budgets.kept.take(info.file_size):
        problem = f"more than {MAX_KEPT_BYTES} bytes of metadata files kept in this scan: not read"
    if problem is None:
        try:
            metadata.members[info.filename] = _read(stream, info)
            return
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, lzma.LZMAError) as e:
            problem = f"unreadable archive member: {e}"
    skipped.append(Skip(inner, problem, unchecked=False))


def _refuse(info: zipfile.ZipInfo, nested: bool, depth: int) -> str | None:
    if info.flag_bits & 0x1:
        return "encrypted archive member: not read"
    if nested and depth >= MAX_DEPTH:
        return f"archive nested {depth + 1} deep, above the limit of {MAX_DEPTH}: not read"
    limit = MAX_NESTED_BYTES if nested else MAX_ELF_BYTES
    if info.file_size > limit:
        return f"archive member of {info.file_size} bytes, above the limit of {limit}: not read"
    if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        return f"compression ratio {ratio}:1, above the limit of {MAX_RATIO}:1 (a zip bomb?): not read"
    return None


def _overlapping(archive: zipfile.ZipFile) -> str | None:
    """Why the members' data overlap (several entries naming the same bytes: a zip bomb), or None.

    Each member takes at least its 30-byte local header and its compressed size, before the next one starts;
    the last ends before the central directory."""
    members = sorted(archive.infolist(), key=lambda info: info.header_offset)
    if not members:
        return None
    ends = [info.header_offset + 30 + info.compress_size for info in members]
    starts = [info.header_offset for info in members[1:]] + [getattr(archive, "start_dir", ends[-1] if ends else 0)]
    for info, end, start in zip(members, ends, starts, strict=True):
        if end > start:
            return f"archive members overlap (at {info.filename!r}; a zip bomb?): not read"
    return None


def _read(stream: BinaryIO, info: zipfile.ZipInfo) -> bytes:
    """The member, inflated by our own loop so that no more than its declared size is ever produced (zipfile hands
    bzip2 and lzma data to a decompressor with no bound on its output); then checked against its CRC."""
    stream.seek(info.header_offset)
    header = stream.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    name_size, extra_size = struct.unpack_from("<HH", header, 26)
    stream.seek(info.header_offset + 30 + name_size + extra_size)
    left = info.compress_size
    inflate = _Bounded(info.file_size)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflate.decompressor = zlib.decompressobj(-15)
    elif info.compress_type == zipfile.ZIP_BZIP2:
        inflate.decompressor = bz2.BZ2Decompressor()
    elif info.compress_type == zipfile.ZIP_LZMA:
        inflate.decompressor, used = _lzma_decompressor(stream, info.file_size)
        left -= used
    elif info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"unsupported compression method {info.compress_type}")
    while left > 0:
        chunk = stream.read(min(left, _READ_CHUNK))
        if not chunk:
            raise EOFError("archive member is truncated")
        left -= len(chunk)
        inflate(chunk)
    if len(inflate.out) != info.file_size or zlib.crc32(inflate.out) != info.CRC:
        raise ValueError("member does not match its declared size and CRC")
    return bytes(inflate.out)


def _lzma_decompressor(stream: BinaryIO, size: int) -> tuple[lzma.LZMADecompressor, int]:
    """A zip LZMA member: version (2 bytes), properties size (2), the LZMA1 properties, then a raw stream.

    The dictionary never needs to be larger than the output, so a claimed 4 GiB one allocates no more."""
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("archive member is truncated")
    (props_size,) = struct.unpack_from("<H", head, 2)
    props = stream.read(props_size)
    if props_size != 5 or len(props) != 5:
        raise ValueError("bad LZMA properties")
    lclppb, dict_size = props[0], struct.unpack_from("<I", props, 1)[0]
    if lclppb >= 9 * 5 * 5:
        raise ValueError("bad LZMA properties")
    lc, lp, pb = lclppb % 9, lclppb // 9 % 5, lclppb // 45
    dict_size = max(4096, min(dict_size, size))
    lzma_filter = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter]), 4 + props_size


class _Bounded:
    """Feeds a decompressor and keeps its output, never more than ``limit`` + 1 bytes (then it raises)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out = bytearray()
        self.decompressor: Any = None  # zlib's, bz2's or lzma's decompressor; None for a stored member

    def __call__(self, chunk: bytes) -> None:
        d, out = self.decompressor, self.out
        if d is None:
            out += chunk
        elif isinstance(d, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
            if not d.eof:
                out += d.decompress(chunk, self.limit + 1 - len(out))
                while not d.needs_input and not d.eof and len(out) <= self.limit:
                    out += d.decompress(b"", self.limit + 1 - len(out))
        else:
            try:
                out += d.decompress(chunk, self.limit + 1 - len(out))
                while d.unconsumed_tail and len(out) <= self.limit:
                    out += d.decompress(d.unconsumed_tail, self.limit + 1 - len(out))
            except zlib.error as e:  # not an OSError or ValueError: the callers' findings would miss it
                raise ValueError(f"corrupt deflate data: {e}") from None
        if len(out) > self.limit:
            raise ValueError(f"member inflates past its declared size of {self.limit} bytes (a zip bomb?)")


def _declared_entries(stream: BinaryIO) -> int | None:
    """The member count of the end-of-central-directory record (zip64 too), read before zipfile parses."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    tail_size = min(size, 22 + 65535 + 20)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    (entries,) = struct.unpack_from("<H", tail, at + 10)
    if entries == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
        (zip64_at,) = struct.unpack_from("<Q", tail, at - 12)
        if zip64_at + 56 <= size:
            stream.seek(zip64_at)
            record = stream.read(56)
            if record[:4] == b"PK\x06\x06":
                (entries,) = struct.unpack_from("<Q", record, 32)
    stream.seek(0)
    return int(entries)

