"""Renderers turn a Report into text; the library never prints, the CLI writes what they return.

Each format is one module of this package that declares its ``Renderer`` once, as ``RENDERER``
(``interface.py``: name, aliases, ``render(report, options)``); ``FORMATS`` collects them, and
everything else (the ``-o`` names and aliases, ``--help``, the CLI's choices) is derived from it.
The ``render_*`` functions stay importable for callers that want one format directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from muslcheck.model.errors import UsageError
from muslcheck.render import dockerfile, json, junit, markdown, sarif, table
from muslcheck.render.dockerfile import render_dockerfile
from muslcheck.render.interface import Renderer, RenderOptions
from muslcheck.render.json import render_json
from muslcheck.render.junit import render_junit
from muslcheck.render.markdown import render_markdown
from muslcheck.render.sarif import render_sarif
from muslcheck.render.table import render_table, render_text

# Every format, in the order --help lists them; the first is the default. A new format: its module here.
FORMATS: tuple[Renderer, ...] = tuple(module.RENDERER for module in (table, json, sarif, junit, markdown, dockerfile))
DEFAULT_FORMAT = FORMATS[0]


def _by_name(formats: tuple[Renderer, ...]) -> Mapping[str, Renderer]:
    """Every name and alias to its format; a name claimed twice is a programming error, caught at import."""
    by_name: dict[str, Renderer] = {}
    for renderer in formats:
        for name in (renderer.name, *renderer.aliases):
            if name in by_name:
                raise ValueError(f"output format name {name!r} is claimed by {by_name[name].name!r} "
                                 f"and {renderer.name!r}")
            by_name[name] = renderer
    return MappingProxyType(by_name)


RENDERERS = _by_name(FORMATS)


def describe_formats() -> str:
    """``table (alias: text), json, ...``: the names ``-o`` accepts, for --help and error messages."""
    return ", ".join(
        f"{r.name} ({'aliases' if len(r.aliases) > 1 else 'alias'}: {', '.join(r.aliases)})" if r.aliases else r.name
        for r in FORMATS
    )


def renderer_for(name: str) -> Renderer:
    """The format that ``name`` (a name or an alias) selects; UsageError, listing the known ones, otherwise."""
    try:
        return RENDERERS[name]
    except KeyError:
        raise UsageError(f"unknown output format {name!r}; known: {describe_formats()}") from None


__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "RENDERERS",
    "RenderOptions",
    "Renderer",
    "describe_formats",
    "render_dockerfile",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_sarif",
    "render_table",
    "render_text",
    "renderer_for",
]
