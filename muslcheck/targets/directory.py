"""A host directory as the target root: links resolved inside it, its ELF files found and read once per inode."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from muslcheck.elf import ElfFacts, is_elf, read_elf_file
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tree import Entry, Resolved, Unresolvable, join, resolve_links
from muslcheck.model.errors import MalformedElf
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ArchiveMetadata, ArchiveScan, is_archive_name, scan_archive
from muslcheck.targets.limits import KEEP_NOTHING, MAX_KEPT_BYTES, Budget, KeepWhole


@dataclass(frozen=True)
class Discovered:
    files: list[ElfFile]  # sorted by path
    skipped: list[Skip]
    archives: list[ArchiveMetadata]  # every archive read (nested ones too), with its metadata files


class DirectoryRoot:
    """A host directory as the root filesystem, or, with ``mount``, as that one directory of an otherwise empty
    tree: a lone file keeps its whole path (``/opt/app/lib/x.so``) while nothing outside its directory exists."""

    def __init__(self, host_root: Path, mount: str = "/") -> None:
        self.host_root = host_root.resolve()
        self._prefix = str(self.host_root).rstrip("/") + "/"
        self.mount = "/" + mount.strip("/") if mount.strip("/") else "/"
        self._under = len(self.mount.rstrip("/"))  # characters of an in-tree path that name the mount
        self._resolved: dict[str, Resolved | Unresolvable] = {}

    def host_path(self, path: str) -> str:
        """Where a resolved in-root path lives on the host (a string: this runs for every lookup)."""
        return self._prefix + path[self._under :].lstrip("/")

    def _mounted(self, path: str) -> bool:
        return self.mount == "/" or path == self.mount or path.startswith(self.mount + "/")

    def _above_mount(self, path: str) -> bool:
        return path == "/" or self.mount.startswith(path.rstrip("/") + "/")

    def resolve(self, path: str) -> Resolved | Unresolvable:
        """Follow every link in ``path`` inside the root (the tree does not change during a scan)."""
        found = self._resolved.get(path)
        if found is None:
            found = self._resolved[path] = self._resolve(path)
        return found

    def _resolve(self, path: str) -> Resolved | Unresolvable:
        return resolve_links(path, self._entry)

    def _entry(self, path: str) -> Entry | str:
        if not self._mounted(path):
            return Entry(False, True, None, ("above the mount", path)) if self._above_mount(path) else "no such file"
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
        fd = os.open(self.host_path(resolved.path), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            return f.read(limit)

    def list_dir(self, path: str) -> list[str]:
        if not self._mounted(path):
            return [self.mount[len(path.rstrip("/")) + 1 :].split("/", 1)[0]] if self._above_mount(path) else []
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


MAX_DEPTH = 256  # directories below the root; deeper ones are a finding, not walked (Linux paths: 4,096 bytes)


def _walk(top: str, onerror: Callable[[OSError], None], skipped: list[Skip],
          host_root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` (top-down, links not followed, names sorted), with a stack instead of recursion (Python 3.11's
    recurses: a tree 1,200 deep raised RecursionError) and a depth limit that reports."""
    stack = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as e:
            onerror(e)
            continue
        dirnames: list[str] = []
        filenames: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirnames if is_dir or (entry.is_symlink() and _is_dir_link(entry.path)) else filenames).append(entry.name)
        dirnames.sort()
        yield directory, dirnames, filenames
        real = [d for d in dirnames if not os.path.islink(os.path.join(directory, d))]
        if real and depth + 1 > MAX_DEPTH:
            rel = os.path.relpath(directory, host_root)
            skipped.append(Skip("/" + rel.lstrip("./"), f"directories nested more than {MAX_DEPTH} deep: "
                                                        "what is below is not read"))
            continue
        stack.extend((os.path.join(directory, d), depth + 1) for d in reversed(real))


def _is_dir_link(path: str) -> bool:
    """A link to a directory (os.walk lists it among the directories, and does not enter it)."""
    try:
        return os.path.isdir(path)
    except OSError:
        return False


def _starts_with_elf_magic(host_path: str) -> bool:
    """The first four bytes; the open never blocks (a FIFO or device swapped in after the lstat)."""
    fd = os.open(host_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return is_elf(os.pread(fd, 4, 0))
    finally:
        os.close(fd)


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

    for host_dir, dirnames, filenames in _walk(str(root.host_root), unreadable_dir, skipped, root.host_root):
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
                        with open(os.open(host_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW),
                                  "rb") as f:
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
