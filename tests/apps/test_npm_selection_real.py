"""Which build each npm package's own loader picks on musl, on the real packages (``npm pack``, pinned with their
integrity in pinned.py): node-gyp-build (argon2, bcrypt 6), node-gyp-build-optional-packages (lmdb,
msgpackr-extract), napi-rs platform packages (@swc/core), sharp, esbuild, node-pre-gyp (bcrypt 5) and prebuild-install
(better-sqlite3). Where the loader picks a build, musl's real loader is held against the model on that file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from muslcheck import Verdict, scan
from muslcheck.apps import node
from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Flavour, Host, Identified, Package, package_key
from muslcheck.model.report import Component, FileReport, Report
from muslcheck.targets.directory import DirectoryRoot
from tests.apps.apptrees import elves_of, put
from tests.apps.pinned import install
from tests.oracle.ldd import run_list

pytestmark = pytest.mark.network
NM = "/app/node_modules"
NODE = host_provides(Host.NODE)


def only(report: Report, name: str) -> Component:
    [found] = [c for c in report.components if c.name == name]
    return found


def package(found: Identified, name: str) -> Package:
    [p] = [p for p in found.packages if p.name == name]
    return p


def agrees_with_musl(loader: Path, tree: Path, f: FileReport) -> None:
    """The model's missing libraries and symbols for an addon are the real loader's, less what node defines."""
    _, listed, _ = run_list(loader, tree / f.path.lstrip("/"))
    symbols = {s for _, s in listed.unresolved_symbols if not s.startswith(NODE)}
    assert ({lib.name for lib in f.missing_libraries}, {s.name for s in f.unresolved_symbols}) == (
        {name for name, _ in listed.missing_libraries}, symbols)


@pytest.fixture(scope="session")
def glibc_addon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What an install on a glibc machine leaves where prebuild-install or node-pre-gyp put the download (the
    release binaries live on GitHub, which the tests do not reach): an addon built here with gcc."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("glibc-addon")
    (out / "addon.c").write_text("#include <stdio.h>\nint napi_register_module_v1(void) { return puts(\"x\"); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out / "addon.node"), str(out / "addon.c")], check=True)
    return out / "addon.node"


@pytest.mark.oracle
def test_argon2_loads_its_linux_musl_prebuild_never_the_freebsd_one(tmp_path: Path,
                                                                   musl_loaders: dict[str, Path]) -> None:
    install(tmp_path, "argon2@0.45.1")
    base = f"{NM}/argon2/prebuilds"
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert set(found.selected) == {f"{base}/linux-x64/argon2.musl.node", f"{base}/linux-arm64/argon2.armv8.musl.node",
                                   f"{base}/linux-arm/argon2.armv7.musl.node"}
    assert found.unused[f"{base}/freebsd-x64/argon2.glibc.node"] == (
        "built for freebsd: node-gyp-build on linux looks only in prebuilds/linux-*")
    assert found.unused[f"{base}/linux-x64/argon2.glibc.node"] == (
        "tagged glibc: the loader on musl takes libc=musl and skips it")
    report = scan(tmp_path, musl="1.2.5", arch="x86_64")
    argon2 = only(report, "argon2")
    assert argon2.selected == {"x86_64": f"{base}/linux-x64/argon2.musl.node"}
    files = {f.path: f for f in report.files}
    assert files[f"{base}/freebsd-x64/argon2.glibc.node"].verdict is Verdict.NOT_APPLICABLE
    agrees_with_musl(musl_loaders["1.2.5"], tmp_path, files[f"{base}/linux-x64/argon2.musl.node"])


@pytest.mark.oracle
def test_lmdb_loads_the_musl_build_of_its_platform_package(tmp_path: Path, musl_loaders: dict[str, Path]) -> None:
    install(tmp_path, "lmdb@3.5.6", "@lmdb/lmdb-linux-x64@3.5.6")
    platform = f"{NM}/@lmdb/lmdb-linux-x64"
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert set(found.selected) == {f"{platform}/node.napi.musl.node"}
    assert set(found.unused) == {f"{platform}/node.abi115.glibc.node", f"{platform}/node.abi127.glibc.node",
                                 f"{platform}/node.napi.glibc.node"}
    [choice] = found.choices[package_key(package(found, "@lmdb/lmdb-linux-x64"))]
    assert choice.library == "lmdb" and choice.selected is not None and choice.selected.flavour is Flavour.MUSL
    report = scan(tmp_path, musl="1.2.5")
    assert only(report, "@lmdb/lmdb-linux-x64").selected == {"x86_64": f"{platform}/node.napi.musl.node"}
    files = {f.path: f for f in report.files}
    assert files[f"{platform}/node.abi115.glibc.node"].verdict is Verdict.NOT_APPLICABLE
    agrees_with_musl(musl_loaders["1.2.5"], tmp_path, files[f"{platform}/node.napi.musl.node"])


@pytest.mark.oracle
def test_msgpackr_extract_loads_a_musl_build_under_every_node(tmp_path: Path, musl_loaders: dict[str, Path]) -> None:
    install(tmp_path, "msgpackr-extract@3.0.7", "@msgpackr-extract/msgpackr-extract-linux-x64@3.0.7")
    platform = f"{NM}/@msgpackr-extract/msgpackr-extract-linux-x64"
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert "under a Node of ABI 115" in found.selected[f"{platform}/node.abi115.musl.node"]
    assert "under a Node whose ABI is none of 115" in found.selected[f"{platform}/node.napi.musl.node"]
    assert set(found.unused) == {f"{platform}/node.abi115.glibc.node", f"{platform}/node.napi.glibc.node"}
    report = scan(tmp_path, musl="1.2.5")
    component = only(report, "@msgpackr-extract/msgpackr-extract-linux-x64")
    assert component.selected == {"x86_64": f"{platform}/node.napi.musl.node"}
    files = {f.path: f for f in report.files}
    for build in ("node.abi115.musl.node", "node.napi.musl.node"):
        agrees_with_musl(musl_loaders["1.2.5"], tmp_path, files[f"{platform}/{build}"])


def test_swc_loads_its_musl_platform_package_and_never_the_gnu_one(tmp_path: Path) -> None:
    gnu = f"{NM}/@swc/core-linux-x64-gnu/swc.linux-x64-gnu.node"
    musl = f"{NM}/@swc/core-linux-x64-musl/swc.linux-x64-musl.node"
    # installed on glibc: only the gnu package
    glibc_tree = tmp_path / "glibc"
    install(glibc_tree, "@swc/core@1.7.26", "@swc/core-linux-x64-gnu@1.7.26")
    found = node.identify(DirectoryRoot(glibc_tree), elves_of(glibc_tree))
    gnu_package = package(found, "@swc/core-linux-x64-gnu")
    [choice] = found.choices[package_key(gnu_package)]
    assert (choice.library, choice.selected, choice.fallback) == ("@swc/core", None, None)
    assert gnu in found.unused and found.selected == {}
    assert gnu_package.advice[0].startswith("npm ci on Alpine installs @swc/core-linux-x64-musl")
    assert "npm 10.4.0 and later" in gnu_package.advice[0]
    # installed on Alpine by an npm that installs both (before 10.4.0), or on Alpine: the musl one loads
    both = tmp_path / "both"
    install(both, "@swc/core@1.7.26", "@swc/core-linux-x64-gnu@1.7.26", "@swc/core-linux-x64-musl@1.7.26")
    found = node.identify(DirectoryRoot(both), elves_of(both))
    assert list(found.selected) == [musl] and list(found.unused) == [gnu]
    [choice] = found.choices[package_key(package(found, "@swc/core-linux-x64-musl"))]
    assert choice.selected is not None and choice.selected.flavour is Flavour.MUSL


def test_sharp_on_musl_requires_its_linuxmusl_packages(tmp_path: Path) -> None:
    glibc_tree = tmp_path / "glibc"
    install(glibc_tree, "sharp@0.33.5", "@img/sharp-linux-x64@0.33.5", "@img/sharp-libvips-linux-x64@1.0.4")
    found = node.identify(DirectoryRoot(glibc_tree), elves_of(glibc_tree))
    for name, musl in (("@img/sharp-linux-x64", "@img/sharp-linuxmusl-x64"),
                       ("@img/sharp-libvips-linux-x64", "@img/sharp-libvips-linuxmusl-x64")):
        glibc = package(found, name)
        [choice] = found.choices[package_key(glibc)]
        assert (choice.library, choice.selected) == ("sharp", None)
        assert glibc.advice[0].startswith(f"npm ci on Alpine installs {musl} ")
    assert found.selected == {}
    musl_tree = tmp_path / "musl"
    install(musl_tree, "sharp@0.33.5", "@img/sharp-linuxmusl-x64@0.33.5", "@img/sharp-libvips-linuxmusl-x64@1.0.4")
    found = node.identify(DirectoryRoot(musl_tree), elves_of(musl_tree))
    addon = f"{NM}/@img/sharp-linuxmusl-x64/lib/sharp-linuxmusl-x64.node"
    assert found.selected[addon].startswith("on musl, sharp loads @img/sharp-linuxmusl-x64")
    assert found.unused == {}
    [choice] = found.choices[package_key(package(found, "@img/sharp-linuxmusl-x64"))]
    assert choice.selected is not None and choice.selected.path == addon


def test_esbuild_runs_its_one_linux_x64_program_on_musl(tmp_path: Path) -> None:
    install(tmp_path, "esbuild@0.24.2", "@esbuild/linux-x64@0.24.2")
    program = f"{NM}/@esbuild/linux-x64/bin/esbuild"
    report = scan(tmp_path, musl="1.2.5")
    esbuild = only(report, "@esbuild/linux-x64")
    assert (esbuild.ecosystem, esbuild.verdict, esbuild.selected) == ("npm", Verdict.NATIVE, {"x86_64": program})
    assert any(n.startswith("esbuild declares no other Linux build") for n in esbuild.notes)
    [f] = report.files
    assert (f.kind, f.context) == ("static", None)  # a statically linked Go program, not an addon node dlopens


def test_bcrypt_6_loads_its_musl_prebuild(tmp_path: Path) -> None:
    install(tmp_path, "bcrypt@6.0.0")
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    base = f"{NM}/bcrypt/prebuilds"
    assert f"{base}/linux-x64/bcrypt.musl.node" in found.selected
    assert found.unused[f"{base}/linux-x64/bcrypt.glibc.node"].startswith("tagged glibc")
    [bcrypt] = found.packages
    [x64] = [c for c in found.choices[package_key(bcrypt)] if c.arch == "x86_64"]
    assert x64.selected is not None and x64.selected.path == f"{base}/linux-x64/bcrypt.musl.node"
    assert bcrypt.advice == ()


def test_bcrypt_5_node_pre_gyp_download_from_a_glibc_install(tmp_path: Path, glibc_addon: Path) -> None:
    install(tmp_path, "bcrypt@5.1.1")
    module = f"{NM}/bcrypt/lib/binding/napi-v3/bcrypt_lib.node"  # where node-pre-gyp unpacks the download
    put(tmp_path, module, glibc_addon)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [bcrypt] = found.packages
    assert found.selected[module].startswith("node-pre-gyp loads lib/binding/napi-v3/bcrypt_lib.node")
    assert bcrypt.advice == ("npm rebuild bcrypt on Alpine: node-pre-gyp then downloads "
                             "bcrypt_lib-v5.1.1-napi-v3-linux-x64-musl.tar.gz, or compiles it where the release has "
                             "none (apk add build-base python3)",)


def test_better_sqlite3_prebuild_install_download_from_a_glibc_install(tmp_path: Path, glibc_addon: Path) -> None:
    install(tmp_path, "better-sqlite3@11.7.0")
    module = f"{NM}/better-sqlite3/build/Release/better_sqlite3.node"  # where prebuild-install unpacks it
    put(tmp_path, module, glibc_addon)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [sqlite] = found.packages
    assert found.selected[module].startswith("prebuild-install downloaded this build at install time")
    assert sqlite.advice == ("npm rebuild better-sqlite3 on Alpine: prebuild-install then downloads its linuxmusl "
                             "build or compiles it (apk add build-base python3 to compile)",)
