"""Find the ELF files under a root and read their facts, once per inode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from muslcheck.elf import ElfFacts, is_elf, read_elf_file
from muslcheck.model.errors import MalformedElf
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.model.tree import DirectoryRoot, Resolved, RootFS, Unresolvable, join
from muslcheck.targets.archives import ArchiveMetadata, ArchiveScan, is_archive_name, scan_archive


@dataclass(frozen=True)
class ElfFile:
    path: str
    identity: object
    facts: ElfFacts
    aliases: tuple[str, ...]  # hard links to the same inode, seen later in the walk


@dataclass(frozen=True)
class NotLoadable:
    """A file that exists but that musl's map_library rejects."""

    reason: str  # as musl's %m: "Exec format error", "Is a directory", ...
    detail: str = ""  # what is wrong with the file, when it is a malformed ELF file


class FactsCache:
    """ELF facts by inode, read on first use; the loader model asks it for every candidate."""

    def __init__(self, root: RootFS) -> None:
        self.root = root
        self._by_identity: dict[object, ElfFacts | NotLoadable] = {}
        self._exports: dict[int, tuple[ElfFacts, dict[str, tuple[str, str, bool]]]] = {}

    def visible_exports(self, facts: ElfFacts) -> dict[str, tuple[str, str, bool]]:
        """name -> (type, binding, plt_only), the first definition of each name; built once per file."""
        entry = self._exports.get(id(facts))  # the entry keeps facts alive, so the id is not reused
        if entry is None:
            visible: dict[str, tuple[str, str, bool]] = {}
            for e in facts.exports:
                visible.setdefault(e.name, (e.type, e.binding, e.plt_only))
            entry = self._exports[id(facts)] = (facts, visible)
        return entry[1]

    def get(self, resolved: Resolved) -> ElfFacts | NotLoadable:
        if resolved.is_dir:
            return NotLoadable("Is a directory")
        if not resolved.is_file:
            return NotLoadable("not a regular file")  # a FIFO or device: never opened
        cached = self._by_identity.get(resolved.identity)
        if cached is None or (isinstance(cached, ElfFacts) and not cached.symbols_read):
            cached = self._read(resolved)
            self._by_identity[resolved.identity] = cached
        return cached

    def complete(self, f: ElfFile) -> ElfFacts | NotLoadable:
        """``f``'s facts with its symbols: read in full now when discovery read only its headers."""
        if f.facts.symbols_read:
            return f.facts
        resolved = self.root.resolve(f.path)
        if not isinstance(resolved, Resolved):
            return NotLoadable("No such file or directory")
        return self.get(resolved)

    def _read(self, resolved: Resolved) -> ElfFacts | NotLoadable:
        try:
            return self.root.read_facts(resolved)
        except MalformedElf as e:
            return NotLoadable("Exec format error", str(e))
        except OSError as e:
            return NotLoadable(e.strerror or "I/O error")

    def remember(self, identity: object, facts: ElfFacts) -> None:
        self._by_identity[identity] = facts


class FactsView(Mapping[str, ElfFacts]):
    """The tree's ELF files by path, each one's facts complete: read in full when first looked up."""

    def __init__(self, files: Iterable[ElfFile], cache: FactsCache) -> None:
        self._files = {f.path: f for f in files}
        self._cache = cache

    def __getitem__(self, path: str) -> ElfFacts:
        f = self._files[path]
        facts = self._cache.complete(f)
        return facts if isinstance(facts, ElfFacts) else f.facts  # malformed symbols: the headers are all there is

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: object) -> bool:
        return path in self._files


@dataclass(frozen=True)
class Discovered:
    files: list[ElfFile]  # sorted by path
    skipped: list[Skip]
    archives: list[ArchiveMetadata]  # every archive read (nested ones too), with its metadata files


def add_archive_members(scanned: ArchiveScan, found: dict[object, ElfFile], skipped: list[Skip],
                        archives: list[ArchiveMetadata], cache: FactsCache) -> None:
    """ELF files found inside an archive join the files to judge, under their location."""
    for member in scanned.elves:
        identity = ("archive", member.location)
        cache.remember(identity, member.facts)
        found[identity] = ElfFile(member.location, identity, member.facts, ())
    skipped.extend(scanned.skipped)
    archives.extend(scanned.archives)


def _starts_with_elf_magic(host_path: str) -> bool:
    with open(host_path, "rb") as f:
        return is_elf(f.read(4))


def discover(root: DirectoryRoot, cache: FactsCache, progress: Progress = no_progress) -> Discovered:
    """Walk the root without following links; read the headers of each ELF file once per inode.

    The symbols are read later, by ``cache``, for the files the loader model opens."""
    found: dict[object, ElfFile] = {}
    skipped: list[Skip] = []
    archives: list[ArchiveMetadata] = []

    def unreadable_dir(error: OSError) -> None:
        rel = os.path.relpath(error.filename or str(root.host_root), root.host_root)
        skipped.append(Skip("/" + rel.lstrip("./"), f"unreadable directory: {error.strerror}"))

    for host_dir, dirnames, filenames in os.walk(root.host_root, onerror=unreadable_dir):
        dirnames.sort()
        rel = os.path.relpath(host_dir, root.host_root)
        base = "/" if rel == "." else "/" + rel.replace(os.sep, "/")
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(host_dir, d))]):
            path = join(base, name)
            host_path = os.path.join(host_dir, name)
            try:
                st = os.lstat(host_path)
            except OSError as e:
                skipped.append(Skip(path, f"unreadable: {e.strerror}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                target = root.resolve(path)
                if isinstance(target, Unresolvable):
                    skipped.append(Skip(path, f"broken link: {target.reason}", unchecked=False))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            identity = (st.st_dev, st.st_ino)
            if identity in found:
                seen = found[identity]
                found[identity] = ElfFile(seen.path, identity, seen.facts, (*seen.aliases, path))
                continue
            try:
                if not _starts_with_elf_magic(host_path):
                    if is_archive_name(name):
                        with open(host_path, "rb") as f:
                            add_archive_members(scan_archive(f, path), found, skipped, archives, cache)
                    continue
                facts = read_elf_file(host_path, symbols=False)
            except OSError as e:
                skipped.append(Skip(path, f"unreadable: {e.strerror}"))
                continue
            except MalformedElf as e:
                skipped.append(Skip(path, f"malformed ELF: {e}"))
                continue
            cache.remember(identity, facts)
            found[identity] = ElfFile(path, identity, facts, ())
            progress("reading ELF files", len(found), None)
    files = sorted(found.values(), key=lambda f: f.path)
    return Discovered(files, sorted(skipped, key=lambda s: s.path), archives)
