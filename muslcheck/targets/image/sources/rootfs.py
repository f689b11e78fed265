"""A tar of a root filesystem (``docker export``, ``tar -C rootfs -c .``), plain, gzip or zstd: one layer with
no image config.

It is read by the layer machinery (``fs.read_image``): streamed, or mapped when it is a plain tar, never
extracted, under the same limits as an image layer. With no config, the files say which architecture they
are, as in a directory scan. The layer's digest is the file's sha256, computed when it is opened (so the report
cache keys on the content) and checked again as the layer is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from muslcheck.targets.image.sources.interface import (
    BlobLocation,
    Image,
    ImageConfig,
    Layer,
    PathSource,
    SourceError,
)
from muslcheck.targets.reference import ReferenceKind

_CHUNK = 4 << 20
# The layer of a root filesystem tar; compression is read from its first bytes.
ROOTFS_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
NO_CONFIG = ImageConfig(os="linux", architecture="", variant=None, env=(), workdir=None, entrypoint=(), cmd=(),
                        diff_ids=())


class _FileBlob:
    """The one blob: the tar file itself."""

    def __init__(self, path: Path, digest: str, size: int, where: str) -> None:
        self.path, self.digest, self.size, self.where = path, digest, size, where

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        self._check(digest)
        with self.path.open("rb") as f:
            yield f

    def locate_blob(self, digest: str) -> BlobLocation | None:
        self._check(digest)
        return BlobLocation(self.path, 0, self.size)

    def _check(self, digest: str) -> None:
        if digest != self.digest:
            raise SourceError(f"{self.where}: no blob {digest}")


class RootfsSource(PathSource):
    """``rootfs:FILE``, or a tar detected as one. Its platform chooses nothing (there is one tree): the scan judges
    that architecture."""

    kind = ReferenceKind.ROOTFS

    @contextmanager
    def open(self) -> Iterator[Image]:
        digest, size = self._digest()
        layer = Layer(digest, ROOTFS_MEDIA_TYPE, size, None)
        yield Image(self.reference, self.kind, (layer,), NO_CONFIG, _FileBlob(self.path, digest, size, self.reference))

    def _digest(self) -> tuple[str, int]:
        """The file's sha256 and size; a FIFO or device is refused before it is opened for reading."""
        try:
            st = self.path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise SourceError(f"{self.reference}: not a regular file")
            sha = hashlib.sha256()
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            buffer = bytearray(_CHUNK)
            view = memoryview(buffer)
            with os.fdopen(fd, "rb", buffering=0) as f:
                size = 0
                while n := f.readinto(buffer):
                    sha.update(view[:n])
                    size += n
        except FileNotFoundError:
            raise SourceError(f"{self.path}: no such file") from None
        except OSError as e:
            raise SourceError(f"{self.path}: {e.strerror or e}") from None
        return "sha256:" + sha.hexdigest(), size
