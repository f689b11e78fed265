"""Layers squash into one tree: whiteouts, opaque directories, links, and what a hostile layer cannot do."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.tree import Resolved, Unresolvable
from muslcheck.targets.image.fs import ImageRoot, read_image
from muslcheck.targets.image.sources.interface import DigestMismatch, Image, ImageConfig, Layer, SourceError

Entry = tuple[str, str, bytes | str]  # (kind, name, content or link target); kinds: file dir sym hard fifo


def layer_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1
            if kind == "file":
                assert isinstance(content, bytes)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "hard"):
                assert isinstance(content, str)
                info.linkname = content
            tar.addfile(info)
    return out.getvalue()


@dataclass
class Blobs:
    data: dict[str, bytes]

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        yield io.BytesIO(self.data[digest])

    def locate_blob(self, digest: str) -> None:
        return None  # these blobs only stream


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(*layers: list[Entry], compress: bool = False) -> Image:
    blobs: dict[str, bytes] = {}
    described = []
    for entries in layers:
        tar = layer_tar(entries)
        blob = gzip.compress(tar, mtime=0) if compress else tar
        blobs[sha(blob)] = blob
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        described.append(Layer(sha(blob), media, len(blob), sha(tar)))
    config = ImageConfig("linux", "amd64", None, (), None, (), (), tuple(str(x.diff_id) for x in described))
    return Image("test", "oci-dir", tuple(described), config, Blobs(blobs))


def paths(root: ImageRoot) -> set[str]:
    return {p for p, n in root.nodes.items() if n.kind != "dir"}


def test_whiteouts_and_opaque_directories_hide_lower_layers() -> None:
    root = read_image(image(
        [("file", "app/a", b"1"), ("file", "app/b", b"2"), ("file", "opt/x/old", b"3"), ("file", "keep", b"4")],
        [("file", "app/.wh.a", b""), ("file", "opt/x/.wh..wh..opq", b""), ("file", "opt/x/new", b"5")],
    ))
    assert paths(root) == {"/app/b", "/opt/x/new", "/keep"}


def test_a_later_layer_replaces_and_a_file_replacing_a_directory_drops_its_children() -> None:
    root = read_image(image(
        [("file", "lib/libz.so.1", b"old"), ("file", "etc/conf/a", b"x")],
        [("file", "lib/libz.so.1", b"new"), ("file", "etc/conf", b"now a file")],
    ))
    assert root.nodes["/lib/libz.so.1"].layer == 1
    assert paths(root) == {"/lib/libz.so.1", "/etc/conf"}


def test_links_resolve_inside_the_image_and_hard_links_share_identity() -> None:
    root = read_image(image([
        ("file", "usr/lib/libreal.so.1", b"data"),
        ("sym", "lib/libabs.so", "/usr/lib/libreal.so.1"),
        ("sym", "lib/librel.so", "../usr/lib/libreal.so.1"),
        ("sym", "lib/escape", "../../../../etc/shadow"),
        ("hard", "opt/hard.so", "usr/lib/libreal.so.1"),
        ("sym", "loop/a", "b"), ("sym", "loop/b", "a"),
    ]))
    real = root.resolve("/usr/lib/libreal.so.1")
    assert isinstance(real, Resolved)
    for alias in ("/lib/libabs.so", "/lib/librel.so", "/opt/hard.so"):
        found = root.resolve(alias)
        assert isinstance(found, Resolved) and found.identity == real.identity, alias
    escape = root.resolve("/lib/escape")
    assert isinstance(escape, Unresolvable) and escape.reason == "no such file"  # the image's /etc, not the host's
    loop = root.resolve("/loop/a")
    assert isinstance(loop, Unresolvable) and "too many levels" in loop.reason
    skipped = root.elf_files(FactsCache(root)).skipped
    assert {s.path for s in skipped} >= {"/loop/a", "/loop/b", "/lib/escape"}


def test_names_that_climb_out_and_special_files_never_enter_the_tree() -> None:
    root = read_image(image([
        ("file", "../../etc/evil", b"x"), ("file", "/abs/ok", b"y"), ("fifo", "run/pipe", b""),
        ("file", "./dot/ok", b"z"),
    ]))
    assert "/etc/evil" not in root.nodes
    assert root.nodes["/abs/ok"].kind == "file" and root.nodes["/dot/ok"].kind == "file"
    assert root.nodes["/run/pipe"].kind == "other"
    assert [s.path for s in root.rejected] == ["/../../etc/evil"]


def test_elf_files_are_parsed_from_the_stream(samples_dir: Path) -> None:
    exe = (samples_dir / "hello" / "app" / "bin" / "hello").read_bytes()
    root = read_image(image([("file", "app/bin/hello", exe), ("file", "app/bin/truncated", exe[:200])],
                            compress=True))
    found = root.elf_files(FactsCache(root))
    files, skipped = found.files, found.skipped
    assert [f.path for f in files] == ["/app/bin/hello"]
    assert files[0].facts.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert [s.path for s in skipped] == ["/app/bin/truncated"] and "malformed ELF" in skipped[0].reason


def test_a_blob_that_does_not_match_its_digest_is_refused() -> None:
    img = image([("file", "a", b"1")])
    blobs = img.blobs
    assert isinstance(blobs, Blobs)
    digest = img.layers[0].digest
    data = bytearray(blobs.data[digest])
    data[600] ^= 1  # inside the file's content block
    blobs.data[digest] = bytes(data)
    with pytest.raises(DigestMismatch, match="layer 1"):
        read_image(img)


def test_a_truncated_layer_is_a_clear_error() -> None:
    img = image([("file", "a", b"1" * 5000)], compress=True)
    blobs = img.blobs
    assert isinstance(blobs, Blobs)
    digest = img.layers[0].digest
    blobs.data[digest] = blobs.data[digest][:40]
    with pytest.raises(SourceError, match="truncated or corrupt"):
        read_image(img)
