"""choose/split: which native file each JNI library's own loader picks on musl (facts and sources: docs/java.md)."""

from __future__ import annotations

import pytest

from muslcheck.apps.java import JVM_PROVIDES
from muslcheck.apps.jni import choose, library_stem, other_system, split
from muslcheck.apps.model import Choice, Flavour, Host, Native, Package
from muslcheck.model.report import Ecosystem

G, M, U, B = Flavour.GLIBC, Flavour.MUSL, Flavour.UNKNOWN, Flavour.BIONIC
JAR = "/app/app.jar!/BOOT-INF/lib/lib.jar"


def native(member: str, arch: str = "x86_64", flavour: Flavour = G) -> Native:
    return Native(f"{JAR}!/{member}", member, arch, flavour)


def package(name: str, version: str | None) -> Package:
    return Package(Ecosystem.MAVEN, name, version, JAR, Host.JVM, {"artifact": name, "source": "pom.properties"})


def only(choices: tuple[Choice, ...]) -> Choice:
    assert len(choices) == 1, choices
    return choices[0]


def members(natives: tuple[Native, ...]) -> list[str]:
    return [n.member for n in natives]


# sqlite-jdbc: org/sqlite/native/<Linux|Linux-Alpine|Linux-Musl>/<arch>/libsqlitejdbc.so

SQLITE_GLIBC = native("org/sqlite/native/Linux/x86_64/libsqlitejdbc.so")
SQLITE_MUSL = native("org/sqlite/native/Linux-Musl/x86_64/libsqlitejdbc.so", flavour=M)
SQLITE_ALPINE = native("org/sqlite/native/Linux-Alpine/x86_64/libsqlitejdbc.so", flavour=M)
SQLITE_AARCH64 = native("org/sqlite/native/Linux/aarch64/libsqlitejdbc.so", "aarch64")


def test_sqlite_current_release_loads_its_linux_musl_build() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [SQLITE_GLIBC, SQLITE_MUSL, SQLITE_AARCH64], "x86_64"))
    assert (choice.library, choice.arch, choice.selected) == ("sqlite-jdbc", "x86_64", SQLITE_MUSL)
    assert "detects musl" in choice.how and "/proc/self/map_files" in choice.how
    assert choice.unused == (SQLITE_GLIBC,)
    assert choice.upgrade is None


def test_sqlite_current_release_without_its_musl_build_loads_nothing() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [SQLITE_GLIBC], "x86_64"))
    assert choice.selected is None
    assert "Linux-Musl/x86_64" in choice.how and "does not fall back" in choice.how
    assert choice.unused == (SQLITE_GLIBC,)
    assert choice.upgrade is not None and "3.39.2.0" in choice.upgrade


def test_sqlite_before_musl_detection_loads_the_glibc_build() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.28.0"), [SQLITE_GLIBC], "x86_64"))
    assert choice.selected == SQLITE_GLIBC
    assert "no musl detection" in choice.how and "a glibc build" in choice.how
    assert choice.upgrade is not None and "3.39.2.0" in choice.upgrade


def test_sqlite_linux_alpine_era() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.36.0.3"), [SQLITE_GLIBC, SQLITE_ALPINE], "x86_64"))
    assert choice.selected == SQLITE_ALPINE and "Alpine" in choice.how
    aarch64 = only(choose(package("sqlite-jdbc", "3.36.0.3"), [SQLITE_ALPINE, SQLITE_AARCH64], "aarch64"))
    assert aarch64.selected is None and "Linux-Alpine/aarch64" in aarch64.how
    assert aarch64.unused == (SQLITE_AARCH64,)


def test_sqlite_missing_arch_gives_a_choice_that_loads_nothing() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [SQLITE_GLIBC, SQLITE_MUSL], "aarch64"))
    assert (choice.arch, choice.selected, choice.unused) == ("aarch64", None, ())
    assert "Linux-Musl/aarch64" in choice.how


def test_sqlite_arm_has_no_musl_build_and_no_upgrade() -> None:
    arm = [native(f"org/sqlite/native/Linux/{d}/libsqlitejdbc.so", "arm") for d in ("arm", "armv6", "armv7")]
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), arm, "arm"))
    assert choice.selected is None and choice.upgrade is None
    assert len(choice.unused) == 3
    old = only(choose(package("sqlite-jdbc", "3.20.0"), arm, "arm"))
    assert old.selected is not None and old.selected.member.endswith("/armv7/libsqlitejdbc.so")


def test_unknown_version_gets_the_current_loader() -> None:
    choice = only(choose(None, [SQLITE_GLIBC, SQLITE_MUSL], "x86_64"))
    assert choice.selected == SQLITE_MUSL and "version unknown" in choice.how


def test_the_version_of_another_package_is_not_the_library_version() -> None:
    app = package("my-app", "1.0")  # shaded sqlite classes in the application's own JAR
    choice = only(choose(app, [SQLITE_GLIBC, SQLITE_MUSL], "x86_64"))
    assert choice.selected == SQLITE_MUSL


def test_a_glibc_elf_in_the_musl_folder_is_still_what_the_loader_loads() -> None:
    wrong = native("org/sqlite/native/Linux-Musl/x86_64/libsqlitejdbc.so", flavour=G)
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [wrong], "x86_64"))
    assert choice.selected == wrong and "a glibc build" in choice.how
    assert choice.upgrade is not None


# snappy-java: org/xerial/snappy/native/Linux/<arch>/libsnappyjava.so, x86_64-musl since 1.1.10.8

SNAPPY_X64 = native("org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so")
SNAPPY_MUSL = native("org/xerial/snappy/native/Linux/x86_64-musl/libsnappyjava.so", flavour=M)
SNAPPY_AARCH64 = native("org/xerial/snappy/native/Linux/aarch64/libsnappyjava.so", "aarch64")
SNAPPY_ANDROID = native("org/xerial/snappy/native/Linux/android-aarch64/libsnappyjava.so", "aarch64", B)


def test_snappy_1_1_10_8_loads_x86_64_musl() -> None:
    choice = only(choose(package("snappy-java", "1.1.10.8"), [SNAPPY_X64, SNAPPY_MUSL], "x86_64"))
    assert choice.selected == SNAPPY_MUSL and "ld-musl-x86_64.so.1" in choice.how
    assert choice.unused == (SNAPPY_X64,) and choice.upgrade is None


def test_snappy_before_1_1_10_8_loads_the_glibc_build_and_suggests_the_upgrade() -> None:
    choice = only(choose(package("snappy-java", "1.1.10.5"), [SNAPPY_X64], "x86_64"))
    assert choice.selected == SNAPPY_X64 and "no musl detection" in choice.how
    assert choice.upgrade is not None and "1.1.10.8" in choice.upgrade


def test_snappy_with_detection_but_no_musl_build_fails() -> None:
    choice = only(choose(package("snappy-java", "1.1.10.8"), [SNAPPY_X64], "x86_64"))
    assert choice.selected is None and "SnappyError" in choice.how and "x86_64-musl" in choice.how


def test_snappy_aarch64_has_no_musl_detection_and_android_builds_are_not_candidates() -> None:
    choice = only(choose(package("snappy-java", "1.1.10.8"), [SNAPPY_AARCH64, SNAPPY_ANDROID], "aarch64"))
    assert choice.selected == SNAPPY_AARCH64 and choice.upgrade is None
    assert choice.unused == ()


# rocksdbjni: librocksdbjni-linux64[-musl].so etc. at the JAR root


def rocks(name: str, arch: str = "x86_64", flavour: Flavour = G) -> Native:
    return native(f"librocksdbjni-{name}.so", arch, flavour)


def test_rocksdb_loads_its_musl_build() -> None:
    natives = [rocks("linux64"), rocks("linux64-musl", flavour=M), rocks("linux-aarch64", "aarch64")]
    choice = only(choose(package("rocksdbjni", "9.7.3"), natives, "x86_64"))
    assert choice.selected == natives[1] and "detects musl" in choice.how
    assert choice.unused == (natives[0],)


def test_rocksdb_before_6_6_3_loads_the_glibc_build() -> None:
    choice = only(choose(package("rocksdbjni", "6.5.3"), [rocks("linux64")], "x86_64"))
    assert choice.selected is not None and choice.selected.member == "librocksdbjni-linux64.so"
    assert choice.upgrade is not None and "6.6.3" in choice.upgrade


def test_rocksdb_missing_musl_build_is_a_hard_failure() -> None:
    choice = only(choose(package("rocksdbjni", "9.7.3"), [rocks("linux-aarch64", "aarch64")], "aarch64"))
    assert choice.selected is None and "librocksdbjni-linux-aarch64-musl.so was not found" in choice.how
    assert members(choice.unused) == ["librocksdbjni-linux-aarch64.so"]


def test_rocksdb_s390x_names_no_musl_build() -> None:
    s390x = [rocks("linux-s390x", "s390x"), rocks("linux-s390x-musl", "s390x", M)]
    choice = only(choose(package("rocksdbjni", "9.7.3"), s390x, "s390x"))
    assert choice.selected == s390x[0] and "no musl build for s390x" in choice.how


def test_rocksdb_in_a_subdirectory_is_not_the_known_loader() -> None:
    choice = only(choose(None, [native("natives/librocksdbjni-linux64.so")], "x86_64"))
    assert choice.library != "rocksdbjni" and "unverified" not in choice.how


# zstd-jni, lz4-java, JNA, conscrypt: no musl detection, the glibc build is loaded


def test_zstd_loads_the_glibc_build_by_os_arch() -> None:
    amd64 = native("linux/amd64/libzstd-jni-1.5.5-11.so")
    aarch64 = native("linux/aarch64/libzstd-jni-1.5.5-11.so", "aarch64")
    choice = only(choose(package("zstd-jni", "1.5.5-11"), [amd64, aarch64], "x86_64"))
    assert choice.selected == amd64 and choice.upgrade is None
    missing = only(choose(package("zstd-jni", "1.5.5-11"), [amd64], "aarch64"))
    assert missing.selected is None and "Failed to open resource" in missing.how


def test_lz4_falls_back_to_java_when_nothing_loads() -> None:
    amd64 = native("net/jpountz/util/linux/amd64/liblz4-java.so")
    choice = only(choose(package("lz4-java", "1.8.0"), [amd64], "x86_64"))
    assert choice.selected == amd64
    assert choice.fallback is not None and "Java" in choice.fallback
    missing = only(choose(package("lz4-java", "1.8.0"), [amd64], "riscv64"))
    assert missing.selected is None and "falls back to the Java implementation" in missing.how


def test_jna_prefers_hard_float_arm() -> None:
    arm, armel = native("com/sun/jna/linux-arm/libjnidispatch.so", "arm"), native(
        "com/sun/jna/linux-armel/libjnidispatch.so", "arm")
    choice = only(choose(package("jna", "5.14.0"), [armel, arm], "arm"))
    assert choice.selected == arm and choice.unused == (armel,)


def test_jna_ppc64_prefers_little_endian() -> None:
    be, le = (native(f"com/sun/jna/linux-{d}/libjnidispatch.so", "ppc64") for d in ("ppc64", "ppc64le"))
    assert only(choose(package("jna", "5.14.0"), [be, le], "ppc64")).selected == le


def test_conscrypt_loads_the_platform_named_library() -> None:
    lib = native("META-INF/native/libconscrypt_openjdk_jni-linux-x86_64.so")
    choice = only(choose(package("conscrypt-openjdk-uber", "2.5.2"), [lib], "x86_64"))
    assert (choice.library, choice.selected) == ("conscrypt", lib)
    assert choice.fallback is not None


# netty


def test_netty_epoll_loads_the_glibc_build_even_when_shaded() -> None:
    shaded = native("META-INF/native/libio_grpc_netty_shaded_netty_transport_native_epoll_x86_64.so")
    choice = only(choose(package("grpc-netty-shaded", "1.60.0"), [shaded], "x86_64"))
    assert (choice.library, choice.selected) == ("netty-transport-native-epoll", shaded)
    assert "no musl detection" in choice.how and choice.fallback is not None and "NIO" in choice.fallback


def test_netty_epoll_missing_arch() -> None:
    x64 = native("META-INF/native/libnetty_transport_native_epoll_x86_64.so")
    choice = only(choose(package("netty-transport-native-epoll", "4.1.100.Final"), [x64], "aarch64"))
    assert choice.selected is None and "libnetty_transport_native_epoll_aarch_64.so" in choice.how


def test_netty_io_uring_4_2_name() -> None:
    lib = native("META-INF/native/libnetty_transport_native_io_uring42_aarch_64.so", "aarch64")
    choice = only(choose(None, [lib], "aarch64"))
    assert (choice.library, choice.selected) == ("netty-transport-native-io_uring", lib)


def test_tcnative_tries_the_os_release_classifier_first() -> None:
    generic = native("META-INF/native/libnetty_tcnative_linux_x86_64.so")
    fedora = native("META-INF/native/libnetty_tcnative_linux_x86_64_fedora.so")
    alpine = native("META-INF/native/libnetty_tcnative_linux_x86_64_alpine.so", flavour=M)
    assert only(choose(None, [fedora, generic, alpine], "x86_64")).selected == alpine
    choice = only(choose(package("netty-tcnative-boringssl-static", "2.0.61.Final"), [fedora, generic], "x86_64"))
    assert choice.selected == generic and choice.unused == (fedora,)
    assert choice.upgrade is not None and "#997" in choice.upgrade
    assert only(choose(package("netty-tcnative-boringssl-static", "2.0.82.Final"), [generic], "x86_64")).upgrade is None


# other systems, architectures, unknown libraries


def test_other_systems_are_never_candidates() -> None:
    others = [
        native("org/sqlite/native/FreeBSD/x86_64/libsqlitejdbc.so"),
        native("org/sqlite/native/Mac/x86_64/libsqlitejdbc.so", flavour=U),
        native("natives/windows-x86_64/libthing.so"),
        native("natives/sunos-x86_64/libthing.so"),
        native("lib/android/libthing.so", flavour=B),
        native("lib/arm64-v8a/libother.so", "x86_64", B),
    ]
    assert choose(package("sqlite-jdbc", "3.45.1.0"), others, "x86_64") == ()
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [*others, SQLITE_MUSL], "x86_64"))
    assert choice.selected == SQLITE_MUSL and choice.unused == ()


@pytest.mark.parametrize(("member", "flavour", "reason"), [
    ("natives/win/x86_64/libthing.so", G, "built for win (by its path in the archive): not a Linux library"),
    ("natives/kfreebsd-amd64/libthing.so", G, "built for kfreebsd (by its path in the archive): not a Linux library"),
    ("natives/Mac/x86_64/libthing.so", U, "built for mac (by its path in the archive): not a Linux library"),
    ("lib/arm64-v8a/libthing.so", B, "built for Android (bionic libc): not a Linux library"),
])
def test_why_a_build_for_another_system_is_not_applicable(member: str, flavour: Flavour, reason: str) -> None:
    assert other_system(native(member, flavour=flavour)) == reason


def test_linux_builds_are_not_another_system() -> None:
    assert other_system(SQLITE_GLIBC) is None
    assert other_system(native("natives/linux-x86_64/libwindowing.so")) is None  # a token, not a substring


def test_other_architectures_go_in_no_choice() -> None:
    choice = only(choose(package("sqlite-jdbc", "3.45.1.0"), [SQLITE_GLIBC, SQLITE_MUSL, SQLITE_AARCH64], "x86_64"))
    assert SQLITE_AARCH64 not in (choice.selected, *choice.unused)


def test_unknown_library_with_a_musl_build_selects_it_unverified() -> None:
    glibc = native("native/linux-x86_64/libfastthing.so")
    musl = native("native/linux-x86_64-musl/libfastthing.so", flavour=M)
    choice = only(choose(package("fastthing", "2.0"), [glibc, musl], "x86_64"))
    assert (choice.library, choice.selected, choice.unused) == ("fastthing", musl, (glibc,))
    assert "unverified" in choice.how and choice.upgrade is None


def test_unknown_library_without_musl_build_selects_the_glibc_one() -> None:
    glibc = native("native/linux-x86_64/libfastthing.so")
    static = native("native/linux-x86_64/libfastthing_static.so", flavour=U)
    choice = only(choose(package("fastthing", "2.0"), [static, glibc], "x86_64"))
    assert choice.selected == glibc and choice.unused == (static,)


def test_flavour_decides_and_the_path_is_only_a_hint_for_unknown_flavour() -> None:
    misnamed = native("native/linux-musl-x86_64/libbar.so", flavour=G)  # says musl, is glibc
    plain = native("native/linux-x86_64/libbar.so", flavour=G)
    choice = only(choose(None, [plain, misnamed], "x86_64"))
    assert "no musl build" in choice.how
    hinted = native("native/alpine-x86_64/libbar.so", flavour=U)  # static: the path is the only evidence
    assert only(choose(None, [plain, hinted], "x86_64")).selected == hinted


def test_unknown_library_without_a_build_for_the_arch() -> None:
    choice = only(choose(None, [native("native/linux-x86_64/libbar.so")], "aarch64"))
    assert choice.selected is None and "x86_64 only" in choice.how


def test_unknown_libraries_group_by_stem() -> None:
    natives = [native("a/linux-x86_64/libfoo.so"), native("a/linux-aarch64/libfoo.so", "aarch64"),
               native("b/libbar-linux-x86_64.so"), native("b/libbar-linux-x86_64-musl.so", flavour=M)]
    assert [(c.library, c.selected) for c in choose(None, natives, "x86_64")] == [
        ("foo", natives[0]), ("bar", natives[3])]


@pytest.mark.parametrize(
    ("member", "stem"),
    [
        ("natives/linux-x86_64/libfoo-linux-x86_64-musl.so.1", "foo"),
        ("libquux_aarch64.so", "quux"),
        ("lib/linux/x86-64/libnative-glibc.so", "native"),
        ("libthing-ppc64le-alpine.so", "thing"),
        ("libjnidispatch.so", "jnidispatch"),
    ],
)
def test_library_stem(member: str, stem: str) -> None:
    assert library_stem(member) == stem


# split: shaded JARs hold several libraries


def test_split_assigns_known_libraries_to_their_package_and_the_rest_to_the_archive() -> None:
    app, sqlite, netty = package("uber-app", "1.0"), package("sqlite-jdbc", "3.45.1.0"), package(
        "netty-transport-native-epoll", "4.1.100.Final")
    epoll = native("META-INF/native/libnetty_transport_native_epoll_x86_64.so")
    own = native("native/linux-x86_64/libown.so")
    snappy = SNAPPY_X64  # its package is not declared: it stays with the archive's own identity
    groups = split([app, sqlite, netty], [SQLITE_MUSL, epoll, own, SQLITE_GLIBC, snappy])
    assert groups == [(app, [own, snappy]), (sqlite, [SQLITE_MUSL, SQLITE_GLIBC]), (netty, [epoll])]


def test_split_without_packages() -> None:
    assert split([], [SQLITE_MUSL, SNAPPY_X64]) == [(None, [SQLITE_MUSL, SNAPPY_X64])]
    assert split([package("x", "1")], []) == []


def test_jvm_provides_the_libjvm_exports() -> None:
    for symbol in ("JNI_CreateJavaVM", "JVM_GetVersionInfo", "jio_snprintf", "AsyncGetCallTrace"):
        assert symbol.startswith(JVM_PROVIDES)
    assert not "__memcpy_chk".startswith(JVM_PROVIDES)


# jansi 2.x, commons-crypto, QUIC: the real JARs' member names (jansi-2.4.1.jar, commons-crypto-1.2.0.jar,
# netty-codec-native-quic-4.2.7.Final-linux-x86_64.jar)

JANSI = {arch: native(f"org/fusesource/jansi/internal/native/Linux/{d}/libjansi.so", arch)
         for d, arch in (("x86_64", "x86_64"), ("arm64", "aarch64"), ("x86", "i386"), ("armv7", "arm"))}
JANSI_FREEBSD = native("org/fusesource/jansi/internal/native/FreeBSD/x86_64/libjansi.so", flavour=U)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "i386", "arm"])
def test_jansi_loads_its_linux_folder_by_os_arch_and_strips_colours_without_it(arch: str) -> None:
    armv6 = native("org/fusesource/jansi/internal/native/Linux/armv6/libjansi.so", "arm")
    choice = only(choose(package("jansi", "2.4.1"), [*JANSI.values(), armv6, JANSI_FREEBSD], arch))
    assert (choice.library, choice.selected) == ("jansi", JANSI[arch])
    assert "no musl detection" in choice.how and "before java.library.path" in choice.how
    assert choice.unused == ((armv6,) if arch == "arm" else ())
    assert choice.fallback is not None and "strips the ANSI escape sequences" in choice.fallback
    assert choice.lost is not None and "ANSI colours" in choice.lost


def test_jansi_on_ppc64le_finds_no_folder_of_that_name() -> None:
    be = native("org/fusesource/jansi/internal/native/Linux/ppc64/libjansi.so", "ppc64")
    choice = only(choose(package("jansi", "2.4.1"), [be], "ppc64"))
    assert choice.selected is None and "Linux/ppc64le/libjansi.so" in choice.how
    assert choice.unused == (be,) and choice.fallback is not None


COMMONS_CRYPTO = {d: native(f"org/apache/commons/crypto/native/Linux/{d}/libcommons-crypto.so", arch)
                  for d, arch in (("x86_64", "x86_64"), ("aarch64", "aarch64"), ("x86", "i386"), ("arm", "arm"),
                                  ("armhf", "arm"))}


def test_commons_crypto_loads_the_glibc_build_and_falls_back_to_the_jdk() -> None:
    choice = only(choose(package("commons-crypto", "1.2.0"), list(COMMONS_CRYPTO.values()), "x86_64"))
    assert (choice.library, choice.selected) == ("commons-crypto", COMMONS_CRYPTO["x86_64"])
    assert choice.fallback is not None and "JCE" in choice.fallback
    assert choice.lost is not None and "OpenSSL" in choice.lost
    # on ARM it takes armhf only when `readelf -A` succeeds, and Alpine has no readelf by default
    arm = only(choose(package("commons-crypto", "1.2.0"), list(COMMONS_CRYPTO.values()), "arm"))
    assert arm.selected == COMMONS_CRYPTO["arm"] and arm.unused == (COMMONS_CRYPTO["armhf"],)
    missing = only(choose(package("commons-crypto", "1.2.0"), [COMMONS_CRYPTO["x86_64"]], "riscv64"))
    assert missing.selected is None and "No native library is found" in missing.how


QUIC = native("META-INF/native/libnetty_quiche42_linux_x86_64.so")


def test_quic_4_2_loads_its_one_name_and_has_no_fallback() -> None:
    choice = only(choose(package("netty-codec-native-quic", "4.2.7.Final"), [QUIC], "x86_64"))
    assert (choice.library, choice.selected) == ("netty-codec-native-quic", QUIC)
    assert (choice.fallback, choice.lost) == (None, None)
    missing = only(choose(package("netty-codec-native-quic", "4.2.7.Final"), [QUIC], "aarch64"))
    assert missing.selected is None and missing.fallback is None
    assert "libnetty_quiche42_linux_aarch_64.so" in missing.how and "no fallback" in missing.how
    # the 4.1-era incubator artifact names it without "42"; a name without the platform is never tried
    incubator = native("META-INF/native/libnetty_quiche_linux_aarch_64.so", "aarch64")
    bare = native("META-INF/native/libnetty_quiche.so", "aarch64")
    old = only(choose(package("netty-incubator-codec-native-quic", "0.0.62.Final"), [bare, incubator], "aarch64"))
    assert old.selected == incubator and old.unused == (bare,)
    assert "libnetty_quiche_linux_aarch_64.so" in only(choose(
        package("netty-incubator-codec-native-quic", "0.0.62.Final"), [QUIC], "aarch64")).how


@pytest.mark.parametrize(("artifact", "version", "member", "lost"), [
    ("netty-tcnative-boringssl-static", "2.0.74.Final", "META-INF/native/libnetty_tcnative_linux_x86_64.so",
     "BoringSSL TLS (the JDK's TLS is used instead"),
    ("conscrypt-openjdk-uber", "2.5.2", "META-INF/native/libconscrypt_openjdk_jni-linux-x86_64.so",
     "the JDK's TLS is used instead"),
    ("lz4-java", "1.8.0", "net/jpountz/util/linux/amd64/liblz4-java.so", "pure-Java LZ4"),
    ("netty-transport-native-epoll", "4.2.7.Final", "META-INF/native/libnetty_transport_native_epoll_x86_64.so",
     "NIO is used instead"),
    ("netty-transport-native-io_uring", "4.2.7.Final",
     "META-INF/native/libnetty_transport_native_io_uring42_x86_64.so", "epoll or NIO is used instead"),
    ("jna", "5.14.0", "com/sun/jna/linux-x86-64/libjnidispatch.so", None),
    ("zstd-jni", "1.5.5-11", "linux/amd64/libzstd-jni-1.5.5-11.so", None),
    ("sqlite-jdbc", "3.45.1.0", "org/sqlite/native/Linux-Musl/x86_64/libsqlitejdbc.so", None),
    ("snappy-java", "1.1.10.8", "org/xerial/snappy/native/Linux/x86_64-musl/libsnappyjava.so", None),
    ("rocksdbjni", "9.7.3", "librocksdbjni-linux64-musl.so", None),
])
def test_what_each_library_loses_when_its_native_part_cannot_load(artifact: str, version: str, member: str,
                                                                    lost: str | None) -> None:
    lib = native(member)
    choice = only(choose(package(artifact, version), [lib], "x86_64"))
    assert choice.selected == lib
    if lost is None:  # no fallback: the feature fails with the library
        assert (choice.fallback, choice.lost) == (None, None)
    else:
        assert choice.fallback is not None and choice.lost is not None and lost in choice.lost
