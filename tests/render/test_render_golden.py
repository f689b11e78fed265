"""Every format of a fixed, hand-built Report, compared byte for byte with tests/render/golden/.

Rewrite the files after an intended change with ``MUSLCHECK_UPDATE_GOLDEN=1 python3 -m pytest tests/render``
and review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from muslcheck.render import FORMATS, RENDERERS, RenderOptions
from tests.render.fixed_report import fixed_report

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MUSLCHECK_UPDATE_GOLDEN") == "1"

# golden file -> the format and the options that render it
GOLDEN_FILES: dict[str, tuple[str, RenderOptions]] = {
    "report.table.txt": ("table", RenderOptions()),
    "report.table-color.txt": ("table", RenderOptions(color=True)),
    "report.json": ("json", RenderOptions()),
    "report.sarif": ("sarif", RenderOptions()),
    "report.junit.xml": ("junit", RenderOptions()),
    "report.md": ("markdown", RenderOptions()),
    "report.Dockerfile": ("dockerfile", RenderOptions()),
}


def render(name: str) -> str | bytes:
    fmt, options = GOLDEN_FILES[name]
    return RENDERERS[fmt].render(fixed_report(), options)


@pytest.mark.parametrize("name", sorted(GOLDEN_FILES))
def test_golden(name: str) -> None:
    output = render(name)
    assert output == render(name), "not deterministic"
    data = output if isinstance(output, bytes) else output.encode("utf-8")
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with MUSLCHECK_UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} differs from its golden file (MUSLCHECK_UPDATE_GOLDEN=1 rewrites it)"


def test_every_format_has_a_golden_file() -> None:
    assert {fmt for fmt, _ in GOLDEN_FILES.values()} == {r.name for r in FORMATS}
    assert RENDERERS["text"] is RENDERERS["table"]


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_name_and_alias_renders_its_format_golden_file(name: str) -> None:
    renderer = RENDERERS[name]
    golden = [g for g, (fmt, options) in GOLDEN_FILES.items() if fmt == renderer.name and options == RenderOptions()]
    assert len(golden) == 1, f"{renderer.name}: no golden file with the default options"
    output = renderer.render(fixed_report(), RenderOptions())
    data = output if isinstance(output, bytes) else output.encode("utf-8")
    assert data == (GOLDEN / golden[0]).read_bytes()
