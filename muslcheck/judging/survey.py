"""Survey a directory, a lone file or an opened image: find its ELF files, judge them, build the report.
What ``scan`` runs when its cache has no report for the target."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from muslcheck import __version__
from muslcheck.apps.application import identify
from muslcheck.apps.components import build_components
from muslcheck.elf import is_elf, read_elf_file
from muslcheck.judging.judge import judge
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tables import Catalog
from muslcheck.ldso.tree import Resolved, RootFS, join
from muslcheck.model.errors import InputError, MalformedElf, UsageError
from muslcheck.model.options import Options, Progress
from muslcheck.model.report import SCHEMA_VERSION, FileReport, Report, Skip, TargetInfo, overall_verdict
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata, MemberOverlay, scan_archive
from muslcheck.targets.directory import DirectoryRoot, Discovered, add_archive_members, discover
from muslcheck.targets.image.fs import ImageRoot, read_image
from muslcheck.targets.image.sources import open_image
from muslcheck.targets.image.sources.interface import Image, ImageConfig
from muslcheck.targets.osdb import read_ownership
from muslcheck.targets.reference import Reference, parse_reference


@dataclass(frozen=True)
class ImageAccess:
    """How to open an image: the ``--base`` image too."""

    platform: str | None
    insecure_registry: bool
    docker_config: Path | None


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
) -> Report:
    """The report on ``ref`` (``image`` when it is one, opened on ``stack``), judged under ``options``."""
    tree = _with_archive_members(_open_tree(stack, ref, image, options, access, base, progress))
    options = replace(options, arch=tree.arch or options.arch, library_path=tree.library_path)
    ownership = read_ownership(tree.root)
    app = identify(tree.root, tree.cache, tree.found.files, tree.found.archives, options.arch,
                   options.include_runtimes)
    owned = {} if include_os_packages else {p: str(pkg) for p, pkg in ownership.owners.items()}
    owned.update((p, f"the runtime {pkg.name}") for p, pkg in app.runtimes.items())
    options = replace(options, replaced=owned)
    unverified = tree.unverified
    judged = judge(tree.root, tree.cache, tree.found.files, options, catalog, progress, app, jobs,
                   meanwhile=unverified.start_verifying if unverified else None)
    if unverified is not None:
        unverified.verify()  # the mapped layers' digests, computed while the files were judged
    components, reports = build_components(app, judged.reports, ownership)
    notes = (*tree.notes, *_entrypoint(tree, reports), *ownership.notes, *_musl_based(tree.root),
             *options.ignores.expiry_notes())
    return Report(
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
    )


@dataclass(frozen=True)
class _Tree:
    root: RootFS
    cache: FactsCache
    found: Discovered
    description: str  # for Report.root: the host directory, or the image reference
    library_path: str | None
    arch: str | None = None
    notes: tuple[str, ...] = ()
    config: ImageConfig | None = None
    unverified: ImageRoot | None = None  # an image whose mapped layers' digests are still to check


def _entrypoint(tree: _Tree, reports: tuple[FileReport, ...]) -> tuple[str, ...]:
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


def _with_archive_members(tree: _Tree) -> _Tree:
    """ELF files found inside archives become loadable at their locations ("/app/app.jar!/lib/x.so")."""
    members = {f.path: f.facts for f in tree.found.files if ARCHIVE_SEPARATOR in f.path}
    if not members:
        return tree
    return replace(tree, root=MemberOverlay(tree.root, members))


def _open_tree(
    stack: ExitStack,
    ref: Reference,
    image: Image | None,
    options: Options,
    access: ImageAccess,
    base: str | None,
    progress: Progress,
) -> _Tree:
    """The root to judge, from a directory, a lone file, or an opened image."""
    if ref.kind == "dir":
        assert ref.path is not None
        root = DirectoryRoot(ref.path)
        cache = FactsCache(root)
        return _Tree(root, cache, discover(root, cache, progress), str(root.host_root), options.library_path)
    if ref.kind == "file":
        assert ref.path is not None
        lone, cache, found = _single_file(ref.path)
        # A lone file finds its siblings.
        return _Tree(lone, cache, found, str(lone.host_root), options.library_path or "/")
    assert image is not None
    tree = read_image(image, progress, defer_digests=True)
    image_cache = FactsCache(tree)
    from_layer, notes = 0, [f"image {image.reference}: {image.config.platform}, {len(image.layers)} layers"]
    if base is not None:
        from_layer, note = _app_layers(stack, base, image, access)
        notes.append(note)
    found = tree.elf_files(image_cache, layers_from=from_layer)
    arch = _IMAGE_ARCHES.get(image.config.architecture)
    return _Tree(tree, image_cache, found, image.reference,
                 options.library_path or image.config.env_value("LD_LIBRARY_PATH"), arch, tuple(notes), image.config,
                 unverified=tree)


_IMAGE_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


def _app_layers(stack: ExitStack, base: str, image: Image, access: ImageAccess) -> tuple[int, str]:
    """How many bottom layers the image shares with ``base``: those are the base's, not the app's."""
    ref = parse_reference(base)
    if not ref.is_image:
        raise UsageError(f"--base {base}: not an image reference")
    base_image = stack.enter_context(open_image(ref, platform=access.platform or image.config.platform,
                                                insecure_registry=access.insecure_registry,
                                                docker_config=access.docker_config))
    shared = 0
    for mine, theirs in zip(image.config.diff_ids, base_image.config.diff_ids, strict=False):
        if mine != theirs:
            break
        shared += 1
    if shared == 0:
        return 0, f"no layer of {base} is a layer of this image: every file is judged"
    return shared, f"base {base}: its {shared} layers are left out; {len(image.layers) - shared} app layers judged"


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


def _single_file(source: Path) -> tuple[DirectoryRoot, FactsCache, Discovered]:
    """One ELF file, or one archive of native libraries, standing alone in its directory."""
    if not source.is_file():
        raise InputError(f"{source}: not a regular file")
    root = DirectoryRoot(source.resolve().parent)
    cache = FactsCache(root)
    location = "/" + source.resolve().name
    try:
        with open(source, "rb") as f:
            head = f.read(4)
            if head.startswith(b"PK"):
                found: dict[object, ElfFile] = {}
                skipped: list[Skip] = []
                archives: list[ArchiveMetadata] = []
                f.seek(0)
                add_archive_members(scan_archive(f, location), found, skipped, archives, cache)
                return root, cache, Discovered(sorted(found.values(), key=lambda e: e.path), skipped, archives)
            if not is_elf(head):
                raise InputError(f"{source}: not an ELF file")
        facts = read_elf_file(source)
    except OSError as e:
        raise InputError(f"{source}: {e.strerror}") from e
    except MalformedElf as e:
        raise InputError(f"{source}: malformed ELF: {e}") from e
    st = source.stat()
    cache.remember((st.st_dev, st.st_ino), facts)
    return root, cache, Discovered([ElfFile(location, (st.st_dev, st.st_ino), facts, ())], [], [])
