"""What the user wants scanned: a reference in the style of syft and skopeo.

``KIND:BODY`` in one of the forms of ``SOURCE_KINDS`` (``dir:DIR``, ``oci-dir:DIR[:TAG]``, ``registry:NAME[:TAG]``,
...), or a plain path whose kind is detected from what it is (a directory, an OCI layout, a tar from ``docker save``
or ``skopeo copy ... oci-archive:``, an ELF file).

Image names are normalised as Docker does: ``alpine`` is ``docker.io/library/alpine``, ``org/app`` is
``docker.io/org/app``, the first component is a registry host when it holds a ``.`` or a ``:`` or is
``localhost``, and the tag is ``latest`` unless a tag or a digest is given.

``ARCHITECTURES`` names each CPU architecture as OCI, its other spellings and musl do; every other map of
architecture names is derived from it.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from muslcheck.ldso.tables import SUPPORTED_ARCHES
from muslcheck.model.errors import InputError, UsageError
from muslcheck.targets.image.tarreader import TarError, TarReader


class ReferenceKind(StrEnum):
    """What a reference names; the value is the prefix the user writes. Each has one row in ``SOURCE_KINDS``."""

    DIR = "dir"
    FILE = "file"
    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI_DIR = "oci-dir"
    REGISTRY = "registry"
    DOCKER = "docker"
    ROOTFS = "rootfs"


DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")
_PREFIX = re.compile(r"([a-z][a-z0-9-]*):(.*)", re.DOTALL)

_ELF_MAGIC = b"\x7fELF"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Reference:
    kind: ReferenceKind
    text: str  # as the user wrote it
    path: Path | None = None  # dir, file, docker-archive, oci-archive, oci-dir
    name: str | None = None  # registry, docker: "docker.io/library/alpine"
    # registry/docker: "latest" unless a digest is given; oci-*: the ref.name; docker-archive: "repo:tag" or "@N"
    tag: str | None = None
    digest: str | None = None  # registry, docker: "sha256:..."
    spec: str | None = None  # docker: the image as the user named it, handed to `docker save` unchanged

    @property
    def registry(self) -> str:
        """The registry host of an image name ("docker.io", "ghcr.io", "localhost:5000")."""
        if self.name is None:
            raise ValueError(f"{self.text}: not an image name")
        return self.name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        """The repository path inside the registry ("library/alpine")."""
        if self.name is None:
            raise ValueError(f"{self.text}: not an image name")
        return self.name.split("/", 1)[1]

    @property
    def is_image(self) -> bool:
        return self.kind in IMAGE_KINDS


@dataclass(frozen=True)
class ImageName:
    name: str  # "docker.io/library/alpine"
    tag: str | None
    digest: str | None


def parse_image_name(text: str) -> ImageName:
    """A Docker-style image name, normalised; ``UsageError`` when it is not one."""
    if not text:
        raise UsageError("empty image name")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST.fullmatch(digest):
            raise UsageError(f"{text}: bad digest {digest!r} (expected sha256: and 64 lowercase hex digits)")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise UsageError(f"{text}: bad tag {tag!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, remainder
        if not _DOMAIN.fullmatch(domain):
            raise UsageError(f"{text}: bad registry host {domain!r}")
    else:
        domain, path = DOCKER_HUB, rest
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if not _REPOSITORY.fullmatch(path):
        hint = " (repository names are lowercase)" if path.lower() != path else ""
        raise UsageError(f"{text}: bad repository name {path!r}{hint}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageName(f"{domain}/{path}", tag, digest)


def _split_existing(body: str, *, first: bool = False) -> tuple[str, str | None]:
    """``PATH[:SUFFIX]`` where PATH may itself hold colons: the longest prefix that exists wins."""
    if not body:
        return body, None
    if Path(body).exists():
        return body, None
    for i in range(len(body) - 1, 0, -1):
        if body[i] == ":" and Path(body[:i]).exists():
            return body[:i], body[i + 1:]
    # Nothing exists: the suffix is what follows the last colon, as skopeo reads it; opening says what is missing.
    head, sep, tail = body.partition(":") if first else body.rpartition(":")
    if sep and head and tail and (first or "/" not in tail):
        return head, tail
    return body, None


def _need_path(kind: ReferenceKind, text: str, body: str) -> None:
    if not body:
        raise UsageError(f"{text}: {kind}: needs a path")


# ---- the body of each form: (kind, the whole text, what follows "KIND:") -> Reference ----------------------

def _path_only(kind: ReferenceKind, text: str, body: str) -> Reference:
    """``PATH``."""
    _need_path(kind, text, body)
    return Reference(kind, text, path=Path(body))


def _path_and_tag(kind: ReferenceKind, text: str, body: str) -> Reference:
    """``PATH[:TAG]``, TAG being an OCI layout's ``ref.name``."""
    path, tag = _split_existing(body)
    _need_path(kind, text, path)
    if tag is not None and not tag:
        raise UsageError(f"{text}: empty tag after the path")
    return Reference(kind, text, path=Path(path), tag=tag)


def _path_and_selector(kind: ReferenceKind, text: str, body: str) -> Reference:
    """``PATH[:REPO:TAG|:@INDEX]``: one image of a ``docker save`` tar, by its RepoTags or its position."""
    path, selector = _split_existing(body, first=True)
    _need_path(kind, text, path)
    if selector is not None and not selector:
        raise UsageError(f"{text}: empty image selector after the path")
    if selector is not None and not selector.startswith("@"):
        parse_image_name(selector)  # validate only; the archive's RepoTags are matched as written
        if ":" not in selector.rsplit("/", 1)[-1]:
            selector += ":" + DEFAULT_TAG
    elif selector is not None and not selector[1:].isdigit():
        raise UsageError(f"{text}: bad image index {selector!r} (expected @0, @1, ...)")
    return Reference(kind, text, path=Path(path), tag=selector)


def _image_name(kind: ReferenceKind, text: str, body: str) -> Reference:
    """``NAME[:TAG][@DIGEST]``, normalised."""
    image = parse_image_name(body)
    return Reference(kind, text, name=image.name, tag=image.tag, digest=image.digest)


def _image_spec(kind: ReferenceKind, text: str, body: str) -> Reference:
    """An image name, with tag or digest, or an image id: kept as written for ``docker save``."""
    if not body or body.startswith("-"):
        raise UsageError(f"cannot parse reference {text!r}: {kind}: needs an image name")
    if _IMAGE_ID.fullmatch(body):
        return Reference(kind, text, spec=body)
    image = parse_image_name(body)
    return Reference(kind, text, name=image.name, tag=image.tag, digest=image.digest, spec=body)


# ---- the kinds: each registered here once ----------------------------------------------------------------

@dataclass(frozen=True)
class SourceKind:
    """One kind of reference: how it is written and read, and for an image the ``Source`` that opens it."""

    kind: ReferenceKind
    form: str  # as help text shows it: "oci-dir:DIR[:TAG]"
    parse: Callable[[ReferenceKind, str, str], Reference]
    # "module:Class" under muslcheck.targets.image.sources, imported only when such an image is opened;
    # the class builds itself with Class.from_reference(ref, platform=, insecure_registry=, docker_config=).
    # None: not an image (targets.open_target reads it).
    source: str | None = None


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind(ReferenceKind.DIR, "dir:DIR", _path_only),
    SourceKind(ReferenceKind.FILE, "file:FILE", _path_only),
    SourceKind(ReferenceKind.DOCKER_ARCHIVE, "docker-archive:FILE[:REPO:TAG]", _path_and_selector,
               "archive:DockerArchiveSource"),
    SourceKind(ReferenceKind.OCI_ARCHIVE, "oci-archive:FILE[:TAG]", _path_and_tag, "archive:OciArchiveSource"),
    SourceKind(ReferenceKind.OCI_DIR, "oci-dir:DIR[:TAG]", _path_and_tag, "ocidir:OciDirSource"),
    SourceKind(ReferenceKind.REGISTRY, "registry:NAME[:TAG]", _image_name, "registry:RegistrySource"),
    SourceKind(ReferenceKind.DOCKER, "docker:NAME[:TAG]", _image_spec, "daemon:DockerDaemonSource"),
    SourceKind(ReferenceKind.ROOTFS, "rootfs:FILE", _path_only, "rootfs:RootfsSource"),
)
_SOURCE_KIND = {row.kind: row for row in SOURCE_KINDS}

KINDS = tuple(row.kind for row in SOURCE_KINDS)
IMAGE_KINDS = tuple(row.kind for row in SOURCE_KINDS if row.source is not None)
IMAGE_FORMS = ", ".join(row.form for row in SOURCE_KINDS if row.source is not None)  # for help text


def source_kind(kind: ReferenceKind) -> SourceKind:
    return _SOURCE_KIND[kind]


def parse_reference(text: str) -> Reference:
    """Parse a source reference.

    ``UsageError`` when it cannot be parsed, ``InputError`` for a plain path that is not there.
    """
    if not text or text.strip() != text or "\n" in text or "\0" in text:
        raise UsageError(f"cannot parse reference {text!r}")
    m = _PREFIX.fullmatch(text)
    if m and m.group(1) in KINDS:
        row = _SOURCE_KIND[ReferenceKind(m.group(1))]
        return row.parse(row.kind, text, m.group(2))
    return detect(text)


# ---- architectures -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Architecture:
    """One CPU architecture under each of its names."""

    oci: str  # as image configs and platforms name it: "amd64"
    musl: str  # as musl (and the loader model) names it: "x86_64"
    aliases: tuple[str, ...] = ()  # other spellings found in configs and indexes, read as ``oci``
    plain_variant: str | None = None  # the variant that says no more than the architecture ("v8" on arm64)

    @property
    def linux_platforms(self) -> tuple[str, ...]:
        """How a platform names it: "linux/arm64", and "linux/arm64/v8" with the variant that adds nothing."""
        plain = f"linux/{self.oci}"
        return (plain, f"{plain}/{self.plain_variant}") if self.plain_variant else (plain,)


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("amd64", "x86_64", ("x86_64", "x86-64"), plain_variant="v1"),
    Architecture("arm64", "aarch64", ("aarch64",), plain_variant="v8"),
    Architecture("arm", "arm", ("armhf", "armel")),
    Architecture("386", "i386", ("i686", "i386")),
    Architecture("ppc64le", "ppc64", ("powerpc64le",)),
    Architecture("s390x", "s390x"),
    Architecture("riscv64", "riscv64"),
)
ARCHITECTURE_OF_OCI = {a.oci: a for a in ARCHITECTURES}
OCI_ARCH_OF_ALIAS = {alias: a.oci for a in ARCHITECTURES for alias in a.aliases}
# An image config names its architecture as OCI does, the loader model as musl does (those it has tables for).
MUSL_ARCH_OF_OCI = {a.oci: a.musl for a in ARCHITECTURES if a.musl in SUPPORTED_ARCHES}


def detect(text: str) -> Reference:
    """A plain path: its kind from what it is."""
    path = Path(text)
    if not path.exists():
        hint = ""
        m = _PREFIX.fullmatch(text)
        if m and "/" not in m.group(1):
            try:
                parse_image_name(text)
                hint = f" (for an image in a registry write registry:{text}, for a local Docker image docker:{text})"
            except UsageError:
                hint = f" (and {m.group(1)!r} is not a source kind; known: {', '.join(KINDS)})"
        raise InputError(f"{text}: no such file or directory{hint}")
    if path.is_dir():
        if (path / "oci-layout").is_file() and (path / "index.json").is_file():
            return Reference(ReferenceKind.OCI_DIR, text, path=path)
        return Reference(ReferenceKind.DIR, text, path=path)
    kind = sniff_file(path)
    return Reference(kind, text, path=path)


def sniff_file(path: Path) -> ReferenceKind:
    """FILE, DOCKER_ARCHIVE, OCI_ARCHIVE or ROOTFS from the content; ``InputError`` otherwise."""
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")  # a FIFO or device is never opened
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e
    if head.startswith(_ELF_MAGIC) or head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ReferenceKind.FILE  # one ELF file, or one archive (JAR, WAR, wheel, zip) of native libraries
    if head.startswith(_GZIP_MAGIC) or head.startswith(_ZSTD_MAGIC):
        return _sniff_compressed(path, head.startswith(_GZIP_MAGIC))
    try:
        with path.open("rb") as f:
            kind = _sniff_tar(f, path.stat().st_size)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    if kind is None:
        raise InputError(f"{path}: not an ELF file, a JAR/zip, a directory, a tar of a root filesystem, "
                         "a docker-archive or an oci-archive")
    return kind


# What the first members of an image archive are named: a root filesystem has none of these at its top.
_IMAGE_ARCHIVE_NAMES = frozenset({"index.json", "oci-layout", "repositories", "blobs"})
_LEGACY_LAYER_DIR = re.compile(r"[0-9a-f]{64}(?:\.json)?")
_SNIFF_BYTES = 1 << 20  # of a compressed file, inflated to tell a root filesystem from an image archive
_SNIFF_MEMBERS = 64
_MAX_MANIFEST_BYTES = 16 << 20


def _sniff_compressed(path: Path, gzip: bool) -> ReferenceKind:
    """A compressed tar is a root filesystem (``docker export | gzip``), unless its first members name an
    image archive: those are read uncompressed."""
    try:
        head = _inflated_head(path, gzip)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    except ValueError as e:
        raise InputError(f"{path}: a compressed file that is not a tar ({e})") from e
    names: list[str] = []
    manifest: bytes | None = None
    try:
        for entry in TarReader(BytesIO(head), where=str(path)):
            names.append(_top(entry.name))
            if entry.name.removeprefix("./") == "manifest.json" and entry.isreg():
                manifest = head[entry.offset_data : entry.offset_data + entry.size]
            if len(names) >= _SNIFF_MEMBERS:
                break
    except TarError as e:
        if not names and "truncated" not in str(e):
            raise InputError(f"{path}: a compressed file that is not a tar ({e})") from e
    if not names and len(head) < 512:
        raise InputError(f"{path}: a compressed file that is not a tar")
    if any(name in _IMAGE_ARCHIVE_NAMES or _LEGACY_LAYER_DIR.fullmatch(name) for name in names) or (
            manifest is not None and _docker_shape(manifest)):
        raise InputError(f"{path}: a compressed image archive; decompress it first "
                         "(muslcheck reads docker-archive and oci-archive tars uncompressed)")
    return ReferenceKind.ROOTFS


def _inflated_head(path: Path, gzip: bool) -> bytes:
    """Up to ``_SNIFF_BYTES`` of the file inflated (never more); ``ValueError`` for corrupt data."""
    with path.open("rb") as f:
        if gzip:
            try:
                return zlib.decompressobj(31).decompress(f.read(_SNIFF_BYTES), _SNIFF_BYTES)
            except zlib.error as e:
                raise ValueError(str(e)) from e
        import zstandard  # imported only for a zstd file

        try:
            with zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(f) as reader:
                return reader.read(_SNIFF_BYTES)
        except zstandard.ZstdError as e:
            raise ValueError(str(e)) from e


def _top(name: str) -> str:
    return name.removeprefix("./").split("/", 1)[0]


def _sniff_tar(f: BinaryIO, size: int) -> ReferenceKind | None:
    """An uncompressed tar's kind: a docker-archive when its manifest.json has the shape of one (a non-empty
    list of images whose Config and Layers name members of the tar), an oci-archive when it holds oci-layout
    and index.json, else a root filesystem; None when it is not a tar."""
    top: set[str] = set()
    manifest: tuple[int, int] | None = None
    try:
        for entry in TarReader(f, size, where="tar"):
            name = entry.name.removeprefix("./")
            if "/" not in name and entry.isreg():
                top.add(name)
                if name == "manifest.json":
                    manifest = (entry.offset_data, entry.size)
    except TarError:
        return None
    if manifest is not None and _docker_manifest(f, size, manifest):
        return ReferenceKind.DOCKER_ARCHIVE
    if "oci-layout" in top and "index.json" in top:
        return ReferenceKind.OCI_ARCHIVE
    return ReferenceKind.ROOTFS


def _docker_shape(manifest: bytes) -> set[str]:
    """The member names a docker-archive's manifest.json names (a non-empty list of objects, each with a Config and
    a Layers list); empty when it has not that shape."""
    try:
        doc = json.loads(manifest)
    except (ValueError, RecursionError):
        return set()
    if not isinstance(doc, list) or not doc or not all(isinstance(item, dict) for item in doc):
        return set()
    wanted: set[str] = set()
    for item in doc:
        config, layers = item.get("Config"), item.get("Layers")
        if not isinstance(config, str) or not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            return set()
        wanted.add(config)
        wanted.update(layers)
    return {"/".join(p for p in name.split("/") if p not in ("", ".")) for name in wanted}


def _docker_manifest(f: BinaryIO, size: int, where: tuple[int, int]) -> bool:
    """Whether the manifest.json at ``where`` (offset, size) is a docker-archive's: a non-empty list of objects
    with a Config and a Layers list, naming members of the tar."""
    offset, length = where
    if length > _MAX_MANIFEST_BYTES:
        return True  # too large to be a stray file: the docker-archive reader says what is wrong with it
    f.seek(offset)
    wanted = _docker_shape(f.read(length))
    if not wanted:
        return False
    f.seek(0)
    try:  # one named member is enough: an archive that lacks the others is a damaged docker-archive, said as such
        return any("/".join(p for p in entry.name.split("/") if p not in ("", ".")) in wanted
                   for entry in TarReader(f, size, where="tar"))
    except TarError:
        return False
