"""Renderers turn a Report into text; the library never prints, the CLI writes what they return.

Every entry of ``RENDERERS`` is a pure ``Callable[[Report], str | bytes]`` (bytes: UTF-8, for JSON).
Some renderers take keyword options the CLI may pass by calling them directly:
``render_table(report, color=True)`` (the CLI decides: stdout is a TTY and ``NO_COLOR`` is unset) and
``render_junit(report, fail_on=...)`` (which verdicts count as failed testcases; default ``blocked``,
as ``--fail-on``).
"""

from __future__ import annotations

from collections.abc import Callable

from muslcheck.model.report import Report
from muslcheck.render.json import render_json
from muslcheck.render.junit import render_junit
from muslcheck.render.markdown import render_markdown
from muslcheck.render.sarif import render_sarif
from muslcheck.render.table import render_table, render_text

Renderer = Callable[[Report], str | bytes]


def _table(report: Report) -> str:
    return render_table(report, color=False)


def _junit(report: Report) -> str:
    return render_junit(report)


RENDERERS: dict[str, Renderer] = {
    "table": _table,
    "text": _table,  # the former name of "table"
    "json": render_json,
    "sarif": render_sarif,
    "junit": _junit,
    "markdown": render_markdown,
}

__all__ = [
    "RENDERERS",
    "Renderer",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_sarif",
    "render_table",
    "render_text",
]
