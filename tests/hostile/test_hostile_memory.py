"""The memory bound (issue 7, part 4): a multi-GB image (gzip layers of highly compressible data, a
4 GB member behind the ELF magic, and the real ELF samples) scanned with peak RSS under RSS_BOUND_MB,
measured with getrusage(RUSAGE_CHILDREN) in a driver subprocess (see hostile_support)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.hostile.hostile_support import (
    ELF_HEAD,
    RSS_BOUND_MB,
    Big,
    big_layer_oci_dir,
    need_disk,
    report_paths,
    run_scan,
    skipped,
)
from tests.images import imagebuild as ib


def test_multi_gb_image_stays_under_the_rss_bound(tmp_path: Path, samples_dir: Path) -> None:
    need_disk(tmp_path, 1)
    elves = sorted(p for p in samples_dir.rglob("*") if p.is_file() and not p.is_symlink()
                   and p.read_bytes()[:4] == b"\x7fELF")
    assert len(elves) > 20
    members = [ib.file(f"/samples/{p.relative_to(samples_dir)}", source=p) for p in elves]
    members += [Big("/data/zeros-1", 2 << 30), Big("/data/huge-elf", 4 << 30, ELF_HEAD),
                Big("/data/zeros-2", 1 << 30, b"text, then zeros")]
    layout = big_layer_oci_dir(tmp_path / "image", members, compression="gzip")
    blob_bytes = sum(f.stat().st_size for f in (layout / "blobs/sha256").iterdir())
    assert blob_bytes < 200 << 20  # 7 GB of tar in a small gzip blob
    result = run_scan(f"oci-dir:{layout}", "--include-os-packages", work=tmp_path / "w", timeout=600)
    report = result.report
    assert len(report_paths(report)) == len(elves)
    assert "above the" in skipped(report)["/data/huge-elf"]
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED multi-GB image ({len(elves)} ELF files, 7 GB uncompressed, "
              f"{blob_bytes >> 20} MB gzip): {result.measured()}")


def test_elf_member_just_under_the_cap_is_buffered(tmp_path: Path) -> None:
    """The documented exception to the bound: an ELF member up to MAX_ELF_BYTES (1 GiB) is read into one
    buffer. A hostile 1 GiB - 1 member costs that much memory, and no more."""
    size = (1 << 30) - 1
    layout = big_layer_oci_dir(tmp_path / "image", [Big("/app/almost-1g", size, ELF_HEAD)], compression="gzip")
    result = run_scan(f"oci-dir:{layout}", work=tmp_path / "w", timeout=300)
    report = result.report
    assert "/app/almost-1g" in report_paths(report) | set(skipped(report)), report  # judged or skipped: read
    assert result.peak_rss_mb < RSS_BOUND_MB + (size >> 20), result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED ELF member of 1 GiB - 1: {result.measured()}")
