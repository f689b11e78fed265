"""The fleet report: per target its verdict and blockers, and the blockers shared across targets, ranked.

A blocker is a live (not ignored) finding at level ``blocked`` on a blocked file, keyed by its rule and its
subject (the symbol, soname, relocation or interpreter): the same cause in two images is one blocker, wherever
the file sits in each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson

from muslcheck.model.codec import fields_of
from muslcheck.model.report import Report, TargetInfo, Verdict
from muslcheck.model.version import __version__

FLEET_SCHEMA_VERSION = "fleet-1.0"


@dataclass(frozen=True)
class TargetBlocker:
    """One cause that blocks files of one target."""

    rule: str  # "unresolved-symbol", "missing-library", ...
    rule_id: str  # "MC003"
    subject: str  # the symbol, soname, relocation or interpreter
    files: int  # blocked files of this target it is found on
    components: int  # the components those files belong to
    fix: str | None  # the fix most of those findings give


@dataclass(frozen=True)
class TargetResult:
    """One target of the fleet: what its scan says, or why it could not be scanned."""

    target: str  # as the user wrote it
    verdict: Verdict | None  # None: the target failed (``error``)
    error: str | None = None
    error_kind: str | None = None  # "usage", "input" or "internal"
    worst_component: Verdict | None = None  # the most severe verdict of a counted (applicable) component
    complete: bool = True  # every file that may hold ELF code was checked
    files: dict[str, int] = field(default_factory=dict)  # verdict -> files (``Report.summary``)
    components: dict[str, int] = field(default_factory=dict)  # verdict -> components
    blockers: tuple[TargetBlocker, ...] = ()  # most files first
    report: Report | None = field(default=None, compare=False)  # kept only when asked for (scan_fleet)

    @property
    def failed(self) -> bool:
        return self.verdict is None


@dataclass(frozen=True)
class SharedBlocker:
    """One cause, across the fleet: the targets it blocks, in the order the targets were given."""

    rule: str
    rule_id: str
    subject: str
    targets: tuple[str, ...]
    files: int  # blocked files across those targets
    fix: str | None

    @property
    def count(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class FleetReport:
    schema_version: str
    tool_version: str
    target: TargetInfo | None  # what every target was judged against (None when every target failed)
    targets: tuple[TargetResult, ...]  # in the order given
    blockers: tuple[SharedBlocker, ...]  # most targets first
    seconds: float = field(default=0.0, compare=False)  # wall time of the whole fleet

    @property
    def failed(self) -> tuple[TargetResult, ...]:
        return tuple(t for t in self.targets if t.failed)

    @property
    def summary(self) -> dict[str, int]:
        """Targets by verdict, and the failed ones under "error"."""
        counts = Counter(t.verdict.value if t.verdict is not None else "error" for t in self.targets)
        return {"targets": len(self.targets), **dict(sorted(counts.items()))}

    def to_dict(self) -> dict[str, object]:
        return {
            "schema_version": self.schema_version,
            "tool_version": self.tool_version,
            "target": None if self.target is None else fields_of(self.target),
            "summary": self.summary,
            "targets": [
                {"target": t.target, "verdict": t.verdict, "error": t.error, "error_kind": t.error_kind,
                 "worst_component": t.worst_component, "complete": t.complete, "files": t.files,
                 "components": t.components, "blockers": [vars(b) for b in t.blockers]}
                for t in self.targets
            ],
            "blockers": [{**vars(b), "count": b.count} for b in self.blockers],
        }

    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def summarize(target: str, report: Report, *, keep_report: bool = False) -> TargetResult:
    """What the fleet report keeps of one target's report."""
    per_key: dict[tuple[str, str, str], tuple[set[str], set[str], Counter[str]]] = {}
    for f in report.files:
        if f.verdict is not Verdict.BLOCKED:
            continue
        for x in f.findings:
            if x.ignored is not None or x.level is not Verdict.BLOCKED:
                continue
            paths, components, fixes = per_key.setdefault((x.rule, x.rule_id, x.subject), (set(), set(), Counter()))
            paths.add(f.path)
            components.add(f.component or f.path)
            if x.fix:
                fixes[x.fix] += 1
    blockers = sorted(
        (TargetBlocker(rule, rule_id, subject, len(paths), len(components), _most_common(fixes))
         for (rule, rule_id, subject), (paths, components, fixes) in per_key.items()),
        key=lambda b: (-b.files, b.rule_id, b.subject),
    )
    counted = [c.verdict for c in report.components if c.verdict is not Verdict.NOT_APPLICABLE]
    worst = max(counted, key=lambda v: v.severity, default=Verdict.NATIVE)
    return TargetResult(
        target=target, verdict=report.verdict, worst_component=worst, complete=report.complete,
        files=report.summary, components=dict(sorted(Counter(c.verdict.value for c in report.components).items())),
        blockers=tuple(blockers), report=report if keep_report else None,
    )


def failure(target: str, kind: str, message: str) -> TargetResult:
    return TargetResult(target=target, verdict=None, error=message, error_kind=kind)


def fleet_report(results: list[TargetResult], target: TargetInfo | None, seconds: float = 0.0) -> FleetReport:
    """The fleet report over ``results`` (in the order the targets were given), with the shared blockers."""
    shared: dict[tuple[str, str, str], tuple[list[str], list[int], Counter[str]]] = {}
    for result in results:
        for b in result.blockers:
            targets, files, fixes = shared.setdefault((b.rule, b.rule_id, b.subject), ([], [], Counter()))
            targets.append(result.target)
            files.append(b.files)
            if b.fix:
                fixes[b.fix] += 1
    blockers = sorted(
        (SharedBlocker(rule, rule_id, subject, tuple(targets), sum(files), _most_common(fixes))
         for (rule, rule_id, subject), (targets, files, fixes) in shared.items()),
        key=lambda b: (-b.count, -b.files, b.rule_id, b.subject),
    )
    return FleetReport(FLEET_SCHEMA_VERSION, __version__, target, tuple(results), tuple(blockers), seconds)


def _most_common(fixes: Counter[str]) -> str | None:
    """The fix given most often; the first in sort order among equals (the same on every run)."""
    if not fixes:
        return None
    return min(fixes.items(), key=lambda item: (-item[1], item[0]))[0]
