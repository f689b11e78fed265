"""Python distributions and npm packages through the whole scan: their modules judged in the context of
the process that loads them (CPython: dlopen-now; Node: dlopen-lazy), grouped, with the ecosystem's fix first."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from muslcheck import Verdict, scan
from muslcheck.model.report import Component, Report

GLIBC_JNI = "jni/app/lib/glibc/libdemojni.so"  # fortified: __memcpy_chk and __snprintf_chk through the PLT
GLIBC_PLT = "reloc-plt/app/lib/libplt.so"  # gnu_get_libc_version through the PLT only
PY_EXT = "py-ext/app/lib/glibc/demo.so"  # imports only PyLong_FromLong, which CPython exports
SITE = "usr/local/lib/python3.11/site-packages"


def put(tree: Path, path: str, data: bytes | str) -> None:
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


def only(report: Report, name: str) -> Component:
    [found] = [c for c in report.components if c.name == name]
    return found


def dist_info(tree: Path, name: str, version: str, tag: str, files: list[str]) -> None:
    info = f"{SITE}/{name}-{version}.dist-info"
    put(tree, f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    put(tree, f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    put(tree, f"{info}/RECORD", "".join(f"{f},,\n" for f in [*files, f"{name}-{version}.dist-info/RECORD"]))


def test_a_manylinux_extension_blocked_on_musl_asks_for_a_musllinux_wheel(samples_dir: Path, tmp_path: Path) -> None:
    module_path = f"{SITE}/fastthing/_speedups.abi3.so"  # the stable-ABI name: CPython on musl imports it too
    put(tmp_path, module_path, (samples_dir / GLIBC_PLT).read_bytes())
    put(tmp_path, f"{SITE}/fastthing/__init__.py", "")
    dist_info(tmp_path, "fastthing", "2.0.1", "cp311-abi3-manylinux_2_17_x86_64",
              ["fastthing/__init__.py", "fastthing/_speedups.abi3.so"])
    report = scan(tmp_path, musl="1.2.5")
    fast = only(report, "fastthing")
    assert (fast.ecosystem, fast.version, fast.verdict) == ("pypi", "2.0.1", Verdict.BLOCKED)
    assert fast.location == f"/{SITE}/fastthing-2.0.1.dist-info"
    [module] = report.files
    assert module.context == "dlopen-now" and module.component == fast.id
    # CPython binds its modules now: a call through the PLT to a name musl lacks fails the import.
    assert {(s.name, s.effect) for s in module.unresolved_symbols} == {("gnu_get_libc_version", "fatal")}
    assert fast.fix is not None and fast.fix.startswith("pip install fastthing==2.0.1 in the Alpine image")


def test_a_jni_library_in_a_wheel_is_the_jvms(samples_dir: Path, tmp_path: Path) -> None:
    """What a file exports says which process loads it, before its package does: a JNI library (Java_*,
    JNI_OnLoad) shipped in a Python distribution is loaded by a JVM (JPype's way), lazily, with JNI_* defined."""
    put(tmp_path, f"{SITE}/bridge/libbridge.so", (samples_dir / GLIBC_JNI).read_bytes())
    dist_info(tmp_path, "bridge", "1.0", "py3-none-manylinux_2_17_x86_64", ["bridge/libbridge.so"])
    report = scan(tmp_path, musl="1.2.5")
    [module] = report.files
    assert module.context == "dlopen-lazy"
    assert {(s.name, s.effect) for s in module.unresolved_symbols} == {
        ("__memcpy_chk", "latent"), ("__snprintf_chk", "latent")}


def test_a_linux_gnu_module_is_never_imported_by_cpython_on_musl(samples_dir: Path, tmp_path: Path) -> None:
    """CPython 3.11+ on musl looks for *.cpython-311-x86_64-linux-musl.so: the manylinux module is not even loaded."""
    put(tmp_path, f"{SITE}/demo.cpython-311-x86_64-linux-gnu.so", (samples_dir / PY_EXT).read_bytes())
    dist_info(tmp_path, "demo", "1.0", "cp311-cp311-manylinux_2_17_x86_64", ["demo.cpython-311-x86_64-linux-gnu.so"])
    report = scan(tmp_path, musl="1.2.5")
    demo = only(report, "demo")
    [module] = report.files
    assert module.verdict is Verdict.NOT_APPLICABLE and "never imported" in module.notes[0]
    assert demo.verdict is Verdict.BLOCKED and demo.selected == {}
    assert demo.fix is not None and demo.fix.startswith("pip install demo==1.0 in the Alpine image")


def test_cpythons_own_symbols_are_not_missing(samples_dir: Path, tmp_path: Path) -> None:
    put(tmp_path, f"{SITE}/demo.cpython-310-x86_64-linux-gnu.so", (samples_dir / PY_EXT).read_bytes())
    dist_info(tmp_path, "demo", "1.0", "cp310-cp310-manylinux_2_17_x86_64", ["demo.cpython-310-x86_64-linux-gnu.so"])
    report = scan(tmp_path, musl="1.2.5")
    assert only(report, "demo").verdict is Verdict.NATIVE  # PyLong_FromLong is the interpreter's
    [module] = report.files
    assert module.unresolved_symbols == ()


def test_an_npm_package_with_only_its_gnu_build_installed_points_at_the_musl_one(
    samples_dir: Path, tmp_path: Path
) -> None:
    nm = "app/node_modules/@swc"
    put(tmp_path, f"{nm}/core-linux-x64-gnu/swc.linux-x64-gnu.node", (samples_dir / GLIBC_JNI).read_bytes())
    put(tmp_path, f"{nm}/core-linux-x64-gnu/package.json",
        json.dumps({"name": "@swc/core-linux-x64-gnu", "version": "1.3.100", "libc": ["glibc"]}))
    put(tmp_path, f"{nm}/core/package.json", json.dumps({
        "name": "@swc/core", "version": "1.3.100",
        "optionalDependencies": {"@swc/core-linux-x64-gnu": "1.3.100", "@swc/core-linux-x64-musl": "1.3.100"}}))
    put(tmp_path, "app/node_modules/fastaddon/build/Release/fast.node", (samples_dir / GLIBC_JNI).read_bytes())
    report = scan(tmp_path, musl="1.2.5")
    swc = only(report, "@swc/core-linux-x64-gnu")
    assert (swc.ecosystem, swc.verdict, swc.selected) == ("npm", Verdict.BLOCKED, {})
    files = {f.path.rsplit("/", 1)[-1]: f for f in report.files}
    assert files["swc.linux-x64-gnu.node"].verdict is Verdict.NOT_APPLICABLE  # @swc/core requires the -musl one
    assert swc.fix is not None and swc.fix.startswith(
        "npm ci on Alpine installs @swc/core-linux-x64-musl (an optional dependency of @swc/core;")
    addon = files["fast.node"]  # an addon compiled on the glibc machine, loaded as it is
    assert addon.context == "dlopen-lazy"  # process.dlopen defaults to RTLD_LAZY: the fortified calls are latent
    assert {s.effect for s in addon.unresolved_symbols} == {"latent"}
    assert only(report, "fastaddon").fix == ("npm rebuild fastaddon on Alpine: this build was made on a glibc machine "
                                             "(apk add build-base python3 to compile it there)")


def test_hostile_member_names_and_garbage_wheel_metadata(samples_dir: Path, tmp_path: Path) -> None:
    lib = (samples_dir / PY_EXT).read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("../../../etc/evil.so", lib)
        z.writestr("pkg-1.0.dist-info/WHEEL", b"\x00\xff" * 5000)
        z.writestr("pkg-1.0.dist-info/METADATA", b"Name: \x00\nVersion: \xff\xfe\n")
    (tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(out.getvalue())
    report = scan(tmp_path, musl="1.2.5")
    [module] = report.files
    assert module.path == "/pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl!/../../../etc/evil.so"
    assert module.verdict is Verdict.NATIVE and module.context == "dlopen-now"  # judged in place, never extracted
    assert not (tmp_path.parent / "etc").exists()
    problems = [s for s in report.skipped if ".dist-info/" in s.path]
    assert problems and all(not s.unchecked for s in problems)
    assert report.complete


def test_a_file_no_package_claims_is_loaded_by_the_host_its_symbols_or_place_name(samples_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """A JNI library is the JVM's wherever it lives; a library that is no host's module is loaded by the host
    whose directory holds it (a site directory: CPython's, a jni directory: the JVM's); a name alone (``.node``)
    gives no host to a file that exports no addon entry: Node's names would hide its errors."""
    jni, plain = (samples_dir / GLIBC_JNI).read_bytes(), (samples_dir / GLIBC_PLT).read_bytes()
    paths = {"jni-anywhere": ("usr/lib/libdemojni.so", jni), "jni-as-addon": ("usr/lib/d/addon.node", jni),
             "jni-in-site": ("usr/lib/python3/dist-packages/d/d.so", jni),
             "jvm": ("usr/lib/x86_64-linux-gnu/jni/libplt.so", plain),
             "python": ("usr/lib/python3/dist-packages/d/jni/libplt.so", plain),
             "node-name": ("usr/lib/d/plain.node", plain), "none": ("usr/lib/libplt.so", plain)}
    for path, data in paths.values():
        put(tmp_path, path, data)
    report = scan(tmp_path, musl="1.2.5")
    judged = {f.path: f for f in report.files}
    missing = {host: {s.name: s.effect for s in judged[f"/{path}"].unresolved_symbols}
               for host, (path, _) in paths.items()}
    contexts = {host: judged[f"/{path}"].context for host, (path, _) in paths.items()}
    assert contexts == {"jni-anywhere": "dlopen-lazy", "jni-as-addon": "dlopen-lazy", "jni-in-site": "dlopen-lazy",
                        "jvm": "dlopen-lazy", "python": "dlopen-now", "node-name": "dlopen-now", "none": "dlopen-now"}
    for jni_host in ("jni-anywhere", "jni-as-addon", "jni-in-site"):
        assert "JNI_GetCreatedJavaVMs" not in missing[jni_host]  # libjvm defines it
    assert missing["jvm"]["gnu_get_libc_version"] == "latent"
    assert missing["python"]["gnu_get_libc_version"] == "fatal"
    assert missing["node-name"]["gnu_get_libc_version"] == "fatal"
