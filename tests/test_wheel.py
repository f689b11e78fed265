"""The wheel: build it, install it into a fresh venv, run it from outside the checkout.

NEEDS NETWORK: ``python -m build`` installs hatchling from PyPI into its isolated build
environment, and ``pip install`` fetches click. Without network this test is skipped locally
and fails under CI (CI=true), where it must run. It takes about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from muslcheck.model.report import Report
from tests.support import unavailable

REPO = Path(__file__).resolve().parents[1]
NEEDS_NETWORK = "needs network: python -m build fetches hatchling and pip fetches click from the package index"


def clean_env() -> dict[str, str]:
    """The environment without anything that would make the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def check(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc: subprocess.CompletedProcess[str] = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.network
def test_wheel_installs_and_runs_outside_checkout(samples_dir: Path, tmp_path: Path) -> None:
    """Needs network (see the module docstring)."""
    try:
        import build  # noqa: F401
    except ImportError:
        unavailable("the 'build' package is not installed (pip install build)")
    outdir = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode and "hatchling" in built.stdout + built.stderr and not outdir.exists():
        unavailable(f"{NEEDS_NETWORK}: {(built.stderr or built.stdout).strip().splitlines()[-1]}")
    assert built.returncode == 0, f"python -m build failed:\n{built.stdout}\n{built.stderr}"
    wheels = list(outdir.glob("muslcheck-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    check([sys.executable, "-m", "venv", str(venv)], timeout=300)
    bindir = venv / "bin"
    python, muslcheck = bindir / "python", bindir / "muslcheck"
    env = clean_env()
    check([str(python), "-m", "pip", "install", "-q", str(wheels[0])], env=env, cwd=tmp_path, timeout=600)
    assert muslcheck.exists(), "the console script 'muslcheck' was not installed"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert REPO not in outside.resolve().parents

    # The package and its tables come from the venv, not from the checkout.
    probe = check(
        [str(python), "-c",
         "import json, muslcheck, muslcheck.ldso.tables as t; "
         "print(json.dumps({'package': muslcheck.__file__, 'tables': str(t.tables_dir())}))"],
        env=env, cwd=outside, timeout=120,
    )
    where = json.loads(probe.stdout)
    site_packages = check([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          env=env, cwd=outside, timeout=120).stdout.strip()
    site = Path(site_packages).resolve()
    tables = Path(where["tables"]).resolve()
    assert site in Path(where["package"]).resolve().parents
    assert site in tables.parents, f"tables read from {tables}, not from the venv's {site}"
    assert REPO not in tables.parents
    assert (tables / "musl-1.2.5-x86_64.json").is_file()
    # the schema ships too (the README points library users at it)
    assert (site / "muslcheck" / "schema" / "report.schema.json").is_file()

    # The console script works: fortify is needs-gcompat (README: __*_chk, glibc interpreter).
    scan = subprocess.run([str(muslcheck), "scan", str(samples_dir / "fortify"), "-o", "json", "-q"],
                          capture_output=True, text=True, env=env, cwd=outside, timeout=300)
    assert scan.returncode == 0, scan.stderr  # needs-gcompat is below the default --fail-on blocked
    assert scan.stderr == ""
    doc = json.loads(scan.stdout)
    assert doc["verdict"] == "needs-gcompat"
    names = {s.name for f in Report.from_dict(doc).files for s in f.unresolved_symbols}
    assert "__memcpy_chk" in names
    assert "__memcpy_chk" in {n for groups in doc["objects"].values() for g in groups for n in g["names"]}

    versions = check([str(muslcheck), "versions"], env=env, cwd=outside, timeout=120)
    lines = versions.stdout.splitlines()
    assert any(line.startswith("alpine 3.18") and "musl 1.2.4" in line for line in lines)
    assert lines[-1].startswith("musl versions: ") and "1.2.5" in lines[-1]
