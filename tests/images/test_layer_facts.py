"""Issue 17 part 4 for images: a layer's facts kept in the report store, keyed on its digests.

A rebuilt image (the same base, a new top layer) scanned after the original reads only its new layer; the report
is byte-identical to an uncached scan's; a blob swapped since still fails as an uncached scan does; a record that
does not decode, or does not fit the image it would be applied to, is read again."""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muslcheck import scan
from muslcheck.cache import Store, default_salt
from muslcheck.cache.layers import StoredLayers, decode_layer, encode_layer
from muslcheck.targets.image import fs
from muslcheck.targets.image.sources.interface import DigestMismatch, SourceError
from tests.images.imagebuild import (
    Entry,
    blob_path,
    device,
    fifo,
    file,
    hardlink,
    layer_member_names,
    layer_tar,
    opaque,
    raw,
    sample_layers,
    symlink,
    whiteout,
    write_docker_archive_oci,
    write_oci_archive,
    write_oci_dir,
)


class LoggingStore:
    """A Store that notes the keys written."""

    def __init__(self, store: Store) -> None:
        self.inner, self.written = store, []  # type: list[str]
        self.stats = store.stats

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def put(self, key: str, payload: bytes) -> bool:
        self.written.append(key)
        return self.inner.put(key, payload)

    def discard(self, key: str) -> None:
        self.inner.discard(key)

    def prune(self) -> int:
        return self.inner.prune()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache", salt=default_salt()) as opened:
        yield opened


@pytest.fixture
def layers_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index of every layer whose tar is walked from now on (a record applied is not one)."""
    walked: list[int] = []
    real = fs._Reading.apply_layer

    def counting(self: fs._Reading, tar: Any, index: int, *args: Any) -> None:
        walked.append(index)
        real(self, tar, index, *args)

    monkeypatch.setattr(fs._Reading, "apply_layer", counting)
    return walked


def _tops(samples: Path) -> tuple[list[list[Entry]], list[Entry], list[Entry]]:
    base = sample_layers(samples)[:2]
    top1 = sample_layers(samples)[2]
    top2 = [file("/app/new/bin/hello-musl", source=samples / "hello-musl/app/bin/hello"),
            file("/app/musl-lib/lib/libgreet.so", source=samples / "musl-lib/app/lib/libgreet.so"),
            file("/var/lib/dpkg/status", b"Package: x\nStatus: install ok installed\n\n")]
    return base, top1, top2


WRITERS = {
    "oci-dir-gzip": lambda path, layers: write_oci_dir(path, layers, compression="gzip"),
    "oci-archive-gzip": lambda path, layers: write_oci_archive(path, layers, compression="gzip"),
    "docker-archive-mapped": lambda path, layers: write_docker_archive_oci(path, layers, compression="none"),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_rebuilt_image_reads_only_its_new_layer(samples_dir: Path, tmp_path: Path, store: Store,
                                                 layers_read: list[int], kind: str) -> None:
    base, top1, top2 = _tops(samples_dir)
    prefix = kind.rsplit("-", 1)[0]
    WRITERS[kind](tmp_path / "a", [*base, top1])
    WRITERS[kind](tmp_path / "b", [*base, top2])
    a, b = f"{prefix}:{tmp_path / 'a'}", f"{prefix}:{tmp_path / 'b'}"
    uncached_b = scan(b).to_json_bytes()
    layers_read.clear()
    scan(a, cache=store)
    assert layers_read == [0, 1, 2]
    layers_read.clear()
    cached_b = scan(b, cache=store)
    assert layers_read == [2]  # the base's two layers came from their records
    assert cached_b.to_json_bytes() == uncached_b
    layers_read.clear()
    assert scan(a, cache=store, gcompat=True).to_json_bytes() == scan(a, gcompat=True).to_json_bytes()
    assert layers_read == [0, 1, 2]  # the uncached scan's: the cached one read none


def test_a_layer_listed_twice_and_a_hit_give_the_report_of_a_read(samples_dir: Path, tmp_path: Path,
                                                                   store: Store, layers_read: list[int]) -> None:
    base, top1, _ = _tops(samples_dir)
    write_oci_dir(tmp_path / "a", [*base, top1])
    write_oci_dir(tmp_path / "b", [*base, top1, base[0]])  # the base's first layer again, on top
    scan(f"oci-dir:{tmp_path / 'a'}", cache=store)
    layers_read.clear()
    cached = scan(f"oci-dir:{tmp_path / 'b'}", cache=store).to_json_bytes()
    assert layers_read == []
    assert cached == scan(f"oci-dir:{tmp_path / 'b'}").to_json_bytes()


def _regzip(path: Path) -> None:
    """The blob's tar compressed again another way: the same diff_id, another digest."""
    tar = gzip.decompress(path.read_bytes())
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=12345) as out:
        out.write(tar)
    path.write_bytes(buffer.getvalue())


def test_a_base_blob_swapped_after_the_first_scan_fails_as_an_uncached_scan_does(
        samples_dir: Path, tmp_path: Path, store: Store) -> None:
    base, top1, _ = _tops(samples_dir)
    image = write_oci_dir(tmp_path / "a", [*base, top1])
    target = f"oci-dir:{tmp_path / 'a'}"
    scan(target, cache=store)
    _regzip(blob_path(tmp_path / "a", image.layers[0].digest))
    with pytest.raises(DigestMismatch) as uncached:
        scan(target, gcompat=True)
    with pytest.raises(DigestMismatch) as cached:
        scan(target, cache=store, gcompat=True)  # another report key: the layers' records are what a hit finds
    assert str(cached.value) == str(uncached.value)
    assert str(cached.value).startswith("layer 1: content hashes to")


def test_a_mapped_base_blob_changed_after_the_first_scan_fails_as_an_uncached_scan_does(
        samples_dir: Path, tmp_path: Path, store: Store) -> None:
    base, top1, _ = _tops(samples_dir)
    archive = tmp_path / "a.tar"
    image = write_docker_archive_oci(archive, [*base, top1])
    target = f"docker-archive:{archive}"
    scan(target, cache=store)
    data = bytearray(archive.read_bytes())
    blob = image.layers[0].data
    at = bytes(data).index(blob) + len(blob) - 2000  # inside the tar's end blocks: the tree is the same
    data[at] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch) as uncached:
        scan(target, gcompat=True)
    with pytest.raises(DigestMismatch) as cached:
        scan(target, cache=store, gcompat=True)
    assert str(cached.value) == str(uncached.value)


def test_records_that_do_not_decode_are_misses_and_read_again(samples_dir: Path, tmp_path: Path, store: Store,
                                                              layers_read: list[int]) -> None:
    base, top1, top2 = _tops(samples_dir)
    write_oci_dir(tmp_path / "a", [*base, top1])
    write_oci_dir(tmp_path / "b", [*base, top2])
    logging = LoggingStore(store)
    scan(f"oci-dir:{tmp_path / 'a'}", cache=logging)  # type: ignore[arg-type]
    layer_keys = [key for key in logging.written if key.startswith('["scan","layer facts"')]
    assert len(layer_keys) == 3
    for n, key in enumerate(layer_keys):
        payload = store.get(key)
        assert payload is not None
        store.put(key, [b"", payload[: len(payload) // 2], b"not zlib", encode_layer(fs.LayerRecord((), ()))[:-1]][
            n % 4])
    layers_read.clear()
    assert scan(f"oci-dir:{tmp_path / 'b'}", cache=store).to_json_bytes() == \
        scan(f"oci-dir:{tmp_path / 'b'}").to_json_bytes()
    assert layers_read == [0, 1, 2, 0, 1, 2]  # the cached scan read every layer again, then the uncached one


def test_a_record_foreign_to_its_layer_is_not_applied(samples_dir: Path, tmp_path: Path, store: Store,
                                                      layers_read: list[int]) -> None:
    """A record whose entries name no file where a regular file is, or whose member lies past the blob: read."""
    base, top1, _ = _tops(samples_dir)
    write_docker_archive_oci(tmp_path / "a.tar", [*base, top1])
    target = f"docker-archive:{tmp_path / 'a.tar'}"
    logging = LoggingStore(store)
    scan(target, cache=logging)  # type: ignore[arg-type]
    records = StoredLayers(store)
    for key in [k for k in logging.written if k.startswith('["scan","layer facts"')]:
        record = decode_layer(store.get(key) or b"")
        broken = fs.LayerRecord(
            tuple(fs.RecordedEntry(e.name, e.kind, e.linkname, -1) for e in record.entries), record.files) \
            if any(e.file >= 0 for e in record.entries) else record
        store.put(key, encode_layer(broken))
    del records
    layers_read.clear()
    assert scan(target, cache=store, gcompat=True).to_json_bytes() == scan(target, gcompat=True).to_json_bytes()
    assert layers_read == [0, 1, 2, 0, 1, 2]


def _status_layer(name: str, size: int) -> list[Entry]:
    return [file(f"/var/lib/dpkg/status.d/{name}", b"Package: " + name.encode() + b"\n" + b"#" * size)]


def test_the_metadata_budget_is_charged_by_records_as_by_reads(samples_dir: Path, tmp_path: Path, store: Store,
                                                              layers_read: list[int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A record's kept files take the image's one budget again; a record made under a budget that granted what
    this image's would refuse is read again, and gives the same "over the budget" finding."""
    monkeypatch.setattr(fs, "MAX_KEPT_BYTES", 3000)
    app = sample_layers(samples_dir)[1]
    write_oci_dir(tmp_path / "a", [_status_layer("one", 2000), app])
    write_oci_dir(tmp_path / "b", [_status_layer("zero", 2000), _status_layer("one", 2000), app])
    a, b = f"oci-dir:{tmp_path / 'a'}", f"oci-dir:{tmp_path / 'b'}"
    scan(a, cache=store)
    layers_read.clear()
    cached = scan(b, cache=store).to_json_bytes()
    assert layers_read == [0, 1]  # "one" was granted in a, is refused in b: its record does not fit
    uncached = scan(b).to_json_bytes()
    assert cached == uncached
    assert b"bytes of metadata files in the image: not read" in uncached
    layers_read.clear()
    assert scan(b, cache=store, gcompat=True).to_json_bytes() == scan(b, gcompat=True).to_json_bytes()
    assert layers_read == [0, 1, 2]  # the cached scan read nothing: every record fits now


def test_a_record_is_kept_only_after_its_digests_checked(samples_dir: Path, tmp_path: Path, store: Store) -> None:
    base, top1, _ = _tops(samples_dir)
    image = write_oci_dir(tmp_path / "a", [*base, top1], compression="none")
    path = blob_path(tmp_path / "a", image.layers[2].digest)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # in the end blocks: the tree reads the same, the digest does not
    path.write_bytes(bytes(data))
    logging = LoggingStore(store)
    with pytest.raises(DigestMismatch):
        scan(f"oci-dir:{tmp_path / 'a'}", cache=logging)  # type: ignore[arg-type]
    assert not [k for k in logging.written if k.startswith('["scan","layer facts"')]


def _hostile_base(samples: Path) -> list[list[Entry]]:
    """Layers whose read rejects, removes and links: each of those must happen again when they are applied from
    their records."""
    hello = samples / "hello/app/bin/hello"
    return [
        [file("/old/bin/hello", source=hello), file("/lib/gone.so", source=hello), file("/keep/a", b"a")],
        [raw("../escape.so", "file", hello.read_bytes()),  # out of the root: rejected
         raw("/", "symlink", target="/elsewhere"),  # the root replaced: rejected
         raw("app/lib/dangling.so", "hardlink", target="no/such/file"),  # a hard link to nothing: rejected
         hardlink("/app/bin/hello-again", "/old/bin/hello"),
         whiteout("/lib/gone.so"), opaque("/keep"), file("/keep/b", b"b"),
         device("/dev/zero", "char", 1, 5), fifo("/app/pipe"), symlink("/app/bin/h", "hello-again")],
    ]


def test_a_hostile_base_applied_from_its_records_gives_the_report_of_a_read(
        samples_dir: Path, tmp_path: Path, store: Store, layers_read: list[int]) -> None:
    base = _hostile_base(samples_dir)
    _, top1, top2 = _tops(samples_dir)
    for name, top in (("a", top1), ("b", top2)):
        write_oci_dir(tmp_path / name, [*base, top])
    scan(f"oci-dir:{tmp_path / 'a'}", cache=store)
    layers_read.clear()
    cached = scan(f"oci-dir:{tmp_path / 'b'}", cache=store).to_json_bytes()
    assert layers_read == [2]
    uncached = scan(f"oci-dir:{tmp_path / 'b'}").to_json_bytes()
    assert cached == uncached
    for finding in (b"leads out of the root", b"replaces the root directory", b"which is not a file in the image"):
        assert finding in uncached


def test_the_entry_count_runs_across_records_as_across_reads(samples_dir: Path, tmp_path: Path, store: Store,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    base = _hostile_base(samples_dir)
    write_oci_dir(tmp_path / "a", base)
    write_oci_dir(tmp_path / "b", [*base, [file(f"/many/{n}", b"x") for n in range(5)]])
    entries = sum(len(layer_member_names(layer_tar(layer))) for layer in base)
    monkeypatch.setattr(fs, "MAX_ENTRIES", entries + 2)
    scan(f"oci-dir:{tmp_path / 'a'}", cache=store)
    with pytest.raises(SourceError) as uncached:
        scan(f"oci-dir:{tmp_path / 'b'}")
    with pytest.raises(SourceError) as cached:
        scan(f"oci-dir:{tmp_path / 'b'}", cache=store)
    assert str(cached.value) == str(uncached.value)
    assert "entries in its layers" in str(cached.value)


def test_a_record_larger_than_the_store_takes_is_not_kept(samples_dir: Path, tmp_path: Path,
                                                          layers_read: list[int]) -> None:
    """The smallest store takes payloads up to 4 KiB: a layer's record holding a 64 KiB package database kept whole
    is refused, the scan is the same, and the next scan reads that layer again."""
    base, top1, _ = _tops(samples_dir)
    noise = random.Random(1).randbytes(64 << 10).hex().encode()  # does not compress below 4 KiB
    status = b"Package: x\nStatus: install ok installed\nDescription: " + noise
    write_oci_dir(tmp_path / "a", [*base, [*top1, file("/var/lib/dpkg/status", status)]])
    target = f"oci-dir:{tmp_path / 'a'}"
    with Store(tmp_path / "small", salt=default_salt(), max_bytes=32 << 10) as small:
        assert scan(target, cache=small).to_json_bytes() == scan(target).to_json_bytes()
        assert small.stats.refused >= 1
        layers_read.clear()
        scan(target, cache=small, gcompat=True)
    assert layers_read == [2]
