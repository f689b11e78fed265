"""The default, human format: grouped by verdict, blockers first, each with its fix; a summary line last.

Colour is opt-in (``color=True``, ``RenderOptions.color``): the CLI decides (stdout is a TTY and
``NO_COLOR`` is unset); this module never looks at the environment.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from muslcheck.model.report import (
    Component,
    Ecosystem,
    FileReport,
    Finding,
    Report,
    Verdict,
    plan_sections,
    summary_line,
)
from muslcheck.render.interface import Renderer, escaped

_ORDER = (Verdict.BLOCKED, Verdict.DEGRADED, Verdict.NEEDS_GCOMPAT, Verdict.NEEDS_PACKAGES, Verdict.NATIVE,
          Verdict.NOT_APPLICABLE)
_MAX_SYMBOLS = 12
_STYLE: dict[Verdict, tuple[str | None, bool]] = {  # (foreground, bold); None: dim
    Verdict.BLOCKED: ("red", True),
    Verdict.DEGRADED: ("magenta", True),
    Verdict.NEEDS_GCOMPAT: ("yellow", True),
    Verdict.NEEDS_PACKAGES: ("cyan", True),
    Verdict.NATIVE: ("green", True),
    Verdict.NOT_APPLICABLE: (None, False),
    Verdict.NOTHING_TO_CHECK: (None, False),
}

Paint = Callable[[str, Verdict], str]


def render_table(report: Report, *, color: bool = False) -> str:
    report = escaped(report)  # names from the target, shown visibly
    paint: Paint = _ansi if color else _plain
    fix_label = click.style("fix:", fg="green") if color else "fix:"
    t = report.target
    where = f"Alpine {t.alpine} (musl {t.musl})" if t.alpine else f"musl {t.musl}"
    lines = [f"muslcheck {report.tool_version}: {report.source} on {where}, "
             f"gcompat {'installed' if t.gcompat else 'not installed'}"]
    lines.extend(f"note: {n}" for n in report.notes)
    lines.append("")
    grouped = [c for c in report.components if c.ecosystem is not Ecosystem.FILE]
    grouped_ids = {c.id for c in grouped}
    if grouped:
        lines.append(f"COMPONENTS ({len(grouped)}; loose files below)")
        for verdict in _ORDER:
            for c in grouped:
                if c.verdict is verdict:
                    lines.extend(_component(c, paint, fix_label))
        lines.append("")
        lines.append("FILES")
    for verdict in _ORDER:
        group = [f for f in report.files if f.verdict is verdict]
        if not group:
            continue
        if verdict in (Verdict.NATIVE, Verdict.NOT_APPLICABLE):
            lines.append(paint(f"{verdict.value.upper()} ({len(group)})", verdict))
            in_components = [f for f in group if f.component in grouped_ids]
            if in_components:
                lines.append(f"  ({len(in_components)} of the components above)")
            for f in group:
                if f.component in grouped_ids:
                    continue
                extra = f"  [{f.notes[0]}]" if verdict is Verdict.NOT_APPLICABLE and f.notes else ""
                ignored = _ignored_count(f)
                if ignored:
                    extra += f"  [ignored: {ignored} finding(s), see -o json]"
                lines.append(f"  {f.path}{extra}")
            lines.append("")
            continue
        for f in group:
            lines.extend(_details(f, paint, fix_label))
            lines.append("")
    if report.skipped:
        lines.append(f"SKIPPED ({len(report.skipped)})")
        lines.extend(f"  {s.path}: {s.reason}" for s in report.skipped)
        lines.append("")
    sections = plan_sections(report.plan)
    if sections:
        lines.append("PLAN (in this order)")
        for heading, items in sections:
            lines.append(f"  {heading}:")
            lines.extend(f"    {item}" for item in items)
        lines.append("")
    ignored_total = sum(_ignored_count(f) for f in report.files)
    if ignored_total:
        lines.append(f"Ignored: {ignored_total} finding(s) accepted by the ignore file (listed in -o json)")
    lines.append(paint(summary_line(report), report.verdict))
    return "\n".join(lines) + "\n"


def render_text(report: Report) -> str:
    """The former name of the colourless table."""
    return render_table(report)


RENDERER = Renderer(
    "table", lambda report, options: render_table(report, color=options.color), aliases=("text",), shows_summary=True
)


def _plain(text: str, verdict: Verdict) -> str:
    return text


def _ansi(text: str, verdict: Verdict) -> str:
    fg, bold = _STYLE[verdict]
    return click.style(text, fg=fg, bold=bold, dim=fg is None)


def _ignored_count(f: FileReport) -> int:
    return sum(1 for x in f.findings if x.ignored is not None)


def _ignored_reason(f: FileReport, rules: tuple[str, ...], obj: str, subject: str) -> str:
    """' [ignored: REASON]' when an ignored finding covers this line, else ''."""
    hit: Finding | None = next(
        (x for x in f.findings if x.ignored is not None and x.rule in rules and x.object == obj
         and x.subject == subject),
        None,
    )
    return f" [ignored: {hit.ignored}]" if hit is not None else ""


def _component(c: Component, paint: Paint, fix_label: str) -> list[str]:
    title = f"{c.name} {c.version}" if c.version else c.name
    out = [paint(f"  {c.verdict.value.upper():<15}", c.verdict) + f" {title} ({c.ecosystem}: {c.location})"]
    # what its loader picks is not what loads when the component is blocked or degraded
    picked = "selected on musl" if c.verdict in (Verdict.BLOCKED, Verdict.DEGRADED) else "loads on musl"
    for arch, path in sorted(c.selected.items()):
        if c.ecosystem in (Ecosystem.MAVEN, Ecosystem.NPM) and path != c.location:
            out.append(f"{'':18}{picked} ({arch}): {path.rsplit('!/', 1)[-1]}")
    if c.lost:
        out.append(f"{'':18}lost: {c.lost}")
    out.extend(f"{'':18}note: {n}" for n in c.notes)
    out.extend(f"{'':18}{fix_label} {x}" for x in c.fixes[:3])
    return out


def _details(f: FileReport, paint: Paint, fix_label: str) -> list[str]:
    out = [paint(f"{f.verdict.value.upper()}", f.verdict) + f"  {f.path}  ({f.kind}, {f.arch}, {f.context})"]
    for lib in f.missing_libraries:
        hint = f"; apk add {lib.package}" if lib.package else ""
        ignored = _ignored_reason(f, ("missing-library", "needs-package"), lib.needed_by, lib.name)
        out.append(f"  missing library {lib.name} (needed by {lib.needed_by}: {lib.reason}{hint}){ignored}")
    symbols = list(f.unresolved_symbols)
    for s in symbols[:_MAX_SYMBOLS]:
        where = "" if s.file == f.path else f" in {s.file}"
        tags: list[str] = [s.effect]
        if s.gcompat:
            tags.append("gcompat has it")
        if s.pending_on:
            tags.append(f"may come from {s.pending_on}")
        version = f"@{s.version}" if s.version else ""
        ignored = _ignored_reason(f, ("unresolved-symbol", "latent-symbol"), s.file, s.name)
        out.append(f"  unresolved {s.name}{version}{where} ({', '.join(s.relocations)}; {'; '.join(tags)}){ignored}")
    if len(symbols) > _MAX_SYMBOLS:
        out.append(f"  ... and {len(symbols) - _MAX_SYMBOLS} more unresolved symbols (see -o json)")
    for r in f.unsupported_relocations:
        ignored = _ignored_reason(f, ("unsupported-relocation",), r.file, r.name)
        out.append(f"  unsupported relocation {r.name} (type {r.type}) x{r.count} in {r.file}{ignored}")
    for e in f.tls_errors:
        out.append(f"  initial-exec TLS{f' {e.symbol}' if e.symbol else ''} in {e.file} resolves to "
                   f"dynamic TLS of {e.definer}")
    out.extend(f"  note: {n}" for n in f.notes)
    out.extend(f"  {fix_label} {x}" for x in f.fixes)
    ignored_n = _ignored_count(f)
    if ignored_n:
        out.append(f"  ignored: {ignored_n} finding(s) (see -o json)")
    return out
