"""Real packages for the selection tests, fetched at test time and never committed: npm packages with ``npm pack``,
each pinned by version and by the registry's integrity (``npm view NAME@VERSION dist.integrity``), wheels with
pip for a given CPython and platform tag, Maven JARs from pyspark's sdist and Debian packages, each pinned by sha256."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.artifacts import cache_dir, unavailable
from tests.support import debian_package, fetch

# name@version -> dist.integrity
NPM: dict[str, str] = {
    "argon2@0.45.1":
        "sha512-skm+/WCjkGqCQxF7FG1LuZXM5yvbFjgbfiCGsud2oLgaDhh6b6dbH0b1EkghbM+xx4Bj8Ape+KKgixoIlWZicQ==",
    "lmdb@3.5.6":
        "sha512-j3uE8ReKNyUWDjhfEFSJqE/1DLtfTR5Z8yFzVHvBjAk37wNg7HdScjcv8ttPHRvrdgPQMPWxFFI0SsdBzI5lBw==",
    "@lmdb/lmdb-linux-x64@3.5.6":
        "sha512-ADzCuCF2cTNiX9kDScqcz1fjnAkxPpQNneV3KFTdV3wWtVlI2sTGzySoMTgDpinkMMFj1NTJlxA6XR8fwc4hlA==",
    "msgpackr-extract@3.0.7":
        "sha512-/dOQboWnkR1cjm88XyH/cGSivECGgyQu3814+bNUAq5wACQC8Ya/CViB9WApvWJ5Hya/JJQQmUeBFOZj8MLjGA==",
    "@msgpackr-extract/msgpackr-extract-linux-x64@3.0.7":
        "sha512-A9xOmARctmUvHrBj5GGzGAigsZFnqE4kld5oprX3PyPbkVALV4jwBc17gPZrhSOvnXQc81hE9K7S2hDUCgialA==",
    "@swc/core@1.7.26":
        "sha512-f5uYFf+TmMQyYIoxkn/evWhNGuUzC730dFwAKGwBVHHVoPyak1/GvJUm6i1SKl+2Hrj9oN0i3WSoWWZ4pgI8lw==",
    "@swc/core-linux-x64-gnu@1.7.26":
        "sha512-c+pp9Zkk2lqb06bNGkR2Looxrs7FtGDMA4/aHjZcCqATgp348hOKH5WPvNLBl+yPrISuWjbKDVn3NgAvfvpH4w==",
    "@swc/core-linux-x64-musl@1.7.26":
        "sha512-PgtyfHBF6xG87dUSSdTJHwZ3/8vWZfNIXQV2GlwEpslrOkGqy+WaiiyE7Of7z9AvDILfBBBcJvJ/r8u980wAfQ==",
    "sharp@0.33.5":
        "sha512-haPVm1EkS9pgvHrQ/F3Xy+hgcuMV0Wm9vfIBSiwZ05k+xgb0PkBQpGsAA/oWdDobNaZTH5ppvHtzCFbnSEwHVw==",
    "@img/sharp-linux-x64@0.33.5":
        "sha512-opC+Ok5pRNAzuvq1AG0ar+1owsu842/Ab+4qvU879ippJBHvyY5n2mxF1izXqkPYlGuP/M556uh53jRLJmzTWA==",
    "@img/sharp-linuxmusl-x64@0.33.5":
        "sha512-WT+d/cgqKkkKySYmqoZ8y3pxx7lx9vVejxW/W4DOFMYVSkErR+w7mf2u8m/y4+xHe7yY9DAXQMWQhpnMuFfScw==",
    "@img/sharp-libvips-linux-x64@1.0.4":
        "sha512-MmWmQ3iPFZr0Iev+BAgVMb3ZyC4KeFc3jFxnNbEPas60e1cIfevbtuyf9nDGIzOaW9PdnDciJm+wFFaTlj5xYw==",
    "@img/sharp-libvips-linuxmusl-x64@1.0.4":
        "sha512-viYN1KX9m+/hGkJtvYYp+CCLgnJXwiQB39damAO7WMdKWlIhmYTfHjwSbQeUK/20vY154mwezd9HflVFM1wVSw==",
    "esbuild@0.24.2":
        "sha512-+9egpBW8I3CD5XPe0n6BfT5fxLzxrlDzqydF3aviG+9ni1lDC/OvMHcxqEFV0+LANZG5R1bFMWfUrjVsdwxJvA==",
    "@esbuild/linux-x64@0.24.2":
        "sha512-8Qi4nQcCTbLnK9WoMjdC9NiTG6/E38RNICU6sUNqK0QFxCYgoARqVqxdFmWkdonVsvGqWhmm7MO0jyTqLqwj0Q==",
    "bcrypt@6.0.0":
        "sha512-cU8v/EGSrnH+HnxV2z0J7/blxH8gq7Xh2JFT6Aroax7UohdmiJJlxApMxtKfuI7z68NvvVcmR78k2LbT6efhRg==",
    "bcrypt@5.1.1":
        "sha512-AGBHOG5hPYZ5Xl9KXzU5iKq9516yEmvCKDg3ecP5kX2aB6UqTeXZxk2ELnDgDm6BQSMlLt9rDB4LoSMx0rYwww==",
    "better-sqlite3@11.7.0":
        "sha512-mXpa5jnIKKHeoGzBrUJrc65cXFKcILGZpU3FXR0pradUEm9MA7UZz02qfEejaMcm9iXrSOCenwwYMJ/tZ1y5Ig==",
    "@parcel/watcher@2.4.1":
        "sha512-HNjmfLQEVRZmHRET336f20H/8kOozUGwk7yajvsonjNxbj2wBTK1WsQuHkD5yYh9RxFGL2EyDHryOihOwUoKDA==",
    "@parcel/watcher-linux-x64-glibc@2.4.1":
        "sha512-s9O3fByZ/2pyYDPoLM6zt92yu6P4E39a03zvO0qCHOTjxmt3GHRMLuRZEWhWLASTMSrrnVNWdVI/+pUElJBBBg==",
    "@parcel/watcher-linux-x64-musl@2.4.1":
        "sha512-L2nZTYR1myLNST0O632g0Dx9LyMNHrn6TOt76sYxWLdff3cB22/GZX2UPtJnaqQPdCRoszoY5rcOj4oMTtp5fQ==",
}


def npm_pinned(spec: str) -> Path:
    """The unpacked package ``spec`` (a key of NPM); a tarball whose integrity differs fails the test."""
    integrity = NPM[spec]
    root = cache_dir() / "npm-pinned" / spec.replace("/", "+")
    done = root / ".done"
    if done.is_file() and done.read_text().strip() == integrity:
        return root / "package"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if shutil.which("npm") is None:
        unavailable("npm is needed to fetch npm packages")
    try:
        proc = subprocess.run(["npm", "pack", "--json", "--silent", spec], cwd=root, capture_output=True, text=True,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"npm pack {spec}: {e}")
    if proc.returncode != 0:
        unavailable(f"npm pack {spec}: {proc.stderr.strip()[-400:]}")
    [packed] = json.loads(proc.stdout)
    if packed["integrity"] != integrity:
        pytest.fail(f"{spec}: integrity {packed['integrity']} is not the pinned {integrity}")
    subprocess.run(["tar", "-xzf", packed["filename"]], cwd=root, check=True)
    done.write_text(integrity + "\n")
    return root / "package"


def install(tree: Path, *specs: str, node_modules: str = "app/node_modules") -> Path:
    """``tree/<node_modules>/<name>`` for each spec, as npm lays them out; the node_modules directory."""
    target = tree / node_modules
    for spec in specs:
        name = spec.rsplit("@", 1)[0]
        shutil.copytree(npm_pinned(spec), target / name, symlinks=True)
    return target


def pip_site(project: str, version: str, platform: str, python: str) -> Path:
    """A site-packages directory holding ``project==version`` from its wheel for CPython ``python`` ("3.10") and the
    wheel platform tag ``platform``, installed with pip (``--target``)."""
    site = cache_dir() / "site-pinned" / f"{project}-{version}-cp{python.replace('.', '')}-{platform}"
    if (site / ".done").is_file():
        return site
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--platform", platform, "--target", str(site), f"{project}=={version}"]
    fetch(cmd, f"pip install {project}", 600)
    (site / ".done").write_text(platform + "\n")
    return site


# Real Maven JARs with their natives, as Maven Central publishes them: the Apache Spark distribution on PyPI (pyspark's
# sdist carries Spark's deps/jars/), pinned by version and sha256. Maven Central itself is not reachable here.
PYSPARK = {  # version -> sha256 of the sdist
    "3.5.7": "80e36514e0c5c126d35a26adf4f405cd4a69de96a8ea8a3c1e9a65fce2fb4eaa",
    "4.3.0": "e8c517948eff7088a7aa07449aa8eafa4a15a8d50319de2525a6fd26622476c6",
}


def pyspark_jars(version: str, names: Sequence[str]) -> Path:
    """A directory holding the JARs ``names`` (file names in ``deps/jars/``) of pyspark ``version`` (a key of
    PYSPARK), taken from its pinned sdist (pip checks the sha256); the sdist is not kept."""
    digest = PYSPARK[version]
    out = cache_dir() / f"pyspark-{version}-jars"
    if all((out / name).is_file() for name in names) and (out / ".done").is_file():
        return out
    download = cache_dir() / f"pyspark-{version}-download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    (download / "requirements.txt").write_text(f"pyspark=={version} --hash=sha256:{digest}\n")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:", "--require-hashes",
           "-r", str(download / "requirements.txt"), "-d", str(download)]
    fetch(cmd, "pip download pyspark", 900)
    [sdist] = download.glob("pyspark-*.tar.gz")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    prefix = f"pyspark-{version}/deps/jars/"
    with tarfile.open(sdist, "r|gz") as tar:  # one pass over the stream: only the wanted members are written
        for member in tar:
            name = member.name.removeprefix(prefix)
            if member.name.startswith(prefix) and member.isfile() and name in names:
                source = tar.extractfile(member)
                assert source is not None
                with source, open(out / name, "wb") as target:
                    shutil.copyfileobj(source, target)
    shutil.rmtree(download)
    absent = [name for name in names if not (out / name).is_file()]
    if absent:
        pytest.fail(f"pyspark {version} has no deps/jars/{', '.join(absent)}")
    (out / ".done").write_text(digest + "\n")
    return out


# Debian bookworm's Java packages: name -> (version, sha256 of the .deb). Fetched from the machine's own Debian mirror
# by symbols/debian.py (a private apt state for the one suite), so they come the same on any Debian release.
DEBIAN_SUITE = "bookworm"
DEBIAN: dict[str, tuple[str, str]] = {
    "libjna-java": ("5.13.0-2", "f5d08621f8d98eb0c7c18da6874e6bd8cb8ba7a768b0539180d19e3d5b7d6d75"),
    "libjna-jni": ("5.13.0-2", "d5b384c75aad597509307308055302ded15227c00f778c46b0b5294800feddd1"),
    "libjansi-java": ("2.4.0-2", "72c2cca0796ff2c90a0dfef584180e1367261cf7c3e06c6ccf0d4a28b52aab49"),
    "libjffi-jni": ("1.3.9+ds-6", "aa4d60467c6e0e25ccf4cf1104906820355ec9aa2cf7c6872486fe9bd89889a8"),
    "liblz4-java": ("1.8.0-3", "acfaadb267845b3c61223e6dd30578440856d737d9aa6045cd68bf12c6dcc8af"),
    "liblz4-jni": ("1.8.0-3", "e37305d1c1272ad3d303bddb514cd7cfa0983c9277edacb015ba9c76e52b0df0"),
    "libnetty-tcnative-java": ("2.0.28-1", "da71f6b0146183a3526188017720dfb42ec3901edd9db7daacc657fb05c2fa5b"),
    "libnetty-tcnative-jni": ("2.0.28-1+b1", "ea6dc1d2740356547797cc8603612389033b21e657e51aa02b015baaf087ba64"),
    "libsnappy-java": ("1.1.8.3-1", "529cb792389534224ba1513d55ba2c2af287c44cdf1dc8ec2d3b44474cce27d7"),
    "libsnappy-jni": ("1.1.8.3-1", "4f61feb6a45d677b92a27f7e9a0201feb00d9859fd49ced78eb1f7f2bf29d18a"),
    "libxerial-sqlite-jdbc-java": ("3.40.1.0+dfsg-1+deb12u1",
                                   "fe4a497b9362a80386167a8a05afaebde0764f1c578c88dfc504de25e14b22aa"),
    "libxerial-sqlite-jdbc-jni": ("3.40.1.0+dfsg-1+deb12u1",
                                  "7cf23831eea9669a72a55fa2afc27cb02e6320efdf5a418620de6a279ff75a41"),
    "libzstd-jni-java": ("1.5.2-5+ds-3", "79e510009189c3f24d7b6b20b8e7411ef195c5d79e88514729e227a0127b6131"),
    "libzstd-jni1": ("1.5.2-5+ds-3", "7eed326ad4ff9895ded06ac0518fd06a2f129c9492f73119ff888ee5dfebc6cb"),
}


# Other architectures' packages: (name, Debian architecture) -> (version, sha256 of the .deb), same suite.
DEBIAN_OTHER_ARCHES: dict[tuple[str, str], tuple[str, str]] = {
    # CPython 3.11's standard library: its lib-dynload extension modules
    ("libpython3.11-stdlib", "amd64"): ("3.11.2-6+deb12u8",
                                        "890b3540dad8a1ccc0deeca025db735bcc82629a76adacbe3b50fcc06ed528ca"),
    ("libpython3.11-stdlib", "arm64"): ("3.11.2-6+deb12u8",
                                        "e79876de55c6c2dca10d044b2fa69ccd863950ea01714220c1982d16008105f9"),
}


def debian_pinned(name: str, arch: str = "amd64") -> Path:
    """The extracted root of the pinned Debian package ``name`` for the Debian architecture ``arch`` (a key of
    DEBIAN for amd64, else of DEBIAN_OTHER_ARCHES); another sha256 fails the test."""
    version, digest = DEBIAN_OTHER_ARCHES[name, arch] if (name, arch) in DEBIAN_OTHER_ARCHES else DEBIAN[name]
    return debian_package(name, version, arch, digest, DEBIAN_SUITE, cache_dir() / "deb-pinned")
