"""Issue 17's fleet case: N images on one base, each with its own app layers, scanned as one fleet on this machine,
against one scan of every distinct layer once (the base with all the app layers stacked in one image).

    python3 benchmarks/fleet.py --tree ~/.cache/muslcheck-bench/work/tree [--images 50] [--layers 10] [--work DIR]

The base is the tree as one gzip layer; each app layer holds two of the tree's ELF files (a different pair in each
layer, renamed, so every app layer is distinct content). Each image is an OCI layout (``oci-dir:``); the base blob
is one file hard-linked into every layout (50 copies of a 450 MB blob would not fit). So the base blob is hashed
once for the whole fleet (the store remembers a file by its stat identity), as it would be fetched once from a
registry. Both runs start with an empty cache directory, use the default ``--jobs``, and write JSON.

``run.py`` builds the same fleet with ``build_fleet`` (on the benchmark image's own gzip layer as the base) and
times it among its other cases; this script is the stand-alone form.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import elf_files_under

SCAN = "import sys; from muslcheck.cli import main; sys.argv[0] = 'muslcheck'; sys.exit(main())"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class BaseLayer:
    """A gzip layer blob on disk, hard-linked (not copied) into every layout built on it."""

    blob: Path
    digest: str  # sha256:... of the blob
    diff_id: str  # sha256:... of the uncompressed tar


@dataclass(frozen=True)
class AppLayer:
    """A small gzip layer held in memory."""

    data: bytes
    diff_id: str


@dataclass(frozen=True)
class Fleet:
    images: tuple[Path, ...]  # one OCI layout per image
    targets_file: Path  # ``oci-dir:`` of each image, one per line
    distinct: Path  # one OCI layout: the base and every image's app layers, each distinct layer once
    layers_per_image: int


def _put(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return "sha256:" + digest


def base_layer(tree: Path, work: Path) -> BaseLayer:
    """The whole tree as one gzip layer (level 1), built once under ``work``."""
    blob = work / "base.tar.gz"
    stamp = work / "base.json"
    if not stamp.exists():
        with tempfile.TemporaryFile() as raw:
            with tarfile.open(fileobj=raw, mode="w") as tar:
                tar.add(tree, arcname=".")
            raw.seek(0)
            diff_id, compressed = hashlib.sha256(), hashlib.sha256()
            with open(blob, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
                while chunk := raw.read(1 << 20):
                    diff_id.update(chunk)
                    gz.write(chunk)
        with open(blob, "rb") as f:
            while chunk := f.read(1 << 20):
                compressed.update(chunk)
        stamp.write_text(json.dumps(["sha256:" + compressed.hexdigest(), "sha256:" + diff_id.hexdigest()]))
    digest, diff_id_hex = json.loads(stamp.read_text())
    return BaseLayer(blob, digest, diff_id_hex)


def app_layer(files: list[Path], prefix: str) -> AppLayer:
    """A layer holding ``files`` under ``prefix`` (each renamed ``I-NAME``, so every layer is distinct)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i, f in enumerate(files):
            tar.add(f, arcname=f"{prefix}/{i}-{f.name}")
    data = raw.getvalue()
    return AppLayer(gzip.compress(data, 1, mtime=0), "sha256:" + hashlib.sha256(data).hexdigest())


def write_oci_layout(layout: Path, base: BaseLayer, apps: list[AppLayer]) -> None:
    """An OCI image layout (``oci-dir:``) of one linux/amd64 image: ``base`` (hard-linked), then ``apps``."""
    shutil.rmtree(layout, ignore_errors=True)
    (layout / "blobs/sha256").mkdir(parents=True)
    os.link(base.blob, layout / "blobs/sha256" / base.digest.removeprefix("sha256:"))
    layers = [{"mediaType": LAYER, "digest": base.digest, "size": base.blob.stat().st_size}]
    for app in apps:
        layers.append({"mediaType": LAYER, "digest": _put(layout, app.data), "size": len(app.data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [base.diff_id, *(a.diff_id for a in apps)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": _put(layout, config), "size": len(config)},
        "layers": layers}).encode()
    index = {"schemaVersion": 2,
             "manifests": [{"mediaType": MANIFEST, "digest": _put(layout, manifest), "size": len(manifest)}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def build_fleet(tree: Path, work: Path, images: int, layers: int, base: BaseLayer | None = None) -> Fleet:
    """``images`` OCI layouts under ``work``, each ``base`` (default: ``base_layer(tree, work)``) and ``layers``
    app layers of two of the tree's ELF files each, and the layout of every distinct layer once. A fleet built
    before under ``work`` with the same parameters is reused."""
    work.mkdir(parents=True, exist_ok=True)
    base = base or base_layer(tree, work)
    fleet = Fleet(tuple(work / f"image-{i:03d}" for i in range(images)), work / "targets.txt", work / "distinct",
                  layers)
    stamp = work / "fleet.done"
    wanted = {"images": images, "layers": layers, "base": base.digest, "tree": str(tree)}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return fleet
    stamp.unlink(missing_ok=True)
    elf = sorted(elf_files_under(tree))
    if len(elf) < 2:
        raise ValueError(f"{tree} holds fewer than two ELF files")
    needed = 2 * images * layers
    picks = [elf[i % len(elf)] for i in range(needed)]
    apps = [[app_layer(picks[2 * (i * layers + k) : 2 * (i * layers + k) + 2], f"app/i{i}/l{k}")
             for k in range(layers)] for i in range(images)]  # fmt: skip
    for layout, own in zip(fleet.images, apps, strict=True):
        write_oci_layout(layout, base, own)
    write_oci_layout(fleet.distinct, base, [layer for own in apps for layer in own])
    fleet.targets_file.write_text("".join(f"oci-dir:{layout}\n" for layout in fleet.images))
    stamp.write_text(json.dumps(wanted))
    return fleet


def _timed(args: list[str], cache: Path) -> tuple[float, float]:
    """(wall s, CPU s of the scan and its workers) of one muslcheck run with an empty cache directory."""
    shutil.rmtree(cache, ignore_errors=True)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", SCAN, *args, "--cache", str(cache)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        err = child.stderr.read().decode(errors="replace") if child.stderr else ""
        sys.exit(f"fleet.py: {' '.join(args[:2])} failed: {err.strip()[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True, help="the benchmark tree (the base layer's content)")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--layers", type=int, default=10, help="app layers per image")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "muslcheck-fleet-bench")
    args = parser.parse_args()
    work = args.work
    try:
        fleet = build_fleet(args.tree, work, args.images, args.layers)
    except ValueError as e:
        sys.exit(f"fleet.py: {e}")
    fleet_time = _timed(["scan", "--targets", str(fleet.targets_file), "-q", "-o", f"json={work / 'fleet.json'}"],
                        work / "cache-fleet")
    distinct = _timed(["scan", f"oci-dir:{fleet.distinct}", "-q", "-o", f"json={work / 'distinct.json'}"],
                      work / "cache-distinct")
    print(f"| case | wall | CPU |\n|---|---|---|\n"
          f"| fleet of {args.images} images ({args.layers} app layers each) | {fleet_time[0]:.2f} s | "
          f"{fleet_time[1]:.2f} s |\n"
          f"| every distinct layer once (one image: the base and {args.images * args.layers} app layers) | "
          f"{distinct[0]:.2f} s | {distinct[1]:.2f} s |\n"
          f"| fleet / distinct | {fleet_time[0] / distinct[0]:.2f} | {fleet_time[1] / distinct[1]:.2f} |")


if __name__ == "__main__":
    main()
