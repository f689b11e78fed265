"""Root-filesystem tars (issue 15, part 5): ``docker export`` or ``tar -C rootfs -c .``, plain, gzip or zstd, scanned
as a root filesystem: detected from the content or forced with ``rootfs:``, and judged as the directory it came
from is judged, file for file."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from muslcheck import scan
from muslcheck.model.errors import InputError
from muslcheck.targets.image.sources import open_image
from muslcheck.targets.reference import ReferenceKind, parse_reference

ROOTFS_NOTE = "root filesystem"


def _tar_of(directory: Path, out: Path, *options: str) -> Path:
    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    subprocess.run(["tar", *options, "-C", str(directory), "-cf", str(out), "."], check=True)
    return out


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return bytes(zstandard.ZstdCompressor().compress(data))


def _files(report: Any) -> list[dict[str, Any]]:
    return [dataclasses.asdict(f) for f in report.files]


@pytest.fixture(scope="module")
def rootfs(samples_dir: Path) -> Path:
    """The sample binaries as a root filesystem (programs, libraries, links between them)."""
    return samples_dir


def test_plain_gzip_and_zstd_tars_are_the_directory(rootfs: Path, tmp_path: Path) -> None:
    plain = _tar_of(rootfs, tmp_path / "rootfs.tar")
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    zst = tmp_path / "rootfs.tar.zst"
    zst.write_bytes(_zstd(plain.read_bytes()))
    expected = scan(f"dir:{rootfs}", jobs=1)
    assert expected.files, "the samples hold ELF files"
    for path in (plain, gz, zst):
        assert parse_reference(str(path)).kind is ReferenceKind.ROOTFS
        report = scan(str(path), jobs=1)
        assert _files(report) == _files(expected), path  # file for file, verdicts and findings included
        assert [s.path for s in report.skipped] == [s.path for s in expected.skipped]
        assert any(n.startswith(f"{ROOTFS_NOTE} {path}") for n in report.notes), report.notes


def test_forced_rootfs_reads_an_image_archive_as_files(tmp_path: Path) -> None:
    """``rootfs:`` forces the kind: a tar that would be detected otherwise is read as a root filesystem."""
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in {"manifest.json": b"[]", "etc/os-release": b"ID=debian\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open_image(parse_reference(f"rootfs:{path}")) as image:
        assert image.kind is ReferenceKind.ROOTFS and len(image.layers) == 1
        assert image.config.architecture == ""  # no config: the files say which architecture they are
    report = scan(f"rootfs:{path}")
    assert report.files == ()
    assert any(n.startswith(f"{ROOTFS_NOTE} rootfs:{path}") for n in report.notes)


@pytest.mark.parametrize("manifest", [
    b"[]",  # the error of today: "expected a non-empty list of images"
    b'{"name": "my-web-app", "start_url": "/"}',  # a web app manifest
    json.dumps([{"Config": "nowhere.json", "Layers": ["nowhere/layer.tar"]}]).encode(),  # names no member
    b"[[[[[[" * 10_000,  # not JSON (and deep)
])
def test_stray_manifest_json_is_a_root_filesystem(tmp_path: Path, samples_dir: Path, manifest: bytes) -> None:
    root = tmp_path / "root"
    shutil.copytree(samples_dir / "hello", root)
    (root / "manifest.json").write_bytes(manifest)
    path = _tar_of(root, tmp_path / "stray.tar")
    assert parse_reference(str(path)).kind is ReferenceKind.ROOTFS
    assert _files(scan(str(path))) == _files(scan(f"dir:{root}"))


def test_compressed_image_archive_is_not_taken_for_a_root_filesystem(tmp_path: Path) -> None:
    """``docker save | gzip`` starts with an image archive's names: refused with a way out, not read as files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("blobs/", "blobs/sha256/", "index.json", "manifest.json", "oci-layout"):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(b"") if info.isreg() else None)
    path = tmp_path / "image.tar.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(InputError, match="compressed image archive; decompress it first"):
        parse_reference(str(path))


def test_corrupt_compressed_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"this is not a tar" * 100))
    with pytest.raises(InputError, match="a compressed file that is not a tar"):
        parse_reference(str(path))
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InputError, match="a compressed file that is not a tar"):
        parse_reference(str(path))
