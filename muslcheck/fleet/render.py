"""The fleet report's formats: table (the default), json and markdown, each declared once as a FleetRenderer.

A single scan's formats (``muslcheck.render``) are untouched; SARIF and JUnit describe one target's files and
have no fleet form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import click

from muslcheck.fleet.report import FleetReport, SharedBlocker, TargetResult
from muslcheck.model.errors import UsageError
from muslcheck.model.report import Verdict
from muslcheck.render import RenderOptions
from muslcheck.render.markdown import _cell, _code

MAX_ROWS = 50  # markdown rows per table: short enough for a PR comment
_ICON = {"blocked": "❌", "needs-gcompat": "⚠️", "needs-packages": "📦", "native": "✅",
         "not-applicable": "⚪", "nothing-to-check": "⚪", "error": "💥"}
_STYLE = {"blocked": "red", "needs-gcompat": "yellow", "needs-packages": "cyan", "native": "green", "error": "red"}


@dataclass(frozen=True)
class FleetRenderer:
    name: str
    render: Callable[[FleetReport, RenderOptions], str | bytes]
    aliases: tuple[str, ...] = ()
    shows_summary: bool = False  # ends with the summary line: the CLI then does not repeat it on stderr


def summary_line(fleet: FleetReport) -> str:
    """``Fleet: 5 targets: 2 blocked, 2 native, 1 error; 3 shared blockers``."""
    counts = {k: v for k, v in fleet.summary.items() if k != "targets"}
    order = [v.value for v in Verdict] + ["error"]
    parts = ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
    return (f"Fleet: {len(fleet.targets)} target(s): {parts}; "
            f"{len(fleet.blockers)} blocker(s), {sum(1 for b in fleet.blockers if b.count > 1)} shared")


def _where(fleet: FleetReport) -> str:
    """`` on Alpine 3.23 (musl 1.2.5), gcompat not installed``, or why there is no target to name."""
    t = fleet.target
    if t is None:
        return "; no target could be scanned"
    where = f"Alpine {t.alpine} (musl {t.musl})" if t.alpine else f"musl {t.musl}"
    return f" on {where}, gcompat {'installed' if t.gcompat else 'not installed'}"


def _state(t: TargetResult) -> str:
    return t.verdict.value if t.verdict is not None else "error"


def render_table(fleet: FleetReport, *, color: bool = False) -> str:
    def paint(text: str, state: str) -> str:
        return click.style(text, fg=_STYLE.get(state), bold=state in _STYLE) if color else text

    lines = [f"muslcheck {fleet.tool_version}: fleet of {len(fleet.targets)} target(s){_where(fleet)}", ""]
    lines.append("TARGETS")
    width = max(len(_state(t)) for t in fleet.targets)
    for t in fleet.targets:
        state = _state(t)
        lines.append(f"  {paint(state.upper().ljust(width), state)}  {t.target}")
        if t.error is not None:
            lines.append(f"  {'':{width}}  {t.error_kind} error: {t.error}")
        lines.extend(f"  {'':{width}}  {tb.rule} {tb.subject}: {tb.files} file(s)" for tb in t.blockers)
    lines.append("")
    if fleet.blockers:
        lines.append("BLOCKERS (by the number of targets they block)")
        for b in fleet.blockers:
            lines.extend(_shared(b, len(fleet.targets)))
        lines.append("")
    lines.append(summary_line(fleet))
    return "\n".join(lines) + "\n"


def _shared(b: SharedBlocker, total: int) -> list[str]:
    lines = [f"  {b.count}/{total}  {b.rule_id} {b.rule} {b.subject}  ({b.files} file(s))"]
    if b.fix:
        lines.append(f"         fix: {b.fix}")
    lines.append(f"         in: {', '.join(b.targets)}")
    return lines


def render_markdown(fleet: FleetReport) -> str:
    worst = [t for t in fleet.targets if t.verdict is Verdict.BLOCKED]
    icon = _ICON["blocked" if worst else "error" if fleet.failed else "native"]
    head = f"**muslcheck fleet: {icon} {len(worst)} of {len(fleet.targets)} " \
           f"target(s) blocked**{_where(fleet).replace(' on ', ' — ', 1)}"
    lines = [head, "", "| target | verdict | blockers |", "|---|---|---|"]
    for t in fleet.targets[:MAX_ROWS]:
        state = _state(t)
        detail = _cell(t.error or "") if t.error is not None else \
            ", ".join(f"{_code(b.subject)} ({_cell(b.rule)})" for b in t.blockers)
        lines.append(f"| {_code(t.target)} | {_ICON.get(state, '')} {state} | {detail} |")
    if len(fleet.targets) > MAX_ROWS:
        lines += ["", f"… and {len(fleet.targets) - MAX_ROWS} more targets (see the full report)."]
    if fleet.blockers:
        lines += ["", "| blocker | targets | fix |", "|---|---|---|"]
        lines.extend(f"| {_cell(b.rule_id)} {_code(b.subject)} ({_cell(b.rule)}) | {b.count} | {_cell(b.fix or '')} |"
                     for b in fleet.blockers[:MAX_ROWS])
        if len(fleet.blockers) > MAX_ROWS:
            lines += ["", f"… and {len(fleet.blockers) - MAX_ROWS} more blockers (see the full report)."]
    lines += ["", "_" + _cell(summary_line(fleet)) + "_"]
    return "\n".join(lines) + "\n"


# Every fleet format, in the order --help lists them; the first is the default.
FLEET_FORMATS: tuple[FleetRenderer, ...] = (
    FleetRenderer("table", lambda fleet, options: render_table(fleet, color=options.color), ("text",), True),
    FleetRenderer("json", lambda fleet, options: fleet.to_json_bytes()),
    FleetRenderer("markdown", lambda fleet, options: render_markdown(fleet)),
)
FLEET_RENDERERS: Mapping[str, FleetRenderer] = MappingProxyType(
    {name: r for r in FLEET_FORMATS for name in (r.name, *r.aliases)})


def fleet_renderer_for(name: str) -> FleetRenderer:
    try:
        return FLEET_RENDERERS[name]
    except KeyError:
        known = ", ".join(r.name for r in FLEET_FORMATS)
        raise UsageError(f"output format {name!r} has no fleet form; a fleet report is written as: {known}") from None
