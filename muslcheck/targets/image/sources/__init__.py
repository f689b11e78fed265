"""Container images as scan input: one ``Source`` per kind of reference, all giving an ``Image``.

``parse_reference`` reads what the user wrote; ``open_image`` opens it::

    with open_image(parse_reference("oci-dir:./layout:1.4"), platform="linux/arm64") as image:
        for layer in image.layers:
            with image.blobs.open_blob(layer.digest) as stream:
                ...
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from muslcheck.model.errors import UsageError
from muslcheck.targets.image.sources.interface import (
    BlobStore,
    DigestMismatch,
    Image,
    ImageConfig,
    Layer,
    Source,
    SourceError,
    iter_chunks,
)
from muslcheck.targets.reference import IMAGE_KINDS, KINDS, Reference, parse_reference

if TYPE_CHECKING:
    from muslcheck.targets.image.sources.archive import DockerArchiveSource, OciArchiveSource
    from muslcheck.targets.image.sources.daemon import DockerDaemonSource
    from muslcheck.targets.image.sources.oci import layer_compression, parse_platform
    from muslcheck.targets.image.sources.ocidir import OciDirSource
    from muslcheck.targets.image.sources.registry import RegistrySource

# Imported on first use: a directory scan needs none of them (the registry client alone pulls in ssl and http).
_LAZY = {
    "DockerArchiveSource": "archive",
    "OciArchiveSource": "archive",
    "DockerDaemonSource": "daemon",
    "layer_compression": "oci",
    "parse_platform": "oci",
    "OciDirSource": "ocidir",
    "RegistrySource": "registry",
}

__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "BlobStore",
    "DigestMismatch",
    "DockerArchiveSource",
    "DockerDaemonSource",
    "Image",
    "ImageConfig",
    "Layer",
    "OciArchiveSource",
    "OciDirSource",
    "Reference",
    "RegistrySource",
    "Source",
    "SourceError",
    "iter_chunks",
    "layer_compression",
    "open_image",
    "parse_platform",
    "parse_reference",
    "source_for",
]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def source_for(ref: Reference, *, platform: str | None = None, insecure_registry: bool = False,
               docker_config: Path | None = None) -> Source:
    """The ``Source`` for an image reference; ``UsageError`` for ``dir:`` and ``file:``, which are not images."""
    if platform:
        from muslcheck.targets.image.sources.oci import parse_platform

        parse_platform(platform)  # UsageError before any I/O
    # Only the source asked for is imported.
    if ref.kind == "docker-archive" and ref.path is not None:
        from muslcheck.targets.image.sources.archive import DockerArchiveSource

        return DockerArchiveSource(ref.path, selector=ref.tag, platform=platform, reference=ref.text)
    if ref.kind == "oci-archive" and ref.path is not None:
        from muslcheck.targets.image.sources.archive import OciArchiveSource

        return OciArchiveSource(ref.path, tag=ref.tag, platform=platform, reference=ref.text)
    if ref.kind == "oci-dir" and ref.path is not None:
        from muslcheck.targets.image.sources.ocidir import OciDirSource

        return OciDirSource(ref.path, tag=ref.tag, platform=platform, reference=ref.text)
    if ref.kind == "registry" and ref.name is not None:
        from muslcheck.targets.image.sources.registry import RegistrySource

        return RegistrySource(ref.name, tag=ref.tag, digest=ref.digest, platform=platform,
                              insecure=insecure_registry, docker_config=docker_config, reference=ref.text)
    if ref.kind == "docker" and ref.spec is not None:
        from muslcheck.targets.image.sources.daemon import DockerDaemonSource

        return DockerDaemonSource(ref.spec, platform=platform, reference=ref.text)
    raise UsageError(f"{ref.text}: a {ref.kind}, not a container image")


def open_image(ref: Reference, *, platform: str | None = None, insecure_registry: bool = False,
               docker_config: Path | None = None) -> AbstractContextManager[Image]:
    """Open an image reference. ``platform`` (``os/arch[/variant]``) picks from a multi-platform index;
    None means linux/amd64 there, and whatever a single-platform source holds. An explicit platform must
    match. ``docker_config`` is a Docker config directory or file (None: ``~/.docker/config.json``).

    Raises ``SourceError`` (an ``InputError``) for what cannot be read, ``UsageError`` for a bad platform.
    """
    return source_for(ref, platform=platform, insecure_registry=insecure_registry,
                      docker_config=docker_config).open()
