"""Short, readable text: blockers first, each with its fix; a summary line last."""

from __future__ import annotations

from muslcheck.report import FileReport, Report, Verdict

_ORDER = (Verdict.BLOCKED, Verdict.NEEDS_GCOMPAT, Verdict.NEEDS_PACKAGES, Verdict.NATIVE, Verdict.NOT_APPLICABLE)
_MAX_SYMBOLS = 12


def render_text(report: Report) -> str:
    t = report.target
    where = f"Alpine {t.alpine} (musl {t.musl})" if t.alpine else f"musl {t.musl}"
    lines = [f"muslcheck {report.tool_version}: {report.source} on {where}, "
             f"gcompat {'installed' if t.gcompat else 'not installed'}", ""]
    for verdict in _ORDER:
        group = [f for f in report.files if f.verdict is verdict]
        if not group:
            continue
        if verdict in (Verdict.NATIVE, Verdict.NOT_APPLICABLE):
            lines.append(f"{verdict.value.upper()} ({len(group)})")
            lines.extend(f"  {f.path}" + (f"  [{f.notes[0]}]" if verdict is Verdict.NOT_APPLICABLE else "")
                         for f in group)
            lines.append("")
            continue
        for f in group:
            lines.extend(_details(f))
            lines.append("")
    if report.skipped:
        lines.append(f"SKIPPED ({len(report.skipped)})")
        lines.extend(f"  {s.path}: {s.reason}" for s in report.skipped)
        lines.append("")
    counts = report.summary
    parts = ", ".join(f"{counts[v.value]} {v.value}" for v in _ORDER if counts[v.value])
    lines.append(f"Verdict: {report.verdict.value} ({len(report.files)} ELF files: {parts or 'none'}"
                 f"{f'; {len(report.skipped)} skipped' if report.skipped else ''})")
    return "\n".join(lines) + "\n"


def _details(f: FileReport) -> list[str]:
    out = [f"{f.verdict.value.upper()}  {f.path}  ({f.kind}, {f.arch}, {f.context})"]
    for lib in f.missing_libraries:
        hint = f"; apk add {lib.package}" if lib.package else ""
        out.append(f"  missing library {lib.name} (needed by {lib.needed_by}: {lib.reason}{hint})")
    symbols = list(f.unresolved_symbols)
    for s in symbols[:_MAX_SYMBOLS]:
        where = "" if s.file == f.path else f" in {s.file}"
        tags = [s.effect]
        if s.gcompat:
            tags.append("gcompat has it")
        if s.pending_on:
            tags.append(f"may come from {s.pending_on}")
        version = f"@{s.version}" if s.version else ""
        out.append(f"  unresolved {s.name}{version}{where} ({', '.join(s.relocations)}; {'; '.join(tags)})")
    if len(symbols) > _MAX_SYMBOLS:
        out.append(f"  ... and {len(symbols) - _MAX_SYMBOLS} more unresolved symbols (see -o json)")
    for r in f.unsupported_relocations:
        out.append(f"  unsupported relocation {r.name} (type {r.type}) x{r.count} in {r.file}")
    for e in f.tls_errors:
        out.append(f"  initial-exec TLS{f' {e.symbol}' if e.symbol else ''} in {e.file} resolves to "
                   f"dynamic TLS of {e.definer}")
    out.extend(f"  note: {n}" for n in f.notes)
    out.extend(f"  fix: {x}" for x in f.fixes)
    return out
