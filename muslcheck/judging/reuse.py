"""What a scan keeps of its judging for the next scan of the same target, and when a kept result still holds.

Each root's loads (and each library's header-only load) are recorded with every path they resolved, read or
listed. On the next scan, the paths that changed since (``changed_paths`` of two tree manifests) decide: a
record is reused when no changed path is one it read, an ancestor of one (a directory, a link on the way, an
archive), or an entry of a directory it listed, and the rest of its inputs (context, host names, what the
Alpine base replaces, the libraries' aliases) are the same. Everything else is judged again."""

from __future__ import annotations

import bisect
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import Resolved, RootFS, Unresolvable, parent
from muslcheck.model.kept import Inputs, JudgedState, ReachRecord, RootRecord


class RecordingRoot:
    """A RootFS that notes every path asked of it; ``take`` returns them and starts afresh."""

    def __init__(self, root: RootFS) -> None:
        self.root = root
        self._read: set[str] = set()
        self._listed: set[str] = set()

    def resolve(self, path: str) -> Resolved | Unresolvable:
        found = self.root.resolve(path)
        self._read.add(path)
        self._read.update(link.split(" -> ", 1)[0] for link in found.links)
        if isinstance(found, Resolved):
            self._read.add(found.path)
        return found

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        self._read.add(resolved.path)
        return self.root.read_facts(resolved)

    def read_constructor_calls(self, resolved: Resolved) -> tuple[str, ...]:
        self._read.add(resolved.path)
        return self.root.read_constructor_calls(resolved)

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        self._read.add(resolved.path)
        return self.root.read_head(resolved, limit)

    def list_dir(self, path: str) -> list[str]:
        self._listed.add(path)
        return self.root.list_dir(path)

    def take(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the paths read, the directories listed) since the last ``take``, sorted."""
        read, listed = tuple(sorted(self._read)), tuple(sorted(self._listed))
        self._read, self._listed = set(), set()
        return read, listed


def changed_paths(before: Mapping[str, str], after: Mapping[str, str]) -> frozenset[str]:
    """The paths added, removed or changed between two manifests (signatures start with st_mode). A directory that
    is still one is not changed itself: its entries are compared one by one."""
    return frozenset(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)
                     and not (_is_directory(before.get(p)) and _is_directory(after.get(p))))


def _is_directory(signature: str | None) -> bool:
    return signature is not None and stat.S_ISDIR(int(signature.split(" ", 1)[0]))


@dataclass
class Reuse:
    """The records of the last scan, and the paths changed since; ``None`` state: nothing to reuse."""

    state: JudgedState | None = None
    changed: frozenset[str] = frozenset()
    roots: dict[str, RootRecord] = field(init=False)
    reach: dict[str, ReachRecord] = field(init=False)
    _changed_parents: frozenset[str] = field(init=False)
    reused: int = 0  # loads taken from the records in this scan

    def __post_init__(self) -> None:
        state = self.state
        self.roots = {r.path: r for r in state.roots} if state else {}
        self.reach = {r.path: r for r in state.reach} if state else {}
        self._changed_parents = frozenset(parent(p) for p in self.changed)

    def still_holds(self, read: tuple[str, ...], listed: tuple[str, ...]) -> bool:
        """No changed path is one of ``read``, on the way to one (a directory, a link, an archive), or an entry of
        a directory in ``listed``."""
        if not self.changed:
            return True
        if not self._changed_parents.isdisjoint(listed):
            return False
        changed = self.changed
        if len(changed) * 8 < len(read):  # a few changes: looked up in the read paths, sorted (C-speed when they are)
            return not _within(sorted(read), changed)
        return not any(path in changed or any(a in changed for a in _ancestors(path)) for path in read)

    def root(self, path: str, inputs: Inputs) -> RootRecord | None:
        record = self.roots.get(path)
        if record is None or record.inputs != inputs.key or not self.still_holds(record.read, record.listed):
            return None
        self.reused += 1
        return record

    def reached(self, path: str, inputs: Inputs) -> ReachRecord | None:
        record = self.reach.get(path)
        if record is None or record.inputs != inputs.key or not self.still_holds(record.read, record.listed):
            return None
        return record


def _within(read: list[str], changed: Iterable[str]) -> bool:
    """Whether a path of ``read`` (sorted) is one of ``changed`` or below one: after it comes "/" or "!" (an
    archive's member), as ``_ancestors`` cuts."""
    for path in changed:
        for probe in (path + "/", path + "!") if path else ():
            i = bisect.bisect_left(read, probe)
            if i < len(read) and read[i].startswith(probe):
                return True
        i = bisect.bisect_left(read, path)
        if i < len(read) and read[i] == path:
            return True
    return False


def _ancestors(path: str) -> Iterable[str]:
    """"/a/b.jar!/c/d" -> "/a/b.jar!/c", "/a/b.jar", "/a"."""
    end = len(path)
    while True:
        cut = max(path.rfind("/", 0, end), path.rfind("!", 0, end))
        if cut <= 0:
            return
        yield path[:cut]
        end = cut


def replaced_within(read: Iterable[str], replaced: Mapping[str, str]) -> dict[str, str]:
    return {p: replaced[p] for p in read if p in replaced}
