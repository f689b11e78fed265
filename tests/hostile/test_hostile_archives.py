"""Hostile archives: a million members, a ratio bomb, a nesting bomb, lying and garbage headers.

Each ends in a skipped entry naming the limit, in a subprocess measured for peak RSS.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from tests.hostile.hostile_support import RSS_BOUND_MB, run_scan, skipped


def test_a_zip_of_a_million_entries_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "million.jar"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(1_000_000):
            z.writestr(f"c/{i}.class", b"")
    result = run_scan(str(path), work=tmp_path / "w")
    assert "declares 1000000 members" in skipped(result.report)[path.resolve().as_posix()]  # its whole path
    assert result.rc == 1  # unchecked content: the scan does not read as compatible
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED zip of 1,000,000 entries: {result.measured()}")


def test_a_ratio_bomb_and_a_nesting_bomb(tmp_path: Path) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("lib.so", b"\0" * (1 << 30))  # 1 GiB of zeros: about 1 MB compressed
    nested = b"\x7fELF"
    for _ in range(50):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("inner.jar", nested)
        nested = out.getvalue()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "bomb.jar").write_bytes(bomb.getvalue())
    (tree / "deep.jar").write_bytes(nested)
    result = run_scan(str(tree), work=tmp_path / "w")
    reasons = skipped(result.report)
    assert "compression ratio" in reasons["/bomb.jar!/lib.so"]
    assert any("nested" in r and p.startswith("/deep.jar!/inner.jar!/") for p, r in reasons.items())
    assert result.peak_rss_mb < RSS_BOUND_MB, result.measured()
    if os.environ.get("HOSTILE_RECORD"):
        print(f"\nMEASURED 1 GiB ratio bomb and 50-deep nesting: {result.measured()}")


@pytest.mark.parametrize("garbage", [b"PK\x03\x04" + os.urandom(4000), b"PK\x05\x06" + b"\xff" * 18],
                         ids=["random-after-magic", "lying-end-record"])
def test_garbage_archives_are_skipped(tmp_path: Path, garbage: bytes) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "x.war").write_bytes(garbage)
    result = run_scan(str(tree), work=tmp_path / "w")
    assert "/x.war" in skipped(result.report), result.stderr
