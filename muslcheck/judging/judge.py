"""Judge each ELF file of a tree: load it as musl would, in its context, with and without gcompat. The load graph
decides the context: a library that other files load is judged inside their loads.

Judging can run in worker processes (``jobs``): each worker reads the symbols of its share of files
(and of the libraries they load) itself, and only the file reports cross back to the parent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TypeVar

from muslcheck.apps.application import Application
from muslcheck.elf import ElfFacts, ElfType
from muslcheck.judging.reuse import RecordingRoot, Reuse, replaced_within
from muslcheck.judging.verdict import Problems, decide, file_report, problems
from muslcheck.ldso.facts import ElfFile, FactsCache, NotLoadable
from muslcheck.ldso.load import Effect, LoadedObject, LoadResult, RelocationMemo, Target, gcompat_stub_name, load
from muslcheck.ldso.search import is_reserved
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog
from muslcheck.ldso.tree import Resolved, RootFS
from muslcheck.model.errors import WorkerDied
from muslcheck.model.ignore import Ignores
from muslcheck.model.kept import Inputs, ReachRecord, RootRecord
from muslcheck.model.options import Context, Options, Progress, no_progress
from muslcheck.model.report import FileKind, FileReport, Finding, Skip, Verdict
from muslcheck.targets.archives import ARCHIVE_SEPARATOR

_RELEASE_EVERY = 256  # roots judged between two returns of free memory to the system (about 1 ms each)
# DT_NEEDED entries the reach loads of one scan may walk (a load walks those of every object it brings in). Past it,
# the libraries left get no reach: each is judged in the load of a root that brings it in, or alone. The reach of n
# libraries that each need all the others is n loads of n^2 entries (400: 98 s); the benchmark trees walk 2,000-22,000.
REACH_BUDGET = 2_000_000
PARALLEL_MIN_FILES = 100  # below this, starting workers costs more than it saves (measured: docs/performance.md)
MAX_DEFAULT_JOBS = 8
_CHUNKS_PER_WORKER = 8  # small shares balance files of very different cost


@dataclass(frozen=True)
class KeptJudging:
    """What the judging keeps for the next scan (``reuse``), and how many loads it took from the last one."""

    roots: tuple[RootRecord, ...]
    reach: tuple[ReachRecord, ...]
    reused: int


@dataclass(frozen=True)
class Judged:
    reports: tuple[FileReport, ...]  # in the order of the files given, less the skipped ones
    skipped: tuple[Skip, ...]  # files whose symbol tables turned out malformed when read in full
    kept: KeptJudging | None = None  # with ``reuse``: the records for the next scan


def kind_of(facts: ElfFacts) -> FileKind:
    if facts.elf_type not in (ElfType.EXEC, ElfType.DYN):
        return FileKind.OTHER
    if not facts.has_dynamic or (facts.interpreter is None and facts.pie):
        return FileKind.STATIC
    if facts.interpreter is not None or facts.elf_type is ElfType.EXEC:
        return FileKind.EXECUTABLE
    return FileKind.SHARED_LIBRARY


def default_jobs() -> int:
    """One worker per CPU this process may run on (the affinity mask, where the platform has one) that other work
    leaves idle, at most MAX_DEFAULT_JOBS: past that, each worker's share of files is small and its caches cold.
    Other work is the lower of the 1-minute load average and the tasks runnable right now (besides this one): the
    average alone still counts a scan that just ended. Measured (docs/performance.md): on 2 idle cores two workers
    beat one from 100 ELF files on; with both cores busy a busy machine gets one process, never slower than -j 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    idle = int(cpus - _other_work() + 0.5)
    return max(1, min(idle, cpus, MAX_DEFAULT_JOBS))


def _other_work() -> float:
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average here
        return 0.0
    runnable = _runnable_others()
    return average if runnable is None else min(average, float(runnable))


def _runnable_others() -> int | None:
    """The tasks runnable right now besides this one, where /proc tells."""
    try:  # "0.52 0.58 0.59 3/170 12345": the fourth field counts the runnable tasks, this one included
        return max(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1, 0)
    except (OSError, IndexError, ValueError):
        return None


def judge(
    root: RootFS,
    cache: FactsCache,
    files: Sequence[ElfFile],
    options: Options,
    catalog: Catalog,
    progress: Progress = no_progress,
    app: Application | None = None,
    jobs: int = 1,
    replaced: Mapping[str, str] | None = None,
    meanwhile: Callable[[], object] | None = None,
    reuse: Reuse | None = None,
) -> Judged:
    """Judge ``files``; with ``jobs`` > 1 (and a platform that can fork), in that many worker processes, and
    with ``jobs`` 0 in ``default_jobs()``. The result does not depend on ``jobs``. ``meanwhile`` is called
    once the workers run (so a thread it starts is not forked): work to overlap with the judging. ``replaced``
    maps the files the Alpine base replaces (OS packages, glibc runtimes) to their owner. With ``reuse`` (the last
    scan's records and what changed since), a load whose inputs did not change is not judged again, and the
    records for the next scan come back in ``Judged.kept``.

    The load graph decides each library's context. Roots are the executables, what a host loads by itself, and
    the libraries no load reaches; each root is judged in its own load. A library that roots load is judged
    inside each of those loads (their rpaths, ``$ORIGIN``, what they loaded before it), and its report is the
    first of the worst. One that no root load reaches is judged alone. A ``--context`` makes every file a root."""
    judged = _judge_all(root, cache, files, options, catalog, progress, app, jobs, replaced, meanwhile, reuse)
    release_freed_memory()  # the loads' memos are gone: the report's rendering need not grow past them
    return judged


def _judge_all(
    root: RootFS,
    cache: FactsCache,
    files: Sequence[ElfFile],
    options: Options,
    catalog: Catalog,
    progress: Progress,
    app: Application | None,
    jobs: int,
    replaced: Mapping[str, str] | None,
    meanwhile: Callable[[], object] | None,
    reuse: Reuse | None,
) -> Judged:
    replaced = replaced or {}
    judging = _Judging(root, cache, options, catalog, app, replaced, reuse)
    jobs = jobs or default_jobs()
    reports: dict[str, FileReport] = {}
    skipped: dict[str, Skip] = {}
    executables: list[tuple[ElfFile, FileKind]] = []
    libraries: list[tuple[ElfFile, FileKind]] = []
    for f in files:
        kind = kind_of(f.facts)
        reason = _not_applicable(f.facts, kind, options)
        if reason is None and app is not None:
            reason = app.unused.get(f.path)
        if reason is None and (owner := replaced.get(f.path)) is not None:
            reason = f"owned by the OS package {owner}: the Alpine base image provides its own"
        if reason is not None:
            reports[f.path] = _plain_report(f, kind, Verdict.NOT_APPLICABLE, reason)
        elif kind is FileKind.STATIC:
            reports[f.path] = _plain_report(f, kind, Verdict.NATIVE, "statically linked: no dynamic loader involved")
        elif _as_program(kind, options):
            executables.append((f, kind))
        else:
            libraries.append((f, kind))

    judging.libraries = {f.identity: f for f, _ in libraries}
    # What each library's own load reaches, read before the workers fork (headers only: no symbol is read).
    reach = _reach(judging, libraries, {f.identity: f for f in files}) if judging.graph else {}
    candidates = [*executables, *libraries]
    first_library = len(executables)
    by_path = {f.path: f for f, _ in candidates}
    outcomes: dict[str, _Outcome] = {}  # root path -> its outcome, judged now or reused
    index = {f.path: i for i, (f, _) in enumerate(candidates)}
    # library -> its report in the first of its worst loads among the roots judged now: only that one can be chosen
    settled: dict[object, _Dependency] = {}

    def settle(identity: object, dependency: _Dependency) -> None:
        seen = settled.get(identity)
        if seen is None or dependency.severity > seen.severity or (
                dependency.severity == seen.severity and index[dependency.root] < index[seen.root]):
            settled[identity] = dependency

    def settled_in(identity: object, root: str) -> FileReport | None:
        dependency = settled.get(identity)
        return dependency.report if dependency is not None and dependency.root == root else None

    with _Workers(judging, candidates, jobs if len(candidates) >= PARALLEL_MIN_FILES else 1) as workers:
        if meanwhile is not None:
            meanwhile()

        def run(task: _Task, indices: Iterable[int], role: str = "root", reusable: bool = True) -> None:
            todo = []
            for i in indices:
                f = candidates[i][0]
                record = judging.reused(f, role) if reusable else None
                if record is None:
                    todo.append(i)
                else:
                    outcomes[f.path] = _Outcome.of_record(record, role, by_path)
            for share in workers.map(task, todo):
                outcomes.update(share.outcomes)
                for identity, dependency in share.dependencies.items():
                    settle(identity, dependency)
                progress("judging", len(outcomes), len(files))

        run(_judge_roots, range(first_library))
        roots = (_library_roots(libraries, reach, {i for f, _ in executables for i, _ in outcomes[f.path].reached})
                 if judging.graph else {f.identity for f, _ in libraries})
        run(_judge_roots, [i for i, (f, _) in enumerate(libraries, first_library) if f.identity in roots])
        order = [f.path for f, _ in candidates if f.path in outcomes]
        worst = _first_worst(outcomes[path] for path in order)
        # A reused root chosen for a library whose report it did not keep is judged again.
        again = {index[first] for identity, (_, first, _) in worst.items() if settled_in(identity, first) is None
                 and outcomes[first].kept.get(identity) is None}
        run(_judge_roots, sorted(again), reusable=False)

        def own_outcome(path: str) -> None:
            own = outcomes[path].own
            if isinstance(own, Skip):
                skipped[path] = own
            else:
                reports[path] = own

        for path in order:
            own_outcome(path)
        alone = []
        for i, (f, _) in enumerate(libraries, first_library):
            if f.identity in roots:
                continue
            if (chosen := worst.get(f.identity)) is not None:
                severity, in_load_of, count = chosen
                report = settled_in(f.identity, in_load_of) or outcomes[in_load_of].kept[f.identity]
                outcomes[in_load_of].chose(f.identity, report)
                reports[f.path] = _Dependency(severity, report, in_load_of, count).report_naming_its_root()
            else:  # named by some DT_NEEDED, yet no root's load reaches this file
                alone.append(i)
        progress("judging", len(reports) + len(skipped), len(files))
        before = set(outcomes)
        run(_judge_alone, alone, role="alone")
        for path in outcomes.keys() - before:
            own_outcome(path)
        progress("judging", len(reports) + len(skipped), len(files))
    kept = None
    if reuse is not None:
        kept = KeptJudging(tuple(o.record(judging, by_path) for o in outcomes.values()), tuple(judging.reach_records),
                           reuse.reused)
    return Judged(tuple(reports[f.path] for f in files if f.path in reports), tuple(skipped.values()), kept)


def _as_program(kind: FileKind, options: Options) -> bool:
    return (options.context or (Context.EXECUTABLE if kind is FileKind.EXECUTABLE else None)) is Context.EXECUTABLE


@dataclass(frozen=True)
class _Dependency:
    """A library loaded by a root: its report in the first of its worst runs, the root of that run, and how many
    root loads reach it."""

    severity: int
    report: FileReport
    root: str
    loads: int = 1

    def report_naming_its_root(self) -> FileReport:
        r = self.report
        where = f"in the load of {self.root}"
        note = (f"loaded as a dependency: judged {where}" if self.loads == 1 else
                f"loaded as a dependency: judged {where}, the first with the worst verdict of the {self.loads} "
                "loads in the tree that reach it")
        findings = tuple(Finding(f.rule, f.rule_id, f.level, f.path, f.object, f.subject, f"{f.message} ({where})",
                                 f.fix, f.ignored) for f in r.findings)  # built directly: replace() is slow
        return replace(r, notes=(note, *r.notes), findings=findings)


@dataclass
class _Share:
    """What judging some files found: a report (or a skip) per file, and for the roots among them, the first worst
    run of each library their loads reach, by the library's identity."""

    files: dict[str, FileReport | Skip] = field(default_factory=dict)
    dependencies: dict[object, _Dependency] = field(default_factory=dict)
    outcomes: dict[str, _Outcome] = field(default_factory=dict)  # each root's, in order


@dataclass
class _Outcome:
    """A root (or a library judged alone): its own report, the libraries its load reached with their severity
    there, what its loads read, and the reports of reached libraries it keeps for the next scan."""

    path: str
    role: str
    own: FileReport | Skip
    reached: list[tuple[object, int]]  # (library identity, severity in this load), in load order
    read: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    kept: dict[object, FileReport] = field(default_factory=dict)

    @classmethod
    def of_record(cls, record: RootRecord, role: str, by_path: Mapping[str, ElfFile]) -> _Outcome:
        severities = zip(record.reached, record.severities, strict=True)
        reached = [(by_path[p].identity, severity) for p, severity in severities]
        return cls(record.path, role, record.own, reached, record.read, record.listed,
                   {by_path[r.path].identity: r for r in record.chosen})

    def chose(self, identity: object, report: FileReport) -> None:
        self.kept[identity] = report

    def record(self, judging: _Judging, by_path: Mapping[str, ElfFile]) -> RootRecord:
        reached = tuple(judging.libraries[i].path for i, _ in self.reached)
        own = self.own
        return RootRecord(
            self.path, judging.inputs(by_path[self.path], self.role, self.read, reached).key, self.read, self.listed,
            (own,) if isinstance(own, FileReport) else (), (own,) if isinstance(own, Skip) else (), reached,
            tuple(severity for _, severity in self.reached), tuple(self.kept.values()),
        )


def _first_worst(outcomes: Iterable[_Outcome]) -> dict[object, tuple[int, str, int]]:
    """Each library the roots' loads reach -> (its worst severity, the first root with it, how many loads reach
    it), over ``outcomes`` in the roots' order."""
    worst: dict[object, tuple[int, str, int]] = {}
    for o in outcomes:
        for identity, severity in o.reached:
            seen = worst.get(identity)
            if seen is None:
                worst[identity] = (severity, o.path, 1)
            elif severity > seen[0]:
                worst[identity] = (severity, o.path, seen[2] + 1)
            else:
                worst[identity] = (seen[0], seen[1], seen[2] + 1)
    return worst


@dataclass(frozen=True)
class _Targets:
    bare: Target  # musl alone: the verdict starts from here
    gcompat: Target  # with gcompat installed: does it fix what musl alone cannot?
    show_gcompat: bool  # the target has gcompat, so reports show that load

    @cached_property
    def gcompat_files(self) -> frozenset[str]:
        """The names of the files gcompat adds at fixed paths: its library, its libc links, its loader stub."""
        added = self.gcompat.virtual_files.keys() - self.bare.virtual_files.keys()
        return frozenset(path.rsplit("/", 1)[-1] for path in added)

    def gcompat_may_help(self, bare: LoadResult) -> bool:
        """Whether a dlopen with gcompat installed (not preloaded) can differ from ``bare``: only when a library
        that was not found has the name of one of gcompat's files (its symbols only come with a preload)."""
        return any(m.name.rsplit("/", 1)[-1] in self.gcompat_files for m in bare.missing)

    @cached_property
    def preloaded(self) -> Target:
        """gcompat installed and preloaded, as its stub or LD_PRELOAD does."""
        t = self.gcompat
        return replace(t, preload=(t.gcompat.preload, *t.preload)) if t.gcompat else t


class _Judging:
    """Everything one process needs to judge files; its caches live as long as the process."""

    def __init__(self, root: RootFS, cache: FactsCache, options: Options, catalog: Catalog,
                 app: Application | None, replaced: Mapping[str, str], reuse: Reuse | None = None) -> None:
        self.recorder = RecordingRoot(root) if reuse is not None else None
        self.root: RootFS = self.recorder or root
        self.cache, self.options, self.catalog, self.app = cache, options, catalog, app
        self.replaced = replaced
        self.reuse = reuse
        self.memo = RelocationMemo()
        self._libraries: dict[object, ElfFile] = {}
        self.library_at: dict[str, ElfFile] = {}  # the same, by path
        self.graph = options.context is None  # the load graph decides each library's context
        self._targets: dict[str, _Targets] = {}
        self.reach_records: list[ReachRecord] = []

    @property
    def libraries(self) -> dict[object, ElfFile]:
        """The libraries to judge, by identity."""
        return self._libraries

    @libraries.setter
    def libraries(self, libraries: dict[object, ElfFile]) -> None:
        self._libraries = libraries
        self.library_at = {lib.path: lib for lib in libraries.values()}

    def take(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The paths the loads since the last call read and listed (nothing when no records are kept)."""
        return self.recorder.take() if self.recorder is not None else ((), ())

    def inputs(self, f: ElfFile, role: str, read: tuple[str, ...], reached: Iterable[str]) -> Inputs:
        """What ``f``'s loads depended on besides the paths they read."""
        ctx, hosted = self.context_of(f)
        by_path = self.library_at
        return Inputs(
            context=f"{role} {ctx.value} {'hosted' if hosted else ''}",
            provides=self.app.provides_of(f.path) if self.app is not None else (),
            replaced=replaced_within(read, self.replaced),
            libraries={p: by_path[p].aliases if p in by_path else ("(not judged)",) for p in reached},
        )

    def reused(self, f: ElfFile, role: str) -> RootRecord | None:
        """The last scan's record of ``f`` as a root (or alone), when nothing it depended on changed."""
        if self.reuse is None or (record := self.reuse.roots.get(f.path)) is None:
            return None
        return self.reuse.root(f.path, self.inputs(f, role, record.read, record.reached))

    def targets_for(self, arch: str) -> _Targets:
        if arch not in self._targets:
            options, catalog = self.options, self.catalog
            bare = Target(
                arch=arch,
                musl=catalog.musl_exports(options.musl, arch),
                rules=catalog.loader_rules(options.musl),
                library_path=options.library_path,
                preload=options.preload,
                replaced=self.replaced,
            )
            self._targets[arch] = _Targets(bare, replace(bare, gcompat=catalog.gcompat), options.gcompat)
        return self._targets[arch]

    def context_of(self, f: ElfFile) -> tuple[Context, bool]:
        """How ``f`` is loaded when nothing loads it first, and whether a host process loads it by itself."""
        host = self.app.context_of(f.path) if self.app is not None else None
        return self.options.context or host or _unknown_host_context(f.path), host is not None

    def malformed(self, f: ElfFile) -> Skip | None:
        """A skip for ``f`` when its symbol tables, read in full only now, are malformed."""
        facts = self.cache.complete(f)
        if isinstance(facts, NotLoadable):
            why = f"malformed ELF: {facts.detail}" if facts.detail else f"unreadable: {facts.reason}"
            return Skip(f.path, why)
        return None


class _Headers(FactsCache):
    """The tree's ELF files with the facts discovery read (headers: needed, rpath, soname...): enough for the
    loader's search, and no symbol table is read. Any other file is the judging's cache's to read."""

    def __init__(self, files: Mapping[object, ElfFile], cache: FactsCache) -> None:
        super().__init__(cache.root)
        self.files, self.cache = files, cache

    def get(self, resolved: Resolved) -> ElfFacts | NotLoadable:
        f = self.files.get(resolved.identity)
        return f.facts if f is not None and resolved.is_file else self.cache.get(resolved)


def _reach(judging: _Judging, libraries: Sequence[tuple[ElfFile, FileKind]],
           files: Mapping[object, ElfFile]) -> dict[object, frozenset[object]]:
    """Each library -> the other libraries to judge that its own load (in its own context) brings in. The search
    alone decides that, so the headers of ``files`` are enough: relocating no symbol costs little."""
    headers = _Headers(files, judging.cache)
    memo = RelocationMemo()  # of header facts: kept apart from the judging's
    reach: dict[object, frozenset[object]] = {}
    by_path = judging.library_at
    spent = 0  # DT_NEEDED entries walked by the loads so far
    for f, _ in libraries:
        t = judging.targets_for(f.facts.machine)
        if all(is_reserved(n, t.bare) for n in f.facts.needed):
            reach[f.identity] = frozenset()  # it names only libc (DL:1072-1098): nothing else comes in
            continue
        if judging.reuse is not None and (kept := judging.reuse.reach.get(f.path)) is not None and \
                judging.reuse.reached(f.path, judging.inputs(f, "reach", kept.read, kept.reached)) is not None:
            reach[f.identity] = frozenset(by_path[p].identity for p in kept.reached)
            judging.reach_records.append(kept)
            continue
        if spent > REACH_BUDGET:
            reach[f.identity] = frozenset()
            continue
        judging.take()
        try:
            result = load(judging.root, headers, t.bare, f.path, judging.context_of(f)[0], memo=memo)
        except FileNotFoundError:  # gone since discovery: judging says so
            reach[f.identity] = frozenset()
            judging.take()
            continue
        spent += sum(len(o.facts.needed) for o in result.objects if o.facts is not None)
        reached = [o.identity for o in result.objects  # what the dlopen itself brought in: not the preloads
                   if o.runtime_loaded and o.identity in judging.libraries and o.identity != f.identity]
        reach[f.identity] = frozenset(reached)
        read, listed = judging.take()
        if judging.reuse is not None:
            paths = tuple(dict.fromkeys(judging.libraries[i].path for i in reached))
            judging.reach_records.append(ReachRecord(f.path, judging.inputs(f, "reach", read, paths).key, read,
                                                     listed, paths))
    return reach


def _library_roots(libraries: Sequence[tuple[ElfFile, FileKind]], reach: Mapping[object, frozenset[object]],
                   by_programs: set[object]) -> set[object]:
    """The libraries that no load brings in: none that an executable loads, nor another library's load, except
    within a cycle of libraries that load each other and nothing else loads (its first file is the root)."""
    loaded_by: dict[object, list[object]] = {}
    for identity, reached in reach.items():
        for other in reached:
            loaded_by.setdefault(other, []).append(identity)
    order = {f.identity: i for i, (f, _) in enumerate(libraries)}
    roots = set()
    for f, _ in libraries:
        me = f.identity
        if me in by_programs:
            continue
        others = loaded_by.get(me, ())
        if all(o in reach[me] and order[me] < order[o] for o in others):
            roots.add(me)
    return roots


def _judge_roots(judging: _Judging, files: Sequence[tuple[ElfFile, FileKind]]) -> _Share:
    """Roots: each in its own load, and the libraries each load brings in, inside that load."""
    share = _Share()
    for n, (f, kind) in enumerate(files, 1):
        if n % _RELEASE_EVERY == 0:
            release_freed_memory()  # what the facts and loads dropped from their bounded tables left free
        judging.take()
        reached: list[tuple[object, int]] = []
        if (skip := judging.malformed(f)) is not None:
            share.files[f.path] = skip
        else:
            run = _judge_program(judging, f, kind, share) if _as_program(kind, judging.options) else \
                _judge_library(judging, f, kind, share)
            if run is not None and judging.graph:
                reached = _dependencies(judging, share.dependencies, run)
        share.outcomes[f.path] = _Outcome(f.path, "root", share.files[f.path], reached, *judging.take())
    return share


def _judge_alone(judging: _Judging, files: Sequence[tuple[ElfFile, FileKind]]) -> _Share:
    """Libraries that some file names, yet no root's load reaches: each in a load of its own."""
    share = _Share()
    for f, kind in files:
        judging.take()
        if (skip := judging.malformed(f)) is not None:
            share.files[f.path] = skip
        else:
            _judge_library(judging, f, kind, share)
        share.outcomes[f.path] = _Outcome(f.path, "alone", share.files[f.path], [], *judging.take())
    return share



def _judge_program(judging: _Judging, f: ElfFile, kind: FileKind, share: _Share) -> _Run:
    options, ignores = judging.options, judging.options.ignores
    ctx = options.context or Context.EXECUTABLE
    t = judging.targets_for(f.facts.machine)
    bare = load(judging.root, judging.cache, t.bare, f.path, ctx, memo=judging.memo)
    with_gc = load(judging.root, judging.cache, t.gcompat, f.path, ctx, memo=judging.memo)
    p_bare = problems(bare, None, t.gcompat.gcompat, _glibc_interpreter(f.facts, t.bare),
                      path=f.path, ignores=ignores)
    p_gc = problems(with_gc, None, t.gcompat.gcompat, _glibc_interpreter(f.facts, t.gcompat),
                    path=f.path, ignores=ignores)
    shown, result = (p_gc, with_gc) if t.show_gcompat else (p_bare, bare)
    share.files[f.path] = file_report(
        path=f.path, facts=f.facts, kind=kind, context=ctx, verdict=decide(p_bare, p_gc), shown=shown,
        result=result, scope=None, preload_fixes=False, aliases=f.aliases,
    )
    return _Run(f.path, Context.STARTUP_LIBRARY, t, bare, with_gc, None)


def _judge_library(judging: _Judging, f: ElfFile, kind: FileKind, share: _Share) -> _Run | None:
    """``f`` in its own load (a report in ``share``), and that load; None in the start-up context."""
    options, app, memo = judging.options, judging.app, judging.memo
    t = judging.targets_for(f.facts.machine)
    ctx, hosted = judging.context_of(f)
    if ctx is Context.STARTUP_LIBRARY:
        # Not needed by any executable here: load it as the first object of a program.
        stub = t.gcompat.gcompat.loader_paths.get(f.facts.machine) if t.gcompat.gcompat else None
        bare = load(judging.root, judging.cache, t.bare, f.path, Context.EXECUTABLE, ldso_name=t.bare.ldso_path,
                    memo=memo)
        with_gc = load(judging.root, judging.cache, t.preloaded, f.path, Context.EXECUTABLE,
                       ldso_name=gcompat_stub_name(t.gcompat, stub), memo=memo)
        run = _Run(f.path, ctx, t, bare, with_gc, None)
        share.files[f.path] = run.report(f, frozenset({f.path}), options.ignores)[1]
        return None
    provided = app.provides_of(f.path) if app is not None else ()

    def load_in(target: Target) -> LoadResult:
        return load(judging.root, judging.cache, target, f.path, ctx, host_provides=provided, memo=memo)

    # dlopen: gcompat's files (libresolv.so.2, ...) can help; its symbols only when preloaded.
    bare = load_in(t.bare)
    p_bare = problems(bare, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores)
    with_gc, p_gc = bare, p_bare
    if (p_bare.blockers and t.gcompat_may_help(bare)) or t.show_gcompat:
        with_gc = load_in(t.gcompat)
        p_gc = problems(with_gc, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores)
    verdict = decide(p_bare, p_gc)
    preloaded = None
    if verdict is Verdict.BLOCKED and not _beyond_symbols(p_gc):
        preloaded = load_in(t.preloaded)
    preload_fixes = preloaded is not None and problems(
        preloaded, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores).blockers == 0
    shown, result = (p_gc, with_gc) if t.show_gcompat else (p_bare, bare)
    report = file_report(
        path=f.path, facts=f.facts, kind=kind, context=ctx, verdict=verdict, shown=shown, result=result,
        scope=None, preload_fixes=preload_fixes, aliases=f.aliases,
    )
    if judging.graph and not hosted:
        report = replace(report, notes=(UNREFERENCED, *report.notes))
    share.files[f.path] = report
    return _Run(f.path, ctx, t, bare, with_gc, preloaded)


UNREFERENCED = "not referenced in the tree: it may be dlopen-ed by name at run time"


@dataclass(frozen=True, eq=False)
class _Run:
    """One root's load: how its libraries fare inside it."""

    root: str
    context: Context  # of the libraries it brings in
    targets: _Targets
    bare: LoadResult
    with_gcompat: LoadResult
    preloaded: LoadResult | None  # gcompat preloaded, when that was tried for the root

    @cached_property
    def paths(self) -> dict[object, frozenset[str]]:
        """Each object's names in the two loads, by identity (a file found under two names is one object)."""
        found: dict[object, set[str]] = {}
        for o in (*self.bare.objects, *self.with_gcompat.objects):
            found.setdefault(o.identity, set()).add(o.path)
        return {identity: frozenset(paths) for identity, paths in found.items()}

    @cached_property
    def _troubled(self) -> frozenset[str]:
        """The objects the plain load reports a missing library or DT_RELR for."""
        return frozenset((*(m.needed_by for m in self.bare.missing), *self.bare.relr_unsupported))

    def clean(self, obj: LoadedObject, scope: frozenset[str]) -> bool:
        """Nothing to report on ``obj`` (of the plain load): native, without judging it (most libraries of most
        loads)."""
        return not (obj.unsupported_relocations or obj.tls_errors or obj.wrong_arch
                    or any(u.effect is not Effect.NULL for u in obj.unresolved)) and scope.isdisjoint(self._troubled)

    def verdict(self, f: ElfFile, scope: frozenset[str], ignores: Ignores) -> tuple[Verdict, Problems, Problems]:
        gcompat = self.targets.gcompat.gcompat
        p_bare = problems(self.bare, scope, gcompat, None, path=f.path, ignores=ignores)
        p_gc = p_bare if self.with_gcompat is self.bare else problems(
            self.with_gcompat, scope, gcompat, None, path=f.path, ignores=ignores)
        return decide(p_bare, p_gc), p_bare, p_gc

    def report(self, f: ElfFile, scope: frozenset[str], ignores: Ignores) -> tuple[int, FileReport]:
        """``f``'s own problems in this load, and that verdict's severity."""
        verdict, p_bare, p_gc = self.verdict(f, scope, ignores)
        shown, result = (p_gc, self.with_gcompat) if self.targets.show_gcompat else (p_bare, self.bare)
        preload_fixes = (verdict is Verdict.BLOCKED and self.preloaded is not None and not _beyond_symbols(p_gc)
                         and problems(self.preloaded, scope, self.targets.gcompat.gcompat, None, path=f.path,
                                      ignores=ignores).blockers == 0)
        return verdict.severity, file_report(
            path=f.path, facts=f.facts, kind=kind_of(f.facts), context=self.context, verdict=verdict,
            shown=shown, result=result, scope=scope, preload_fixes=preload_fixes, aliases=f.aliases,
        )


def _dependencies(judging: _Judging, worst: dict[object, _Dependency], run: _Run) -> list[tuple[object, int]]:
    """The libraries ``run`` brings in, each judged inside it, with its severity there: ``worst`` keeps the report of
    the first of each one's worst runs, made as soon as a run is the worst so far, so that no load outlives its
    root's judging (a share of thousands of roots would otherwise keep a load per library to the end)."""
    ignores = judging.options.ignores
    reached: list[tuple[object, int]] = []
    for obj in run.bare.objects[1:]:
        lib = judging.libraries.get(obj.identity)
        if obj.facts is None or lib is None or lib.path == run.root:
            continue
        scope = run.paths[obj.identity]
        severity = 0 if run.clean(obj, scope) else run.verdict(lib, scope, ignores)[0].severity
        reached.append((obj.identity, severity))
        seen = worst.get(obj.identity)
        if seen is None or severity > seen.severity:
            worst[obj.identity] = _Dependency(severity, run.report(lib, scope, ignores)[1], run.root,
                                              1 if seen is None else seen.loads + 1)
        else:
            worst[obj.identity] = _Dependency(seen.severity, seen.report, seen.root, seen.loads + 1)
    return reached


def _beyond_symbols(p: Problems) -> bool:
    """Whether a blocker is not an unresolved symbol: a missing library, a relocation, TLS, RELR or an
    architecture stays whatever library is preloaded (gcompat's only add symbols to the chain)."""
    return any(f.ignored is None and f.level is Verdict.BLOCKED and f.rule not in _SYMBOL_RULES for f in p.findings)


_SYMBOL_RULES = frozenset({"unresolved-symbol", "latent-symbol"})


_Task = Callable[[_Judging, Sequence[tuple[ElfFile, FileKind]]], _Share]
_in_worker: tuple[_Judging, list[tuple[ElfFile, FileKind]]] | None = None  # what a forked worker inherits


_T = TypeVar("_T")


class _Workers:
    """Runs a task over shares of the candidate files: in this process, or in ``jobs`` forked workers
    that inherit the judging state (so nothing but file indices goes out, and shares come back).

    A worker that dies (a signal, the OOM killer) ends the scan at once with ``WorkerDied``: a pool that
    replaces its workers would wait forever for the share the dead one held."""

    def __init__(self, judging: _Judging, candidates: list[tuple[ElfFile, FileKind]], jobs: int) -> None:
        self.judging, self.candidates = judging, candidates
        self.jobs = jobs if jobs > 1 and "fork" in multiprocessing.get_all_start_methods() else 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Workers:
        global _in_worker
        if self.jobs > 1:
            _in_worker = (self.judging, self.candidates)
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_leave_interrupts_to_parent)
            # Fork every worker now, before the caller starts threads of its own (``meanwhile``).
            for started in [self._pool.submit(os.getpid) for _ in range(self.jobs)]:
                self._result(started)
        return self

    def __exit__(self, *exc: object) -> None:
        global _in_worker
        _in_worker = None
        if self._pool is not None:
            workers = list(getattr(self._pool, "_processes", {}).values())  # to stop them as Pool.terminate did
            self._pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join()

    def map(self, task: _Task, indices: Sequence[int]) -> Iterator[_Share]:
        if self._pool is None:
            yield task(self.judging, [self.candidates[i] for i in indices])
            return
        size = max(1, -(-len(indices) // (self.jobs * _CHUNKS_PER_WORKER)))
        futures = [self._pool.submit(_run_in_worker, (task, indices[i : i + size]))
                   for i in range(0, len(indices), size)]
        for future in futures:
            yield self._result(future)

    @staticmethod
    def _result(future: Future[_T]) -> _T:
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerDied("a worker process died (killed by a signal, perhaps the out-of-memory killer): "
                             "the scan stopped; run again, or with --jobs 1") from None


def release_freed_memory() -> None:
    """Hand the pages the C allocator holds free back to the system (glibc's ``malloc_trim``): freed memory
    between live objects otherwise stays in the resident set to the end. Nothing where the C library has no such
    call."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], object] | None:
    try:
        import ctypes  # only here: a platform without it just keeps its pages

        trim: Callable[[int], object] = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError, TypeError):  # TypeError: no CDLL(None) (Windows)
        return None
    return trim


def _leave_interrupts_to_parent() -> None:
    """Ctrl-C reaches every process of the group: the parent stops the workers, which say nothing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(chunk: tuple[_Task, Sequence[int]]) -> _Share:
    assert _in_worker is not None, "not in a forked worker"
    release_freed_memory()  # what the last share's loads and reports left free, before this share's
    task, indices = chunk
    judging, candidates = _in_worker
    return task(judging, [candidates[i] for i in indices])


def _unknown_host_context(path: str) -> Context:
    """A library whose loading process is unknown: in an archive (a plain zip), some runtime unpacks and
    dlopens it, lazily as the JVM and Node do; elsewhere RTLD_NOW, the stricter check."""
    return Context.DLOPEN_LAZY if ARCHIVE_SEPARATOR in path else Context.DLOPEN_NOW


def _not_applicable(facts: ElfFacts, kind: FileKind, options: Options) -> str | None:
    if kind is FileKind.OTHER:
        return f"{facts.elf_type.value} file: not loaded by the dynamic linker"
    if options.arch is not None and facts.machine != options.arch:
        return f"built for {facts.machine}; the target is {options.arch}"
    if facts.machine not in SUPPORTED_ARCHES and kind is not FileKind.STATIC:
        return f"built for {facts.machine}: no musl table for that architecture"
    return None


def _plain_report(f: ElfFile, kind: FileKind, verdict: Verdict, note: str) -> FileReport:
    return FileReport(
        path=f.path, arch=f.facts.machine, kind=kind, context=None, verdict=verdict,
        interpreter=f.facts.interpreter, soname=f.facts.soname, needed=f.facts.needed,
        missing_libraries=(), unresolved_symbols=(), weak_unresolved=(), unsupported_relocations=(), tls_errors=(),
        notes=(note,), fixes=(), aliases=f.aliases,
    )



def _glibc_interpreter(facts: ElfFacts, target: Target) -> str | None:
    """The interpreter, when the target has no file of that name that is musl (or gcompat's stub)."""
    interp = facts.interpreter
    if interp is None or interp == target.ldso_path:
        return None
    if gcompat_stub_name(target, interp) is not None:
        return None
    return interp
