"""The layer stream: decompressed and hashed on its own thread, the same bytes and digests as a plain read."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
import zlib

import pytest
import zstandard

from muslcheck.targets.image import layerstream
from muslcheck.targets.image.layerstream import LayerStream

PAYLOAD = os.urandom(3 * layerstream.CHUNK + 12345) + bytes(5 * layerstream.CHUNK)  # noise, then a long run


@pytest.fixture(params=["isal", "zlib"], autouse=True)
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test with ISA-L (when installed) and with zlib, the fallback where ISA-L has no wheel."""
    if request.param == "zlib":
        monkeypatch.setattr(layerstream, "inflate_module", zlib)
        monkeypatch.setattr(layerstream, "_INFLATE_ERROR", zlib.error)
    elif layerstream.inflate_module is zlib:
        pytest.skip("isal is not installed")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def flipped(blob: bytes, at: int) -> bytes:
    """One byte changed: the deflate stream breaks, or its CRC-32 no longer matches."""
    return blob[:at] + bytes([blob[at] ^ 0x55]) + blob[at + 1 :]


def read_all(blob: bytes, media_type: str = "") -> tuple[bytes, tuple[str, str]]:
    with LayerStream(io.BytesIO(blob), media_type) as stream:
        data = stream.read()
        return data, stream.digests()


@pytest.mark.parametrize("media_type", ["", "application/vnd.oci.image.layer.v1.tar+gzip"])
def test_gzip_by_magic_or_media_type(media_type: str) -> None:
    blob = gzip.compress(PAYLOAD)
    assert read_all(blob, media_type) == (PAYLOAD, (sha(blob), sha(PAYLOAD)))


def test_gzip_members_and_zero_padding() -> None:
    blob = gzip.compress(PAYLOAD[:1000]) + gzip.compress(PAYLOAD[1000:]) + bytes(4096)
    assert read_all(blob) == (PAYLOAD, (sha(blob), sha(PAYLOAD)))


def test_zstd_frames() -> None:
    blob = zstandard.ZstdCompressor().compress(PAYLOAD[:5000]) + zstandard.ZstdCompressor().compress(PAYLOAD[5000:])
    assert read_all(blob, "application/vnd.oci.image.layer.v1.tar+zstd") == (PAYLOAD, (sha(blob), sha(PAYLOAD)))


def test_uncompressed_has_one_digest_for_both() -> None:
    assert read_all(PAYLOAD) == (PAYLOAD, (sha(PAYLOAD), sha(PAYLOAD)))


@pytest.mark.parametrize(
    ("blob", "error", "message"),
    [
        (gzip.compress(PAYLOAD)[:-100], EOFError, "ended before the end-of-stream marker"),
        (flipped(gzip.compress(PAYLOAD), 50_000), OSError, "corrupt gzip data"),
        (gzip.compress(PAYLOAD) + b"junk after the member", OSError, "corrupt gzip data"),
        (zstandard.ZstdCompressor().compress(PAYLOAD)[:-10] + b"\xff" * 10, OSError, "corrupt zstd data"),
    ],
    ids=["truncated gzip", "corrupt gzip", "trailing junk", "corrupt zstd"],
)
def test_bad_streams_raise_in_the_reader(blob: bytes, error: type[Exception], message: str) -> None:
    with LayerStream(io.BytesIO(blob), ""), pytest.raises(error, match=message):
        read_all(blob)


def test_digests_only_after_the_end() -> None:
    with LayerStream(io.BytesIO(PAYLOAD), "") as stream:
        stream.read(10)
        with pytest.raises(ValueError, match="not been read to its end"):
            stream.digests()
        stream.drain()
        assert stream.digests() == (sha(PAYLOAD), sha(PAYLOAD))


def test_leaving_early_stops_the_thread() -> None:
    before = set(threading.enumerate())  # threads of earlier tests may end meanwhile: compare sets, not counts
    with LayerStream(io.BytesIO(gzip.compress(PAYLOAD * 4)), "") as stream:
        stream.read(100)  # the thread has filled its queue and waits for room
        started = set(threading.enumerate()) - before
        assert started
    assert not [thread for thread in started if thread.is_alive()]


def test_seeks_forward_only_and_the_digests_still_cover_every_byte() -> None:
    blob = gzip.compress(PAYLOAD)
    with LayerStream(io.BytesIO(blob), "") as stream:
        assert stream.read(7) == PAYLOAD[:7]
        assert stream.seek(layerstream.CHUNK + 3) == layerstream.CHUNK + 3  # across a chunk, nothing copied
        assert stream.read(5) == PAYLOAD[layerstream.CHUNK + 3 : layerstream.CHUNK + 8]
        assert stream.seek(10, io.SEEK_CUR) == stream.tell() == layerstream.CHUNK + 18
        with pytest.raises(io.UnsupportedOperation, match="only seeks forward"):
            stream.seek(0)
        assert stream.seek(len(PAYLOAD) + 100) == len(PAYLOAD)  # past the end: at the end, as a read would be
        assert stream.read(1) == b""
        assert stream.digests() == (sha(blob), sha(PAYLOAD))


def test_tarfile_reads_a_layer_stream_in_random_access_mode() -> None:
    members = {f"dir/file{i}": os.urandom(i * 700) for i in range(12)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue())
    with LayerStream(io.BytesIO(blob), "") as stream:
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r:") as tar:
            read = {m.name: tar.extractfile(m).read() for m in tar if m.size % 2}  # type: ignore[union-attr]
        stream.drain()
        assert stream.digests() == (sha(blob), sha(raw.getvalue()))
    assert read == {name: data for name, data in members.items() if len(data) % 2}
