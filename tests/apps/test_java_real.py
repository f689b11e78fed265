"""Java on real artifacts (issue 14): Maven JARs with their natives as Maven Central publishes them (Spark 3.5.7's
``jars/``, from pyspark's sdist) and Debian bookworm's JNI packages, both pinned by sha256 in pinned.py and laid out
as an application would have them (nothing installs, nothing from the tree runs but the dlopen of the oracle).

Each native library a scan judges is then held against musl's real loader, run the way the JVM loads it: the
library's loader extracts the one file from its JAR to a temporary directory and ``System.load`` dlopens it with
RTLD_LAZY (HotSpot's ``os::dll_load``), in a process whose libjvm (loaded RTLD_GLOBAL by the java launcher) defines
the ``JNI_*``/``JVM_*`` names.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from muslcheck import FileReport, Report, Verdict, scan
from muslcheck.apps.java import JVM_PROVIDES
from muslcheck.ldso.tables import tables_dir
from muslcheck.model.report import Component
from muslcheck.targets.archives import ARCHIVE_SEPARATOR
from tests.apps.pinned import DEBIAN, debian_pinned, pyspark_jars
from tests.artifacts import unavailable
from tests.oracle.dlopen import run_dlopen
from tests.oracle.ldd import run_list
from tests.oracle.loaders import LoadersUnavailable, available_loaders
from tests.oracle.sandbox import sandbox_problem
from tests.support import REPO

pytestmark = pytest.mark.network
SPARK = "/opt/spark/jars"
SPARK_JARS = (
    "commons-crypto-1.1.0.jar", "jline-2.14.6.jar", "leveldbjni-all-1.8.jar", "lz4-java-1.8.0.jar",
    "netty-transport-native-epoll-4.1.96.Final-linux-x86_64.jar",
    "netty-transport-native-epoll-4.1.96.Final-linux-aarch_64.jar",
    "netty-transport-native-kqueue-4.1.96.Final-osx-x86_64.jar", "rocksdbjni-8.3.2.jar", "scala-compiler-2.12.18.jar",
    "snappy-java-1.1.10.5.jar", "zstd-jni-1.5.5-4.jar",
)
SPARK4_JARS = (  # Spark 4.3.0's: netty-tcnative's BoringSSL build, snappy-java with its musl build, jline 3's native
    "netty-tcnative-boringssl-static-2.0.76.Final-linux-x86_64.jar",
    "netty-tcnative-boringssl-static-2.0.76.Final-linux-aarch_64.jar",
    "netty-transport-native-epoll-4.2.13.Final-linux-x86_64.jar",
    "netty-transport-native-epoll-4.2.13.Final-linux-aarch_64.jar",
    "netty-transport-native-epoll-4.2.13.Final-linux-riscv64.jar", "snappy-java-1.1.10.8.jar", "jline-3.29.0-jdk8.jar",
    "lz4-java-1.11.0.jar", "zstd-jni-1.5.7-7.jar",
)
JNI = "/usr/lib/x86_64-linux-gnu/jni"


def spark_jars_tree(root: Path, version: str, names: tuple[str, ...]) -> Path:
    """Spark's JARs with natives in one class-path directory, as a Spark image has them."""
    jars = pyspark_jars(version, names)
    (root / SPARK.lstrip("/")).mkdir(parents=True)
    for name in names:
        shutil.copyfile(jars / name, root / SPARK.lstrip("/") / name)
    return root


@pytest.fixture(scope="module")
def spark_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spark_jars_tree(tmp_path_factory.mktemp("spark"), "3.5.7", SPARK_JARS)


@pytest.fixture(scope="module")
def spark4_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spark_jars_tree(tmp_path_factory.mktemp("spark4"), "4.3.0", SPARK4_JARS)


@pytest.fixture(scope="module")
def spark_report(spark_tree: Path) -> Report:
    return scan(spark_tree, musl="1.2.5", arch="x86_64")


@pytest.fixture(scope="module")
def spark4_report(spark4_tree: Path) -> Report:
    return scan(spark4_tree, musl="1.2.5", arch="x86_64")


@pytest.fixture(scope="module")
def debian_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every pinned Debian package extracted into one root, as dpkg would lay them out (no dpkg database: the files
    are the application's here, not the OS's)."""
    root = tmp_path_factory.mktemp("debian-java")
    for name in DEBIAN:
        shutil.copytree(debian_pinned(name), root, symlinks=True, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def debian_report(debian_tree: Path) -> Report:
    return scan(debian_tree, musl="1.2.5", arch="x86_64")


def component(report: Report, name: str, location: str | None = None) -> Component:
    [found] = [c for c in report.components if c.name == name and (location is None or c.location == location)]
    return found


def files_of(report: Report) -> dict[str, FileReport]:
    return {f.path: f for f in report.files}


# ---------------------------------------------------------------------------------------------------------------
# Which build each library's own loader picks on musl x86_64 (docs/java.md), and what that means for the component.

# component -> (JAR, the member its loader loads on musl x86_64, the component's verdict)
SELECTED = {
    # 8.3.2 detects musl and ships librocksdbjni-linux64-musl.so; it needs Alpine's libstdc++ and libgcc
    "rocksdbjni": ("rocksdbjni-8.3.2.jar", "librocksdbjni-linux64-musl.so", Verdict.NEEDS_PACKAGES),
    # before 1.1.10.8 no musl detection: the glibc build, which names ld-linux-x86-64.so.2 (gcompat provides it)
    "snappy-java": ("snappy-java-1.1.10.5.jar", "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so",
                    Verdict.NEEDS_GCOMPAT),
    "zstd-jni": ("zstd-jni-1.5.5-4.jar", "linux/amd64/libzstd-jni-1.5.5-4.so", Verdict.NATIVE),
    "lz4-java": ("lz4-java-1.8.0.jar", "net/jpountz/util/linux/amd64/liblz4-java.so", Verdict.NATIVE),
    "commons-crypto": ("commons-crypto-1.1.0.jar", "org/apache/commons/crypto/native/Linux/x86_64/libcommons-crypto.so",
                       Verdict.BLOCKED),  # loads, then __snprintf_chk is called: a crash the fallback cannot catch
    "leveldbjni-all": ("leveldbjni-all-1.8.jar", "META-INF/native/linux64/libleveldbjni.so", Verdict.NEEDS_PACKAGES),
}


@pytest.mark.parametrize("name", sorted(SELECTED))
def test_each_library_loads_the_build_its_loader_picks_on_musl(spark_report: Report, name: str) -> None:
    jar, member, verdict = SELECTED[name]
    found = component(spark_report, name)
    assert found.location == f"{SPARK}/{jar}"
    assert found.selected == {"x86_64": f"{SPARK}/{jar}{ARCHIVE_SEPARATOR}{member}"}
    assert found.verdict is verdict, (found.notes, found.fixes)
    judged = {f.path for f in spark_report.files if f.component == found.id and f.verdict is not
              Verdict.NOT_APPLICABLE}
    assert judged == {found.selected["x86_64"]}  # every other build is set aside: another arch, OS or libc


def test_rocksdbjni_sets_its_glibc_build_aside_and_needs_alpines_cxx_runtime(spark_report: Report) -> None:
    rocksdb = component(spark_report, "rocksdbjni")
    files = files_of(spark_report)
    glibc = files[f"{SPARK}/rocksdbjni-8.3.2.jar{ARCHIVE_SEPARATOR}librocksdbjni-linux64.so"]
    assert glibc.verdict is Verdict.NOT_APPLICABLE and glibc.notes[0].startswith("not loaded on musl: rocksdbjni 8.3.2"
                                                                                 " detects musl")
    assert set(rocksdb.fixes) == {"apk add libstdc++  (provides libstdc++.so.6)", "apk add libgcc  (provides "
                                                                                  "libgcc_s.so.1)"}


def test_snappy_java_is_told_to_upgrade_to_the_release_with_a_musl_build(spark_report: Report) -> None:
    snappy = component(spark_report, "snappy-java")
    assert snappy.fix == "use snappy-java 1.1.10.8 or later: it ships a musl build for x86_64"
    files = files_of(spark_report)
    base = f"{SPARK}/snappy-java-1.1.10.5.jar{ARCHIVE_SEPARATOR}org/xerial/snappy/native/Linux"
    assert [m.name for m in files[f"{base}/x86_64/libsnappyjava.so"].missing_libraries] == ["ld-linux-x86-64.so.2"]
    assert files[f"{base}/aarch64/libsnappyjava.so"].verdict is Verdict.NOT_APPLICABLE


def test_the_netty_epoll_jar_for_another_architecture_is_not_a_failure(spark_report: Report) -> None:
    """Spark ships netty's epoll classifier JARs for x86_64 and aarch_64 side by side: on x86_64 netty loads the
    x86_64 one, and the aarch_64 JAR holds nothing for this architecture (on glibc neither)."""
    x86 = component(spark_report, "netty-transport-native-epoll",
                    f"{SPARK}/netty-transport-native-epoll-4.1.96.Final-linux-x86_64.jar")
    assert x86.verdict is Verdict.NATIVE
    assert x86.selected["x86_64"].endswith("!/META-INF/native/libnetty_transport_native_epoll_x86_64.so")
    arm = [c for c in spark_report.components if c.location.endswith("-linux-aarch_64.jar")]
    assert all(c.verdict is Verdict.NOT_APPLICABLE and c.lost is None for c in arm), arm
    assert not any("epoll" in line for line in spark_report.plan.lost)


def test_jansi_1_in_jline_2_is_the_linux64_build_of_hawtjni(spark_report: Report) -> None:
    """jline 2.14.6 shades jansi 1.x, whose HawtJNI loader looks for META-INF/native/linux64 (no musl detection)."""
    jline = component(spark_report, "jline")
    assert jline.selected == {"x86_64": f"{SPARK}/jline-2.14.6.jar{ARCHIVE_SEPARATOR}META-INF/native/linux64/"
                                        "libjansi.so"}
    files = files_of(spark_report)
    assert files[f"{SPARK}/jline-2.14.6.jar{ARCHIVE_SEPARATOR}META-INF/native/linux32/libjansi.so"].verdict is (
        Verdict.NOT_APPLICABLE)


# On aarch64 (component -> the member its loader loads on musl aarch64)
SELECTED_AARCH64 = {
    "rocksdbjni": "librocksdbjni-linux-aarch64-musl.so",
    "snappy-java": "org/xerial/snappy/native/Linux/aarch64/libsnappyjava.so",  # 1.1.10.8's musl check is x86_64 only
    "zstd-jni": "linux/aarch64/libzstd-jni-1.5.5-4.so",
    "lz4-java": "net/jpountz/util/linux/aarch64/liblz4-java.so",
    "commons-crypto": "org/apache/commons/crypto/native/Linux/aarch64/libcommons-crypto.so",
    "netty-transport-native-epoll": "META-INF/native/libnetty_transport_native_epoll_aarch_64.so",
}


def test_on_aarch64_each_loader_picks_its_aarch64_build_and_the_x86_64_jar_is_unused(spark_tree: Path) -> None:
    report = scan(spark_tree, musl="1.2.5", arch="aarch64")
    picked = {c.name: c.selected["aarch64"].split(ARCHIVE_SEPARATOR, 1)[1] for c in report.components if c.selected}
    assert {name: picked.get(name) for name in SELECTED_AARCH64} == SELECTED_AARCH64
    rocksdb = component(report, "rocksdbjni")
    # a musl build, by its ELF (it needs libc.musl-aarch64.so.1; the GLIBC_2.0 it asks of libgcc_s.so.1 is libgcc's)
    assert not any("glibc" in note for note in rocksdb.notes) and not any("6.6.3" in fix for fix in rocksdb.fixes)
    assert rocksdb.verdict is Verdict.NEEDS_PACKAGES
    x86 = component(report, "netty-transport-native-epoll",
                    f"{SPARK}/netty-transport-native-epoll-4.1.96.Final-linux-x86_64.jar")
    assert x86.verdict is Verdict.NOT_APPLICABLE and not x86.selected
    assert not component(report, "jline").selected  # jansi 1.x in jline 2 ships linux32 and linux64 only


def test_scala_compiler_is_itself_though_it_carries_only_jlines_pom(spark_report: Report) -> None:
    """scala-compiler shades jline 2 (and its jansi 1.x natives): its manifest names it, not jline's pom.properties."""
    jline = [c for c in spark_report.components if c.name == "jline"]
    assert [c.location for c in jline] == [f"{SPARK}/jline-2.14.6.jar"]
    scala = component(spark_report, "org.scala-lang.scala-compiler")
    assert (scala.location, scala.selected) == (
        f"{SPARK}/scala-compiler-2.12.18.jar",
        {"x86_64": f"{SPARK}/scala-compiler-2.12.18.jar{ARCHIVE_SEPARATOR}META-INF/native/linux64/libjansi.so"})


def test_netty_tcnative_boringssl_is_degraded_to_the_jdks_tls_and_says_what_is_selected(spark4_report: Report) -> None:
    """2.0.76's Linux build names ld-linux-x86-64.so.2 and libgcc_s.so.1: its load fails on musl, OpenSsl is then
    unavailable and netty uses the JDK's TLS (docs/java.md); the aarch_64 classifier JAR beside it holds nothing."""
    jar = f"{SPARK}/netty-tcnative-boringssl-static-2.0.76.Final-linux-x86_64.jar"
    tcnative = component(spark4_report, "netty-tcnative-boringssl-static", jar)
    assert tcnative.verdict is Verdict.DEGRADED
    assert tcnative.selected == {"x86_64": f"{jar}{ARCHIVE_SEPARATOR}META-INF/native/libnetty_tcnative_linux_x86_64.so"}
    assert tcnative.lost is not None and "BoringSSL" in tcnative.lost
    assert tcnative.fix is not None and tcnative.fix.startswith("upgrade netty-tcnative to a release after 2.0.81")
    f = files_of(spark4_report)[tcnative.selected["x86_64"]]
    assert {m.name for m in f.missing_libraries} == {"ld-linux-x86-64.so.2", "libgcc_s.so.1"}
    arm = component(spark4_report, "netty-tcnative-boringssl-static", jar.replace("x86_64.jar", "aarch_64.jar"))
    assert (arm.verdict, arm.selected, arm.lost) == (Verdict.NOT_APPLICABLE, {}, None)
    assert [line.split(":", 1)[0] for line in spark4_report.plan.lost] == ["netty-tcnative-boringssl-static"]


def test_snappy_java_1_1_10_8_loads_its_musl_build(spark4_report: Report) -> None:
    snappy = component(spark4_report, "snappy-java")
    base = f"{SPARK}/snappy-java-1.1.10.8.jar{ARCHIVE_SEPARATOR}org/xerial/snappy/native/Linux"
    assert (snappy.verdict, snappy.selected, snappy.fixes) == (
        Verdict.NATIVE, {"x86_64": f"{base}/x86_64-musl/libsnappyjava.so"}, ())
    glibc = files_of(spark4_report)[f"{base}/x86_64/libsnappyjava.so"]
    assert glibc.verdict is Verdict.NOT_APPLICABLE and glibc.notes[0].startswith("not loaded on musl: snappy-java "
                                                                                 "1.1.10.8 detects musl")


@pytest.mark.parametrize(("name", "member"), [
    ("jline", "org/jline/nativ/Linux/x86_64/libjlinenative.so"),  # unknown to muslcheck: its x86_64 Linux build
    ("lz4-java", "net/jpountz/util/linux/amd64/liblz4-java.so"),
    ("zstd-jni", "linux/amd64/libzstd-jni-1.5.7-7.so"),
    ("netty-transport-native-epoll", "META-INF/native/libnetty_transport_native_epoll_x86_64.so"),
])
def test_spark_4_libraries_without_musl_detection_load_their_x86_64_build(spark4_report: Report, name: str,
                                                                          member: str) -> None:
    [found] = [c for c in spark4_report.components if c.name == name and c.selected]
    assert found.selected["x86_64"].endswith(f"{ARCHIVE_SEPARATOR}{member}")
    assert found.verdict is Verdict.NATIVE, (found.notes, found.fixes)


def test_debian_jni_libraries_are_loaded_by_the_jvm_and_need_alpines_libraries(debian_report: Report) -> None:
    files = files_of(debian_report)
    expected = {  # Debian's java.library.path: each JNI library against the system library it wraps
        f"{JNI}/libsnappyjava.so": {"libsnappy.so.1": "snappy"},
        f"{JNI}/liblz4-java.so": {"liblz4.so.1": "lz4-libs", "libxxhash.so.0": "libxxhash"},
        f"{JNI}/libsqlitejdbc.so": {"libsqlite3.so.0": "sqlite-libs"},
        f"{JNI}/libjnidispatch.system.so": {"libffi.so.8": "libffi"},
        f"{JNI}/libjffi-1.2.so": {"libffi.so.8": "libffi"},
    }
    for path, missing in expected.items():
        f = files[path]
        assert (f.context, f.verdict) == ("dlopen-lazy", Verdict.NEEDS_PACKAGES), (path, f.notes)
        assert {m.name: m.package for m in f.missing_libraries} == missing


def test_real_jar_manifests_read_without_problems(debian_report: Report, spark_report: Report) -> None:
    """JNA's manifest says ``Implementation-Version: 5.13.0 (b0)``: the version is 5.13.0, not a finding."""
    assert not debian_report.skipped and not spark_report.skipped
    assert not [c for c in debian_report.components if c.name in ("jna", "com.sun.jna")]  # no natives in the JAR


# ---------------------------------------------------------------------------------------------------------------
# The oracle: musl's real loader dlopen-ing each judged library as the JVM does.

def libjvm() -> Path:
    """The libjvm.so of a JDK installed here (Debian's OpenJDK, else any): what the java launcher dlopens."""
    found = sorted(Path("/usr/lib/jvm").glob("*/lib/server/libjvm.so"), key=lambda p: ("openjdk" not in str(p), p))
    if not found:
        unavailable("no JDK in /usr/lib/jvm (apt-get install default-jre-headless)")
    return found[0]


def jvm_exports(lib: Path) -> set[str]:
    """The names libjvm defines for the whole process (it is loaded RTLD_GLOBAL), by binutils' nm."""
    proc = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True)
    if proc.returncode != 0:
        unavailable(f"nm -D {lib}: {proc.stderr.strip()}")
    names = {line.split()[-1].split("@", 1)[0] for line in proc.stdout.splitlines() if line.strip()}
    return {name for name in names if name.isidentifier()}  # not the version node SUNWprivate_1.1


def test_the_jvm_names_muslcheck_provides_are_the_ones_libjvm_exports() -> None:
    """JVM_PROVIDES against the real libjvm: every entry names exports, and every JNI/JVM export is covered."""
    exports = jvm_exports(libjvm())
    assert {"JNI_CreateJavaVM", "JNI_GetCreatedJavaVMs", "JVM_FindClassFromCaller"} <= exports
    assert all(any(name.startswith(prefix) for name in exports) for prefix in JVM_PROVIDES)
    jvm_api = {name for name in exports if name.startswith(("JNI_", "JVM_", "jio_", "AsyncGetCallTrace", "gHotSpot",
                                                            "numa_"))}
    assert len(jvm_api) > 150 and all(name.startswith(JVM_PROVIDES) for name in jvm_api)


@pytest.fixture(scope="module")
def jvm_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """samples/harness/dlopen_probe.c linked -rdynamic with a definition of every name a real libjvm exports: the
    java process, for the dynamic linker (independent of muslcheck's own list)."""
    if shutil.which("musl-gcc") is None:
        unavailable("musl-gcc is needed to build the host harness")
    out = tmp_path_factory.mktemp("jvm-host")
    names = sorted(jvm_exports(libjvm()) - {"main"})
    (out / "jvm_names.c").write_text("".join(f"void {name}(void) {{}}\n" for name in names))
    harness = out / "jvm_host"
    proc = subprocess.run(["musl-gcc", "-O1", "-rdynamic", "-o", str(harness), str(REPO / "samples/harness/"
                                                                                 "dlopen_probe.c"),
                           str(out / "jvm_names.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return harness


def debian_deviations(version: str, arch: str = "x86_64") -> tuple[set[str], set[str]]:
    """(exported by Debian's libc.so only, exported by upstream's only), as the tables record them: Debian's own musl
    patches, set aside as the other oracle tests do."""
    raw = json.loads((tables_dir() / f"musl-{version}-{arch}.json").read_text())
    return ({d["name"] for d in raw["deviations"] if d["action"] == "removed"},
            {d["name"] for d in raw["deviations"] if d["action"] == "added"})


def blocking(f: FileReport) -> set[str]:
    """What makes the dlopen itself fail, by the model: missing libraries and fatal symbols."""
    return {m.name for m in f.missing_libraries} | {s.name for s in f.unresolved_symbols if s.fatal}


def model_loads(f: FileReport) -> bool:
    return not (blocking(f) or f.unsupported_relocations or f.tls_errors)


@pytest.mark.oracle
@pytest.mark.parametrize("tree_name", ["spark_tree", "spark4_tree", "debian_tree"])
def test_every_judged_jni_library_loads_exactly_when_musl_loads_it(
        tree_name: str, request: pytest.FixtureRequest, jvm_host: Path, musl_loaders: dict[str, Path]) -> None:
    tree: Path = request.getfixturevalue(tree_name)
    extracted = members_of(tree, "x86_64")
    disagreements, compared = [], 0
    for version, loader in musl_loaders.items():
        debian_only, upstream_only = debian_deviations(version)
        for f in scan(tree, musl=version, arch="x86_64").files:
            if f.verdict is Verdict.NOT_APPLICABLE:
                continue  # never loaded on musl x86_64: no claim to check
            # the JVM's System.load; a library nothing references is judged (and loaded here) as dlopen-now
            assert f.context in ("dlopen-lazy", "dlopen-now"), f.path
            lib = extracted[f.path] if ARCHIVE_SEPARATOR in f.path else tree / f.path.lstrip("/")
            real = run_dlopen(loader, jvm_host, lib, "lazy" if f.context == "dlopen-lazy" else "now")
            loads = model_loads(f) or (bool(blocking(f)) and blocking(f) <= debian_only)
            real_ok = real.ok or any(f" {name}: symbol not found" in (real.error or "") for name in upstream_only)
            compared += 1
            if loads != real_ok:
                disagreements.append(f"{f.path} on {version}: muslcheck {f.verdict} {sorted(blocking(f))}, "
                                     f"real {real.error or 'OK'}")
            elif not real_ok:  # the first error musl reports is one the model names
                assert any(name in (real.error or "") for name in blocking(f)), (f.path, version, real.error)
    assert compared >= 2 * 5
    assert not disagreements, "\n".join(disagreements)


# ---------------------------------------------------------------------------------------------------------------
# Symbol by symbol, on x86_64 and on aarch64 (under qemu): the loader in ldd mode (--list) names every library and
# symbol it cannot find without stopping at the first, and so does the model (none of these libraries imports a
# JVM name, so no host is needed).

QEMU = {"x86_64": (), "aarch64": ("qemu-aarch64-static",)}
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
MUSL_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}
ELF_MACHINE = {"x86_64": b"\x3e\x00", "aarch64": b"\xb7\x00"}


def members_of(tree: Path, arch: str) -> dict[str, Path]:
    """Every Linux ELF member of ``arch`` in the tree's JARs, extracted alone as its loader extracts it (to a
    temporary directory: nothing else of the JAR is beside it); in-tree path -> the extracted file."""
    out: dict[str, Path] = {}
    extracted = tree.parent / f"{tree.name}-{arch}-members"
    for jar in sorted(tree.rglob("*.jar")):
        with zipfile.ZipFile(jar) as z:
            for info in z.infolist():
                data = z.read(info) if info.filename.endswith(".so") else b""
                if data[:4] != b"\x7fELF" or data[18:20] != ELF_MACHINE[arch]:
                    continue
                target = extracted / str(len(out)) / info.filename.rsplit("/", 1)[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                out[f"/{jar.relative_to(tree)}{ARCHIVE_SEPARATOR}{info.filename}"] = target
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("tree_name", ["spark_tree", "spark4_tree"])
@pytest.mark.parametrize("arch", sorted(QEMU))
def test_every_missing_library_and_symbol_is_the_real_loaders(arch: str, tree_name: str,
                                                               request: pytest.FixtureRequest) -> None:
    spark_tree: Path = request.getfixturevalue(tree_name)
    if (problem := sandbox_problem()) is not None:
        unavailable(problem)
    if QEMU[arch] and shutil.which(QEMU[arch][0]) is None:
        unavailable(f"{QEMU[arch][0]} is not installed (Debian package qemu-user-static)")
    try:
        loaders = available_loaders(arch=DEBIAN_ARCH[arch], runner=QEMU[arch])
    except LoadersUnavailable as e:
        unavailable(f"no musl loader for {arch}: {e}")
    extracted = members_of(spark_tree, arch)
    disagreements, compared = [], 0
    for version, loader in loaders.items():
        debian_only, upstream_only = debian_deviations(version, arch)
        for f in scan(spark_tree, musl=version, arch=arch).files:
            if f.verdict is Verdict.NOT_APPLICABLE:
                continue
            _, real, _ = run_list(loader, extracted[f.path], arch=MUSL_ARCH[arch], runner=QEMU[arch])
            model = ({m.name for m in f.missing_libraries}, {s.name for s in f.unresolved_symbols} - debian_only)
            musl = ({name for name, _ in real.missing_libraries},
                    {name for _, name in real.unresolved_symbols} - upstream_only)
            compared += 1
            if model != musl:
                disagreements.append(f"{f.path} on {arch} {version}: muslcheck {model}, real {musl}")
    assert compared >= 2 * 6
    assert not disagreements, "\n".join(disagreements)
