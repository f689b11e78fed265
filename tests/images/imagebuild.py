"""Build container images for tests: our own writers, real producers (umoci, skopeo) and a real registry.

One description of an image, a list of layers, feeds every writer:

- a layer is a list of ``Entry`` (made with ``file``, ``directory``, ``symlink``, ``hardlink``,
  ``whiteout``, ``opaque``, ``device``, ``fifo``, or ``raw`` for hostile names written verbatim),
  or ``bytes``: an uncompressed layer tar used as it is (a truncated one, say);
- ``write_docker_archive_legacy`` (``docker save`` before Docker 25: manifest.json, ``<id>/layer.tar``,
  ``<hex>.json`` config, repositories), ``write_docker_archive_oci`` (Docker >= 25: an OCI layout in a
  tar, plus manifest.json and repositories), ``write_oci_dir``, ``write_oci_archive``, and the
  multi-platform ``write_multiplatform_oci_dir`` / ``write_multiplatform_oci_archive``;
- ``materialize`` applies the same layers to a host directory, as a container runtime would: the
  reference tree that a ``dir:`` scan judges, and what ``umoci_build`` repacks layer by layer.

Everything is deterministic: fixed mtimes, owners and order, gzip without a timestamp.
Not a conftest.py on purpose: tests/ is not a package, and a second module named ``conftest``
would shadow tests/conftest.py for ``from conftest import ...`` elsewhere.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import unavailable

MTIME = 1_700_000_000  # every tar member and materialized file
CREATED = "2023-11-14T22:13:20Z"  # the same instant, for configs

# Media types.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = {
    "none": "application/vnd.docker.image.rootfs.diff.tar",
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
}
REF_NAME = "org.opencontainers.image.ref.name"


# --- layer entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar member. ``name`` is an image path ("/app/bin/x"); written without the leading "/"
    unless ``verbatim`` (hostile names: "../x", "/abs", written exactly as given)."""

    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "char", "block", "fifo"
    data: bytes = b""
    source: Path | None = None  # a host file whose bytes are the content
    target: str = ""  # symlink target as written; hard link target as an image path
    mode: int = 0o644
    major: int = 0
    minor: int = 0
    verbatim: bool = False

    def content(self) -> bytes:
        return self.source.read_bytes() if self.source is not None else self.data

    @property
    def member_name(self) -> str:
        return self.name if self.verbatim else self.name.lstrip("/")


def file(path: str, data: bytes = b"", *, source: Path | str | None = None, mode: int | None = None) -> Entry:
    """A regular file from bytes or from a host file (mode 0755 for a host file, else 0644)."""
    src = Path(source) if source is not None else None
    return Entry(path, "file", data, src, mode=mode if mode is not None else (0o755 if src else 0o644))


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode=mode)


def symlink(path: str, target: str) -> Entry:
    """A symlink; ``target`` is written as given (relative, or absolute meaning inside the image)."""
    return Entry(path, "symlink", target=target, mode=0o777)


def hardlink(path: str, target: str) -> Entry:
    """A hard link to ``target``, an image path written earlier in the same layer (or a lower one)."""
    return Entry(path, "hardlink", target=target, mode=0o755)


def whiteout(path: str) -> Entry:
    """Deletes ``path`` of the lower layers: ``dir/.wh.name``."""
    parent, _, base = path.rstrip("/").rpartition("/")
    return Entry(f"{parent}/.wh.{base}", "file")


def opaque(dirpath: str) -> Entry:
    """Hides everything the lower layers put under ``dirpath``: ``dirpath/.wh..wh..opq``."""
    return Entry(dirpath.rstrip("/") + "/.wh..wh..opq", "file")


def device(path: str, kind: str = "char", major: int = 1, minor: int = 3) -> Entry:
    return Entry(path, kind, mode=0o666, major=major, minor=minor)


def fifo(path: str) -> Entry:
    return Entry(path, "fifo", mode=0o644)


def raw(name: str, kind: str = "file", data: bytes = b"", target: str = "") -> Entry:
    """A member whose name (and link target) is written verbatim: ``../escape``, ``/abs/path``."""
    return Entry(name, kind, data, target=target, mode=0o755 if kind == "file" else 0o777, verbatim=True)


Layer = Sequence[Entry] | bytes  # entries, or a prebuilt uncompressed tar used as it is


def with_parents(entries: Sequence[Entry]) -> list[Entry]:
    """The entries, each preceded by directory entries for its parents not yet seen (as real layers have)."""
    out: list[Entry] = []
    seen: set[str] = set()
    for e in entries:
        if not e.verbatim:
            parts = e.name.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/" + "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    out.append(directory(d))
        if e.kind == "dir":
            seen.add("/" + e.name.strip("/"))
        out.append(e)
    return out


_TAR_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
}  # fmt: skip


def tar_member(e: Entry) -> tuple[tarfile.TarInfo, io.BytesIO | None]:
    """The tar header and content stream of one layer entry."""
    info = tarfile.TarInfo(e.member_name)
    info.type = _TAR_TYPES[e.kind]
    info.mode = e.mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    data = None
    if e.kind == "file":
        data = e.content()
        info.size = len(data)
    elif e.kind == "symlink":
        info.linkname = e.target
    elif e.kind == "hardlink":
        info.linkname = e.target if e.verbatim else e.target.lstrip("/")
    elif e.kind in ("char", "block"):
        info.devmajor, info.devminor = e.major, e.minor
    return info, io.BytesIO(data) if data is not None else None


def layer_tar(entries: Sequence[Entry], *, parents: bool = True) -> bytes:
    """An uncompressed layer tar; ``parents`` adds the missing parent directory entries first."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in with_parents(entries) if parents else entries:
            tar.addfile(*tar_member(e))
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "none":
        return data
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        import zstandard  # a runtime dependency of muslcheck

        return zstandard.ZstdCompressor(level=3).compress(data)
    raise ValueError(f"unknown compression {compression!r}")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.split(":", 1)[1]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --- the image model ---------------------------------------------------------------------------


@dataclass
class LayerBlob:
    data: bytes  # as stored (compressed or not)
    digest: str
    media_type: str
    diff_id: str  # sha256 of the uncompressed tar


@dataclass
class BuiltImage:
    """One platform's manifest, config and layers, with all their blobs."""

    manifest: bytes
    manifest_digest: str
    manifest_media_type: str
    config: bytes
    config_digest: str
    layers: list[LayerBlob]
    platform: dict[str, str]

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {self.manifest_digest: self.manifest, self.config_digest: self.config}
        out.update((layer.digest, layer.data) for layer in self.layers)
        return out

    def descriptor(self, annotations: Mapping[str, str] | None = None, platform: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.manifest_media_type, "digest": self.manifest_digest, "size": len(self.manifest),
        }  # fmt: skip
        if platform:
            d["platform"] = dict(self.platform)
        if annotations:
            d["annotations"] = dict(annotations)
        return d


def parse_platform(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def image_config(
    *,
    platform: str = "linux/amd64",
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    workdir: str | None = None,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An image config without rootfs (the writers fill in diff_ids and history)."""
    config: dict[str, Any] = {"Env": list(env)}
    if workdir:
        config["WorkingDir"] = workdir
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        config["Cmd"] = list(cmd)
    return {"created": CREATED, **parse_platform(platform), "config": config}


def build_image(
    layers: Sequence[Layer],
    config: Mapping[str, Any] | None = None,
    *,
    compression: str | Sequence[str] = "gzip",
    media_types: str = "oci",
) -> BuiltImage:
    """Layers (bottom first) and a config (``image_config()`` by default) as blobs with correct digests,
    diff_ids, sizes and media types; ``compression`` is one for all layers or one per layer;
    ``media_types`` is "oci" or "docker"."""
    compressions = [compression] * len(layers) if isinstance(compression, str) else list(compression)
    assert len(compressions) == len(layers)
    types = OCI_LAYER if media_types == "oci" else DOCKER_LAYER
    blobs = []
    for layer, comp in zip(layers, compressions, strict=True):
        tar = layer if isinstance(layer, bytes) else layer_tar(layer)
        data = compress(tar, comp)
        blobs.append(LayerBlob(data, sha256(data), types[comp], sha256(tar)))
    cfg = dict(config if config is not None else image_config())
    cfg["rootfs"] = {"type": "layers", "diff_ids": [b.diff_id for b in blobs]}
    cfg["history"] = [{"created": CREATED, "created_by": f"muslcheck test layer {i}"} for i in range(len(blobs))]
    config_blob = dumps(cfg)
    oci = media_types == "oci"
    manifest_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = dumps({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "digest": sha256(config_blob),
                   "size": len(config_blob)},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": len(b.data)} for b in blobs],
    })  # fmt: skip
    platform: dict[str, str] = {k: str(cfg[k]) for k in ("os", "architecture", "variant") if k in cfg}
    return BuiltImage(manifest, sha256(manifest), manifest_type, config_blob, sha256(config_blob), blobs, platform)


def build_index(images: Sequence[BuiltImage], media_types: str = "oci") -> bytes:
    """An image index (or Docker manifest list) with one platform descriptor per image."""
    return dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX if media_types == "oci" else DOCKER_LIST,
        "manifests": [image.descriptor(platform=True) for image in images],
    })  # fmt: skip


# --- writers -------------------------------------------------------------------------------------


def _tar_bytes(members: Mapping[str, bytes]) -> bytes:
    """A deterministic tar of files (parents added as directories), in the given order."""
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_tree(root: Path, members: Mapping[str, bytes]) -> None:
    for name, data in members.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _layout_members(index: bytes, blobs: Mapping[str, bytes]) -> dict[str, bytes]:
    members = {"oci-layout": dumps({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    for digest, data in sorted(blobs.items()):
        members[f"blobs/sha256/{hexof(digest)}"] = data
    return members


def _single_layout(
    image: BuiltImage, tag: str | None, extra_annotations: Mapping[str, str] | None = None
) -> dict[str, bytes]:
    annotations = {**({REF_NAME: tag} if tag else {}), **(extra_annotations or {})}
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image.descriptor(annotations)]})
    return _layout_members(index, image.blobs)


def write_oci_dir(
    path: Path,
    layers: Sequence[Layer],
    config: Mapping[str, Any] | None = None,
    *,
    tag: str | None = "latest",
    compression: str | Sequence[str] = "gzip",
    media_types: str = "oci",
) -> BuiltImage:
    """An OCI image layout directory; ``tag`` is the index's ``org.opencontainers.image.ref.name``."""
    image = build_image(layers, config, compression=compression, media_types=media_types)
    _write_tree(Path(path), _single_layout(image, tag))
    return image


def write_oci_archive(
    path: Path,
    layers: Sequence[Layer],
    config: Mapping[str, Any] | None = None,
    *,
    tag: str | None = "latest",
    compression: str | Sequence[str] = "gzip",
    media_types: str = "oci",
) -> BuiltImage:
    """The same layout as ``write_oci_dir``, in one tar (``oci-archive:``)."""
    image = build_image(layers, config, compression=compression, media_types=media_types)
    Path(path).write_bytes(_tar_bytes(_single_layout(image, tag)))
    return image


def _split_repo_tag(repo_tag: str) -> tuple[str, str]:
    repo, _, tag = repo_tag.rpartition(":")
    return (repo, tag) if repo and "/" not in tag else (repo_tag, "latest")


def write_docker_archive_legacy(
    path: Path,
    layers: Sequence[Layer],
    config: Mapping[str, Any] | None = None,
    *,
    repo_tag: str = "app:1",
    compression: str | Sequence[str] = "none",
) -> BuiltImage:
    """``docker save`` before Docker 25: manifest.json, ``<id>/layer.tar`` (+ VERSION, json),
    ``<config hex>.json`` and repositories. Layers are uncompressed unless asked otherwise."""
    image = build_image(layers, config, compression=compression, media_types="docker")
    members: dict[str, bytes] = {}
    ids: list[str] = []
    parent = ""
    for i, layer in enumerate(image.layers):
        layer_id = hashlib.sha256(f"{parent} {layer.diff_id}".encode()).hexdigest()
        v1: dict[str, Any] = {"id": layer_id, "created": CREATED, "os": image.platform.get("os", "linux")}
        if parent:
            v1["parent"] = parent
        if i == len(image.layers) - 1:
            v1["config"] = json.loads(image.config).get("config", {})
            v1["architecture"] = image.platform.get("architecture")
        members[f"{layer_id}/VERSION"] = b"1.0"
        members[f"{layer_id}/json"] = dumps(v1)
        members[f"{layer_id}/layer.tar"] = layer.data
        ids.append(layer_id)
        parent = layer_id
    config_name = f"{hexof(image.config_digest)}.json"
    members[config_name] = image.config
    repo, tag = _split_repo_tag(repo_tag)
    members["manifest.json"] = dumps(
        [{"Config": config_name, "RepoTags": [repo_tag], "Layers": [f"{i}/layer.tar" for i in ids]}]
    )
    members["repositories"] = dumps({repo: {tag: ids[-1]}}) if ids else b"{}"
    Path(path).write_bytes(_tar_bytes(members))
    return image


def write_docker_archive_oci(
    path: Path,
    layers: Sequence[Layer],
    config: Mapping[str, Any] | None = None,
    *,
    repo_tag: str = "app:1",
    compression: str | Sequence[str] = "none",
) -> BuiltImage:
    """``docker save`` from Docker 25 on: an OCI layout in a tar (uncompressed OCI layers, as Docker
    writes them), plus manifest.json whose Config and Layers name ``blobs/sha256/<hex>``, and repositories."""
    image = build_image(layers, config, compression=compression, media_types="oci")
    repo, tag = _split_repo_tag(repo_tag)
    full = repo if "/" in repo else f"docker.io/library/{repo}"
    members = _single_layout(image, tag, {"io.containerd.image.name": f"{full}:{tag}"})
    members["manifest.json"] = dumps([{
        "Config": f"blobs/sha256/{hexof(image.config_digest)}",
        "RepoTags": [repo_tag],
        "Layers": [f"blobs/sha256/{hexof(layer.digest)}" for layer in image.layers],
    }])  # fmt: skip
    members["repositories"] = dumps({repo: {tag: hexof(image.layers[-1].diff_id)}}) if image.layers else b"{}"
    Path(path).write_bytes(_tar_bytes(members))
    return image


def _multiplatform_members(
    platforms: Mapping[str, tuple[Sequence[Layer], Mapping[str, Any] | None]],
    tag: str | None,
    compression: str,
    media_types: str,
    nested: bool,
) -> tuple[dict[str, bytes], dict[str, BuiltImage]]:
    images: dict[str, BuiltImage] = {}
    blobs: dict[str, bytes] = {}
    for plat, (layers, config) in platforms.items():
        cfg = dict(config if config is not None else image_config(platform=plat))
        cfg.update(parse_platform(plat))
        images[plat] = build_image(layers, cfg, compression=compression, media_types=media_types)
        blobs.update(images[plat].blobs)
    annotations = {REF_NAME: tag} if tag else {}
    if nested:  # index.json -> one image index (tagged) -> one manifest per platform
        inner = build_index(list(images.values()), media_types)
        blobs[sha256(inner)] = inner
        desc: dict[str, Any] = {
            "mediaType": OCI_INDEX if media_types == "oci" else DOCKER_LIST,
            "digest": sha256(inner),
            "size": len(inner),
        }
        if annotations:
            desc["annotations"] = annotations
        manifests = [desc]
    else:  # index.json lists the platform manifests itself, each tagged
        manifests = [image.descriptor(annotations, platform=True) for image in images.values()]
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return _layout_members(index, blobs), images


def write_multiplatform_oci_dir(
    path: Path,
    platforms: Mapping[str, tuple[Sequence[Layer], Mapping[str, Any] | None]],
    *,
    tag: str | None = "latest",
    compression: str = "gzip",
    media_types: str = "oci",
    nested: bool = True,
) -> dict[str, BuiltImage]:
    """One image per platform ("linux/amd64": (layers, config or None)) under one index."""
    members, images = _multiplatform_members(platforms, tag, compression, media_types, nested)
    _write_tree(Path(path), members)
    return images


def write_multiplatform_oci_archive(
    path: Path,
    platforms: Mapping[str, tuple[Sequence[Layer], Mapping[str, Any] | None]],
    *,
    tag: str | None = "latest",
    compression: str = "gzip",
    media_types: str = "oci",
    nested: bool = True,
) -> dict[str, BuiltImage]:
    members, images = _multiplatform_members(platforms, tag, compression, media_types, nested)
    Path(path).write_bytes(_tar_bytes(members))
    return images


def blob_path(layout: Path, digest: str) -> Path:
    return Path(layout) / "blobs" / "sha256" / hexof(digest)


def corrupt_blob(layout: Path, digest: str, offset: int | None = None) -> None:
    """Flip one byte of a blob in an OCI layout directory (its name keeps the old digest)."""
    p = blob_path(layout, digest)
    data = bytearray(p.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def rewrite_manifest(layout: Path, edit: Any) -> str:
    """Apply ``edit(manifest_dict)`` to the (first) manifest of an OCI layout directory, store it as a
    new blob and point index.json at it. Returns the new manifest digest."""
    layout = Path(layout)
    top = json.loads((layout / "index.json").read_text())
    desc = top["manifests"][0]
    manifest = json.loads(blob_path(layout, desc["digest"]).read_bytes())
    edit(manifest)
    data = dumps(manifest)
    blob_path(layout, sha256(data)).write_bytes(data)
    desc["digest"], desc["size"] = sha256(data), len(data)
    (layout / "index.json").write_text(json.dumps(top))
    return sha256(data)


def rewrite_tar_member(archive: Path, name: str, edit: Any) -> None:
    """Replace member ``name`` of a tar (docker-archive, oci-archive) with ``edit(old_bytes)``."""
    members: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            if info.isfile():
                f = tar.extractfile(info)
                assert f is not None
                members[info.name] = f.read()
    assert name in members, (name, list(members))
    members[name] = edit(members[name])
    Path(archive).write_bytes(_tar_bytes(members))


def layer_member_names(blob: bytes) -> list[str]:
    """The member names of a layer blob (uncompressed, gzip or zstd)."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    elif blob[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return tar.getnames()


# --- the reference tree ----------------------------------------------------------------------


def materialize(layers: Sequence[Sequence[Entry]], dest: Path) -> Path:
    """Apply layers to ``dest`` (which may hold lower layers already) as a runtime would: the
    whiteouts and opaque markers of a layer delete lower content, then its entries are written.
    Hostile (verbatim) entries, devices and FIFOs are refused: this builds reference trees only."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    def host(name: str) -> Path:
        rel = name.strip("/")
        assert rel and ".." not in rel.split("/"), name
        return dest / rel

    def remove(p: Path) -> None:
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)

    for layer in layers:
        for e in layer:
            assert not e.verbatim and e.kind in ("file", "dir", "symlink", "hardlink"), e
            base = e.name.rstrip("/").rpartition("/")[2]
            if base == ".wh..wh..opq":
                d = host(e.name).parent
                if d.is_dir() and not d.is_symlink():
                    for child in d.iterdir():
                        remove(child)
            elif base.startswith(".wh."):
                remove(host(e.name).parent / base[len(".wh.") :])
        for e in with_parents(layer):
            base = e.name.rstrip("/").rpartition("/")[2]
            if base.startswith(".wh."):
                continue
            p = host(e.name)
            if e.kind == "dir":
                if p.is_symlink() or (p.exists() and not p.is_dir()):
                    remove(p)
                p.mkdir(exist_ok=True)
                p.chmod(e.mode)
                continue
            remove(p)
            if e.kind == "file":
                p.write_bytes(e.content())
                p.chmod(e.mode)
            elif e.kind == "symlink":
                os.symlink(e.target, p)
            else:
                os.link(host(e.target), p)
            os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    return dest


# --- real producers ----------------------------------------------------------------------------


def require_tools(*tools: str) -> None:
    """Skip locally (fail under CI=true) when a tool is not installed."""
    if missing := [t for t in tools if shutil.which(t) is None]:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install skopeo umoci docker-registry apache2-utils)")


def run(cmd: Sequence[str | os.PathLike[str]], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def umoci_build(
    layout: Path,
    tag: str,
    layers: Sequence[Sequence[Entry]],
    work: Path,
    *,
    platform: str | None = None,
    env: Sequence[str] = (),
) -> Path:
    """An OCI layout built by umoci: ``new``, then per layer ``unpack``, apply it to the rootfs with
    ``materialize`` (deleting what its whiteouts delete), ``repack``. umoci writes its own layers,
    with real ``.wh.`` entries for what a layer removed. Returns the layout."""
    require_tools("umoci")
    layout, work = Path(layout), Path(work)
    if not (layout / "index.json").exists():
        run(["umoci", "init", "--layout", layout])
    ref = f"{layout}:{tag}"
    run(["umoci", "new", "--image", ref])
    if platform is not None:
        p = parse_platform(platform)
        run(["umoci", "config", "--image", ref, "--os", p["os"], "--architecture", p["architecture"]])
    for item in env:
        run(["umoci", "config", "--image", ref, "--config.env", item])
    for i, layer in enumerate(layers):
        bundle = work / f"bundle-{tag}-{i}"
        run(["umoci", "unpack", "--image", ref, bundle])
        materialize([layer], bundle / "rootfs")
        run(["umoci", "repack", "--image", ref, bundle])
        shutil.rmtree(bundle)
    run(["umoci", "gc", "--layout", layout])
    return layout


def add_platform_index(layout: Path, tag: str, platform_tags: Mapping[str, str]) -> str:
    """Write an image index over manifests already in ``layout`` (``{"linux/amd64": "tag-amd64", ...}``),
    with each one's platform, and tag it ``tag`` in index.json. Returns the index digest."""
    layout = Path(layout)
    top = json.loads((layout / "index.json").read_text())
    by_tag = {d.get("annotations", {}).get(REF_NAME): d for d in top["manifests"]}
    manifests = []
    for plat, t in platform_tags.items():
        d = {k: v for k, v in by_tag[t].items() if k != "annotations"}
        d["platform"] = parse_platform(plat)
        manifests.append(d)
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    digest = sha256(index)
    blob_path(layout, digest).write_bytes(index)
    top["manifests"].append(
        {"mediaType": OCI_INDEX, "digest": digest, "size": len(index), "annotations": {REF_NAME: tag}}
    )
    (layout / "index.json").write_text(json.dumps(top))
    return digest


def skopeo_copy(src: str, dest: str, *extra: str) -> None:
    """``skopeo copy`` (no signature policy needed: ``--insecure-policy``)."""
    require_tools("skopeo")
    run(["skopeo", "--insecure-policy", "copy", "--quiet", *extra, src, dest])


# --- a real registry ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """Debian's docker-registry (CNCF distribution) on 127.0.0.1, storage in a temp dir."""

    host: str  # "127.0.0.1:PORT"
    process: subprocess.Popen[bytes]
    log: Path
    user: str | None = None
    password: str | None = None
    _log_file: Any = field(default=None, repr=False)

    def push(self, src: str, name: str) -> str:
        """``skopeo copy src docker://HOST/name`` over plain HTTP; returns ``HOST/name``."""
        extra = ["--dest-tls-verify=false"]
        if self.user is not None:
            extra += ["--dest-creds", f"{self.user}:{self.password}"]
        skopeo_copy(src, f"docker://{self.host}/{name}", *extra)
        return f"{self.host}/{name}"

    def docker_config(self, path: Path) -> Path:
        """A docker config.json holding this registry's credentials (``auths.<host>.auth``)."""
        assert self.user is not None
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        Path(path).write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return Path(path)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextmanager
def registry(work: Path, *, user: str | None = None, password: str | None = None) -> Iterator[Registry]:
    """Start ``docker-registry serve`` on 127.0.0.1:<free port>; with ``user``, htpasswd basic auth
    (bcrypt, from ``htpasswd -Bbn``) and anonymous access denied. Always stopped on exit."""
    require_tools("docker-registry", *(["htpasswd"] if user else []))
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "storage").mkdir(exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {work / 'storage'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: muslcheck-test-secret",
    ]
    if user is not None:
        assert password is not None
        entry = run(["htpasswd", "-Bbn", user, password]).stdout.strip()
        (work / "htpasswd").write_text(entry + "\n")
        lines += ["auth:", "  htpasswd:", "    realm: muslcheck-test", f"    path: {work / 'htpasswd'}"]
    config = work / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = work / "registry.log"
    log_file = open(log, "wb")  # noqa: SIM115 - closed by Registry.stop
    process = subprocess.Popen(
        [shutil.which("docker-registry") or "docker-registry", "serve", str(config)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    reg = Registry(f"127.0.0.1:{port}", process, log, user, password, log_file)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"docker-registry exited {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=2):
                    break
            except urllib.error.HTTPError as e:
                e.close()
                if e.code == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"docker-registry did not answer on {reg.host}:\n{log.read_text()}")
            time.sleep(0.1)
        yield reg
    finally:
        reg.stop()


# --- the sample image ----------------------------------------------------------------------------


def sample_layers(samples: Path) -> list[list[Entry]]:
    """Three layers of real glibc and musl binaries from ``samples/build.py``'s OUTDIR.

    1 (base): /opt/dep/libdep.so.1 and /usr/lib/libdep.so -> /opt/dep/libdep.so.1 (absolute link),
      /usr/lib/libplt.so (blocked; deleted by layer 3), /app/old/bin/hello (hidden by layer 3's opaque
      /app/old), a text file.
    2 (app): fortify, ifunc (libifunc.so -> libifunc.so.1, a relative link), rpath-origin, musl-lib
      whose libgreet.so is a blocked glibc library (shadowed by layer 3), missing-dep (its libdep.so
      comes from /usr/lib through the absolute link), a hard link, a symlink loop.
    3 (fix): whiteout /usr/lib/libplt.so, opaque /app/old with hello-musl in it, the musl libgreet.so.
    """
    s = Path(samples)
    return [
        [
            file("/etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
            file("/opt/dep/libdep.so.1", source=s / "rpath-origin/app/lib/libdep.so"),
            symlink("/usr/lib/libdep.so", "/opt/dep/libdep.so.1"),
            file("/usr/lib/libplt.so", source=s / "reloc-plt/app/lib/libplt.so"),
            file("/app/old/bin/hello", source=s / "hello/app/bin/hello"),
        ],
        [
            file("/app/fortify/bin/fortify", source=s / "fortify/app/bin/fortify"),
            hardlink("/app/fortify/bin/fortify-hardlink", "/app/fortify/bin/fortify"),
            file("/app/ifunc/bin/app", source=s / "ifunc/app/bin/app"),
            file("/app/ifunc/lib/libifunc.so.1", source=s / "ifunc/app/lib/libifunc.so"),
            symlink("/app/ifunc/lib/libifunc.so", "libifunc.so.1"),
            file("/app/rpath-origin/bin/app", source=s / "rpath-origin/app/bin/app"),
            file("/app/rpath-origin/lib/libdep.so", source=s / "rpath-origin/app/lib/libdep.so"),
            file("/app/musl-lib/bin/app", source=s / "musl-lib/app/bin/app"),
            file("/app/musl-lib/lib/libgreet.so", source=s / "reloc-plt/app/lib/libplt.so"),
            file("/app/missing-dep/bin/app", source=s / "missing-dep/app/bin/app"),
            symlink("/app/loop/a", "b"),
            symlink("/app/loop/b", "/app/loop/a"),
        ],
        [
            whiteout("/usr/lib/libplt.so"),
            opaque("/app/old"),
            file("/app/old/bin/hello-musl", source=s / "hello-musl/app/bin/hello"),
            file("/app/musl-lib/lib/libgreet.so", source=s / "musl-lib/app/lib/libgreet.so"),
        ],
    ]
