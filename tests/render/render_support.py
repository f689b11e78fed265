"""Shared by the renderer tests: one scan of every sample and the vendored SARIF schema, each loaded once.

Not a conftest.py on purpose: tests/ is not a package, and a second module named ``conftest``
would shadow tests/conftest.py for ``from conftest import ...`` elsewhere.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import muslcheck
from muslcheck.model.report import Report

DATA = Path(__file__).resolve().parents[1] / "data"


@functools.cache
def scan_samples(samples_dir: Path) -> Report:
    """The whole samples tree (every scenario, the dlopen harness, manifest.json) on the default target."""
    return muslcheck.scan(samples_dir)


@functools.cache
def _schema_text() -> str:
    return (DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")


def sarif_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
