"""What a scan is given: the musl target, the load context, the accepted findings, a progress callback.
Light to import: a cache hit, and the CLI until it scans, need none of the judging machinery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from muslcheck.model.ignore import NO_IGNORES, Ignores


class Context(StrEnum):
    """How a file is loaded: as a program, at a program's start-up, or by dlopen (RTLD_NOW or RTLD_LAZY)."""

    EXECUTABLE = "executable"
    STARTUP_LIBRARY = "startup-library"
    DLOPEN_NOW = "dlopen-now"
    DLOPEN_LAZY = "dlopen-lazy"


@dataclass(frozen=True)
class Options:
    musl: str
    alpine: str | None
    arch: str | None  # judge only files of this architecture; None: each for its own
    gcompat: bool  # gcompat is installed on the target
    context: Context | None  # override the load context of every dynamic file
    library_path: str | None
    preload: tuple[str, ...]
    ignores: Ignores = NO_IGNORES
    include_runtimes: bool = False  # judge glibc language runtimes instead of naming their Alpine variant


# Called as progress(stage, done, total or None); the CLI draws it, the library never prints.
Progress = Callable[[str, int, "int | None"], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    """The default: report nothing."""
