"""Session fixtures: the built samples and Debian's real musl loaders (see tests/oracle/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.oracle.loaders import LoadersUnavailable, available_loaders
from tests.oracle.sandbox import sandbox_problem
from tests.support import REPO, in_ci, unavailable

# Tests that take minutes (README: "the whole suite"): the system differential tests over the machine's own
# ELF files, and the README's demo in a fresh venv. A plain `pytest` skips them; CI runs them.
SLOW_MARKERS = ("system", "slow")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true",
                     help=f"also run the tests marked {' or '.join(SLOW_MARKERS)} (CI=true implies it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or in_ci():
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (CI=true runs it)")
    for item in items:
        if any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def private_report_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI caches reports under $MUSLCHECK_CACHE_DIR: never the user's own cache during tests."""
    monkeypatch.setenv("MUSLCHECK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "report-cache"))


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTDIR of ``samples/build.py``, built once per session."""
    if missing := [t for t in ("gcc", "g++", "musl-gcc", "readelf") if shutil.which(t) is None]:
        unavailable(f"cannot build samples: {', '.join(missing)} not installed")
    out = tmp_path_factory.mktemp("samples")
    proc = subprocess.run([sys.executable, str(REPO / "samples" / "build.py"), str(out)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.fail(f"samples/build.py failed:\n{proc.stdout}{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def samples_manifest(samples_dir: Path) -> dict[str, Any]:
    """``manifest.json``: {"harness", "samples": [{"name", "description", "files", "entry", "dlopen"}]}."""
    manifest: dict[str, Any] = json.loads((samples_dir / "manifest.json").read_text())
    return manifest


@pytest.fixture(scope="session")
def musl_loaders() -> dict[str, Path]:
    """Upstream musl version -> Debian's extracted loader, downloaded on first use."""
    if problem := sandbox_problem():
        unavailable(problem)
    try:
        return available_loaders()
    except LoadersUnavailable as e:
        unavailable(f"no musl loader: {e}")
