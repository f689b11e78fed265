"""Language runtimes the Alpine variant of a base image replaces (muslcheck.apps.runtimes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from muslcheck.apps import runtimes
from muslcheck.ldso.tree import Resolved
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.directory import DirectoryRoot
from tests.apps.apptrees import elves_of, put

TEMURIN = "/opt/java/openjdk"
DEBIAN = "/usr/lib/jvm/java-17-openjdk-amd64"


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny programs and libraries built with gcc (glibc) and musl-gcc (musl)."""
    missing = [c for c in ("gcc", "musl-gcc") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    out = tmp_path_factory.mktemp("runtimes")
    (out / "main.c").write_text("#include <stdio.h>\nint main(void) { return puts(\"java\"); }\n")
    (out / "lib.c").write_text("#include <stdio.h>\nint JNI_CreateJavaVM(void) { return puts(\"jvm\"); }\n")
    built = {}
    for libc, compiler in (("glibc", "gcc"), ("musl", "musl-gcc")):
        built[f"{libc}-exe"] = out / f"{libc}-exe"
        built[f"{libc}-so"] = out / f"{libc}.so"
        subprocess.run([compiler, "-o", str(built[f"{libc}-exe"]), str(out / "main.c")], check=True)
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(built[f"{libc}-so"]), str(out / "lib.c")], check=True)
    return built




def java_home(tree: Path, home: str, builds: dict[str, Path], libc: str = "glibc", release: str | bytes | None = None,
              jdk: bool = False) -> None:
    put(tree, f"{home}/bin/java", builds[f"{libc}-exe"])
    put(tree, f"{home}/lib/server/libjvm.so", builds[f"{libc}-so"])
    put(tree, f"{home}/lib/libjli.so", builds[f"{libc}-so"])
    if jdk:
        put(tree, f"{home}/bin/javac", builds[f"{libc}-exe"])
    if release is not None:
        put(tree, f"{home}/release", release)


TEMURIN_21_JRE = ('IMPLEMENTOR="Eclipse Adoptium"\nIMPLEMENTOR_VERSION="Temurin-21.0.2+13"\n'
                  'JAVA_RUNTIME_VERSION="21.0.2+13-LTS"\nJAVA_VERSION="21.0.2"\nJAVA_VERSION_DATE="2024-01-16"\n'
                  'LIBC="gnu"\nMODULES="java.base java.logging"\nOS_ARCH="x86_64"\nOS_NAME="Linux"\n'
                  'SOURCE=".:git:13c8d1fe4a1b"\nIMAGE_TYPE="JRE"\n')


def test_a_temurin_jre(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, TEMURIN, builds, release=TEMURIN_21_JRE)
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.problems == ()
    [package] = found.packages
    assert package.ecosystem is Ecosystem.RUNTIME
    assert (package.name, package.version, package.location) == ("Temurin", "21.0.2", TEMURIN)
    assert package.details == {"vendor": "Eclipse Adoptium", "libc": "glibc", "image-type": "JRE",
                               "libc-evidence": 'the release file\'s LIBC="gnu"', "runtime-version": "21.0.2+13-LTS"}
    assert package.advice == ("eclipse-temurin:21-jre-alpine",)
    assert set(found.owner) == {f"{TEMURIN}/bin/java", f"{TEMURIN}/lib/server/libjvm.so", f"{TEMURIN}/lib/libjli.so"}
    assert all(p is package for p in found.owner.values())


def test_a_temurin_jdk_without_libc_in_its_release_reads_the_elf(tmp_path: Path, builds: dict[str, Path]) -> None:
    release = TEMURIN_21_JRE.replace('LIBC="gnu"\n', "").replace('IMAGE_TYPE="JRE"', 'IMAGE_TYPE="JDK"')
    java_home(tmp_path, TEMURIN, builds, release=release, jdk=True)
    [package] = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path)).packages
    assert package.advice == ("eclipse-temurin:21-jdk-alpine",)
    assert package.details["libc-evidence"] == f"the ELF file {TEMURIN}/lib/server/libjvm.so"


def test_corretto_jre_17_and_a_jdk_8_layout(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, "/usr/lib/jvm/java-17-amazon-corretto", builds,
              release='IMPLEMENTOR="Amazon.com Inc."\nJAVA_VERSION="17.0.10"\nIMAGE_TYPE="JRE"\n')
    jdk8 = "/opt/corretto8"
    put(tmp_path, f"{jdk8}/bin/java", builds["glibc-exe"])
    put(tmp_path, f"{jdk8}/jre/bin/java", builds["glibc-exe"])
    put(tmp_path, f"{jdk8}/jre/lib/amd64/server/libjvm.so", builds["glibc-so"])
    put(tmp_path, f"{jdk8}/release", 'JAVA_VERSION="1.8.0_402"\nIMPLEMENTOR="Amazon.com Inc."\nIMAGE_TYPE="JRE"\n')
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    by_home = {p.location: p for p in found.packages}
    assert set(by_home) == {jdk8, "/usr/lib/jvm/java-17-amazon-corretto"}
    assert by_home[jdk8].advice == ("amazoncorretto:8-alpine-jre",)
    assert by_home[jdk8].version == "1.8.0_402"
    assert found.owner[f"{jdk8}/jre/lib/amd64/server/libjvm.so"] is by_home[jdk8]
    corretto = by_home["/usr/lib/jvm/java-17-amazon-corretto"]
    assert (corretto.name, corretto.advice) == ("Corretto", ("amazoncorretto:17-alpine",))
    assert corretto.notes == ("amazoncorretto's Alpine images hold the full JDK",)


def test_debian_openjdk(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, DEBIAN, builds, release='IMPLEMENTOR="Debian"\nJAVA_RUNTIME_VERSION="17.0.15+6-Debian-1deb12u1"'
                                              '\nJAVA_VERSION="17.0.15"\nLIBC="gnu"\nOS_NAME="Linux"\nSOURCE=""\n')
    [package] = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path)).packages
    assert (package.name, package.version, package.details["vendor"]) == ("OpenJDK", "17.0.15", "Debian")
    assert package.details["image-type"] == "JRE"
    assert package.advice == ("apk add openjdk17-jre-headless",)


def test_a_missing_release_falls_back_to_the_path_and_the_elf(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, DEBIAN, builds, jdk=True)
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version) == ("OpenJDK", "17")
    assert package.details["vendor"] == "Debian or Ubuntu (by the path)"
    assert package.details["libc"] == "glibc"
    assert package.advice == ("apk add openjdk17-jdk",)
    assert found.problems == (Skip(f"{DEBIAN}/release", "no release file: vendor and version from the path and the "
                                                        "ELF files", unchecked=False),)


@pytest.mark.parametrize(("release", "reason"), [
    (b"\x1f\x8b\x08\x00\x00\x00garbage", "binary content (NUL bytes): not a metadata file"),
    (b'JAVA_VERSION="\xff17"\n', "not UTF-8 text (byte 14)"),
    ("this is not a release file\n", 'release line 1 is not KEY="value"'),
    ('OS_NAME="Linux"\n', "release file names neither JAVA_VERSION nor IMPLEMENTOR"),
    ('JAVA_VERSION="seventeen"\nIMPLEMENTOR="Eclipse Adoptium"\n', "release JAVA_VERSION is not a Java version"),
    ('JAVA_VERSION="21.0.2"\nLIBC="uclibc"\n', "release LIBC is neither musl, gnu nor default"),
    ('JAVA_VERSION="21.0.2"\nIMAGE_TYPE="JRE-or-so"\n', "release IMAGE_TYPE is neither JRE nor JDK"),
    ('IMPLEMENTOR="' + "x" * 300 + '"\n', "release IMPLEMENTOR is not a short printable value"),
], ids=["binary", "bad-utf8", "garbage", "no-fields", "bad-version", "bad-libc", "bad-image-type", "huge-vendor"])
def test_a_bad_release_file_is_a_skip_and_the_elf_decides(tmp_path: Path, builds: dict[str, Path],
                                                           release: str | bytes, reason: str) -> None:
    java_home(tmp_path, TEMURIN, builds, release=release)
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert package.details["libc"] == "glibc"
    assert package.details["libc-evidence"] == f"the ELF file {TEMURIN}/lib/server/libjvm.so"
    assert found.problems == (Skip(f"{TEMURIN}/release", reason, unchecked=False),)
    assert len(found.owner) == 3


class _ContentNotKept(DirectoryRoot):
    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        raise OSError("content not kept")


def test_release_content_not_kept_counts_as_missing(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, TEMURIN, builds, release=TEMURIN_21_JRE)
    found = runtimes.identify(_ContentNotKept(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version, package.details["vendor"]) == ("OpenJDK", None, "unknown")
    assert [s.reason for s in found.problems] == ["no release file: vendor and version from the path and the ELF files"]


def test_a_musl_runtime_is_identified_without_advice(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, TEMURIN, builds, libc="musl", release=TEMURIN_21_JRE.replace('LIBC="gnu"', 'LIBC="musl"'))
    java_home(tmp_path, "/opt/musl-by-elf", builds, libc="musl",
              release='IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="17.0.9"\nLIBC="default"\n')
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert [(p.location, p.details["libc"], p.advice) for p in found.packages] == [
        ("/opt/java/openjdk", "musl", ()), ("/opt/musl-by-elf", "musl", ())]
    assert found.packages[1].details["libc-evidence"] == "the ELF file /opt/musl-by-elf/lib/server/libjvm.so"


def test_a_release_that_contradicts_the_elf_is_noted(tmp_path: Path, builds: dict[str, Path]) -> None:
    java_home(tmp_path, TEMURIN, builds, release=TEMURIN_21_JRE.replace('LIBC="gnu"', 'LIBC="musl"'))
    [package] = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path)).packages
    assert package.details["libc"] == "musl"
    assert package.notes == (f'the release file says LIBC="musl" but the ELF file {TEMURIN}/lib/server/libjvm.so '
                             "is built for glibc",)


def test_a_lone_bin_java_is_not_a_java_home(tmp_path: Path, builds: dict[str, Path]) -> None:
    put(tmp_path, "/usr/bin/java", builds["glibc-exe"])
    put(tmp_path, "/usr/lib/libfoo.so", builds["glibc-so"])
    assert runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path)).packages == ()


def test_cpython_owns_its_interpreter_libpython_and_lib_dynload(tmp_path: Path, builds: dict[str, Path]) -> None:
    prefix = "/usr/local"
    own = [f"{prefix}/bin/python3.11", f"{prefix}/lib/libpython3.11.so.1.0",
           f"{prefix}/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"]
    put(tmp_path, own[0], builds["glibc-exe"])
    for path in own[1:]:
        put(tmp_path, path, builds["glibc-so"])
    put(tmp_path, f"{prefix}/lib/python3.11/site-packages/orjson/orjson.so", builds["glibc-so"])
    put(tmp_path, f"{prefix}/lib/python3.11/os.py", "")
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version, package.location) == ("CPython", "3.11", prefix)
    assert package.details == {"libc": "glibc", "libc-evidence": f"the ELF file {prefix}/bin/python3.11"}
    assert package.advice == ("python:3.11-alpine",)
    assert sorted(found.owner) == sorted(own)


def test_a_distribution_python_and_a_venv(tmp_path: Path, builds: dict[str, Path]) -> None:
    put(tmp_path, "/usr/bin/python3.11", builds["glibc-exe"])
    (tmp_path / "usr/lib/python3.11").mkdir(parents=True)
    put(tmp_path, "/opt/venv/bin/python3.12", builds["musl-exe"])
    put(tmp_path, "/opt/venv/pyvenv.cfg", "home = /usr/local/bin\n")
    (tmp_path / "opt/venv/lib/python3.12/site-packages").mkdir(parents=True)
    put(tmp_path, "/srv/bin/python3.10", builds["glibc-exe"])  # no lib/python3.10: not an interpreter prefix
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    by_prefix = {p.location: p for p in found.packages}
    assert set(by_prefix) == {"/usr", "/opt/venv"}
    assert by_prefix["/usr"].advice == ("python:3.11-alpine", "apk add python3")
    venv = by_prefix["/opt/venv"]
    assert (venv.version, venv.details["libc"], venv.advice) == ("3.12", "musl", ())
    assert venv.notes == ("a virtual environment (pyvenv.cfg): create it anew on the Alpine image",)


NODE_VERSION_H = """#ifndef SRC_NODE_VERSION_H_
#define SRC_NODE_VERSION_H_

#define NODE_MAJOR_VERSION 20
#define NODE_MINOR_VERSION 11
#define NODE_PATCH_VERSION 1

#define NODE_VERSION_IS_LTS 1
#endif  // SRC_NODE_VERSION_H_
"""


def test_node_with_its_version_header(tmp_path: Path, builds: dict[str, Path]) -> None:
    put(tmp_path, "/usr/local/bin/node", builds["glibc-exe"])
    put(tmp_path, "/usr/local/include/node/node_version.h", NODE_VERSION_H)
    put(tmp_path, "/usr/local/lib/node_modules/x/x.node", builds["glibc-so"])
    put(tmp_path, "/usr/local/lib/x86_64-linux-gnu/libnode.so.108", builds["glibc-so"])
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.problems == ()
    [package] = found.packages
    assert (package.name, package.version, package.location) == ("Node.js", "20.11.1", "/usr/local")
    assert package.advice == ("node:20-alpine",)
    assert sorted(found.owner) == ["/usr/local/bin/node", "/usr/local/lib/x86_64-linux-gnu/libnode.so.108"]


def test_node_without_a_usable_header(tmp_path: Path, builds: dict[str, Path]) -> None:
    put(tmp_path, "/usr/bin/node", builds["glibc-exe"])
    put(tmp_path, "/usr/include/node/node_version.h", "#define SOMETHING_ELSE 1\n")
    put(tmp_path, "/opt/node/bin/node", builds["musl-exe"])  # no header at all: no version, no problem
    found = runtimes.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    by_prefix = {p.location: p for p in found.packages}
    assert (by_prefix["/usr"].version, by_prefix["/usr"].advice) == (None, ("node:<major>-alpine", "apk add nodejs"))
    assert (by_prefix["/opt/node"].details["libc"], by_prefix["/opt/node"].advice) == ("musl", ())
    assert found.problems == (Skip("/usr/include/node/node_version.h", "node_version.h defines no NODE_MAJOR_VERSION",
                                   unchecked=False),)


@pytest.mark.parametrize(("version", "major"), [("1.8.0_402", 8), ("17.0.9", 17), ("21", 21), ("25-ea", 25),
                                                ("11.0.22+7", 11), ("x17", None)])
def test_java_major(version: str, major: int | None) -> None:
    assert runtimes.java_major(version) == major
