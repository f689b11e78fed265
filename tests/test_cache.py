"""The on-disk cache: entries are verified on every read, bounded, atomic, and never followed out of their directory."""

from __future__ import annotations

import array
import dataclasses
import fcntl
import gc
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from muslcheck import __version__
from muslcheck.cache import codec, keys
from muslcheck.cache.codec import decode_report, encode_report, load_report, save_report
from muslcheck.cache.keys import (
    default_salt,
    recently_changed,
    scan_key,
    sources_digest,
    tables_digest,
)
from muslcheck.cache.store import CacheStats, Store, default_cache_dir
from muslcheck.ldso.tables import tables_dir
from muslcheck.model.options import Context
from muslcheck.model.report import (
    SCHEMA_VERSION,
    Component,
    Ecosystem,
    Effect,
    FileKind,
    FileReport,
    Finding,
    LibraryFinding,
    LoadStep,
    RelocationFinding,
    Report,
    Skip,
    SymbolFinding,
    TargetInfo,
    TlsFinding,
    Verdict,
)
from tests.support import REPO, unavailable

SALT = "test-salt"
HEADER = 8 + 4 + 8 + 32 + 32  # magic, format version, payload length, key digest, payload sha256
BLOCK = 4096


def entry_path(directory: Path, key: str, salt: str = SALT) -> Path:
    """Where the entry for ``key`` lives: the layout docs/cache.md describes."""
    digest = hashlib.sha256(salt.encode() + b"\0" + key.encode()).hexdigest()
    return directory / digest[:2] / digest[2:]


def entry_files(directory: Path) -> list[Path]:
    return sorted(p for sub in directory.iterdir() if sub.is_dir() for p in sub.iterdir())


def accounted_bytes(directory: Path) -> int:
    return sum(-(-p.lstat().st_size // BLOCK) * BLOCK for p in entry_files(directory))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def store(cache_dir: Path) -> Iterator[Store]:
    with Store(cache_dir, salt=SALT) as s:
        yield s


# -- where the cache lives


def test_default_cache_dir_follows_muslcheck_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MUSLCHECK_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "muslcheck"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/invalid")  # the XDG spec: ignored
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "muslcheck"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "muslcheck"
    monkeypatch.setenv("MUSLCHECK_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("MUSLCHECK_CACHE_DIR", "")  # empty: unset
    assert default_cache_dir() == tmp_path / "xdg" / "muslcheck"


# -- the store


def test_put_then_get_returns_the_payload_and_files_are_private(store: Store, cache_dir: Path) -> None:
    assert store.get("k") is None
    assert store.put("k", b"payload")
    assert store.get("k") == b"payload"
    assert store.put("k", b"replaced")
    assert store.get("k") == b"replaced"
    stats = store.stats
    assert isinstance(stats, CacheStats) and dataclasses.is_dataclass(stats)
    assert (stats.hits, stats.misses, stats.writes, stats.corrupt, stats.disabled) == (2, 1, 2, 0, None)
    entry = entry_path(cache_dir, "k")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert (cache_dir / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172789f06886806bc55")
    assert not [p for p in entry_files(cache_dir) if p.name.startswith(".tmp.")]


def test_entry_layout_is_a_checksummed_header_then_the_payload(store: Store, cache_dir: Path) -> None:
    assert store.put("k", b"hello")
    data = entry_path(cache_dir, "k").read_bytes()
    assert len(data) == HEADER + 5
    assert data[:8] == b"MUSLCC\r\n"
    assert int.from_bytes(data[8:12], "little") == 1
    assert int.from_bytes(data[12:20], "little") == 5
    assert data[20:52] == hashlib.sha256(SALT.encode() + b"\0k").digest()
    assert data[52:84] == hashlib.sha256(b"hello").digest()
    assert data[84:] == b"hello"


def test_a_new_salt_misses_and_the_old_one_still_hits(cache_dir: Path) -> None:
    with Store(cache_dir, salt="muslcheck 1; tables A") as old:
        assert old.put("k", b"old result")
    with Store(cache_dir, salt="muslcheck 1; tables B") as new:
        assert new.get("k") is None
        assert new.put("k", b"new result")
        assert new.get("k") == b"new result"
    with Store(cache_dir, salt="muslcheck 1; tables A") as old:
        assert old.get("k") == b"old result"


def test_an_empty_payload_round_trips(store: Store) -> None:
    assert store.put("empty", b"")
    assert store.get("empty") == b""


def test_a_payload_above_an_eighth_of_the_bound_is_refused(cache_dir: Path) -> None:
    with Store(cache_dir, salt=SALT, max_bytes=64 * BLOCK) as s:
        assert s.max_payload == 8 * BLOCK - HEADER
        assert s.put("fits", b"x" * s.max_payload)
        assert not s.put("big", b"x" * (s.max_payload + 1))
        assert s.get("big") is None
        assert s.stats.refused == 1
        assert not entry_path(cache_dir, "big").exists()


def test_closed_store_does_nothing(cache_dir: Path) -> None:
    s = Store(cache_dir, salt=SALT)
    assert s.put("k", b"v")
    s.close()
    assert s.get("k") is None and not s.put("k", b"w") and s.prune() == 0
    assert s.stats.disabled == "closed"
    assert entry_path(cache_dir, "k").exists()


# -- corruption: a miss, the entry removed, and the next put works


def _truncate(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:-3])


def _truncate_header(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:20])


def _flip_payload_byte(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0x01
    entry.write_bytes(bytes(data))


def _flip_checksum_byte(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[60] ^= 0x80
    entry.write_bytes(bytes(data))


def _wrong_magic(entry: Path) -> None:
    entry.write_bytes(b"MUSLCC\n\n" + entry.read_bytes()[8:])


def _wrong_version(entry: Path) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[:8] + (2).to_bytes(4, "little") + data[12:])


def _wrong_length(entry: Path) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[:12] + (len(data) - HEADER - 1).to_bytes(8, "little") + data[20:])


def _extra_bytes(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes() + b"\0")


def _garbage(entry: Path) -> None:
    entry.write_bytes(os.urandom(300))


def _empty(entry: Path) -> None:
    entry.write_bytes(b"")


def _directory(entry: Path) -> None:
    entry.unlink()
    entry.mkdir()
    (entry / "inside").write_bytes(b"x")


def _fifo(entry: Path) -> None:  # opening it for reading would block: it must never be opened
    entry.unlink()
    os.mkfifo(entry)


def _other_keys_entry(entry: Path) -> None:  # a sound entry, but written for another key
    entry.write_bytes(entry_path(entry.parents[1], "other").read_bytes())


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "truncated header": _truncate_header,
    "flipped payload byte": _flip_payload_byte,
    "flipped checksum byte": _flip_checksum_byte,
    "wrong magic": _wrong_magic,
    "wrong format version": _wrong_version,
    "wrong length": _wrong_length,
    "trailing bytes": _extra_bytes,
    "garbage": _garbage,
    "empty file": _empty,
    "directory": _directory,
    "fifo": _fifo,
    "another key's entry": _other_keys_entry,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_entry_is_a_miss_and_is_removed(
    store: Store, cache_dir: Path, corrupt: Callable[[Path], None]
) -> None:
    assert store.put("k", b"the real payload")
    assert store.put("other", b"another payload")
    entry = entry_path(cache_dir, "k")
    corrupt(entry)
    assert store.get("k") is None
    assert not os.path.lexists(entry)
    assert store.stats.corrupt == 1
    assert store.stats.last_error is not None and "corrupt entry" in store.stats.last_error
    assert store.get("other") == b"another payload"
    assert store.put("k", b"rebuilt")
    assert store.get("k") == b"rebuilt"


def test_an_entry_owned_by_another_user_is_not_trusted(store: Store, cache_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    assert store.put("k", b"payload")
    os.chown(entry_path(cache_dir, "k"), 12345, 12345)
    assert store.get("k") is None
    assert store.stats.corrupt == 1
    assert not entry_path(cache_dir, "k").exists()


def test_a_symlinked_entry_is_never_followed(store: Store, cache_dir: Path, tmp_path: Path) -> None:
    assert store.put("k", b"payload")
    entry = entry_path(cache_dir, "k")
    outside = tmp_path / "outside-entry"
    outside.write_bytes(entry.read_bytes())  # a sound entry: reading it through the link would be a hit
    entry.unlink()
    entry.symlink_to(outside)
    assert store.get("k") is None
    assert not os.path.lexists(entry)
    assert outside.read_bytes()[HEADER:] == b"payload"  # untouched
    assert store.put("k", b"new")
    assert not entry.is_symlink() and store.get("k") == b"new"
    assert outside.read_bytes()[HEADER:] == b"payload"


def test_a_symlinked_fanout_directory_is_never_followed(store: Store, cache_dir: Path, tmp_path: Path) -> None:
    assert store.put("k", b"payload")
    entry = entry_path(cache_dir, "k")
    outside = tmp_path / "outside"
    shutil.copytree(entry.parent, outside)
    shutil.rmtree(entry.parent)
    entry.parent.symlink_to(outside)
    assert store.get("k") is None  # the sound entry behind the link is not read
    assert store.put("k", b"new")  # and not written through the link
    assert not entry.parent.is_symlink() and store.get("k") == b"new"
    assert (outside / entry.name).read_bytes()[HEADER:] == b"payload"
    assert sorted(p.name for p in outside.iterdir()) == [entry.name]


def test_an_entry_replaced_by_a_directory_is_replaced_by_the_next_put(store: Store, cache_dir: Path) -> None:
    assert store.put("k", b"payload")
    _directory(entry_path(cache_dir, "k"))
    assert store.put("k", b"new")
    assert store.get("k") == b"new"


# -- the bound, least recently used first


def _age(entry: Path, seconds_ago: int) -> None:
    then = os.stat(entry).st_mtime_ns - seconds_ago * 10**9
    os.utime(entry, ns=(then, then))


def test_the_bound_evicts_least_recently_used_entries_first(cache_dir: Path) -> None:
    with Store(cache_dir, salt=SALT, max_bytes=16 * BLOCK) as s:
        payload = b"x" * (BLOCK - HEADER)  # exactly one block per entry
        for n in range(16):
            assert s.put(f"k{n}", payload)
            assert accounted_bytes(cache_dir) <= s.max_bytes
        for n in range(16):  # k0 oldest ... k15 newest, all older than the touch threshold
            _age(entry_path(cache_dir, f"k{n}"), 1000 - n)
        assert s.get("k0") == payload  # a hit makes k0 the most recently used
        assert s.put("k16", payload)  # 17 blocks: evicts down to 7/8 of the bound
        assert accounted_bytes(cache_dir) <= s.max_bytes * 7 // 8
        present = {n for n in range(17) if entry_path(cache_dir, f"k{n}").exists()}
        assert present == {0, *range(4, 17)}
        assert s.stats.evicted == 3


def test_the_entry_just_written_is_never_the_one_evicted(cache_dir: Path) -> None:
    with Store(cache_dir, salt=SALT, max_bytes=16 * BLOCK) as s:
        payload = b"x" * (BLOCK - HEADER)
        for n in range(16):
            assert s.put(f"k{n}", payload)
            _age(entry_path(cache_dir, f"k{n}"), -1000)  # in the future: newer than anything written next
        assert s.put("new", payload)
        assert s.get("new") == payload
        assert accounted_bytes(cache_dir) <= s.max_bytes * 7 // 8


def test_many_puts_of_varied_sizes_stay_under_the_bound(cache_dir: Path) -> None:
    with Store(cache_dir, salt=SALT, max_bytes=32 * BLOCK) as s:
        for n in range(200):
            assert s.put(f"k{n}", bytes(n * 37 % s.max_payload))
            assert accounted_bytes(cache_dir) <= s.max_bytes
        assert s.get("k199") == bytes(199 * 37 % s.max_payload)
        assert s.stats.evicted > 0


def test_trim_removes_what_is_not_an_entry_but_keeps_fresh_temporary_files(store: Store, cache_dir: Path) -> None:
    assert store.put("k", b"payload")
    fanout = entry_path(cache_dir, "k").parent
    (fanout / ("0" * 62)).symlink_to("/etc/passwd")
    (fanout / "a-directory").mkdir()
    (fanout / "stray-file").write_bytes(b"x")
    stale = fanout / ".tmp.1.stale"
    stale.write_bytes(b"left over by a crash")
    _age(stale, 7200)
    fresh = fanout / ".tmp.2.fresh"
    fresh.write_bytes(b"another writer, in flight")
    store.trim()
    assert sorted(p.name for p in fanout.iterdir()) == sorted([entry_path(cache_dir, "k").name, fresh.name])
    assert store.get("k") == b"payload"


# -- prune


def test_prune_removes_every_entry_of_every_salt_and_nothing_else(cache_dir: Path) -> None:
    with Store(cache_dir, salt="one") as one, Store(cache_dir, salt="two") as two:
        sizes = 0
        for n in range(20):
            assert one.put(f"k{n}", bytes(n * 10)) and two.put(f"k{n}", bytes(n))
            sizes += 2 * HEADER + n * 10 + n
        (cache_dir / "notes.txt").write_text("not ours")  # a file muslcheck did not write is left alone
        assert one.prune() == sizes
        assert one.get("k1") is None and two.get("k1") is None
        assert sorted(p.name for p in cache_dir.iterdir()) == ["CACHEDIR.TAG", "notes.txt"]
        assert one.put("k1", b"again") and one.get("k1") == b"again"


# -- a directory that cannot or must not be used


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """No file can be created in ``directory`` (as root too: the immutable attribute)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    fs_ioc_getflags, fs_ioc_setflags, fs_immutable_fl = 0x80086601, 0x40086602, 0x10
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        try:
            fcntl.ioctl(fd, fs_ioc_getflags, flags, True)
            flags[0] |= fs_immutable_fl
            fcntl.ioctl(fd, fs_ioc_setflags, flags)
        except OSError as e:
            pytest.skip(f"running as root and cannot make a directory immutable here: {e}")
        try:
            yield
        finally:
            flags[0] &= ~fs_immutable_fl
            fcntl.ioctl(fd, fs_ioc_setflags, flags)
    finally:
        os.close(fd)


def test_an_unwritable_directory_means_no_caching_not_an_error(cache_dir: Path) -> None:
    with Store(cache_dir, salt=SALT) as s:
        with read_only(cache_dir):
            assert not s.put("k", b"payload")
            assert s.get("k") is None
            s.trim()
        stats = s.stats
        assert stats.write_errors == 1 and stats.writes == 0
        assert stats.last_error is not None and stats.last_error.startswith(f"cannot write to {cache_dir}")
        assert any(reason in stats.last_error for reason in ("Permission denied", "Operation not permitted"))
        assert s.put("k", b"payload") and s.get("k") == b"payload"  # writable again


FULL_DISK = """
import json, resource, signal, sys
from muslcheck.cache import Store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG, as on a full disk
store = Store(sys.argv[1], salt="s")
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
stored = store.put("k", b"x" * 100000)
print(json.dumps({"stored": stored, "hit": store.get("k") is not None, "errors": store.stats.write_errors,
                  "last_error": store.stats.last_error}))
"""


def test_a_full_disk_means_no_caching_and_no_temporary_file_left(cache_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(cache_dir)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["stored"] is False and result["hit"] is False and result["errors"] == 1
    assert "File too large" in result["last_error"]
    assert entry_files(cache_dir) == []  # the partial temporary file was removed
    with Store(cache_dir, salt="s") as s:
        assert s.put("k", b"x" * 100000) and s.get("k") == b"x" * 100000


def test_a_path_that_cannot_be_a_directory_disables_the_cache(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    s = Store(tmp_path / "file" / "cache", salt=SALT)
    assert not s.enabled
    assert s.stats.disabled is not None and "Not a directory" in s.stats.disabled
    assert s.get("k") is None and not s.put("k", b"v") and s.prune() == 0 and s.trim() == 0
    s.close()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o702])
def test_a_directory_writable_by_others_disables_the_cache(cache_dir: Path, mode: int) -> None:
    cache_dir.mkdir()
    cache_dir.chmod(mode)
    with Store(cache_dir, salt=SALT) as s:
        assert not s.enabled
        assert s.stats.disabled is not None and "writable by others" in s.stats.disabled
        assert not s.put("k", b"v") and s.get("k") is None
    assert list(cache_dir.iterdir()) == []  # not even the tag


def test_a_directory_owned_by_another_user_disables_the_cache(cache_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 12345, 12345)
    with Store(cache_dir, salt=SALT) as s:
        assert s.stats.disabled is not None and "owned by uid 12345" in s.stats.disabled
        assert not s.put("k", b"v")
    assert list(cache_dir.iterdir()) == []


def test_a_non_empty_directory_without_the_tag_is_not_adopted(cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "precious").write_text("someone's file")
    with Store(cache_dir, salt=SALT) as s:
        assert s.stats.disabled is not None and "not a muslcheck cache" in s.stats.disabled
        assert s.prune() == 0
    assert sorted(p.name for p in cache_dir.iterdir()) == ["precious"]


def test_an_empty_existing_directory_is_adopted(cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o755)  # not writable by others: fine
    with Store(cache_dir, salt=SALT) as s:
        assert s.enabled
        assert s.put("k", b"v") and s.get("k") == b"v"
    assert (cache_dir / "CACHEDIR.TAG").is_file()


def test_a_symlink_to_an_own_directory_is_a_valid_cache_location(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    real.mkdir(mode=0o700)
    with Store(tmp_path / "link", salt=SALT) as s:
        assert s.put("k", b"v") and s.get("k") == b"v"
    assert entry_path(real, "k").is_file()


# -- two processes


WRITER = """
import sys
from muslcheck.cache import Store
store = Store(sys.argv[1], salt="race")
payload = sys.argv[2].encode() * (1 << 20)
stored = sum(store.put("shared", payload) for _ in range(int(sys.argv[3])))
print(stored, store.stats.write_errors)
"""


def test_two_processes_writing_the_same_key_leave_a_valid_entry(cache_dir: Path) -> None:
    rounds = 40
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with Store(cache_dir, salt="race") as reader:  # creates the directory before the writers race for it
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(cache_dir), fill, str(rounds)],
                                    stdout=subprocess.PIPE, text=True, env=env) for fill in "AB"]
        valid = {b"A" * (1 << 20), b"B" * (1 << 20)}
        while any(w.poll() is None for w in writers):  # read while both write: never a mix, never corrupt
            got = reader.get("shared")
            assert got is None or got in valid
        outputs = [w.communicate()[0].split() for w in writers]
        assert [w.returncode for w in writers] == [0, 0]
        assert outputs == [[str(rounds), "0"], [str(rounds), "0"]]
        final = reader.get("shared")
        assert final in valid
        assert reader.stats.corrupt == 0
    assert [p for p in entry_files(cache_dir) if p.name.startswith(".tmp.")] == []



# -- keys


def test_recently_changed_files_are_not_to_be_trusted(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    st = os.stat(path)
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    assert recently_changed(st, now_ns=changed)
    assert recently_changed(st, now_ns=changed + keys.RACY_WINDOW_NS - 1)
    assert not recently_changed(st, now_ns=changed + keys.RACY_WINDOW_NS)


def test_scan_key_is_canonical_over_options() -> None:
    config = "sha256:" + "ab" * 32
    key = scan_key(config, {"musl": "1.2.5", "gcompat": False, "preload": ("a", "b"), "context": None})
    assert key == scan_key(config, {"context": None, "preload": ["a", "b"], "gcompat": False, "musl": "1.2.5"})
    assert key != scan_key(config, {"musl": "1.2.4", "gcompat": False, "preload": ("a", "b"), "context": None})
    assert key != scan_key(config, {"musl": "1.2.5", "gcompat": True, "preload": ("a", "b"), "context": None})
    assert key != scan_key(config, {"musl": "1.2.5", "gcompat": False, "preload": ("b", "a"), "context": None})
    assert key != scan_key("sha256:" + "cd" * 32, {"musl": "1.2.5", "gcompat": False, "preload": ("a", "b"),
                                                   "context": None})
    assert scan_key(config, {"n": 1}) != scan_key(config, {"n": "1"}) != scan_key(config, {"n": True})
    with pytest.raises(TypeError):
        scan_key(config, {"path": Path("/x")})
    with pytest.raises(ValueError):
        scan_key(config, {"x": float("nan")})


def test_tables_digest_covers_names_and_bytes_of_json_tables(tmp_path: Path) -> None:
    def digest_of(files: dict[str, bytes]) -> str:
        directory = tmp_path / str(len(list(tmp_path.iterdir())))
        directory.mkdir()
        for name, content in files.items():
            (directory / name).write_bytes(content)
        return tables_digest(directory)

    base = digest_of({"musl-1.2.5-x86_64.json": b"{}", "loader.json": b"[1]"})
    assert base == digest_of({"loader.json": b"[1]", "musl-1.2.5-x86_64.json": b"{}"})
    assert base == digest_of({"loader.json": b"[1]", "musl-1.2.5-x86_64.json": b"{}", "generate.py": b"# code"})
    assert base != digest_of({"musl-1.2.5-x86_64.json": b"{} ", "loader.json": b"[1]"})
    assert base != digest_of({"musl-1.2.6-x86_64.json": b"{}", "loader.json": b"[1]"})
    assert base != digest_of({"musl-1.2.5-x86_64.json": b"{}", "loader.json": b"[1]", "alpine.json": b"{}"})
    assert base != digest_of({"musl-1.2.5-x86_64.json": b"{}loader.json", "loader.json": b""})


def test_sources_digest_covers_paths_and_bytes_of_every_python_file_below(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "cache").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cache" / "keys.py").write_text("x = 1\n")
    (package / "notes.txt").write_text("not code")
    base = sources_digest(package)
    (package / "notes.txt").write_text("still not code")
    assert sources_digest(package) == base
    (package / "cache" / "keys.py").write_text("x = 2\n")
    changed = sources_digest(package)
    assert changed != base
    (package / "cache" / "keys.py").rename(package / "cache" / "store.py")
    assert sources_digest(package) not in (base, changed)


def test_code_digest_is_the_digest_of_the_whole_package() -> None:
    """Not of the cache folder it sits in, nor of the checkout: every module of muslcheck/, and only those."""
    assert keys.code_digest.__wrapped__() == sources_digest(REPO / "muslcheck")


def test_default_salt_names_the_version_code_and_real_tables() -> None:
    salt = default_salt()
    assert salt == default_salt(tables_dir())
    assert f"muslcheck {__version__};" in salt
    assert tables_digest(tables_dir().resolve()) in salt
    assert keys.code_digest() in salt and len(keys.code_digest()) == 64
    assert f"codec {codec.CODEC_VERSION}" in salt


# -- the report codec


def _report() -> Report:
    symbol = SymbolFinding("mem\udcffcpy", "GLIBC_2.14", False, ("R_X86_64_JUMP_SLOT",), True, Effect.FATAL, "/a",
                           "libc.so.6", True, None)
    finding = Finding("unresolved-symbol", "MC003", Verdict.BLOCKED, "/a", "/a", "memcpy", "m", "fix", "accepted")
    file = FileReport(
        path="/a", arch="x86_64", kind=FileKind.EXECUTABLE, context=Context.EXECUTABLE, verdict=Verdict.BLOCKED,
        interpreter="/lib64/ld-linux-x86-64.so.2", soname=None, needed=("libc.so.6",),
        missing_libraries=(LibraryFinding("libz.so.1", "/a", "not found", "zlib"),),
        unresolved_symbols=(symbol,), weak_unresolved=("__gmon_start__",),
        unsupported_relocations=(RelocationFinding(37, "R_X86_64_IRELATIVE", 2, "/a"),),
        tls_errors=(TlsFinding(None, "/a", "/b"),), notes=("n",), fixes=("apk add gcompat",), findings=(finding,),
        aliases=("/b",), load_order=(LoadStep("libc.so.6", "/lib/libc.so.6", "default path", ("x -> y",)),),
    )
    component = Component("a", None, Ecosystem.FILE, "/a", Verdict.BLOCKED, ("/a",), {"x86_64": "/a"}, "fix")
    return Report(SCHEMA_VERSION, __version__, "./root", TargetInfo("1.2.5", "3.21", False, None), Verdict.BLOCKED,
                  (file,), (component,), (Skip("/é", "malformed", True), Skip("/d", "link", False)), ("note",), "/r")


def test_a_report_round_trips(store: Store) -> None:
    report = _report()
    assert decode_report(encode_report(report)) == report == Report.from_json(report.to_json())
    key = scan_key("sha256:" + "00" * 32, {"musl": "1.2.5"})
    assert save_report(store, key, report)
    assert load_report(store, key) == report


def test_names_that_are_not_utf8_are_written_escaped_and_others_as_utf8() -> None:
    """orjson writes the payload unless a name holds a surrogate (a path that is not UTF-8), which it refuses: the
    json module writes that payload, escaped; both decode to the same report."""
    undecodable = _report()
    assert "\udcff" in undecodable.files[0].unresolved_symbols[0].name
    symbol = dataclasses.replace(undecodable.files[0].unresolved_symbols[0], name="memcpy")
    utf8 = dataclasses.replace(undecodable, files=(dataclasses.replace(undecodable.files[0],
                                                                      unresolved_symbols=(symbol,)),))
    escaped, raw = zlib.decompress(encode_report(undecodable)), zlib.decompress(encode_report(utf8))
    assert escaped.isascii() and b"\\udcff" in escaped and b"\\u00e9" in escaped
    assert "/é".encode() in raw
    assert decode_report(zlib.compress(escaped)) == undecodable
    assert decode_report(zlib.compress(raw)) == utf8


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was_after_a_decode_even_a_failed_one(enabled: bool) -> None:
    payload = encode_report(_report())
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert decode_report(payload) == _report()
        assert gc.isenabled() is enabled
        with pytest.raises(codec._CorruptPayload):
            decode_report(payload[:-5])
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_an_empty_report_round_trips() -> None:
    empty = Report(SCHEMA_VERSION, __version__, "", TargetInfo("1.2.5", None, True, "aarch64"),
                   Verdict.NOTHING_TO_CHECK, (), (), ())
    assert decode_report(encode_report(empty)) == empty


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A shared library (TLS, versioned exports, imports) and a PIE executable that needs it, built with gcc."""
    if shutil.which("gcc") is None:
        unavailable("gcc is not installed")
    out = tmp_path_factory.mktemp("cache-elf")
    (out / "lib.c").write_text(
        "#include <stdio.h>\n#include <string.h>\n"
        "__thread int counter;\n"
        "int exported(const char *s) { counter++; return printf(\"%zu\\n\", strlen(s)); }\n"
        "int old_api(void) { return 1; }\n"
        "char buffer[64];\n"
    )
    (out / "lib.map").write_text("LIBX_1.0 { global: exported; buffer; old_api; local: *; };\n")
    (out / "main.c").write_text("int exported(const char *);\nint main(void) { return exported(\"hi\"); }\n")
    gcc = ["gcc", "-O1", "-o"]
    subprocess.run([*gcc, "libx.so", "-shared", "-fPIC", "-Wl,-soname,libx.so.1",
                    "-Wl,--version-script=lib.map", "-Wl,-rpath,$ORIGIN", "lib.c"], cwd=out, check=True)
    subprocess.run([*gcc, "main", "-pie", "-fPIE", "main.c", "-L.", "-lx", "-Wl,-z,now"], cwd=out, check=True)
    return [out / "libx.so", out / "main"]


def test_a_real_scan_report_round_trips(compiled: list[Path], tmp_path: Path) -> None:
    from muslcheck import scan

    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    for path in compiled:
        shutil.copy(path, root / "app" / path.name)
    report = scan(root)
    assert len(report.files) == 2
    assert decode_report(encode_report(report)) == report == Report.from_json(report.to_json())


def test_decoded_repeated_strings_are_shared_objects() -> None:
    base = _report()
    findings = tuple(dataclasses.replace(base.files[0].findings[0], rule="".join(["unresolved-", "symbol"]))
                     for _ in range(3))
    assert findings[0].rule is not findings[2].rule
    report = dataclasses.replace(base, files=(dataclasses.replace(base.files[0], findings=findings),))
    decoded = decode_report(encode_report(report)).files[0].findings
    assert decoded == findings
    assert decoded[0].rule is decoded[2].rule


@dataclasses.dataclass(frozen=True)
class _Inner:
    name: str


@dataclasses.dataclass(frozen=True)
class _NestedTuples:
    rows: tuple[_Inner, ...]
    names: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True)
class _Row:
    inner: _Inner  # one object per row of a table: decoded row by row


@dataclasses.dataclass(frozen=True)
class _Table:
    rows: tuple[_Row, ...]


def test_nested_tuples_and_a_dataclass_per_row_have_checked_forms() -> None:
    """Shapes the columnar codec once refused (the layer records need them): each item is decoded and checked on its
    own, and a wrong item type is refused."""
    nested = _NestedTuples((_Inner("x"),), (("a",), ()))
    assert codec._decode(_NestedTuples, codec._encode(_NestedTuples, nested)) == nested
    table = _Table((_Row(_Inner("x")), _Row(_Inner("y"))))
    assert codec._decode(_Table, codec._encode(_Table, table)) == table
    document = json.loads(zlib.decompress(codec._encode(_NestedTuples, nested)))
    document[3][1] = [["a"], [1]]  # an int where a name is
    with pytest.raises(ValueError, match="bad item list"):
        codec._decode(_NestedTuples, _packed(document))


def _packed(document: Any) -> bytes:
    return zlib.compress(json.dumps(document).encode())


def _document() -> list[Any]:
    document: list[Any] = json.loads(zlib.decompress(encode_report(_report())))
    return document


def _mutated(change: Callable[[list[Any]], None]) -> bytes:
    document = _document()
    change(document)
    return _packed(document)


def _column(cls: type, name: str) -> int:
    """Where a field's column sits in an encoded table of ``cls`` (after the row count)."""
    return [f.name for f in dataclasses.fields(cls)].index(name) + 1


def _files(document: list[Any]) -> list[Any]:
    files: list[Any] = document[3][FILES]
    return files


def _file_column(name: str) -> Callable[[list[Any]], list[Any]]:
    def column(document: list[Any]) -> list[Any]:
        found: list[Any] = _files(document)[_column(FileReport, name)]
        return found
    return column


def _relocation_column(name: str) -> Callable[[list[Any]], list[Any]]:
    def column(document: list[Any]) -> list[Any]:
        found: list[Any] = _file_column("unsupported_relocations")(document)[1][_column(RelocationFinding, name)]
        return found
    return column


def _selected(document: list[Any]) -> list[Any]:
    found: list[Any] = document[3][COMPONENTS][_column(Component, "selected")]
    return found


FILES, COMPONENTS = 5, 6  # positions in the Report row
PATH, INTERPRETER, NEEDED, VERDICT, FINDINGS = map(_file_column, ("path", "interpreter", "needed", "verdict",
                                                                  "findings"))
RELOCATION_TYPE, RELOCATION_COUNT = _relocation_column("type"), _relocation_column("count")
MUTATIONS: dict[str, Callable[[], bytes]] = {
    "not zlib": lambda: b"[]",
    "truncated zlib": lambda: encode_report(_report())[:-5],
    "trailing data": lambda: encode_report(_report()) + b"\0",
    "not JSON": lambda: zlib.compress(b"[1, 2"),
    "not UTF-8": lambda: zlib.compress(b"\xff\xfe[]"),
    "not a list": lambda: zlib.compress(b"{}"),
    "deep nesting": lambda: zlib.compress(b"[" * 100000 + b"]" * 100000),
    "another codec version": lambda: _mutated(lambda d: d.__setitem__(0, 99)),
    "another Report shape": lambda: _mutated(lambda d: d.__setitem__(1, "0" * 16)),
    "string table with a number": lambda: _mutated(lambda d: d[2].append(5)),
    "unknown verdict": lambda: _mutated(lambda d: d[3].__setitem__(4, "maybe")),
    "unknown file verdict": lambda: _mutated(lambda d: VERDICT(d).__setitem__(0, "maybe")),
    "str for int": lambda: _mutated(lambda d: RELOCATION_COUNT(d).__setitem__(0, "2")),
    "bool for int": lambda: _mutated(lambda d: RELOCATION_TYPE(d).__setitem__(0, True)),
    "float for int": lambda: _mutated(lambda d: RELOCATION_COUNT(d).__setitem__(0, 2.0)),
    "int for bool": lambda: _mutated(lambda d: d[3][3].__setitem__(2, 0)),
    "int for optional str": lambda: _mutated(lambda d: d[3][3].__setitem__(1, 5)),
    "object for tuple": lambda: _mutated(lambda d: d[3].__setitem__(8, {"a": 1})),
    "list for str": lambda: _mutated(lambda d: d[3].__setitem__(2, ["x"])),
    "int in a str tuple": lambda: _mutated(lambda d: NEEDED(d)[1].__setitem__(0, 1)),
    "int for a dict value": lambda: _mutated(lambda d: _selected(d)[0].__setitem__("x86_64", 1)),
    "list for a dict": lambda: _mutated(lambda d: _selected(d).__setitem__(0, [])),
    "str for an object": lambda: _mutated(lambda d: d[3].__setitem__(3, "x")),
    "short row": lambda: _mutated(lambda d: d[3].pop()),
    "missing column": lambda: _mutated(lambda d: _files(d).pop()),
    "row count too high": lambda: _mutated(lambda d: _files(d).__setitem__(0, 2)),
    "negative row count": lambda: _mutated(lambda d: _files(d).__setitem__(0, -1)),
    "string index out of range": lambda: _mutated(lambda d: PATH(d).__setitem__(0, len(d[2]))),
    "None index in a required string": lambda: _mutated(lambda d: PATH(d).__setitem__(0, -1)),
    "index below None": lambda: _mutated(lambda d: INTERPRETER(d).__setitem__(0, -2)),
    "bool string index": lambda: _mutated(lambda d: PATH(d).__setitem__(0, True)),
    "nested counts do not add up": lambda: _mutated(lambda d: NEEDED(d)[0].__setitem__(0, 5)),
    "negative nested count": lambda: _mutated(lambda d: NEEDED(d)[0].__setitem__(0, -1)),
    "findings count off": lambda: _mutated(lambda d: FINDINGS(d)[0].__setitem__(0, 2)),
}


def test_the_mutations_hit_the_fields_they_name() -> None:
    document = _document()
    strings, row = document[2], document[3]
    assert row[2] == "./root" and row[3] == ["1.2.5", "3.21", False, None] and row[4] == "blocked"
    assert row[8] == ["note"]
    assert _files(document)[0] == 1 and VERDICT(document) == ["blocked"]
    assert strings[PATH(document)[0]] == "/a" and strings[INTERPRETER(document)[0]] == "/lib64/ld-linux-x86-64.so.2"
    assert NEEDED(document) == [[1], ["libc.so.6"]]
    assert RELOCATION_TYPE(document) == [37] and RELOCATION_COUNT(document) == [2]
    assert FINDINGS(document)[0] == [1]
    assert _selected(document) == [{"x86_64": "/a"}]
    assert decode_report(_packed(document)) == _report()  # unchanged, the document decodes


@pytest.mark.parametrize("payload", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_payload_of_the_wrong_shape_does_not_decode(payload: Callable[[], bytes]) -> None:
    with pytest.raises(codec._CorruptPayload):
        decode_report(payload())


def test_an_undecodable_payload_behind_a_sound_checksum_is_a_miss_and_removed(store: Store, cache_dir: Path) -> None:
    assert store.put("report", b"sound checksum, not a report")
    assert load_report(store, "report") is None
    assert not entry_path(cache_dir, "report").exists()
    assert store.stats.corrupt == 1


def test_a_corrupt_entry_never_reaches_a_decoder(
    store: Store, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert save_report(store, "k", _report())
    _flip_payload_byte(entry_path(cache_dir, "k"))

    def must_not_run(payload: bytes) -> Report:
        raise AssertionError("decoded an entry whose checksum failed")

    monkeypatch.setattr(codec, "decode_report", must_not_run)
    assert load_report(store, "k") is None
    assert store.stats.corrupt == 1
