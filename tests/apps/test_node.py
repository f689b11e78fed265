"""npm packages owning Node addons, and the musl build npm or node-gyp-build picks (muslcheck.apps.node)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from apptrees import elves_of, put

from muslcheck.apps import node
from muslcheck.apps.model import Ecosystem, Host
from muslcheck.elf import read_elf_file
from muslcheck.model.report import Skip
from muslcheck.targets.directory import DirectoryRoot

NM = "/app/node_modules"
SWC_GNU = f"{NM}/@swc/core-linux-x64-gnu"
SWC_ADDON = f"{SWC_GNU}/swc.linux-x64-gnu.node"


@pytest.fixture(scope="session")
def addons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A glibc addon (gcc) and a musl addon (musl-gcc)."""
    missing = [c for c in ("gcc", "musl-gcc") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    out = tmp_path_factory.mktemp("addons")
    (out / "addon.c").write_text("#include <stdio.h>\nint napi_register_module_v1(void) { return puts(\"x\"); }\n")
    built = {}
    for libc, compiler in (("glibc", "gcc"), ("musl", "musl-gcc")):
        built[libc] = out / f"{libc}.node"
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(built[libc]), str(out / "addon.c")], check=True)
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


def test_a_gnu_platform_package_gets_the_musl_sibling_as_advice(tmp_path: Path, addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons)
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.problems == ()
    [package] = found.packages
    assert package.ecosystem is Ecosystem.NPM
    assert (package.name, package.version, package.location) == ("@swc/core-linux-x64-gnu", "1.3.100", SWC_GNU)
    assert package.host is Host.NODE
    assert package.advice == ("npm ci on Alpine installs @swc/core-linux-x64-musl instead "
                              "(an optional dependency of @swc/core)",)
    assert package.notes == ("@swc/core declares both @swc/core-linux-x64-gnu and @swc/core-linux-x64-musl as "
                             "optional dependencies; npm installs only the one whose os, cpu and libc match the "
                             "machine",)
    assert found.owner == {SWC_ADDON: package}
    assert (found.selected, found.unused) == ({}, {})


def test_no_advice_when_the_parent_does_not_declare_a_musl_build(tmp_path: Path, addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons, declared_musl=False)
    [package] = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path)).packages
    assert (package.advice, package.notes) == ((), ())


def test_an_installed_musl_sibling_is_a_note(tmp_path: Path, addons: dict[str, Path]) -> None:
    swc_tree(tmp_path, addons)
    put(tmp_path, f"{NM}/@swc/core-linux-x64-musl/swc.linux-x64-musl.node", addons["musl"])
    put(tmp_path, f"{NM}/@swc/core-linux-x64-musl/package.json", {"name": "@swc/core-linux-x64-musl",
                                                                  "version": "1.3.100", "libc": ["musl"]})
    found = node.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    gnu, musl = found.packages
    assert gnu.advice == ()
    assert gnu.notes == ("@swc/core-linux-x64-musl is installed too: on musl, @swc/core is meant to load that one",)
    assert (musl.name, musl.advice, musl.notes) == ("@swc/core-linux-x64-musl", (), ())


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
    assert by_name["@img/sharp-linux-x64"].advice == (
        "npm ci on Alpine installs @img/sharp-linuxmusl-x64 instead (an optional dependency of sharp)",)
    assert by_name["fast-native-linux-x64-gnu"].advice == (
        "npm ci on Alpine installs fast-native-linux-x64-musl instead (an optional dependency of @acme/loader)",)
    assert by_name["fast-native-linux-x64-gnu"].version is None
    assert found.owner[vips].name == "@img/sharp-linux-x64"
    assert found.problems == ()  # /app has no package.json, and no sibling's problems are reported


def put_prebuilds(tree: Path, package: str, builds: dict[str, Path], dependencies: bool = True) -> str:
    directory = f"{NM}/{package}"
    put(tree, f"{directory}/package.json", {"name": package, "version": "1.0.0",
                                            "dependencies": {"node-gyp-build": "^4.8.0"} if dependencies else {}})
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
    assert found.selected == {musl: "node-gyp-build on musl loads prebuilds/linux-x64/node.napi.musl.node: "
                                    "tagged musl, the most specific build it accepts"}
    assert found.unused == {glibc: "tagged glibc: node-gyp-build on Alpine (/etc/alpine-release) takes libc=musl "
                                   "and skips it"}
    [package] = found.packages
    assert (package.name, package.location, package.notes) == ("classic-level", directory, ())
    assert set(found.owner) == {musl, glibc, f"{directory}/prebuilds/darwin-x64+arm64/node.napi.node"}


def test_an_untagged_napi_build_is_the_musl_fallback(tmp_path: Path, addons: dict[str, Path]) -> None:
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
    assert package.notes == ("node-gyp-build finds no build for musl in prebuilds/linux-x64: require() fails with "
                             "'No native build was found' unless it is rebuilt on Alpine (npm rebuild)",)


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
