"""Hostile package databases and metadata files (issue 18, parts 1 and 2): an rpm sqlite database whose
``Packages`` is a view, a generated column or simply too slow; dpkg status files, JAR manifests and WHEEL files
built to make a parser quadratic or to expand into millions of tags.

Linear time is asserted by scaling the input 4x: the CPU time of the parse (best of three, so another process
on the machine cannot inflate it) must grow by less than 8x, where the quadratic code grew 16x.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from muslcheck.apps import maven, python
from muslcheck.ldso.facts import FactsCache
from muslcheck.targets import osdb
from muslcheck.targets.directory import DirectoryRoot


def _rpm_root(tmp_path: Path, *statements: str) -> DirectoryRoot:
    db_path = tmp_path / "var/lib/rpm/rpmdb.sqlite"
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()
    assert db_path.stat().st_size < 256 << 10
    root = DirectoryRoot(tmp_path)
    FactsCache(root)
    return root


def test_a_recursive_view_named_packages_is_never_run(tmp_path: Path) -> None:
    root = _rpm_root(tmp_path, "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                               "FROM c) SELECT randomblob(1000000) AS blob FROM c")
    [note] = osdb.read_ownership(root).notes
    assert "Packages is not a table" in note


def test_a_generated_blob_column_is_never_computed(tmp_path: Path) -> None:
    root = _rpm_root(tmp_path, "CREATE TABLE Packages (x, blob AS (zeroblob(900000000)))",
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50) "
                     "INSERT INTO Packages (x) SELECT x FROM c")
    [note] = osdb.read_ownership(root).notes
    assert "no stored blob column" in note


def test_each_query_is_interrupted_past_its_instruction_budget(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = _rpm_root(tmp_path, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) "
                     "INSERT INTO Packages (blob) SELECT x'00' FROM c")
    monkeypatch.setattr(osdb, "MAX_SQL_STEPS", 20_000)  # 20,000,000 in production: a table 1,000 times larger
    [note] = osdb.read_ownership(root).notes
    assert "interrupted" in note


def _cpu(parse: Callable[[bytes], object], data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        parse(data)
        best = min(best, time.process_time() - start)
    return best


def _assert_linear(parse: Callable[[bytes], object], make: Callable[[int], bytes], n: int) -> None:
    small, large = make(n), make(4 * n)
    assert len(large) > 3.9 * len(small)
    ratio = _cpu(parse, large) / max(_cpu(parse, small), 1e-4)
    assert ratio < 8, f"4x the input took {ratio:.1f}x the time"


def test_a_dpkg_status_field_of_many_continuation_lines_parses_in_linear_time() -> None:
    def status(n: int) -> bytes:
        return b"Package: x\nStatus: install ok installed\nDescription: d\n" + b" a continuation line\n" * n

    _assert_linear(lambda data: list(osdb._dpkg_status(data)), status, 100_000)  # 2 MB at 4x


def test_a_manifest_of_many_continuation_lines_parses_in_linear_time() -> None:
    def manifest(n: int) -> bytes:
        return b"Manifest-Version: 1.0\r\nClass-Path: a.jar\r\n" + b" lib/dependency-x.jar\r\n" * n

    _assert_linear(maven._manifest_attributes, manifest, 20_000)  # 1.8 MB at 4x


def test_wheel_metadata_of_many_continuation_lines_parses_in_linear_time() -> None:
    def metadata(n: int) -> bytes:
        return b"Name: x\nSummary: s\n" + b" a continuation line\n" * n

    _assert_linear(lambda data: python.parse_headers(data.decode()), metadata, 100_000)


def test_a_wheel_tag_product_is_capped_before_it_is_expanded() -> None:
    part = ".".join(f"p{i}" for i in range(700))  # 700^3 = 343,000,000 tags from 6.8 KB
    tags, problems = python.parse_wheel("/x.whl!/x-1.dist-info/WHEEL",
                                        f"Wheel-Version: 1.0\nTag: cp311-none-any\nTag: {part}-{part}-{part}\n")
    assert tags == ("cp311-none-any",)
    assert [p.reason for p in problems] == [f"WHEEL lists more than {python.MAX_WHEEL_TAGS} tags: the rest are not "
                                            "read"]
