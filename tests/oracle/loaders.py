"""Debian's musl loaders (the extracted ``libc.so`` is the loader), fetched by symbols/debian.py.

Layout of the cache (``$MUSLCHECK_ORACLE_CACHE`` or ``~/.cache/muslcheck-tests/musl``)::

    <cache>/<suite>-amd64/info.json   {"suite", "upstream_version", "libc_so", ...}
    <cache>/<suite>-amd64/root/...    the extracted package
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from muslcheck.ldso.tables import version_key

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PY = REPO / "symbols" / "debian.py"
SUITES = ("bullseye", "bookworm", "trixie", "sid")  # musl 1.2.2, 1.2.3, 1.2.5, 1.2.6 (sid moves on)
EXPECTED_VERSIONS = ("1.2.2", "1.2.3", "1.2.5", "1.2.6")  # what SUITES gave when last checked
REQUIRED_VERSIONS = ("1.2.2", "1.2.3", "1.2.5")  # stable Debian releases: their musl never changes


class LoadersUnavailable(RuntimeError):
    """No musl loader could be found or downloaded."""


def default_cache() -> Path:
    env = os.environ.get("MUSLCHECK_ORACLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "muslcheck-tests" / "musl"


def loader_version(loader: Path, runner: tuple[str, ...] = ()) -> str:
    """The version the loader itself reports when run without arguments (through ``runner``, e.g. qemu)."""
    proc = subprocess.run([*runner, str(loader)], capture_output=True, text=True, timeout=60)
    m = re.search(r"^Version (\S+)$", proc.stderr, re.M)
    if not m:
        raise LoadersUnavailable(f"{loader} does not look like a musl loader: {proc.stderr[:200]!r}")
    return m[1]


def _fetch(cache: Path, suite: str, arch: str) -> str | None:
    """Run symbols/debian.py for one suite; return an error text or None."""
    if not DEBIAN_PY.is_file():
        return f"{DEBIAN_PY} does not exist"
    proc = subprocess.run([sys.executable, str(DEBIAN_PY), "--dest", str(cache), "--arch", arch,
                           "--suite", suite], capture_output=True, text=True, timeout=900)
    return None if proc.returncode == 0 else f"debian.py --suite {suite}: {proc.stderr.strip()[-500:]}"


def available_loaders(cache: Path | None = None, *, suites: tuple[str, ...] = SUITES,
                      arch: str = "amd64", download: bool = True,
                      runner: tuple[str, ...] = ()) -> dict[str, Path]:
    """Upstream musl version -> extracted ``libc.so``, downloading missing suites first.

    Versions come from the loaders themselves; a version shipped by two suites is kept once.
    Raises LoadersUnavailable when no loader at all is available.
    """
    cache = cache or default_cache()
    problems: list[str] = []
    found: dict[str, Path] = {}
    for suite in suites:
        info_file = cache / f"{suite}-{arch}" / "info.json"
        if not info_file.is_file() and download and (err := _fetch(cache, suite, arch)):
            problems.append(err)
        if not info_file.is_file():
            continue
        info = json.loads(info_file.read_text())
        loader = info_file.parent / "root" / info["libc_so"]
        found.setdefault(loader_version(loader, runner), loader)
    if not found:
        raise LoadersUnavailable("; ".join(problems) or f"no musl loader in {cache}")
    return dict(sorted(found.items(), key=lambda kv: version_key(kv[0])))


