"""Survey a directory, a lone file or an opened image: find its ELF files, judge them, build the report.
What ``scan`` runs when its cache has no report for the target."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from muslcheck.apps.application import identify
from muslcheck.apps.components import build_components
from muslcheck.apps.registry import KEEP_METADATA, module_marks
from muslcheck.judging.judge import KeptJudging, default_jobs, judge
from muslcheck.judging.reuse import Reuse
from muslcheck.ldso.tables import Catalog
from muslcheck.ldso.tree import Resolved, RootFS, join
from muslcheck.model.errors import UsageError
from muslcheck.model.options import Options, Progress
from muslcheck.model.report import SCHEMA_VERSION, FileReport, Report, TargetInfo, overall_verdict
from muslcheck.model.version import __version__
from muslcheck.targets import ImageAccess, Tree, open_target
from muslcheck.targets.image.sources.interface import Image
from muslcheck.targets.osdb import read_ownership
from muslcheck.targets.reference import Reference

if TYPE_CHECKING:
    from muslcheck.targets.directory import KnownFacts
    from muslcheck.targets.image.fs import LayerRecords


def survey(
    stack: ExitStack,
    ref: Reference,
    image: Image | None,
    options: Options,
    catalog: Catalog,
    *,
    source: str,
    access: ImageAccess,
    base: str | None,
    include_os_packages: bool,
    progress: Progress,
    jobs: int,
    reuse: Reuse | None = None,
    reuse_for: Callable[[Tree], Reuse] | None = None,
    layer_records: LayerRecords | None = None,
    known: KnownFacts | None = None,
) -> Surveyed:
    """The report on ``ref`` (``image`` when it is one, opened on ``stack``), judged under ``options``; with
    ``reuse`` (or ``reuse_for``, which gives it once the tree is read: an image's), the judging to keep for the next
    scan too; ``layer_records``: an image's layers read before; ``known``: a directory's ELF facts read before."""
    # identify's reads of symbol tables serve the judging only when it runs in this process and judges them: a
    # scan that reuses the last one's judging, or hands files to workers, looks for the hosts' marks instead and
    # reads only the files that have them. A one-process cold scan reads them all anyway and skips the search.
    jobs = jobs or default_jobs()
    may_reuse = (reuse is not None and reuse.state is not None) or reuse_for is not None
    marks = module_marks() if may_reuse or jobs > 1 else None
    tree = open_target(stack, ref, image, access, base=base, keep=KEEP_METADATA, progress=progress, marks=marks,
                       layer_records=layer_records, known=known)
    if reuse_for is not None:
        reuse = reuse_for(tree)
    _check_in_tree(tree.root, options)
    options = replace(options, arch=tree.arch or options.arch,
                      library_path=options.library_path or tree.library_path)
    ownership = read_ownership(tree.root)
    app = identify(tree.root, tree.cache, tree.found.files, tree.found.archives, options.arch,
                   options.include_runtimes)
    replaced = {} if include_os_packages else {p: str(pkg) for p, pkg in ownership.owners.items()}
    replaced.update((p, f"the runtime {pkg.name}") for p, pkg in app.runtimes.items())
    unverified = tree.unverified
    judged = judge(tree.root, tree.cache, tree.found.files, options, catalog, progress, app, jobs,
                   replaced=replaced, meanwhile=unverified.start_verifying if unverified else None, reuse=reuse)
    if unverified is not None:
        unverified.verify()  # the mapped layers' digests, computed while the files were judged
    components, reports = build_components(app, judged.reports, ownership)
    notes = (*tree.notes, *_entrypoint(tree, reports), *ownership.notes, *_musl_based(tree.root),
             *options.ignores.expiry_notes())
    return Surveyed(Report(
        schema_version=SCHEMA_VERSION,
        tool_version=__version__,
        source=source,
        target=TargetInfo(options.musl, options.alpine, options.gcompat, options.arch),
        verdict=overall_verdict(components),
        files=reports,
        components=components,
        skipped=tuple(sorted((*tree.found.skipped, *judged.skipped, *app.problems), key=lambda s: s.path)),
        notes=notes,
        root=tree.description,
    ), judged.kept)


@dataclass(frozen=True)
class Surveyed:
    report: Report
    kept: KeptJudging | None  # the judging to keep for the next scan, when asked for


def _entrypoint(tree: Tree, reports: tuple[FileReport, ...]) -> tuple[str, ...]:
    """Which file the image runs, found as the runtime would: WORKDIR for a relative name, PATH for a bare one."""
    config = tree.config
    command = (config.entrypoint or config.cmd) if config else ()
    if not command or config is None:
        return ()
    program = command[0]
    if "/" in program:
        candidates = [program if program.startswith("/") else join(config.workdir or "/", program)]
    else:
        search = config.env_value("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        candidates = [join(d, program) for d in search.split(":") if d.startswith("/")]
    verdicts = {f.path: f for f in reports}
    for candidate in candidates:
        found = tree.root.resolve(candidate)
        if isinstance(found, Resolved) and found.is_file:
            judged = verdicts.get(found.path)
            what = f"{judged.verdict.value}" if judged else "not an ELF file (a script or another runtime)"
            return (f"entrypoint {' '.join(command)}: {found.path} is {what}",)
    return (f"entrypoint {' '.join(command)}: {program} is not in the image",)


def _check_in_tree(root: RootFS, options: Options) -> None:
    """The preloads and library directories the user named must be in the target: a typo would otherwise change
    nothing and pass silently. (A preload without a "/" is searched for, as musl does, so it cannot be checked.)"""
    for entry in options.preload:
        found = root.resolve(entry) if "/" in entry else None
        if found is not None and not (isinstance(found, Resolved) and found.is_file):
            raise UsageError(f"preload {entry}: no such file in the target")
    for directory in (options.library_path or "").split(":"):
        found = root.resolve(directory) if directory else None
        if found is not None and not (isinstance(found, Resolved) and found.is_dir):
            raise UsageError(f"library path {directory}: no such directory in the target")


def _musl_based(root: RootFS) -> tuple[str, ...]:
    found = root.resolve("/etc/alpine-release")
    if isinstance(found, Resolved) and found.is_file:
        try:
            release = root.read_head(found, 64).decode("ascii", "replace").strip()
        except OSError:
            release = "?"
        return (f"this is already an Alpine system (Alpine {release}): it runs on musl today",)
    if any(name.startswith("ld-musl-") for name in root.list_dir("/lib")):
        return ("this tree already has musl's loader in /lib: it is musl-based",)
    return ()
