"""Judge each ELF file of a tree: load it as musl would, in its context, with and without gcompat.

Judging can run in worker processes (``jobs``): each worker reads the symbols of its share of files
(and of the libraries they load) itself, and only the file reports cross back to the parent.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from muslcheck.apps.application import Application
from muslcheck.elf import ElfFacts, ElfType
from muslcheck.judging.verdict import Problems, decide, file_report, problems
from muslcheck.ldso.facts import ElfFile, FactsCache, NotLoadable
from muslcheck.ldso.load import LoadResult, RelocationMemo, Target, gcompat_stub_name, load
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog
from muslcheck.ldso.tree import RootFS
from muslcheck.model.ignore import Ignores
from muslcheck.model.options import Context, Options, Progress, no_progress
from muslcheck.model.report import FileKind, FileReport, Skip, Verdict
from muslcheck.targets.archives import ARCHIVE_SEPARATOR

PARALLEL_MIN_FILES = 100  # below this, starting workers costs more than it saves
MAX_DEFAULT_JOBS = 8
_CHUNKS_PER_WORKER = 8  # small shares balance files of very different cost


@dataclass(frozen=True)
class Judged:
    reports: tuple[FileReport, ...]  # in the order of the files given, less the skipped ones
    skipped: tuple[Skip, ...]  # files whose symbol tables turned out malformed when read in full


def kind_of(facts: ElfFacts) -> FileKind:
    if facts.elf_type not in (ElfType.EXEC, ElfType.DYN):
        return FileKind.OTHER
    if not facts.has_dynamic or (facts.interpreter is None and facts.pie):
        return FileKind.STATIC
    if facts.interpreter is not None or facts.elf_type is ElfType.EXEC:
        return FileKind.EXECUTABLE
    return FileKind.SHARED_LIBRARY


def default_jobs() -> int:
    """One worker per CPU this process may run on (the affinity mask, where the platform has one), at most
    MAX_DEFAULT_JOBS: past that, each worker's share of files is small and its caches cold."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_JOBS)


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
) -> Judged:
    """Judge ``files``; with ``jobs`` > 1 (and a platform that can fork), in that many worker processes, and
    with ``jobs`` 0 in ``default_jobs()``. The result does not depend on ``jobs``. ``meanwhile`` is called
    once the workers run (so a thread it starts is not forked): work to overlap with the judging. ``replaced``
    maps the files the Alpine base replaces (OS packages, glibc runtimes) to their owner."""
    replaced = replaced or {}
    judging = _Judging(root, cache, options, catalog, app, replaced)
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
        elif (options.context or (Context.EXECUTABLE if kind is FileKind.EXECUTABLE else None)) is Context.EXECUTABLE:
            executables.append((f, kind))
        else:
            libraries.append((f, kind))

    judging.libraries = {f.identity: f for f, _ in libraries}
    candidates = [*executables, *libraries]
    with _Workers(judging, candidates, jobs if len(candidates) >= PARALLEL_MIN_FILES else 1) as workers:
        if meanwhile is not None:
            meanwhile()
        # Executables first: the libraries they load are judged in the start-up context.
        startup: dict[object, tuple[int, FileReport]] = {}
        for share in workers.map(_judge_executables, range(len(executables))):
            for path, outcome in share.files.items():
                _record(path, outcome, reports, skipped)
            for identity, (severity, report) in share.startup.items():
                if identity not in startup or severity > startup[identity][0]:  # the first of the worst run wins
                    startup[identity] = (severity, report)
            progress("judging", len(reports) + len(skipped), len(files))

        by_startup = options.context in (None, Context.STARTUP_LIBRARY)
        rest = []
        for i, (f, _) in enumerate(libraries, start=len(executables)):
            if by_startup and f.identity in startup:
                reports[f.path] = startup[f.identity][1]
            else:
                rest.append(i)
        for share in workers.map(_judge_libraries, rest):
            for path, outcome in share.files.items():
                _record(path, outcome, reports, skipped)
            progress("judging", len(reports) + len(skipped), len(files))
    return Judged(tuple(reports[f.path] for f in files if f.path in reports), tuple(skipped.values()))


def _record(path: str, outcome: FileReport | Skip, reports: dict[str, FileReport], skipped: dict[str, Skip]) -> None:
    if isinstance(outcome, Skip):
        skipped[path] = outcome
    else:
        reports[path] = outcome


@dataclass
class _Share:
    """What judging some files found: a report (or a skip) per file, and for executables, the worst
    start-up report of each library they load (its severity first), by the library's identity."""

    files: dict[str, FileReport | Skip] = field(default_factory=dict)
    startup: dict[object, tuple[int, FileReport]] = field(default_factory=dict)


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
                 app: Application | None, replaced: Mapping[str, str]) -> None:
        self.root, self.cache, self.options, self.catalog, self.app = root, cache, options, catalog, app
        self.replaced = replaced
        self.memo = RelocationMemo()
        self.libraries: dict[object, ElfFile] = {}  # the libraries to judge, by identity
        self._targets: dict[str, _Targets] = {}

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

    def malformed(self, f: ElfFile) -> Skip | None:
        """A skip for ``f`` when its symbol tables, read in full only now, are malformed."""
        facts = self.cache.complete(f)
        if isinstance(facts, NotLoadable):
            why = f"malformed ELF: {facts.detail}" if facts.detail else f"unreadable: {facts.reason}"
            return Skip(f.path, why)
        return None


def _judge_executables(judging: _Judging, files: Sequence[tuple[ElfFile, FileKind]]) -> _Share:
    share = _Share()
    runs: dict[object, list[tuple[ElfFile, LoadResult, LoadResult, frozenset[str]]]] = {}
    options, ignores = judging.options, judging.options.ignores
    libraries = judging.libraries
    for f, kind in files:
        if (skip := judging.malformed(f)) is not None:
            share.files[f.path] = skip
            continue
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
        for obj in bare.objects[1:]:
            lib = libraries.get(obj.identity)
            if obj.facts is not None and lib is not None:
                scope = frozenset(o.path for o in (*bare.objects, *with_gc.objects) if o.identity == obj.identity)
                runs.setdefault(obj.identity, []).append((lib, bare, with_gc, scope))
    for identity, lib_runs in runs.items():
        share.startup[identity] = _startup_report(lib_runs, judging.targets_for(lib_runs[0][0].facts.machine),
                                                  ignores)
    return share


def _judge_libraries(judging: _Judging, files: Sequence[tuple[ElfFile, FileKind]]) -> _Share:
    share = _Share()
    options, app, root, cache, memo = judging.options, judging.app, judging.root, judging.cache, judging.memo
    for f, kind in files:
        if (skip := judging.malformed(f)) is not None:
            share.files[f.path] = skip
            continue
        t = judging.targets_for(f.facts.machine)
        host_context = app.context_of(f.path) if app is not None else None
        ctx = options.context or host_context or _unknown_host_context(f.path)
        provided = app.provides_of(f.path) if app is not None else ()
        if ctx is Context.STARTUP_LIBRARY:
            # Not needed by any executable here: load it as the first object of a program.
            stub = t.gcompat.gcompat.loader_paths.get(f.facts.machine) if t.gcompat.gcompat else None
            bare = load(root, cache, t.bare, f.path, Context.EXECUTABLE, ldso_name=t.bare.ldso_path, memo=memo)
            with_gc = load(root, cache, t.preloaded, f.path, Context.EXECUTABLE,
                           ldso_name=gcompat_stub_name(t.gcompat, stub), memo=memo)
            share.files[f.path] = _startup_report([(f, bare, with_gc, frozenset({f.path}))], t, options.ignores)[1]
            continue
        # dlopen: gcompat's files (libresolv.so.2, ...) can help; its symbols only when preloaded.
        bare = load(root, cache, t.bare, f.path, ctx, host_provides=provided, memo=memo)
        p_bare = problems(bare, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores)
        with_gc, p_gc = bare, p_bare
        if (p_bare.blockers and t.gcompat_may_help(bare)) or t.show_gcompat:
            with_gc = load(root, cache, t.gcompat, f.path, ctx, host_provides=provided, memo=memo)
            p_gc = problems(with_gc, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores)
        verdict = decide(p_bare, p_gc)
        preload_fixes = False
        if verdict is Verdict.BLOCKED and not _beyond_symbols(p_gc):
            preloaded = load(root, cache, t.preloaded, f.path, ctx, host_provides=provided, memo=memo)
            p_preload = problems(preloaded, None, t.gcompat.gcompat, None, path=f.path, ignores=options.ignores)
            preload_fixes = p_preload.blockers == 0
        shown, result = (p_gc, with_gc) if t.show_gcompat else (p_bare, bare)
        share.files[f.path] = file_report(
            path=f.path, facts=f.facts, kind=kind, context=ctx, verdict=verdict, shown=shown, result=result,
            scope=None, preload_fixes=preload_fixes, aliases=f.aliases,
        )
    return share


def _beyond_symbols(p: Problems) -> bool:
    """Whether a blocker is not an unresolved symbol: a missing library, a relocation, TLS, RELR or an
    architecture stays whatever library is preloaded (gcompat's only add symbols to the chain)."""
    return any(f.ignored is None and f.level is Verdict.BLOCKED and f.rule not in _SYMBOL_RULES for f in p.findings)


_SYMBOL_RULES = frozenset({"unresolved-symbol", "latent-symbol"})


def _startup_report(
    runs: list[tuple[ElfFile, LoadResult, LoadResult, frozenset[str]]], t: _Targets, ignores: Ignores
) -> tuple[int, FileReport]:
    """A library loaded at start-up by executables in the tree: its own problems in their loads, from the
    first run with the worst verdict; with that verdict's severity."""
    worst: tuple[Verdict, Problems, LoadResult, frozenset[str]] | None = None
    f = runs[0][0]
    for _, bare, with_gc, scope in runs:
        p_bare = problems(bare, scope, t.gcompat.gcompat, None, path=f.path, ignores=ignores)
        p_gc = problems(with_gc, scope, t.gcompat.gcompat, None, path=f.path, ignores=ignores)
        verdict = decide(p_bare, p_gc)
        shown, result = (p_gc, with_gc) if t.show_gcompat else (p_bare, bare)
        if worst is None or verdict.severity > worst[0].severity:
            worst = (verdict, shown, result, scope)
    assert worst is not None
    verdict, shown, result, scope = worst
    return verdict.severity, file_report(
        path=f.path, facts=f.facts, kind=kind_of(f.facts), context=Context.STARTUP_LIBRARY, verdict=verdict,
        shown=shown, result=result, scope=scope, preload_fixes=False, aliases=f.aliases,
    )


_Task = Callable[[_Judging, Sequence[tuple[ElfFile, FileKind]]], _Share]
_in_worker: tuple[_Judging, list[tuple[ElfFile, FileKind]]] | None = None  # what a forked worker inherits


class _Workers:
    """Runs a task over shares of the candidate files: in this process, or in ``jobs`` forked workers
    that inherit the judging state (so nothing but file indices goes out, and shares come back)."""

    def __init__(self, judging: _Judging, candidates: list[tuple[ElfFile, FileKind]], jobs: int) -> None:
        self.judging, self.candidates = judging, candidates
        self.jobs = jobs if jobs > 1 and "fork" in multiprocessing.get_all_start_methods() else 1
        self._pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> _Workers:
        global _in_worker
        if self.jobs > 1:
            _in_worker = (self.judging, self.candidates)
            self._pool = multiprocessing.get_context("fork").Pool(self.jobs, initializer=_leave_interrupts_to_parent)
        return self

    def __exit__(self, *exc: object) -> None:
        global _in_worker
        _in_worker = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def map(self, task: _Task, indices: Sequence[int]) -> Iterator[_Share]:
        if self._pool is None:
            yield task(self.judging, [self.candidates[i] for i in indices])
            return
        size = max(1, -(-len(indices) // (self.jobs * _CHUNKS_PER_WORKER)))
        chunks = [(task, indices[i : i + size]) for i in range(0, len(indices), size)]
        yield from self._pool.imap(_run_in_worker, chunks)


def _leave_interrupts_to_parent() -> None:
    """Ctrl-C reaches every process of the group: the parent stops the workers, which say nothing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(chunk: tuple[_Task, Sequence[int]]) -> _Share:
    assert _in_worker is not None, "not in a forked worker"
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
