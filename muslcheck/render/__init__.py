"""Renderers turn a Report into text; the library never prints, the CLI writes what they return."""

from __future__ import annotations

from collections.abc import Callable

from muslcheck.render.json import render_json
from muslcheck.render.text import render_text
from muslcheck.report import Report

Renderer = Callable[[Report], str]

RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
}
