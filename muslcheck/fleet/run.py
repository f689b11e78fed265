"""Scan a fleet of targets: locally in worker processes (concurrent.futures), or on an existing Dask cluster.

The order of work puts images that share layers next to each other (sorted by their layer list, bottom
first), so those sharing a base run back to back; the report keeps the order the targets were given.

A layer blob shared by several targets is read once: the scans share one store, where ``read_image`` keeps each
layer's facts, and a target waits to start while another target's running scan is reading a shared layer it has
(``LayerClaims``); it then finds that layer's facts in the store. Targets with nothing in common run side by side.
"""

from __future__ import annotations

import logging
import os
import stat
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, replace
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from muslcheck.cache.codec import decode_report
from muslcheck.fleet.report import FleetReport, TargetResult, failure, fleet_report
from muslcheck.fleet.work import CacheSpec, Outcome, Task, portable, run_task, tool_identity
from muslcheck.ldso.tables import Catalog
from muslcheck.model.errors import InputError, MuslcheckError, UsageError
from muslcheck.model.ignore import Ignores, load_ignores
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import TargetInfo
from muslcheck.scan import ScanOptions, resolve_version
from muslcheck.targets.image.sources import open_image
from muslcheck.targets.reference import ReferenceKind, parse_reference

_log = logging.getLogger("muslcheck")  # the library never prints; unconfigured, a warning reaches stderr
MAX_DEFAULT_WORKERS = 8  # as a single scan's --jobs 0
DASK_CONNECT_TIMEOUT = "10s"
_PLAN_THREADS = 8  # reading manifests is I/O: a few at a time
_NO_PLAN = (ReferenceKind.DOCKER,)  # opening one exports the whole image: not worth it for the order alone


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet runs; what each target's scan finds is ``ScanOptions``."""

    jobs: int = 1  # local worker processes; 0: one per available CPU, at most 8
    dask: str | None = None  # a Dask scheduler's address ("tcp://HOST:PORT"): run there instead
    cache: CacheSpec | None = None  # the report cache every worker scans through
    keep_reports: bool = False  # keep each target's whole Report in its TargetResult
    progress: Progress = no_progress  # progress("scanning targets", done, total)


def read_targets_file(path: str | os.PathLike[str]) -> list[str]:
    """One reference per line; blank lines and ``#`` comments (whole lines or after a space) ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read the targets file: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: the targets file is not UTF-8 ({e.reason} at byte {e.start})") from e
    targets = []
    for line in text.splitlines():
        reference = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if reference:
            targets.append(reference)
    return targets


def scan_fleet(targets: Sequence[str], options: ScanOptions | None = None,
               fleet: FleetOptions | None = None) -> FleetReport:
    """Scan every target with ``options`` and gather one ``FleetReport``. A target that cannot be scanned is
    an error in its own entry; the others are unaffected. ``UsageError`` for an empty fleet or a Dask
    address without dask.distributed installed; ``InputError`` for a scheduler that cannot be reached."""
    if not targets:
        raise UsageError("no targets to scan")
    options = options or ScanOptions()
    if options.ignore is not None and not isinstance(options.ignore, Ignores):
        options = replace(options, ignore=load_ignores(options.ignore))  # read once, here, not on each worker
    resolve_version(options.catalog or Catalog(), options.alpine, options.musl)  # a bad one: one usage error
    fleet = fleet or FleetOptions()
    start = time.monotonic()
    given, targets = targets, list(dict.fromkeys(targets))  # a target named again is scanned once
    credentials = _readable_docker_config(options.docker_config) if any(map(_is_registry, targets)) else None
    per_target = [_with_credentials(target, options, credentials) for target in targets]
    layers = _layers(targets, per_target)
    order = _ordered(layers)
    claims = LayerClaims(order, [blobs for _, blobs in layers])
    if fleet.dask is not None:
        outcomes = _on_dask(fleet.dask, [Task(i, targets[i], portable(per_target[i]), fleet.cache, fleet.keep_reports)
                                           for i in order],
                            claims, fleet.progress)
    else:
        outcomes = _locally(targets, order, per_target, fleet, claims)
    results, target_info = _gather(targets, outcomes, fleet.keep_reports)
    by_target = dict(zip(targets, results, strict=True))
    return fleet_report([by_target[target] for target in given], target_info, time.monotonic() - start)


def work_order(targets: Sequence[str], options: ScanOptions | Sequence[ScanOptions]) -> list[int]:
    """The targets' indices, images sharing layers next to each other (by their diff_ids, bottom first);
    a target whose layers are not known (a directory, a docker: image, one that fails to open) keeps its
    place among those, before the images. ``options``: one for all targets, or one per target."""
    return _ordered(_layers(targets, options))


def _ordered(layers: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> list[int]:
    return sorted(range(len(layers)), key=lambda i: (layers[i][0], i))


def _layers(targets: Sequence[str], options: ScanOptions | Sequence[ScanOptions]
            ) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each target's layers: (diff_ids, for the order; blob digests, what a layer's facts are kept under); empty
    when they are not known."""
    each = [options] * len(targets) if isinstance(options, ScanOptions) else list(options)

    def layers_of(target: str, options: ScanOptions) -> tuple[tuple[str, ...], tuple[str, ...]]:
        try:
            ref = parse_reference(target)
            if not ref.is_image or ref.kind in _NO_PLAN:
                return (), ()
            with open_image(ref, platform=options.platform, insecure_registry=options.insecure_registry,
                            docker_config=options.docker_config) as image:
                return (tuple(layer.diff_id or layer.digest for layer in image.layers),
                        tuple(layer.digest for layer in image.layers))
        except (MuslcheckError, OSError):
            return (), ()  # the scan itself says what is wrong

    with ThreadPoolExecutor(min(_PLAN_THREADS, len(targets))) as pool:
        return list(pool.map(layers_of, targets, each))


class LayerClaims:
    """Which targets may start now so that no layer blob shared by several targets is read by two scans: a target
    waits while a running scan reads a shared layer it has; once that scan is done, the layer's facts are in the
    store, and the targets waiting for it find them there. A target is never held back by a layer already read."""

    def __init__(self, order: Sequence[int], blobs: Sequence[tuple[str, ...]]) -> None:
        holders = Counter(blob for i in order for blob in set(blobs[i]))
        self._shared = {i: frozenset(blob for blob in blobs[i] if holders[blob] > 1) for i in order}
        self._waiting = list(order)
        self._reading: dict[int, frozenset[str]] = {}  # running target -> the shared layers it reads
        self._read: set[str] = set()

    def ready(self) -> list[int]:
        """The waiting targets that may start now, in order; each claims the shared layers it will read."""
        started = []
        busy = set().union(*self._reading.values())
        for i in self._waiting:
            unread = self._shared[i] - self._read
            if unread & busy:
                continue
            started.append(i)
            self._reading[i] = unread
            busy |= unread
        self._waiting = [i for i in self._waiting if i not in self._reading]
        return started

    def finished(self, index: int) -> None:
        """``index``'s scan is done: the shared layers it read are in the store (or, if it failed, the next target
        that has them reads them)."""
        self._read |= self._reading.pop(index, frozenset())

    def __bool__(self) -> bool:
        return bool(self._waiting)


def _is_registry(target: str) -> bool:
    try:
        return parse_reference(target).kind is ReferenceKind.REGISTRY
    except MuslcheckError:
        return False  # its scan reports the bad reference


def _with_credentials(target: str, options: ScanOptions, docker_config: Path | None) -> ScanOptions:
    """Registry credentials go only to a registry target: no other scan reads, or is stopped by, a docker config."""
    return replace(options, docker_config=docker_config if _is_registry(target) else None)


def _readable_docker_config(given: Path | None) -> Path | None:
    """The docker config the registry targets use: ``given`` (a file, or a directory holding config.json), or
    None when there is none. One that cannot be read (unreadable, a FIFO, a device) is a warning on the
    ``muslcheck`` logger and the pulls go on anonymously; it is checked without blocking, never read here."""
    if given is None:
        return None
    path = given / "config.json" if given.is_dir() else given
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        try:
            problem = None if stat.S_ISREG(os.fstat(fd).st_mode) else "not a regular file"
        finally:
            os.close(fd)
    except OSError as e:
        problem = e.strerror or str(e)
    if problem is None:
        return given
    _log.warning("muslcheck: warning: %s: %s: no registry credentials are used", path, problem)
    return None


def local_workers(jobs: int) -> int:
    """``--jobs`` as a single scan reads it: 0 is one per available CPU, at most 8."""
    if jobs > 0:
        return jobs
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS)


def _locally(targets: Sequence[str], order: list[int], per_target: Sequence[ScanOptions],
             fleet: FleetOptions, claims: LayerClaims) -> Iterator[Outcome]:
    """One target per task in ``min(jobs, targets)`` worker processes, each scan with the jobs left over (a
    fleet of 2 on 8 CPUs: 2 workers judging with 4 processes each); in this process when there is one. A task
    starts when ``claims`` lets it (in order, one at a time, every claim holds anyway)."""
    workers = min(local_workers(fleet.jobs), len(targets))
    per_scan = max(1, local_workers(fleet.jobs) // workers)
    tasks = {i: Task(i, targets[i], portable(per_target[i], jobs=per_scan), fleet.cache, fleet.keep_reports)
             for i in order}
    fleet.progress("scanning targets", 0, len(tasks))
    if workers == 1:
        for done, i in enumerate(order, 1):
            yield run_task(tasks[i])
            fleet.progress("scanning targets", done, len(tasks))
        return
    # forkserver: workers start from a clean process, never from a fork of a caller's threads.
    method = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
        running: dict[Future[Outcome], int] = {}
        done = 0
        while claims or running:
            running.update((pool.submit(run_task, tasks[i]), i) for i in claims.ready())
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                claims.finished(index)
                try:
                    yield future.result()
                except BrokenProcessPool as e:  # a worker died (killed, out of memory): its targets failed
                    yield _lost(tasks[index], f"a worker process died: {e}")
                done += 1
                fleet.progress("scanning targets", done, len(tasks))


def _lost(task: Task, why: str) -> Outcome:
    return Outcome(task.index, None, f"internal error: {why}", "internal", "", 0.0)


def _on_dask(address: str, tasks: list[Task], claims: LayerClaims, progress: Progress) -> Iterator[Outcome]:
    """Every task on the Dask cluster at ``address``, highest priority first in the work order, each submitted when
    ``claims`` lets it start."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise UsageError("--dask needs dask.distributed: pip install 'muslcheck[fleet]'") from None
    with ExitStack() as stack:
        try:
            client = stack.enter_context(
                Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False))  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        run = uuid.uuid4().hex[:12]
        by_index = {task.index: (n, task) for n, task in enumerate(tasks)}
        futures: dict[Any, Task] = {}

        def submit_ready() -> list[Any]:
            submitted = []
            for i in claims.ready():
                n, task = by_index[i]
                future = client.submit(run_task, task, key=f"muslcheck-{run}-{task.index}", pure=False,
                                       priority=len(tasks) - n)
                futures[future] = task
                submitted.append(future)
            return submitted

        progress("scanning targets", 0, len(tasks))
        # This client is nobody's default (a caller's own stays theirs): as_completed is given its loop.
        completed = dask_completed(submit_ready(), loop=client.loop)  # type: ignore[no-untyped-call]
        for done, future in enumerate(completed, 1):
            task = futures[future]
            claims.finished(task.index)
            try:
                yield future.result()
            except Exception as e:  # the worker died (KilledWorker) or could not run the task
                yield _lost(task, f"on the Dask cluster: {e!r}")
            completed.update(submit_ready())  # type: ignore[no-untyped-call]
            progress("scanning targets", done, len(tasks))


def _gather(targets: Sequence[str], outcomes: Iterator[Outcome],
            keep_reports: bool) -> tuple[list[TargetResult], TargetInfo | None]:
    results: dict[int, TargetResult] = {}
    target_info = None
    here = tool_identity()
    for outcome in outcomes:
        target = targets[outcome.index]
        if outcome.tool and outcome.tool != here:
            raise UsageError(f"a worker runs muslcheck {outcome.tool}, this process {here}: install the same "
                             "muslcheck on every worker")
        if outcome.summary is None:
            results[outcome.index] = failure(target, outcome.error_kind or "internal", outcome.error or "failed")
            continue
        target_info = target_info or outcome.target
        if not keep_reports:
            results[outcome.index] = outcome.summary
            continue
        try:
            report = decode_report(outcome.payload or b"")
        except ValueError as e:
            results[outcome.index] = failure(target, "internal", f"internal error: undecodable report: {e}")
            continue
        results[outcome.index] = replace(outcome.summary, report=report)
    return [results[i] for i in range(len(targets))], target_info


__all__ = ["FleetOptions", "LayerClaims", "local_workers", "read_targets_file", "scan_fleet", "work_order"]
