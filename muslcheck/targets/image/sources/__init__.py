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
    SourceClass,
    SourceError,
    iter_chunks,
)
from muslcheck.targets.reference import IMAGE_KINDS, KINDS, SOURCE_KINDS, Reference, parse_reference, source_kind

if TYPE_CHECKING:
    from muslcheck.targets.image.sources.oci import layer_compression, parse_platform

# Imported on first use: a directory scan needs none of them (the registry client alone pulls in ssl and http).
# The source classes are reachable here by the names SOURCE_KINDS gives them.
_LAZY = {
    "layer_compression": "oci",
    "parse_platform": "oci",
    **{cls: module for module, _, cls in (row.source.partition(":") for row in SOURCE_KINDS if row.source)},
}

__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "BlobStore",
    "DigestMismatch",
    "Image",
    "ImageConfig",
    "Layer",
    "Reference",
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
    opener = source_kind(ref.kind).source
    if opener is None:
        raise UsageError(f"{ref.text}: a {ref.kind}, not a container image")
    module, _, name = opener.partition(":")
    cls: SourceClass = getattr(importlib.import_module(f"{__name__}.{module}"), name)  # only the one asked for
    return cls.from_reference(ref, platform=platform, insecure_registry=insecure_registry,
                              docker_config=docker_config)


def open_image(ref: Reference, *, platform: str | None = None, insecure_registry: bool = False,
               docker_config: Path | None = None) -> AbstractContextManager[Image]:
    """Open an image reference. ``platform`` (``os/arch[/variant]``) picks from a multi-platform index;
    None means linux/amd64 there, and whatever a single-platform source holds. An explicit platform must
    match. ``docker_config`` is a Docker config directory or file (None: ``~/.docker/config.json``).

    Raises ``SourceError`` (an ``InputError``) for what cannot be read, ``UsageError`` for a bad platform.
    """
    return source_for(ref, platform=platform, insecure_registry=insecure_registry,
                      docker_config=docker_config).open()
