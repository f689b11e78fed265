"""Tiny images written by hand for the source tests: layer tars, configs, OCI layouts, docker-archives.

Deliberately minimal; the scenario fixtures shared with the image tests live in tests/images/.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_json(diff_ids: list[str], *, arch: str = "amd64", variant: str | None = None, os: str = "linux",
                env: tuple[str, ...] = ("PATH=/usr/local/bin:/usr/bin:/bin",), workdir: str = "/app",
                entrypoint: tuple[str, ...] = ("/app/run",), cmd: tuple[str, ...] = ("--serve",)) -> bytes:
    doc: dict[str, Any] = {"architecture": arch, "os": os,
                           "config": {"Env": list(env), "WorkingDir": workdir, "Entrypoint": list(entrypoint),
                                      "Cmd": list(cmd)},
                           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if variant:
        doc["variant"] = variant
    return dumps(doc)


@dataclass
class Built:
    """One image written into a blob store."""
    manifest: bytes
    descriptor: dict[str, Any]
    config: bytes
    layers: list[bytes]  # the layer blobs as stored
    diff_ids: list[str]


@dataclass
class Blobs:
    """Content-addressed blobs by digest, written out as an OCI layout or served by the registry stub."""
    data: dict[str, bytes] = field(default_factory=dict)

    def add(self, blob: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = sha(blob)
        self.data[digest] = blob
        return {"mediaType": media_type, "digest": digest, "size": len(blob), **extra}

    def image(self, layers: list[dict[str, bytes]], *, arch: str = "amd64", variant: str | None = None,
              compress: bool = False, docker: bool = False, platform_in_descriptor: bool = True,
              **config: Any) -> Built:
        tars = [layer_tar(files) for files in layers]
        diff_ids = [sha(t) for t in tars]
        blobs = [gzip.compress(t, mtime=0) if compress else t for t in tars]
        layer_type = (DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP) if compress else OCI_LAYER
        if docker and not compress:
            layer_type = "application/vnd.docker.image.rootfs.diff.tar"
        cfg = config_json(diff_ids, arch=arch, variant=variant, **config)
        manifest = dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": self.add(cfg, DOCKER_CONFIG if docker else OCI_CONFIG),
            "layers": [self.add(b, layer_type) for b in blobs],
        })
        extra: dict[str, Any] = {}
        if platform_in_descriptor:
            extra["platform"] = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        desc = self.add(manifest, DOCKER_MANIFEST if docker else OCI_MANIFEST, **extra)
        return Built(manifest, desc, cfg, blobs, diff_ids)

    def index(self, manifests: list[dict[str, Any]], *, docker: bool = False) -> dict[str, Any]:
        media_type = DOCKER_LIST if docker else OCI_INDEX
        return self.add(dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}), media_type)


def annotate(desc: dict[str, Any], tag: str) -> dict[str, Any]:
    return {**desc, "annotations": {REF_NAME: tag}}


def write_layout(root: Path, blobs: Blobs, top: list[dict[str, Any]]) -> Path:
    """An OCI layout directory whose index.json lists ``top``."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.data.items():
        (root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_bytes(dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top}))
    return root


def tar_members(out: Path, members: dict[str, bytes], *, links: dict[str, str] | None = None,
                symlinks: dict[str, str] | None = None) -> Path:
    """A tar of the given members (and hard links / symlinks), in this order."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            tar.addfile(info)
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out


def tar_layout(layout: Path, out: Path) -> Path:
    """An oci-archive: the layout directory's contents at the tar's top level."""
    members = {p.relative_to(layout).as_posix(): p.read_bytes() for p in sorted(layout.rglob("*")) if p.is_file()}
    return tar_members(out, members)


def legacy_docker_archive(out: Path, images: list[tuple[list[str], list[dict[str, bytes]], str]]) -> Path:
    """``docker save`` before Docker 25: ``<id>/layer.tar``, ``<image id>.json``, manifest.json.

    ``images``: (RepoTags, layers as {path: content}, architecture).
    """
    members: dict[str, bytes] = {}
    manifest = []
    for tags, layers, arch in images:
        tars = [layer_tar(files) for files in layers]
        diff_ids = [sha(t) for t in tars]
        cfg = config_json(diff_ids, arch=arch)
        paths = []
        for t in tars:
            layer_id = hashlib.sha256(b"id" + t).hexdigest()
            members[f"{layer_id}/VERSION"] = b"1.0"
            members[f"{layer_id}/layer.tar"] = t
            paths.append(f"{layer_id}/layer.tar")
        config_name = sha(cfg).split(":")[1] + ".json"
        members[config_name] = cfg
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": paths})
    members["manifest.json"] = dumps(manifest)
    return tar_members(out, members)


def oci_docker_archive(out: Path, tags: list[str], layers: list[dict[str, bytes]], *, arch: str = "amd64") -> Path:
    """``docker save`` from Docker 25 on: an OCI layout plus manifest.json naming ``blobs/sha256/...``."""
    blobs = Blobs()
    built = blobs.image(layers, arch=arch, platform_in_descriptor=False)
    members = {f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.data.items()}
    members["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    members["index.json"] = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                   "manifests": [annotate(built.descriptor, tags[0])]})
    config_digest = sha(built.config)
    members["manifest.json"] = dumps([{
        "Config": f"blobs/sha256/{config_digest.split(':')[1]}", "RepoTags": tags,
        "Layers": [f"blobs/sha256/{sha(b).split(':')[1]}" for b in built.layers]}])
    return tar_members(out, members)
