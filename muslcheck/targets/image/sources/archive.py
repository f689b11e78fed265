"""Images in a tar: ``docker save`` output (docker-archive) and an OCI layout in a tar (oci-archive).

docker-archive has two forms, both read from ``manifest.json``: the legacy one (``<id>/layer.tar``,
config ``<image id>.json``, layers uncompressed, so a layer's sha256 is its diff_id) and the one Docker 25
and later write (an OCI layout, with ``manifest.json`` naming ``blobs/sha256/<hex>`` paths).

Blobs are members of the outer tar. The tar's headers are indexed once; ``open_blob`` then hands out a
seekable stream over the member's bytes on its own file handle (so several can be read at once, from
several threads). Nothing is extracted, and no blob is held in memory.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from muslcheck.model.errors import UsageError
from muslcheck.targets.image.sources import oci
from muslcheck.targets.image.sources.interface import (
    BlobLocation,
    Image,
    ImageConfig,
    Layer,
    PathSource,
    SourceError,
)
from muslcheck.targets.image.tarreader import TarEntry, TarError, TarReader
from muslcheck.targets.reference import DIGEST, ReferenceKind, parse_image_name

MAX_MEMBERS = 100_000  # ten times the layer limit; each member kept is a small slotted record
MAX_LINK_HOPS = 16
_BLOB_PATH = re.compile(r"blobs/(sha256)/([0-9a-f]{64})|blobs/(sha512)/([0-9a-f]{128})")
_ID_JSON = re.compile(r"(?:.*/)?([0-9a-f]{64})\.json")


def safe_member_name(name: str, where: str) -> str:
    """A member name as the archive's manifest writes it, normalised; never absolute, never with ``..``."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise SourceError(f"{where}: unsafe path {name!r} in the manifest")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SourceError(f"{where}: unsafe path {name!r} in the manifest")
    return "/".join(parts)


class _MemberSlice(io.RawIOBase):
    """The bytes of one tar member, read through a file handle of its own."""

    def __init__(self, path: Path, offset: int, size: int, where: str) -> None:
        self._file = path.open("rb")
        self._offset, self._size, self._pos, self._where = offset, size, 0, where

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        self._file.seek(self._offset + self._pos)
        got = self._file.readinto(view[:want])
        if not got:
            raise SourceError(f"{self._where}: the tar is truncated")
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class TarBlobs:
    """A tar's members by name, and the blobs among them by digest."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = path, where
        self.members: dict[str, TarEntry] = {}
        self.by_digest: dict[str, str] = {}  # digest -> member name, where the name does not say it
        try:
            with path.open("rb") as f:
                for member in TarReader(f, os.fstat(f.fileno()).st_size, where=where):
                    if len(self.members) >= MAX_MEMBERS:
                        raise SourceError(f"{where}: more than {MAX_MEMBERS} members")
                    parts = [p for p in member.name.split("/") if p not in ("", ".")]
                    if not parts or ".." in parts or member.name.startswith("/"):
                        continue  # never looked up
                    self.members["/".join(parts)] = member
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise SourceError(f"{path}: a directory, not a tar (for an OCI layout directory write oci-dir:{path})"
                              ) from None
        except OSError as e:
            raise SourceError(f"{path}: {e.strerror or e}") from None
        except TarError as e:
            raise SourceError(f"{where}: not a readable tar (truncated or damaged: {e})") from None

    def _resolve(self, name: str) -> TarEntry | None:
        for _ in range(MAX_LINK_HOPS):
            member = self.members.get(name)
            if member is None:
                return None
            if member.isfile():
                return member
            if member.issym():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                target = posixpath.normpath(member.linkname)
            else:
                return None
            if target.startswith(("/", "../")) or target == "..":
                raise SourceError(f"{self.where}: member {name} links outside the archive ({member.linkname})")
            name = target.removeprefix("./")
        raise SourceError(f"{self.where}: member {name}: too many links")

    def member(self, name: str) -> TarEntry:
        found = self._resolve(safe_member_name(name, self.where))
        if found is None:
            raise SourceError(f"{self.where}: {name} is missing from the archive")
        if found.issparse():
            raise SourceError(f"{self.where}: {name} is a sparse member, which image archives never hold")
        return found

    def has(self, name: str) -> bool:
        return self._resolve(safe_member_name(name, self.where)) is not None

    def open_member(self, name: str) -> BinaryIO:
        found = self.member(name)
        raw = _MemberSlice(self.path, found.offset_data, found.size, f"{self.where}: {name}")
        return io.BufferedReader(raw, buffer_size=1 << 20)

    def blob_name(self, digest: str) -> str:
        if not DIGEST.fullmatch(digest):
            raise SourceError(f"{self.where}: bad digest {digest!r}")
        name = self.by_digest.get(digest)
        if name is None:
            algorithm, hexdigest = digest.split(":", 1)
            name = f"blobs/{algorithm}/{hexdigest}"
        return name

    def has_blob(self, digest: str) -> bool:
        return self.has(self.blob_name(digest))

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        name = self.blob_name(digest)
        if not self.has(name):
            raise SourceError(f"{self.where}: blob {digest} is missing from the archive")
        stream = self.open_member(name)
        try:
            yield stream
        finally:
            stream.close()

    def locate_blob(self, digest: str) -> BlobLocation | None:
        name = self.blob_name(digest)
        if not self.has(name):
            raise SourceError(f"{self.where}: blob {digest} is missing from the archive")
        member = self.member(name)
        return BlobLocation(self.path, member.offset_data, member.size)

    def read_small(self, name: str) -> bytes:
        member = self.member(name)
        if member.size > oci.MAX_JSON_BYTES:
            raise SourceError(f"{self.where}: {name} is {member.size} bytes, "
                              f"larger than {oci.MAX_JSON_BYTES >> 20} MiB, too large for a manifest or config")
        with self.open_member(name) as f:
            return oci.read_capped(f, oci.MAX_JSON_BYTES, f"{self.where}: {name}")


def check_layer_blobs(blobs: TarBlobs, layers: tuple[Layer, ...]) -> None:
    missing = [layer.digest for layer in layers if not blobs.has_blob(layer.digest)]
    if missing:
        raise SourceError(f"{blobs.where}: layer blob {missing[0]} is missing from the archive"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))


# ---- docker-archive ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]


def _entries(blobs: TarBlobs) -> list[_Entry]:
    where = f"{blobs.where}: manifest.json"
    doc = oci.load_json(blobs.read_small("manifest.json"), where)
    if not isinstance(doc, list) or not doc:
        raise SourceError(f"{where}: expected a non-empty list of images")
    if len(doc) > oci.MAX_MANIFESTS:
        raise SourceError(f"{where}: {len(doc)} images (limit {oci.MAX_MANIFESTS})")
    entries = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise SourceError(f"{where}: an image without Config")
        layers = item.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise SourceError(f"{where}: an image without a Layers list")
        if len(layers) > oci.MAX_LAYERS:
            raise SourceError(f"{where}: {len(layers)} layers (limit {oci.MAX_LAYERS})")
        tags = item.get("RepoTags") or []
        if not isinstance(tags, list):
            raise SourceError(f"{where}: RepoTags is not a list")
        entries.append(_Entry(item["Config"], tuple(str(t) for t in tags), tuple(layers)))
    return entries


def _normal_tag(tag: str) -> str:
    try:
        image = parse_image_name(tag)
    except UsageError:
        return tag
    return f"{image.name}:{image.tag}" if image.tag else image.name


def _pick_entries(entries: list[_Entry], selector: str | None, where: str) -> list[_Entry]:
    if selector is None:
        first = entries[0]
        return [e for e in entries if e.repo_tags == first.repo_tags] if first.repo_tags else [first]
    if selector.startswith("@"):
        index = int(selector[1:])
        if index >= len(entries):
            raise SourceError(f"{where}: no image {selector}; the archive holds {len(entries)}")
        return [entries[index]]
    wanted = _normal_tag(selector)
    found = [e for e in entries if selector in e.repo_tags or wanted in map(_normal_tag, e.repo_tags)]
    if not found:
        tags = sorted({t for e in entries for t in e.repo_tags})
        raise SourceError(f"{where}: no image tagged {selector}; tags: {', '.join(tags) or 'none'}")
    return found


def _blob_digest(name: str) -> str | None:
    m = _BLOB_PATH.fullmatch(name)
    if m is None:
        return None
    return f"{m.group(1)}:{m.group(2)}" if m.group(1) else f"{m.group(3)}:{m.group(4)}"


def _read_config(blobs: TarBlobs, name: str) -> ImageConfig:
    where = f"{blobs.where}: config {name}"
    data = blobs.read_small(name)
    digest = _blob_digest(safe_member_name(name, blobs.where))
    if digest is None and (m := _ID_JSON.fullmatch(name)):
        digest = f"sha256:{m.group(1)}"  # the legacy form names the config by its image id, its sha256
    if digest is not None:
        oci.verify_bytes(data, digest, where)
    return oci.parse_config(data, where)


def _sniff_media_type(blobs: TarBlobs, name: str, oci_form: bool) -> str:
    with blobs.open_member(name) as f:
        head = f.read(4)
    if head.startswith(b"\x1f\x8b"):
        return oci.OCI_LAYER_GZIP if oci_form else oci.DOCKER_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return oci.OCI_LAYER_ZSTD
    return oci.OCI_LAYER_TAR if oci_form else oci.DOCKER_LAYER_TAR


def _digest_of_member(blobs: TarBlobs, name: str) -> str:
    h = oci.hasher("sha256:")
    with blobs.open_member(name) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _docker_layers(blobs: TarBlobs, entry: _Entry, config: ImageConfig) -> tuple[Layer, ...]:
    if len(entry.layers) != len(config.diff_ids):
        raise SourceError(f"{blobs.where}: manifest.json lists {len(entry.layers)} layers, "
                          f"the config {len(config.diff_ids)} diff_ids")
    layers = []
    known_layers: dict[tuple[str, str], Layer] = {}  # a layer listed again is sniffed and hashed once
    for raw_name, diff_id in zip(entry.layers, config.diff_ids, strict=True):
        name = safe_member_name(raw_name, blobs.where)
        if (name, diff_id) in known_layers:
            layers.append(known_layers[name, diff_id])
            continue
        member = blobs.member(name)  # SourceError when missing
        digest = _blob_digest(name)
        media_type = _sniff_media_type(blobs, name, oci_form=digest is not None)
        if digest is None:
            # Legacy: the path does not name the blob. An uncompressed layer's sha256 is its diff_id.
            digest = diff_id if oci.layer_compression(media_type) == "none" else _digest_of_member(blobs, name)
            known = blobs.by_digest.setdefault(digest, name)
            if known != name and blobs.member(known).size != member.size:
                raise SourceError(f"{blobs.where}: {known} and {name} claim the same digest {digest}")
        layers.append(known_layers.setdefault((name, diff_id), Layer(digest, media_type, member.size, diff_id)))
    return tuple(layers)


class DockerArchiveSource(PathSource):
    """``docker save`` output, legacy or OCI-layout form; ``tag`` is "repo:tag" or "@N"."""

    kind = ReferenceKind.DOCKER_ARCHIVE

    @contextmanager
    def open(self) -> Iterator[Image]:
        blobs = TarBlobs(self.path, self.reference)
        if not blobs.has("manifest.json"):
            hint = (f" (it holds an OCI layout: scan oci-archive:{self.path})"
                    if blobs.has("index.json") and blobs.has("oci-layout") else "")
            raise SourceError(f"{self.reference}: no manifest.json, not a docker-archive{hint}")
        candidates = _pick_entries(_entries(blobs), self.tag, self.reference)
        read: dict[str, ImageConfig] = {}  # each distinct config is read, hashed and parsed once
        configs = [read[e.config] if e.config in read else read.setdefault(e.config, _read_config(blobs, e.config))
                   for e in candidates]
        chosen = oci.choose_platform([(oci.config_platform(c), i) for i, c in enumerate(configs)],
                                     self.platform, self.reference)
        layers = _docker_layers(blobs, candidates[chosen], configs[chosen])
        yield Image(self.reference, self.kind, layers, configs[chosen], blobs)


# ---- oci-archive ---------------------------------------------------------------------------------------

class OciArchiveSource(PathSource):
    """An OCI image layout in a tar (``skopeo copy ... oci-archive:FILE[:TAG]``)."""

    kind = ReferenceKind.OCI_ARCHIVE

    @contextmanager
    def open(self) -> Iterator[Image]:
        blobs = TarBlobs(self.path, self.reference)
        if not (blobs.has("oci-layout") and blobs.has("index.json")):
            hint = f" (it holds manifest.json: scan docker-archive:{self.path})" if blobs.has("manifest.json") else ""
            raise SourceError(f"{self.reference}: no oci-layout and index.json, not an OCI layout{hint}")
        oci.check_layout_marker(blobs.read_small("oci-layout"), self.reference)
        selected = oci.select_from_layout(blobs.read_small("index.json"), oci.blob_fetcher(blobs, self.reference),
                                          self.tag, self.platform, self.reference, self.kind)
        check_layer_blobs(blobs, selected.layers)
        yield Image(self.reference, self.kind, selected.layers, selected.config, blobs)
