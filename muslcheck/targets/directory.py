"""A host directory as the target root: links resolved inside it, its ELF files found and read once per inode."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from muslcheck.elf import ElfFacts, is_elf, read_elf_file
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tree import Entry, Resolved, Unresolvable, join, resolve_links
from muslcheck.model.errors import MalformedElf
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.targets.archives import MAX_KEPT_BYTES, ArchiveMetadata, ArchiveScan, is_archive_name, scan_archive
from muslcheck.targets.limits import KEEP_NOTHING, Budget, KeepWhole


@dataclass(frozen=True)
class Discovered:
    files: list[ElfFile]  # sorted by path
    skipped: list[Skip]
    archives: list[ArchiveMetadata]  # every archive read (nested ones too), with its metadata files


class DirectoryRoot:
    def __init__(self, host_root: Path) -> None:
        self.host_root = host_root.resolve()
        self._prefix = str(self.host_root).rstrip("/") + "/"
        self._resolved: dict[str, Resolved | Unresolvable] = {}

    def host_path(self, path: str) -> str:
        """Where a resolved in-root path lives on the host (a string: this runs for every lookup)."""
        return self._prefix + path.lstrip("/")

    def resolve(self, path: str) -> Resolved | Unresolvable:
        """Follow every link in ``path`` inside the root (the tree does not change during a scan)."""
        found = self._resolved.get(path)
        if found is None:
            found = self._resolved[path] = self._resolve(path)
        return found

    def _resolve(self, path: str) -> Resolved | Unresolvable:
        return resolve_links(path, self._entry)

    def _entry(self, path: str) -> Entry | str:
        host = self.host_path(path)
        try:
            st = os.lstat(host)
            target = os.readlink(host) if stat.S_ISLNK(st.st_mode) else None
        except FileNotFoundError:
            return "no such file"
        except NotADirectoryError:
            return "not a directory"
        except OSError as e:
            return e.strerror or str(e)
        return Entry(stat.S_ISREG(st.st_mode), stat.S_ISDIR(st.st_mode), target, (st.st_dev, st.st_ino))

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        return read_elf_file(self.host_path(resolved.path))

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        with open(self.host_path(resolved.path), "rb") as f:
            return f.read(limit)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.host_path(path)))
        except OSError:
            return []


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


def discover(root: DirectoryRoot, cache: FactsCache, progress: Progress = no_progress,
             keep: KeepWhole = KEEP_NOTHING) -> Discovered:
    """Walk the root without following links; read the headers of each ELF file once per inode, and the
    members ``keep`` asks for of each archive.

    The symbols are read later, by ``cache``, for the files the loader model opens."""
    found: dict[object, ElfFile] = {}
    skipped: list[Skip] = []
    archives: list[ArchiveMetadata] = []
    kept = Budget(MAX_KEPT_BYTES)  # one budget for the metadata of every archive in the tree

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
                            add_archive_members(scan_archive(f, path, keep, kept), found, skipped, archives, cache)
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
