"""FsspecStore (the report cache under an fsspec URL) keeps the directory Store's promises: checksummed entries
verified on every read (a bad one is a miss, removed), a size bound, and no use of a prefix it does not own.
fsspec's in-memory filesystem stands in for a bucket."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from muslcheck.cache import FsspecStore, Store, load_report, open_store, save_report
from muslcheck.model.errors import UsageError
from muslcheck.model.report import Report, TargetInfo, Verdict


@pytest.fixture
def url() -> str:
    return f"memory://bucket-{uuid.uuid4().hex}/cache"


def entries(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url)
    return [p for p in fs.find(root) if not p.endswith("CACHEDIR.TAG")]


def test_round_trip_and_corruption_is_a_removed_miss(url: str) -> None:
    store = FsspecStore(url, salt="s")
    report = Report("1.1", "0.1.0", "/x", TargetInfo("1.2.5", None, False, None), Verdict.NATIVE, (), (), ())
    assert save_report(store, "k", report) and load_report(store, "k") == report
    assert FsspecStore(url, salt="other").get("k") is None  # another salt: another entry
    [path] = entries(url)
    fs, _ = fsspec.core.url_to_fs(url)
    data = bytearray(fs.cat_file(path))
    data[-1] ^= 1
    fs.pipe_file(path, bytes(data))
    assert store.get("k") is None
    assert store.stats.corrupt == 1 and "checksum mismatch" in (store.stats.last_error or "")
    assert entries(url) == []


def test_the_size_bound_evicts_the_oldest(url: str) -> None:
    store = FsspecStore(url, salt="s", max_bytes=64 * 1024)
    for i in range(40):
        assert store.put(f"k{i}", bytes(3000))
    assert len(entries(url)) * 4096 <= 64 * 1024
    assert store.get("k39") is not None and store.get("k0") is None
    assert not store.put("huge", bytes(64 * 1024))  # above max_bytes / 8
    assert store.stats.refused == 1


def test_a_prefix_that_is_not_a_cache_is_left_alone(url: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/precious.txt", b"data")
    store = FsspecStore(url, salt="s")
    assert store.disabled is not None and "not a muslcheck cache" in store.disabled
    assert not store.put("k", b"x") and store.prune() == 0
    assert fs.cat_file(f"{root}/precious.txt") == b"data"


def test_open_store_keeps_the_directory_store_for_paths(tmp_path: Path, url: str) -> None:
    assert isinstance(open_store(tmp_path / "a", salt="s"), Store)
    assert isinstance(open_store(f"file://{tmp_path / 'b'}", salt="s"), Store)
    assert isinstance(open_store(url, salt="s"), FsspecStore)
    with pytest.raises(UsageError, match="nosuchproto"):
        open_store("nosuchproto://x/y", salt="s")
