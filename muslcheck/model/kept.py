"""What a scan keeps of its judging for the next scan of the same target (``judging.reuse`` decides when it still
holds; the cache stores it)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from muslcheck.model.report import FileReport, Skip


@dataclass(frozen=True)
class Inputs:
    """What a load depends on besides the tree's paths."""

    context: str  # the role, the context the file is judged in, and whether a host loads it by itself
    provides: tuple[str, ...]  # the names its host provides
    replaced: dict[str, str]  # the paths it read that the Alpine base replaces -> their owner
    libraries: dict[str, tuple[str, ...]]  # the libraries to judge it reached -> their aliases

    @property
    def key(self) -> str:
        """The inputs as one canonical string: what a record keeps, and compares."""
        return json.dumps([self.context, self.provides, self.replaced, self.libraries], sort_keys=True,
                          ensure_ascii=True, separators=(",", ":"))


@dataclass(frozen=True)
class RootRecord:
    """One root's judging: its own outcome, and each library its load reached with that library's severity there.
    (Optional values are tuples of none or one: the cache's codec keeps records by column.)"""

    path: str
    inputs: str  # Inputs.key
    read: tuple[str, ...]
    listed: tuple[str, ...]
    report: tuple[FileReport, ...]  # its report, or
    skip: tuple[Skip, ...]  # why it could not be judged
    reached: tuple[str, ...]  # the libraries its load reached, in load order
    severities: tuple[int, ...]  # the severity of each there
    chosen: tuple[FileReport, ...]  # the reports of the libraries whose first worst load this was

    @property
    def own(self) -> FileReport | Skip:
        return self.report[0] if self.report else self.skip[0]


@dataclass(frozen=True)
class ReachRecord:
    """A library's header-only load: the libraries to judge that it brings in."""

    path: str
    inputs: str  # Inputs.key
    read: tuple[str, ...]
    listed: tuple[str, ...]
    reached: tuple[str, ...]


@dataclass(frozen=True)
class JudgedState:
    """What a scan keeps for the next scan of the same target under the same options."""

    manifest: dict[str, str]  # path in the tree -> its stat signature
    roots: tuple[RootRecord, ...]
    reach: tuple[ReachRecord, ...]
