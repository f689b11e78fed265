"""Issue 17, part 4 (directories): a directory's ELF facts recorded by one scan and used by the next, each file
confirmed by its stat identity and a digest of the pages its read read. A confirmed hit must give the facts a fresh
read gives; every rescan's report must be byte-identical to a scan without any cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from muslcheck import ScanOptions, scan
from muslcheck.apps.registry import module_marks
from muslcheck.cache import Store
from muslcheck.cache.files import StoredFiles
from muslcheck.elf import ElfFacts, read_elf_descriptor
from muslcheck.elf.reader import pages_unchanged
from muslcheck.model.report import Report
from muslcheck.targets.directory import PagesRead
from tests.support import unavailable

MARKS = module_marks()

LIBRARY = r"""
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int foo_version = 3;
const char *foo_name(void) { return "foo"; }
size_t foo_length(const char *s) { return strlen(s) + strnlen(s, 8); }
void foo_print(const char *s) { printf("%s\n", s); }
char *foo_copy(const char *s) { return strdup(s); }
"""
BIG = "#include <string.h>\n" + "\n".join(f"int big_{i}(const char *s) {{ return (int) strlen(s) * {i}; }}"
                                         for i in range(3000))
PROGRAM = r"""
#include <stdio.h>
extern size_t foo_length(const char *s);
extern void foo_print(const char *s);
int main(int argc, char **argv) { foo_print(argv[0]); return (int) foo_length(argv[0]) + argc; }
"""


def _compile(source: str, output: Path, *args: str) -> None:
    c = output.with_suffix(".c")
    c.write_text(source)
    subprocess.run(["gcc", "-O1", "-o", str(output), str(c), *args], check=True, capture_output=True)
    c.unlink()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program and two libraries built by gcc: libfoo (needed by the program, found by its runpath), and
    libbig, whose 3,000 functions spread its symbol tables over many pages."""
    if shutil.which("gcc") is None:
        unavailable("gcc is not installed")
    out = tmp_path_factory.mktemp("built")
    (out / "lib").mkdir()
    (out / "bin").mkdir()
    _compile(LIBRARY, out / "lib" / "libfoo.so.1", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1")
    _compile(BIG, out / "lib" / "libbig.so", "-shared", "-fPIC", "-Wl,-soname,libbig.so")
    _compile(PROGRAM, out / "bin" / "prog", "-L", str(out / "lib"), "-l:libfoo.so.1", "-Wl,-rpath,$ORIGIN/../lib")
    return out


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built tree."""
    copy = tmp_path / "root"
    shutil.copytree(built, copy)
    return copy


@pytest.fixture(autouse=True)
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's clock a minute on, so what a test wrote just now is past the 2 s in which a stat identity is
    not trusted (keys.recently_changed)."""
    now = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: now() + 60 * 10**9)


class Records:
    """Every StoredFiles a scan makes, to count its hits and misses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[StoredFiles] = []
        real = StoredFiles.__init__

        def init(record: StoredFiles, *args: object, **kwargs: object) -> None:
            real(record, *args, **kwargs)  # type: ignore[arg-type]
            self.made.append(record)
        monkeypatch.setattr(StoredFiles, "__init__", init)

    @property
    def last(self) -> StoredFiles:
        return self.made[-1]


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> Records:
    return Records(monkeypatch)


def _scan(root: Path, store: Store | None) -> Report:
    return scan(root, ScanOptions(musl="1.2.5", jobs=1, cache=store))


def _rescan_equals_uncached(root: Path, store: Store) -> Report:
    report = _scan(root, store)
    uncached = _scan(root, None)
    assert report == uncached
    assert report.to_json() == uncached.to_json()  # byte-identical
    return report


def _rewrite(path: Path, data: bytes) -> None:
    """``path`` replaced by ``data`` (a new inode, as a package manager or a build writes it)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def _fresh(path: Path, *, symbols: bool, marks: frozenset[str] | None = None) -> ElfFacts:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_elf_descriptor(fd, symbols=symbols, constructors=False if symbols else None, marks=marks)
    finally:
        os.close(fd)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache", salt="test") as opened:
        yield opened


def test_rescans_take_confirmed_facts_and_report_as_an_uncached_scan(root: Path, store: Store,
                                                                    records: Records) -> None:
    _rescan_equals_uncached(root, store)  # cold: every header read and recorded, the full reads not
    assert records.last.hits == 0 and records.last.misses == 6
    (root / "README").write_text("a change no load reads")
    _rescan_equals_uncached(root, store)  # a rescan looks for the hosts' marks: a cold scan at -j 1 did not
    assert records.last.hits == 0 and records.last.misses == 3  # prog, libfoo.so.1, libbig.so
    libfoo = root / "lib" / "libfoo.so.1"
    original = libfoo.read_bytes()
    _rewrite(libfoo, original + b"\0")  # the same ELF file, one byte longer
    _rescan_equals_uncached(root, store)  # prog's load is judged again: its full reads are recorded now
    assert records.last.hits == 2 and records.last.misses == 3  # libfoo's header; prog's and libfoo's full reads
    _rewrite(libfoo, original)
    _rescan_equals_uncached(root, store)
    assert records.last.hits == 3 and records.last.misses == 2  # prog's full read taken; libfoo's read again
    (root / "README").write_text("another change")
    _rescan_equals_uncached(root, store)
    assert records.last.hits == 3 and records.last.misses == 0


def test_a_confirmed_hit_equals_a_fresh_read(root: Path, store: Store) -> None:
    files = [root / "bin" / "prog", root / "lib" / "libfoo.so.1", root / "lib" / "libbig.so"]
    first = StoredFiles(store, root, MARKS, record_full=True)
    for path in files:
        for symbols in (False, True):
            _through(first, path, symbols=symbols, expect_hit=False)
    assert first.save()
    second = StoredFiles(store, root, MARKS, record_full=True)
    for path in files:
        for symbols in (False, True):
            _through(second, path, symbols=symbols, expect_hit=True)
    assert not second.save()  # nothing new: no put


def _through(record: StoredFiles, path: Path, *, symbols: bool, expect_hit: bool) -> ElfFacts:
    """``path``'s facts through ``record``, asserted equal to a fresh read, a hit or a miss as expected."""
    marks = None if symbols else MARKS
    fd = os.open(path, os.O_RDONLY)
    try:
        hits = record.hits

        def read(pages_read: PagesRead | None) -> ElfFacts:
            return read_elf_descriptor(fd, symbols=symbols, constructors=False if symbols else None, marks=marks,
                                       pages_read=pages_read)
        facts = record.facts(fd, os.fstat(fd), symbols=symbols, marks=marks, read=read)
    finally:
        os.close(fd)
    assert facts == _fresh(path, symbols=symbols, marks=marks)
    assert (record.hits > hits) is expect_hit
    return facts


def test_changed_content_with_the_same_size_and_a_forged_mtime_is_read_again(root: Path, store: Store,
                                                                            records: Records) -> None:
    libfoo = root / "lib" / "libfoo.so.1"
    _rescan_equals_uncached(root, store)
    (root / "README").write_text("a change no load reads")
    _rescan_equals_uncached(root, store)
    before = os.stat(libfoo)
    data = bytearray(libfoo.read_bytes())
    soname = data.index(b"libfoo.so.1\0")
    data[soname : soname + 11] = b"libfox.so.1"  # a header fact (its soname), in place, the same size
    with open(libfoo, "r+b") as f:  # the same inode
        f.write(data)
    os.utime(libfoo, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime forged back; the ctime moves
    report = _rescan_equals_uncached(root, store)
    assert records.last.misses >= 1
    assert _fresh(libfoo, symbols=False).soname == "libfox.so.1"
    assert any(f.path == "/lib/libfoo.so.1" for f in report.files)


def test_the_digest_refuses_a_rewritten_page_even_when_the_identity_matches(root: Path, store: Store) -> None:
    libbig = root / "lib" / "libbig.so"
    record = StoredFiles(store, root, MARKS, record_full=True)
    _through(record, libbig, symbols=True, expect_hit=False)
    assert record.save()
    recorded = os.stat(libbig)
    runs, digest = _pages_of(libbig)
    data = bytearray(libbig.read_bytes())
    page = runs[-2] + runs[-1] - 1  # the last page of the last run the reader read
    inside, outside = page * 4096 + 5, next(p * 4096 + 5 for p in range(len(data) // 4096) if not _in_runs(runs, p))
    with open(libbig, "r+b") as f:
        f.seek(outside)
        f.write(bytes([data[outside] ^ 0xFF]))
        fd = os.open(libbig, os.O_RDONLY)
        try:
            assert pages_unchanged(fd, runs, digest)  # a byte the reader never read: the facts still hold
            f.seek(inside)
            f.write(bytes([data[inside] ^ 0xFF]))
            f.flush()
            assert not pages_unchanged(fd, runs, digest)
            # The identity forged to the recorded one: the digest alone must refuse the recorded facts.
            again = StoredFiles(store, root, MARKS, record_full=True)
            fresh: list[ElfFacts] = []

            def read(pages_read: PagesRead | None) -> ElfFacts:
                fresh.append(read_elf_descriptor(fd, constructors=False, pages_read=pages_read))
                return fresh[-1]
            facts = again.facts(fd, recorded, symbols=True, marks=None, read=read)
        finally:
            os.close(fd)
    assert fresh and facts is fresh[0] and again.hits == 0


def _pages_of(path: Path) -> tuple[tuple[int, ...], bytes]:
    noted: list[tuple[tuple[int, ...], bytes]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        read_elf_descriptor(fd, constructors=False, pages_read=lambda runs, digest: noted.append((runs, digest)))
    finally:
        os.close(fd)
    return noted[0]


def _in_runs(runs: tuple[int, ...], page: int) -> bool:
    return any(first <= page < first + n for first, n in zip(runs[::2], runs[1::2], strict=True))


def test_bad_runs_are_refused(root: Path) -> None:
    libfoo = root / "lib" / "libfoo.so.1"
    runs, digest = _pages_of(libfoo)
    fd = os.open(libfoo, os.O_RDONLY)
    try:
        assert pages_unchanged(fd, runs, digest)
        size = os.fstat(fd).st_size
        for bad in ((*runs, 0), (0, 0), (size // 4096 + 1, 1), (1, 1, 0, 1), (0, 2, 1, 1), (-1, 2), (0, 1 << 70),
                    runs[:-1]):
            assert not pages_unchanged(fd, bad, digest)
    finally:
        os.close(fd)


def test_a_recently_changed_file_is_read_and_not_recorded(root: Path, store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: os.stat(root / "lib" / "libfoo.so.1").st_ctime_ns + 10**9)
    record = StoredFiles(store, root, MARKS, record_full=True)
    _through(record, root / "lib" / "libfoo.so.1", symbols=False, expect_hit=False)
    assert record.misses == 0  # not even counted: the record was not asked
    assert not record.save()


def test_headers_read_without_the_marks_are_not_taken_for_a_read_with_them(root: Path, store: Store) -> None:
    libfoo = root / "lib" / "libfoo.so.1"
    first = StoredFiles(store, root, MARKS, record_full=False)
    fd = os.open(libfoo, os.O_RDONLY)
    try:
        plain = first.facts(fd, os.fstat(fd), symbols=False, marks=None, read=lambda pages_read: read_elf_descriptor(
            fd, symbols=False, pages_read=pages_read))
    finally:
        os.close(fd)
    assert plain.dynstr_marks is None
    assert first.save()
    second = StoredFiles(store, root, MARKS, record_full=False)
    marked = _through(second, libfoo, symbols=False, expect_hit=False)
    assert marked.dynstr_marks is not None


def test_a_corrupt_record_is_a_miss_and_removed(root: Path, store: Store, records: Records) -> None:
    _rescan_equals_uncached(root, store)
    for n in range(2):  # the headers recorded with the hosts' marks, then taken
        (root / "README").write_text(f"change {n}")
        _rescan_equals_uncached(root, store)
    assert records.last.hits == 3
    key = records.last.key
    payload = store.get(key)
    assert payload is not None
    for n, bad in enumerate((payload[:20], b"MCFACTS\0" + b"\xff" * 8 + payload[16:],
                             payload[:16] + b"\0" + payload[17:], b"MCFACTS\0" + payload[8:16] + b"not zlib")):
        assert store.put(key, bad)
        corrupt = store.stats.corrupt
        (root / "README").write_text(f"bad {n}")
        _rescan_equals_uncached(root, store)
        assert records.last.hits == 0 and store.stats.corrupt == corrupt + 1  # a miss; the entry removed
        assert store.get(key) == payload  # and the record stored again


def test_files_no_longer_present_leave_the_record(root: Path, store: Store, records: Records) -> None:
    _rescan_equals_uncached(root, store)
    (root / "lib" / "libbig.so").unlink()
    _rescan_equals_uncached(root, store)
    again = StoredFiles(store, root, MARKS, record_full=False)
    assert len(again._recorded) == 2  # prog and libfoo


def test_a_record_larger_than_the_store_takes_is_not_stored(root: Path, tmp_path: Path, records: Records) -> None:
    data = (root / "lib" / "libfoo.so.1").read_bytes()
    for n in range(150):  # each a digest of its own: more than the 4 KiB a store of 32 KiB takes in one payload
        (root / "lib" / f"libcopy{n}.so").write_bytes(data + bytes(n))
    with Store(tmp_path / "small", salt="test", max_bytes=32 << 10) as small:
        _rescan_equals_uncached(root, small)
        assert small.get(records.last.key) is None
        (root / "README").write_text("a change")
        _rescan_equals_uncached(root, small)
        assert records.last.hits == 0 and small.get(records.last.key) is None
    with Store(tmp_path / "large", salt="test") as large:  # the same record where it fits
        _rescan_equals_uncached(root, large)
        assert large.get(records.last.key) is not None


def test_no_cache_neither_reads_nor_writes_a_record(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a record made without a cache")
    monkeypatch.setattr(StoredFiles, "__init__", refuse)
    assert _scan(root, None).files


def test_a_file_with_holes_is_read_and_not_recorded(root: Path, store: Store) -> None:
    """A sparse file is read with its hole map (SEEK_HOLE), which the bytes of its pages do not stand for."""
    sparse = root / "lib" / "libsparse.so"
    shutil.copy(root / "lib" / "libfoo.so.1", sparse)
    with open(sparse, "r+b") as f:
        f.truncate(os.path.getsize(sparse) + (1 << 20))  # a megabyte of hole at the end
    st = os.stat(sparse)
    if st.st_blocks * 512 >= st.st_size:
        pytest.skip("this filesystem allocated the hole")
    record = StoredFiles(store, root, MARKS, record_full=True)
    _through(record, sparse, symbols=True, expect_hit=False)
    assert record.misses == 0 and not record.save()
