"""The versioned JSON form; its schema is muslcheck/schema/report.schema.json."""

from __future__ import annotations

from muslcheck.report import Report


def render_json(report: Report) -> str:
    return report.to_json()
