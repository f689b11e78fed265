"""The JSON report written in pieces (``Report.json_pieces``, what ``-o json=FILE`` writes) is the same bytes as the
whole document (``render_json``), for the fixed report, a real scan, a report of many files and one with a name that
is not UTF-8."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from muslcheck.cli import main
from muslcheck.model import report as report_module
from muslcheck.model.report import Report
from muslcheck.render import RENDERERS, RenderOptions
from muslcheck.render.json import json_pieces, render_json
from tests.render.fixed_report import fixed_report
from tests.render.render_support import scan_samples


def _many_files(report: Report, copies: int) -> Report:
    """``report`` with its files repeated under other directories: findings of many objects, groups shared."""
    files = tuple(replace(f, path=f"/copy{i}{f.path}") for i in range(copies) for f in report.files)
    return replace(report, files=files)


def test_the_pieces_of_the_fixed_report_are_its_golden_json() -> None:
    report = fixed_report()
    pieces = RENDERERS["json"].pieces
    assert pieces is not None
    golden = (Path(__file__).resolve().parent / "golden" / "report.json").read_bytes()
    assert b"".join(pieces(report, RenderOptions())) == golden == render_json(report)


def test_the_pieces_of_a_scan_are_its_json(samples_dir: Path) -> None:
    report = scan_samples(samples_dir)
    assert len(report.files) > 1
    assert b"".join(json_pieces(report)) == render_json(report)


def test_a_large_report_comes_in_several_pieces_that_make_its_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "_JSON_PIECE", 256)  # a piece per few files, as 1 MiB is for a large tree
    report = _many_files(fixed_report(), 40)
    pieces = json_pieces(report)
    assert len(pieces) > 10
    assert b"".join(pieces) == render_json(report)


def test_a_name_that_is_not_utf8_falls_back_to_the_whole_document() -> None:
    report = fixed_report()
    odd = replace(report, files=(replace(report.files[0], path="/opt/app/bin/ser\udcffver"), *report.files[1:]))
    whole = render_json(odd)
    assert b"\\udcff" in whole
    assert b"".join(json_pieces(odd)) == whole


def test_the_cli_writes_the_pieces_to_the_file(samples_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report.json"
    result = CliRunner(catch_exceptions=False).invoke(main, ["scan", str(samples_dir), "-q", "-o", f"json={out}"])
    assert result.exit_code == 1, result.output  # the samples hold blocked files on purpose
    on_stdout = CliRunner(catch_exceptions=False).invoke(main, ["scan", str(samples_dir), "-q", "-o", "json"])
    assert out.read_bytes() == on_stdout.stdout_bytes == render_json(scan_samples(samples_dir))
