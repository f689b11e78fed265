"""The table (default) format: blockers first, fixes, notes, ignored findings, colour only on request."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from muslcheck.model.report import Report, Verdict, summary_line
from muslcheck.render import RENDERERS, RenderOptions, render_table
from tests.render.fixed_report import fixed_report
from tests.render.render_support import scan_samples


@pytest.fixture
def samples_report(samples_dir: Path) -> Report:
    return scan_samples(samples_dir)


def test_registered_with_its_alias_and_colour_option() -> None:
    report = fixed_report()
    assert RENDERERS["text"] is RENDERERS["table"]
    assert RENDERERS["table"].shows_summary
    for color in (False, True):
        assert RENDERERS["table"].render(report, RenderOptions(color=color)) == render_table(report, color=color)


def test_plain_by_default_colour_on_request() -> None:
    report = fixed_report()
    plain = render_table(report)
    coloured = render_table(report, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[31m" in coloured  # blocked in red
    assert click.unstyle(coloured) == plain


def test_order_fixes_notes_and_ignored() -> None:
    report = fixed_report()
    lines = render_table(report).splitlines()
    assert lines[1].startswith("note: .muslcheck.toml:4: ignore entry expired")
    heads = [line.split()[0] for line in lines if line and not line.startswith((" ", "note:", "muslcheck"))]
    assert heads[:3] == ["BLOCKED", "BLOCKED", "NEEDS-GCOMPAT"]
    assert "  fix: apk add gcompat  (glibc compatibility layer; it applies to this file's load context)" in lines
    assert any(line.startswith("  unresolved __printf_chk@GLIBC_2.3.4 ") and
               line.endswith(" [ignored: only reached in debug builds]") for line in lines)
    assert "  ignored: 1 finding(s) (see -o json)" in lines
    assert lines[-1] == summary_line(report)
    assert "SKIPPED (1)" in lines


def test_samples(samples_report: Report) -> None:
    text = render_table(samples_report)
    assert text.index("BLOCKED  /ifunc/app/bin/app") < text.index("NEEDS-GCOMPAT  /fortify/app/bin/fortify")
    assert text.splitlines()[-1].startswith(f"Verdict: {Verdict.BLOCKED.value} (")
