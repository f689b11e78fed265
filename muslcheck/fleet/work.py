"""One target's scan, as a worker runs it: in this process, a local worker process, or a Dask worker.

Everything a task carries pickles plainly (the options without their callable and open parts); the cache is
named, not shipped, and each worker process (each thread, as Store is not thread-safe) opens it once and scans
every target it gets through it. What comes back is the fleet report's summary of the target (``summarize``), made
where it was scanned; the whole report too, in the cache codec's compact columnar form, only when the fleet keeps
each target's report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from muslcheck.cache import CacheStore, Store, default_salt, open_store
from muslcheck.cache.codec import encode_report
from muslcheck.fleet.report import TargetResult, summarize
from muslcheck.model.errors import InputError, MuslcheckError, UsageError
from muslcheck.model.options import no_progress
from muslcheck.model.report import TargetInfo
from muslcheck.model.version import __version__
from muslcheck.scan import ScanOptions, scan


@dataclass(frozen=True)
class CacheSpec:
    """Where the report cache is: a directory (on each worker's machine) or an fsspec URL, and its bound."""

    location: str
    max_bytes: int


@dataclass(frozen=True)
class Task:
    index: int  # the target's place in the order given
    target: str
    options: ScanOptions  # without progress, catalog or cache (see ``portable``)
    cache: CacheSpec | None
    keep_report: bool = False  # send the whole report back, not only its summary


@dataclass(frozen=True)
class Outcome:
    index: int
    payload: bytes | None  # the report, ``encode_report``, when the task keeps it; None on error
    error: str | None
    error_kind: str | None  # "usage", "input", "internal"
    tool: str  # the worker's muslcheck version (a fleet must not mix two)
    seconds: float
    summary: TargetResult | None = None  # what the fleet report keeps of the target; None on error
    target: TargetInfo | None = None  # what the scan was judged against


def tool_identity() -> str:
    """The version, not the code digest: a checkout edited while a fleet runs is not another release (and each
    worker's cache salt holds its own code digest, so two codes never share an entry)."""
    return __version__


def portable(options: ScanOptions, jobs: int = 1) -> ScanOptions:
    """``options`` as a task carries them: what each worker opens for itself, or has no use for, left out;
    ``jobs`` processes judge its files (1 on Dask: a worker's threads are its parallelism)."""
    return replace(options, progress=no_progress, catalog=None, cache=None, jobs=jobs)


_local = threading.local()  # this thread's open stores, by CacheSpec


def _store(spec: CacheSpec) -> CacheStore:
    stores: dict[CacheSpec, CacheStore] = _local.__dict__.setdefault("stores", {})
    store = stores.get(spec)
    if store is None or (isinstance(store, Store) and not store.still_at_path()):  # a directory removed since
        store = stores[spec] = open_store(spec.location, salt=default_salt(), max_bytes=spec.max_bytes)
    return store


def run_task(task: Task) -> Outcome:
    """Scan one target; every error is part of the outcome, never raised (a worker outlives a bad target)."""
    start = time.monotonic()
    summary, target = None, None
    try:
        cache = _store(task.cache) if task.cache is not None else None
        report = scan(task.target, replace(task.options, cache=cache))
        summary, target = summarize(task.target, report), report.target
        payload, error, kind = encode_report(report) if task.keep_report else None, None, None
    except UsageError as e:
        payload, error, kind = None, str(e), "usage"
    except (InputError, MuslcheckError, OSError) as e:
        payload, error, kind = None, str(e), "input"
    except Exception as e:  # a bug on one target: one line in the report, the fleet goes on
        payload, error, kind = None, f"internal error: {e!r}", "internal"
    return Outcome(task.index, payload, error, kind, tool_identity(), time.monotonic() - start, summary, target)
