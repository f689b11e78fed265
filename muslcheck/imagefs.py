"""An image's layers squashed into one tree, read as streams: nothing is extracted to disk.

Each layer blob is streamed once: its sha256 (the descriptor digest) and the sha256 of the
uncompressed tar (the config's diff_id) are checked as it goes by. Every regular file that
starts with the ELF magic is read into memory alone, parsed, and dropped: the tree keeps
facts, never content. Memory therefore grows with the number of entries (a few hundred
bytes each) and with the largest ELF member (capped at MAX_ELF_BYTES), not with layer size.

Layers apply bottom-up as stereoscope's union tree does: ``.wh.NAME`` deletes NAME and
everything under it from lower layers, ``.wh..wh..opq`` empties its directory of lower
layers' content, a later entry replaces an earlier one, and a non-directory replacing a
directory drops the directory's children.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, cast

from muslcheck.apps.model import METADATA_MAX_BYTES, is_metadata_path
from muslcheck.archives import ArchiveMetadata, ArchiveScan, BufferReader, is_archive_name, scan_archive
from muslcheck.discover import Discovered, ElfFile, FactsCache, Progress, add_archive_members, no_progress
from muslcheck.elf import ELF_MAGIC, ElfFacts, read_elf
from muslcheck.errors import MalformedElf
from muslcheck.report import Skip
from muslcheck.rootfs import Entry, Resolved, Unresolvable, resolve_links
from muslcheck.sources.interface import DigestMismatch, Image, SourceError

READ_CHUNK = 1 << 20
MAX_ELF_BYTES = 1 << 30  # larger ELF members are skipped with a finding, never read
MAX_SMALL_FILE = 64 << 20  # files read whole: the loader's path file, package databases
MAX_KEPT_BYTES = 256 << 20  # all files read whole, together: past this, more are not kept (a finding)
MAX_ENTRIES = 2_000_000  # entries across all layers; past this the image is refused
PACKAGE_DATABASES = frozenset({"/var/lib/dpkg/status", "/lib/apk/db/installed", "/var/lib/rpm/rpmdb.sqlite"})
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass
class Node:
    kind: str  # "file", "dir", "symlink", "other" (device, FIFO: never read)
    layer: int
    identity: object
    link_target: str | None = None
    facts: ElfFacts | None = None
    problem: str | None = None  # why an ELF-looking file could not be read
    head: bytes | None = None  # content of a file read whole (_kept_whole)
    archive: ArchiveScan | None = None  # ELF files inside a JAR, WAR, wheel...


class Nodes(dict[str, Node]):
    """path -> node, with each directory's children indexed, so a whiteout touches only what it deletes."""

    def __init__(self) -> None:
        super().__init__()
        self.children: dict[str, set[str]] = {}

    def __setitem__(self, path: str, node: Node) -> None:
        if path != "/":
            self.children.setdefault(path.rpartition("/")[0] or "/", set()).add(path)
        super().__setitem__(path, node)

    def __delitem__(self, path: str) -> None:
        super().__delitem__(path)
        self.children.get(path.rpartition("/")[0] or "/", set()).discard(path)

    def descendants(self, path: str) -> list[str]:
        found, stack = [], [path]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                found.append(child)
                stack.append(child)
        return found


class ImageRoot:
    """The squashed tree of an image, with ELF facts for its ELF files."""

    def __init__(self, nodes: Nodes, layers: int, rejected: list[Skip]) -> None:
        self.nodes = nodes
        self.layers = layers
        self.rejected = rejected  # members that never entered the tree (names escaping the root)
        self._resolved: dict[str, Resolved | Unresolvable] = {}

    def resolve(self, path: str) -> Resolved | Unresolvable:
        found = self._resolved.get(path)
        if found is None:
            found = self._resolved[path] = resolve_links(path, self._entry)
        return found

    def _entry(self, path: str) -> Entry | str:
        node = self.nodes.get(path)
        if node is None:
            return "no such file"
        return Entry(node.kind == "file", node.kind == "dir", node.link_target, node.identity)

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        node = self.nodes[resolved.path]
        if node.facts is None:
            raise MalformedElf(node.problem or "not an ELF file")
        return node.facts

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        node = self.nodes[resolved.path]
        if node.head is None:
            raise OSError(f"{resolved.path}: content not kept")
        return node.head[:limit]

    def list_dir(self, path: str) -> list[str]:
        return sorted(child.rpartition("/")[2] for child in self.nodes.children.get(path, ()))

    def elf_files(self, cache: FactsCache, layers_from: int = 0) -> Discovered:
        """The ELF files of the squashed tree (only those from ``layers_from`` up), and what was skipped."""
        files: list[ElfFile] = []
        skipped = list(self.rejected)
        archives: list[ArchiveMetadata] = []
        for path in sorted(self.nodes):
            node = self.nodes[path]
            if node.layer < layers_from:
                continue
            if node.archive is not None:
                members: dict[object, ElfFile] = {}
                add_archive_members(node.archive, members, skipped, archives, cache)
                files.extend(members.values())
            if node.facts is not None:
                cache.remember(node.identity, node.facts)
                files.append(ElfFile(path, node.identity, node.facts, ()))
            elif node.problem is not None:
                skipped.append(Skip(path, node.problem))
            elif node.kind == "symlink":
                found = self.resolve(path)
                if isinstance(found, Unresolvable):
                    skipped.append(Skip(path, f"broken link: {found.reason}", unchecked=False))
        return Discovered(files, sorted(skipped, key=lambda s: s.path), archives)


def read_image(image: Image, progress: Progress = no_progress) -> ImageRoot:
    """Stream every layer of ``image`` into one squashed tree."""
    nodes = Nodes()
    nodes["/"] = Node("dir", -1, ("dir", "/"))
    rejected: list[Skip] = []
    kept = _KeptBudget(MAX_KEPT_BYTES)
    entries = 0
    for index, layer in enumerate(image.layers):
        progress("reading layers", index, len(image.layers))
        with image.blobs.open_blob(layer.digest) as raw:
            blob = _Hashing(raw)
            tar_stream = _Hashing(_decompressed(cast(BinaryIO, blob), layer.media_type))
            try:
                with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
                    for member in tar:
                        entries += 1
                        if entries > MAX_ENTRIES:
                            raise SourceError(f"{image.reference}: more than {MAX_ENTRIES} entries in its layers")
                        _apply(nodes, member, tar, index, rejected, kept)
                tar_stream.drain()
                blob.drain()
            except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as e:
                if isinstance(e, SourceError):
                    raise
                raise SourceError(f"layer {index + 1} ({layer.digest}) is truncated or corrupt: {e}") from e
        if blob.digest() != layer.digest:
            raise DigestMismatch(f"layer {index + 1}: content hashes to {blob.digest()}, not {layer.digest}")
        if layer.diff_id is not None and tar_stream.digest() != layer.diff_id:
            raise DigestMismatch(f"layer {index + 1}: uncompressed content hashes to {tar_stream.digest()}, "
                                 f"not the config's diff_id {layer.diff_id}")
    progress("reading layers", len(image.layers), len(image.layers))
    return ImageRoot(nodes, len(image.layers), rejected)


class _KeptBudget:
    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


def _apply(nodes: Nodes, member: tarfile.TarInfo, tar: tarfile.TarFile, layer: int,
           rejected: list[Skip], kept: _KeptBudget) -> None:
    path = _clean(member.name)
    if path is None:
        rejected.append(Skip("/" + member.name.lstrip("/"), "layer entry name leads out of the root: ignored"))
        return
    parent, _, base = path.rpartition("/")
    parent = parent or "/"
    if base == OPAQUE:
        _remove_below(nodes, parent, layer, keep_self=True)
        return
    if base.startswith(WHITEOUT):
        if base != WHITEOUT:  # ".wh." alone names nothing
            _remove_below(nodes, parent.rstrip("/") + "/" + base[len(WHITEOUT):], layer, keep_self=False)
        return
    _make_parents(nodes, parent, layer)
    existing = nodes.get(path)
    if existing is not None and existing.kind == "dir" and not member.isdir():
        _remove_below(nodes, path, layer + 1, keep_self=False)
    if member.isdir():
        if existing is None or existing.kind != "dir":
            nodes[path] = Node("dir", layer, ("dir", path))
        return
    if member.issym():
        nodes[path] = Node("symlink", layer, ("link", layer, path), link_target=member.linkname)
    elif member.islnk():
        target = _clean(member.linkname)
        source = nodes.get(target) if target else None
        if source is None or source.kind != "file":
            rejected.append(Skip(path, f"hard link to {member.linkname}, which is not a file in the image"))
            if path in nodes:
                del nodes[path]
            return
        nodes[path] = Node("file", layer, source.identity, facts=source.facts, problem=source.problem,
                           head=source.head, archive=source.archive)
    elif member.isreg():
        nodes[path] = _regular_file(path, member, tar, layer, kept, rejected)
    else:
        nodes[path] = Node("other", layer, ("other", layer, path))


def _regular_file(path: str, member: tarfile.TarInfo, tar: tarfile.TarFile, layer: int, kept: _KeptBudget,
                  rejected: list[Skip]) -> Node:
    node = Node("file", layer, ("file", layer, path))
    small = (_kept_whole(path) and member.size <= MAX_SMALL_FILE) or (
        is_metadata_path(path) and member.size <= METADATA_MAX_BYTES)
    if small and not kept.take(member.size):
        rejected.append(Skip(path, f"more than {MAX_KEPT_BYTES} bytes of metadata files in the image: not read",
                             unchecked=False))
        small = False
    if member.size < len(ELF_MAGIC) and not small:
        return node
    stream = tar.extractfile(member)
    if stream is None:
        return node
    head = stream.read(len(ELF_MAGIC))
    if small:
        node.head = head + stream.read(MAX_SMALL_FILE)
    archive = is_archive_name(path) and head.startswith(b"PK")
    if head != ELF_MAGIC and not archive:
        return node
    if member.size > MAX_ELF_BYTES:
        what = "archive" if archive else "ELF file"
        node.problem = f"{what} of {member.size} bytes, above the {MAX_ELF_BYTES}-byte limit: not read"
        return node
    data = _read_whole(path, head, member.size, cast(io.BufferedReader, stream))
    if archive:
        node.archive = scan_archive(cast(BinaryIO, BufferReader(data)), path)
        return node
    try:
        node.facts = read_elf(data)
    except MalformedElf as e:
        node.problem = f"malformed ELF: {e}"
    return node


def _read_whole(path: str, head: bytes, size: int, reader: io.BufferedReader) -> bytearray:
    """The member in one buffer filled in place: peak memory is the largest member read."""
    data = bytearray(size)
    view = memoryview(data)
    view[: len(head)] = head
    filled = len(head)
    while filled < size and (n := reader.readinto(view[filled : filled + READ_CHUNK])):
        filled += n  # in chunks: one read of the whole member would build a second copy on the way
    if filled < size:
        raise EOFError(f"{path}: the layer ends inside this file")
    return data


def _kept_whole(path: str) -> bool:
    """Files the scan reads whole: the loader's path file, the mark of Alpine, package databases
    (and, up to a smaller size, the metadata files of ``is_metadata_path``)."""
    return (
        (path.startswith("/etc/ld-musl-") and path.endswith(".path"))
        or path == "/etc/alpine-release"
        or path in PACKAGE_DATABASES
        or (path.startswith("/var/lib/dpkg/info/") and path.endswith(".list"))
        or path.startswith("/var/lib/dpkg/status.d/")
    )


def _clean(name: str) -> str | None:
    """The absolute in-image path of a tar member name, or None when it climbs out of the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/" + "/".join(parts)


def _make_parents(nodes: Nodes, directory: str, layer: int) -> None:
    missing: list[str] = []
    while directory not in nodes or nodes[directory].kind != "dir":
        missing.append(directory)
        if directory == "/":
            break
        directory = directory.rpartition("/")[0] or "/"
    for path in missing:
        nodes[path] = Node("dir", layer, ("dir", path))


def _remove_below(nodes: Nodes, path: str, before_layer: int, *, keep_self: bool) -> None:
    """Drop ``path`` (unless keep_self; never the root) and everything under it from layers below ``before_layer``."""
    doomed = [p for p in nodes.descendants(path) if nodes[p].layer < before_layer]
    if not keep_self and path != "/" and path in nodes and nodes[path].layer < before_layer:
        doomed.append(path)
    for p in doomed:
        if p in nodes:
            del nodes[p]


class _Hashing(io.RawIOBase):
    """A read-through stream that hashes what passes, and can drain the rest."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.sha.update(data)
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _decompressed(blob: BinaryIO, media_type: str) -> BinaryIO:
    """The layer's tar stream: gzip and zstd by media type or by magic bytes, else as is."""
    peek = _Peekable(blob)
    magic = peek.peek(4)
    if "zstd" in media_type or magic == b"\x28\xb5\x2f\xfd":
        import zstandard  # a well-kept binding; imported only for zstd layers

        reader = zstandard.ZstdDecompressor().stream_reader(cast(BinaryIO, peek), read_across_frames=True)
        return cast(BinaryIO, reader)
    if "gzip" in media_type or magic[:2] == b"\x1f\x8b":
        return cast(BinaryIO, gzip.GzipFile(fileobj=peek, mode="rb"))
    return cast(BinaryIO, peek)


class _Peekable(io.RawIOBase):
    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buffer) < n:
            more = self.inner.read(n - len(self.buffer))
            if not more:
                break
            self.buffer += more
        return self.buffer[:n]

    def read(self, size: int = -1) -> bytes:
        if self.buffer:
            if size < 0:
                data, self.buffer = self.buffer + self.inner.read(), b""
                return data
            data, self.buffer = self.buffer[:size], self.buffer[size:]
            return data
        return self.inner.read(size)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

