"""The versioned JSON form; its schema is muslcheck/schema/report.schema.json."""

from __future__ import annotations

from muslcheck.model.report import Report
from muslcheck.render.interface import Renderer


def render_json(report: Report) -> bytes:
    """UTF-8 JSON: written as it is, never copied into a ``str``."""
    return report.to_json_bytes()


def json_pieces(report: Report) -> list[bytes]:
    """``render_json`` in pieces that concatenate to it, about one per file (``Report.json_pieces``)."""
    return report.json_pieces()


RENDERER = Renderer("json", lambda report, options: render_json(report),
                    pieces=lambda report, options: json_pieces(report))
