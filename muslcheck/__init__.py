"""muslcheck: can this application move to Alpine, and if not, what breaks and what fixes it?

The library API: ``scan(target, ScanOptions(...)) -> Report``. It never prints; errors derive
from ``MuslcheckError``.
"""

from __future__ import annotations

from muslcheck.model.errors import InputError, MalformedElf, MuslcheckError, UsageError
from muslcheck.model.options import Context
from muslcheck.model.report import FileReport, Report, Verdict
from muslcheck.model.version import __version__
from muslcheck.scan import ScanOptions, scan

__all__ = [
    "Context",
    "FileReport",
    "InputError",
    "MalformedElf",
    "MuslcheckError",
    "Report",
    "ScanOptions",
    "UsageError",
    "Verdict",
    "__version__",
    "scan",
]
