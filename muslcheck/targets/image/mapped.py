"""An uncompressed layer blob that lies in a local file (``docker save``'s archives, OCI layouts).

Its tar is read by random access through a read-only map: tar headers are read, member content is
skipped, and an ELF member is parsed in place, touching only the pages of the tables the loader
reads. The blobs' digests are computed apart (``BackgroundDigests``: ``pread`` and SHA-256 release the
GIL), while the files are judged, and checked before the report is made.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from muslcheck.targets.archives import BufferReader
from muslcheck.targets.image.sources.interface import BlobLocation

T = TypeVar("T")
CHUNK = 1 << 20


@dataclass(frozen=True)
class MappedMember:
    """An ELF member of a mapped layer, read (again) in place when its symbols are needed."""

    layer: MappedLayer
    offset: int
    size: int

    def read(self, reader: Callable[[memoryview], T]) -> T:
        """``reader`` over the member's bytes; the pages it touched are let go afterwards."""
        try:
            return reader(self.layer.view(self.offset, self.size))
        finally:
            self.layer.forget(self.offset, self.size)


class MappedLayer:
    """The blob's bytes in a shared read-only map of its file. ``view`` gives a member's bytes without
    copying them, ``reader`` a seekable stream for tarfile; the map lives as long as a view of it does."""

    def __init__(self, location: BlobLocation) -> None:
        with open(location.path, "rb") as f:
            if location.offset + location.size > os.fstat(f.fileno()).st_size:
                raise OSError(f"{location.path}: the blob runs past the end of the file")
            skip = location.offset % mmap.ALLOCATIONGRANULARITY  # a map starts on a granule: map from there
            self._map = mmap.mmap(f.fileno(), skip + location.size, access=mmap.ACCESS_READ,
                                  offset=location.offset - skip)
        self._start, self._size = skip, location.size

    @classmethod
    def of(cls, location: BlobLocation | None) -> MappedLayer | None:
        """The blob mapped, or None when it cannot be (no local file, empty, or no address space for it:
        a limit on virtual memory); such a blob is streamed instead."""
        if location is None or location.size == 0:
            return None
        try:
            return cls(location)
        except OSError:
            return None

    def view(self, offset: int, size: int) -> memoryview:
        """``size`` bytes from ``offset`` of the blob (fewer at its end)."""
        start = self._start + min(max(offset, 0), self._size)
        end = self._start + min(max(offset + size, 0), self._size)
        return memoryview(self._map)[start:end]

    def forget(self, offset: int, size: int) -> None:
        """Let go of the pages of ``size`` bytes from ``offset`` once read: the map stays, the memory is not
        counted against this process any more (they stay in the page cache)."""
        if size <= 0:
            return
        start = (self._start + offset) // mmap.PAGESIZE * mmap.PAGESIZE
        end = min(self._start + offset + size, len(self._map))
        if end > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def reader(self) -> BufferReader:
        return BufferReader(self.view(0, self._size))


def blob_digest(location: BlobLocation, algorithm: str) -> str:
    """"ALGORITHM:hex" of the blob's bytes where it lies in its file; OSError when it cannot be read whole."""
    sha = hashlib.new(algorithm)
    fd = os.open(location.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        done = 0
        while done < location.size:
            chunk = os.pread(fd, min(CHUNK, location.size - done), location.offset + done)
            if not chunk:
                raise OSError(f"the layer blob ends {location.size - done} bytes early")
            sha.update(chunk)
            done += len(chunk)
    finally:
        os.close(fd)
    return f"{algorithm}:{sha.hexdigest()}"


class BackgroundDigests:
    """The sha256 of blobs in files, one after another on a thread of its own, while the caller goes on."""

    def __init__(self, locations: list[BlobLocation]) -> None:
        self._digests: list[str] = []
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(locations,), name="layer-digests", daemon=True)
        self._thread.start()

    def _run(self, locations: list[BlobLocation]) -> None:
        try:
            for location in locations:
                self._digests.append(blob_digest(location, "sha256"))
        except OSError as e:
            self._error = e

    def results(self) -> list[str]:
        """"sha256:..." of each blob, in order; waits for the thread, and raises what stopped it."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digests
