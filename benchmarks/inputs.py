"""Build the benchmark's inputs, all outside the repository (under the work directory):

- ``tree/``: Debian's OpenJDK 17 JRE (``apt-get download`` + ``dpkg-deb -x``, with those of its
  library dependencies that this machine lacks) over a copy of the machine's own
  ``/usr/lib/x86_64-linux-gnu`` (symlinks preserved);
- ``image-{none,gzip,zstd}.tar``: that tree as the one layer of a docker-archive (the form Docker 25
  and later write: an OCI layout plus ``manifest.json``), uncompressed, gzip'd and zstd'd, and the
  bare compressed layers ``layer.tar.gz`` / ``layer.tar.zst`` for ``zcat`` / ``zstd -d``;
- ``images-big/image-none-big.tar``: the same uncompressed docker-archive with ~3 GB more in its one
  layer (six 512 MiB files of non-ELF data under ``/srv/data/``), to show that peak RSS does not grow
  with the image's size; built only when the image cases ask for it;
- ``top-layer/``: the new top layer of the rebuilt image (``files/`` and ``layer.tar.gz``): 5 MiB of non-ELF data
  and one small library of the tree under a new path;
- ``app.jar``: a Spring-Boot-like fat JAR, 200 nested JARs stored under ``BOOT-INF/lib``, some with
  native libraries;
- ``growth-N/``: trees of N ELF files, copies of the tree's ELF files (real copies: muslcheck reads
  each inode once, so hard links would not count).

Every step is deterministic and leaves a stamp, so a kept work directory (``--keep``) is reused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MULTIARCH_DIR = Path("/usr/lib/x86_64-linux-gnu")
# OpenJDK 17 as the performance issue asks; 21 on releases that no longer ship 17.
JRE_PACKAGES = ("openjdk-17-jre-headless", "openjdk-21-jre-headless")
MTIME = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"
ELF_MAGIC = b"\x7fELF"
CHUNK = 1 << 20
# The big image's extra data: FILLER_FILES files of FILLER_BYTES each under FILLER_DIR.
FILLER_DIR = "srv/data"
FILLER_FILES = 6
FILLER_BYTES = 512 << 20

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}

Log = Callable[[str], None]


@dataclass
class Inputs:
    tree: Path
    elf_files: list[Path]  # regular ELF files of the tree, sorted
    elf_bytes: int
    tree_note: str  # what the tree is made of
    archives: dict[str, Path]  # "none" / "gzip" / "zstd" -> docker-archive
    layers: dict[str, Path]  # "none" / "gzip" / "zstd" -> the bare layer blob
    jar: Path
    jar_note: str


# --- small helpers ------------------------------------------------------------------------------


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files_under(root: Path) -> list[Path]:
    """Every regular file (not a symlink) under ``root`` that starts with the ELF magic, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath, name)
            if not p.is_symlink() and p.is_file() and is_elf(p):
                found.append(p)
    return sorted(found)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def dumps(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _done(stamp: Path) -> bool:
    return stamp.exists()


def _mark(stamp: Path, info: dict[str, object] | None = None) -> None:
    stamp.write_text(json.dumps(info or {}, indent=1))


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --- the tree ------------------------------------------------------------------------------------


def _installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return proc.returncode == 0 and "install ok installed" in proc.stdout


def _known_to_apt(package: str) -> bool:
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    return proc.returncode == 0 and "Package:" in proc.stdout


def _pick_jre(log: Log) -> str | None:
    """The first of JRE_PACKAGES that apt knows (an ``apt-get update`` first when it knows none)."""
    for attempt in range(2):
        for package in JRE_PACKAGES:
            if _known_to_apt(package):
                return package
        if attempt == 0:
            log("no JRE package in apt's lists: running apt-get update once")
            subprocess.run(["apt-get", "update"], capture_output=True)
    return None


def _direct_library_deps(package: str) -> list[str]:
    """The ``lib*`` packages ``package`` depends on directly (apt-cache depends, no recommends)."""
    proc = subprocess.run(
        [
            "apt-cache",
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            package,
        ],
        capture_output=True,
        text=True,
    )
    deps = []
    for line in proc.stdout.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind.endswith("Depends") and name.startswith("lib") and not name.startswith("<"):
            deps.append(name)
    return sorted(set(deps))


def _apt_download(packages: list[str], into: Path, log: Log) -> list[Path]:
    """``apt-get download`` into ``into`` (an ``apt-get update`` first when the lists lack a package)."""
    into.mkdir(parents=True, exist_ok=True)

    def attempt() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True, text=True)

    proc = attempt()
    if proc.returncode != 0:
        log("apt-get download failed; running apt-get update once")
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        proc = attempt()
        if proc.returncode != 0:
            raise RuntimeError(f"apt-get download {' '.join(packages)} failed:\n{proc.stderr.strip()}")
    debs = sorted(into.glob("*.deb"))
    return [d for d in debs if any(d.name.startswith(p + "_") for p in packages)]


def build_tree(work: Path, cache: Path, log: Log) -> tuple[Path, str]:
    """The test tree: a copy of /usr/lib/x86_64-linux-gnu plus the JRE's packages extracted over it."""
    tree = work / "tree"
    stamp = work / "tree.done"
    if _done(stamp):
        return tree, json.loads(stamp.read_text())["note"]
    if not MULTIARCH_DIR.is_dir():
        raise RuntimeError(f"{MULTIARCH_DIR} is missing: this benchmark expects an x86_64 Debian/Ubuntu host")
    _fresh_dir(tree)
    log(f"copying {MULTIARCH_DIR} (symlinks preserved)")
    shutil.copytree(
        MULTIARCH_DIR,
        tree / MULTIARCH_DIR.relative_to("/"),
        symlinks=True,
        ignore_dangling_symlinks=True,
        dirs_exist_ok=True,
    )
    parts = [f"a copy of {MULTIARCH_DIR}"]
    jre = _pick_jre(log) if shutil.which("apt-get") and shutil.which("dpkg-deb") else None
    if jre:
        # Downloaded .debs live in the cache: a re-run does not fetch them again.
        packages = [jre] + [p for p in _direct_library_deps(jre) if not _installed(p)]
        debdir = cache / "debs"
        have = {d.name.split("_")[0] for d in debdir.glob("*.deb")} if debdir.is_dir() else set()
        missing = [p for p in packages if p not in have]
        if missing:
            log(f"apt-get download {' '.join(missing)}")
            _apt_download(missing, debdir, log)
        debs = sorted(d for d in debdir.glob("*.deb") if d.name.split("_")[0] in packages)
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        parts.append("Debian's " + ", ".join(d.name.removesuffix("_amd64.deb") for d in debs))
    else:
        why = "no OpenJDK package known to apt" if shutil.which("apt-get") else "apt-get/dpkg-deb not installed"
        log(f"{why}: the tree holds no JRE")
        parts.append(f"no JRE ({why})")
    note = "; ".join(parts)
    _mark(stamp, {"note": note})
    return tree, note


# --- the docker-archive --------------------------------------------------------------------------


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = MTIME
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = _normalised(tarfile.TarInfo(name))
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _filler_block() -> bytes:
    """1 MiB of pseudo-random bytes (the same on every run) that nothing takes for a file format: no ELF
    magic or ``#!`` at the start, no ZIP end-of-central-directory record anywhere."""
    seed = 0
    while True:
        block = random.Random(seed).randbytes(CHUNK)
        if not block.startswith((ELF_MAGIC, b"#!")) and b"PK\x05\x06" not in block:
            return block
        seed += 1


class _Repeated(io.RawIOBase):
    """``size`` bytes of ``block`` over and over, read without ever holding more than the block."""

    def __init__(self, block: bytes, size: int) -> None:
        self._block, self._pos, self._left = memoryview(block), 0, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = 0
        while n < len(out) and self._left:
            take = min(len(out) - n, len(self._block) - self._pos, self._left)
            out[n : n + take] = self._block[self._pos : self._pos + take]
            n, self._left, self._pos = n + take, self._left - take, (self._pos + take) % len(self._block)
        return n


def write_layer_tar(tree: Path, out: Path, filler_files: int = 0, filler_bytes: int = 0) -> None:
    """The tree as one uncompressed layer tar: sorted, owners and times fixed, symlinks kept; then, when
    ``filler_files``, that many files of ``filler_bytes`` non-ELF bytes each under ``FILLER_DIR``, streamed."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            here = Path(dirpath)
            rel = here.relative_to(tree)
            if rel != Path("."):
                tar.add(here, arcname=str(rel), recursive=False, filter=_normalised)
            for name in sorted(filenames + [d for d in dirnames if (here / d).is_symlink()]):
                p = here / name
                if p.is_symlink() or p.is_file():
                    tar.add(p, arcname=str(p.relative_to(tree)), recursive=False, filter=_normalised)
        if filler_files:
            block = _filler_block()
            parts = FILLER_DIR.split("/")
            for i in range(len(parts)):
                _add_dir(tar, "/".join(parts[: i + 1]))
            for i in range(filler_files):
                info = _normalised(tarfile.TarInfo(f"{FILLER_DIR}/blob-{i}.bin"))
                info.size, info.mode = filler_bytes, 0o644
                tar.addfile(info, _Repeated(block, filler_bytes))


def compress_file(src: Path, out: Path, compression: str) -> None:
    """gzip (level 6, no timestamp) or zstd (level 3), streamed."""
    with src.open("rb") as fin, out.open("wb") as raw:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as fout:
                shutil.copyfileobj(fin, fout, CHUNK)
        elif compression == "zstd":
            import zstandard  # a muslcheck dependency

            with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as fout:
                shutil.copyfileobj(fin, fout, CHUNK)
        else:
            raise ValueError(compression)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _normalised(tarfile.TarInfo(name))
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_docker_archive(out: Path, layer_blob: Path, diff_id: str, compression: str) -> None:
    """A docker-archive in the form ``docker save`` writes from Docker 25 on (an OCI layout in a tar
    plus ``manifest.json`` naming ``blobs/sha256/<hex>``), with one layer, streamed from disk."""
    # An uncompressed layer's digest is its diff_id: no second pass over it.
    layer_digest = diff_id if compression == "none" else sha256_file(layer_blob)
    config = dumps({
        "created": CREATED, "os": "linux", "architecture": "amd64",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "muslcheck benchmark tree"}],
    })  # fmt: skip
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER[compression], "digest": layer_digest,
                    "size": layer_blob.stat().st_size}],
    })  # fmt: skip
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/muslcheck-bench:1",
                        "org.opencontainers.image.ref.name": "1"},
    }]})  # fmt: skip

    def blob(digest: str) -> str:
        return "blobs/sha256/" + digest.split(":", 1)[1]

    docker_manifest = dumps(
        [{"Config": blob(config_digest), "RepoTags": ["muslcheck-bench:1"], "Layers": [blob(layer_digest)]}]
    )
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            _add_dir(tar, d)
        _add_bytes(tar, blob(config_digest), config)
        _add_bytes(tar, blob(manifest_digest), manifest)
        tar.add(layer_blob, arcname=blob(layer_digest), recursive=False, filter=_normalised)
        _add_bytes(tar, "index.json", index)
        _add_bytes(tar, "oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "manifest.json", docker_manifest)
        _add_bytes(tar, "repositories", dumps({"muslcheck-bench": {"1": diff_id.split(":", 1)[1]}}))
    tmp.replace(out)


def build_images(work: Path, tree: Path, log: Log) -> tuple[dict[str, Path], dict[str, Path]]:
    """docker-archives of the tree with an uncompressed, a gzip and a zstd layer, and the bare layers."""
    images = work / "images"
    archives = {c: images / f"image-{c}.tar" for c in ("none", "gzip", "zstd")}
    layers = {"none": images / "layer.tar", "gzip": images / "layer.tar.gz", "zstd": images / "layer.tar.zst"}
    stamp = work / "images.done"
    if _done(stamp):
        return archives, layers
    _fresh_dir(images)
    log("writing the layer tar")
    write_layer_tar(tree, layers["none"])
    diff_id = sha256_file(layers["none"])
    for comp in ("gzip", "zstd"):
        log(f"compressing the layer ({comp})")
        compress_file(layers["none"], layers[comp], comp)
    for comp, path in archives.items():
        log(f"writing {path.name}")
        write_docker_archive(path, layers[comp], diff_id, comp)
    _mark(stamp)
    return archives, layers


def build_big_image(
    work: Path, tree: Path, log: Log, files: int = FILLER_FILES, file_bytes: int = FILLER_BYTES
) -> tuple[Path, str]:
    """The uncompressed docker-archive of ``build_images`` with ``files`` more files of ``file_bytes``
    non-ELF bytes each under /srv/data/ in its one layer (about 4 GB in all, by default). Only the
    archive is kept: its bare layer, as large, is removed once copied in."""
    images = work / "images-big"
    archive = images / "image-none-big.tar"
    stamp = work / "images-big.done"
    if _done(stamp):
        return archive, json.loads(stamp.read_text())["note"]
    _fresh_dir(images)
    layer = images / "layer.tar"
    extra = files * file_bytes
    log(f"writing the big image's layer tar (the tree + {files} x {file_bytes >> 20} MiB of non-ELF data)")
    write_layer_tar(tree, layer, files, file_bytes)
    diff_id = sha256_file(layer)
    log(f"writing {archive.name}")
    write_docker_archive(archive, layer, diff_id, "none")
    layer.unlink()
    note = (
        f"an uncompressed docker-archive of {archive.stat().st_size / 1e9:.1f} GB: the tree plus "
        f"{files} files of {file_bytes >> 20} MiB of non-ELF data (one pseudo-random 1 MiB block repeated) "
        f"under /{FILLER_DIR}/ in the same single layer, {extra / 1e9:.1f} GB more"
    )
    _mark(stamp, {"note": note, "extra_bytes": extra})
    return archive, note


def layer_digests(work: Path, layers: dict[str, Path]) -> tuple[str, str]:
    """(the gzip layer blob's digest, the layer's diff_id) of ``build_images``' layer, hashed once and kept."""
    stamp = work / "images-digests.json"
    if stamp.exists():
        digest, diff_id = json.loads(stamp.read_text())
        return str(digest), str(diff_id)
    digest, diff_id = sha256_file(layers["gzip"]), sha256_file(layers["none"])
    stamp.write_text(json.dumps([digest, diff_id]))
    return digest, diff_id


# --- the rebuilt image's new top layer -----------------------------------------------------------

TOP_LAYER_DATA_FILES = 5  # of 1 MiB each: random bytes do not deflate, so with the ELF file a ~5 MB gzip layer


@dataclass(frozen=True)
class TopLayer:
    files: Path  # the layer's content as a directory (scanned alone: "the new layer's own time")
    blob: Path  # the gzip layer
    diff_id: str
    note: str


def non_elf_bytes(seed: str, size: int) -> bytes:
    """``size`` pseudo-random bytes (the same for the same seed) that nothing takes for a file format."""
    n = 0
    while True:
        data = random.Random(f"{seed}/{n}").randbytes(size)
        if not data.startswith((ELF_MAGIC, b"#!")) and b"PK\x05\x06" not in data:
            return data
        n += 1


def build_top_layer(work: Path, tree: Path, elf_files: list[Path], log: Log) -> TopLayer:
    """A new top layer for the benchmark image, as a CI build adds one: ``TOP_LAYER_DATA_FILES`` MiB of non-ELF
    data under /srv/assets/ and one small library of the tree (the smallest of at least 16 KiB) copied to
    /opt/app/lib/; as a directory and as a gzip layer (level 6)."""
    root = work / "top-layer"
    stamp = work / "top-layer.done"
    files, blob = root / "files", root / "layer.tar.gz"
    if _done(stamp):
        info = json.loads(stamp.read_text())
        return TopLayer(files, blob, info["diff_id"], info["note"])
    _fresh_dir(root)
    log("building the rebuilt image's new top layer")
    assets = files / "srv" / "assets"
    assets.mkdir(parents=True)
    for i in range(TOP_LAYER_DATA_FILES):
        (assets / f"asset-{i}.bin").write_bytes(non_elf_bytes(f"top-layer-{i}", CHUNK))
    libraries = [p for p in elf_files if ".so" in p.name and p.stat().st_size >= 16 << 10]
    if not libraries:
        raise RuntimeError(f"{tree} holds no ELF library of at least 16 KiB for the new top layer")
    library = min(libraries, key=lambda p: (p.stat().st_size, str(p)))
    (files / "opt" / "app" / "lib").mkdir(parents=True)
    shutil.copyfile(library, files / "opt" / "app" / "lib" / library.name)
    tar = root / "layer.tar"
    write_layer_tar(files, tar)
    diff_id = sha256_file(tar)
    compress_file(tar, blob, "gzip")
    tar.unlink()
    note = (
        f"a gzip layer of {blob.stat().st_size / 1e6:.1f} MB: {TOP_LAYER_DATA_FILES} files of 1 MiB of non-ELF "
        f"data under /srv/assets/ and {library.relative_to(tree)} ({library.stat().st_size / 1e3:.0f} kB) "
        f"copied to /opt/app/lib/"
    )
    _mark(stamp, {"diff_id": diff_id, "note": note})
    return TopLayer(files, blob, diff_id, note)


# --- the fat JAR ---------------------------------------------------------------------------------


def _payload_pool(tree: Path, elf_files: list[Path], size: int) -> bytes:
    """Bytes that deflate like class files: the JRE's jimage ``lib/modules`` (it holds the JDK's classes),
    else the tree's ELF files."""
    modules = sorted(tree.glob("usr/lib/jvm/*/lib/modules"))
    sources = modules or elf_files
    buf = bytearray()
    for src in sources:
        with src.open("rb") as f:
            buf += f.read(size - len(buf))
        if len(buf) >= size:
            break
    return bytes(buf)


def build_fat_jar(
    work: Path, tree: Path, elf_files: list[Path], log: Log, nested: int = 200, target_bytes: int = 150_000_000
) -> tuple[Path, str]:
    """A Spring-Boot-like executable JAR: loader classes, BOOT-INF/classes, and ``nested`` JARs stored
    (not deflated, as Spring Boot writes them) under BOOT-INF/lib; every 10th nested JAR carries a real
    native library of the tree under META-INF/native/ (as netty's and others do)."""
    jar = work / "app.jar"
    stamp = work / "jar.done"
    if _done(stamp):
        return jar, json.loads(stamp.read_text())["note"]
    log(f"building a fat JAR ({nested} nested JARs, ~{target_bytes // 1_000_000} MB)")
    rng = random.Random(17)
    pool = _payload_pool(tree, elf_files, 64 << 20)
    natives = [p for p in elf_files if 100_000 <= p.stat().st_size <= 3_000_000 and ".so" in p.name]
    rng.shuffle(natives)
    per_jar = target_bytes // (nested + 8)

    def class_bytes() -> bytes:
        n = rng.randint(2_000, 40_000)
        start = rng.randrange(0, len(pool) - n)
        return b"\xca\xfe\xba\xbe" + pool[start : start + n]

    def entry(name: str, method: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
        info.compress_type = method
        info.external_attr = 0o644 << 16
        return info

    n_native = 0
    tmp = jar.with_suffix(".partial")
    with zipfile.ZipFile(tmp, "w") as outer:
        outer.writestr(
            entry("META-INF/MANIFEST.MF", zipfile.ZIP_DEFLATED),
            "Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\n"
            "Start-Class: com.example.bench.Application\nSpring-Boot-Classes: BOOT-INF/classes/\n"
            "Spring-Boot-Lib: BOOT-INF/lib/\n",
        )
        written = 0
        for i in range(300):  # the launcher and the application's own classes
            data = class_bytes()
            where = "org/springframework/boot/loader" if i < 100 else "BOOT-INF/classes/com/example/bench"
            outer.writestr(entry(f"{where}/C{i:03d}.class", zipfile.ZIP_DEFLATED), data)
            written += outer.infolist()[-1].compress_size
        libs = []
        for j in range(nested):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as inner:
                inner.writestr(entry("META-INF/MANIFEST.MF", zipfile.ZIP_DEFLATED), "Manifest-Version: 1.0\n")
                size = 0
                if j % 10 == 0 and natives:
                    lib = natives[n_native % len(natives)]
                    inner.writestr(
                        entry(
                            f"META-INF/native/lib{lib.name.split('.so')[0].removeprefix('lib')}-x86_64.so",
                            zipfile.ZIP_DEFLATED,
                        ),
                        lib.read_bytes(),
                    )
                    size += inner.infolist()[-1].compress_size
                    n_native += 1
                k = 0
                while size < per_jar:
                    inner.writestr(entry(f"com/example/dep{j:03d}/C{k:04d}.class", zipfile.ZIP_DEFLATED), class_bytes())
                    size += inner.infolist()[-1].compress_size
                    k += 1
            name = f"BOOT-INF/lib/dep{j:03d}-1.0.{j % 7}.jar"
            outer.writestr(entry(name, zipfile.ZIP_STORED), buf.getvalue())
            libs.append(name)
        outer.writestr(entry("BOOT-INF/classpath.idx", zipfile.ZIP_DEFLATED), "".join(f'- "{n}"\n' for n in libs))
    tmp.replace(jar)
    note = f"{jar.stat().st_size / 1e6:.0f} MB, {nested} nested JARs (stored), {n_native} native libraries inside them"
    _mark(stamp, {"note": note})
    return jar, note


# --- growth trees ----------------------------------------------------------------------------------


def growth_layout(tree: Path, elf_files: list[Path], n: int) -> Iterator[tuple[Path, str]]:
    """(source, relative destination) of the N files of a growth tree: the tree's ELF files in a fixed
    shuffled order, so each size has the same mix; past the last one they repeat under ``dupK/``."""
    order = list(elf_files)
    random.Random(1).shuffle(order)
    for i in range(n):
        src = order[i % len(order)]
        rel = str(src.relative_to(tree))
        yield src, rel if i < len(order) else f"dup{i // len(order)}/{rel}"


def build_growth_tree(work: Path, tree: Path, elf_files: list[Path], n: int, log: Log) -> Path:
    out = work / f"growth-{n}"
    stamp = work / f"growth-{n}.done"
    if _done(stamp):
        return out
    log(f"building a growth tree of {n:,} ELF files (copies)")
    _fresh_dir(out)
    for src, rel in growth_layout(tree, elf_files, n):
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    _mark(stamp)
    return out


# --- everything ------------------------------------------------------------------------------------


def build_inputs(work: Path, cache: Path, log: Log) -> Inputs:
    work.mkdir(parents=True, exist_ok=True)
    tree, tree_note = build_tree(work, cache, log)
    elf_files = elf_files_under(tree)
    elf_bytes = sum(p.stat().st_size for p in elf_files)
    archives, layers = build_images(work, tree, log)
    jar, jar_note = build_fat_jar(work, tree, elf_files, log)
    return Inputs(tree, elf_files, elf_bytes, tree_note, archives, layers, jar, jar_note)
