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

A layer read once is recorded (``LayerRecord``: its entries, and each regular file's prepared node) and, given
``LayerRecords`` (the report cache's ``cache.layers.StoredLayers``), kept under its digests: a later scan of any image
holding that layer applies the record the way a live read applies the tar, and reads the blob only to check it
(``verify.verify_blob``; a mapped one as a read map does).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import BinaryIO, Protocol, cast

from muslcheck.elf import ELF_MAGIC, ElfFacts, read_elf
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tree import Entry, Resolved, Unresolvable, resolve_links
from muslcheck.model.errors import MalformedElf
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.targets.archives import (
    ArchiveElf,
    ArchiveMetadata,
    ArchiveScan,
    BufferReader,
    is_archive_name,
    scan_archive,
)
from muslcheck.targets.directory import Discovered, add_archive_members
from muslcheck.targets.image.layerstream import LayerStream, compression_of
from muslcheck.targets.image.mapped import BackgroundDigests, MappedLayer, MappedMember
from muslcheck.targets.image.sources.interface import BlobLocation, DigestMismatch, Image, Layer, SourceError
from muslcheck.targets.image.tarreader import TarEntry, TarError, TarReader
from muslcheck.targets.image.verify import VerifiedMemo, same_file, stat_of, verify_blob
from muslcheck.targets.limits import KEEP_NOTHING, MAX_ELF_BYTES, MAX_KEPT_BYTES, Budget, KeepWhole
from muslcheck.targets.reference import ReferenceKind

READ_CHUNK = 1 << 20
MAX_SMALL_FILE = 64 << 20  # files read whole: the loader's path file, package databases
MAX_ENTRIES = 2_000_000  # entries across all layers; past this the image is refused
MAX_RESOLVED = 1 << 17  # paths whose resolution is remembered (about 30 MB at most); past it, resolved again
PACKAGE_DATABASES = frozenset({"/var/lib/dpkg/status", "/lib/apk/db/installed", "/var/lib/rpm/rpmdb.sqlite"})
WHITEOUT = ".wh."
_MODES = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "other": stat.S_IFIFO}
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
    symbols: bytes | None = None  # a recorded file's facts in full, decoded when needed (``LayerRecords.full_facts``)


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
                 unverified: list[tuple[int, Layer, BlobLocation]] | None = None,
                 after_verifying: _AfterVerifying | None = None,
                 full_facts: Callable[[bytes], ElfFacts] | None = None) -> None:
        self.nodes = nodes
        self.layers = layers
        self.rejected = rejected  # members that never entered the tree (names escaping the root)
        self._resolved: dict[str, Resolved | Unresolvable] = {}
        self._unverified = unverified or []  # mapped layers whose digests are still to check
        self._digests: BackgroundDigests | None = None
        self._after = after_verifying
        self._full_facts = full_facts

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
        if self._after is not None:
            self._after.done()
            self._after = None

    def resolve(self, path: str) -> Resolved | Unresolvable:
        found = self._resolved.get(path)
        if found is None:
            found = resolve_links(path, self._entry)
            if len(self._resolved) < MAX_RESOLVED:  # bounded: a load searches every missing name in each directory
                self._resolved[path] = found
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
        if not node.facts.symbols_read and node.symbols is not None and self._full_facts is not None:
            return self._full_facts(node.symbols)  # the facts in full, from the layer's record
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

    def manifest(self, layer_digests: Sequence[str]) -> dict[str, str]:
        """Every path of the tree -> its signature, as a directory's manifest has them (``cache.directory_manifest``:
        the file type's st_mode first): what a rescan compares. A node is named by the digest of the layer that
        made it (for a hard link, the layer and path of the file it links to) and its link target, so a path is
        unchanged exactly when the same layer content provides it."""
        def layer(index: object) -> str:
            return layer_digests[index] if isinstance(index, int) and 0 <= index < len(layer_digests) else "-"

        signatures = {}
        for path, node in self.nodes.items():
            identity = node.identity
            source = f"{layer(identity[1])} {identity[2]}" if isinstance(identity, tuple) and len(identity) == 3 \
                else ""
            signatures[path] = f"{_MODES[node.kind]} {source} {node.link_target or ''}"
        return signatures

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
               defer_digests: bool = False, records: LayerRecords | None = None,
               marks: frozenset[str] | None = None) -> ImageRoot:
    """Read every layer of ``image`` into one squashed tree: a layer that lies uncompressed in a local file
    by random access over a map of it, any other as a stream.

    A streamed layer's digests are checked as it goes by. A mapped layer's are computed apart: here, unless
    ``defer_digests``; then the caller calls ``start_verifying()`` and, before it trusts the tree, ``verify()``.
    A layer listed again (the same digest) is not read again: its entries, as first read, are applied again.
    With ``records``, a layer recorded by an earlier scan is applied from its record (its blob only checked), and
    each layer read is recorded there once its digests are checked. ``marks``: looked for in each ELF file's string
    table (``ElfFacts.dynstr_marks``).
    """
    unverified: list[tuple[int, Layer, BlobLocation]] = []
    nodes = Nodes()
    nodes["/"] = Node("dir", -1, ("dir", "/"))
    rejected: list[Skip] = []
    state = _Reading(nodes, rejected, _Keeping(keep, Budget(MAX_KEPT_BYTES), marks), image.reference)
    listed = Counter(layer.digest for layer in image.layers)
    recorded: dict[str, list[tuple[TarEntry, Node | None]]] = {}
    after = _AfterVerifying(records) if records is not None else None
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
                key = layer_record_key(layer, keep, marks, mapped=True) if after is not None else None
                stored = after.records.load(key) if after is not None and key is not None else None
                if stored is not None and state.apply_record(stored, index, mapped, location.size, record):
                    assert after is not None
                    if not after.known(index, layer, location):
                        unverified.append((index, layer, location))  # hashed as a read map is
                    continue
                recorder = _Recorder() if key is not None else None
                tar = TarReader(cast(BinaryIO, mapped.reader()), location.size, where=what)
                state.apply_layer(tar, index, mapped, record, recorder)  # random access: content is skipped
                unverified.append((index, layer, location))  # one stream: the blob is the tar
                if after is not None:
                    after.hashing(location, layer.digest)
                    if key is not None and recorder is not None:
                        after.pending.append((key, recorder.record()))  # kept once its digest is checked
                continue
            key = layer_record_key(layer, keep, marks, mapped=False) if after is not None else None
            # A local blob is hashed while its record decodes (a swapped blob fails as an uncached read does).
            check = (partial(verify_blob, index, layer, location, after.records.verified)
                     if after is not None and location is not None and image.kind != ReferenceKind.ROOTFS else None)
            stored = after.records.load(key, check) if after is not None and key is not None else None
            if stored is not None and state.fits(stored, None, None):
                state.apply_record(stored, index, None, None, record)
                continue
            recorder = _Recorder() if key is not None else None
            before = stat_of(location) if after is not None and location is not None else None
            with image.blobs.open_blob(layer.digest) as raw, LayerStream(raw, layer.media_type) as stream:
                # A stream that seeks forward: content is skipped, not copied. (Held here: a buffered reader that
                # is collected closes the stream under it.)
                buffered = io.BufferedReader(stream)
                state.apply_layer(TarReader(cast(BinaryIO, buffered), where=what), index, None, record, recorder)
                stream.drain()
                digests = stream.digests()
        except (TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, SourceError):
                raise
            if isinstance(e, TarError) and str(e).startswith(what):
                raise SourceError(str(e)) from e
            raise SourceError(f"{what} is truncated or corrupt: {e}") from e
        _check_digests(index, layer, *digests)
        if after is not None:
            if location is not None and before is not None and same_file(before, stat_of(location)):
                after.records.verified.remember(layer.digest, location, before)
            if key is not None and recorder is not None:
                after.records.save(key, recorder.record())
    progress("reading layers", len(image.layers), len(image.layers))
    root = ImageRoot(nodes, len(image.layers), rejected, unverified, after,
                     records.full_facts if records is not None else None)
    if not defer_digests:
        root.start_verifying()
        root.verify()
    return root


RECORD_VERSION = 2  # bump when what a record holds, or how it is applied, changes


@dataclass(frozen=True)
class RecordedMetadata:
    """An archive's kept metadata files (``ArchiveMetadata``), as a record holds them."""

    location: str
    names: tuple[str, ...]
    contents: tuple[bytes, ...]


@dataclass(frozen=True)
class RecordedArchive:
    """What ``scan_archive`` found in a JAR, WAR or wheel of the layer."""

    elves: tuple[ArchiveElf, ...]
    skipped: tuple[Skip, ...]
    archives: tuple[RecordedMetadata, ...]


@dataclass(frozen=True)
class RecordedFile:
    """A regular file's node as the layer's read prepared it."""

    facts: ElfFacts | None
    problem: str | None
    head: bytes | None  # a file kept whole
    archive: RecordedArchive | None
    member: tuple[int, int] | None  # a mapped layer's ELF file: (offset, size) of its bytes in the blob
    takes: tuple[tuple[int, bool], ...]  # what it asked of the image's metadata budget (bytes, granted), in order
    rejected: tuple[Skip, ...]  # what its read added to the image's rejections (over the budget)
    # A streamed layer's ELF file as kept: ``facts`` its headers, and this its facts in full, encoded by the store
    # (decoded only for the files a scan judges again). None: ``facts`` are what the read made.
    symbols: bytes | None = None


@dataclass(frozen=True)
class RecordedEntry:
    """One tar entry, as much of it as applying it needs."""

    name: str
    kind: str  # TarEntry.kind
    linkname: str
    file: int  # the index of its RecordedFile; -1: no regular file was made of it


@dataclass(frozen=True)
class LayerRecord:
    """A layer as read: every entry in tar order, and the regular files its read made."""

    entries: tuple[RecordedEntry, ...]
    files: tuple[RecordedFile, ...]


class LayerRecords(Protocol):
    """Layer records kept between scans under ``layer_record_key`` (``cache.layers.StoredLayers``), and the blobs
    hashed before (a facts hit still checks its blob)."""

    @property
    def verified(self) -> VerifiedMemo: ...

    def full_facts(self, symbols: bytes) -> ElfFacts:
        """A kept file's facts in full, from its record's ``symbols``; ``SourceError`` if they do not decode."""
        ...

    def load(self, key: str, meanwhile: Callable[[], object] | None = None) -> LayerRecord | None:
        """The record under ``key``; when there is one, ``meanwhile`` runs while it decodes (its exception
        raised)."""
        ...

    def save(self, key: str, record: LayerRecord) -> None: ...


def layer_record_key(layer: Layer, keep: KeepWhole, marks: frozenset[str] | None, *, mapped: bool) -> str | None:
    """What a layer's record depends on: the blob (its digest, and the diff_id it was checked against), how it is
    read (a mapped layer's record points into the blob; a streamed one's has the symbols), what is kept whole, and
    the marks looked for in the string tables.
    None when ``keep`` has no stable name (``keep_key``): then the layer is not recorded."""
    kept = keep_key(keep)
    if kept is None:
        return None
    return json.dumps({"record": RECORD_VERSION, "digest": layer.digest, "diff_id": layer.diff_id,
                       "media_type": layer.media_type, "read": "mapped" if mapped else "streamed",
                       "keep": kept, "marks": None if marks is None else sorted(marks)}, sort_keys=True)


def keep_key(keep: KeepWhole) -> str | None:
    """A ``KeepWhole`` policy by name: the module-level name of its predicate in muslcheck's own code (which the
    store's salt covers: the same name in the same code is the same predicate), and its size bound. None for any
    other predicate (a lambda, a closure no module names, a caller's function): no name stands for what it does."""
    wanted = keep.wanted
    module = sys.modules.get(getattr(wanted, "__module__", None) or "")
    if module is None or not module.__name__.startswith("muslcheck."):
        return None
    names = sorted(name for name, value in vars(module).items() if value is wanted)
    if not names:
        return None
    return f"{module.__name__}.{names[0]} {keep.max_bytes}"


@dataclass
class _AfterVerifying:
    """What waits for a mapped layer's digests: its record to keep, and the memo of blobs hashed."""

    records: LayerRecords
    pending: list[tuple[str, LayerRecord]] = field(default_factory=list)
    hashed: list[tuple[BlobLocation, str, os.stat_result]] = field(default_factory=list)

    def known(self, index: int, layer: Layer, location: BlobLocation) -> bool:
        """Whether a mapped layer applied from its record needs no hash (its file unchanged since one); else it is
        hashed as a read one is."""
        before = stat_of(location)
        if layer.size is not None and location.size != layer.size:
            return False  # the hash fails it as it fails a read map
        if before is not None and self.records.verified.known(layer.digest, location, before):
            return True
        self.hashing(location, layer.digest)
        return False

    def hashing(self, location: BlobLocation, digest: str) -> None:
        """The blob is to be hashed: remembered as hashed if its file is unchanged once its digest checks."""
        before = stat_of(location)
        if before is not None:
            self.hashed.append((location, digest, before))

    def done(self) -> None:
        for location, digest, before in self.hashed:
            if same_file(before, stat_of(location)):
                self.records.verified.remember(digest, location, before)
        for key, record in self.pending:
            self.records.save(key, record)
        self.pending.clear()


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
    marks: frozenset[str] | None = None  # looked for in each ELF file's string table (``ElfFacts.dynstr_marks``)


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
                    record: list[tuple[TarEntry, Node | None]] | None, recorder: _Recorder | None = None) -> None:
        """Apply every entry of one layer's tar (``mapped``: read from that map); ``record`` keeps them, ``recorder``
        makes them a ``LayerRecord``."""
        shared = self.kept
        counted = _CountedBudget(shared.budget)
        if recorder is not None:
            self.kept = _Keeping(shared.keep, counted, shared.marks)
        try:
            for entry in tar:
                self.count()
                rejected = len(self.rejected)
                made = _apply(self, entry, tar, index, mapped, None)
                if record is not None:
                    record.append((entry, made))
                if recorder is not None:
                    recorder.add(entry, made, counted.taken(), self.rejected[rejected:] if made is not None else [])
        finally:
            self.kept = shared

    def fits(self, stored: LayerRecord, mapped: MappedLayer | None, blob_size: int | None) -> bool:
        """Whether ``stored`` applies here as a read of its layer would: the image's metadata budget grants exactly
        the takes it recorded, it is whole (each file's entry, a mapped member inside the blob), and it was made by
        the same kind of read (a mapped layer's ELF files point into the blob)."""
        left = self.kept.budget.left
        for file in stored.files:
            for size, granted in file.takes:
                if size < 0 or (size <= left) != granted:
                    return False
                left -= size if granted else 0
            if (file.member is not None) != (mapped is not None and file.facts is not None):
                return False
            if file.member is not None and not (min(file.member) >= 0 and blob_size is not None
                                                and sum(file.member) <= blob_size):
                return False
        files = len(stored.files)
        for entry in stored.entries:
            if entry.kind not in _ENTRY_KINDS or (entry.file >= 0) != _makes_file(entry) or entry.file >= files:
                return False
        return True

    def apply_record(self, stored: LayerRecord, index: int, mapped: MappedLayer | None, blob_size: int | None,
                     record: list[tuple[TarEntry, Node | None]] | None) -> bool:
        """Apply a layer from its record as layer ``index`` (``mapped``: its map, for the ELF files' symbols), as
        reading it would; False, and nothing applied, when the record does not fit (``fits``)."""
        if not self.fits(stored, mapped, blob_size):
            return False
        for file in stored.files:
            for size, granted in file.takes:
                if granted:
                    self.kept.budget.take(size)
        for recorded in stored.entries:
            self.count()
            entry = TarEntry(recorded.name, recorded.kind, 0, recorded.linkname, 0, 0)
            prepared = None
            if recorded.file >= 0:
                file = stored.files[recorded.file]
                prepared = _node_of(file, index, _clean(recorded.name) or "/", mapped)
                self.rejected.extend(file.rejected)
            made = _apply(self, entry, None, index, None, prepared)
            if record is not None:
                record.append((entry, made))
        return True

    def replay(self, record: list[tuple[TarEntry, Node | None]], index: int) -> None:
        """Apply a layer read before again, as layer ``index``: nothing is read, nothing rejected twice."""
        again = _Reading(self.nodes, [], self.kept, self.reference)
        again.entries = self.entries
        for entry, made in record:
            again.count()
            _apply(again, entry, None, index, None, made)
        self.entries = again.entries


def _makes_file(entry: RecordedEntry) -> bool:
    """Whether ``_apply`` makes a regular file of the entry (it is one, and is no whiteout, nor rejected)."""
    path = _clean(entry.name)
    if entry.kind != "file" or path is None or path == "/":
        return False
    base = path.rpartition("/")[2]
    return base != OPAQUE and not base.startswith(WHITEOUT)


_ENTRY_KINDS = frozenset({"file", "dir", "symlink", "hardlink", "other"})


class _CountedBudget(Budget):
    """The image's budget, with each take noted (for the layer's record)."""

    def __init__(self, shared: Budget) -> None:
        super().__init__(0)
        self.shared = shared
        self._takes: list[tuple[int, bool]] = []

    def take(self, size: int) -> bool:
        granted = self.shared.take(size)
        self._takes.append((size, granted))
        return granted

    def taken(self) -> tuple[tuple[int, bool], ...]:
        """The takes since the last call."""
        takes, self._takes = tuple(self._takes), []
        return takes


class _Recorder:
    """A layer's entries, as they are applied, becoming its ``LayerRecord``."""

    def __init__(self) -> None:
        self.entries: list[RecordedEntry] = []
        self.files: list[RecordedFile] = []

    def add(self, entry: TarEntry, made: Node | None, takes: tuple[tuple[int, bool], ...],
            rejected: list[Skip]) -> None:
        file = -1
        if made is not None:
            file = len(self.files)
            self.files.append(RecordedFile(
                made.facts, made.problem, made.head, _recorded_archive(made.archive),
                (made.content.offset, made.content.size) if made.content is not None else None,
                takes, tuple(rejected)))
        self.entries.append(RecordedEntry(entry.name, entry.kind, entry.linkname, file))

    def record(self) -> LayerRecord:
        return LayerRecord(tuple(self.entries), tuple(self.files))


def _recorded_archive(archive: ArchiveScan | None) -> RecordedArchive | None:
    if archive is None:
        return None
    return RecordedArchive(tuple(archive.elves), tuple(archive.skipped), tuple(
        RecordedMetadata(m.location, tuple(m.members), tuple(m.members.values())) for m in archive.archives))


def _node_of(file: RecordedFile, layer: int, path: str, mapped: MappedLayer | None) -> Node:
    """The node a read of the layer would have made of ``file`` at ``path``, as layer ``layer``."""
    archive = None
    if file.archive is not None:
        archive = ArchiveScan(list(file.archive.elves), list(file.archive.skipped), [
            ArchiveMetadata(m.location, dict(zip(m.names, m.contents, strict=True))) for m in file.archive.archives])
    content = None
    if file.member is not None and mapped is not None:
        content = MappedMember(mapped, *file.member)
    return Node("file", layer, ("file", layer, path), facts=file.facts, problem=file.problem, head=file.head,
                archive=archive, content=content, symbols=file.symbols)


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
                           head=source.head, archive=source.archive, content=source.content, symbols=source.symbols)
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
        node.facts = read_elf(data, marks=kept.marks)
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
            node.facts = read_elf(content, symbols=False, marks=kept.marks)
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
