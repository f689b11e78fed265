"""A tar reader that enforces its budgets before it reads: ustar, PAX and GNU headers, from hostile input.

Python's ``tarfile`` reads a PAX header or a GNU long name of any declared size into memory, keeps every
sparse map entry, and (3.11) parses PAX records with a regex that can be driven into catastrophic
backtracking. This reader checks every declared size against a limit before it reads a byte of it, parses
PAX records by their length prefixes (no regex), keeps only the fields a scan uses, and never keeps a
sparse map: it notes only whether the file's first bytes are stored, and where.

It reads forward through any stream with ``read`` and ``seek`` (``seek`` only ever moves forward), so the
same code serves a mapped layer, a streamed layer and an outer archive. A damaged header is an error
(``TarError``), never a silent end of the archive.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, cast

BLOCK: Final = 512
MAX_PAX_BYTES: Final = 1 << 20  # one PAX header (xattrs and ACLs included); real ones are a few hundred bytes
MAX_NAME_BYTES: Final = 64 << 10  # a GNU long name or long link; Linux paths are at most 4,096 bytes
MAX_SPARSE_MAP_BLOCKS: Final = 1 << 16  # blocks of a sparse map (old GNU extension blocks, or a 1.0 map)
_MAX_DIGITS: Final = 24  # a decimal or octal number in a header: 2^64 has 20 decimal digits

_REGULAR = frozenset(b"0\x007")  # regular, old regular, contiguous
_KINDS: Final = {ord("1"): "hardlink", ord("2"): "symlink", ord("5"): "dir"}
_SPARSE_OLD, _PAX, _PAX_GLOBAL, _LONG_NAME, _LONG_LINK = ord("S"), ord("x"), ord("g"), ord("L"), ord("K")
_OCTAL = frozenset(b"01234567")
_DECIMAL = frozenset(b"0123456789")
_USTAR, _GNU_MAGIC = b"ustar\x00", b"ustar  \x00"


class TarError(ValueError):
    """A tar that cannot be read within its budgets: a bad header, a field over its limit, a truncation."""


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One member, with every extension header applied."""

    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "other" (devices, FIFOs, unknown types: never read)
    size: int  # the file's size (a sparse file's real size)
    linkname: str
    offset_data: int  # where its stored bytes start in the tar
    stored: int  # how many bytes it stores (a sparse file stores fewer than its size)
    sparse: bool = False
    head_offset: int | None = None  # sparse: where its first bytes are stored, None when it starts with a hole

    def isreg(self) -> bool:
        return self.kind == "file"

    isfile = isreg

    def isdir(self) -> bool:
        return self.kind == "dir"

    def issym(self) -> bool:
        return self.kind == "symlink"

    def islnk(self) -> bool:
        return self.kind == "hardlink"

    def issparse(self) -> bool:
        return self.sparse


def _number(field: bytes, what: str) -> int:
    """An octal (or base-256) number field."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise TarError(f"negative {what} in a tar header")
        return int.from_bytes(field[1:], "big") | ((field[0] & 0x3F) << (8 * (len(field) - 1)))
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits:
        return 0
    if not _OCTAL.issuperset(digits):
        raise TarError(f"bad {what} {digits[:_MAX_DIGITS]!r} in a tar header")
    return int(digits, 8)


def _decimal(value: bytes, what: str) -> int:
    if not value or len(value) > _MAX_DIGITS or not _DECIMAL.issuperset(value):
        raise TarError(f"bad {what} {value[:_MAX_DIGITS]!r} in a PAX header")
    return int(value)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156].split(b"\0", 1)[0].strip(b" ")
    if not stored or not _OCTAL.issuperset(stored) or len(stored) > 8:
        return False
    expected = int(stored, 8)
    unsigned = sum(block) - sum(block[148:156]) + 8 * 32
    if unsigned == expected:
        return True
    signed = unsigned - 256 * sum(1 for b in block[:148] if b & 0x80) - 256 * sum(1 for b in block[156:] if b & 0x80)
    return signed == expected


_PAX_KEYS: Final = frozenset({b"path", b"linkpath", b"size", b"GNU.sparse.name", b"GNU.sparse.size",
                              b"GNU.sparse.realsize", b"GNU.sparse.major", b"GNU.sparse.minor", b"GNU.sparse.map",
                              b"GNU.sparse.offset", b"GNU.sparse.numbytes"})


def parse_pax(data: bytes) -> dict[bytes, bytes]:
    """The records of a PAX header that a scan uses (``LENGTH KEY=VALUE\\n`` each), read by their lengths.

    A repeated key keeps its first value for the sparse offsets (only the first region matters), the last
    for the others, as tar does."""
    found: dict[bytes, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos, pos + _MAX_DIGITS + 1)
        if space < 0:
            raise TarError("bad record length in a PAX header")
        length = _decimal(data[pos:space], "record length")
        stop = pos + length
        if length <= space - pos + 1 or stop > end or data[stop - 1] != 0x0A:
            raise TarError("bad record in a PAX header")
        key, sep, value = data[space + 1 : stop - 1].partition(b"=")
        if not sep:
            raise TarError("a PAX record without '='")
        if key in _PAX_KEYS and not (key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes") and key in found):
            found[key] = value
        pos = stop
    return found


class TarReader:
    """The entries of a tar read from ``stream``, in order. ``size`` (when known) lets a truncation show at
    once; otherwise it shows when the stream ends early. Content is read by the caller, through
    ``content(entry)``, before it asks for the next entry."""

    def __init__(self, stream: BinaryIO, size: int | None = None, *, where: str = "tar") -> None:
        self._stream = stream
        self._size = size
        self._where = where
        self._pos = 0  # where the next header starts
        self._at: int | None = 0  # where the stream stands (None: a caller has read from it)
        self._globals: dict[bytes, bytes] = {}

    def __iter__(self) -> Iterator[TarEntry]:
        while (entry := self._next()) is not None:
            yield entry

    def content(self, entry: TarEntry) -> BinaryIO:
        """The stored bytes of ``entry`` (a regular, non-sparse file) as a stream; valid until the next entry."""
        self._seek(entry.offset_data)
        self._at = None
        return cast(BinaryIO, _Bounded(self._stream, entry.stored))

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset``, at or after the current place (the stream only moves forward)."""
        self._seek(offset)
        data = self._stream.read(size)
        self._at = offset + len(data)
        if len(data) < size:
            raise TarError(f"{self._where}: truncated inside a member")
        return data

    # ---- headers -------------------------------------------------------------------------------------

    def _seek(self, offset: int) -> None:
        at = self._stream.tell() if self._at is None else self._at
        if at != offset:
            if offset < at or self._stream.seek(offset) != offset:
                raise TarError(f"{self._where}: truncated inside a member")
            self._at = offset

    def _block(self, first: bool) -> bytes | None:
        self._seek(self._pos)
        block = self._stream.read(BLOCK)
        self._at = self._pos + len(block)
        if len(block) < BLOCK:
            if not block and first:
                return None  # the stream ends between members: an archive without end blocks
            raise TarError(f"{self._where}: truncated tar header at offset {self._pos}")
        self._pos += BLOCK
        return block

    def _payload(self, size: int, limit: int, what: str) -> bytes:
        """The data of an extension header, after its size was checked against ``limit``."""
        if size > limit:
            raise TarError(f"{self._where}: a {what} of {size} bytes at offset {self._pos - BLOCK} "
                           f"(limit {limit})")
        data = self.read_at(self._pos, size)
        self._pos += _padded(size)
        return data

    def _next(self) -> TarEntry | None:
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        first = True
        while True:
            block = self._block(first)
            if block is None or not any(block):  # a zero block ends the archive
                return None
            if not _checksum_ok(block):
                raise TarError(f"{self._where}: bad tar header checksum at offset {self._pos - BLOCK}")
            first = False
            kind = block[156]
            size = _number(block[124:136], "size")
            if kind in (_PAX, _PAX_GLOBAL):
                records = parse_pax(self._payload(size, MAX_PAX_BYTES, "PAX header"))
                (pax if kind == _PAX else self._globals).update(records)
                continue
            if kind in (_LONG_NAME, _LONG_LINK):
                raw = self._payload(size, MAX_NAME_BYTES, "GNU long name")
                text = _text(raw.split(b"\0", 1)[0])
                if kind == _LONG_NAME:
                    long_name = text
                else:
                    long_link = text
                continue
            return self._entry(block, kind, size, {**self._globals, **pax} if self._globals else pax,
                               long_name, long_link)

    def _entry(self, block: bytes, kind: int, size: int, pax: dict[bytes, bytes], long_name: str | None,
               long_link: str | None) -> TarEntry:
        name_raw = block[:100].split(b"\0", 1)[0]
        if block[257:263] == _USTAR and block[345] != 0:
            name_raw = block[345:500].split(b"\0", 1)[0] + b"/" + name_raw
        name = long_name if long_name is not None else _text(name_raw)
        linkname = long_link if long_link is not None else _text(block[157:257].split(b"\0", 1)[0])
        if b"path" in pax:
            name = _text(pax[b"path"])
        if b"linkpath" in pax:
            linkname = _text(pax[b"linkpath"])
        if b"size" in pax:
            size = _decimal(pax[b"size"], "size")
        if len(name) > MAX_NAME_BYTES or len(linkname) > MAX_NAME_BYTES:
            raise TarError(f"{self._where}: a member name longer than {MAX_NAME_BYTES} bytes")
        if kind in _REGULAR:
            what = "dir" if kind != ord("7") and name.endswith("/") else "file"
        elif kind == _SPARSE_OLD:
            return self._old_sparse(block, name, size)
        else:
            what = _KINDS.get(kind, "other")
        stored = size if what in ("file", "other") else 0
        if what == "other" and kind in (ord("3"), ord("4"), ord("6")):
            stored = 0  # devices and FIFOs store nothing, whatever their size field says
        if what == "file" and (b"GNU.sparse.map" in pax or b"GNU.sparse.size" in pax
                               or pax.get(b"GNU.sparse.major") == b"1"):
            return self._pax_sparse(name, size, pax)
        return self._advance(TarEntry(name, what, size, linkname, self._pos, stored))

    def _advance(self, entry: TarEntry) -> TarEntry:
        if self._size is not None and entry.offset_data + entry.stored > self._size:
            raise TarError(f"{self._where}: {entry.name}: the tar ends inside this member")
        self._pos = entry.offset_data + _padded(entry.stored)
        return entry

    # ---- sparse members: the map is never kept; only where the file's first bytes are stored ------------

    def _old_sparse(self, block: bytes, name: str, stored: int) -> TarEntry:
        first_offset = _number(block[386:398], "sparse offset")
        first_bytes = _number(block[398:410], "sparse size")
        real = _number(block[483:495], "sparse real size")
        extended = block[482]
        for _ in range(MAX_SPARSE_MAP_BLOCKS):
            if not extended:
                break
            more = self._block(False)
            assert more is not None
            extended = more[504]
        else:
            raise TarError(f"{self._where}: {name}: a sparse map of more than {MAX_SPARSE_MAP_BLOCKS} blocks")
        head = self._pos if first_offset == 0 and first_bytes > 0 else None
        return self._advance(TarEntry(name, "file", real, "", self._pos, stored, True, head))

    def _pax_sparse(self, name: str, stored: int, pax: dict[bytes, bytes]) -> TarEntry:
        if b"GNU.sparse.name" in pax:
            name = _text(pax[b"GNU.sparse.name"])
        real_raw = pax.get(b"GNU.sparse.realsize", pax.get(b"GNU.sparse.size"))
        real = _decimal(real_raw, "sparse size") if real_raw is not None else stored
        data = self._pos
        if pax.get(b"GNU.sparse.major") == b"1":  # 1.0: the map is decimal lines before the data
            first_offset, first_bytes, data = self._map_10(name, stored)
        elif b"GNU.sparse.map" in pax:  # 0.1: "offset,size,offset,size,..."
            fields = pax[b"GNU.sparse.map"].split(b",", 2)
            first_offset, first_bytes = ((_decimal(fields[0], "sparse offset"), _decimal(fields[1], "sparse size"))
                                         if len(fields) >= 2 else (0, 0))
        else:  # 0.0: GNU.sparse.offset / GNU.sparse.numbytes records
            first_offset = _decimal(pax.get(b"GNU.sparse.offset", b"0"), "sparse offset")
            first_bytes = _decimal(pax.get(b"GNU.sparse.numbytes", b"0"), "sparse size")
        head = data if first_offset == 0 and first_bytes > 0 else None
        return self._advance(TarEntry(name, "file", real, "", self._pos, stored, True, head))

    def _map_10(self, name: str, stored: int) -> tuple[int, int, int]:
        """(first region's offset, its size, where the data starts) of a GNU 1.0 sparse map: decimal lines
        (the count of regions, then an offset and a size for each) padded to a block. Only the first
        region is kept."""
        start, blocks, line = self._pos, 0, b""
        seen, total, first = 0, 1, []
        while seen < total:
            blocks += 1
            if blocks > MAX_SPARSE_MAP_BLOCKS or blocks * BLOCK > stored:
                raise TarError(f"{self._where}: {name}: a sparse map longer than its member or "
                               f"{MAX_SPARSE_MAP_BLOCKS} blocks")
            *complete, line = (line + self.read_at(start + (blocks - 1) * BLOCK, BLOCK)).split(b"\n")
            for text in complete:
                if seen == total:
                    break
                value = _decimal(text, "sparse map entry")
                if seen == 0:
                    total = 1 + 2 * value
                elif seen <= 2:
                    first.append(value)
                seen += 1
            if seen < total and len(line) > _MAX_DIGITS:
                raise TarError(f"{self._where}: {name}: bad sparse map")
        first_offset, first_bytes = (first[0], first[1]) if len(first) == 2 else (0, 0)
        return first_offset, first_bytes, start + blocks * BLOCK


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


class _Bounded(io.RawIOBase):
    """At most ``left`` bytes of a stream, from where it stands."""

    def __init__(self, stream: BinaryIO, left: int) -> None:
        self._stream, self._left = stream, left

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes, never a buffer larger than what is left (``RawIOBase.read`` makes one)."""
        size = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(size) if size > 0 else b""
        self._left -= len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)
        n = self._stream.readinto(view[: min(len(view), self._left)])  # type: ignore[attr-defined]
        self._left -= n or 0
        return n or 0
