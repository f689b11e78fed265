"""npm packages owning Node addons, and the musl build npm or node-gyp-build picks (muslcheck.apps.node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from muslcheck.apps import node
from muslcheck.apps.model import Flavour, Host, package_key
from muslcheck.elf import read_elf_file
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.directory import DirectoryRoot
from tests.apps.apptrees import elves_of, put

NM = "/app/node_modules"
SWC_GNU = f"{NM}/@swc/core-linux-x64-gnu"
SWC_ADDON = f"{SWC_GNU}/swc.linux-x64-gnu.node"


@pytest.fixture(scope="session")
def addons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A glibc addon (gcc), a musl addon (musl-gcc) and a static program (musl-gcc -static)."""
    missing = [c for c in ("gcc", "musl-gcc") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    out = tmp_path_factory.mktemp("addons")
    (out / "addon.c").write_text("#include <stdio.h>\nint napi_register_module_v1(void) { return puts(\"x\"); }\n")
    (out / "main.c").write_text("#include <stdio.h>\nint main(void) { return puts(\"x\") < 0; }\n")
    built = {}
    for libc, compiler in (("glibc", "gcc"), ("musl", "musl-gcc")):
        built[libc] = out / f"{libc}.node"
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(built[libc]), str(out / "addon.c")], check=True)
    built["static"] = out / "static"
    subprocess.run(["musl-gcc", "-static", "-o", str(built["static"]), str(out / "main.c")], check=True)
    return built



def swc_tree(tree: Path, addons: dict[str, Path], declared_musl: bool = True) -> None:
    put(tree, SWC_ADDON, addons["glibc"])
    put(tree, f"{SWC_GNU}/package.json", {"name": "@swc/core-linux-x64-gnu", "version": "1.3.100",
                                          "os": ["linux"], "cpu": ["x64"], "libc": ["glibc"]})
    optional = {"@swc/core-linux-x64-gnu": "1.3.100", "@swc/core-darwin-arm64": "1.3.100"}
    if declared_musl:
        optional["@swc/core-linux-x64-musl"] = "1.3.100"
    put(tree, f"{NM}/@swc/core/package.json", {"name": "@swc/core", "version": "1.3.100",
                                               "optionalDependencies": optional})


def test_a_gnu_platform_package_without_its_musl_sibling_loads_nothing_on_musl(tmp_path: Path,
                                                                              addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.problems == ()
    [package] = found.packages
    assert package.ecosystem is Ecosystem.NPM
    assert (package.name, package.version, package.location) == ("@swc/core-linux-x64-gnu", "1.3.100", SWC_GNU)
    assert package.host is Host.NODE
    assert package.advice == ("npm ci on Alpine installs @swc/core-linux-x64-musl (an optional dependency of "
                              "@swc/core; npm 10.4.0 and later leave @swc/core-linux-x64-gnu out there, older ones "
                              "install both)",)
    assert package.notes == ("@swc/core declares both @swc/core-linux-x64-gnu and @swc/core-linux-x64-musl as "
                             "optional dependencies; npm installs those whose os, cpu and libc match the machine",)
    assert found.owner == {SWC_ADDON: package}
    [choice] = found.choices[package_key(package)]
    assert (choice.library, choice.arch, choice.selected, choice.fallback) == ("@swc/core", "x86_64", None, None)
    assert choice.how.startswith("on musl, @swc/core requires @swc/core-linux-x64-musl, which is not installed")
    assert [n.path for n in choice.unused] == [SWC_ADDON]
    assert found.selected == {} and SWC_ADDON in found.unused


def test_an_installed_webassembly_build_is_the_fallback(tmp_path: Path, addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons)
    core = json.loads((tmp_path / f"{NM.lstrip('/')}/@swc/core/package.json").read_text())
    core["optionalDependencies"]["@swc/core-wasm32-wasi"] = "1.3.100"
    put(tmp_path, f"{NM}/@swc/core/package.json", core)
    put(tmp_path, f"{NM}/@swc/core-wasm32-wasi/package.json", {"name": "@swc/core-wasm32-wasi"})
    [package] = (found := node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))).packages
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None
    assert choice.fallback == "@swc/core loads @swc/core-wasm32-wasi (WebAssembly) instead"
    assert choice.lost is not None


def test_the_only_declared_build_for_its_platform_is_what_runs_on_musl(tmp_path: Path,
                                                                       addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons, declared_musl=False)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.advice, package.notes) == ((), ())
    how = ("@swc/core declares no other Linux build for this architecture: npm installs @swc/core-linux-x64-gnu on "
           "musl too, and it is what runs there")
    assert found.selected == {SWC_ADDON: how}
    [choice] = found.choices[package_key(package)]
    assert (choice.selected is not None and choice.selected.path, choice.how) == (SWC_ADDON, how)


def test_an_installed_musl_sibling_is_what_loads(tmp_path: Path, addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons)
    musl_addon = f"{NM}/@swc/core-linux-x64-musl/swc.linux-x64-musl.node"
    put(tmp_path, musl_addon, addons["musl"])
    put(tmp_path, f"{NM}/@swc/core-linux-x64-musl/package.json", {"name": "@swc/core-linux-x64-musl",
                                                                  "version": "1.3.100", "libc": ["musl"]})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    gnu, musl = found.packages
    why = "@swc/core-linux-x64-musl is installed too: on musl, @swc/core loads that one, never @swc/core-linux-x64-gnu"
    assert (gnu.advice, gnu.notes) == ((), (why,))
    assert found.unused == {SWC_ADDON: why}
    assert package_key(gnu) not in found.choices
    assert (musl.name, musl.advice, musl.notes) == ("@swc/core-linux-x64-musl", (), ())
    assert found.selected == {musl_addon: "on musl, @swc/core loads @swc/core-linux-x64-musl: its loader decides the "
                                          "libc at run time and requires the musl package there"}
    [choice] = found.choices[package_key(musl)]
    assert choice.selected is not None and (choice.selected.path, choice.selected.flavour) == (musl_addon, Flavour.MUSL)


def test_sharp_style_linuxmusl_names_and_a_differently_named_parent(tmp_path: Path, addons: dict[str, Path]) -> None:
    vips = f"{NM}/@img/sharp-linux-x64/lib/sharp-linux-x64.node"
    put(tmp_path, vips, addons["glibc"])
    put(tmp_path, f"{NM}/@img/sharp-linux-x64/package.json",
        {"name": "@img/sharp-linux-x64", "version": "0.33.2", "libc": "glibc"})
    put(tmp_path, f"{NM}/sharp/package.json", {"name": "sharp", "version": "0.33.2", "optionalDependencies": {
        "@img/sharp-linux-x64": "0.33.2", "@img/sharp-linuxmusl-x64": "0.33.2"}})
    # a parent whose name cannot be derived: found by looking at every package beside it
    other = f"{NM}/fast-native-linux-x64-gnu/fast.node"
    put(tmp_path, other, addons["glibc"])
    put(tmp_path, f"{NM}/fast-native-linux-x64-gnu/package.json", {"name": "fast-native-linux-x64-gnu"})
    put(tmp_path, f"{NM}/@acme/loader/package.json", {"name": "@acme/loader", "optionalDependencies": {
        "fast-native-linux-x64-gnu": "1", "fast-native-linux-x64-musl": "1"}})
    put(tmp_path, f"{NM}/@acme/broken/package.json", "{broken")
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    by_name = {p.name: p for p in found.packages}
    assert by_name["@img/sharp-linux-x64"].advice[0].startswith(
        "npm ci on Alpine installs @img/sharp-linuxmusl-x64 (an optional dependency of sharp;")
    assert by_name["fast-native-linux-x64-gnu"].advice[0].startswith(
        "npm ci on Alpine installs fast-native-linux-x64-musl (an optional dependency of @acme/loader;")
    assert by_name["fast-native-linux-x64-gnu"].version is None
    assert {c.library for p in found.packages for c in found.choices[package_key(p)]} == {"sharp", "@acme/loader"}
    assert found.owner[vips].name == "@img/sharp-linux-x64"
    assert found.problems == ()  # /app has no package.json, and no sibling's problems are reported


def test_a_program_in_a_platform_package_is_owned_and_selected(tmp_path: Path, addons: dict[str, Path]) -> None:
    """esbuild: one @esbuild/linux-x64 for glibc and musl alike, an executable rather than an addon."""
    program = f"{NM}/@esbuild/linux-x64/bin/esbuild"
    put(tmp_path, program, addons["static"])
    put(tmp_path, f"{NM}/@esbuild/linux-x64/package.json",
        {"name": "@esbuild/linux-x64", "version": "0.24.2", "os": ["linux"], "cpu": ["x64"]})
    put(tmp_path, f"{NM}/esbuild/package.json", {"name": "esbuild", "version": "0.24.2", "optionalDependencies": {
        "@esbuild/linux-x64": "0.24.2", "@esbuild/darwin-arm64": "0.24.2"}})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.host) == ("@esbuild/linux-x64", None)  # run as a program, not dlopen-ed by node
    assert found.selected[program].startswith("esbuild declares no other Linux build for this architecture")
    [choice] = found.choices[package_key(package)]
    assert choice.selected is not None and choice.selected.path == program


def put_prebuilds(tree: Path, package: str, builds: dict[str, Path], dependencies: bool = True,
                  loader: str = "node-gyp-build") -> str:
    directory = f"{NM}/{package}"
    put(tree, f"{directory}/package.json", {"name": package, "version": "1.0.0",
                                            "dependencies": {loader: "^4.8.0"} if dependencies else {}})
    for name, source in builds.items():
        put(tree, f"{directory}/prebuilds/{name}", source)
    return directory


def test_prebuilds_with_glibc_and_musl_builds_load_the_musl_one(tmp_path: Path, addons: dict[str, Path]) -> None:
    directory = put_prebuilds(tmp_path, "classic-level", {
        "linux-x64/node.napi.glibc.node": addons["glibc"],
        "linux-x64/node.napi.musl.node": addons["musl"],
        "darwin-x64+arm64/node.napi.node": addons["glibc"],  # another OS: not considered
    })
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    musl = f"{directory}/prebuilds/linux-x64/node.napi.musl.node"
    glibc = f"{directory}/prebuilds/linux-x64/node.napi.glibc.node"
    how = ("node-gyp-build on musl loads prebuilds/linux-x64/node.napi.musl.node: tagged musl, the most specific "
           "build it accepts")
    assert found.selected == {musl: how}
    assert found.unused == {glibc: "tagged glibc: the loader on musl takes libc=musl and skips it",
                            f"{directory}/prebuilds/darwin-x64+arm64/node.napi.node":
                            "built for darwin: node-gyp-build on linux looks only in prebuilds/linux-*"}
    [package] = found.packages
    assert (package.name, package.location, package.notes, package.advice) == ("classic-level", directory, (), ())
    assert set(found.owner) == {musl, glibc, f"{directory}/prebuilds/darwin-x64+arm64/node.napi.node"}
    [choice] = found.choices[package_key(package)]
    assert (choice.library, choice.arch, choice.how) == ("classic-level", "x86_64", how)
    assert choice.selected is not None and choice.selected.path == musl
    assert [n.path for n in choice.unused] == [glibc]


def test_prebuilds_of_another_platform_are_never_loaded_on_linux(tmp_path: Path, addons: dict[str, Path]) -> None:
    """argon2 0.45.1 ships prebuilds/freebsd-x64/argon2.glibc.node: an x86_64 ELF that node-gyp-build on linux never
    looks at (it reads prebuilds/<os.platform()>-<os.arch()>)."""
    directory = put_prebuilds(tmp_path, "argon2", {
        "freebsd-x64/argon2.glibc.node": addons["glibc"],
        "linux-x64/argon2.glibc.node": addons["glibc"],
        "linux-x64/argon2.musl.node": addons["musl"],
    })
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    base = f"{directory}/prebuilds"
    assert list(found.selected) == [f"{base}/linux-x64/argon2.musl.node"]
    assert found.unused[f"{base}/freebsd-x64/argon2.glibc.node"] == (
        "built for freebsd: node-gyp-build on linux looks only in prebuilds/linux-*")
    [package] = found.packages
    [choice] = found.choices[package_key(package)]
    assert choice.selected is not None and choice.selected.path == f"{base}/linux-x64/argon2.musl.node"


def test_an_untagged_napi_build_matches_either_libc(tmp_path: Path, addons: dict[str, Path]) -> None:
    directory = put_prebuilds(tmp_path, "bufferutil", {
        "linux-x64/node.napi.glibc.node": addons["glibc"],
        "linux-x64/node.napi.node": addons["glibc"],
    })
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert list(found.selected) == [f"{directory}/prebuilds/linux-x64/node.napi.node"]
    assert list(found.unused) == [f"{directory}/prebuilds/linux-x64/node.napi.glibc.node"]


def test_only_glibc_prebuilds_load_nothing_on_musl(tmp_path: Path, addons: dict[str, Path]) -> None:
    directory = put_prebuilds(tmp_path, "utf-8-validate", {"linux-x64/utf-8-validate.glibc.node": addons["glibc"]})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.selected == {}
    assert list(found.unused) == [f"{directory}/prebuilds/linux-x64/utf-8-validate.glibc.node"]
    [package] = found.packages
    fails = ("node-gyp-build finds no build for musl in prebuilds/linux-x64: require() fails with 'No native build "
             "was found'")
    assert package.notes == (fails,)
    assert package.advice == ("npm rebuild utf-8-validate on Alpine: with no musl build to load, its install step "
                              "compiles one (apk add build-base python3)",)
    [choice] = found.choices[package_key(package)]
    assert (choice.selected, choice.how, choice.fallback) == (None, fails, None)


def test_abi_tagged_builds_each_load_under_their_node(tmp_path: Path, addons: dict[str, Path]) -> None:
    directory = put_prebuilds(tmp_path, "leveldown", {
        "linux-x64/node.abi108.node": addons["glibc"],
        "linux-x64/node.abi115.node": addons["glibc"],
        "linux-x64/node.napi.node": addons["glibc"],
        "linux-x64/electron.napi.node": addons["glibc"],
        "linux-x64/node.napi.uv2.node": addons["glibc"],
    })
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    base = f"{directory}/prebuilds/linux-x64"
    assert found.selected[f"{base}/node.abi108.node"].endswith(" under a Node of ABI 108: the best ranked build "
                                                               "it accepts (runtime node, then an ABI tag, then "
                                                               "the most tags)")
    assert "under a Node of ABI 115" in found.selected[f"{base}/node.abi115.node"]
    assert "under a Node whose ABI is none of 108, 115" in found.selected[f"{base}/node.napi.node"]
    assert found.unused == {f"{base}/electron.napi.node": "built for electron, not node",
                            f"{base}/node.napi.uv2.node": "built for libuv 2"}
    [package] = found.packages
    [choice] = found.choices[package_key(package)]  # the build any other Node loads stands for the architecture
    assert choice.selected is not None and choice.selected.path == f"{base}/node.napi.node"


def test_a_single_architecture_directory_wins_and_a_local_build_wins_over_all(tmp_path: Path,
                                                                               addons: dict[str, Path]) -> None:
    multi = put_prebuilds(tmp_path, "multi", {
        "linux-x64+arm64/node.napi.node": addons["musl"],
        "linux-x64/node.napi.node": addons["musl"],
    })
    local = put_prebuilds(tmp_path, "local", {"linux-x64/node.napi.musl.node": addons["musl"]})
    put(tmp_path, f"{local}/build/Release/local.node", addons["glibc"])
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    # linux-x64 is chosen on x64; the multi-architecture directory is still the one arm64 loads from
    assert f"{multi}/prebuilds/linux-x64/node.napi.node" in found.selected
    assert "prebuilds/linux-x64+arm64/node.napi.node: the only build" in found.selected[
        f"{multi}/prebuilds/linux-x64+arm64/node.napi.node"]
    assert found.selected[f"{local}/build/Release/local.node"] == (
        "node-gyp-build loads a local build (build/Release, build/Debug) before any prebuild")
    assert found.unused[f"{local}/prebuilds/linux-x64/node.napi.musl.node"] == (
        f"node-gyp-build loads {local}/build/Release/local.node before any prebuild (unless PREBUILDS_ONLY is set)")
    by_name = {p.name: p for p in found.packages}
    assert by_name["local"].advice == ("npm rebuild local on Alpine: this build was made on a glibc machine "
                                       "(apk add build-base python3 to compile it there)",)


@pytest.mark.parametrize(("file", "reason"), [
    ("node.napi.glibc.node", "tagged glibc: the loader on musl takes libc=musl and skips it"),
    ("napi.musl.node", "no node tag: the loader requires one"),
    ("node.musl.node", "neither an abi nor a napi tag: the loader requires one"),
    ("electron.napi.musl.node", "built for electron, not node"),
])
def test_optional_packages_tags_are_stricter_than_node_gyp_builds(file: str, reason: str) -> None:
    """node-gyp-build-optional-packages' matchTags has no "tags.runtime &&" and no "tags.abi &&" guard."""
    tags = node.parse_tags(file)
    assert tags is not None
    assert node.rejection(tags, "x64", None, strict=True) == reason
    if "glibc" not in file and "electron" not in file:
        assert node.rejection(tags, "x64", None) is None  # node-gyp-build takes it


def optional_tree(tree: Path, addons: dict[str, Path], name: str, files: dict[str, str]) -> str:
    """lmdb's layout: the package depends on node-gyp-build-optional-packages and declares @name/name-linux-x64."""
    platform = f"@{name}/{name}-linux-x64"
    put(tree, f"{NM}/{name}/package.json", {
        "name": name, "version": "3.5.6", "dependencies": {"node-gyp-build-optional-packages": "5.2.2"},
        "optionalDependencies": {platform: "3.5.6", f"@{name}/{name}-darwin-arm64": "3.5.6"}})
    put(tree, f"{NM}/{platform}/package.json", {"name": platform, "version": "3.5.6", "os": ["linux"],
                                                "cpu": ["x64"]})
    for file, libc in files.items():
        put(tree, f"{NM}/{platform}/{file}", addons[libc])
    return f"{NM}/{platform}"


def test_an_optional_platform_package_loads_its_musl_build(tmp_path: Path, addons: dict[str, Path]) -> None:
    platform = optional_tree(tmp_path, addons, "lmdb", {
        "node.abi115.glibc.node": "glibc", "node.abi127.glibc.node": "glibc",
        "node.napi.glibc.node": "glibc", "node.napi.musl.node": "musl"})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.selected == {f"{platform}/node.napi.musl.node": (
        "node-gyp-build-optional-packages on musl loads @lmdb/lmdb-linux-x64/node.napi.musl.node: tagged musl, the "
        "most specific build it accepts")}
    assert set(found.unused) == {f"{platform}/node.abi115.glibc.node", f"{platform}/node.abi127.glibc.node",
                                 f"{platform}/node.napi.glibc.node"}
    [package] = found.packages
    [choice] = found.choices[package_key(package)]
    assert choice.library == "lmdb" and choice.selected is not None
    assert choice.selected.path == f"{platform}/node.napi.musl.node"


def test_an_optional_platform_package_with_an_abi_build_for_musl(tmp_path: Path, addons: dict[str, Path]) -> None:
    """msgpackr-extract 3.0.7's layout: under Node 20 (ABI 115) the abi115 musl build, else the napi one."""
    platform = optional_tree(tmp_path, addons, "msgpackr-extract", {
        "node.abi115.glibc.node": "glibc", "node.abi115.musl.node": "musl",
        "node.napi.glibc.node": "glibc", "node.napi.musl.node": "musl"})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert "under a Node of ABI 115" in found.selected[f"{platform}/node.abi115.musl.node"]
    assert "under a Node whose ABI is none of 115" in found.selected[f"{platform}/node.napi.musl.node"]
    assert set(found.unused) == {f"{platform}/node.abi115.glibc.node", f"{platform}/node.napi.glibc.node"}


def test_msgpackr_decodes_in_javascript_when_msgpackr_extract_loads_nothing(tmp_path: Path,
                                                                           addons: dict[str, Path]) -> None:
    platform = optional_tree(tmp_path, addons, "msgpackr-extract", {"node.abi115.glibc.node": "glibc",
                                                                    "node.napi.glibc.node": "glibc"})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert package.location == platform and found.selected == {}
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None
    assert choice.fallback is not None and "decodes strings in JavaScript" in choice.fallback
    assert choice.lost is not None


def test_the_parents_local_build_comes_before_its_platform_package(tmp_path: Path, addons: dict[str, Path]) -> None:
    platform = optional_tree(tmp_path, addons, "lmdb", {"node.napi.musl.node": "musl"})
    put(tmp_path, f"{NM}/lmdb/build/Release/lmdb.node", addons["glibc"])
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    why = (f"node-gyp-build-optional-packages loads {NM}/lmdb/build/Release/lmdb.node before the platform package "
           "@lmdb/lmdb-linux-x64")
    assert found.unused[f"{platform}/node.napi.musl.node"] == why
    assert f"{NM}/lmdb/build/Release/lmdb.node" in found.selected


def test_prebuild_install_downloads_for_the_installing_machine(tmp_path: Path, addons: dict[str, Path]) -> None:
    """better-sqlite3: "install": "prebuild-install || node-gyp rebuild --release"; bindings loads build/Release."""
    for libc in ("glibc", "musl"):
        directory = f"/{libc}{NM}/better-sqlite3"
        put(tmp_path, f"{directory}/package.json", {
            "name": "better-sqlite3", "version": "11.7.0", "dependencies": {"bindings": "^1.5.0",
                                                                           "prebuild-install": "^7.1.1"},
            "scripts": {"install": "prebuild-install || node-gyp rebuild --release"}})
        put(tmp_path, f"{directory}/build/Release/better_sqlite3.node", addons[libc])
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    glibc, musl = sorted(found.packages, key=lambda p: p.location)
    assert glibc.advice == ("npm rebuild better-sqlite3 on Alpine: prebuild-install then downloads its linuxmusl "
                            "build or compiles it (apk add build-base python3 to compile)",)
    assert musl.advice == ()
    for package in (glibc, musl):
        path = f"{package.location}/build/Release/better_sqlite3.node"
        assert found.selected[path].startswith("prebuild-install downloaded this build at install time for the "
                                               "installing machine's libc")
        [choice] = found.choices[package_key(package)]
        assert choice.selected is not None and choice.selected.path == path


def node_pre_gyp_tree(tree: Path, addons: dict[str, Path], module_path: str, package_name: str,
                      builds: dict[str, str]) -> str:
    directory = f"{NM}/bcrypt"
    put(tree, f"{directory}/package.json", {
        "name": "bcrypt", "version": "5.1.1", "dependencies": {"@mapbox/node-pre-gyp": "^1.0.11"},
        "scripts": {"install": "node-pre-gyp install --fallback-to-build"},
        "binary": {"module_name": "bcrypt_lib", "module_path": module_path, "package_name": package_name,
                   "napi_versions": [3]}})
    for path, libc in builds.items():
        put(tree, f"{directory}/{path}", addons[libc])
    return directory


def test_node_pre_gyp_loads_its_module_path_whatever_libc_it_was_fetched_for(tmp_path: Path,
                                                                             addons: dict[str, Path]) -> None:
    """bcrypt 5.1.1's binary section: the module path names no libc, the download does."""
    directory = node_pre_gyp_tree(
        tmp_path, addons, "./lib/binding/napi-v{napi_build_version}",
        "{module_name}-v{version}-napi-v{napi_build_version}-{platform}-{arch}-{libc}.tar.gz",
        {"lib/binding/napi-v3/bcrypt_lib.node": "glibc"})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    module = f"{directory}/lib/binding/napi-v3/bcrypt_lib.node"
    assert found.selected[module].startswith("node-pre-gyp loads lib/binding/napi-v3/bcrypt_lib.node, downloaded at "
                                             "install time for the installing machine")
    assert package.advice == ("npm rebuild bcrypt on Alpine: node-pre-gyp then downloads "
                              "bcrypt_lib-v5.1.1-napi-v3-linux-x64-musl.tar.gz, or compiles it where the release has "
                              "none (apk add build-base python3)",)


def test_node_pre_gyp_with_the_libc_in_its_module_path_finds_nothing_on_musl(tmp_path: Path,
                                                                             addons: dict[str, Path]) -> None:
    directory = node_pre_gyp_tree(
        tmp_path, addons, "./lib/binding/{platform}-{arch}-{libc}", "{module_name}-v{version}-{platform}-{arch}.tar.gz",
        {"lib/binding/linux-x64-glibc/bcrypt_lib.node": "glibc"})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    module = f"{directory}/lib/binding/linux-x64-glibc/bcrypt_lib.node"
    assert found.unused == {module: "node-pre-gyp on musl loads lib/binding/linux-x64-musl/bcrypt_lib.node, not this "
                                    "file"}
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None and "lib/binding/linux-x64-musl/bcrypt_lib.node" in choice.how
    assert package.advice[0].startswith("npm rebuild bcrypt --build-from-source on Alpine: its downloads do not name a "
                                        "libc")


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"\x00\x01\x02binary", "binary content (NUL bytes): not a metadata file"),
    (b'{"name": "\xff"}', "not UTF-8 text (byte 10)"),
    ("[\n" * 200000 + "]\n" * 200000, "not JSON: nested too deeply"),
    ('["a", "list"]', "not a JSON object"),
    ('{"name": 42, "version": ["1"], "optionalDependencies": "x"}',
     "package.json field of the wrong form: name, version, optionalDependencies"),
], ids=["bad-json", "binary", "bad-utf8", "deep-nesting", "not-an-object", "wrong-types"])
def test_bad_package_json_is_a_skip_and_the_directory_names_it(tmp_path: Path, addons: dict[str, Path],
                                                                content: str | bytes, reason: str) -> None:
    addon = f"{NM}/@acme/thing/build/Release/thing.node"
    put(tmp_path, addon, addons["glibc"])
    put(tmp_path, f"{NM}/@acme/thing/package.json", content)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version, package.location) == ("@acme/thing", None, f"{NM}/@acme/thing")
    assert found.problems == (Skip(f"{NM}/@acme/thing/package.json", reason, unchecked=False),)
    assert found.owner == {addon: package}


def test_a_missing_package_json_is_a_skip(tmp_path: Path, addons: dict[str, Path]) -> None:
    addon = f"{NM}/bare/lib/bare.so.1"
    put(tmp_path, addon, addons["glibc"])
    put(tmp_path, "/app/build/Release/app.node", addons["glibc"])  # no node_modules: not an npm package
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.location) == ("bare", f"{NM}/bare")
    assert found.problems == (Skip(f"{NM}/bare/package.json", "no package.json: the name is the directory's",
                                   unchecked=False),)
    assert list(found.owner) == [addon]


@pytest.mark.parametrize(("path", "directory"), [
    ("/a/node_modules/x/build/Release/x.node", "/a/node_modules/x"),
    ("/a/node_modules/@s/x/x.node", "/a/node_modules/@s/x"),
    ("/a/node_modules/x/node_modules/@s/y/lib/y.node", "/a/node_modules/x/node_modules/@s/y"),
    ("/a/node_modules/.pnpm/@s+x@1.0.0/node_modules/@s/x/x.node", "/a/node_modules/.pnpm/@s+x@1.0.0/node_modules/@s/x"),
    ("/a/build/x.node", None),
])
def test_package_dir_of(path: str, directory: str | None) -> None:
    assert node.package_dir_of(path) == directory


@pytest.mark.parametrize(("file", "expected"), [
    ("node.napi.musl.node", node.PrebuildTags("node.napi.musl.node", "node", True, None, None, None, "musl", 3)),
    ("electron.abi118.node", node.PrebuildTags("electron.abi118.node", "electron", False, "118", None, None, None, 2)),
    ("sodium.armv7.uv1.glibc.node", node.PrebuildTags("sodium.armv7.uv1.glibc.node", None, False, None, "1", "7",
                                                      "glibc", 3)),
    ("addon.so", None),
])
def test_parse_tags_reads_file_names_as_node_gyp_build(file: str, expected: node.PrebuildTags | None) -> None:
    assert node.parse_tags(file) == expected


def test_node_provides_matches_this_machines_node() -> None:
    """Each prefix names symbols a real node binary defines (addons import napi_*, uv_*, V8, OpenSSL, zlib)."""
    binary = shutil.which("node")
    if binary is None:
        pytest.skip("no node binary on this machine")
    facts = read_elf_file(Path(binary).resolve())
    defined = [e.name for e in facts.exports if not e.plt_only]
    if not any(n.startswith("napi_") for n in defined):
        pytest.skip("this node exports no Node-API (a shared libnode build)")
    unmatched = [p for p in node.NODE_PROVIDES if not any(n.startswith(p) for n in defined)]
    assert unmatched == []
    for symbol in ("napi_create_function", "uv_default_loop", "EVP_DigestInit_ex", "SSL_CTX_new", "deflate"):
        assert symbol in defined
