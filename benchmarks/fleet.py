"""Issue 17's fleet case: N images on one base, each with its own app layers, scanned as one fleet on this machine,
against one scan of every distinct layer once (the base with all the app layers stacked in one image).

    python3 benchmarks/fleet.py --tree ~/.cache/muslcheck-bench/work/tree [--images 50] [--layers 10] [--work DIR]

The base is the tree as one gzip layer; each app layer holds two of the tree's ELF files (a different pair in each
layer, renamed, so every app layer is distinct content). Each image is an OCI layout (``oci-dir:``); the base blob
is one file hard-linked into every layout (50 copies of a 450 MB blob would not fit). So the base blob is hashed
once for the whole fleet (the store remembers a file by its stat identity), as it would be fetched once from a
registry. Both runs start with an empty cache directory, use the default ``--jobs``, and write JSON.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import elf_files_under

SCAN = "import sys; from muslcheck.cli import main; sys.argv[0] = 'muslcheck'; sys.exit(main())"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _put(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return "sha256:" + digest


def _base_layer(tree: Path, work: Path) -> tuple[Path, str, str]:
    """(the gzip blob of the whole tree, its digest, its diff_id), built once."""
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
    return blob, digest, diff_id_hex


def _app_layer(files: list[Path], prefix: str) -> tuple[bytes, str]:
    """(gzip blob, diff_id) of a layer holding ``files`` under ``prefix``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i, f in enumerate(files):
            tar.add(f, arcname=f"{prefix}/{i}-{f.name}")
    data = raw.getvalue()
    return gzip.compress(data, 1, mtime=0), "sha256:" + hashlib.sha256(data).hexdigest()


def _layout(layout: Path, base: tuple[Path, str, str], apps: list[tuple[bytes, str]]) -> None:
    shutil.rmtree(layout, ignore_errors=True)
    (layout / "blobs/sha256").mkdir(parents=True)
    blob, digest, diff_id = base
    os.link(blob, layout / "blobs/sha256" / digest.removeprefix("sha256:"))
    layers = [{"mediaType": LAYER, "digest": digest, "size": blob.stat().st_size}]
    for data, _ in apps:
        layers.append({"mediaType": LAYER, "digest": _put(layout, data), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id, *(d for _, d in apps)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _put(layout, config),
                   "size": len(config)},
        "layers": layers}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": _put(layout, manifest), "size": len(manifest)}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


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
    work.mkdir(parents=True, exist_ok=True)
    base = _base_layer(args.tree, work)
    elf = sorted(elf_files_under(args.tree))
    needed = 2 * args.images * args.layers
    if len(elf) < 2:
        sys.exit("fleet.py: the tree holds fewer than two ELF files")
    picks = [elf[i % len(elf)] for i in range(needed)]
    apps = [[_app_layer(picks[2 * (i * args.layers + k): 2 * (i * args.layers + k) + 2], f"app/i{i}/l{k}")
             for k in range(args.layers)] for i in range(args.images)]
    targets = []
    for i, layers in enumerate(apps):
        _layout(work / f"image-{i:03d}", base, layers)
        targets.append(f"oci-dir:{work / f'image-{i:03d}'}")
    _layout(work / "distinct", base, [layer for layers in apps for layer in layers])
    (work / "targets.txt").write_text("\n".join(targets) + "\n")
    fleet = _timed(["scan", "--targets", str(work / "targets.txt"), "-q", "-o", f"json={work / 'fleet.json'}"],
                   work / "cache-fleet")
    distinct = _timed(["scan", f"oci-dir:{work / 'distinct'}", "-q", "-o", f"json={work / 'distinct.json'}"],
                      work / "cache-distinct")
    print(f"| case | wall | CPU |\n|---|---|---|\n"
          f"| fleet of {args.images} images ({args.layers} app layers each) | {fleet[0]:.2f} s | {fleet[1]:.2f} s |\n"
          f"| every distinct layer once (one image: the base and {args.images * args.layers} app layers) | "
          f"{distinct[0]:.2f} s | {distinct[1]:.2f} s |\n"
          f"| fleet / distinct | {fleet[0] / distinct[0]:.2f} | {fleet[1] / distinct[1]:.2f} |")


if __name__ == "__main__":
    main()
