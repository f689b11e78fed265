"""A layer blob as its tar stream, decompressed and hashed ahead of the reader on a thread of its own.

Reading the blob, SHA-256, and inflating (ISA-L or zlib for gzip, zstd) all release the GIL, so this
thread works while the scan parses the tar and the ELF files in it. A bounded queue of chunks keeps
memory at a few MB, whatever the layer's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any, BinaryIO, cast

try:  # ISA-L inflates gzip twice as fast as zlib; not every platform has a wheel of it
    from isal import isal_zlib as inflate_module
except ImportError:  # pragma: no cover - depends on the platform
    import zlib as inflate_module  # type: ignore[no-redef]

_INFLATE_ERROR = cast(type[Exception], inflate_module.error)
CHUNK = 1 << 20
AHEAD = 8  # chunks decompressed before the reader asks for them
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_WBITS = 31  # a gzip wrapper, checked (CRC-32 and size) by the inflater
_END = object()  # what the thread queues after the last chunk
# A layer inflates to at most this much plus this ratio times the compressed bytes read so far: gzip cannot pass
# 1032:1, so only a zstd (or a crafted) bomb meets the bound, and the time it costs stays linear in the blob.
MAX_INFLATE_FREE = 4 << 30
MAX_INFLATE_RATIO = 1100
MAX_ZSTD_WINDOW = 1 << 27  # 128 MiB, zstd's own default limit for decompression: a frame asking for more is refused


class LayerStream(io.RawIOBase):
    """The uncompressed tar stream of one blob; ``digests()`` (after the end) gives the SHA-256 of the blob
    as stored and of its uncompressed content. A failure on the thread is raised by the read it stops.
    It seeks forward only, so tarfile's random-access mode skips member content without copying it.
    Use it as a context manager: leaving stops the thread, even halfway."""

    def __init__(self, blob: BinaryIO, media_type: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(AHEAD)
        self._stopping = threading.Event()
        self._chunk = memoryview(b"")
        self._position = 0
        self._ended = False
        self._digests: tuple[str, str] | None = None
        self._thread = threading.Thread(target=self._produce, args=(blob, media_type), name="layer-reader",
                                        daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        self._position += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move forward to ``offset`` (or to the end, if that comes first), dropping what lies before it."""
        target = offset if whence == io.SEEK_SET else self._position + offset if whence == io.SEEK_CUR else -1
        if target < self._position:
            raise io.UnsupportedOperation("a layer stream only seeks forward")
        while self._position < target and self._fill():
            n = min(target - self._position, len(self._chunk))
            self._chunk = self._chunk[n:]
            self._position += n
        return self._position

    def drain(self) -> None:
        """Read to the end (the tar's trailing blocks and padding are part of the digests)."""
        if self.closed:
            raise ValueError("the layer stream was closed before its end")
        while self._fill():
            self._position += len(self._chunk)
            self._chunk = memoryview(b"")

    def _fill(self) -> bool:
        """Whether bytes are at hand: the current chunk, else the next one from the thread (False at the end)."""
        while not self._chunk:
            if self._ended:
                return False
            item = self._queue.get()
            if item is _END:
                self._ended = True
                return False
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            self._chunk = memoryview(item)
        return True

    def digests(self) -> tuple[str, str]:
        """("sha256:..." of the blob, "sha256:..." of the tar stream), once the stream has ended."""
        if not self._ended or self._digests is None:
            raise ValueError("the layer stream has not been read to its end")
        return self._digests

    def close(self) -> None:
        self._stopping.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()  # room for a thread waiting to put; it then sees the stop
            self._thread.join(0.01)  # returns when the thread ends: an ended stream closes at once, not in 50 ms
        super().close()

    def _produce(self, blob: BinaryIO, media_type: str) -> None:
        try:
            tar = _TarChunks(blob, media_type)
            for chunk in tar.chunks:
                if not self._put(chunk):
                    return
            self._digests = tar.result()
            self._put(_END)
        except Exception as e:  # raised again in the reader
            self._put(e)

    def _put(self, item: object) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def compression_of(media_type: str, head: bytes) -> str | None:
    """"zstd" or "gzip" for a blob by its media type or its first bytes; None for a plain tar."""
    if "zstd" in media_type or head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if "gzip" in media_type or head.startswith(_GZIP_MAGIC):
        return "gzip"
    return None


class _TarChunks:
    """The tar stream of a blob in chunks, hashed as they are taken; ``result()`` once they are all taken."""

    def __init__(self, blob: BinaryIO, media_type: str) -> None:
        self._blob_sha = hashlib.sha256()
        self._read = [0]  # compressed bytes read so far
        raw = _counted(_hashed(iter(partial(blob.read, CHUNK), b""), self._blob_sha), self._read)
        first = next(raw, b"")
        self._tar_sha: Any = None  # uncompressed: one digest for both
        inflated: Iterator[bytes] = _chained(first, raw)
        compression = compression_of(media_type, first)
        if compression == "zstd":
            self._tar_sha, inflated = hashlib.sha256(), _bounded(_zstd(inflated), self._read)
        elif compression == "gzip":
            self._tar_sha, inflated = hashlib.sha256(), _bounded(_gunzip(inflated), self._read)
        self.chunks = inflated if self._tar_sha is None else _hashed(inflated, self._tar_sha)

    def result(self) -> tuple[str, str]:
        blob_digest = "sha256:" + self._blob_sha.hexdigest()
        return blob_digest, blob_digest if self._tar_sha is None else "sha256:" + self._tar_sha.hexdigest()


def _counted(chunks: Iterator[bytes], total: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        total[0] += len(chunk)
        yield chunk


def _bounded(inflated: Iterator[bytes], read: list[int]) -> Iterator[bytes]:
    """``inflated``, stopped with ``OSError`` as soon as it outgrows its budget (checked after every chunk)."""
    out = 0
    for chunk in inflated:
        out += len(chunk)
        if out > MAX_INFLATE_FREE + MAX_INFLATE_RATIO * read[0]:
            raise OSError(f"inflates to more than {MAX_INFLATE_FREE >> 30} GiB plus {MAX_INFLATE_RATIO} times its "
                          f"compressed size (a decompression bomb?)")
        yield chunk


def _hashed(chunks: Iterator[bytes], sha: Any) -> Iterator[bytes]:
    """``chunks``, each also hashed into ``sha`` on a thread of its own: SHA-256 releases the GIL, so the
    hashes run on the other core while this thread inflates. Once the last chunk is taken, ``sha`` has them all."""
    pending: queue.Queue[bytes | None] = queue.Queue(AHEAD)
    hasher = threading.Thread(target=_hash_all, args=(pending, sha), name="layer-hasher", daemon=True)
    hasher.start()
    try:
        for chunk in chunks:
            pending.put(chunk)
            yield chunk
    finally:
        pending.put(None)
        hasher.join()


def _hash_all(pending: queue.Queue[bytes | None], sha: Any) -> None:
    while (chunk := pending.get()) is not None:
        sha.update(chunk)


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip(compressed: Iterator[bytes]) -> Iterator[bytes]:
    """Every member of a gzip stream; zero bytes after a member are padding, as gzip(1) allows."""
    inflater: Any = None  # None between members
    members = 0
    try:
        for data in compressed:
            while True:
                if inflater is None:
                    data = data.lstrip(b"\0") if members else data
                    if not data:
                        break
                    inflater, members = inflate_module.decompressobj(_GZIP_WBITS), members + 1
                out = inflater.decompress(data, CHUNK)  # bounded output: a bomb inflates a chunk at a time
                if out:
                    yield out
                if inflater.eof:
                    data, inflater = inflater.unused_data, None
                    continue
                data = inflater.unconsumed_tail
                if not data and len(out) < CHUNK:
                    break
    except _INFLATE_ERROR as e:
        raise OSError(f"corrupt gzip data: {e}") from e
    if members == 0:
        raise EOFError("empty gzip stream")
    if inflater is not None:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _zstd(compressed: Iterator[bytes]) -> Iterator[bytes]:
    import zstandard  # a well-kept binding; imported only for zstd layers

    source = cast(BinaryIO, _IteratorReader(compressed))
    reader = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW).stream_reader(
        source, read_size=CHUNK, read_across_frames=True)
    try:
        while chunk := reader.read(CHUNK):
            yield chunk
    except zstandard.ZstdError as e:
        raise OSError(f"corrupt zstd data: {e}") from e


class _IteratorReader(io.RawIOBase):
    """A file over an iterator of byte chunks (what zstandard's stream reader reads from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._rest:
            self._rest = next(self._chunks, b"")
        if size < 0 or size >= len(self._rest):
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
