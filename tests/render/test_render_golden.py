"""Every format of a fixed, hand-built Report, compared byte for byte with tests/render/golden/.

Rewrite the files after an intended change with ``MUSLCHECK_UPDATE_GOLDEN=1 python3 -m pytest tests/render``
and review the diff before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fixed_report import fixed_report

from muslcheck.model.report import Report
from muslcheck.render import RENDERERS, render_table

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MUSLCHECK_UPDATE_GOLDEN") == "1"

FORMATS: dict[str, Callable[[Report], str | bytes]] = {
    "report.table.txt": RENDERERS["table"],
    "report.table-color.txt": lambda r: render_table(r, color=True),
    "report.json": RENDERERS["json"],
    "report.sarif": RENDERERS["sarif"],
    "report.junit.xml": RENDERERS["junit"],
    "report.md": RENDERERS["markdown"],
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_golden(name: str) -> None:
    output = FORMATS[name](fixed_report())
    assert output == FORMATS[name](fixed_report()), "not deterministic"
    data = output if isinstance(output, bytes) else output.encode("utf-8")
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with MUSLCHECK_UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} differs from its golden file (MUSLCHECK_UPDATE_GOLDEN=1 rewrites it)"


def test_every_format_has_a_golden_file() -> None:
    covered = {RENDERERS[k] for k in ("table", "json", "sarif", "junit", "markdown")}
    assert covered == {FORMATS[n] for n in FORMATS if n != "report.table-color.txt"}
    assert RENDERERS["text"] is RENDERERS["table"]
