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

    def open(self, path: str, *, directory: bool = False) -> int:
        """A file descriptor of the in-root ``path`` (resolved: no link in it), opened beneath the root."""
        return open_beneath(self.host_root, path[self._under :], directory=directory)

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        fd = self.open(resolved.path)
        try:
            return read_elf_fd(fd)
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
            last = index == len(parts) - 1
            if part == "..":
                raise OSError(errno.ELOOP, _SWAPPED)
            try:
                child = os.open(part, _DIRECTORY_FLAGS if directory or not last else _FILE_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # EMLINK: FreeBSD's O_NOFOLLOW
                    raise OSError(errno.ELOOP, _SWAPPED, relative) from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


_FD_PATHS = "/proc/self/fd"


def read_elf_fd(fd: int, *, symbols: bool = True) -> ElfFacts:
    """``read_elf_file`` over an open descriptor: through its ``/proc/self/fd`` name, which reopens that very
    file, never a path looked up again (Linux; without /proc mounted, ``OSError``: a finding)."""
    if not os.path.isdir(_FD_PATHS):
        raise OSError(errno.ENOENT, f"{_FD_PATHS} is not mounted: the file cannot be read safely")
    return read_elf_file(f"{_FD_PATHS}/{fd}", symbols=symbols)


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


def _starts_with_elf_magic(fd: int) -> bool:
    """The first four bytes of a regular file (a FIFO or device swapped in after the lstat: False)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return False
    return is_elf(os.pread(fd, 4, 0))


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
                with open(root.open(path), "rb") as f:
                    if not _starts_with_elf_magic(f.fileno()):
                        if is_archive_name(name) and stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                            add_archive_members(scan_archive(f, path, keep, kept), found, skipped, archives, cache)
                        continue
                    facts = read_elf_fd(f.fileno(), symbols=False)
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
