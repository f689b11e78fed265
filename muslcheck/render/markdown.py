"""Markdown for PR comments and ``$GITHUB_STEP_SUMMARY``: short on purpose.

The first line is a badge with the overall verdict, the target and the counts; then a table of the
blockers (one row per live finding of a blocked file, capped), then the plan: base images, reinstall
steps, upgrades, one ``apk add`` line, what gcompat covers, what needs a rebuild, what runs degraded.
The full story is in the table, JSON or SARIF output.
"""

from __future__ import annotations

import re

from muslcheck.model.report import Report, Verdict, plan_sections
from muslcheck.render.interface import Renderer, escaped

MAX_ROWS = 50
_MARKUP = re.compile(r"[\\`*_<>\[\]|]")
_ORDER = (Verdict.BLOCKED, Verdict.DEGRADED, Verdict.NEEDS_GCOMPAT, Verdict.NEEDS_PACKAGES, Verdict.NATIVE,
          Verdict.NOT_APPLICABLE)
_ICON = {
    Verdict.BLOCKED: "❌",
    Verdict.DEGRADED: "🟠",
    Verdict.NEEDS_GCOMPAT: "⚠️",
    Verdict.NEEDS_PACKAGES: "📦",
    Verdict.NATIVE: "✅",
    Verdict.NOT_APPLICABLE: "⚪",
    Verdict.NOTHING_TO_CHECK: "⚪",
}


def render_markdown(report: Report) -> str:
    report = escaped(report)  # names from the target, shown visibly
    lines = [badge(report), ""]
    rows = [
        (f.path, f"{x.rule_id} {x.message}", x.fix or "")
        for f in report.files
        if f.verdict is Verdict.BLOCKED
        for x in f.findings
        if x.ignored is None and x.level is Verdict.BLOCKED
    ]
    if rows:
        lines.append("| file | problem | fix |")
        lines.append("|---|---|---|")
        lines.extend(f"| {_code(path)} | {_cell(problem)} | {_cell(fix)} |" for path, problem, fix in rows[:MAX_ROWS])
        if len(rows) > MAX_ROWS:
            lines.append("")
            lines.append(f"… and {len(rows) - MAX_ROWS} more blockers (see the full report).")
        lines.append("")
    sections = plan_sections(report.plan)
    if sections:
        lines.append("**Plan**, in this order:")
        lines.append("")
        for heading, items in sections:
            lines.append(f"- {heading}: " + "; ".join(_code(i) if heading == "Install" else _cell(i) for i in items))
        lines.append("")
    ignored = sum(1 for f in report.files for x in f.findings if x.ignored is not None)
    extra = []
    if ignored:
        extra.append(f"{ignored} finding(s) ignored by the ignore file")
    if report.notes:
        extra.append(f"{len(report.notes)} note(s): " + "; ".join(_cell(n) for n in report.notes))
    if extra:
        lines.append("_" + " · ".join(extra) + "_")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


RENDERER = Renderer("markdown", lambda report, options: render_markdown(report))


def badge(report: Report) -> str:
    """``**muslcheck: ❌ blocked** — Alpine 3.23 (musl 1.2.5) · 3 blocked · 2 needs-gcompat``."""
    t = report.target
    where = f"Alpine {t.alpine} (musl {t.musl})" if t.alpine else f"musl {t.musl}"
    if t.gcompat:
        where += " with gcompat"
    counts = {v: 0 for v in _ORDER}
    for c in report.components:
        if c.verdict in counts:
            counts[c.verdict] += 1
    parts = [f"{n} {v.value}" for v, n in counts.items() if n]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    verdict = report.verdict
    return f"**muslcheck: {_ICON[verdict]} {verdict.value}** — " + " · ".join([where, *parts])


def _cell(text: str) -> str:
    """Plain text in one table cell: one line, Markdown punctuation and ``|`` escaped."""
    return _MARKUP.sub(r"\\\g<0>", " ".join(text.split()))


def _code(text: str) -> str:
    """A path as a code span; ``|`` is still escaped (GitHub splits table cells on it even there)."""
    inner = " ".join(text.split())
    if "`" in inner:
        return _cell(inner)
    return "`" + inner.replace("|", "\\|") + "`"
