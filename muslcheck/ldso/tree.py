"""A directory seen as the root filesystem of the target.

Paths are absolute *inside* the root ("/usr/lib/libz.so.1"). Symbolic links are
resolved as a chroot would: absolute targets restart at the root and ".." never
climbs above it, so no link leads out of the root. The links followed are
recorded, so a report can say why a path resolved as it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from muslcheck.elf import ElfFacts

MAX_LINKS = 40  # as Linux's ELOOP limit
PATH_MAX = 4096  # as Linux: longer paths and link targets are refused (ENAMETOOLONG)


@dataclass(frozen=True)
class Resolved:
    path: str  # the final path inside the root
    links: tuple[str, ...]  # "link -> target" for every link followed, in order
    is_file: bool
    is_dir: bool
    identity: object  # (st_dev, st_ino) on a host tree: the loader dedups libraries by inode


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


class RootFS(Protocol):
    """A target root filesystem: a host directory, or an image's squashed layers."""

    def resolve(self, path: str) -> Resolved | Unresolvable: ...

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        """The file's ELF facts; MalformedElf when it is not a valid ELF file, OSError when unreadable."""
        ...

    def read_constructor_calls(self, resolved: Resolved) -> tuple[str, ...]:
        """``ElfFacts.constructor_calls`` of a file whose facts were read without them (``constructors_read``)."""
        ...

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        """At most ``limit`` bytes from the start of a small file (the loader's path file, package databases)."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """The names in a directory of the tree (not following a final link); [] when it is not one."""
        ...


@dataclass(frozen=True)
class Entry:
    """One path of a tree, without following it: what link resolution needs."""

    is_file: bool
    is_dir: bool
    link_target: str | None  # a symbolic link's target, as written
    identity: object


def resolve_links(path: str, entry: Callable[[str], Entry | str]) -> Resolved | Unresolvable:
    """Follow every link in ``path`` as a chroot would; ``entry`` looks one path up (or says why not)."""
    if len(path) > PATH_MAX:
        return Unresolvable(path[:64] + "...", "file name too long", ())
    pending = [c for c in reversed(path.split("/")) if c]  # a stack: the next component is last
    done: list[str] = []
    links: list[str] = []
    while pending:
        component = pending.pop()
        if component == ".":
            continue
        if component == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join([*done, component])
        found = entry(current)
        if isinstance(found, str):
            return Unresolvable(path, found, tuple(links))
        if found.link_target is None:
            if pending and not found.is_dir:
                return Unresolvable(path, "not a directory", tuple(links))
            done.append(component)
            continue
        if len(links) >= MAX_LINKS:
            return Unresolvable(path, "too many levels of symbolic links", tuple(links))
        if len(found.link_target) > PATH_MAX:
            return Unresolvable(path, "symbolic link target too long", tuple(links))
        links.append(f"{current} -> {found.link_target}")
        if found.link_target.startswith("/"):
            done = []
        pending.extend(c for c in reversed(found.link_target.split("/")) if c)
    final = "/" + "/".join(done)
    found = entry(final) if done else Entry(False, True, None, ("root",))
    if isinstance(found, str):
        return Unresolvable(path, found, tuple(links))
    return Resolved(final, tuple(links), found.is_file, found.is_dir, found.identity)
