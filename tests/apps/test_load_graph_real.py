"""The load graph on real wheels (issue 14, parts 1 and 2): the musllinux wheels of numpy, pandas, cryptography,
pillow, pydantic-core, orjson, lxml and grpcio, unzipped into ``/app/venv/lib/python3.11/site-packages`` (nothing
installs, nothing from the tree runs but the dlopen of the oracle), then held against musl's real loader dlopen-ing
each numpy extension module as CPython does: RTLD_NOW, from a host that defines the ``Py*`` names.

Each wheel is pinned by its file name and sha256 (``pip download --require-hashes``) and cached under
``tests/artifacts.cache_dir()``; nothing is committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from muslcheck import Context, FileReport, Report, Verdict, scan
from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Host
from muslcheck.elf import read_elf_file
from muslcheck.ldso.tables import tables_dir
from tests.artifacts import cache_dir, unavailable
from tests.oracle.dlopen import run_dlopen
from tests.support import fetch

pytestmark = pytest.mark.network
REPO = Path(__file__).resolve().parents[2]
SITE = "app/venv/lib/python3.11/site-packages"
# project -> (version, wheel file, sha256): the cp311 x86_64 musllinux wheels
WHEELS = {
    "numpy": ("2.2.6", "numpy-2.2.6-cp311-cp311-musllinux_1_2_x86_64.whl",
              "9551a499bf125c1d4f9e250377c1ee2eddd02e01eac6644c080162c0c51778ab"),
    "pandas": ("3.1.1", "pandas-3.1.1-cp311-cp311-musllinux_1_2_x86_64.whl",
               "2bfb3810c303fd084fb101bf11c4a2ce8228eb8e15e411801f1d5e6ea383ee4e"),
    "cryptography": ("51.0.1", "cryptography-51.0.1-cp311-abi3-musllinux_1_2_x86_64.whl",
                     "cd58d026106a02004e3ddb0e4c117ae6dcd84efb2db406d5732e6410580d5dc9"),
    "pillow": ("13.0.0", "pillow-13.0.0-cp311-cp311-musllinux_1_2_x86_64.whl",
               "f391dc92a015c478745192fe4f2e120c2af2aba18d9fe0616341cbf537599806"),
    "pydantic-core": ("2.50.5", "pydantic_core-2.50.5-cp311-cp311-musllinux_1_1_x86_64.whl",
                      "05815bbe2c7bec58d1ce456cc0a98f368e6ef9345b1d9311f42b814d34ad7086"),
    "orjson": ("3.13.0", "orjson-3.13.0-cp311-cp311-musllinux_1_2_x86_64.whl",
               "50a5202ba388b3850ba24437951727d3aa6d79a21964a30ae8dc6a059a5fd34c"),
    "lxml": ("6.2.1", "lxml-6.2.1-cp311-cp311-musllinux_1_2_x86_64.whl",
             "4e18c0daa99213edfac9be2275ed6fad4cc47a4da71a4d1dc243b45b0fa1645a"),
    "grpcio": ("1.85.4", "grpcio-1.85.4-cp311-cp311-musllinux_1_2_x86_64.whl",
               "c8fecb1115ed4188eaca570f2111f9573e75f89a3096c696e31014e1f608a655"),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_wheel(project: str) -> Path:
    """The wheel of ``project`` named in WHEELS, downloaded once; pip checks its hash, and so does this."""
    version, name, digest = WHEELS[project]
    directory = cache_dir() / "wheels-pinned"
    wheel = directory / name
    if wheel.is_file() and sha256(wheel) == digest:
        return wheel
    directory.mkdir(parents=True, exist_ok=True)
    requirements = directory / f"{project}.txt"
    requirements.write_text(f"{project}=={version} --hash=sha256:{digest}\n")
    platform = name.removesuffix(".whl").rsplit("-", 1)[1]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.11", "--implementation", "cp", "--platform", platform, "--require-hashes", "-r", str(requirements),
           "-d", str(directory)]
    fetch(cmd, f"pip download {project}", 900)
    if not wheel.is_file() or sha256(wheel) != digest:
        pytest.fail(f"{name}: not the pinned sha256 {digest}")
    return wheel


@pytest.fixture(scope="module")
def venv_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every pinned wheel unzipped into one site-packages, as an installer lays them out (and nothing run)."""
    root = tmp_path_factory.mktemp("musllinux-venv")
    site = root / SITE
    for project in WHEELS:
        with zipfile.ZipFile(pinned_wheel(project)) as whl:
            whl.extractall(site)
    return root


@pytest.fixture(scope="module")
def venv_report(venv_tree: Path) -> Report:
    return scan(venv_tree, musl="1.2.5")


def files_of(report: Report) -> dict[str, FileReport]:
    return {f.path: f for f in report.files}


def numpy_modules(root: Path) -> list[str]:
    return sorted("/" + str(p.relative_to(root)) for p in (root / SITE / "numpy").rglob("*.cpython-311-*.so"))


def test_the_musllinux_tree_runs_on_alpine(venv_report: Report) -> None:
    assert venv_report.verdict in (Verdict.NATIVE, Verdict.NEEDS_PACKAGES)
    assert {c.name for c in venv_report.components} >= {"numpy", "pandas", "cryptography", "pillow", "orjson"}
    assert all(c.verdict in (Verdict.NATIVE, Verdict.NEEDS_PACKAGES) for c in venv_report.components), [
        (c.name, c.verdict, c.fix) for c in venv_report.components]
    for f in venv_report.files:  # what is missing comes from Alpine packages (pillow's zlib)
        assert all(m.package for m in f.missing_libraries), (f.path, f.missing_libraries)


@pytest.mark.parametrize(("vendored", "alone_misses"), [
    ("numpy.libs/libstdc++-496613c0.so.6.0.32", ["libgcc_s-a3a07607.so.1"]),  # no RPATH of its own
    ("pandas.libs/libstdc++-5d72f927.so.6.0.33", []),  # this release's has RPATH $ORIGIN
])
def test_a_vendored_libstdcxx_is_judged_where_the_extension_modules_load_it(
        venv_tree: Path, venv_report: Report, vendored: str, alone_misses: list[str]) -> None:
    """Alone, numpy's misses its vendored libgcc_s; the modules that load it find that one, by their RPATH."""
    path = f"/{SITE}/{vendored}"
    lib = files_of(venv_report)[path]
    assert (lib.verdict, lib.context, lib.missing_libraries) == (Verdict.NATIVE, Context.DLOPEN_NOW, ())
    assert lib.notes[0].startswith("loaded as a dependency: judged in the load of ")
    root = lib.notes[0].removeprefix("loaded as a dependency: judged in the load of ").split(",")[0]
    assert root.endswith(".cpython-311-x86_64-linux-musl.so") and "$ORIGIN" in str(read_elf_file(
        venv_tree / root.lstrip("/")).rpath or read_elf_file(venv_tree / root.lstrip("/")).runpath)
    alone = files_of(scan(venv_tree, musl="1.2.5", context="dlopen-now"))[path]
    assert [m.name for m in alone.missing_libraries] == alone_misses
    assert alone.verdict is (Verdict.BLOCKED if alone_misses else Verdict.NATIVE)


def test_the_numpy_wheel_scanned_directly_finds_its_vendored_libraries() -> None:
    wheel = pinned_wheel("numpy")
    with zipfile.ZipFile(wheel) as whl:
        vendored = {n.rsplit("/", 1)[1] for n in whl.namelist() if n.startswith("numpy.libs/") and n[-1] != "/"}
    report = scan(wheel, musl="1.2.5")
    assert len(vendored) >= 4 and len(report.files) > 20
    assert not [(f.path, m.name) for f in report.files for m in f.missing_libraries]
    assert {f.verdict for f in report.files} == {Verdict.NATIVE}
    libs = [f for f in report.files if "!/numpy.libs/" in f.path]
    assert {f.path.rsplit("/", 1)[1] for f in libs} == vendored
    assert all(f.notes[0].startswith("loaded as a dependency") for f in libs)


# ---------------------------------------------------------------------------------------------------------------
# The oracle: musl's real loader dlopen-ing each numpy extension module as CPython does.

def debian_deviations(version: str) -> tuple[set[str], set[str]]:
    """(exported by Debian's libc.so only, exported by upstream's only): Debian imports fts_* and backports
    renameat2, and drops crypt (the tables record each deviation; tests/test_differential.py puts them back too)."""
    raw = json.loads((tables_dir() / f"musl-{version}-x86_64.json").read_text())
    return ({d["name"] for d in raw["deviations"] if d["action"] == "removed"},
            {d["name"] for d in raw["deviations"] if d["action"] == "added"})


@pytest.fixture(scope="module")
def python_host(venv_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """samples/harness/dlopen_probe.c linked -rdynamic with a definition of every CPython name the numpy modules
    use: the process CPython would be, for the dynamic linker."""
    if shutil.which("musl-gcc") is None:
        unavailable("musl-gcc is needed to build the host harness")
    prefixes = host_provides(Host.PYTHON)
    names = sorted({u.name for path in numpy_modules(venv_tree) for u in read_elf_file(venv_tree / path.lstrip("/"))
                    .uses if u.name.startswith(prefixes)})
    assert "PyModule_Create2" in names or "PyModuleDef_Init" in names
    out = tmp_path_factory.mktemp("python-host")
    (out / "python_names.c").write_text("".join(f"void {name}(void) {{}}\n" for name in names))
    harness = out / "python_host"
    proc = subprocess.run(["musl-gcc", "-O1", "-rdynamic", "-o", str(harness), str(REPO / "samples/harness/"
                                                                                 "dlopen_probe.c"),
                           str(out / "python_names.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return harness


@pytest.mark.oracle
def test_numpy_modules_load_exactly_when_the_real_loader_loads_them(
        venv_tree: Path, python_host: Path, musl_loaders: dict[str, Path]) -> None:
    """Each module, on each musl: muslcheck's verdict (native: it loads) against the real dlopen. Before musl 1.2.4
    the loader ignores DT_RELR, which these vendored libraries use: the load "succeeds" and the process crashes
    once it reads a pointer left unrelocated (DESIGN §2), which a dlopen alone may not show; muslcheck blocks them."""
    modules = numpy_modules(venv_tree)
    assert len(modules) > 15
    libstdcxx = f"/{SITE}/numpy.libs/libstdc++-496613c0.so.6.0.32"
    disagreements, compared = [], 0
    for version, loader in musl_loaders.items():
        debian_only, upstream_only = debian_deviations(version)
        files = files_of(scan(venv_tree, musl=version))
        for module in modules:
            judged = files[module]
            assert judged.context == Context.DLOPEN_NOW
            real = run_dlopen(loader, python_host, venv_tree / module.lstrip("/"), "now")
            if any(f.rule == "relr-unsupported" for f in judged.findings):
                assert judged.verdict is Verdict.BLOCKED
                assert real.ok or real.error == "killed by SIGSEGV", (module, version, real)
                continue
            blocking = {s.name for s in judged.unresolved_symbols if s.fatal} | {
                m.name for m in judged.missing_libraries}
            loads = judged.verdict is Verdict.NATIVE or (bool(blocking) and blocking <= debian_only)
            real_ok = real.ok or any(f" {name}: symbol not found" in (real.error or "") for name in upstream_only)
            compared += 1
            if loads != real_ok:
                disagreements.append(f"{module} on {version}: muslcheck {judged.verdict} {sorted(blocking)}, "
                                     f"real {real.error or 'OK'}")
        # The vendored libstdc++, dlopen-ed alone, fails as muslcheck's standalone judgement says; the modules that
        # load it find its libgcc_s, and so does muslcheck, which judges it in their loads.
        alone = run_dlopen(loader, python_host, venv_tree / libstdcxx.lstrip("/"), "now")
        assert not alone.ok and "libgcc_s-a3a07607.so.1" in (alone.error or ""), (version, alone)
        assert files[libstdcxx].missing_libraries == ()
    assert compared >= 2 * len(modules)  # at least two musl versions (1.2.5, 1.2.6) compared in full
    assert not disagreements, "\n".join(disagreements)
