"""Names from the target that would act on a terminal or break a report (issue 18, part 6): escape sequences,
bidi overrides, bytes that are not UTF-8. Every format renders them without crashing; the table, markdown and
JUnit show them visibly, JSON and SARIF carry them losslessly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from muslcheck import scan
from muslcheck.render import render_json, render_junit, render_markdown, render_sarif, render_table
from muslcheck.render.interface import escaped, visible

HOSTILE = ["lib\x1b[2J.so", "lib\x1b]0;title\x07.so", "lib\u202egpj.so", "lib\x1b[8mhidden.so"]


def test_visible_escapes_and_leaves_ordinary_names_alone() -> None:
    assert visible("lib\x1b[2J.so") == "lib\\x1b[2J.so"
    assert visible("lib\u202egpj.so") == "lib\\u202egpj.so"
    assert visible("lib\udcff.so") == "lib\\xff.so"
    assert visible("a\\x1b\x07") == "a\\\\x1b\\x07"  # a literal backslash-x cannot pass for an escape
    name = "/usr/lib/libstdc++.so.6 (ü, 日本)"
    assert visible(name) is name


@pytest.fixture
def hostile_report(tmp_path: Path, samples_dir: Path):  # type: ignore[no-untyped-def]
    lib = (samples_dir / "reloc-plt/app/lib/libplt.so").read_bytes()
    for name in HOSTILE:
        (tmp_path / name).write_bytes(lib)
    (tmp_path / os.fsdecode(b"lib\xff.so")).write_bytes(lib)
    return scan(tmp_path)


def test_every_format_renders_hostile_names_safely(hostile_report) -> None:  # type: ignore[no-untyped-def]
    paths = {f.path for f in hostile_report.files}
    assert "/lib\udcff.so" in paths and "/lib\x1b[2J.so" in paths
    for text in (render_table(hostile_report), render_markdown(hostile_report), render_junit(hostile_report)):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\udcff" not in text
        assert "lib\\x1b[2J.so" in text and "lib\\u202egpj.so" in text and "lib\\xff.so" in text
    sarif = render_sarif(hostile_report)
    sarif.encode("utf-8")  # used to raise UnicodeEncodeError
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in json.loads(sarif)["runs"][0]["results"]
            for loc in r["locations"]}
    assert b"lib\xff.so" in {unquote_to_bytes(u) for u in uris}  # the original bytes, percent-encoded
    assert "/lib\udcff.so" in {f["path"] for f in json.loads(render_json(hostile_report))["files"]}


def test_an_ordinary_report_is_not_copied(tmp_path: Path, samples_dir: Path) -> None:
    (tmp_path / "libplt.so").write_bytes((samples_dir / "reloc-plt/app/lib/libplt.so").read_bytes())
    report = scan(tmp_path)
    assert escaped(report) is report  # so the golden outputs stay byte-identical
