"""Real packages for the selection tests, fetched at test time and never committed: npm packages with ``npm pack``,
each pinned by version and by the registry's integrity (``npm view NAME@VERSION dist.integrity``), and wheels with
pip for a given CPython and platform tag."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.artifacts import cache_dir, unavailable

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
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"pip install {project}: {e}")
    if proc.returncode != 0:
        unavailable(f"pip install {project}: {proc.stderr.strip()[-400:]}")
    (site / ".done").write_text(platform + "\n")
    return site
