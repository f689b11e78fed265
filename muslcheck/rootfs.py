"""A directory seen as the root filesystem of the target.

Paths are absolute *inside* the root ("/usr/lib/libz.so.1"). Symbolic links are
resolved as a chroot would: absolute targets restart at the root and ".." never
climbs above it, so no link leads out of the root. The links followed are
recorded, so a report can say why a path resolved as it did.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_LINKS = 40  # as Linux's ELOOP limit


@dataclass(frozen=True)
class Resolved:
    path: str  # the final path inside the root
    links: tuple[str, ...]  # "link -> target" for every link followed, in order
    is_file: bool
    is_dir: bool
    identity: tuple[int, int]  # (st_dev, st_ino): the loader dedups libraries by inode


@dataclass(frozen=True)
class Unresolvable:
    path: str
    reason: str  # "no such file", "symlink loop", ...
    links: tuple[str, ...]


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


class DirectoryRoot:
    def __init__(self, host_root: Path) -> None:
        self.host_root = host_root.resolve()
        self._resolved: dict[str, Resolved | Unresolvable] = {}

    def host_path(self, path: str) -> Path:
        """Where a resolved in-root path lives on the host."""
        return self.host_root / path.lstrip("/")

    def resolve(self, path: str) -> Resolved | Unresolvable:
        """Follow every link in ``path`` inside the root (the tree does not change during a scan)."""
        found = self._resolved.get(path)
        if found is None:
            found = self._resolved[path] = self._resolve(path)
        return found

    def _resolve(self, path: str) -> Resolved | Unresolvable:
        pending = [c for c in path.split("/") if c]
        done: list[str] = []
        links: list[str] = []
        while pending:
            component = pending.pop(0)
            if component == ".":
                continue
            if component == "..":
                if done:
                    done.pop()
                continue
            current = "/" + "/".join([*done, component])
            try:
                st = os.lstat(self.host_path(current))
            except FileNotFoundError:
                return Unresolvable(path, "no such file", tuple(links))
            except NotADirectoryError:
                return Unresolvable(path, "not a directory", tuple(links))
            except OSError as e:
                return Unresolvable(path, e.strerror or str(e), tuple(links))
            if not stat.S_ISLNK(st.st_mode):
                if pending and not stat.S_ISDIR(st.st_mode):
                    return Unresolvable(path, "not a directory", tuple(links))
                done.append(component)
                continue
            if len(links) >= MAX_LINKS:
                return Unresolvable(path, "too many levels of symbolic links", tuple(links))
            try:
                target = os.readlink(self.host_path(current))
            except OSError as e:
                return Unresolvable(path, e.strerror or str(e), tuple(links))
            links.append(f"{current} -> {target}")
            if target.startswith("/"):
                done = []
            pending[:0] = [c for c in target.split("/") if c]
        final = "/" + "/".join(done)
        try:
            st = os.stat(self.host_path(final), follow_symlinks=False)
        except OSError as e:
            return Unresolvable(path, e.strerror or str(e), tuple(links))
        return Resolved(
            path=final,
            links=tuple(links),
            is_file=stat.S_ISREG(st.st_mode),
            is_dir=stat.S_ISDIR(st.st_mode),
            identity=(st.st_dev, st.st_ino),
        )
