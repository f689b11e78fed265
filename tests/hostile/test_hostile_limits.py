"""Hostile sizes and structures (issue 7, parts 3 and 4): 4 GB members (GNU sparse and plain), a 4 GB
member with the ELF magic, self-referencing and deep indexes, 100,000 layers, a 500 MB config, a huge
manifest.json, and a multi-GB image whose scan must stay under the documented RSS bound."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hostile.hostile_support import (
    ELF_HEAD,
    RSS_BOUND_MB,
    Big,
    big_layer_oci_dir,
    need_disk,
    oci_dir_from_blobs,
    put_blob,
    report_paths,
    run_scan,
    skipped,
    tar_members_bytes,
    tinfo,
    write_sparse,
)
from tests.images import imagebuild as ib

GB4 = 4 << 30


def _record(name: str, text: str) -> None:
    """With HOSTILE_RECORD=1 the measurements are printed for docs/hostile-input.md."""
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED {name}: {text}")


def test_gnu_sparse_4gb_members(tmp_path: Path, samples_dir: Path) -> None:
    """A layer tar written by GNU tar --sparse: a 4 GB hole and a 4 GB hole behind the ELF magic."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar not installed")
    src = tmp_path / "src"
    (src / "app/bin").mkdir(parents=True)
    shutil.copy(samples_dir / "hello/app/bin/hello", src / "app/bin/hello")
    with open(src / "app/zeros", "wb") as f:
        f.truncate(GB4)
    with open(src / "app/bin/huge-elf", "wb") as f:
        f.write(ELF_HEAD)
        f.truncate(GB4)
    layout = tmp_path / "image"
    for fmt in ("gnu", "posix"):
        shutil.rmtree(layout, ignore_errors=True)
        layer = tmp_path / f"layer-{fmt}.tar"
        subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(layer), "-C", str(src), "app"], check=True)
        assert layer.stat().st_size < 1 << 20
        data = layer.read_bytes()
        digest = put_blob(layout, data)
        oci_dir_from_blobs(layout, [(ib.OCI_LAYER["none"], digest, digest, len(data))])
        result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w")
        report = result.report
        assert report_paths(report) == {"/app/bin/hello"}
        assert "above the" in skipped(report)["/app/bin/huge-elf"]
        assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
        _record(f"gnu sparse ({fmt})", result.measured())


def test_plain_4gb_members_stream(tmp_path: Path, samples_dir: Path) -> None:
    """An uncompressed layer (sparse on disk, 8 GB of tar) with a 4 GB non-ELF member and a 4 GB member
    that starts with the ELF magic: both stream through; the ELF one is skipped, never buffered."""
    need_disk(tmp_path, 10)
    members = [
        ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello"),
        Big("/data/zeros", GB4),
        Big("/app/bin/huge-elf", GB4, ELF_HEAD),
        ib.file("/app/bin/after", source=samples_dir / "hello/app/bin/hello"),  # read after 8 GB
    ]
    layout = big_layer_oci_dir(tmp_path / "image", members)
    assert shutil.disk_usage(tmp_path).free > 0
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=300)
    report = result.report
    assert report_paths(report) == {"/app/bin/hello", "/app/bin/after"}
    assert "above the" in skipped(report)["/app/bin/huge-elf"]
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    _record("plain 2 x 4 GB uncompressed", result.measured())


def test_index_that_references_itself(tmp_path: Path, samples_dir: Path) -> None:
    layout = tmp_path / "image"
    ib.write_oci_dir(layout, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    # A blob cannot hold its own digest, so "itself" is a blob named D listing D: its bytes do not hash to D.
    fake = "sha256:" + "ab" * 32
    body = ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX,
                     "manifests": [{"mediaType": ib.OCI_INDEX, "digest": fake, "size": 0}]})
    body_desc = {"mediaType": ib.OCI_INDEX, "digest": fake, "size": len(body)}
    ib.blob_path(layout, fake).write_bytes(body)
    (layout / "index.json").write_bytes(ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX,
                                                  "manifests": [body_desc]}))
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=30)
    assert "does not match" in result.error or "itself" in result.error
    # The same index named twice on the way down (index.json -> X -> X): a cycle by digest.
    inner = ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": []})
    inner_digest = put_blob(layout, inner)
    loop = {"mediaType": ib.OCI_INDEX, "digest": inner_digest, "size": len(inner)}
    outer = ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [loop, loop]})
    outer_digest = put_blob(layout, outer)
    (layout / "index.json").write_bytes(ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [
        {"mediaType": ib.OCI_INDEX, "digest": outer_digest, "size": len(outer)}]}))
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=30)
    assert "names no image manifest" in result.error
    # Indexes nested 50 deep (each a valid blob): refused at the depth limit.
    desc = {"mediaType": ib.OCI_INDEX, "digest": inner_digest, "size": len(inner)}
    for _ in range(50):
        blob = ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [desc]})
        desc = {"mediaType": ib.OCI_INDEX, "digest": put_blob(layout, blob), "size": len(blob)}
    (layout / "index.json").write_bytes(ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX,
                                                  "manifests": [desc]}))
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=30)
    assert "nested deeper" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_manifest_with_100000_layers(tmp_path: Path, samples_dir: Path) -> None:
    n = 100_000
    layout = tmp_path / "image"
    ib.write_oci_dir(layout, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])

    def edit(manifest: dict) -> None:
        layer = manifest["layers"][0]
        manifest["layers"] = [layer] * n

    ib.rewrite_manifest(layout, edit)
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=60)
    assert f"{n} layers (limit" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    _record("100,000-layer manifest (oci-dir)", result.measured())

    archive = tmp_path / "image.tar"
    ib.write_docker_archive_legacy(archive, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    ib.rewrite_tar_member(archive, "manifest.json", lambda data: json.dumps(
        [{**json.loads(data)[0], "Layers": json.loads(data)[0]["Layers"] * n}]).encode())
    result = run_scan(f"docker-archive:{archive}", work=tmp_path / "w", timeout=60)
    assert f"{n} layers (limit" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def _json_pattern_file(path: Path, size: int) -> str:
    """``[0,0,0,...,0]`` of ``size`` bytes, written in 1 MiB chunks; returns its sha256 digest."""
    h = hashlib.sha256()
    chunk = b"0," * (1 << 19)
    with open(path, "wb") as f:
        def put(b: bytes) -> None:
            f.write(b)
            h.update(b)

        put(b"[")
        left = size - 3
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            put(piece)
            left -= len(piece)
        put(b"0]")
    return "sha256:" + h.hexdigest()


def test_config_of_500_mb(tmp_path: Path, samples_dir: Path) -> None:
    need_disk(tmp_path, 2)
    size = 500 << 20
    layout = tmp_path / "image"
    image = ib.write_oci_dir(layout, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    scratch = layout / "blobs/sha256/incoming"
    digest = _json_pattern_file(scratch, size)
    scratch.rename(ib.blob_path(layout, digest))
    for with_size in (True, False):
        def edit(manifest: dict, with_size: bool = with_size) -> None:
            manifest["config"] = {"mediaType": ib.OCI_CONFIG, "digest": digest}
            if with_size:
                manifest["config"]["size"] = size

        ib.rewrite_manifest(layout, edit)
        result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=60)
        assert "too large for a manifest or config" in result.error
        assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
        _record(f"500 MB config (descriptor size given: {with_size})", result.measured())
    del image

    # docker-archive: a 500 MB config member (the outer tar is sparse on disk)
    archive = tmp_path / "big-config.tar"
    ib.write_docker_archive_legacy(archive, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    _replace_member_with_zeros(archive, lambda n: n.endswith(".json") and "/" not in n and n != "manifest.json",
                               size)
    result = run_scan(f"docker-archive:{archive}", work=tmp_path / "w", timeout=60)
    assert "too large for a manifest or config" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def _replace_member_with_zeros(archive: Path, which, size: int) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a tar with the member ``which`` selects replaced by ``size`` zero bytes (a hole on disk)."""
    import tarfile

    with tarfile.open(archive) as tar:
        rows = []
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            rows.append((m.name, f.read() if f else None))
    pieces: list[bytes | int] = []
    for name, data in rows:
        if data is None:
            continue
        info, _ = tinfo(name, data if not which(name) else b"")
        if which(name):
            info.size = size
            pieces += [info.tobuf(format=tarfile.PAX_FORMAT), size, (-size) % 512]
        else:
            pieces += [info.tobuf(format=tarfile.PAX_FORMAT), data, b"\0" * ((-len(data)) % 512)]
    pieces.append(1024)
    write_sparse(archive, pieces)


def test_docker_archive_with_a_huge_manifest_json(tmp_path: Path, samples_dir: Path) -> None:
    archive = tmp_path / "huge-manifest.tar"
    ib.write_docker_archive_legacy(archive, [[ib.file("/app/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    _replace_member_with_zeros(archive, lambda n: n == "manifest.json", 500 << 20)
    result = run_scan(f"docker-archive:{archive}", work=tmp_path / "w", timeout=60)
    assert "too large for a manifest or config" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    _record("docker-archive, 500 MB manifest.json", result.measured())


def test_docker_archive_with_many_entries_sharing_a_tag(tmp_path: Path, samples_dir: Path) -> None:
    archive = tmp_path / "many.tar"
    hello = samples_dir / "hello/app/bin/hello"
    image = ib.write_docker_archive_legacy(archive, [[ib.file("/app/bin/hello", source=hello)]])
    config = json.loads(image.config)
    config["padding"] = "x" * (4 << 20)
    config_blob = ib.dumps(config)
    config_name = ib.hexof(ib.sha256(config_blob)) + ".json"

    def edit(data: bytes) -> bytes:
        [entry] = json.loads(data)
        return json.dumps([{**entry, "Config": config_name}] * 10_000).encode()

    ib.rewrite_tar_member(archive, "manifest.json", edit)
    import tarfile

    with tarfile.open(archive) as tar:
        rows = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]
    rows.append(tinfo(config_name, config_blob))
    archive.write_bytes(tar_members_bytes(rows))
    result = run_scan(f"docker-archive:{archive}", work=tmp_path / "w", timeout=30)
    assert result.rc in (0, 1, 3)
