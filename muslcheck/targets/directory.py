"""A host directory as the target root: links resolved inside it, its ELF files found and read once per inode."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from muslcheck.elf import ElfFacts, is_elf, read_elf_descriptor
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


PagesRead = Callable[[tuple[int, ...], bytes], None]  # (runs of pages read, their digest): read_elf_descriptor's hook
ReadFacts = Callable[[PagesRead | None], ElfFacts]  # a file's facts read, the pages noted when asked to


class KnownFacts(Protocol):
    """ELF facts recorded by earlier scans of the same directory (``cache.files.StoredFiles``): a file whose stat
    identity and read pages are unchanged takes them instead of being read, and a file read is recorded."""

    def facts(self, fd: int, st: os.stat_result, *, symbols: bool, marks: frozenset[str] | None,
              read: ReadFacts) -> ElfFacts:
        """The facts of the file open at ``fd`` (``st``: its fstat): the recorded ones when its pages still hold
        what they were read from, else ``read(...)``'s (raising what it raises)."""
        ...


_MAX_ENTRIES = 1 << 17  # paths whose lookup is remembered (about 30 MB at most); past it, looked up again


class DirectoryRoot:
    """A host directory as the root filesystem, or, with ``mount``, as that one directory of an otherwise empty
    tree: a lone file keeps its whole path (``/opt/app/lib/x.so``) while nothing outside its directory exists."""

    def __init__(self, host_root: Path, mount: str = "/", known: KnownFacts | None = None) -> None:
        self.host_root = host_root.resolve()
        self.known = known  # facts recorded by earlier scans (the header reads of discovery, full reads)
        self._prefix = str(self.host_root).rstrip("/") + "/"
        self.mount = "/" + mount.strip("/") if mount.strip("/") else "/"
        self._under = len(self.mount.rstrip("/"))  # characters of an in-tree path that name the mount
        self._resolved: dict[str, Resolved | Unresolvable] = {}
        self._entries: dict[str, Entry | str] = {}  # each path looked up once: resolving repeats the directories

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
            found = self._resolve(path)
            if len(self._resolved) < _MAX_ENTRIES:  # bounded: a load searches every missing name in each directory
                self._resolved[path] = found
        return found

    def _resolve(self, path: str) -> Resolved | Unresolvable:
        return resolve_links(path, self._entry)

    def _entry(self, path: str) -> Entry | str:
        found = self._entries.get(path)
        if found is None:
            found = self._look_up(path)
            if len(self._entries) < _MAX_ENTRIES:
                self._entries[path] = found
        return found

    def _look_up(self, path: str) -> Entry | str:
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

    def open(self, path: str, *, directory: bool = False) -> int:
        """A file descriptor of the in-root ``path`` (resolved: no link in it), opened beneath the root."""
        return open_beneath(self.host_root, path[self._under :], directory=directory)

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        """The facts without ``constructor_calls``: read only for the few files a lazy dlopen needs them of."""
        fd = self.open(resolved.path)
        try:
            if self.known is None:
                return read_elf_descriptor(fd, constructors=False)
            return self.known.facts(fd, os.fstat(fd), symbols=True, marks=None, read=lambda pages_read:
                                    read_elf_descriptor(fd, constructors=False, pages_read=pages_read))
        finally:
            os.close(fd)

    def read_constructor_calls(self, resolved: Resolved) -> tuple[str, ...]:
        fd = self.open(resolved.path)
        try:
            return read_elf_descriptor(fd, symbols=False, constructors=True).constructor_calls
        finally:
            os.close(fd)

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        with open(self.open(resolved.path), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            return f.read(limit)

    def list_dir(self, path: str) -> list[str]:
        if not self._mounted(path):
            return [self.mount[len(path.rstrip("/")) + 1 :].split("/", 1)[0]] if self._above_mount(path) else []
        try:
            fd = self.open(path, directory=True)
        except OSError:
            return []
        try:
            return sorted(os.listdir(fd))
        except OSError:
            return []
        finally:
            os.close(fd)


# Every open of a file in a directory target: each component relative to its parent's descriptor, none followed
# if it is a link (O_NOFOLLOW), so a directory swapped for a link during the scan fails the open (ELOOP or
# ENOTDIR) instead of reading outside the root; never blocking, never taking a terminal.
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
_SWAPPED = "a component of the path is not a directory of the tree any more (replaced by a link?): not read"


def open_beneath(root: Path | str, relative: str, *, directory: bool = False) -> int:
    """The descriptor of ``root``/``relative``, opened one component at a time beneath ``root`` (the
    ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` of a kernel that has it, in portable calls).

    ``relative`` names no link (the model resolved them); a component that is a link now, or not a directory,
    is ``OSError(ELOOP)`` with a message that says so. ``..`` is refused the same way."""
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    fd = os.open(root, _DIRECTORY_FLAGS & ~os.O_NOFOLLOW)  # the root as the user named it
    try:
        for index, part in enumerate(parts):
            child = open_in(fd, part, relative, directory=directory or index < len(parts) - 1)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_in(directory_fd: int, name: str, path: str, *, directory: bool = False) -> int:
    """One component ``name`` of ``path``, opened in the directory open at ``directory_fd``, not followed if it
    is a link: ``OSError(ELOOP)`` then (and for ``..``), with a message that says so."""
    if name == "..":
        raise OSError(errno.ELOOP, _SWAPPED, path)
    try:
        return os.open(name, _DIRECTORY_FLAGS if directory else _FILE_FLAGS, dir_fd=directory_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # EMLINK: FreeBSD's O_NOFOLLOW
            raise OSError(errno.ELOOP, _SWAPPED, path) from None
        raise


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


@dataclass(frozen=True, slots=True)
class _Listed:
    directory: str  # on the host
    descriptor: int  # the directory, opened beneath the root: its files are opened relative to it
    names: list[str]  # what is not a directory: files, links (to directories too), special files; sorted


def _walk(root: Path, onerror: Callable[[OSError], None], skipped: list[Skip]) -> Iterator[_Listed]:
    """Each directory of the root, top-down, sorted, links not followed: a stack instead of recursion (a tree
    1,200 deep raised RecursionError) and a depth limit that reports. Each directory is opened beneath the root
    (``open_beneath``) and listed through its descriptor, which stays open while its files are read."""
    top = str(root)
    stack = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            fd = open_beneath(root, os.path.relpath(directory, top), directory=True)
        except OSError as e:
            onerror(OSError(e.errno, e.strerror, directory))
            continue
        try:
            try:
                with os.scandir(fd) as it:
                    entries = list(it)
            except OSError as e:
                onerror(OSError(e.errno, e.strerror, directory))
                continue
            real: list[str] = []
            names: list[str] = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                (real if is_dir else names).append(entry.name)
            names.sort()
            yield _Listed(directory, fd, names)
        finally:
            os.close(fd)
        if real and depth + 1 > MAX_DEPTH:
            rel = os.path.relpath(directory, top)
            skipped.append(Skip("/" + rel.lstrip("./"), f"directories nested more than {MAX_DEPTH} deep: "
                                                        "what is below is not read"))
            continue
        stack.extend((os.path.join(directory, d), depth + 1) for d in sorted(real, reverse=True))


def _starts_with_elf_magic(fd: int) -> bool:
    """The first four bytes of a regular file (a FIFO or device swapped in after the lstat: False)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return False
    return is_elf(os.pread(fd, 4, 0))


def discover(root: DirectoryRoot, cache: FactsCache, progress: Progress = no_progress,
             keep: KeepWhole = KEEP_NOTHING, marks: frozenset[str] | None = None) -> Discovered:
    """Walk the root without following links; read the headers of each ELF file once per inode (noting which of
    ``marks`` its string table holds), or take them from ``root.known`` when its pages are unchanged, and the
    members ``keep`` asks for of each archive.

    The symbols are read later, by ``cache``, for the files the loader model opens."""
    found: dict[object, ElfFile] = {}
    skipped: list[Skip] = []
    archives: list[ArchiveMetadata] = []
    kept = Budget(MAX_KEPT_BYTES)  # one budget for the metadata of every archive in the tree

    def unreadable_dir(error: OSError) -> None:
        rel = os.path.relpath(error.filename or str(root.host_root), root.host_root)
        skipped.append(Skip("/" + rel.lstrip("./"), f"unreadable directory: {error.strerror}"))

    for listed in _walk(root.host_root, unreadable_dir, skipped):
        rel = os.path.relpath(listed.directory, root.host_root)
        base = "/" + rel.replace(os.sep, "/") if rel != "." else "/"
        for name in listed.names:
            path = join(base, name)
            try:
                st = os.stat(name, dir_fd=listed.descriptor, follow_symlinks=False)
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
                with open(open_in(listed.descriptor, name, path), "rb") as f:
                    if not _starts_with_elf_magic(f.fileno()):
                        if is_archive_name(name) and stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                            add_archive_members(scan_archive(f, path, keep, kept), found, skipped, archives, cache)
                        continue
                    facts = _read_headers(f.fileno(), root.known, marks)
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


def _read_headers(fd: int, known: KnownFacts | None, marks: frozenset[str] | None) -> ElfFacts:
    if known is None:
        return read_elf_descriptor(fd, symbols=False, marks=marks)
    return known.facts(fd, os.fstat(fd), symbols=False, marks=marks, read=lambda pages_read:
                       read_elf_descriptor(fd, symbols=False, marks=marks, pages_read=pages_read))
