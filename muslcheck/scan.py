"""Scan a directory (as a target root) or a single file: the library's entry point."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from muslcheck import __version__
from muslcheck.apps.application import identify
from muslcheck.apps.components import build_components
from muslcheck.archives import ARCHIVE_SEPARATOR, ArchiveMetadata, MemberOverlay, scan_archive
from muslcheck.cache import Store, directory_fingerprint, load_report, save_report, scan_key
from muslcheck.discover import Discovered, ElfFile, FactsCache, Progress, add_archive_members, discover, no_progress
from muslcheck.elf import is_elf, read_elf_file
from muslcheck.errors import InputError, MalformedElf, UsageError
from muslcheck.ignore import NO_IGNORES, Ignores, load_ignores
from muslcheck.imagefs import ImageRoot, read_image
from muslcheck.judge import Options, judge
from muslcheck.loader import Context
from muslcheck.osdb import read_ownership
from muslcheck.report import (
    SCHEMA_VERSION,
    FileReport,
    Report,
    Skip,
    TargetInfo,
    overall_verdict,
)
from muslcheck.rootfs import DirectoryRoot, Resolved, RootFS, join
from muslcheck.sources import open_image
from muslcheck.sources.interface import Image, ImageConfig
from muslcheck.sources.reference import Reference, parse_reference
from muslcheck.tables import SUPPORTED_ARCHES, Catalog


def resolve_version(catalog: Catalog, alpine: str | None, musl: str | None) -> tuple[str, str | None]:
    """(musl version, Alpine release or None) from the user's choice; the newest Alpine by default."""
    if alpine is not None and musl is not None:
        raise UsageError("give --alpine or --musl, not both")
    if musl is not None:
        catalog.loader_rules(musl)
        return musl, None
    release = catalog.alpine_release(alpine) if alpine is not None else catalog.newest_alpine()
    return release.musl, release.alpine


def scan(
    path: str | os.PathLike[str],
    *,
    alpine: str | None = None,
    musl: str | None = None,
    arch: str | None = None,
    gcompat: bool = False,
    context: Context | str | None = None,
    library_path: str | None = None,
    preload: Sequence[str] = (),
    platform: str | None = None,
    base: str | None = None,
    include_os_packages: bool = False,
    include_runtimes: bool = False,
    insecure_registry: bool = False,
    docker_config: str | os.PathLike[str] | None = None,
    ignore: str | os.PathLike[str] | Ignores | None = None,
    progress: Progress = no_progress,
    catalog: Catalog | None = None,
    cache: Store | None = None,
    jobs: int = 1,
) -> Report:
    """Judge every ELF file of ``path``: a directory (the target's root), one file, or an image reference
    (``docker-archive:``, ``oci-archive:``, ``oci-dir:``, ``registry:``, ``docker:``, or a path whose kind is
    detected from its content).

    ``alpine`` or ``musl`` picks the target (default: the newest known Alpine); ``platform``
    ("linux/amd64", "linux/arm64") picks an image's manifest and, like ``arch``, the architecture judged;
    ``base`` (an image reference) leaves out the layers the image shares with it; files an OS package
    owns (dpkg, apk, rpm) are set apart unless ``include_os_packages``; ``insecure_registry`` allows
    plain HTTP to a registry on localhost, ``docker_config`` names a config.json with credentials;
    ``gcompat`` says the target has gcompat installed; ``context`` overrides the load context of
    every dynamic file; ``ignore`` is an ignore file (or parsed ``Ignores``) of accepted findings;
    ``progress(stage, done, total)`` is called as the scan advances; ``cache`` (a ``muslcheck.cache.Store``)
    returns the report of an unchanged directory or image with the same options without scanning it again;
    ``jobs`` > 1 judges the files in that many forked worker processes (the report is the same).
    Raises ``UsageError`` for a bad option and ``InputError`` for input that cannot be read.
    """
    catalog = catalog or Catalog()
    musl_version, alpine_release = resolve_version(catalog, alpine, musl)
    if platform is not None:
        arch = _arch_of_platform(platform, arch)
    docker_config = Path(docker_config) if docker_config is not None else None
    ignores = ignore if isinstance(ignore, Ignores) else load_ignores(ignore) if ignore is not None else NO_IGNORES
    if arch is not None and arch not in SUPPORTED_ARCHES:
        raise UsageError(f"unknown architecture {arch!r}; known: {', '.join(SUPPORTED_ARCHES)}")
    try:
        chosen_context = Context(context) if context is not None else None
    except ValueError:
        known = ", ".join(c.value for c in Context)
        raise UsageError(f"unknown context {context!r}; known: {known}") from None
    options = Options(
        musl_version, alpine_release, arch, gcompat, chosen_context, library_path, tuple(preload), ignores,
        include_runtimes=include_runtimes,
    )

    with ExitStack() as stack:
        ref = parse_reference(str(path))
        image = stack.enter_context(open_image(ref, platform=platform, insecure_registry=insecure_registry,
                                               docker_config=docker_config)) if ref.is_image else None
        settings = {"platform": platform, "include_os_packages": include_os_packages, "source": str(path)}
        key = _report_key(ref, image, options, settings) if cache is not None and base is None else None
        if cache is not None and key is not None and (cached := load_report(cache, key)) is not None:
            return cached
        tree = _with_archive_members(
            _open_tree(stack, ref, image, options, platform, base, insecure_registry, docker_config, progress)
        )
        options = replace(options, arch=tree.arch or options.arch, library_path=tree.library_path)
        ownership = read_ownership(tree.root)
        app = identify(tree.root, tree.cache, tree.found.files, tree.found.archives, options.arch, include_runtimes)
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
             *ignores.expiry_notes())
    report = Report(
        schema_version=SCHEMA_VERSION,
        tool_version=__version__,
        source=str(path),
        target=TargetInfo(musl_version, alpine_release, gcompat, options.arch),
        verdict=overall_verdict(components),
        files=reports,
        components=components,
        skipped=tuple(sorted((*tree.found.skipped, *judged.skipped, *app.problems), key=lambda s: s.path)),
        notes=notes,
        root=tree.description,
    )
    if cache is not None and key is not None:
        save_report(cache, key, report)
    return report


def _report_key(ref: Reference, image: Image | None, options: Options, settings: Mapping[str, object]) -> str | None:
    """What the report depends on: the image's content or the directory's stat fingerprint, and every option.
    None when it cannot be trusted to stay the same (a lone file, a directory written to just now)."""
    if image is not None:
        content = json.dumps([dataclasses.asdict(image.config), [layer.digest for layer in image.layers]])
        identity = "image " + hashlib.sha256(content.encode()).hexdigest()
    elif ref.kind == "dir" and ref.path is not None:
        fingerprint = directory_fingerprint(ref.path)
        if fingerprint is None:
            return None
        identity = "dir " + fingerprint
    else:
        return None
    chosen = {**settings, "musl": options.musl, "alpine": options.alpine, "arch": options.arch,
              "gcompat": options.gcompat, "context": options.context, "library_path": options.library_path,
              "preload": list(options.preload), "include_runtimes": options.include_runtimes,
              "ignores": repr(options.ignores)}
    return scan_key(identity, chosen)


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
    platform: str | None,
    base: str | None,
    insecure_registry: bool,
    docker_config: Path | None,
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
        from_layer, note = _app_layers(stack, base, image, platform or image.config.platform, insecure_registry,
                                       docker_config)
        notes.append(note)
    found = tree.elf_files(image_cache, layers_from=from_layer)
    arch = _IMAGE_ARCHES.get(image.config.architecture)
    return _Tree(tree, image_cache, found, image.reference,
                 options.library_path or image.config.env_value("LD_LIBRARY_PATH"), arch, tuple(notes), image.config,
                 unverified=tree)


_IMAGE_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


def _app_layers(
    stack: ExitStack, base: str, image: Image, platform: str, insecure: bool, docker_config: Path | None
) -> tuple[int, str]:
    """How many bottom layers the image shares with ``base``: those are the base's, not the app's."""
    ref = parse_reference(base)
    if not ref.is_image:
        raise UsageError(f"--base {base}: not an image reference")
    base_image = stack.enter_context(open_image(ref, platform=platform, insecure_registry=insecure,
                                                docker_config=docker_config))
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


_PLATFORM_ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}


def _arch_of_platform(platform: str, arch: str | None) -> str:
    found = _PLATFORM_ARCHES.get(platform)
    if found is None:
        raise UsageError(f"unknown platform {platform!r}; known: {', '.join(_PLATFORM_ARCHES)}")
    if arch is not None and arch != found:
        raise UsageError(f"platform {platform} is {found}, not {arch}")
    return found


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
