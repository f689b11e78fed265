"""oci-dir and the shared OCI logic: platforms, tags, nested indexes, verification, limits, bad input."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from muslcheck.model.errors import UsageError
from muslcheck.targets.image.sources import DigestMismatch, SourceError, oci, open_image, parse_reference
from muslcheck.targets.image.sources.ocidir import OciDirSource
from tests.sources.sources_support import (
    DOCKER_CONFIG,
    OCI_MANIFEST,
    Blobs,
    annotate,
    dumps,
    layer_tar,
    sha,
    write_layout,
)

FILES = {"app/run": b"\x7fELF run", "etc/os-release": b"ID=debian\n"}


def multi_platform(tmp_path: Path, *, amd64: bool = True) -> Path:
    blobs = Blobs()
    entries = []
    if amd64:
        entries.append(blobs.image([FILES, {"app/amd": b"amd"}], arch="amd64").descriptor)
    entries.append(blobs.image([FILES, {"app/arm": b"arm"}], arch="arm64", variant="v8", compress=True).descriptor)
    entries.append(blobs.image([FILES], arch="arm", variant="v7").descriptor)
    attestation = blobs.add(b'{"not": "an image"}', OCI_MANIFEST,
                            platform={"os": "unknown", "architecture": "unknown"},
                            annotations={"vnd.docker.reference.type": "attestation-manifest"})
    index = blobs.index([*entries, attestation])
    return write_layout(tmp_path / "layout", blobs, [annotate(index, "1.0")])


def read_blob(image: Any, digest: str) -> bytes:
    with image.blobs.open_blob(digest) as f:
        data: bytes = f.read()
    return data


def test_single_image_layout(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES, {"app/lib.so": b"lib"}], platform_in_descriptor=False,
                        env=("PATH=/bin", "LD_LIBRARY_PATH=/app/lib"))
    layout = write_layout(tmp_path / "l", blobs, [annotate(built.descriptor, "latest")])
    with open_image(parse_reference(str(layout))) as image:
        assert image.kind == "oci-dir" and image.reference == str(layout)
        assert [layer.digest for layer in image.layers] == [sha(b) for b in built.layers]
        assert [layer.diff_id for layer in image.layers] == built.diff_ids
        assert {layer.media_type for layer in image.layers} == {oci.OCI_LAYER_TAR}
        assert image.config.platform == "linux/amd64"
        assert image.config.env_value("LD_LIBRARY_PATH") == "/app/lib"
        assert (image.config.workdir, image.config.entrypoint, image.config.cmd) == ("/app", ("/app/run",),
                                                                                     ("--serve",))
        assert read_blob(image, image.layers[1].digest) == layer_tar({"app/lib.so": b"lib"})


@pytest.mark.parametrize(("platform", "expected"), [
    (None, "linux/amd64"),
    ("linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64"),
    ("linux/arm64", "linux/arm64/v8"),
    ("linux/arm64/v8", "linux/arm64/v8"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/arm/v7", "linux/arm/v7"),
])
def test_platform_selection(tmp_path: Path, platform: str | None, expected: str) -> None:
    layout = multi_platform(tmp_path)
    with open_image(parse_reference(f"oci-dir:{layout}:1.0"), platform=platform) as image:
        assert image.config.platform == expected


def test_arm64_without_variant_matches_v8_and_none(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES], arch="arm64")
    layout = write_layout(tmp_path / "l", blobs, [blobs.index([built.descriptor])])
    for wanted in ("linux/arm64", "linux/arm64/v8", "linux/aarch64"):
        with open_image(parse_reference(f"oci-dir:{layout}"), platform=wanted) as image:
            assert image.config.architecture == "arm64"


def test_missing_platform_lists_the_available_ones(tmp_path: Path) -> None:
    layout = multi_platform(tmp_path)
    with pytest.raises(SourceError) as e:
        open_image(parse_reference(f"oci-dir:{layout}"), platform="linux/s390x").__enter__()
    assert "no image for platform linux/s390x; available: linux/amd64, linux/arm/v7, linux/arm64/v8" in str(e.value)
    assert "unknown" not in str(e.value)  # the attestation is no platform


def test_default_platform_absent_from_index(tmp_path: Path) -> None:
    layout = multi_platform(tmp_path, amd64=False)
    with pytest.raises(SourceError, match=r"linux/amd64; available: linux/arm/v7, linux/arm64/v8; choose one with"):
        open_image(parse_reference(f"oci-dir:{layout}")).__enter__()


def test_single_platform_image_default_and_explicit(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES], arch="arm64", platform_in_descriptor=False)
    layout = write_layout(tmp_path / "l", blobs, [built.descriptor])
    with open_image(parse_reference(f"oci-dir:{layout}")) as image:  # one image: taken as it is
        assert image.config.platform == "linux/arm64"
    with pytest.raises(SourceError, match=r"no image for platform linux/amd64; available: linux/arm64$"):
        open_image(parse_reference(f"oci-dir:{layout}"), platform="linux/amd64").__enter__()


def test_bad_platform_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"bad platform"):
        open_image(parse_reference(f"oci-dir:{multi_platform(tmp_path)}"), platform="amd64")


def test_tags(tmp_path: Path) -> None:
    blobs = Blobs()
    one = blobs.image([{"one": b"1"}], platform_in_descriptor=False)
    two = blobs.image([{"two": b"2"}], platform_in_descriptor=False)
    layout = write_layout(tmp_path / "l", blobs, [annotate(one.descriptor, "one"),
                                                  {**two.descriptor, "annotations": {
                                                      "org.opencontainers.image.ref.name": "example.com/app:two"}}])
    with open_image(parse_reference(f"oci-dir:{layout}:one")) as image:
        assert image.layers[0].diff_id == one.diff_ids[0]
    with open_image(parse_reference(f"oci-dir:{layout}:two")) as image:  # a full name matches by its tag
        assert image.layers[0].diff_id == two.diff_ids[0]
    with pytest.raises(SourceError, match=r"no image tagged 'three'; tags: example.com/app:two, one"):
        open_image(parse_reference(f"oci-dir:{layout}:three")).__enter__()
    with pytest.raises(SourceError, match=r"holds 2 images .*choose one with oci-dir:PATH:TAG"):
        open_image(parse_reference(f"oci-dir:{layout}")).__enter__()


def test_nested_index_and_docker_manifest_list(tmp_path: Path) -> None:
    blobs = Blobs()
    arm = blobs.image([FILES], arch="arm64", docker=True, compress=True)
    amd = blobs.image([FILES], arch="amd64", docker=True, compress=True)
    inner = blobs.index([amd.descriptor, arm.descriptor], docker=True)
    outer = blobs.index([inner])
    layout = write_layout(tmp_path / "l", blobs, [outer])
    with open_image(parse_reference(f"oci-dir:{layout}"), platform="linux/arm64") as image:
        assert image.layers[0].digest == sha(arm.layers[0])
        assert image.layers[0].media_type == oci.DOCKER_LAYER_GZIP
        assert oci.layer_compression(image.layers[0].media_type) == "gzip"


def test_self_referencing_index_is_a_cycle() -> None:
    digest = "sha256:" + "c" * 64
    loop = dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                  "manifests": [{"mediaType": oci.OCI_INDEX, "digest": digest, "size": 10}]})
    root = oci.parse_document(loop, None, "t")
    # A verifying fetch makes a real cycle impossible (a hash fixpoint); the walk must not rely on it.
    with pytest.raises(SourceError, match=r"refers to itself"):
        oci.select_image(root, lambda desc: loop, None, "t", root_digest=digest)
    with pytest.raises(SourceError, match=r"refers to itself"):
        oci.select_image(root, lambda desc: loop, None, "t")


def test_manifest_and_layer_caps() -> None:
    many = [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "d" * 64, "size": 1}] * (oci.MAX_MANIFESTS + 1)
    with pytest.raises(SourceError, match=r"limit 1000"):
        oci.parse_document(dumps({"schemaVersion": 2, "manifests": many}), None, "t")
    layers = [{"mediaType": oci.OCI_LAYER_TAR, "digest": "sha256:" + "d" * 64, "size": 1}] * (oci.MAX_LAYERS + 1)
    cfg = {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "e" * 64, "size": 1}
    with pytest.raises(SourceError, match=r"limit 10000"):
        oci.parse_document(dumps({"schemaVersion": 2, "config": cfg, "layers": layers}), None, "t")


def test_deep_nesting_is_capped() -> None:
    digests = ["sha256:" + f"{i:064x}" for i in range(20)]
    docs = {d: dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                      "manifests": [{"mediaType": oci.OCI_INDEX, "digest": digests[i + 1], "size": 1}]})
            for i, d in enumerate(digests[:-1])}
    root = oci.parse_document(docs[digests[0]], None, "t")
    with pytest.raises(SourceError, match=r"nested deeper"):
        oci.select_image(root, lambda desc: docs[desc.digest], None, "t")


def corrupt_blob(layout: Path, digest: str, data: bytes) -> None:
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)


def test_digest_mismatch(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES])
    layout = write_layout(tmp_path / "l", blobs, [built.descriptor])
    bad = built.config.replace(b"/app/run", b"/app/xxx")  # same size, other content
    corrupt_blob(layout, sha(built.config), bad)
    with pytest.raises(DigestMismatch, match=f"blob {sha(built.config)} has digest {sha(bad)}"):
        open_image(parse_reference(str(layout))).__enter__()
    corrupt_blob(layout, sha(built.config), built.config + b" ")
    with pytest.raises(DigestMismatch, match=r"bytes, its descriptor says"):
        open_image(parse_reference(str(layout))).__enter__()


@pytest.mark.parametrize(("where", "media_type", "message"), [
    ("manifest", "application/vnd.example.thing+json", "unknown media type 'application/vnd.example.thing\\+json'"),
    ("manifest", "application/vnd.docker.distribution.manifest.v1+prettyjws", "Docker schema 1"),
    ("config", "application/vnd.oci.empty.v1+json", "'application/vnd.oci.empty.v1\\+json' is not a container"),
    ("layer", "application/vnd.example.layer", "unknown media type 'application/vnd.example.layer'"),
])
def test_unknown_media_types(tmp_path: Path, where: str, media_type: str, message: str) -> None:
    blobs = Blobs()
    built = blobs.image([FILES])
    doc = json.loads(built.manifest)
    if where == "manifest":
        doc["mediaType"] = media_type
    elif where == "config":
        doc["config"]["mediaType"] = media_type
    else:
        doc["layers"][0]["mediaType"] = media_type
    desc = blobs.add(dumps(doc), OCI_MANIFEST)
    layout = write_layout(tmp_path / "l", blobs, [desc])
    with pytest.raises(SourceError, match=message):
        open_image(parse_reference(str(layout))).__enter__()


def test_index_of_artifacts_only(tmp_path: Path) -> None:
    blobs = Blobs()
    sig = blobs.add(b"{}", "application/vnd.example.signature")
    layout = write_layout(tmp_path / "l", blobs, [blobs.index([sig])])
    with pytest.raises(SourceError, match=r"names no image manifest \(it holds only application/vnd.example.signature"):
        open_image(parse_reference(str(layout))).__enter__()


def test_missing_blobs(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES, {"x": b"y"}])
    layout = write_layout(tmp_path / "l", blobs, [built.descriptor])
    (layout / "blobs" / "sha256" / sha(built.layers[1]).split(":")[1]).unlink()
    with pytest.raises(SourceError, match=f"blob {sha(built.layers[1])} is missing"):
        open_image(parse_reference(str(layout))).__enter__()
    (layout / "blobs" / "sha256" / sha(built.config).split(":")[1]).unlink()
    with pytest.raises(SourceError, match=f"blob {sha(built.config)} is missing"):
        open_image(parse_reference(str(layout))).__enter__()


def test_layer_count_must_match_diff_ids(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES])
    doc = json.loads(built.manifest)
    doc["layers"].append(doc["layers"][0])
    layout = write_layout(tmp_path / "l", blobs, [blobs.add(dumps(doc), OCI_MANIFEST)])
    with pytest.raises(SourceError, match=r"lists 2 layers, the config 1 diff_ids"):
        open_image(parse_reference(str(layout))).__enter__()


def test_symlinked_blob_outside_the_layout(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES])
    layout = write_layout(tmp_path / "l", blobs, [built.descriptor])
    outside = tmp_path / "outside.json"
    outside.write_bytes(built.config)
    blob = layout / "blobs" / "sha256" / sha(built.config).split(":")[1]
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(SourceError, match=r"leads outside the layout directory"):
        open_image(parse_reference(str(layout))).__enter__()
    blob.unlink()
    blob.symlink_to(Path("..") / ".." / ".." / "outside.json")
    with pytest.raises(SourceError, match=r"leads outside"):
        open_image(parse_reference(str(layout))).__enter__()
    blob.unlink()
    (layout / "blobs" / "config.json").write_bytes(built.config)
    blob.symlink_to(Path("..") / "config.json")  # inside: fine
    with open_image(parse_reference(str(layout))) as image:
        assert image.config.os == "linux"


def test_oversized_config_is_an_error_not_a_load(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([FILES])
    big = 20 << 20
    doc = json.loads(built.manifest)
    # The descriptor admits the size: refused before reading.
    doc["config"]["size"] = big
    layout = write_layout(tmp_path / "a", blobs, [blobs.add(dumps(doc), OCI_MANIFEST)])
    with pytest.raises(SourceError, match=r"larger than 16 MiB"):
        open_image(parse_reference(str(layout))).__enter__()
    # The descriptor lies about a sparse 20 MiB file: the read stops at the cap.
    blob = layout / "blobs" / "sha256" / sha(built.config).split(":")[1]
    with blob.open("r+b") as f:
        f.truncate(big)
    doc["config"]["size"] = len(built.config)
    layout = write_layout(layout, blobs, [blobs.add(dumps(doc), OCI_MANIFEST)])
    os.truncate(blob, big)
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"larger than 16 MiB"):
            open_image(parse_reference(str(layout))).__enter__()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20


def test_oversized_index_json(tmp_path: Path) -> None:
    layout = write_layout(tmp_path / "l", Blobs(), [])
    os.truncate(layout / "index.json", 20 << 20)
    with pytest.raises(SourceError, match=r"index.json is \d+ bytes, larger than 16 MiB"):
        open_image(parse_reference(str(layout))).__enter__()


@pytest.mark.parametrize(("index_json", "message"), [
    (b"{not json", "malformed JSON"),
    (b"[]", "expected a JSON object"),
    (b'{"manifests": [{"mediaType": "x", "digest": "sha256:../../etc/passwd"}]}', "bad digest"),
    (b'{"manifests": [{"digest": "sha256:' + b"a" * 64 + b'"}]}', "no mediaType"),
])
def test_malformed_index(tmp_path: Path, index_json: bytes, message: str) -> None:
    layout = write_layout(tmp_path / "l", Blobs(), [])
    (layout / "index.json").write_bytes(index_json)
    with pytest.raises(SourceError, match=message):
        open_image(parse_reference(str(layout))).__enter__()


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"oci-layout is missing"):
        OciDirSource(tmp_path).open().__enter__()
    with pytest.raises(SourceError, match=r"no such directory"):
        OciDirSource(tmp_path / "nope").open().__enter__()
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(SourceError, match=r"unsupported OCI layout version"):
        OciDirSource(tmp_path).open().__enter__()


def test_config_digest_type_is_docker_or_oci() -> None:
    cfg = oci.parse_config(dumps({"os": "Linux", "architecture": "x86_64", "config": None,
                                  "rootfs": {"diff_ids": []}}), "t")
    assert cfg.platform == "linux/amd64" and cfg.env == () and cfg.workdir is None
    assert DOCKER_CONFIG in oci.CONFIG_TYPES
    with pytest.raises(SourceError, match=r"without os and architecture"):
        oci.parse_config(b"{}", "t")
    with pytest.raises(SourceError, match=r"Env is not a list"):
        oci.parse_config(dumps({"os": "linux", "architecture": "amd64", "config": {"Env": "A=1"}}), "t")
