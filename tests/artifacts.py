"""Real third-party artifacts for integration tests, downloaded on first use and never committed:
Debian packages (``apt-get download`` + ``dpkg-deb -x``) and PyPI wheels (``pip install --target``).

Cache: ``$MUSLCHECK_ARTIFACT_CACHE`` or ``~/.cache/muslcheck-tests/artifacts``. In CI a failed download
fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ORJSON = "3.10.7"  # publishes both manylinux and musllinux wheels for cp311 x86_64
WHEEL_PLATFORMS = {"manylinux": "manylinux_2_17_x86_64", "musllinux": "musllinux_1_2_x86_64"}


def cache_dir() -> Path:
    env = os.environ.get("MUSLCHECK_ARTIFACT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "muslcheck-tests" / "artifacts"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _run(cmd: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{cmd[0]}: {e}"
    return None if proc.returncode == 0 else f"{' '.join(cmd)}: {proc.stderr.strip()[-400:]}"


def debian_package(name: str) -> Path:
    """The extracted root of Debian's package ``name`` (the suite this machine's apt sources name)."""
    root = cache_dir() / "deb" / name
    if (root / ".done").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    download = root.with_name(name + ".download")
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        unavailable("apt-get and dpkg-deb are needed to fetch Debian packages")
    if problem := _run(["apt-get", "download", name], download):
        unavailable(problem)
    [deb] = download.glob("*.deb")
    if problem := _run(["dpkg-deb", "-x", str(deb), str(root)], download):
        unavailable(problem)
    shutil.rmtree(download)
    (root / ".done").write_text(deb.name + "\n")
    return root


def npm_package(spec: str) -> Path:
    """The unpacked npm package ``spec`` ("name@version"), fetched with ``npm pack``."""
    root = cache_dir() / "npm" / spec.replace("/", "+")
    if (root / ".done").is_file():
        return root / "package"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if shutil.which("npm") is None:
        unavailable("npm is needed to fetch npm packages")
    if problem := _run(["npm", "pack", "--silent", spec], root):
        unavailable(problem)
    [tarball] = root.glob("*.tgz")
    if problem := _run(["tar", "-xzf", tarball.name], root):
        unavailable(problem)
    (root / ".done").write_text(tarball.name + "\n")
    return root / "package"


def wheel_site(project: str, version: str, flavour: str) -> Path:
    """A site-packages directory holding ``project==version`` installed from its ``flavour`` wheel."""
    site = cache_dir() / "site" / f"{project}-{version}-{flavour}"
    if (site / ".done").is_file():
        return site
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.11", "--implementation", "cp", "--platform", WHEEL_PLATFORMS[flavour], "--target", str(site),
           f"{project}=={version}"]
    if problem := _run(cmd, site):
        unavailable(problem)
    (site / ".done").write_text(flavour + "\n")
    return site
