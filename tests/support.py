"""What every test module may need: the repository's root, and how a missing prerequisite is handled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip locally; under CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)
