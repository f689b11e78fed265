"""What a report-cache hit still checks of an image: that each layer blob it would read is the one its report
was made from.

A cached report is keyed on the image's config and layer digests, and was made only from blobs that hashed to
them (``read_image`` and ``ImageRoot.verify`` check every byte before a report exists). A hit reads no layer, so
a blob swapped since then would go unseen while an uncached scan fails. ``verify_blobs`` closes that: every
blob in a local file (docker-archive, oci-archive, oci-dir, a ``docker:`` export) is checked for its size, then
hashed where it lies (``pread``, several blobs at once: SHA-256 and the reads release the GIL), and a mismatch
is the same ``DigestMismatch`` an uncached scan raises. The uncompressed diff_id needs no second look: a blob
with its digest is the byte-for-byte blob whose diff_id was checked when the report was made.

Hashing costs a read of every byte (2.4 s for the 1.2 GB benchmark image, docs/cache.md), so a caller may pass a
``VerifiedMemo``: a blob whose file still has the stat identity it had when it was last hashed here (device, inode,
size, mtime and ctime, none within the last 2 s) is taken as verified, as a directory's stat fingerprint is
(docs/cache.md says why that identity changes whenever the bytes can have). A blob is remembered only when its
file's identity was the same before and after the hash.

``verify_blob`` is the same check for one blob: what a layer whose facts come from the cache (``read_image``) runs
instead of reading it, so a facts hit never hides a swapped blob either.

A registry's blobs only stream: fetching them again would undo the cache. They are addressed by their digest,
and a report is cached only after every byte fetched hashed to it, so a hit is keyed on verified content; a
registry that now serves other bytes under that digest fails the next uncached scan, never this report.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from muslcheck.targets.image.mapped import blob_digest
from muslcheck.targets.image.sources.interface import BlobLocation, DigestMismatch, Image, Layer, SourceError
from muslcheck.targets.reference import ReferenceKind

MAX_THREADS = 4


class VerifiedMemo(Protocol):
    """Blobs hashed before, by the stat identity of their file (the report cache keeps them)."""

    def known(self, digest: str, location: BlobLocation, st: os.stat_result) -> bool: ...

    def remember(self, digest: str, location: BlobLocation, st: os.stat_result) -> None: ...


def verify_blobs(image: Image, memo: VerifiedMemo | None = None) -> int:
    """Raise ``DigestMismatch`` unless every layer blob of ``image`` in a local file has the size and digest its
    descriptor names (``SourceError`` for one that cannot be read); the bytes hashed (0: every blob was known)."""
    if image.kind == ReferenceKind.ROOTFS:
        return 0  # hashed whole as it was opened: its digest, the key, is of the bytes there now
    local: dict[str, tuple[int, BlobLocation, os.stat_result | None]] = {}
    for index, layer in enumerate(image.layers):
        if layer.digest in local:
            continue
        location = image.blobs.locate_blob(layer.digest)
        if location is None:
            continue  # streamed only (a registry): keyed on verified content, above
        _check_size(index, layer, location)
        before = stat_of(location)
        if memo is not None and before is not None and memo.known(layer.digest, location, before):
            continue
        local[layer.digest] = (index, location, before)
    if not local:
        return 0
    with ThreadPoolExecutor(min(MAX_THREADS, len(local)), thread_name_prefix="blob-digest") as pool:
        found = dict(zip(local, pool.map(_digest, local, [location for _, location, _ in local.values()]),
                         strict=True))
    for digest, (index, location, before) in local.items():
        if found[digest] != digest:
            raise DigestMismatch(f"layer {index + 1}: content hashes to {found[digest]}, not {digest}")
        if memo is not None and before is not None and same_file(before, stat_of(location)):
            memo.remember(digest, location, before)
    return sum(location.size for _, location, _ in local.values())


def verify_blob(index: int, layer: Layer, location: BlobLocation, memo: VerifiedMemo | None) -> int:
    """``verify_blobs`` for one blob (layer ``index`` of its image): its digest unless ``memo`` knows it; the bytes
    hashed. Not its size first: a blob of another size fails its hash with the message a read of it gives."""
    before = stat_of(location)
    if memo is not None and before is not None and memo.known(layer.digest, location, before):
        return 0
    found = _digest(layer.digest, location)
    if found != layer.digest:
        raise DigestMismatch(f"layer {index + 1}: content hashes to {found}, not {layer.digest}")
    if memo is not None and before is not None and same_file(before, stat_of(location)):
        memo.remember(layer.digest, location, before)
    return location.size


def _check_size(index: int, layer: Layer, location: BlobLocation) -> None:
    if layer.size is not None and location.size != layer.size:
        raise DigestMismatch(f"layer {index + 1}: the blob is {location.size} bytes, "
                             f"its descriptor says {layer.size}")


def stat_of(location: BlobLocation) -> os.stat_result | None:
    """The blob's file's stat, None when it cannot be had (then a hash says what is wrong)."""
    try:
        return os.stat(location.path)
    except OSError:
        return None


def same_file(before: os.stat_result, after: os.stat_result | None) -> bool:
    """The file kept its identity (device, inode, size, mtime, ctime) between two stats."""
    return after is not None and all(getattr(before, f) == getattr(after, f) for f in _IDENTITY)


_IDENTITY = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def _digest(expected: str, location: BlobLocation) -> str:
    """The blob's digest, in the algorithm of the digest it must match (sha256 or sha512)."""
    algorithm = expected.partition(":")[0]
    if algorithm not in ("sha256", "sha512"):
        raise SourceError(f"{location.path}: unsupported digest algorithm in {expected!r}")
    try:
        return blob_digest(location, algorithm)
    except OSError as e:
        raise SourceError(f"{location.path}: layer blob unreadable: {e.strerror or e}") from None
