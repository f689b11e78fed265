"""What every image source hands to the layer reader: the chosen manifest's layers, its config, its blobs.

One implementation per source kind lives beside this module, named by its row in
``muslcheck.targets.reference.SOURCE_KINDS``; ``muslcheck.targets.image.sources.open_image`` picks one from a
reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, Self, TypeVar

from muslcheck.model.errors import InputError, UsageError
from muslcheck.targets.reference import Reference, ReferenceKind

_T = TypeVar("_T")


class SourceError(InputError):
    """An image that cannot be read: a missing blob, a bad manifest, a registry that says no."""


class DigestMismatch(SourceError):
    """A blob whose content does not hash to the digest its descriptor names."""


@dataclass(frozen=True)
class Layer:
    digest: str  # "sha256:..." of the blob as stored (compressed or not)
    # as the manifest says; docker-archive's legacy form: "application/vnd.docker.image.rootfs.diff.tar"
    media_type: str
    size: int | None  # from the descriptor; None where the format does not record it
    diff_id: str | None  # "sha256:..." of the uncompressed tar, from the config's rootfs.diff_ids


@dataclass(frozen=True)
class ImageConfig:
    os: str
    architecture: str  # "amd64", "arm64", ...
    variant: str | None
    env: tuple[str, ...]  # "KEY=value"
    workdir: str | None
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    diff_ids: tuple[str, ...]

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    def env_value(self, key: str) -> str | None:
        for item in self.env:
            name, sep, value = item.partition("=")
            if sep and name == key:
                return value
        return None


@dataclass(frozen=True)
class BlobLocation:
    """Where a blob's bytes lie in a local file (a layout's blob, or a member of an uncompressed archive)."""

    path: Path
    offset: int
    size: int


class BlobStore(Protocol):
    def open_blob(self, digest: str) -> AbstractContextManager[BinaryIO]:
        """The blob's raw bytes as a stream; the reader verifies the digest while it reads."""
        ...

    def locate_blob(self, digest: str) -> BlobLocation | None:
        """The blob's place in a local file, so that it can be mapped; None for a blob that only streams."""
        ...


@dataclass(frozen=True)
class Image:
    reference: str  # as the user wrote it
    kind: ReferenceKind
    layers: tuple[Layer, ...]  # bottom first
    config: ImageConfig
    blobs: BlobStore


class Source(Protocol):
    """One kind of image source."""

    def open(self) -> AbstractContextManager[Image]: ...


class SourceClass(Protocol):
    """What ``SOURCE_KINDS`` names: a class that builds its ``Source`` from a reference and how to reach it."""

    def from_reference(self, ref: Reference, *, platform: str | None, insecure_registry: bool,
                       docker_config: Path | None) -> Source: ...


class PathSource:
    """A source that is a local file or directory, with an optional tag (for a docker-archive: "repo:tag" or
    "@N") and platform: what its reference gives, once for every such source."""

    kind: ReferenceKind

    def __init__(self, path: Path, *, tag: str | None = None, platform: str | None = None,
                 reference: str | None = None) -> None:
        self.path, self.tag, self.platform = path, tag, platform
        self.reference = reference or f"{self.kind}:{path}"

    @classmethod
    def from_reference(cls, ref: Reference, *, platform: str | None, insecure_registry: bool = False,
                       docker_config: Path | None = None) -> Self:
        return cls(part_of(ref, ref.path, "path"), tag=ref.tag, platform=platform, reference=ref.text)


def part_of(ref: Reference, value: _T | None, what: str) -> _T:
    """``value`` (a part of ``ref``); ``UsageError`` when the reference lacks it."""
    if value is None:
        raise UsageError(f"{ref.text}: no {what} in this {ref.kind} reference")
    return value


def iter_chunks(stream: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
