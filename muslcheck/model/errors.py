"""The one error hierarchy of the library. The CLI maps each class to an exit code."""

from __future__ import annotations


class MuslcheckError(Exception):
    """Root of every error muslcheck raises on purpose."""


class UsageError(MuslcheckError):
    """The caller asked for something that does not exist (unknown version, bad option)."""


class InputError(MuslcheckError):
    """The thing to scan cannot be read at all (missing path, unreadable root)."""


class MalformedElf(MuslcheckError, ValueError):
    """A file starts with the ELF magic but its structures are inconsistent or truncated."""


class WorkerDied(MuslcheckError):
    """A worker process of the scan was killed (a signal, the out-of-memory killer): the scan stopped."""
