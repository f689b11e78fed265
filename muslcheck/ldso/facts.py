"""ELF facts of a tree's files, read once per identity: what the loader model opens for every candidate."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import Resolved, RootFS
from muslcheck.model.errors import MalformedElf


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
