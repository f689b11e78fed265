#!/usr/bin/env python3
"""Download and extract Debian's ``musl`` binary packages without touching
the machine's apt setup.

CLI (kept stable, other code depends on it)::

    python3 symbols/debian.py --dest DIR [--arch amd64|arm64|i386|armhf|ppc64el|s390x|riscv64 ...] \
        [--suite bullseye|bookworm|trixie|sid ...] [--package NAME=VERSION ...]

For every (suite, arch) pair this produces::

    DIR/<suite>-<arch>/root/       the package tree, extracted with dpkg-deb -x
    DIR/<suite>-<arch>/info.json   {"suite", "arch", "package", "version",
                                    "upstream_version", "deb", "sha256",
                                    "libc_so", "loader"}

If ``info.json`` already exists the pair is skipped (idempotent).

How apt is kept private:

* a private ``APT_CONFIG`` file points ``Dir::Etc::Parts`` and
  ``Dir::Etc::main`` away from /etc/apt, so the host's apt.conf.d hooks
  (e.g. post-invoke clean-ups) never run;
* ``Dir::Etc::SourceList`` is a private sources file, ``SourceParts`` is
  /dev/null, ``Dir::State``/``Dir::Cache`` are private directories under
  ``DIR/.apt/<suite>-<arch>/`` and ``APT::Architectures`` is that one
  architecture (a suite that lacks it, e.g. riscv64 before trixie, fails
  with a one-line error);
* the mirror URI is never hard-coded: it is read at run time from the
  machine's own apt configuration (``URIs:`` of /etc/apt/sources.list.d/
  *.sources, or ``deb`` lines of /etc/apt/sources.list).  Security mirrors
  are skipped: they do not carry the base suites.

Progress goes to stderr only.  Errors print one line and exit non-zero.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SUITES = ("bullseye", "bookworm", "trixie", "sid")
ARCHES = ("amd64", "arm64", "i386", "armhf", "ppc64el", "s390x", "riscv64")
PACKAGE = "musl"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Debian arch -> musl's name in ld-musl-NAME.so.1 (Debian's armhf is ARMv7
# hard-float: musl's "armhf" subarch; armel would be soft-float "arm").
MUSL_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i386",
             "armhf": "armhf", "ppc64el": "powerpc64le", "s390x": "s390x",
             "riscv64": "riscv64"}


class FetchError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(f"[debian.py] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Mirror discovery from the machine's apt configuration
# --------------------------------------------------------------------------

def _parse_deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t" and key:
            cur[key] += " " + line.strip()
            continue
        if ":" in line:
            key, val = line.split(":", 1)
            key = key.strip().lower()
            cur[key] = val.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def _is_security(uri: str, suites: Sequence[str]) -> bool:
    return "security" in uri.rstrip("/").rsplit("/", 1)[-1] or any(
        s.endswith("/updates") or s.endswith("-security") for s in suites
    )


def find_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """Return the primary Debian mirror URI of the machine's apt config."""
    candidates: list[str] = []
    parts = etc_apt / "sources.list.d"
    files = sorted(parts.glob("*.sources")) if parts.is_dir() else []
    for f in files:
        for st in _parse_deb822(f.read_text(errors="replace")):
            if st.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in st.get("types", "").split():
                continue
            suites = st.get("suites", "").split()
            signed = st.get("signed-by", "")
            for uri in st.get("uris", "").split():
                if _is_security(uri, suites):
                    continue
                # only a Debian archive (signed by the Debian keyring, or
                # carrying Debian suite names) is a candidate
                if "debian-archive" in signed or any(
                    s.split("-")[0] in SUITES for s in suites
                ):
                    candidates.append(uri)
    lists = [etc_apt / "sources.list"]
    if parts.is_dir():
        lists += sorted(parts.glob("*.list"))
    for f in lists:
        if not f.is_file():
            continue
        for raw in f.read_text(errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if not m:
                continue
            uri, suite = m.group(1), m.group(2)
            if _is_security(uri, [suite]):
                continue
            if suite.split("-")[0] in SUITES or suite in (
                "stable", "testing", "unstable", "oldstable"
            ):
                candidates.append(uri)
    if not candidates:
        raise FetchError(
            "no Debian mirror URI found in /etc/apt/sources.list(.d); "
            "cannot build private sources"
        )
    return candidates[0].rstrip("/")


# --------------------------------------------------------------------------
# Private apt
# --------------------------------------------------------------------------

class PrivateApt:
    def __init__(self, base: Path, suite: str, mirror: str,
                 arch: str = "amd64,arm64"):  # one arch, or a comma list
        self.base = base
        self.suite = suite
        self.mirror = mirror
        self.arch = arch
        self.extra: list[str] = []
        for d in ("etc/parts", "etc/preferences.d", "state/lists/partial",
                  "cache/archives/partial", "log"):
            (base / d).mkdir(parents=True, exist_ok=True)
        self.sources = base / "etc" / "sources.list"
        keyring = f" signed-by={KEYRING}" if Path(KEYRING).is_file() else ""
        self.sources.write_text(
            f"deb [arch={arch}{keyring}] {mirror} {suite} main\n"
        )
        self.status = base / "state" / "status"
        self.status.touch()
        # Private main config: read *before* /etc/apt/apt.conf.d (see
        # apt-pkg/init.cc), it redirects Parts/main so host hooks never run.
        self.conf = base / "etc" / "apt.conf"
        self.conf.write_text(
            f'Dir::Etc::Parts "{base / "etc" / "parts"}/";\n'
            'Dir::Etc::main "/dev/null";\n'
        )

    def opts(self) -> list[str]:
        b = self.base
        return [
            "-o", f"Dir::Etc::SourceList={self.sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::Etc::Preferences={b / 'etc' / 'preferences'}",
            "-o", f"Dir::Etc::PreferencesParts={b / 'etc' / 'preferences.d'}",
            "-o", f"Dir::State={b / 'state'}",
            "-o", f"Dir::State::status={self.status}",
            "-o", f"Dir::Cache={b / 'cache'}",
            "-o", f"Dir::Log={b / 'log'}",
            "-o", f"APT::Architectures={self.arch}",
            "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none",
            "-o", "Acquire::PDiffs=false",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=true",
            "-q",
            *self.extra,
        ]

    def run(self, args: list[str], cwd: Path | None = None) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.conf), LC_ALL="C")
        cmd = ["apt-get", *self.opts(), *args]
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                           text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            raise FetchError(f"apt-get {' '.join(args)} failed "
                             f"(suite {self.suite}): {last}")
        return p.stdout

    def cache(self, args: list[str]) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.conf), LC_ALL="C")
        p = subprocess.run(["apt-cache", *self.opts(), *args], env=env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            raise FetchError(f"apt-cache {' '.join(args)} failed: {last}")
        return p.stdout

    def updated(self) -> bool:
        return any((self.base / "state" / "lists").glob("*_Packages*"))

    def update(self) -> None:
        _log(f"apt-get update ({self.suite}, private state in {self.base})")
        try:
            self.run(["update"])
        except FetchError as e:
            # A mirror that lags behind the clock serves a Release file past
            # its Valid-Until (seen for sid).  Signatures are still checked;
            # only the freshness check is relaxed, and we say so.
            if "expired" not in str(e):
                raise
            _log(f"WARNING: {self.suite}: Release file expired on this "
                 "mirror; retrying with Acquire::Check-Valid-Until=false "
                 "(signatures still verified)")
            self.extra = ["-o", "Acquire::Check-Valid-Until=false"]
            self.run(["update"])

    def candidate(self, arch: str, package: str = PACKAGE) -> str:
        out = self.cache(["show", "--no-all-versions", f"{package}:{arch}"])
        m = re.search(r"^Version:\s*(\S+)", out, re.M)
        if not m:
            raise FetchError(f"no {package}:{arch} in {self.suite}")
        return m.group(1)

    def download(self, package: str, version: str, dest: Path) -> Path:
        """``apt-get download PACKAGE:ARCH=VERSION`` into DEST; the .deb's path."""
        dest.mkdir(parents=True, exist_ok=True)
        self.run(["download", f"{package}:{self.arch}={version}"], cwd=dest)
        # apt-get download escapes ':' in the epoch as %3a
        debs = [p for p in dest.glob(f"{package}_*.deb")
                if p.name.split("_")[1].replace("%3a", ":") == version
                and p.name.rsplit("_", 1)[1] in (f"{self.arch}.deb", "all.deb")]
        if not debs:
            raise FetchError(f"download produced no .deb for {package}:"
                             f"{self.arch}={version} ({self.suite})")
        return debs[0]


# --------------------------------------------------------------------------
# Extraction and info
# --------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def upstream_of(version: str) -> str:
    v = version.split(":", 1)[-1]
    v = v.rsplit("-", 1)[0] if "-" in v else v
    m = re.match(r"^(\d+\.\d+\.\d+)", v)
    return m.group(1) if m else v


def _find_libc_and_loader(root: Path, arch: str) -> tuple[str, str]:
    march = MUSL_ARCH.get(arch, arch)
    # libc.so sits in Debian's multiarch directory: x86_64-linux-musl,
    # arm-linux-musleabihf, powerpc64le-linux-musl, ...
    libc = None
    for cand in sorted(root.rglob("libc.so")):
        if "-linux-musl" in cand.parent.name and cand.is_file():
            libc = cand
            break
    if libc is None:
        raise FetchError(f"libc.so not found under {root}")
    loader = None
    for cand in sorted(root.rglob(f"ld-musl-{march}.so.1")):
        loader = cand
        break
    if loader is None:
        raise FetchError(f"ld-musl-{march}.so.1 not found under {root}")
    return str(libc.relative_to(root)), str(loader.relative_to(root))


def fetch_one(dest: Path, suite: str, arch: str, mirror: str | None = None,
              apt: PrivateApt | None = None) -> dict:
    out = dest / f"{suite}-{arch}"
    info_path = out / "info.json"
    if info_path.is_file():
        _log(f"{suite}-{arch}: info.json exists, skipping")
        return json.loads(info_path.read_text())
    if apt is None:
        apt = private_apt(dest, suite, arch, mirror)
    version = apt.candidate(arch)
    _log(f"{suite}-{arch}: downloading {PACKAGE}:{arch}={version}")
    deb = apt.download(PACKAGE, version, dest / ".debs")
    root = out / "root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    _log(f"{suite}-{arch}: dpkg-deb -x {deb.name}")
    p = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise FetchError(f"dpkg-deb -x {deb.name} failed: "
                         f"{p.stderr.strip()}")
    libc_so, loader = _find_libc_and_loader(root, arch)
    info = {
        "suite": suite,
        "arch": arch,
        "package": PACKAGE,
        "version": version,
        "upstream_version": upstream_of(version),
        "deb": deb.name,
        "sha256": sha256_file(deb),
        "libc_so": libc_so,
        "loader": loader,
    }
    tmp = info_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    tmp.replace(info_path)
    _log(f"{suite}-{arch}: {version} -> {out}")
    return info


def private_apt(dest: Path, suite: str, arch: str,
                mirror: str | None = None) -> PrivateApt:
    """An updated private apt for one suite and architecture."""
    apt = PrivateApt(dest / ".apt" / f"{suite}-{arch}", suite,
                     mirror or find_mirror(), arch)
    if not apt.updated():
        apt.update()
    return apt


def fetch_package(dest: Path, suite: str, arch: str, package: str,
                  version: str) -> Path:
    """One pinned package, extracted: DEST/pkgs/<suite>-<arch>/<package>_<version>/root.

    Idempotent (an existing ``root`` is reused).  Returns the root."""
    out = dest / "pkgs" / f"{suite}-{arch}" / f"{package}_{version}"
    root = out / "root"
    if (out / "done").is_file():
        return root
    apt = private_apt(dest, suite, arch)
    deb = apt.download(package, version, dest / ".debs")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    p = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise FetchError(f"dpkg-deb -x {deb.name} failed: {p.stderr.strip()}")
    (out / "done").write_text(sha256_file(deb) + "\n")
    return root


def fetch_musl(dest: Path, suites: Sequence[str],
               arches: Sequence[str]) -> list[dict]:
    """Fetch and extract musl for every (suite, arch); return info dicts."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for s in suites:
        if s not in SUITES:
            raise FetchError(f"unknown suite {s!r} (known: {', '.join(SUITES)})")
    for a in arches:
        if a not in ARCHES:
            raise FetchError(f"unknown arch {a!r} (known: {', '.join(ARCHES)})")
    mirror: str | None = None
    infos = []
    for suite in suites:
        for arch in arches:
            apt = None
            if not (dest / f"{suite}-{arch}" / "info.json").is_file():
                if mirror is None:
                    mirror = find_mirror()
                    _log(f"mirror from machine apt config: {mirror}")
                apt = private_apt(dest, suite, arch, mirror)
            infos.append(fetch_one(dest, suite, arch, mirror, apt))
    return infos


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Download and extract Debian's musl packages into DIR "
                    "using a private apt state (the machine's apt setup is "
                    "left alone).")
    ap.add_argument("--dest", required=True, type=Path)
    ap.add_argument("--arch", action="append", choices=ARCHES,
                    help="repeatable; default amd64")
    ap.add_argument("--suite", action="append", choices=SUITES,
                    help="repeatable; default all four suites")
    ap.add_argument("--package", action="append", metavar="NAME=VERSION",
                    help="instead of musl: fetch and extract these pinned "
                         "packages (one suite, one arch) into DIR/pkgs/")
    args = ap.parse_args(argv)
    arches = args.arch or ["amd64"]
    suites = args.suite or list(SUITES)
    try:
        if args.package:
            if len(arches) != 1 or len(suites) != 1:
                raise FetchError("--package needs exactly one --arch and one --suite")
            for spec in args.package:
                name, sep, version = spec.partition("=")
                if not sep or not name or not version:
                    raise FetchError(f"--package {spec!r}: expected NAME=VERSION")
                print(fetch_package(args.dest, suites[0], arches[0], name, version))
            return 0
        fetch_musl(args.dest, suites, arches)
    except FetchError as e:
        print(f"debian.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"debian.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
