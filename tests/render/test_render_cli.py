"""End to end through the CLI (click's CliRunner): the samples in every format, on stdout and into files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from muslcheck.cli import main
from muslcheck.model.report import Report
from tests.render.render_support import sarif_schema, scan_samples

FORMATS = ("table", "text", "json", "sarif", "junit", "markdown")


@pytest.fixture
def samples_report(samples_dir: Path) -> Report:
    return scan_samples(samples_dir)


@pytest.fixture(name="sarif_schema")
def _sarif_schema() -> dict[str, Any]:
    return sarif_schema()


def run(*args: str) -> Result:
    return CliRunner(catch_exceptions=False).invoke(main, ["scan", *args, "--quiet"])


@pytest.fixture(autouse=True)
def _no_ignore_file_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ./.muslcheck.toml when it exists: run where there is none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)


def check(fmt: str, text: str, samples_report: Report, sarif_schema: dict[str, Any]) -> None:
    if fmt in ("table", "text"):
        assert "\x1b[" not in text  # not a terminal: no colour
        assert text.splitlines()[-1].startswith("Verdict: blocked (")
    elif fmt == "json":
        assert Report.from_json(text).verdict is samples_report.verdict
    elif fmt == "sarif":
        jsonschema.Draft4Validator(sarif_schema).validate(json.loads(text))
    elif fmt == "junit":
        suite = ET.fromstring(text.encode("utf-8")).find("testsuite")
        assert suite is not None and int(suite.get("tests", "0")) == len(samples_report.components)
    else:
        assert text.startswith("**muslcheck: ❌ blocked** — ")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_on_stdout(
    fmt: str, samples_dir: Path, samples_report: Report, sarif_schema: dict[str, Any]
) -> None:
    result = run(str(samples_dir), "-o", fmt)
    assert result.exit_code == 1, result.output  # the samples hold blocked files on purpose
    check(fmt, result.stdout, samples_report, sarif_schema)


def test_every_format_at_once(
    samples_dir: Path, samples_report: Report, sarif_schema: dict[str, Any], tmp_path: Path
) -> None:
    args = [str(samples_dir), "-o", "table"]
    for fmt in FORMATS[2:]:
        args += ["-o", f"{fmt}={tmp_path / ('out.' + fmt)}"]
    result = run(*args)
    assert result.exit_code == 1, result.output
    check("table", result.stdout, samples_report, sarif_schema)
    for fmt in FORMATS[2:]:
        check(fmt, (tmp_path / f"out.{fmt}").read_text(encoding="utf-8"), samples_report, sarif_schema)
