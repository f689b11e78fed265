"""The JSON every image source shares: OCI image index and manifest, Docker manifest list and schema 2
manifest, the image config; choosing the platform; verifying what was read.

Every manifest, index and config is read through ``Fetch``, which returns the blob's bytes only once
their sha256 matches the descriptor, and never more than ``MAX_JSON_BYTES`` of them: a 500 MB "config"
is an error, not an out-of-memory. Nested indexes are followed to ``MAX_DEPTH`` with cycle detection,
and an image may name at most ``MAX_MANIFESTS`` manifests and ``MAX_LAYERS`` layers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from muslcheck.model.errors import UsageError
from muslcheck.targets.image.sources.interface import BlobStore, DigestMismatch, ImageConfig, Layer, SourceError
from muslcheck.targets.reference import ARCHITECTURE_OF_OCI, DIGEST, OCI_ARCH_OF_ALIAS

MAX_JSON_BYTES = 16 << 20
MAX_DEPTH = 8
MAX_MANIFESTS = 1_000
MAX_LAYERS = 10_000

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
# docker save's legacy layer.tar (not a registry type)
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)

_LAYER_COMPRESSION = {
    DOCKER_LAYER_TAR: "none",
    DOCKER_LAYER_GZIP: "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    OCI_LAYER_TAR: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
LAYER_TYPES = tuple(_LAYER_COMPRESSION)


def layer_compression(media_type: str) -> str:
    """"none", "gzip" or "zstd" for a layer media type; ``SourceError`` for one that is not a layer."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except KeyError:
        raise SourceError(f"unknown layer media type {media_type!r}") from None


# ---- platforms ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    @property
    def normal_variant(self) -> str | None:
        arch = ARCHITECTURE_OF_OCI.get(self.architecture)
        if arch is not None and self.variant == arch.plain_variant:
            return None
        return self.variant or None


DEFAULT_PLATFORM = Platform("linux", "amd64")


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` ("linux/arm64", "linux/arm/v7"); ``UsageError`` when malformed."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts) or not all(p.replace("_", "").replace("-", "").isalnum()
                                                            for p in parts):
        raise UsageError(f"bad platform {text!r} (expected OS/ARCH[/VARIANT], e.g. linux/arm64)")
    os_, arch = parts[0].lower(), parts[1].lower()
    return Platform(os_, OCI_ARCH_OF_ALIAS.get(arch, arch), parts[2].lower() if len(parts) == 3 else None)


def platform_matches(want: Platform, have: Platform) -> bool:
    if want.os != have.os or want.architecture != have.architecture:
        return False
    return want.normal_variant is None or want.normal_variant == have.normal_variant


# ---- descriptors and documents -----------------------------------------------------------------------

@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int | None
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Selected:
    """The image chosen from a source: its manifest (None for docker-archive's manifest.json), config, layers."""
    manifest_digest: str | None
    manifest: Manifest | None
    config: ImageConfig
    layers: tuple[Layer, ...]


Fetch = Callable[[Descriptor], bytes]


def check_digest(digest: object, where: str) -> str:
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise SourceError(f"{where}: bad digest {digest!r} (expected sha256: or sha512: and lowercase hex)")
    return digest


def load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise SourceError(f"{where}: malformed JSON: {e}") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceError(f"{where}: expected a JSON object")
    return value


def _strings(value: Any, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourceError(f"{where}: {what} is not a list of strings")
    return tuple(value)


def parse_descriptor(obj: Any, where: str) -> Descriptor:
    d = _object(obj, where)
    media_type = d.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise SourceError(f"{where}: a descriptor has no mediaType")
    digest = check_digest(d.get("digest"), where)
    size = d.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise SourceError(f"{where}: descriptor {digest} has a bad size {size!r}")
    platform = None
    p = d.get("platform")
    if isinstance(p, dict) and isinstance(p.get("os"), str) and isinstance(p.get("architecture"), str):
        variant = p.get("variant")
        arch = p["architecture"].lower()
        platform = Platform(p["os"].lower(), OCI_ARCH_OF_ALIAS.get(arch, arch),
                            variant.lower() if isinstance(variant, str) and variant else None)
    annotations = d.get("annotations")
    notes = ({str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {})
    return Descriptor(media_type, digest, size, platform, notes)


def parse_document(data: bytes, media_type_hint: str | None, where: str) -> Index | Manifest:
    """An index (OCI or Docker manifest list) or a manifest (OCI or Docker schema 2)."""
    doc = _object(load_json(data, where), where)
    media_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else None
    if media_type is None:
        if doc.get("schemaVersion") == 1:
            media_type = DOCKER_SCHEMA1[0]
        elif media_type_hint and media_type_hint not in ("application/json", "text/plain"):
            media_type = media_type_hint.split(";")[0].strip()
        elif "manifests" in doc:
            media_type = OCI_INDEX
        elif "layers" in doc and "config" in doc:
            media_type = OCI_MANIFEST
        else:
            raise SourceError(f"{where}: neither an image index nor an image manifest")
    if media_type in DOCKER_SCHEMA1:
        raise SourceError(f"{where}: unsupported media type {media_type} (Docker schema 1 is deprecated; "
                          "re-push the image with a current Docker or skopeo)")
    if media_type in INDEX_TYPES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise SourceError(f"{where}: index without a manifests list")
        if len(items) > MAX_MANIFESTS:
            raise SourceError(f"{where}: index lists {len(items)} manifests (limit {MAX_MANIFESTS})")
        return Index(media_type, tuple(parse_descriptor(m, where) for m in items))
    if media_type in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise SourceError(f"{where}: manifest without a layers list")
        if len(layers) > MAX_LAYERS:
            raise SourceError(f"{where}: manifest lists {len(layers)} layers (limit {MAX_LAYERS})")
        config = parse_descriptor(doc.get("config"), where)
        return Manifest(media_type, config, tuple(parse_descriptor(x, where) for x in layers))
    raise SourceError(f"{where}: unknown media type {media_type!r} (not an image index or manifest)")


def parse_config(data: bytes, where: str) -> ImageConfig:
    doc = _object(load_json(data, where), where)
    os_, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        raise SourceError(f"{where}: image config without os and architecture")
    variant = doc.get("variant")
    cfg = doc.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    rootfs = doc.get("rootfs")
    rootfs = rootfs if isinstance(rootfs, dict) else {}
    diff_ids = _strings(rootfs.get("diff_ids"), where, "rootfs.diff_ids")
    if len(diff_ids) > MAX_LAYERS:
        raise SourceError(f"{where}: config lists {len(diff_ids)} layers (limit {MAX_LAYERS})")
    for d in diff_ids:
        check_digest(d, where)
    workdir = cfg.get("WorkingDir")
    arch = arch.lower()
    return ImageConfig(
        os=os_.lower(),
        architecture=OCI_ARCH_OF_ALIAS.get(arch, arch),
        variant=variant.lower() if isinstance(variant, str) and variant else None,
        env=_strings(cfg.get("Env"), where, "config.Env"),
        workdir=workdir if isinstance(workdir, str) and workdir else None,
        entrypoint=_strings(cfg.get("Entrypoint"), where, "config.Entrypoint"),
        cmd=_strings(cfg.get("Cmd"), where, "config.Cmd"),
        diff_ids=diff_ids,
    )


def config_platform(config: ImageConfig) -> Platform:
    return Platform(config.os, config.architecture, config.variant)


# ---- reading and verifying ---------------------------------------------------------------------------

def hasher(digest: str) -> Any:
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise SourceError(f"unsupported digest algorithm in {digest}")
    return hashlib.new(algorithm)


def verify_bytes(data: bytes, digest: str, where: str) -> None:
    h = hasher(digest)
    h.update(data)
    actual = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(f"{where}: blob {digest} has digest {actual}: the content does not match its descriptor")


def read_capped(stream: BinaryIO, limit: int, where: str) -> bytes:
    """At most ``limit`` bytes; ``SourceError`` if there are more (a JSON document is never that big)."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise SourceError(f"{where}: larger than {limit >> 20} MiB, too large for a manifest or config")
    return b"".join(chunks)


def check_size(desc: Descriptor, where: str) -> None:
    if desc.size is not None and desc.size > MAX_JSON_BYTES:
        raise SourceError(f"{where}: {desc.media_type} {desc.digest} is {desc.size} bytes, "
                          f"larger than {MAX_JSON_BYTES >> 20} MiB, too large for a manifest or config")


def verify_document(data: bytes, desc: Descriptor, where: str) -> bytes:
    if desc.size is not None and len(data) != desc.size:
        raise DigestMismatch(f"{where}: blob {desc.digest} has {len(data)} bytes, its descriptor says {desc.size}")
    verify_bytes(data, desc.digest, where)
    return data


def blob_fetcher(blobs: BlobStore, where: str) -> Fetch:
    """``Fetch`` over a blob store (an OCI layout, a tar): capped, size- and digest-checked."""
    def fetch(desc: Descriptor) -> bytes:
        check_size(desc, where)
        with blobs.open_blob(desc.digest) as stream:
            data = read_capped(stream, MAX_JSON_BYTES, f"{where}: blob {desc.digest}")
        return verify_document(data, desc, where)
    return fetch


# ---- choosing the image ------------------------------------------------------------------------------

def _is_attestation(desc: Descriptor) -> bool:
    return (desc.annotations.get("vnd.docker.reference.type") == "attestation-manifest"
            or (desc.platform is not None and desc.platform.os == "unknown"))


def _manifests(index: Index, fetch: Fetch, where: str, ancestors: tuple[str, ...],
               counter: list[int], skipped: set[str]) -> Iterator[Descriptor]:
    """The manifest descriptors an index names, nested indexes followed depth-first."""
    if len(ancestors) > MAX_DEPTH:
        raise SourceError(f"{where}: indexes nested deeper than {MAX_DEPTH} levels")
    for desc in index.manifests:
        counter[0] += 1
        if counter[0] > MAX_MANIFESTS:
            raise SourceError(f"{where}: more than {MAX_MANIFESTS} manifests in the index")
        if desc.media_type in INDEX_TYPES:
            if desc.digest in ancestors:
                raise SourceError(f"{where}: index {desc.digest} refers to itself (a cycle)")
            child = parse_document(fetch(desc), desc.media_type, f"{where}: index {desc.digest}")
            if isinstance(child, Index):
                yield from _manifests(child, fetch, where, (*ancestors, desc.digest), counter, skipped)
            else:
                yield desc
        elif desc.media_type in MANIFEST_TYPES:
            if not _is_attestation(desc):
                yield desc
        else:
            skipped.add(desc.media_type)


def _load_manifest(desc: Descriptor, fetch: Fetch, where: str) -> Manifest:
    doc = parse_document(fetch(desc), desc.media_type, f"{where}: manifest {desc.digest}")
    if not isinstance(doc, Manifest):
        raise SourceError(f"{where}: {desc.digest} is an index where a manifest was expected")
    return doc


def load_config(manifest: Manifest, fetch: Fetch, where: str) -> ImageConfig:
    desc = manifest.config
    if desc.media_type not in CONFIG_TYPES:
        raise SourceError(f"{where}: config media type {desc.media_type!r} is not a container image config "
                          "(an artifact, not an image?)")
    return parse_config(fetch(desc), f"{where}: config {desc.digest}")


def image_layers(manifest: Manifest, config: ImageConfig, where: str) -> tuple[Layer, ...]:
    for desc in manifest.layers:
        if desc.media_type not in LAYER_TYPES:
            raise SourceError(f"{where}: layer {desc.digest} has unknown media type {desc.media_type!r}")
    if len(manifest.layers) != len(config.diff_ids):
        raise SourceError(f"{where}: the manifest lists {len(manifest.layers)} layers, "
                          f"the config {len(config.diff_ids)} diff_ids")
    return tuple(Layer(d.digest, d.media_type, d.size, diff_id)
                 for d, diff_id in zip(manifest.layers, config.diff_ids, strict=True))


def choose_platform(candidates: list[tuple[Platform, int]], wanted: str | None, where: str) -> int:
    """The index (second item) of the candidate for ``wanted``, which defaults to linux/amd64.

    With no platform asked for, a source holding one image gives that image, whatever its platform.
    An explicit platform must match. ``SourceError`` lists the platforms there are.
    """
    want = parse_platform(wanted) if wanted else DEFAULT_PLATFORM
    matching = [(p, i) for p, i in candidates if platform_matches(want, p)]
    if matching:
        exact = [(p, i) for p, i in matching if p.normal_variant == want.normal_variant]
        return (exact or matching)[0][1]
    if not wanted and len({i for _, i in candidates}) == 1:
        return candidates[0][1]
    available = ", ".join(sorted({str(p) for p, _ in candidates})) or "none"
    hint = "" if wanted else "; choose one with --platform"
    raise SourceError(f"{where}: no image for platform {want}; available: {available}{hint}")


def select_image(root: Index | Manifest, fetch: Fetch, platform: str | None, where: str,
                 root_digest: str | None = None) -> Selected:
    """Follow ``root`` to the one image for ``platform`` and read its manifest and config."""
    if platform:
        parse_platform(platform)
    if isinstance(root, Manifest):
        config = load_config(root, fetch, where)
        choose_platform([(config_platform(config), 0)], platform, where)
        return Selected(root_digest, root, config, image_layers(root, config, where))
    skipped: set[str] = set()
    descs = list(_manifests(root, fetch, where, (root_digest,) if root_digest else (), [0], skipped))
    if not descs:
        extra = f" (it holds only {', '.join(sorted(skipped))})" if skipped else ""
        raise SourceError(f"{where}: the index names no image manifest{extra}")
    loaded: dict[int, tuple[Manifest, ImageConfig]] = {}
    candidates: list[tuple[Platform, int]] = []
    for i, desc in enumerate(descs):
        if desc.platform is not None:
            candidates.append((desc.platform, i))
        else:  # no platform in the index (a single-image OCI layout): the config says it
            manifest = _load_manifest(desc, fetch, where)
            config = load_config(manifest, fetch, where)
            loaded[i] = (manifest, config)
            candidates.append((config_platform(config), i))
    chosen = choose_platform(candidates, platform, where)
    desc = descs[chosen]
    if chosen in loaded:
        manifest, config = loaded[chosen]
    else:
        manifest = _load_manifest(desc, fetch, where)
        config = load_config(manifest, fetch, where)
    return Selected(desc.digest, manifest, config, image_layers(manifest, config, where))


# ---- OCI image layouts (oci-dir, oci-archive, the OCI part of newer docker-archives) --------------------

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def _tag_matches(desc: Descriptor, tag: str) -> bool:
    for key in (REF_NAME, CONTAINERD_NAME):
        value = desc.annotations.get(key)
        if value is None:
            continue
        if value == tag or (":" not in tag and "/" not in tag and value.endswith(":" + tag)):
            return True
    return False


def check_layout_marker(data: bytes, where: str) -> None:
    doc = _object(load_json(data, f"{where}: oci-layout"), f"{where}: oci-layout")
    version = doc.get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise SourceError(f"{where}: unsupported OCI layout version {version!r}")


def select_from_layout(index_json: bytes, fetch: Fetch, tag: str | None, platform: str | None,
                       where: str, kind: str) -> Selected:
    """The image an OCI layout's ``index.json`` names, by tag (``ref.name``) and platform."""
    root = parse_document(index_json, OCI_INDEX, f"{where}: index.json")
    if not isinstance(root, Index):
        raise SourceError(f"{where}: index.json is not an image index")
    names = sorted({d.annotations[REF_NAME] for d in root.manifests if REF_NAME in d.annotations})
    if tag is not None:
        chosen = tuple(d for d in root.manifests if _tag_matches(d, tag))
        if not chosen:
            known = ", ".join(names) or "none"
            raise SourceError(f"{where}: no image tagged {tag!r}; tags: {known}")
        root = Index(root.media_type, chosen)
    elif len(names) > 1:
        raise SourceError(f"{where}: holds {len(names)} images (tags: {', '.join(names)}); "
                          f"choose one with {kind}:PATH:TAG")
    return select_image(root, fetch, platform, where)
