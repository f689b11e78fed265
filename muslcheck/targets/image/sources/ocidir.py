"""An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``.

``oci-dir:PATH:TAG`` picks the manifest whose ``org.opencontainers.image.ref.name`` is TAG. Every file
read is resolved first and must stay inside the layout directory, so a symlinked blob cannot point
elsewhere on the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from muslcheck.targets.image.sources import oci
from muslcheck.targets.image.sources.interface import BlobLocation, Image, Layer, PathSource, SourceError
from muslcheck.targets.reference import DIGEST, ReferenceKind


class LayoutBlobs:
    def __init__(self, root: Path, where: str) -> None:
        self.where = where
        try:
            self.root = root.resolve(strict=True)
        except OSError:
            raise SourceError(f"{root}: no such directory") from None
        if not self.root.is_dir():
            raise SourceError(f"{where}: not a directory (for an OCI layout in a tar write oci-archive:{root})")

    def inside(self, relative: str) -> Path:
        """The file ``relative`` names, resolved; ``SourceError`` when missing or outside the layout."""
        try:
            path = (self.root / relative).resolve(strict=True)
        except FileNotFoundError:
            raise SourceError(f"{self.where}: {relative} is missing") from None
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop on older Pythons
            raise SourceError(f"{self.where}: {relative}: {e}") from None
        if not path.is_relative_to(self.root):
            raise SourceError(f"{self.where}: {relative} leads outside the layout directory")
        if not path.is_file():
            raise SourceError(f"{self.where}: {relative} is not a regular file")
        return path

    def blob_path(self, digest: str) -> Path:
        if not DIGEST.fullmatch(digest):
            raise SourceError(f"{self.where}: bad digest {digest!r}")
        algorithm, hexdigest = digest.split(":", 1)
        try:
            return self.inside(f"blobs/{algorithm}/{hexdigest}")
        except SourceError as e:
            if "is missing" in str(e):
                raise SourceError(f"{self.where}: blob {digest} is missing") from None
            raise

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        path = self.blob_path(digest)
        try:
            stream = path.open("rb")
        except OSError as e:
            raise SourceError(f"{self.where}: blob {digest}: {e.strerror}") from None
        with stream:
            yield stream

    def locate_blob(self, digest: str) -> BlobLocation | None:
        path = self.blob_path(digest)
        return BlobLocation(path, 0, path.stat().st_size)

    def read_small(self, relative: str) -> bytes:
        path = self.inside(relative)
        size = path.stat().st_size
        if size > oci.MAX_JSON_BYTES:
            raise SourceError(f"{self.where}: {relative} is {size} bytes, "
                              f"larger than {oci.MAX_JSON_BYTES >> 20} MiB, too large for a manifest or config")
        with path.open("rb") as f:
            return oci.read_capped(f, oci.MAX_JSON_BYTES, f"{self.where}: {relative}")


def check_layer_blobs(blobs: LayoutBlobs, layers: tuple[Layer, ...]) -> None:
    for layer in layers:
        blobs.blob_path(layer.digest)


class OciDirSource(PathSource):
    kind = ReferenceKind.OCI_DIR

    @contextmanager
    def open(self) -> Iterator[Image]:
        blobs = LayoutBlobs(self.path, self.reference)
        oci.check_layout_marker(blobs.read_small("oci-layout"), self.reference)
        selected = oci.select_from_layout(blobs.read_small("index.json"), oci.blob_fetcher(blobs, self.reference),
                                          self.tag, self.platform, self.reference, self.kind)
        check_layer_blobs(blobs, selected.layers)
        yield Image(self.reference, self.kind, selected.layers, selected.config, blobs)
