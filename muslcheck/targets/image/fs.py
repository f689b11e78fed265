"""An image's layers squashed into one tree: nothing is extracted to disk.

A layer that lies uncompressed in a local file is read by random access over a map of it
(``mappedlayer``): its ELF members are parsed in place, their symbols only when needed, and its
digest is checked apart (``ImageRoot.verify``). Any other layer blob is streamed once
(``layerstream``): its sha256 (the descriptor digest) and the sha256 of the uncompressed tar (the
config's diff_id) are checked as it goes by, and every regular file that starts with the ELF magic
is read into memory alone, parsed, and dropped. The tree keeps facts, never content. Memory
therefore grows with the number of entries (a few hundred bytes each) and with the largest ELF
member (capped at MAX_ELF_BYTES), not with layer size.

Layers apply bottom-up as stereoscope's union tree does: ``.wh.NAME`` deletes NAME and
everything under it from lower layers, ``.wh..wh..opq`` empties its directory of lower
layers' content, a later entry replaces an earlier one, and a non-directory replacing a
directory drops the directory's children.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

from muslcheck.elf import ELF_MAGIC, ElfFacts, read_elf
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tree import Entry, Resolved, Unresolvable, resolve_links
from muslcheck.model.errors import MalformedElf
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ArchiveMetadata, ArchiveScan, BufferReader, is_archive_name, scan_archive
from muslcheck.targets.directory import Discovered, add_archive_members
from muslcheck.targets.image.layerstream import LayerStream, compression_of
from muslcheck.targets.image.mapped import BackgroundDigests, MappedLayer, MappedMember
from muslcheck.targets.image.sources.interface import BlobLocation, DigestMismatch, Image, Layer, SourceError
from muslcheck.targets.image.tarreader import TarEntry, TarError, TarReader
from muslcheck.targets.limits import KEEP_NOTHING, MAX_ELF_BYTES, MAX_KEPT_BYTES, Budget, KeepWhole
from muslcheck.targets.reference import ReferenceKind

READ_CHUNK = 1 << 20
MAX_SMALL_FILE = 64 << 20  # files read whole: the loader's path file, package databases
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
    content: MappedMember | None = None  # a mapped layer's ELF member: its symbols are read from it when needed


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

    def __init__(self, nodes: Nodes, layers: int, rejected: list[Skip],
                 unverified: list[tuple[int, Layer, BlobLocation]] | None = None) -> None:
        self.nodes = nodes
        self.layers = layers
        self.rejected = rejected  # members that never entered the tree (names escaping the root)
        self._resolved: dict[str, Resolved | Unresolvable] = {}
        self._unverified = unverified or []  # mapped layers whose digests are still to check
        self._digests: BackgroundDigests | None = None

    def start_verifying(self) -> None:
        """Hash the mapped layers on a thread of their own (start it after forking any worker)."""
        if self._digests is None and self._unverified:
            self._digests = BackgroundDigests([location for _, _, location in self._unverified])

    def verify(self) -> None:
        """Raise ``DigestMismatch`` unless every mapped layer has the digests its image declares."""
        if not self._unverified:
            return
        self.start_verifying()
        assert self._digests is not None
        try:
            found = self._digests.results()
        except OSError as e:
            raise SourceError(f"layer blob unreadable while verifying its digest: {e}") from e
        for (index, layer, _), digest in zip(self._unverified, found, strict=True):
            _check_digests(index, layer, digest, digest)
        self._unverified = []

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
        if not node.facts.symbols_read and node.content is not None:
            return node.content.read(_symbols_only)  # the facts in full, from the mapped layer
        return node.facts

    def read_constructor_calls(self, resolved: Resolved) -> tuple[str, ...]:
        """A mapped layer's file is read again, for its constructors' code only; a streamed layer's file was read
        whole as it went by."""
        node = self.nodes[resolved.path]
        if node.content is not None:
            return node.content.read(_constructors_only).constructor_calls
        return self.read_facts(resolved).constructor_calls

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        node = self.nodes[resolved.path]
        if node.head is None:
            raise OSError(f"{resolved.path}: content not kept")
        return node.head[:limit]

    def list_dir(self, path: str) -> list[str]:
        return sorted(child.rpartition("/")[2] for child in self.nodes.children.get(path, ()))

    def elf_files(self, cache: FactsCache, layers_from: int = 0) -> Discovered:
        """The ELF files of the squashed tree (only those from ``layers_from`` up), and what was skipped.

        Hard links to one file are one file with aliases (as in a directory scan): a thousand links cost one
        report, and an archive behind them is listed once."""
        files: list[ElfFile] = []
        skipped = list(self.rejected)
        archives: list[ArchiveMetadata] = []
        first_path: dict[object, str] = {}  # identity -> the first path that holds it
        aliases: dict[object, list[str]] = {}
        for path in sorted(self.nodes):
            node = self.nodes[path]
            if node.layer < layers_from:
                continue
            if node.kind == "file" and (node.facts is not None or node.problem is not None
                                        or node.archive is not None):
                if node.identity in first_path:
                    aliases.setdefault(node.identity, []).append(path)
                    continue
                first_path[node.identity] = path
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
        if aliases:
            files = [replace(f, aliases=tuple(aliases[f.identity])) if f.identity in aliases else f for f in files]
            skipped = [_with_links(s, aliases.get(self.nodes[s.path].identity, ())) if s.path in self.nodes
                       else s for s in skipped]
        return Discovered(files, sorted(skipped, key=lambda s: s.path), archives)


def _with_links(skip: Skip, links: list[str] | tuple[()]) -> Skip:
    if not links:
        return skip
    return replace(skip, reason=f"{skip.reason} (and {len(links)} hard links to it: {', '.join(links[:3])}"
                                f"{', ...' if len(links) > 3 else ''})")


def read_image(image: Image, progress: Progress = no_progress, *, keep: KeepWhole = KEEP_NOTHING,
               defer_digests: bool = False) -> ImageRoot:
    """Read every layer of ``image`` into one squashed tree: a layer that lies uncompressed in a local file
    by random access over a map of it, any other as a stream.

    A streamed layer's digests are checked as it goes by. A mapped layer's are computed apart: here, unless
    ``defer_digests``; then the caller calls ``start_verifying()`` and, before it trusts the tree, ``verify()``.
    A layer listed again (the same digest) is not read again: its entries, as first read, are applied again.
    """
    unverified: list[tuple[int, Layer, BlobLocation]] = []
    nodes = Nodes()
    nodes["/"] = Node("dir", -1, ("dir", "/"))
    rejected: list[Skip] = []
    state = _Reading(nodes, rejected, _Keeping(keep, Budget(MAX_KEPT_BYTES)), image.reference)
    listed = Counter(layer.digest for layer in image.layers)
    recorded: dict[str, list[tuple[TarEntry, Node | None]]] = {}
    for index, layer in enumerate(image.layers):
        progress("reading layers", index, len(image.layers))
        if layer.digest in recorded:
            state.replay(recorded[layer.digest], index)
            continue
        record = recorded.setdefault(layer.digest, []) if listed[layer.digest] > 1 else None
        what = image.reference if image.kind == ReferenceKind.ROOTFS else f"layer {index + 1} ({layer.digest})"
        location = image.blobs.locate_blob(layer.digest)
        try:
            mapped = MappedLayer.of(location)
            if mapped is not None and location is not None and compression_of(
                layer.media_type, bytes(mapped.view(0, 4))
            ) is None:
                tar = TarReader(cast(BinaryIO, mapped.reader()), location.size, where=what)
                state.apply_layer(tar, index, mapped, record)  # random access: content is skipped
                unverified.append((index, layer, location))  # one stream: the blob is the tar
                continue
            with image.blobs.open_blob(layer.digest) as raw, LayerStream(raw, layer.media_type) as stream:
                # A stream that seeks forward: content is skipped, not copied. (Held here: a buffered reader that
                # is collected closes the stream under it.)
                buffered = io.BufferedReader(stream)
                state.apply_layer(TarReader(cast(BinaryIO, buffered), where=what), index, None, record)
                stream.drain()
                digests = stream.digests()
        except (TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, SourceError):
                raise
            if isinstance(e, TarError) and str(e).startswith(what):
                raise SourceError(str(e)) from e
            raise SourceError(f"{what} is truncated or corrupt: {e}") from e
        _check_digests(index, layer, *digests)
    progress("reading layers", len(image.layers), len(image.layers))
    root = ImageRoot(nodes, len(image.layers), rejected, unverified)
    if not defer_digests:
        root.start_verifying()
        root.verify()
    return root


def _check_digests(index: int, layer: Layer, blob_digest: str, tar_digest: str) -> None:
    if blob_digest != layer.digest:
        raise DigestMismatch(f"layer {index + 1}: content hashes to {blob_digest}, not {layer.digest}")
    if layer.diff_id is not None and tar_digest != layer.diff_id:
        raise DigestMismatch(f"layer {index + 1}: uncompressed content hashes to {tar_digest}, "
                             f"not the config's diff_id {layer.diff_id}")


@dataclass(frozen=True)
class _Keeping:
    """What the image reader keeps whole, and the one budget for all of it (archives' metadata included)."""

    keep: KeepWhole
    budget: Budget


class _Reading:
    """The tree being built, and what every layer applied to it shares: rejections, the budget, the entry count."""

    def __init__(self, nodes: Nodes, rejected: list[Skip], kept: _Keeping, reference: str) -> None:
        self.nodes, self.rejected, self.kept, self.reference = nodes, rejected, kept, reference
        self.entries = 0

    def count(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise SourceError(f"{self.reference}: more than {MAX_ENTRIES} entries in its layers")

    def apply_layer(self, tar: TarReader, index: int, mapped: MappedLayer | None,
                    record: list[tuple[TarEntry, Node | None]] | None) -> None:
        """Apply every entry of one layer's tar (``mapped``: read from that map); ``record`` keeps them."""
        for entry in tar:
            self.count()
            made = _apply(self, entry, tar, index, mapped, None)
            if record is not None:
                record.append((entry, made))

    def replay(self, record: list[tuple[TarEntry, Node | None]], index: int) -> None:
        """Apply a layer read before again, as layer ``index``: nothing is read, nothing rejected twice."""
        again = _Reading(self.nodes, [], self.kept, self.reference)
        again.entries = self.entries
        for entry, made in record:
            again.count()
            _apply(again, entry, None, index, None, made)
        self.entries = again.entries


def _apply(state: _Reading, member: TarEntry, tar: TarReader | None, layer: int, mapped: MappedLayer | None,
           prepared: Node | None) -> Node | None:
    """Apply one entry; the node of a regular file it made (``prepared``: made before, from the same entry)."""
    nodes, rejected = state.nodes, state.rejected
    path = _clean(member.name)
    if path is None:
        rejected.append(Skip("/" + member.name.lstrip("/"), "layer entry name leads out of the root: ignored"))
        return None
    if path == "/" and not member.isdir():
        rejected.append(Skip("/", f"layer {layer + 1} replaces the root directory with a {_kind_name(member)}: "
                                  "ignored (the tree below it is judged as it was)"))
        return None
    parent, _, base = path.rpartition("/")
    parent = parent or "/"
    if base == OPAQUE:
        removed = _remove_below(nodes, parent, layer, keep_self=True)
        if parent == "/" and removed:
            rejected.append(Skip("/", f"layer {layer + 1} empties the root directory (an opaque whiteout): "
                                      f"{removed} entries of the layers below are gone"))
        return None
    if base.startswith(WHITEOUT):
        if base != WHITEOUT:  # ".wh." alone names nothing
            _remove_below(nodes, parent.rstrip("/") + "/" + base[len(WHITEOUT):], layer, keep_self=False)
        return None
    _make_parents(nodes, parent, layer)
    existing = nodes.get(path)
    if existing is not None and existing.kind == "dir" and not member.isdir():
        _remove_below(nodes, path, layer + 1, keep_self=False)
    if member.isdir():
        if existing is None or existing.kind != "dir":
            nodes[path] = Node("dir", layer, ("dir", path))
        return None
    if member.issym():
        nodes[path] = Node("symlink", layer, ("link", layer, path), link_target=member.linkname)
    elif member.islnk():
        target = _clean(member.linkname)
        source = nodes.get(target) if target else None
        if source is None or source.kind != "file":
            rejected.append(Skip(path, f"hard link to {member.linkname}, which is not a file in the image"))
            if path in nodes:
                del nodes[path]
            return None
        nodes[path] = Node("file", layer, source.identity, facts=source.facts, problem=source.problem,
                           head=source.head, archive=source.archive, content=source.content)
    elif member.isreg():
        if prepared is not None:
            nodes[path] = replace(prepared, layer=layer)
            return prepared
        assert tar is not None
        made = nodes[path] = _regular_file(path, member, tar, layer, state.kept, rejected, mapped)
        return made
    else:
        nodes[path] = Node("other", layer, ("other", layer, path))
    return None


def _kind_name(member: TarEntry) -> str:
    return {"symlink": "symbolic link", "hardlink": "hard link", "file": "file"}.get(member.kind, "special file")


def _regular_file(path: str, member: TarEntry, tar: TarReader, layer: int, kept: _Keeping,
                  rejected: list[Skip], mapped: MappedLayer | None) -> Node:
    node = Node("file", layer, ("file", layer, path))
    if member.sparse:
        return _sparse_file(node, path, member, tar)
    small = (_kept_whole(path) and member.size <= MAX_SMALL_FILE) or kept.keep(path, member.size)
    if small and not kept.budget.take(member.size):
        rejected.append(Skip(path, f"more than {MAX_KEPT_BYTES} bytes of metadata files in the image: not read",
                             unchecked=False))
        small = False
    if member.size < len(ELF_MAGIC) and not small:
        return node
    if mapped is not None:
        return _mapped_file(node, path, member, mapped, small, kept)
    stream = tar.content(member)
    head = stream.read(len(ELF_MAGIC))
    if small:
        node.head = head + stream.read(MAX_SMALL_FILE)
    archive = _read_as(node, path, head, member.size)
    if archive is None:
        return node
    data = _read_whole(path, head, member.size, cast(io.BufferedReader, stream))
    if archive:
        node.archive = scan_archive(cast(BinaryIO, BufferReader(data)), path, kept.keep, kept.budget)
        return node
    try:
        node.facts = read_elf(data)
    except MalformedElf as e:
        node.problem = f"malformed ELF: {e}"
    return node


def _sparse_file(node: Node, path: str, member: TarEntry, tar: TarReader) -> Node:
    """A sparse member is never read: its map is not kept, and its size is a claim its stored bytes do not back.
    One that starts with the ELF magic (or an archive's) is a finding; any other is a file with no content."""
    if member.head_offset is None or member.stored < len(ELF_MAGIC):
        return node
    head = tar.read_at(member.head_offset, len(ELF_MAGIC))
    if _read_as(node, path, head, member.size) is not None:
        node.problem = f"sparse file of {member.size} bytes that looks like ELF code or an archive: not read"
    return node


def _read_as(node: Node, path: str, head: bytes, size: int) -> bool | None:
    """Whether the file is read as an archive (True) or an ELF file (False), from its first bytes; None when
    it is neither, or too large to read (then ``node.problem`` says so)."""
    archive = is_archive_name(path) and head.startswith(b"PK")
    if head != ELF_MAGIC and not archive:
        return None
    if size > MAX_ELF_BYTES:
        what = "archive" if archive else "ELF file"
        node.problem = f"{what} of {size} bytes, above the {MAX_ELF_BYTES}-byte limit: not read"
        return None
    return archive


def _mapped_file(node: Node, path: str, member: TarEntry, mapped: MappedLayer, small: bool,
                 kept: _Keeping) -> Node:
    """A regular file of a mapped layer: read in place (and only an ELF file's headers for now); the pages
    read are let go afterwards."""
    content = mapped.view(member.offset_data, member.size)
    if len(content) < member.size:
        raise EOFError(f"{path}: the layer ends inside this file")
    try:
        if small:
            node.head = bytes(content)
        archive = _read_as(node, path, bytes(content[: len(ELF_MAGIC)]), member.size)
        if archive is None:
            return node
        if archive:
            node.archive = scan_archive(cast(BinaryIO, BufferReader(content)), path, kept.keep, kept.budget)
        else:
            node.facts = read_elf(content, symbols=False)
            node.content = MappedMember(mapped, member.offset_data, member.size)
    except MalformedElf as e:
        node.problem = f"malformed ELF: {e}"
    finally:
        mapped.forget(member.offset_data, member.size)
    return node


def _symbols_only(data: memoryview) -> ElfFacts:
    return read_elf(data, constructors=False)  # what its init code calls: read if a lazy dlopen needs it


def _constructors_only(data: memoryview) -> ElfFacts:
    return read_elf(data, symbols=False, constructors=True)


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
    (and, up to a smaller size, the files the caller's ``KeepWhole`` asks for)."""
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


def _remove_below(nodes: Nodes, path: str, before_layer: int, *, keep_self: bool) -> int:
    """Drop ``path`` (unless keep_self; never the root) and everything under it from layers below
    ``before_layer``; how many entries went."""
    doomed = [p for p in nodes.descendants(path) if nodes[p].layer < before_layer]
    if not keep_self and path != "/" and path in nodes and nodes[path].layer < before_layer:
        doomed.append(path)
    removed = 0
    for p in doomed:
        if p in nodes:
            del nodes[p]
            removed += 1
    return removed
