"""ELF facts of a tree's files, read once per identity: what the loader model opens for every candidate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from muslcheck.elf import ElfFacts
from muslcheck.ldso.lru import Bounded
from muslcheck.ldso.results import MissingReason, describe
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
    """Why musl does not load a library: a file that map_library rejects, or (from the loader) none at all."""

    cause: MissingReason
    detail: str = ""  # what is wrong with the file, when it is a malformed ELF file
    error: str = ""  # MissingReason.UNREADABLE: the system's text
    owner: str = ""  # MissingReason.REPLACED: the OS package that owns the file

    @property
    def reason(self) -> str:
        """The text shown for it (musl's %m)."""
        return describe(self.cause, self.error, self.owner)


class FactsSource(Protocol):
    """What the loader model asks of a tree's files: the ELF facts of a resolved path, or why musl would not
    load it."""

    def get(self, resolved: Resolved) -> ElfFacts | NotLoadable: ...

    def with_constructor_calls(self, path: str, identity: object, facts: ElfFacts) -> ElfFacts:
        """``facts`` with ``constructor_calls`` read (a lazy dlopen relocates the file)."""
        ...


class FactsCache:
    """ELF facts by identity (an inode, an archive member...), read on first use; the loader model asks it for
    every candidate. At most ``SIZE`` files are kept (least recently used first out): a file dropped is read
    again when asked for, so memory stays flat in the number of files."""

    SIZE = 1024

    def __init__(self, root: RootFS) -> None:
        self.root = root
        self._by_identity: Bounded[object, ElfFacts | NotLoadable] = Bounded(self.SIZE)

    def get(self, resolved: Resolved) -> ElfFacts | NotLoadable:
        if resolved.is_dir:
            return NotLoadable(MissingReason.IS_DIRECTORY)
        if not resolved.is_file:
            return NotLoadable(MissingReason.NOT_REGULAR)  # a FIFO or device: never opened
        cached = self._by_identity.get(resolved.identity)
        if cached is None or (isinstance(cached, ElfFacts) and not cached.symbols_read):
            cached = self._by_identity.put(resolved.identity, self._read(resolved))
        return cached

    def complete(self, f: ElfFile) -> ElfFacts | NotLoadable:
        """``f``'s facts with its symbols: read in full now when discovery read only its headers."""
        if f.facts.symbols_read:
            return f.facts
        resolved = self.root.resolve(f.path)
        if not isinstance(resolved, Resolved):
            return NotLoadable(MissingReason.NOT_FOUND)
        return self.get(resolved)

    def _read(self, resolved: Resolved) -> ElfFacts | NotLoadable:
        try:
            return self.root.read_facts(resolved)
        except MalformedElf as e:
            return NotLoadable(MissingReason.EXEC_FORMAT, str(e))
        except OSError as e:
            return NotLoadable(MissingReason.UNREADABLE, error=e.strerror or "")

    def with_constructor_calls(self, path: str, identity: object, facts: ElfFacts) -> ElfFacts:
        """``facts`` of the file at ``path``, with ``constructor_calls`` read if they were not. A file that cannot
        be read again (changed, gone) keeps none: its latent symbols stay latent. Header facts (no symbols read,
        nothing to relocate) stay as they are."""
        if facts.constructors_read or not facts.symbols_read:
            return facts
        resolved = self.root.resolve(path)
        calls: tuple[str, ...] = ()
        if isinstance(resolved, Resolved) and resolved.identity == identity:
            with contextlib.suppress(MalformedElf, OSError):
                calls = self.root.read_constructor_calls(resolved)
        complete = replace(facts, constructor_calls=calls, constructors_read=True)
        self._by_identity.put(identity, complete)
        return complete

    def remember(self, identity: object, facts: ElfFacts) -> None:
        self._by_identity.put(identity, facts)


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
