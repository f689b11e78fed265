"""Hostile tar headers and layer structures (issue 18, parts 1 and 9): every declared size is checked before it
is read, no header reaches a backtracking regex, hard links cost one report, a layer cannot empty the root
silently, a layer listed 10,000 times is read once, and an inflating layer stops at its budget.

Inputs are crafted here, header by header, and stay small on disk (sparse files, gzip of repeated blocks)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from muslcheck.targets.image import layerstream
from muslcheck.targets.image.layerstream import LayerStream
from muslcheck.targets.image.tarreader import MAX_NAME_BYTES, MAX_PAX_BYTES, TarError, TarReader, parse_pax
from tests.hostile.hostile_support import (
    RSS_BOUND_MB,
    put_blob,
    report_paths,
    run_scan,
    skipped,
    tar_members_bytes,
    tinfo,
)
from tests.images import imagebuild as ib

GIB = 1 << 30


def _header(name: bytes, kind: bytes, size: int, *, extra: dict[int, bytes] | None = None,
            magic: bytes = b"ustar\x0000") -> bytearray:
    """One tar header block with a right checksum; ``extra`` writes raw bytes at offsets (sparse fields)."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    block[136:148] = b"%011o\0" % ib.MTIME
    block[156:157] = kind
    block[257:265] = magic
    for offset, data in (extra or {}).items():
        block[offset : offset + len(data)] = data
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return block


def _one_layer_layout(tmp_path: Path, layer: bytes, *, gz: bool = False) -> Path:
    """An OCI layout around one layer blob (gzip-compressed when asked)."""
    layout = tmp_path / "image"
    blob = gzip.compress(layer, compresslevel=6, mtime=0) if gz else layer
    digest = put_blob(layout, blob)
    from tests.hostile.hostile_support import oci_dir_from_blobs

    media = ib.OCI_LAYER["gzip" if gz else "none"]
    return oci_dir_from_blobs(layout, [(media, digest, ib.sha256(layer), len(blob))])


def _hello_member(samples_dir: Path, name: str = "app/bin/hello") -> bytes:
    return tar_members_bytes([tinfo(name, (samples_dir / "hello/app/bin/hello").read_bytes())])[:-1024]


# ---- declared sizes: refused before a byte is read --------------------------------------------------------

def test_pax_header_declaring_2_gb(tmp_path: Path, samples_dir: Path) -> None:
    """A PAX header whose size field says 2 GB: refused from the field, nothing read (tarfile reads it whole)."""
    layer = bytes(_header(b"PaxHeaders/x", b"x", 2 * GIB)) + b"99 path=x\n".ljust(8 << 20, b"\0")
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path, layer, gz=True)}", work=tmp_path / "w")
    assert f"PAX header of {2 * GIB} bytes" in result.error and f"limit {MAX_PAX_BYTES}" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_gnu_long_name_of_1_gib(tmp_path: Path) -> None:
    layer = bytes(_header(b"././@LongLink", b"L", GIB, magic=b"ustar  \0")) + b"a" * 10_000
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path, layer)}", work=tmp_path / "w")
    assert f"GNU long name of {GIB} bytes" in result.error and f"limit {MAX_NAME_BYTES}" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_gnu_sparse_map_bombs(tmp_path: Path) -> None:
    """An old GNU sparse header chaining 100,000 extension blocks (gzip: 50 MB of blocks in a few hundred KB), and a
    PAX 1.0 sparse map claiming a billion regions: each refused at its cap, the map never kept."""
    extension = bytearray(512)
    extension[504] = 1  # another extension block follows
    blocks = 100_000
    first = _header(b"app/sparse", b"S", 0, magic=b"ustar  \0", extra={482: b"\x01", 483: b"%011o\0" % GIB})
    old = bytes(first) + bytes(extension) * blocks
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path / 'old', old, gz=True)}", work=tmp_path / "w1")
    assert "a sparse map of more than 65536 blocks" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()

    records = b"".join(_pax_record(k, v) for k, v in ((b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
                                                      (b"GNU.sparse.name", b"app/sparse"),
                                                      (b"GNU.sparse.realsize", b"%d" % GIB)))
    sparse_map = b"1000000000\n" + b"0\n1\n" * 50_000
    stored = len(sparse_map) + 512
    pax10 = (bytes(_header(b"PaxHeaders/sparse", b"x", len(records))) + records.ljust(_padded(len(records)), b"\0")
             + bytes(_header(b"GNUSparseFile.0/sparse", b"0", stored)) + sparse_map.ljust(stored, b"\0"))
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path / 'pax', pax10, gz=True)}", work=tmp_path / "w2")
    assert "sparse map" in result.error  # the map runs out of its member before a billion regions
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length += 1
    return b"%d" % length + body


def _padded(n: int) -> int:
    return (n + 511) // 512 * 512


def test_pax_header_against_the_tarfile_regex(tmp_path: Path, samples_dir: Path) -> None:
    """Python 3.11's tarfile searches a PAX header holding GNU.sparse.size with ``\\d+ GNU.sparse.offset=``: a long
    run of digits makes that quadratic (a ReDoS). Parsed by record lengths, it costs one pass; the member is a
    sparse file with no stored head, and the ELF file beside it is judged."""
    records = _pax_record(b"GNU.sparse.size", b"4096") + _pax_record(b"comment", b"7" * 900_000)
    assert len(records) < MAX_PAX_BYTES
    small = _pax_record(b"GNU.sparse.size", b"4096") + _pax_record(b"comment", b"7" * 9_000)
    # The same calls for 100 times the digits: per record, never per digit (time is then one pass of C code)
    assert _count_calls(lambda: parse_pax(records)) == _count_calls(lambda: parse_pax(small))
    layer = (bytes(_header(b"PaxHeaders/evil", b"x", len(records))) + records.ljust(_padded(len(records)), b"\0")
             + bytes(_header(b"app/evil", b"0", 0)) + _hello_member(samples_dir) + bytes(1024))
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path, layer)}", work=tmp_path / "w", timeout=60)
    assert report_paths(result.report) == {"/app/bin/hello"}
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def _count_calls(run: object) -> int:
    """How many Python-level calls ``run`` makes (an operation count, not wall time)."""
    import sys

    calls = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        run()  # type: ignore[operator]
    finally:
        sys.setprofile(None)
    return calls


def test_reader_refuses_before_reading() -> None:
    """In process: the reader raises from the header alone (the stream holds nothing after it)."""
    for kind, size, what in ((b"x", 2 * GIB, "PAX header"), (b"L", GIB, "GNU long name"),
                             (b"K", MAX_NAME_BYTES + 1, "GNU long name")):
        stream = io.BytesIO(bytes(_header(b"h", kind, size)))
        with pytest.raises(TarError, match=what):
            list(TarReader(stream))
        assert stream.tell() == 512  # the header, and not one byte of its declared payload
    bad = _header(b"x", b"0", 0)
    bad[0] ^= 1  # checksum no longer matches: an error, not a quiet end of the archive
    with pytest.raises(TarError, match="checksum"):
        list(TarReader(io.BytesIO(bytes(_header(b"ok", b"0", 0)) + bytes(bad))))


# ---- structures: hard links, the root, repeated layers, inflation -----------------------------------------

def test_a_thousand_hard_links_to_one_elf_member(tmp_path: Path, samples_dir: Path) -> None:
    links = [tinfo(f"app/l{i}", kind=tarfile.LNKTYPE, linkname="app/bin/hello") for i in range(1000)]
    hello = (samples_dir / "hello/app/bin/hello").read_bytes()
    layer = tar_members_bytes([tinfo("app/bin/hello", hello), *links])
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path, layer)}", work=tmp_path / "w")
    report = result.report
    [only] = report["files"]
    assert only["path"] == "/app/bin/hello" and len(only["aliases"]) == 1000
    assert len(result.stdout) < 200_000  # one report, its aliases listed
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.REGTYPE, tarfile.LNKTYPE])
def test_layer_replacing_the_root(tmp_path: Path, samples_dir: Path, kind: bytes) -> None:
    """A blocked program, then a layer whose "." is a symlink, a file or a hard link: the program is still judged
    and the replacement is a finding that leaves the report incomplete."""
    app = samples_dir / "missing-dep/app/bin/app"
    layers = [[ib.file("/app/bin/app", source=app)],
              [ib.raw(".", {tarfile.SYMTYPE: "symlink", tarfile.REGTYPE: "file", tarfile.LNKTYPE: "hardlink"}[kind],
                      target="/app/bin/app" if kind == tarfile.LNKTYPE else "/tmp")]]
    layout = tmp_path / "image"
    ib.write_oci_dir(layout, layers)
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w")
    report = result.report
    assert "/app/bin/app" in report_paths(report)
    assert "replaces the root directory" in skipped(report)["/"]
    assert result.rc == 1


def test_opaque_whiteout_emptying_the_root_is_reported(tmp_path: Path, samples_dir: Path) -> None:
    app = samples_dir / "missing-dep/app/bin/app"
    layout = tmp_path / "image"
    ib.write_oci_dir(layout, [[ib.file("/app/bin/app", source=app)], [ib.opaque("/")]])
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w")
    assert "empties the root directory" in skipped(result.report)["/"]
    assert result.rc == 1  # never "nothing to check", exit 0


def test_layout_repeating_one_layer_10000_times(tmp_path: Path, samples_dir: Path) -> None:
    """The layer is read (and its blob opened) once, however often the manifest lists it; the scan is as
    the layer alone."""
    layout = tmp_path / "image"
    layer = tar_members_bytes([tinfo("app/bin/hello", (samples_dir / "hello/app/bin/hello").read_bytes()),
                               tinfo("app/.wh.gone"), tinfo("app/lib", kind=tarfile.DIRTYPE)])
    for compressed in (False, True):
        blob = gzip.compress(layer, mtime=0) if compressed else layer
        digest = put_blob(layout, blob)
        from tests.hostile.hostile_support import oci_dir_from_blobs

        media = ib.OCI_LAYER["gzip" if compressed else "none"]
        oci_dir_from_blobs(layout, [(media, digest, ib.sha256(layer), len(blob))] * 10_000)
        result = run_scan(f"oci-dir:{layout}", work=tmp_path / f"w{compressed}")
        assert report_paths(result.report) == {"/app/bin/hello"}
        blob_opens = [p for p in result.opened() if p.endswith(digest.split(":")[1])]
        assert len(blob_opens) <= 2, blob_opens  # read once (and hashed once, for a mapped layer)
        assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_zstd_bomb_stops_while_it_inflates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zstd layer inflating far past its ratio: stopped at the budget, a chunk at a time (in process, with the
    free allowance lowered from 4 GiB so that the test inflates megabytes)."""
    zstandard = pytest.importorskip("zstandard")
    monkeypatch.setattr(layerstream, "MAX_INFLATE_FREE", 8 << 20)
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20))
    assert len(bomb) < 64 << 10
    inflated = 0
    with LayerStream(io.BytesIO(bomb), "application/vnd.oci.image.layer.v1.tar+zstd") as stream, \
            pytest.raises(OSError, match="decompression bomb"):
        while n := stream.readinto(bytearray(1 << 20)):
            inflated += n
    assert inflated <= (8 << 20) + layerstream.MAX_INFLATE_RATIO * len(bomb)


def test_sparse_member_behind_the_elf_magic_is_never_read(tmp_path: Path, samples_dir: Path) -> None:
    """A 512 MiB sparse file starting with an ELF header whose tables claim the whole file (under the 1 GiB member
    cap): a finding, never a buffer of its claimed size."""
    import shutil
    import subprocess

    if shutil.which("tar") is None:
        pytest.skip("GNU tar not installed")
    src = tmp_path / "src"
    (src / "app/bin").mkdir(parents=True)
    shutil.copy(samples_dir / "hello/app/bin/hello", src / "app/bin/hello")
    with open(src / "app/bin/liar", "wb") as f:
        f.write((samples_dir / "hello/app/bin/hello").read_bytes()[:4096])
        f.truncate(512 << 20)
    for fmt in ("gnu", "posix"):
        layer = tmp_path / f"{fmt}.tar"
        subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(layer), "-C", str(src), "app"], check=True)
        result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path / fmt, layer.read_bytes())}", work=tmp_path / fmt)
        report = result.report
        assert report_paths(report) == {"/app/bin/hello"}
        assert "sparse file of 536870912 bytes that looks like ELF code" in skipped(report)["/app/bin/liar"]
        assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_outer_archive_of_too_many_members(tmp_path: Path) -> None:
    """A docker-archive of 120,000 members: refused past 100,000, each member kept as a small record."""
    path = tmp_path / "many.tar"
    template = _header(b"", b"0", 0)
    with open(path, "wb") as f:
        f.write(bytes(_header(b"manifest.json", b"0", 2)) + b"[]".ljust(512, b"\0"))
        for i in range(120_000):
            block = bytearray(template)
            name = b"m%d" % i
            block[0 : len(name)] = name
            block[148:156] = b" " * 8
            block[148:156] = b"%06o\0 " % sum(block)
            f.write(block)
        f.write(bytes(1024))
    result = run_scan(f"docker-archive:{path}", work=tmp_path / "w")
    assert "more than 100000 members" in result.error
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()


def test_layer_that_is_not_a_tar(tmp_path: Path) -> None:
    """Bytes that are no tar header: a one-line error naming the checksum, not an empty layer."""
    result = run_scan(f"oci-dir:{_one_layer_layout(tmp_path, b'not a tar'.ljust(2048, b'!'))}", work=tmp_path / "w")
    assert "bad tar header checksum at offset 0" in result.error
