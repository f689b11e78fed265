"""Real artifacts, downloaded on first use (tests/artifacts.py, tests/apps/pinned.py): Debian's JNA and sqlite-jdbc
with their JNI libraries, Debian's OpenJDK 17 runtime, orjson's manylinux and musllinux wheels and @parcel/watcher.
Verdicts are held against the real musl loader (``--list``) where a file is claimed to load or not."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from muslcheck import Verdict, scan
from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Host
from muslcheck.model.report import Component, FileReport, Report
from tests.apps.pinned import install, pip_site
from tests.artifacts import ORJSON, debian_package, wheel_site
from tests.oracle.ldd import run_list

pytestmark = pytest.mark.network
JNI_DIR = "usr/lib/x86_64-linux-gnu/jni"


def only(report: Report, name: str) -> Component:
    [found] = [c for c in report.components if c.name == name]
    return found


def jar_with_native(jar: Path, member: str, native: Path) -> bytes:
    """The Debian JAR with its JNI library put back where the upstream JAR carries it."""
    out = io.BytesIO()
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(member, native.read_bytes())
    return out.getvalue()


def real_errors(loader: Path, native: Path) -> tuple[set[str], set[str]]:
    """(missing libraries, unresolved symbols) as the real musl loader lists them."""
    _, listed, _ = run_list(loader, native)
    return {name for name, _ in listed.missing_libraries}, {symbol for _, symbol in listed.unresolved_symbols}


def model_errors(f: FileReport) -> tuple[set[str], set[str]]:
    return {lib.name for lib in f.missing_libraries}, {s.name for s in f.unresolved_symbols}


@pytest.mark.oracle
def test_jna_in_its_jar_needs_libffi_as_the_real_loader_says(tmp_path: Path, musl_loaders: dict[str, Path]) -> None:
    jna = debian_package("libjna-java") / "usr/share/java/jna-5.13.0.jar"
    native = debian_package("libjna-jni") / JNI_DIR / "libjnidispatch.system.so"
    app = tmp_path / "app"
    app.mkdir()
    (app / "jna-5.13.0.jar").write_bytes(jar_with_native(jna, "com/sun/jna/linux-x86-64/libjnidispatch.so", native))
    report = scan(tmp_path, musl="1.2.5")
    component = only(report, next(c.name for c in report.components if c.ecosystem == "maven"))
    assert component.version == "5.13.0"
    assert component.verdict is Verdict.NEEDS_PACKAGES
    assert component.fix == "apk add libffi  (provides libffi.so.8)"
    [f] = report.files
    assert f.context == "dlopen-lazy" and f.path.endswith("!/com/sun/jna/linux-x86-64/libjnidispatch.so")
    assert model_errors(f) == real_errors(musl_loaders["1.2.5"], native)


@pytest.mark.oracle
def test_debians_sqlite_jdbc_jni_library_needs_sqlite_libs(tmp_path: Path, musl_loaders: dict[str, Path]) -> None:
    native = debian_package("libxerial-sqlite-jdbc-jni") / JNI_DIR / "libsqlitejdbc.so"
    jar = debian_package("libxerial-sqlite-jdbc-java") / "usr/share/java/sqlite-jdbc.jar"
    (tmp_path / JNI_DIR).mkdir(parents=True)
    shutil.copy(native, tmp_path / JNI_DIR / "libsqlitejdbc.so")
    (tmp_path / "usr/share/java").mkdir(parents=True)
    shutil.copy(jar, tmp_path / "usr/share/java/sqlite-jdbc.jar")
    report = scan(tmp_path, musl="1.2.5")
    [f] = report.files
    assert f.context == "dlopen-lazy"  # Debian's java.library.path: the JVM loads it
    assert f.verdict is Verdict.NEEDS_PACKAGES
    assert f.fixes[0] == "apk add sqlite-libs  (provides libsqlite3.so.0)"
    assert model_errors(f) == real_errors(musl_loaders["1.2.5"], native)


def test_debians_openjdk_is_a_runtime_replaced_by_alpines(tmp_path: Path) -> None:
    jre = debian_package("openjdk-17-jre-headless")
    home = "usr/lib/jvm/java-17-openjdk-amd64"
    shutil.copytree(jre / home, tmp_path / home, symlinks=True)
    release = dict(line.split("=", 1) for line in (tmp_path / home / "release").read_text().splitlines()
                   if "=" in line)
    report = scan(tmp_path, musl="1.2.5")
    [runtime] = [c for c in report.components if c.ecosystem == "runtime"]
    assert runtime.version == release["JAVA_VERSION"].strip('"')
    assert runtime.location == "/" + home and runtime.verdict is Verdict.NOT_APPLICABLE
    assert runtime.fix is not None and "openjdk17" in runtime.fix
    assert {f.verdict for f in report.files} == {Verdict.NOT_APPLICABLE}
    assert set(runtime.files) == {f.path for f in report.files}
    judged = scan(tmp_path, musl="1.2.5", include_runtimes=True)
    libjvm = next(f for f in judged.files if f.path.endswith("/lib/server/libjvm.so"))
    assert libjvm.verdict is not Verdict.NOT_APPLICABLE
    assert only(judged, runtime.name).verdict is not Verdict.NOT_APPLICABLE


@pytest.mark.oracle
@pytest.mark.parametrize(("python", "platform"), [("3.11", "musllinux_1_2_x86_64"), ("3.10", "manylinux_2_17_x86_64")])
def test_orjson_modules_cpython_on_musl_imports(python: str, platform: str, tmp_path: Path,
                                                musl_loaders: dict[str, Path]) -> None:
    """The musllinux module, and a manylinux one for CPython 3.10 (whose musl build names modules -linux-gnu too)."""
    site = tmp_path / f"usr/local/lib/python{python}/site-packages"
    shutil.copytree(pip_site("orjson", ORJSON, platform, python), site)
    report = scan(tmp_path, musl="1.2.5")
    orjson = only(report, "orjson")
    assert (orjson.ecosystem, orjson.version) == ("pypi", ORJSON)
    [module] = [f for f in report.files if f.component == orjson.id]
    assert module.context == "dlopen-now"
    libs, symbols = real_errors(musl_loaders["1.2.5"], tmp_path / module.path.lstrip("/"))
    # The real loader runs the module alone, so CPython's Py* names are missing there; the interpreter has them.
    assert model_errors(module) == (libs, {s for s in symbols if not s.startswith(("Py", "_Py"))})
    # orjson's manylinux build imports only what musl also exports (checked above against the real loader):
    # it runs through musl's libc.so.6 mapping; pip on Alpine would still install the musllinux wheel.
    assert orjson.verdict is Verdict.NATIVE
    assert module.needed == (("libc.so.6",) if platform.startswith("manylinux") else ("libc.so",))


def test_orjsons_manylinux_module_for_cpython_3_11_is_never_imported_on_musl(tmp_path: Path) -> None:
    """CPython 3.11 on musl imports *.cpython-311-x86_64-linux-musl.so: the manylinux wheel's module is invisible to
    it (ModuleNotFoundError), whatever it would import."""
    site = tmp_path / "usr/local/lib/python3.11/site-packages"
    shutil.copytree(wheel_site("orjson", ORJSON, "manylinux"), site)
    report = scan(tmp_path, musl="1.2.5")
    orjson = only(report, "orjson")
    [module] = [f for f in report.files if f.component == orjson.id]
    assert module.path.endswith("/orjson.cpython-311-x86_64-linux-gnu.so")
    assert module.verdict is Verdict.NOT_APPLICABLE and "never imported" in module.notes[0]
    assert orjson.verdict is Verdict.BLOCKED and orjson.selected == {}
    assert orjson.fix == (f"pip install orjson=={ORJSON} in the Alpine image: pip there installs the release's "
                          "musllinux wheel where one is published (never a manylinux one), else builds it from "
                          "source (apk add build-base python3-dev)")


PARCEL = "2.4.1"  # @parcel/watcher: per-libc optional dependencies, -glibc and -musl
NODE = host_provides(Host.NODE)


@pytest.mark.oracle
def test_parcel_watcher_glibc_build_points_at_its_musl_sibling(tmp_path: Path, musl_loaders: dict[str, Path]) -> None:
    """On musl @parcel/watcher's index.js requires @parcel/watcher-linux-x64-musl (detect-libc 1.0.3: `ldd --version`
    names musl): the -glibc package is never loaded there, and the fix is to install on Alpine."""
    install(tmp_path, f"@parcel/watcher@{PARCEL}", f"@parcel/watcher-linux-x64-glibc@{PARCEL}")
    report = scan(tmp_path, musl="1.2.5")
    glibc = only(report, "@parcel/watcher-linux-x64-glibc")
    assert glibc.fix is not None and glibc.fix.startswith(
        "npm ci on Alpine installs @parcel/watcher-linux-x64-musl (an optional dependency of @parcel/watcher;")
    [unused] = report.files
    assert unused.verdict is Verdict.NOT_APPLICABLE and glibc.verdict is Verdict.BLOCKED and glibc.selected == {}

    # The same build loaded by itself (no @parcel/watcher to pick another): judged as node loads it.
    alone = tmp_path / "alone"
    install(alone, f"@parcel/watcher-linux-x64-glibc@{PARCEL}")
    report = scan(alone, musl="1.2.5")
    glibc = only(report, "@parcel/watcher-linux-x64-glibc")
    [addon] = report.files
    assert addon.context == "dlopen-lazy" and addon.component == glibc.id
    libs, symbols = real_errors(musl_loaders["1.2.5"], alone / addon.path.lstrip("/"))
    # Alone, the real loader misses Node-API too; under node, node defines it.
    assert model_errors(addon) == (libs, {s for s in symbols if not s.startswith(NODE)})
    assert any(s.startswith("napi_") for s in symbols)
    assert glibc.verdict is Verdict.NEEDS_PACKAGES  # libstdc++ and libgcc: the rest waits on them

    musl_tree = tmp_path / "musl"
    install(musl_tree, f"@parcel/watcher@{PARCEL}", f"@parcel/watcher-linux-x64-musl@{PARCEL}")
    musl_report = scan(musl_tree, musl="1.2.5")
    [musl_addon] = musl_report.files
    libs, symbols = real_errors(musl_loaders["1.2.5"], musl_tree / musl_addon.path.lstrip("/"))
    assert model_errors(musl_addon) == (libs, {s for s in symbols if not s.startswith(NODE)})
    assert only(musl_report, "@parcel/watcher-linux-x64-musl").fix is None or \
        only(musl_report, "@parcel/watcher-linux-x64-musl").fix.startswith("apk add")
