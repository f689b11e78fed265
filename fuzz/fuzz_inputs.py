#!/usr/bin/env python3
"""Coverage-guided fuzzing of the readers of hostile containers, with atheris: zip archives, image layers
(tar, gzip, zstd; streamed and mapped), and the OS package databases (dpkg status, apk installed, rpm sqlite).

    python3 fuzz/fuzz_inputs.py TARGET --seeds DIR          # write TARGET's seed corpus into DIR
    python3 fuzz/fuzz_inputs.py TARGET OUT SEEDS -runs=N    # fuzz it (every later argument goes to libFuzzer)
    python3 fuzz/fuzz_inputs.py TARGET crash-<sha1>         # run one input again

TARGET is ``zip``, ``layer``, ``dpkg``, ``apk`` or ``rpm`` (the ELF reader has fuzz/fuzz_elf.py). Each goes in
through the entry point the scan uses: ``scan_archive`` for a zip, ``read_image`` and then the tree's ELF files
and its package ownership for a layer, ``read_ownership`` over a root holding the database for the three
databases. The contract: a return, or for a layer ``SourceError`` (an image that cannot be read is a one-line
error); any other exception is a crash. See docs/fuzzing.md.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sqlite3
import struct
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import BinaryIO

try:
    import atheris
except ImportError:  # tests/hostile/test_hostile_fuzz_smoke.py runs the targets without it
    atheris = None

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

with atheris.instrument_imports(include=["muslcheck.targets", "muslcheck.elf"]) if atheris else nullcontext():
    from muslcheck.ldso.facts import FactsCache
    from muslcheck.ldso.tree import Resolved, Unresolvable
    from muslcheck.targets.archives import BufferReader, scan_archive
    from muslcheck.targets.image.fs import read_image
    from muslcheck.targets.image.sources.interface import BlobLocation, Image, ImageConfig, Layer, SourceError
    from muslcheck.targets.limits import KeepWhole
    from muslcheck.targets.osdb import read_ownership
    from muslcheck.targets.reference import ReferenceKind

_METADATA = KeepWhole(lambda path: path.rpartition("/")[2] in {"MANIFEST.MF", "WHEEL", "METADATA",
                                                                 "pom.properties", "package.json"}, 1 << 20)
_MEDIA = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
          "application/vnd.oci.image.layer.v1.tar+zstd")
_DATABASES = {"dpkg": "/var/lib/dpkg/status", "apk": "/lib/apk/db/installed", "rpm": "/var/lib/rpm/rpmdb.sqlite"}


# ---- the targets -------------------------------------------------------------------------------------------

def fuzz_zip(data: bytes) -> None:
    scan_archive(BufferReader(data), "/app/fuzz.jar", _METADATA)


def fuzz_layer(data: bytes) -> None:
    """The first byte picks how the rest becomes a layer blob: as it is, or compressed here (so that the tar
    inside is fuzzed, not only the compressed stream), under which media type, and streamed or mapped."""
    if not data:
        return
    mode, body = data[0], data[1:]
    if mode & 0x30 == 0x10:
        body = gzip.compress(body, compresslevel=1, mtime=0)
    elif mode & 0x30 == 0x20:
        import zstandard

        body = zstandard.ZstdCompressor(level=1).compress(body)
    media = _MEDIA[mode % 3]
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    config = ImageConfig("linux", "amd64", None, (), None, (), (), ())
    with tempfile.NamedTemporaryFile() if mode & 0x40 else _nothing() as spill:
        blobs = _Blobs(body, spill)
        image = Image("fuzz", ReferenceKind.OCI_DIR, (Layer(digest, media, len(body), None),), config, blobs)
        try:
            root = read_image(image)
        except SourceError:
            return
        root.elf_files(FactsCache(root))
        read_ownership(root)


def fuzz_database(kind: str) -> Callable[[bytes], None]:
    path = _DATABASES[kind]

    def one(data: bytes) -> None:
        files = {path: data}
        if kind == "dpkg":  # a file list for every package the status names, so the lists are read too
            files["/var/lib/dpkg/info/libc6.list"] = b"/lib/x86_64-linux-gnu/libc.so.6\n/.\n/usr/bin/ls\n"
        read_ownership(_DictRoot(files))

    return one


TARGETS: dict[str, Callable[[bytes], None]] = {
    "zip": fuzz_zip, "layer": fuzz_layer, **{kind: fuzz_database(kind) for kind in _DATABASES},
}


class _Blobs:
    """One blob: streamed from memory, or (``spill`` given) from a file, where the reader maps it."""

    def __init__(self, body: bytes, spill: BinaryIO | None) -> None:
        self.body, self.spill = body, spill
        if spill is not None:
            spill.write(body)
            spill.flush()

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        yield io.BytesIO(self.body)

    def locate_blob(self, digest: str) -> BlobLocation | None:
        return None if self.spill is None else BlobLocation(Path(self.spill.name), 0, len(self.body))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


class _DictRoot:
    """A root filesystem of a few small files and the directories above them (the ``RootFS`` protocol)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.dirs = {"/"} | {p[:i] or "/" for p in files for i in range(len(p)) if p[i] == "/"}

    def resolve(self, path: str) -> Resolved | Unresolvable:
        if path in self.files or path in self.dirs:
            return Resolved(path, (), path in self.files, path in self.dirs, path)
        return Unresolvable(path, "no such file", ())

    def read_facts(self, resolved: Resolved) -> object:
        raise OSError("no ELF files here")

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        return self.files[resolved.path][:limit]

    def list_dir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix):].split("/")[0] for p in (*self.files, *self.dirs)
                       if p.startswith(prefix) and p != prefix})


# ---- seeds -------------------------------------------------------------------------------------------------

def _elf() -> bytes:
    from tests.elf.elfbuilder import ElfSpec, Sym

    return ElfSpec(interp="/lib64/ld-linux-x86-64.so.2", needed=["libc.so.6"],
                   symbols=[Sym("__memcpy_chk"), Sym("main", shndx=7, value=0x1000)],
                   verneeds=[("libc.so.6", [("GLIBC_2.3.4", 2)])]).build().data


def _tar(members: list[tuple[str, bytes | str | None]]) -> bytes:
    """A tar of (name, content): bytes for a file, a str for a symlink's target, None for a directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.getvalue()


_DPKG = (b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nDescription: GNU C Library\n"
         b" continued line\n .\n more\n\nPackage: gone\nStatus: deinstall ok config-files\n\n")
_APK = b"P:musl\nV:1.2.5-r0\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\nP:busybox\nV:1.36\nF:bin\nR:sh\n"


def _rpm_header(name: str) -> bytes:
    strings = [(1000, 6, [name]), (1001, 6, ["1.0"]), (1002, 6, ["1.el9"]), (1117, 8, ["ls", "libc.so.6"]),
               (1118, 8, ["/usr/bin/", "/usr/lib64/"])]
    store, index = b"", b""
    for tag, kind, values in strings:
        index += struct.pack(">iiii", tag, kind, len(store), len(values))
        store += b"".join(v.encode() + b"\0" for v in values)
    index += struct.pack(">iiii", 1116, 4, len(store), 2)
    store += struct.pack(">ii", 0, 1)
    return struct.pack(">II", len(strings) + 1, len(store)) + index + store


def _rpm() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        db.executemany("INSERT INTO Packages (blob) VALUES (?)", [(_rpm_header("coreutils"),),
                                                                  (_rpm_header("glibc"),)])
        db.commit()
        db.close()
        return path.read_bytes()


def seeds(target: str) -> dict[str, bytes]:
    elf = _elf()
    if target == "zip":
        jar = {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nBundle-NativeCode: lib/x.so\n",
               "lib/linux-x86_64/libx.so": elf, "META-INF/maven/g/a/pom.properties": b"version=1\n"}
        return {"deflate": _zip(jar), "stored": _zip(jar, zipfile.ZIP_STORED),
                "bzip2": _zip(jar, zipfile.ZIP_BZIP2), "lzma": _zip(jar, zipfile.ZIP_LZMA),
                "nested": _zip({"WEB-INF/lib/inner.jar": _zip(jar), "x.whl": _zip({"a/b.so": elf})})}
    if target == "layer":
        tar = _tar([("usr", None), ("usr/lib", None), ("usr/lib/libx.so.1", elf), ("usr/lib/libx.so", "libx.so.1"),
                    ("var/lib/dpkg/status", _DPKG), ("app/a.jar", _zip({"lib/x.so": elf})),
                    ("usr/lib/.wh.gone", b""), ("opt/.wh..wh..opq", b"")])
        return {f"mode-{mode:02x}": bytes([mode]) + tar for mode in (0x00, 0x10, 0x21, 0x40, 0x51)} | {
            "gzip-raw": b"\x01" + gzip.compress(tar, mtime=0)}
    if target == "rpm":
        return {"rpm": _rpm()}
    return {target: _DPKG if target == "dpkg" else _APK}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} (--seeds DIR | libFuzzer arguments...)")
    target = sys.argv.pop(1)
    if atheris is None:
        sys.exit("fuzzing needs atheris: pip install atheris")
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for name, data in seeds(target).items():
            (out / f"{target}-{name}").write_bytes(data)
        return
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
