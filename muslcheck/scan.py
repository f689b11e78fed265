"""Scan a directory (as a target root), a single file or an image: the library's entry point. The report comes
from the cache when it holds one for the target, else from a survey of it (``survey.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muslcheck.cache import (
    CacheStore,
    directory_manifest,
    load_judged,
    load_report,
    manifest_fingerprint,
    save_judged,
    save_report,
    scan_key,
)
from muslcheck.cache.layers import StoredLayers
from muslcheck.cache.verified import StoredVerifications
from muslcheck.judging.reuse import Reuse, changed_paths
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog
from muslcheck.model.errors import UsageError
from muslcheck.model.ignore import NO_IGNORES, Ignores, load_ignores
from muslcheck.model.kept import JudgedState
from muslcheck.model.options import Context, Options, Progress, no_progress
from muslcheck.model.report import Report
from muslcheck.targets.image.sources import open_image
from muslcheck.targets.image.sources.interface import Image
from muslcheck.targets.image.verify import verify_blobs
from muslcheck.targets.reference import ARCHITECTURE_OF_OCI, MUSL_ARCH_OF_OCI, Reference, parse_reference

if TYPE_CHECKING:
    from muslcheck.judging.judge import KeptJudging
    from muslcheck.targets import Tree


def resolve_version(catalog: Catalog, alpine: str | None, musl: str | None) -> tuple[str, str | None]:
    """(musl version, Alpine release or None) from the user's choice; the newest Alpine by default."""
    if alpine is not None and musl is not None:
        raise UsageError("give --alpine or --musl, not both")
    if musl is not None:
        catalog.loader_rules(musl)
        return musl, None
    release = catalog.alpine_release(alpine) if alpine is not None else catalog.newest_alpine()
    return release.musl, release.alpine


_RUN_ONLY = {"key": False}  # how the scan runs or reaches its input, not what it finds: left out of the cache key


@dataclass(frozen=True)
class ScanOptions:
    """Everything a scan is given besides its target. Every field is part of the report cache's key unless its
    metadata says ``key: False``, so a new field can never return a stale report."""

    alpine: str | None = None  # the target Alpine release (default: the newest known)
    musl: str | None = None  # or a musl version instead
    arch: str | None = None  # judge only files of this architecture
    platform: str | None = None  # "linux/amd64", "linux/arm64": an image's manifest, and the architecture judged
    gcompat: bool = False  # the target has gcompat installed
    context: Context | None = None  # the load context of every dynamic file (default: from what each file is)
    library_path: str | None = None  # LD_LIBRARY_PATH for the model (paths inside the root)
    preload: tuple[str, ...] = ()  # LD_PRELOAD entries for the model
    base: str | None = None  # an image: judge only the layers it adds to this one
    include_os_packages: bool = False  # judge files an OS package owns (dpkg, apk, rpm) instead of setting them apart
    include_runtimes: bool = False  # judge glibc language runtimes instead of naming their Alpine variant
    ignore: Path | Ignores | None = None  # an ignore file of accepted findings, or parsed ``Ignores``
    insecure_registry: bool = field(default=False, metadata=_RUN_ONLY)  # plain HTTP to a registry on localhost
    docker_config: Path | None = field(default=None, metadata=_RUN_ONLY)  # a config.json with credentials
    progress: Progress = field(default=no_progress, metadata=_RUN_ONLY)  # progress(stage, done, total)
    catalog: Catalog | None = field(default=None, metadata=_RUN_ONLY)  # musl's tables (default: the bundled ones)
    cache: CacheStore | None = field(default=None, metadata=_RUN_ONLY)  # reports of unchanged targets (Store, ...)
    jobs: int = field(default=1, metadata=_RUN_ONLY)  # worker processes; 0: one per CPU (the report is the same)

    def __post_init__(self) -> None:
        """Accept the loose forms of the keyword API: strings for paths and the context, any sequence of preloads."""
        if isinstance(self.context, str) and not isinstance(self.context, Context):
            try:
                object.__setattr__(self, "context", Context(self.context))
            except ValueError:
                known = ", ".join(c.value for c in Context)
                raise UsageError(f"unknown context {self.context!r}; known: {known}") from None
        if not isinstance(self.preload, tuple):
            object.__setattr__(self, "preload", tuple(self.preload))
        for name in ("ignore", "docker_config"):
            value = getattr(self, name)
            if isinstance(value, str | os.PathLike):
                object.__setattr__(self, name, Path(value))


def scan(target: str | os.PathLike[str], options: ScanOptions | None = None, **overrides: Any) -> Report:
    """Judge every ELF file of ``target``: a directory (the target's root), one file, or an image reference
    (``docker-archive:``, ``oci-archive:``, ``oci-dir:``, ``registry:``, ``docker:``, or a path whose kind is
    detected from its content), under ``options`` (``ScanOptions``), with ``overrides`` replacing its fields:
    ``scan(path, alpine="3.20", jobs=0)`` and ``scan(path, ScanOptions(alpine="3.20"), jobs=0)`` are the same.

    Raises ``UsageError`` for a bad option and ``InputError`` for input that cannot be read.
    """
    options = replace(options or ScanOptions(), **overrides)
    catalog = options.catalog or Catalog()
    musl_version, alpine_release = resolve_version(catalog, options.alpine, options.musl)
    arch = _arch_of_platform(options.platform, options.arch) if options.platform is not None else options.arch
    if arch is not None and arch not in SUPPORTED_ARCHES:
        raise UsageError(f"unknown architecture {arch!r}; known: {', '.join(SUPPORTED_ARCHES)}")
    ignore = options.ignore
    ignores = ignore if isinstance(ignore, Ignores) else load_ignores(ignore) if ignore is not None else NO_IGNORES
    chosen = Options(musl_version, alpine_release, arch, options.gcompat, options.context, options.library_path,
                     options.preload, ignores, include_runtimes=options.include_runtimes)
    cache = options.cache
    with ExitStack() as stack:
        ref = parse_reference(str(target))
        image = stack.enter_context(open_image(ref, platform=options.platform,
                                               insecure_registry=options.insecure_registry,
                                               docker_config=options.docker_config)) if ref.is_image else None
        resolved = replace(options, musl=musl_version, alpine=alpine_release, arch=arch, ignore=ignores)
        manifest = directory_manifest(ref.path) if cache is not None and ref.kind == "dir" and ref.path else None
        key = _report_key(ref, image, str(target), resolved, manifest) if cache is not None and options.base is None \
            else None
        if cache is not None and key is not None and (cached := load_report(cache, key)) is not None:
            if image is not None:
                # A hit reads no layer: a blob swapped since the report was made still fails (hashed, unless its
                # file kept the stat identity it had when a hit last hashed it).
                verify_blobs(image, StoredVerifications(cache))
            return cached
        from muslcheck.apps.registry import module_marks
        from muslcheck.cache.files import StoredFiles
        from muslcheck.judging.survey import survey  # only now: a cache hit needs none of the judging
        from muslcheck.targets import ImageAccess

        reuse, kept_key = None, None
        if cache is not None and manifest is not None and ref.path is not None:
            # The judging of the last scan of this directory under these options, less what changed since.
            kept_key = _judging_key(ref.path, str(target), resolved)
            last = load_judged(cache, kept_key)
            reuse = Reuse(last, changed_paths(last.manifest, dict(manifest)) if last else frozenset())
        # The ELF facts read by the last scans of this directory, confirmed file by file (docs/cache.md). The full
        # reads are recorded by rescans only: recording all of a cold scan's cost more than it saves (ibid.).
        rescan = reuse is not None and reuse.state is not None
        known = StoredFiles(cache, ref.path, module_marks(), record_full=rescan) \
            if cache is not None and ref.kind == "dir" and ref.path is not None else None
        image_judging = _ImageJudging(cache, resolved, tuple(layer.digest for layer in image.layers)) \
            if cache is not None and image is not None and options.base is None else None
        surveyed = survey(stack, ref, image, chosen, catalog, source=str(target),
                          access=ImageAccess(options.platform, options.insecure_registry, options.docker_config),
                          base=options.base, include_os_packages=options.include_os_packages,
                          progress=options.progress, jobs=options.jobs, reuse=reuse, reuse_for=image_judging,
                          layer_records=StoredLayers(cache) if cache is not None and image is not None else None,
                          known=known)
        report = surveyed.report
    if known is not None:
        known.save()
    if cache is not None and key is not None:
        save_report(cache, key, report)
    if image_judging is not None and image_judging.key is not None:
        kept_key, manifest = image_judging.key, tuple(image_judging.manifest.items())
    if cache is not None and kept_key is not None and manifest is not None and surveyed.kept is not None \
            and _replaces_its_state(surveyed.kept):
        kept = surveyed.kept
        save_judged(cache, kept_key, JudgedState(dict(manifest), kept.roots, kept.reach))
    return report


# A judging that took nearly all its loads from the state it was given does not replace that state: the next scan
# reuses the older one as well, and judges again what changed since it (a few loads). Writing the state (0.1 s for
# the benchmark tree) is saved on a rescan after a small change, and on each image of a fleet on one base.
_NEW_STATE_SHARE = 0.05


def _replaces_its_state(kept: KeptJudging) -> bool:
    return kept.reused == 0 or len(kept.roots) - kept.reused > _NEW_STATE_SHARE * len(kept.roots)


class _ImageJudging:
    """The judging of the last scan of an image on the same bottom layer, found once the tree is read: the image
    rebuilt with new top layers, or another image of a fleet on the same base. The tree's manifest names each path
    by the layer content that provides it, so what the other layers changed is judged again and the rest reused."""

    def __init__(self, cache: CacheStore, options: ScanOptions, layer_digests: tuple[str, ...]) -> None:
        self.cache, self.options, self.layer_digests = cache, options, layer_digests
        self.key: str | None = None
        self.manifest: dict[str, str] = {}

    def __call__(self, tree: Tree) -> Reuse:
        from muslcheck.targets.image.fs import ImageRoot

        if not isinstance(tree.root, ImageRoot) or not self.layer_digests:
            return Reuse()
        self.manifest = tree.root.manifest(self.layer_digests)
        # What the image itself sets is an input of every load, as the options are; the reference is not.
        self.key = scan_key("judging image on " + self.layer_digests[0], {**_key_fields("", self.options),
                                                                          "image": [tree.library_path, tree.arch]})
        last = load_judged(self.cache, self.key)
        return Reuse(last, changed_paths(last.manifest, self.manifest) if last else frozenset())


def _key_fields(source: str, options: ScanOptions) -> dict[str, object]:
    chosen = {f.name: _key_value(getattr(options, f.name)) for f in dataclasses.fields(options)
              if f.metadata.get("key", True)}
    return {"source": source, **chosen}


def _report_key(ref: Reference, image: Image | None, source: str, options: ScanOptions,
                manifest: tuple[tuple[str, str], ...] | None = None) -> str | None:
    """What the report depends on: the image's content or the directory's stat fingerprint (of ``manifest``), the
    target as written, and every option that is part of the key. None when it cannot be trusted to stay the same
    (a lone file, a directory written to just now)."""
    if image is not None:
        content = json.dumps([dataclasses.asdict(image.config), [layer.digest for layer in image.layers]])
        identity = "image " + hashlib.sha256(content.encode()).hexdigest()
    elif ref.kind == "dir" and ref.path is not None:
        manifest = manifest or directory_manifest(ref.path)
        if manifest is None:
            return None
        identity = "dir " + manifest_fingerprint(manifest)
    else:
        return None
    return scan_key(identity, _key_fields(source, options))


def _judging_key(directory: Path, source: str, options: ScanOptions) -> str:
    """Where the judging of the last scan of ``directory`` under these options is kept."""
    return scan_key("judging " + str(directory.resolve()), _key_fields(source, options))


def _key_value(value: object) -> object:
    """An option as plain JSON for the key; a type not listed here is an error, never a silent collision."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, tuple):
        return [_key_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Ignores):
        return repr(value)
    raise TypeError(f"no cache-key form for {type(value).__name__}")


# "linux/amd64" -> "x86_64", "linux/arm64/v8" -> "aarch64": the platforms whose architecture the loader model judges.
_PLATFORM_ARCHES = {platform: musl for oci, musl in MUSL_ARCH_OF_OCI.items()
                    for platform in ARCHITECTURE_OF_OCI[oci].linux_platforms}


def _arch_of_platform(platform: str, arch: str | None) -> str:
    found = _PLATFORM_ARCHES.get(platform)
    if found is None:
        raise UsageError(f"unknown platform {platform!r}; known: {', '.join(_PLATFORM_ARCHES)}")
    if arch is not None and arch != found:
        raise UsageError(f"platform {platform} is {found}, not {arch}")
    return found
