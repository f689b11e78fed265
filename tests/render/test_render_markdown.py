"""Markdown: a badge line first, then a table of blockers with `|` escaped, then packages to install."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from muslcheck.model.report import Report, Verdict, file_components
from muslcheck.render import RENDERERS, RenderOptions
from muslcheck.render.markdown import MAX_ROWS, render_markdown
from tests.render.fixed_report import INTERP, file_report, finding, fixed_report
from tests.render.render_support import scan_samples

ROW = re.compile(r"^\| .* \|$")


@pytest.fixture
def samples_report(samples_dir: Path) -> Report:
    return scan_samples(samples_dir)


def cells(row: str) -> list[str]:
    """A table row's cells, split on unescaped pipes as GitHub does."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if ROW.match(line)]
    assert lines[0] == "| file | problem | fix |"
    return [cells(line) for line in lines[1:]]


def test_markdown_registered() -> None:
    assert RENDERERS["markdown"].render(fixed_report(), RenderOptions()) == render_markdown(fixed_report())


def test_samples_badge_and_blockers(samples_report: Report) -> None:
    text = render_markdown(samples_report)
    first = text.splitlines()[0]
    assert first.startswith("**muslcheck: ❌ blocked** — Alpine ")
    n_blocked = sum(1 for c in samples_report.components if c.verdict is Verdict.BLOCKED)
    assert f" · {n_blocked} blocked" in first
    table = rows(text)
    assert all(len(r) == 3 for r in table)
    # a library judged inside the load of a program names that program (the load graph decides its context)
    assert ["`/ifunc/app/lib/libifunc.so`", "MC005 1 relocation(s) of type R\\_X86\\_64\\_IRELATIVE (37) in "
            "/ifunc/app/bin/../lib/libifunc.so (in the load of /ifunc/app/bin/app)",
            "rebuild without IFUNC / against musl"] in table
    assert not any("fortify" in r[0] for r in table)  # needs-gcompat is not a blocker
    # one apk line for the whole target: cited names, and so:SONAME where no name is verified (libdep.so)
    assert "- Install: `apk add gcompat libgcc libstdc++ so:libdep.so`" in text


def test_badge_for_each_overall_verdict() -> None:
    base = fixed_report()
    for verdict, icon in ((Verdict.NATIVE, "✅"), (Verdict.NEEDS_GCOMPAT, "⚠️"), (Verdict.NEEDS_PACKAGES, "📦"),
                          (Verdict.NOTHING_TO_CHECK, "⚪")):
        first = render_markdown(replace(base, verdict=verdict)).splitlines()[0]
        assert first.startswith(f"**muslcheck: {icon} {verdict.value}** — Alpine 3.23 (musl 1.2.5)")


def test_pipes_escaped_and_columns_kept() -> None:
    text = render_markdown(fixed_report())
    table = rows(text)
    assert len(table) == 4  # 3 live blockers of the server, 1 of the nested library
    latent = next(r for r in table if r[1].startswith("MC004"))
    assert "crashes \\| on the first call" in latent[1]
    assert latent[0] == "`/opt/app/app.jar!/lib/libnative.so`"
    assert "| 1 finding(s) ignored" not in text
    assert "_1 finding(s) ignored by the ignore file" in text


def test_rows_capped() -> None:
    path = "/bin/huge|app"
    many = tuple(finding("unresolved-symbol", Verdict.BLOCKED, path, path, f"sym{i}", f"sym{i} is not defined",
                         "rebuild against musl") for i in range(MAX_ROWS + 7))
    huge = file_report(path, Verdict.BLOCKED, interpreter=INTERP, findings=many)
    report = replace(fixed_report(), files=(huge,), components=file_components((huge,)), skipped=(), notes=())
    text = render_markdown(report)
    table = rows(text)
    assert len(table) == MAX_ROWS
    assert table[0][0] == "`/bin/huge\\|app`"
    assert "… and 7 more blockers (see the full report)." in text
    assert text.splitlines()[0] == "**muslcheck: ❌ blocked** — Alpine 3.23 (musl 1.2.5) · 1 blocked"


def test_no_table_without_blockers() -> None:
    report = fixed_report()
    files = tuple(f for f in report.files if f.verdict is not Verdict.BLOCKED)
    report = replace(report, files=files, components=file_components(files), verdict=Verdict.NEEDS_GCOMPAT)
    text = render_markdown(report)
    assert "| file |" not in text
    assert "`apk add gcompat libstdc++`" in text
