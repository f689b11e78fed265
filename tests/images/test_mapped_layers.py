"""Uncompressed layers in a local file are read by random access over a map of the file; their digests are
checked while the files are judged. The report is the one streaming the same layers gives."""

from __future__ import annotations

import mmap
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from muslcheck import ScanOptions, scan
from muslcheck.cache import Store
from muslcheck.judging import judge
from muslcheck.model.options import Context
from muslcheck.targets.image.fs import ImageRoot, read_image
from muslcheck.targets.image.mapped import MappedLayer
from muslcheck.targets.image.sources import DigestMismatch, open_image, parse_reference
from muslcheck.targets.image.sources.archive import TarBlobs
from muslcheck.targets.image.sources.interface import BlobLocation
from tests.images.imagebuild import (
    blob_path,
    corrupt_blob,
    file,
    sample_layers,
    write_docker_archive_oci,
    write_oci_dir,
)
from tests.support import unavailable


@pytest.mark.parametrize("jobs", [1, 2])
def test_mapped_and_streamed_give_the_same_report(
    samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.setattr(judge, "PARALLEL_MIN_FILES", 1)
    archive = tmp_path / "app.tar"
    write_docker_archive_oci(archive, sample_layers(samples_dir), compression="none")
    with open_image(parse_reference(f"docker-archive:{archive}")) as image:
        root = read_image(image, defer_digests=True)
        assert any(node.content is not None for node in root.nodes.values())  # the mapped path was taken
        root.verify()
    mapped = scan(f"docker-archive:{archive}", jobs=jobs)
    with monkeypatch.context() as m:
        m.setattr(TarBlobs, "locate_blob", lambda self, digest: None)
        streamed = scan(f"docker-archive:{archive}", jobs=jobs)
    assert len(mapped.files) > 5
    assert mapped == streamed


def test_a_tampered_mapped_layer_fails_after_judging_and_is_not_cached(samples_dir: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    built = write_oci_dir(layout, sample_layers(samples_dir), compression="none")
    layer = built.layers[1].digest
    corrupt_blob(layout, layer, offset=blob_path(layout, layer).stat().st_size - 2000)  # in the tar's padding
    with Store(tmp_path / "cache", salt="test") as store, pytest.raises(
        DigestMismatch, match=f"layer 2: content hashes to sha256:[0-9a-f]{{64}}, not {layer}"
    ):
        scan(f"oci-dir:{layout}", cache=store)
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == ["CACHEDIR.TAG"]


def test_without_address_space_for_a_map_the_layer_streams(
    samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = tmp_path / "layout"
    write_oci_dir(layout, sample_layers(samples_dir), compression="none")
    expected = scan(f"oci-dir:{layout}")

    def no_memory(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", no_memory)
    with open_image(parse_reference(f"oci-dir:{layout}")) as image:
        root = read_image(image)
    assert isinstance(root, ImageRoot) and all(node.content is None for node in root.nodes.values())
    assert scan(f"oci-dir:{layout}") == expected


def test_a_mapped_layer_reads_in_place(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    with tarfile.open(payload, "w") as tar:
        tar.add(__file__, arcname="a/test.py")
    data = payload.read_bytes()
    outer = tmp_path / "outer"
    outer.write_bytes(b"x" * 70_000 + data + b"y" * 100)  # not on a map granule
    layer = MappedLayer.of(BlobLocation(outer, 70_000, len(data)))
    assert layer is not None
    assert bytes(layer.view(0, len(data) + 50)) == data  # cut at the blob's end
    assert layer.reader().read() == data
    with tarfile.open(fileobj=layer.reader(), mode="r:") as tar:
        member = tar.getmember("a/test.py")
        assert bytes(layer.view(member.offset_data, member.size)) == Path(__file__).read_bytes()
    layer.forget(0, len(data))  # only the pages go: the bytes read the same
    assert bytes(layer.view(0, 16)) == data[:16]
    assert MappedLayer.of(BlobLocation(outer, 0, 0)) is None
    assert MappedLayer.of(BlobLocation(outer, 70_000, 10**9)) is None  # past the end of the file


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_constructors_call_is_read_for_a_lazy_dlopen_from_a_mapped_or_streamed_layer(
    tmp_path: Path, compression: str
) -> None:
    """A mapped layer's files are read without their constructors' code, and read again for it when a lazy dlopen
    needs it; a streamed layer's are read whole as they go by. The report is the same, and the directory's."""
    if shutil.which("gcc") is None:
        unavailable("gcc is not installed (Debian package gcc)")
    source = tmp_path / "atinit.c"
    source.write_text("#include <gnu/libc-version.h>\nconst char *seen;\n"
                      "__attribute__((constructor)) static void init(void) { seen = gnu_get_libc_version(); }\n")
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    library = tree / "lib/libatinit.so"
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", "-Wl,-z,lazy", "-o", str(library), str(source)], check=True)
    archive = tmp_path / "app.tar"
    write_docker_archive_oci(archive, [[file("/lib/libatinit.so", source=library)]], compression=compression)
    options = ScanOptions(context=Context.DLOPEN_LAZY, jobs=1)
    reports = [scan(f"docker-archive:{archive}", options), scan(tree, options)]
    for report in reports:
        [f] = report.files
        assert [(s.name, s.fatal) for s in f.unresolved_symbols] == [("gnu_get_libc_version", True)]
        assert any("its constructor calls gnu_get_libc_version during dlopen" in note for note in f.notes)
