"""docker-archive (legacy and OCI form) and oci-archive: blobs streamed from the outer tar."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import tracemalloc
from pathlib import Path

import pytest

from muslcheck.targets.image.sources import DigestMismatch, SourceError, oci, open_image, parse_reference
from muslcheck.targets.image.sources.archive import DockerArchiveSource, OciArchiveSource
from tests.sources.sources_support import (
    Blobs,
    annotate,
    dumps,
    layer_tar,
    legacy_docker_archive,
    oci_docker_archive,
    sha,
    tar_layout,
    tar_members,
    write_layout,
)

BASE = {"lib/libc.so.6": b"\x7fELF libc", "etc/os-release": b"ID=debian\n"}
APP = {"app/run": b"\x7fELF app"}


def blob(image: object, digest: str) -> bytes:
    with image.blobs.open_blob(digest) as f:  # type: ignore[attr-defined]
        data: bytes = f.read()
    return data


def test_legacy_docker_archive(tmp_path: Path) -> None:
    path = legacy_docker_archive(tmp_path / "app.tar", [(["app:1"], [BASE, APP], "amd64")])
    with open_image(parse_reference(f"docker-archive:{path}")) as image:
        assert image.kind == "docker-archive"
        assert [layer.digest for layer in image.layers] == [sha(layer_tar(BASE)), sha(layer_tar(APP))]
        assert [layer.diff_id for layer in image.layers] == [layer.digest for layer in image.layers]
        assert {layer.media_type for layer in image.layers} == {oci.DOCKER_LAYER_TAR}
        assert image.layers[1].size == len(layer_tar(APP))
        assert blob(image, image.layers[1].digest) == layer_tar(APP)
        assert image.config.entrypoint == ("/app/run",)


def test_selecting_by_tag(tmp_path: Path) -> None:
    path = legacy_docker_archive(tmp_path / "two.tar", [
        (["base:1"], [BASE], "amd64"),
        (["example.com/team/app:2", "app:latest"], [BASE, APP], "amd64"),
    ])
    with open_image(parse_reference(str(path))) as image:  # the first by default
        assert len(image.layers) == 1
    for selector in ("app:latest", "app", "docker.io/library/app:latest", "example.com/team/app:2", "@1"):
        with open_image(parse_reference(f"docker-archive:{path}:{selector}")) as image:
            assert len(image.layers) == 2, selector
    with pytest.raises(SourceError, match=r"no image tagged other:latest; tags: app:latest, base:1, example.com"):
        open_image(parse_reference(f"docker-archive:{path}:other")).__enter__()
    with pytest.raises(SourceError, match=r"no image @5; the archive holds 2"):
        open_image(parse_reference(f"docker-archive:{path}:@5")).__enter__()


def test_platform_of_a_docker_archive(tmp_path: Path) -> None:
    path = legacy_docker_archive(tmp_path / "arm.tar", [(["app:1"], [APP], "arm64")])
    with open_image(parse_reference(str(path))) as image:
        assert image.config.architecture == "arm64"
    with pytest.raises(SourceError, match=r"no image for platform linux/amd64; available: linux/arm64"):
        open_image(parse_reference(str(path)), platform="linux/amd64").__enter__()


def test_docker_archive_oci_form(tmp_path: Path) -> None:
    path = oci_docker_archive(tmp_path / "new.tar", ["app:1"], [BASE, APP])
    with open_image(parse_reference(str(path))) as image:
        assert image.kind == "docker-archive"
        assert [layer.digest for layer in image.layers] == [sha(layer_tar(BASE)), sha(layer_tar(APP))]
        assert {layer.media_type for layer in image.layers} == {oci.OCI_LAYER_TAR}
        assert blob(image, image.layers[0].digest) == layer_tar(BASE)
    # The same tar read as an OCI layout gives the same image.
    with open_image(parse_reference(f"oci-archive:{path}")) as image:
        assert [layer.digest for layer in image.layers] == [sha(layer_tar(BASE)), sha(layer_tar(APP))]


def test_docker_archive_config_is_verified(tmp_path: Path) -> None:
    path = oci_docker_archive(tmp_path / "new.tar", ["app:1"], [APP])
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["manifest.json"])
    cfg = members[manifest[0]["Config"]]
    members[manifest[0]["Config"]] = cfg.replace(b"/app/run", b"/app/xxx")
    bad = tar_members(tmp_path / "bad.tar", members)
    with pytest.raises(DigestMismatch):
        open_image(parse_reference(str(bad))).__enter__()


def test_compressed_layer_in_a_legacy_archive(tmp_path: Path) -> None:
    import gzip
    tar = layer_tar(APP)
    compressed = gzip.compress(tar, mtime=0)
    cfg = dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [sha(tar)]}})
    path = tar_members(tmp_path / "gz.tar", {
        "abc/layer.tar": compressed, "cfg.json": cfg,
        "manifest.json": dumps([{"Config": "cfg.json", "RepoTags": None, "Layers": ["abc/layer.tar"]}])})
    with open_image(parse_reference(str(path))) as image:
        (layer,) = image.layers
        assert (layer.digest, layer.diff_id, layer.media_type) == (sha(compressed), sha(tar), oci.DOCKER_LAYER_GZIP)
        assert blob(image, layer.digest) == compressed


def test_duplicate_layer_as_symlink_and_hardlink(tmp_path: Path) -> None:
    tar = layer_tar(APP)
    cfg = dumps({"os": "linux", "architecture": "amd64",
                 "rootfs": {"type": "layers", "diff_ids": [sha(tar)] * 3}})
    path = tar_members(tmp_path / "dup.tar", {"a/layer.tar": tar, "c.json": cfg, "manifest.json": dumps(
        [{"Config": "c.json", "Layers": ["a/layer.tar", "b/layer.tar", "./d/layer.tar"]}])},
        symlinks={"b/layer.tar": "../a/layer.tar"}, links={"d/layer.tar": "a/layer.tar"})
    with open_image(parse_reference(str(path))) as image:
        assert [layer.digest for layer in image.layers] == [sha(tar)] * 3
        assert blob(image, sha(tar)) == tar


@pytest.mark.parametrize("layer", ["../../etc/passwd", "/etc/passwd", "a/../../x"])
def test_unsafe_manifest_paths(tmp_path: Path, layer: str) -> None:
    cfg = dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [sha(b"")]}})
    path = tar_members(tmp_path / "evil.tar", {"c.json": cfg, "manifest.json": dumps(
        [{"Config": "c.json", "Layers": [layer]}])})
    with pytest.raises(SourceError, match=r"unsafe path"):
        open_image(parse_reference(str(path))).__enter__()


def test_symlink_out_of_the_archive(tmp_path: Path) -> None:
    cfg = dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [sha(b"")]}})
    path = tar_members(tmp_path / "evil.tar", {"c.json": cfg, "manifest.json": dumps(
        [{"Config": "c.json", "Layers": ["a/layer.tar"]}])}, symlinks={"a/layer.tar": "../../etc/passwd"})
    with pytest.raises(SourceError, match=r"links outside the archive"):
        open_image(parse_reference(str(path))).__enter__()


def test_missing_layer_and_config(tmp_path: Path) -> None:
    cfg = dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [sha(b"")]}})
    path = tar_members(tmp_path / "m.tar", {"c.json": cfg, "manifest.json": dumps(
        [{"Config": "c.json", "Layers": ["gone/layer.tar"]}])})
    with pytest.raises(SourceError, match=r"gone/layer.tar is missing from the archive"):
        open_image(parse_reference(str(path))).__enter__()
    # Naming nothing the tar holds, it is detected as a root filesystem; forced, the docker-archive reader says why not.
    path = tar_members(tmp_path / "n.tar", {"manifest.json": dumps([{"Config": "c.json", "Layers": []}])})
    assert parse_reference(str(path)).kind == "rootfs"
    with pytest.raises(SourceError, match=r"c.json is missing from the archive"):
        open_image(parse_reference(f"docker-archive:{path}")).__enter__()


def test_truncated_archive(tmp_path: Path) -> None:
    good = legacy_docker_archive(tmp_path / "good.tar", [(["app:1"], [BASE, {"big": bytes(200_000)}], "amd64")])
    data = good.read_bytes()
    for cut in (len(data) // 2, 700):
        bad = tmp_path / f"cut{cut}.tar"
        bad.write_bytes(data[:cut])
        with pytest.raises(SourceError) as e, DockerArchiveSource(bad).open() as image:
            for layer in image.layers:
                blob(image, layer.digest)
        assert "\n" not in str(e.value)


def test_oci_archive(tmp_path: Path) -> None:
    blobs = Blobs()
    amd = blobs.image([BASE, APP], compress=True)
    arm = blobs.image([BASE], arch="arm64")
    layout = write_layout(tmp_path / "layout", blobs, [annotate(blobs.index([amd.descriptor, arm.descriptor]), "v1")])
    path = tar_layout(layout, tmp_path / "oci.tar")
    with open_image(parse_reference(str(path))) as image:
        assert image.kind == "oci-archive"
        assert [layer.media_type for layer in image.layers] == [oci.OCI_LAYER_GZIP] * 2
        assert blob(image, image.layers[1].digest) == amd.layers[1]
    with open_image(parse_reference(f"oci-archive:{path}:v1"), platform="linux/arm64") as image:
        assert image.config.architecture == "arm64"
    with pytest.raises(SourceError, match=r"no image tagged 'v2'"):
        open_image(parse_reference(f"oci-archive:{path}:v2")).__enter__()


def test_oci_archive_missing_blob_and_mismatch(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([APP])
    layer_digest = sha(built.layers[0])
    del blobs.data[layer_digest]
    layout = write_layout(tmp_path / "layout", blobs, [built.descriptor])
    with pytest.raises(SourceError, match=f"layer blob {layer_digest} is missing from the archive"):
        open_image(parse_reference(str(tar_layout(layout, tmp_path / "a.tar")))).__enter__()
    blobs.data[sha(built.manifest)] = built.manifest.replace(b"schemaVersion", b"schemaversion")
    layout = write_layout(tmp_path / "layout2", blobs, [built.descriptor])
    with pytest.raises(DigestMismatch):
        open_image(parse_reference(str(tar_layout(layout, tmp_path / "b.tar")))).__enter__()


def test_wrong_kind_hints(tmp_path: Path) -> None:
    legacy = legacy_docker_archive(tmp_path / "d.tar", [(["app:1"], [APP], "amd64")])
    with pytest.raises(SourceError, match=f"scan docker-archive:{legacy}"):
        OciArchiveSource(legacy).open().__enter__()
    layout = write_layout(tmp_path / "layout", Blobs(), [])
    oci_tar = tar_layout(layout, tmp_path / "o.tar")
    with pytest.raises(SourceError, match=f"scan oci-archive:{oci_tar}"):
        DockerArchiveSource(oci_tar).open().__enter__()
    with pytest.raises(SourceError, match=r"not a readable tar"):
        DockerArchiveSource(tmp_path / "layout" / "index.json").open().__enter__()
    with pytest.raises(SourceError, match=r"no such file"):
        DockerArchiveSource(tmp_path / "nope.tar").open().__enter__()


def test_oversized_member_is_an_error_not_a_load(tmp_path: Path) -> None:
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 20 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"larger than 16 MiB"):
            open_image(parse_reference(f"docker-archive:{path}")).__enter__()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_blob_streams_are_independent_and_seekable(tmp_path: Path) -> None:
    big = {"big": bytes(range(256)) * 40_000}
    path = legacy_docker_archive(tmp_path / "app.tar", [(["app:1"], [big, APP], "amd64")])
    expected = layer_tar(big)
    results: list[bytes] = []
    with open_image(parse_reference(str(path))) as image:
        digest = image.layers[0].digest

        def read() -> None:
            results.append(blob(image, digest))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with image.blobs.open_blob(digest) as a, image.blobs.open_blob(image.layers[1].digest) as b:
            assert a.read(10) == expected[:10] and b.read(10) == layer_tar(APP)[:10]
            a.seek(len(expected) - 5)
            assert a.read() == expected[-5:]
            a.seek(512)
            assert a.tell() == 512 and a.read(3) == expected[512:515]
        with pytest.raises(SourceError, match=r"missing from the archive"):
            image.blobs.open_blob("sha256:" + "0" * 64).__enter__()
    assert results == [expected] * 4
