"""Targets: every input (a directory, one file or archive, an image) becomes one ``Tree``, so the stages above
never know which kind of input they judge.

``open_target(stack, ref, image, access, keep=..., marks=...)`` opens it; the readers take ``keep`` (which small files
to read whole for the application layer) and ``marks`` (what to look for in each ELF file's string table while its
headers are read: ``ElfFacts.dynstr_marks``), and never import the stages above them.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from muslcheck.elf import is_elf, read_elf_file
from muslcheck.ldso.facts import ElfFile, FactsCache
from muslcheck.ldso.tree import RootFS, join
from muslcheck.model.errors import InputError, MalformedElf, UsageError
from muslcheck.model.options import Progress, no_progress
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata, MemberOverlay, scan_archive
from muslcheck.targets.directory import DirectoryRoot, Discovered, KnownFacts, add_archive_members, discover
from muslcheck.targets.limits import KEEP_NOTHING, KeepWhole
from muslcheck.targets.reference import MUSL_ARCH_OF_OCI, Reference, ReferenceKind, parse_reference

if TYPE_CHECKING:
    from muslcheck.targets.image.fs import ImageRoot, LayerRecords
    from muslcheck.targets.image.sources.interface import Image, ImageConfig


@dataclass(frozen=True)
class ImageAccess:
    """How to open an image (the target, and the ``--base`` image)."""

    platform: str | None
    insecure_registry: bool
    docker_config: Path | None


@dataclass(frozen=True)
class Tree:
    """One target as the loader model sees it: a root filesystem, its ELF files, and what the target itself says."""

    root: RootFS
    cache: FactsCache
    found: Discovered
    description: str  # for Report.root: the host directory, or the image reference
    library_path: str | None  # what the target sets: an image's LD_LIBRARY_PATH; "/" beside a lone file
    arch: str | None = None  # an image's architecture, as musl names it
    notes: tuple[str, ...] = ()
    config: ImageConfig | None = None
    unverified: ImageRoot | None = None  # an image whose mapped layers' digests are still to check


def open_target(
    stack: ExitStack,
    ref: Reference,
    image: Image | None,
    access: ImageAccess,
    *,
    base: str | None = None,
    keep: KeepWhole = KEEP_NOTHING,
    progress: Progress = no_progress,
    marks: frozenset[str] | None = None,
    layer_records: LayerRecords | None = None,
    known: KnownFacts | None = None,
) -> Tree:
    """The tree of ``ref``: a directory, a lone file, or ``image`` (already opened on ``stack``), without the
    layers it shares with ``base``. ELF files inside archives are loadable at their locations. ``layer_records``:
    an image's layers recorded by earlier scans, and where to record them (``read_image``); ``known``: a
    directory's ELF facts recorded by earlier scans of it, and where to record them."""
    return _with_archive_members(_open(stack, ref, image, access, base, keep, progress, marks, layer_records,
                                       known))


def _open(stack: ExitStack, ref: Reference, image: Image | None, access: ImageAccess, base: str | None,
          keep: KeepWhole, progress: Progress, marks: frozenset[str] | None,
          layer_records: LayerRecords | None, known: KnownFacts | None) -> Tree:
    if ref.kind == "dir":
        assert ref.path is not None
        root = DirectoryRoot(ref.path, known=known)
        cache = FactsCache(root)
        return Tree(root, cache, discover(root, cache, progress, keep, marks), str(root.host_root), None)
    if ref.kind == "file":
        assert ref.path is not None
        lone, cache, found = _single_file(ref.path, keep)
        return Tree(lone, cache, found, str(lone.host_root), lone.mount)  # a lone file finds its siblings
    assert image is not None
    from muslcheck.targets.image.fs import read_image

    tree = read_image(image, progress, keep=keep, defer_digests=True, records=layer_records, marks=marks)
    image_cache = FactsCache(tree)
    from_layer, notes = 0, [f"image {image.reference}: {image.config.platform}, {len(image.layers)} layers"
                            if image.kind != ReferenceKind.ROOTFS else
                            f"root filesystem {image.reference}: a tar with no image config; each file is judged "
                            "for its own architecture"]
    if base is not None:
        from_layer, note = _app_layers(stack, base, image, access)
        notes.append(note)
    found = tree.elf_files(image_cache, layers_from=from_layer)
    arch, mismatch = _judged_arch(image, access.platform)
    notes.extend(mismatch)
    return Tree(tree, image_cache, found, image.reference, image.config.env_value("LD_LIBRARY_PATH"), arch,
                tuple(notes), image.config, unverified=tree)


def _judged_arch(image: Image, platform: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The architecture the files are judged against, and a note when the image's config claims another.

    The platform chosen with ``--platform`` decides, never the config's claim, which is the image's own word: a
    config saying arm64 over amd64 files would otherwise set them all aside as built for another architecture.
    Without ``--platform``, a config that claims the default (linux/amd64) is taken at its word; one that claims
    another platform makes each file judged for its own architecture (an arm64 image is judged as arm64, and
    amd64 files under an arm64 claim are still judged), with a note. A root-filesystem tar has no config: each
    file is judged for its own architecture."""
    if image.kind == ReferenceKind.ROOTFS:
        return None, ()
    from muslcheck.targets.image.sources.oci import DEFAULT_PLATFORM, config_platform, parse_platform, platform_matches

    chosen = parse_platform(platform) if platform else DEFAULT_PLATFORM
    claimed = config_platform(image.config)
    arch = MUSL_ARCH_OF_OCI.get(chosen.architecture)
    if platform_matches(chosen, claimed):
        return arch, ()
    if not platform:
        return None, (f"the image config says {image.config.platform} and no --platform was given: each file is "
                      "judged for its own architecture",)
    return arch, (f"warning: the image config says {image.config.platform}, but the platform is {chosen} (chosen "
                  f"with --platform): each file is judged by its own ELF machine against {chosen}, not by the "
                  "config's claim",)


def _with_archive_members(tree: Tree) -> Tree:
    """ELF files found inside archives become loadable at their locations ("/app/app.jar!/lib/x.so"), and each
    archive a directory, as once installed (RPATH and $ORIGIN resolve inside it)."""
    members = {f.path: f.facts for f in tree.found.files if ARCHIVE_SEPARATOR in f.path}
    if not members:
        return tree
    overlay = MemberOverlay(tree.root, members, tree.found.archives)
    # The cache keeps the facts of FactsCache.SIZE files: one it dropped is read again, a member through the overlay
    # (read through the tree alone, a member of the 1,025th ELF file in archives was not found: an internal error).
    tree.cache.root = overlay
    return Tree(overlay, tree.cache, tree.found, tree.description, tree.library_path, tree.arch, tree.notes,
                tree.config, tree.unverified)


def _app_layers(stack: ExitStack, base: str, image: Image, access: ImageAccess) -> tuple[int, str]:
    """How many bottom layers the image shares with ``base``: those are the base's, not the app's."""
    from muslcheck.targets.image.sources import open_image

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


def _single_file(source: Path, keep: KeepWhole) -> tuple[DirectoryRoot, FactsCache, Discovered]:
    """One ELF file, or one archive of native libraries, standing alone in its directory."""
    if not source.is_file():
        raise InputError(f"{source}: not a regular file")
    directory = source.resolve().parent
    root = DirectoryRoot(directory, mount=directory.as_posix())  # the file keeps its whole path in the report
    cache = FactsCache(root)
    location = join(root.mount, source.resolve().name)
    try:
        with open(source, "rb") as f:
            head = f.read(4)
            if head.startswith(b"PK"):
                found: dict[object, ElfFile] = {}
                skipped: list[Skip] = []
                archives: list[ArchiveMetadata] = []
                f.seek(0)
                add_archive_members(scan_archive(f, location, keep), found, skipped, archives, cache)
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


__all__ = ["MUSL_ARCH_OF_OCI", "ImageAccess", "KeepWhole", "Tree", "open_target"]
