"""What an output format is: a ``Renderer`` (its name, aliases and a pure render function), declared once
in its own module as ``RENDERER``, and the ``RenderOptions`` the caller builds once for every format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from muslcheck.model.report import Report, Verdict


@dataclass(frozen=True)
class RenderOptions:
    """What the caller decides for every format; each format reads only what concerns it."""

    color: bool = False  # ANSI colour; the CLI sets it only for stdout on a terminal without NO_COLOR
    fail_on: Verdict = Verdict.BLOCKED  # the --fail-on gate: JUnit fails the testcases that reach it


@dataclass(frozen=True)
class Renderer:
    name: str  # what `-o NAME` selects
    render: Callable[[Report, RenderOptions], str | bytes]  # bytes: UTF-8, written as they are
    aliases: tuple[str, ...] = ()  # other names `-o` accepts, listed by --help
    # Written for a person, ending with the summary line: when it goes to stdout, the CLI does not
    # repeat the notes and the summary on stderr.
    shows_summary: bool = False
