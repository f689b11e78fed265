"""What an output format is: a ``Renderer`` (its name, aliases and a pure render function), declared once
in its own module as ``RENDERER``, and the ``RenderOptions`` the caller builds once for every format."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
    # The same bytes as ``render`` in pieces (bytes only), for a caller that writes them to a file one by one: a
    # large report's document is then never one object in memory.
    pieces: Callable[[Report, RenderOptions], list[bytes]] | None = None


# --- names from the target, made safe for a terminal, the table, markdown and JUnit ---
# Names from the target made safe for a terminal, the table, markdown and JUnit.
#
# A file name can hold any byte but ``/`` and NUL: escape sequences (``ESC[2J``, ``ESC]0;title BEL``), bidi
# overrides that reorder what a reader sees, bytes that are not UTF-8 (kept as surrogate escapes). Every string of
# the report is shown visibly instead: a control character or a lone surrogate as ``\\xNN``, a bidi control or other
# format character as ``\\uNNNN``, a backslash before such an escape doubled so that nothing is ambiguous. Printable
# text (every ordinary name) is returned as the same object, so the output is byte-identical.
#
# JSON and SARIF do not use this: they carry names losslessly (see their modules).

_T = TypeVar("_T")

# Not printable (str.isprintable): controls, format characters (bidi), surrogates, separators other than space.
_HIDDEN = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                     r"\ud800-\udfff\ufff9-\ufffb]")


def _visible_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on, or hide, shown as an escape."""
    if text.isprintable():
        return text
    return _HIDDEN.sub(_visible_char, text.replace("\\x", "\\\\x").replace("\\u", "\\\\u"))


def escaped(value: _T) -> _T:
    """``value`` (a report, or any frozen dataclass, tuple, list or dict of them) with every string ``visible``.

    Unchanged parts are the same objects: an ordinary report is returned as it is."""
    return _escape(value)  # type: ignore[no-any-return]


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isprintable() else visible(value)
    if isinstance(value, tuple | list):
        items = [_escape(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        pairs = [(_escape(k), _escape(v)) for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)):
            return value
        return type(value)(pairs)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = _escape(old)
            if new is not old:
                changes[field.name] = new
        if not changes:
            return value
        copy = object.__new__(type(value))
        for field in dataclasses.fields(value):
            object.__setattr__(copy, field.name, changes.get(field.name, getattr(value, field.name)))
        return copy
    return value
