"""Scan a directory (as a target root), a single file or an image: the library's entry point. The report comes
from the cache when it holds one for the target, else from a survey of it (``survey.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from muslcheck.cache import Store, directory_fingerprint, load_report, save_report, scan_key
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog
from muslcheck.model.errors import UsageError
from muslcheck.model.ignore import NO_IGNORES, Ignores, load_ignores
from muslcheck.model.options import Context, Options, Progress, no_progress
from muslcheck.model.report import Report
from muslcheck.targets.image.sources import open_image
from muslcheck.targets.image.sources.interface import Image
from muslcheck.targets.reference import Reference, parse_reference


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
    ``jobs`` > 1 judges the files in that many forked worker processes, 0 in one per CPU (the report is the same).
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
        from muslcheck.judging.survey import survey  # only now: a cache hit needs none of the judging
        from muslcheck.targets import ImageAccess

        report = survey(stack, ref, image, options, catalog, source=str(path),
                        access=ImageAccess(platform, insecure_registry, docker_config), base=base,
                        include_os_packages=include_os_packages, progress=progress, jobs=jobs)
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


_PLATFORM_ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}


def _arch_of_platform(platform: str, arch: str | None) -> str:
    found = _PLATFORM_ARCHES.get(platform)
    if found is None:
        raise UsageError(f"unknown platform {platform!r}; known: {', '.join(_PLATFORM_ARCHES)}")
    if arch is not None and arch != found:
        raise UsageError(f"platform {platform} is {found}, not {arch}")
    return found
