"""Which native file each JNI library in a JAR loads on musl, modelled on each library's own loader.

The per-library facts (resource paths, musl detection, what happens when the musl path is missing, the release
that first shipped a musl build) and their sources are in docs/java.md. Everything here is pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from muslcheck.apps.model import Choice, Flavour, Native, Package

_OTHER_SYSTEMS = frozenset({
    "aix", "android", "darwin", "dragonfly", "dragonflybsd", "freebsd", "kfreebsd", "mac", "macos", "macosx",
    "netbsd", "openbsd", "osx", "solaris", "sunos", "w32ce", "win", "win32", "win64", "windows",
})


def other_system(native: Native) -> str | None:
    """Why a native file in an archive is not a Linux build: Android's libc, or a path naming another OS
    (FreeBSD, Solaris, macOS, Windows, AIX, Android); None for a Linux build."""
    if native.flavour is Flavour.BIONIC:
        return "built for Android (bionic libc): not a Linux library"
    named = next((t for t in re.split(r"[^a-z0-9]+", native.member.lower()) if t in _OTHER_SYSTEMS), None)
    return None if named is None else f"built for {named} (by its path in the archive): not a Linux library"


def _musl_hint(native: Native) -> bool:
    """A musl build by its path; used only when the ELF gives no libc evidence."""
    return re.search(r"musl|alpine", native.member, re.IGNORECASE) is not None


def _is_musl(native: Native) -> bool:
    return native.flavour is Flavour.MUSL or (native.flavour is Flavour.UNKNOWN and _musl_hint(native))


# Versions


def _version(text: str | None) -> tuple[int, ...] | None:
    """The leading dotted numbers of a version ("4.1.100.Final" -> (4, 1, 100)); None when there are none."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text or "")
    return tuple(int(part) for part in match[1].split(".")) if match else None


def _since(version: tuple[int, ...] | None, release: tuple[int, ...]) -> bool:
    """True from ``release`` on; an unknown version gets the current behaviour."""
    return version is None or version >= release


# The loaders. A plan is what one loader does on musl for one architecture: the resource keys it tries in order
# (the first present one is loaded), and what it says when it finds one or none.


@dataclass(frozen=True)
class _Plan:
    keys: tuple[str, ...]
    found: str  # how, when the first present key is loaded ("{member}" is replaced by the loaded member)
    missing: str  # how, when none of the keys is in the JAR
    upgrade: str | None = None
    fallback: str | None = None  # what the application runs when the load fails; None: the feature fails
    lost: str | None = None  # with a fallback: what is lost


_Planner = Callable[[str, tuple[int, ...] | None, str], _Plan]


@dataclass(frozen=True)
class _Library:
    name: str
    artifacts: frozenset[str]  # Maven artifactIds that carry it (shaded JARs hold several)
    pattern: re.Pattern[str]  # on the member; group "key" is what the plan's keys name
    plan: _Planner  # (ELF arch, version, label) -> plan; label is "name version" for the text


def _sqlite_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    dirs = {"x86_64": ("x86_64",), "i386": ("x86",), "aarch64": ("aarch64",), "arm": ("armv7", "armv6", "arm"),
            "ppc64": ("ppc64",), "riscv64": ("riscv64",)}.get(arch, (arch,))
    if _since(version, (3, 39, 2, 0)):
        os_dir = "Linux-Musl"
        detect = f"{label} detects musl (/proc/self/map_files naming musl, else ID=alpine in /etc/os-release)"
    elif _since(version, (3, 31, 1)):
        os_dir, detect = "Linux-Alpine", f"{label} detects Alpine (ID=alpine in /etc/os-release)"
    else:
        os_dir, detect = "Linux", f"{label} has no musl detection"
    wanted = f"org/sqlite/native/{os_dir}/{dirs[0]}/libsqlitejdbc.so"
    release = {"x86_64": "3.39.2.0", "aarch64": "3.39.2.0", "i386": "3.39.2.1"}.get(arch)
    upgrade = f"use sqlite-jdbc {release} or later (with its natives): it ships a musl build for {arch}"
    return _Plan(
        keys=tuple(f"{os_dir}/{d}" for d in dirs),
        found=f"{detect} and loads {{member}}",
        missing=f"{detect} and looks for {wanted}, absent from this JAR: it does not fall back to another build; "
        f"the load fails ('No native library ... found for os.name={os_dir}, os.arch={dirs[0]}')",
        upgrade=upgrade if release else None,
    )


def _snappy_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    if arch == "x86_64" and _since(version, (1, 1, 10, 8)):
        keys: tuple[str, ...] = ("x86_64-musl",)
        detect = f"{label} detects musl on x86_64 (/lib/ld-musl-x86_64.so.1 exists)"
    else:
        keys = {"i386": ("x86",), "arm": ("armv7", "armv6", "arm"), "ppc64": ("ppc64le", "ppc64")}.get(arch, (arch,))
        scope = " on this architecture" if _since(version, (1, 1, 10, 8)) else ""
        detect = f"{label} has no musl detection{scope}"
    wanted = f"org/xerial/snappy/native/Linux/{keys[0]}/libsnappyjava.so"
    return _Plan(
        keys=keys,
        found=f"{detect} and loads {{member}}",
        missing=f"{detect} and looks for {wanted}, absent from this JAR: it throws SnappyError "
        "FAILED_TO_LOAD_NATIVE_LIBRARY (no fallback to another build)",
        upgrade="use snappy-java 1.1.10.8 or later: it ships a musl build for x86_64" if arch == "x86_64" else None,
    )


def _rocksdb_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    musl = _since(version, (6, 6, 3))
    base = {"x86_64": "linux64", "i386": "linux32", "arm": "linux32", "aarch64": "linux-aarch64",
            "ppc64": "linux-ppc64le", "s390x": "linux-s390x"}.get(arch, f"linux-{arch}")
    if arch == "riscv64" and not _since(version, (8, 10, 0)):
        base = "linux64"  # before riscv64 support the 64-bit default name is the x86_64 one
    suffix = "-musl" if musl and arch != "s390x" else ""  # Environment.getJniLibraryName: no libc suffix on s390x
    if not musl:
        detect = f"{label} has no musl detection"
    elif _since(version, (7, 9, 2)):
        detect = f"{label} detects musl (ROCKSDB_MUSL_LIBC, 'ldd /usr/bin/env', or /lib/libc.musl-*.so.1)"
    else:
        detect = f"{label} detects musl ('ldd /usr/bin/env | grep -q musl')"
    if musl and arch == "s390x":
        detect += " but names no musl build for s390x"
    wanted = f"librocksdbjni-{base}{suffix}.so"
    shipped = arch in ("x86_64", "i386", "aarch64", "ppc64")
    return _Plan(
        keys=(wanted,),
        found=f"{detect} and loads {{member}}",
        missing=f"{detect} and looks for {wanted}, absent for {arch} in this JAR: after java.library.path it throws "
        f"RuntimeException '{wanted} was not found inside JAR' (no fallback to the glibc build)",
        upgrade=f"use rocksdbjni 6.6.3 or later: it ships a musl build for {arch}" if shipped else None,
    )


def _os_arch_dirs(arch: str) -> tuple[str, ...]:
    """System.getProperty("os.arch") on Linux for an ELF machine (little-endian first where both exist): the JVM's
    names, not OCI's (aarch64 stays aarch64, i386 is not 386), so not ``targets.reference.ARCHITECTURES``."""
    return {"x86_64": ("amd64",), "i386": ("i386", "x86"), "ppc64": ("ppc64le", "ppc64"),
            "mips64": ("mips64el", "mips64")}.get(arch, (arch,))


def _no_detection(label: str) -> str:
    """How a loader without musl detection that tries java.library.path first loads its resource."""
    return f"{label} has no musl detection; after java.library.path it loads {{member}}"


def _finds_none(label: str, wanted: str, failure: str) -> str:
    return f"{label} has no musl detection and finds no {wanted} in this JAR: {failure}"


def _os_arch_plan(resource: str, failure: str, fallback: str | None = None, lost: str | None = None) -> _Planner:
    """A loader that looks for ``resource`` under the JVM's os.arch ("{dir}"), after java.library.path."""
    def plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
        dirs = _os_arch_dirs(arch)
        return _Plan(keys=dirs, found=_no_detection(label),
                     missing=_finds_none(label, resource.format(dir=dirs[0]), failure), fallback=fallback, lost=lost)

    return plan


def _netty_arch(arch: str) -> tuple[str, ...]:
    """PlatformDependent.normalizedArch() for an ELF machine."""
    return {"i386": ("x86_32",), "aarch64": ("aarch_64",), "arm": ("arm_32",), "ppc64": ("ppcle_64", "ppc_64"),
            "s390x": ("s390_64",), "loongarch64": ("loongarch_64",)}.get(arch, (arch,))


def _netty_plan(kind: str, fallback: str | None, lost: str | None) -> _Planner:
    def plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
        upgrade = None
        if kind == "tcnative" and (version is None or version <= (2, 0, 81)):
            upgrade = ("upgrade netty-tcnative to a release after 2.0.81 with netty-tcnative PR #997: "
                       "its Linux builds then load on musl")
        names = _netty_arch(arch)
        if kind == "tcnative":  # OpenSsl.loadTcNative: the os-release ID classifier first (alpine), then generic
            keys = (*(f"linux_{n}_alpine" for n in names), *(f"linux_{n}" for n in names),
                    *(f"linux_{n}_fedora" for n in names), "")
        elif kind == "quic":  # Quiche.loadNativeLibrary: netty_quiche42_<os>_<arch> and no other name
            keys = tuple(f"linux_{n}" for n in names)
        else:
            keys = (*names, "")
        generic = f"linux_{names[0]}" if kind in ("tcnative", "quic") else names[0]
        # netty 4.2 names them ..._io_uring42_ and ..._quiche42_; the 4.1-era incubator artifacts (0.0.x) do not
        base = _NETTY_BASE[kind] + ("42" if kind in ("quic", "io_uring") and _since(version, (4, 2)) else "")
        wanted = f"META-INF/native/lib{base}_{generic}.so"
        failure = "UnsatisfiedLinkError" + ("" if fallback else ": Quic.isAvailable() is false and QUIC cannot be "
                                            "used (there is no fallback)")
        return _Plan(
            keys=keys,
            found=_no_detection(label),
            missing=_finds_none(label, wanted, failure),
            upgrade=upgrade,
            fallback=fallback,
            lost=lost,
        )

    return plan


_NETTY_BASE = {"epoll": "netty_transport_native_epoll", "io_uring": "netty_transport_native_io_uring",
               "tcnative": "netty_tcnative", "quic": "netty_quiche"}


def _conscrypt_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    names = ("x86",) if arch == "i386" else _netty_arch(arch)  # HostProperties.Architecture file components
    return _Plan(
        keys=(*(f"-linux-{n}" for n in names), ""),
        found=f"{label} has no musl detection and loads {{member}}",
        missing=_finds_none(label, f"META-INF/native/libconscrypt_openjdk_jni-linux-{names[0]}.so",
                            "UnsatisfiedLinkError"),
        fallback="Conscrypt.isAvailable() is false: the JDK's own TLS provider stays in use",
        lost="Conscrypt's BoringSSL TLS provider (the JDK's TLS is used instead)",
    )


def _jna_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    dirs = {"x86_64": ("x86-64",), "i386": ("x86",), "arm": ("arm", "armel"), "ppc64": ("ppc64le", "ppc64"),
            "mips64": ("mips64el", "mips64"), "sparc64": ("sparcv9",)}.get(arch, (arch,))
    return _Plan(
        keys=dirs,
        found=f"{label} has no musl detection and loads {{member}}",
        missing=_finds_none(label, f"com/sun/jna/linux-{dirs[0]}/libjnidispatch.so",
                            "UnsatisfiedLinkError 'Native library ... not found in resource path'"),
    )


def _jansi_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    # OSInfo.getArchName: os.arch through archMapping (amd64 -> x86_64, aarch64 -> arm64, i386 -> x86); on ARM
    # `uname -m` decides (armv7l -> armv7); ppc64le is not mapped and keeps its name, which no JAR carries
    dirs = {"x86_64": ("x86_64",), "i386": ("x86",), "aarch64": ("arm64",), "arm": ("armv7", "armv6", "arm"),
            "ppc64": ("ppc64le",)}.get(arch, (arch,))
    return _Plan(
        keys=dirs,
        found=f"{label} has no musl detection and loads {{member}} (after library.jansi.path, before "
        "java.library.path)",
        missing=_finds_none(label, f"org/fusesource/jansi/internal/native/Linux/{dirs[0]}/libjansi.so",
                            "'No native library found for os.name=Linux'"),
        fallback="jansi.graceful (true by default): AnsiConsole treats the console as unsupported and strips the "
        "ANSI escape sequences",
        lost="ANSI colours and cursor control on the console (the output is plain text)",
    )


def _commons_crypto_plan(arch: str, version: tuple[int, ...] | None, label: str) -> _Plan:
    # OsInfo.getArchName: amd64 -> x86_64, i386 -> x86; on ARM it runs `readelf -A` on libjvm.so and takes armhf
    # only when that succeeds (Alpine has no readelf unless binutils is installed); ppc64le keeps its name
    dirs = {"x86_64": ("x86_64",), "i386": ("x86",), "arm": ("arm",), "ppc64": ("ppc64le",)}.get(arch, (arch,))
    return _Plan(
        keys=dirs,
        found=f"{label} has no musl detection and loads {{member}} (after commons.crypto.lib.path)",
        missing=_finds_none(label, f"org/apache/commons/crypto/native/Linux/{dirs[0]}/libcommons-crypto.so",
                            "IllegalStateException 'No native library is found for os.name=Linux'"),
        fallback="CryptoCipherFactory and CryptoRandomFactory try OPENSSL, then JCE / JAVA (the defaults): the "
        "JDK's ciphers and SecureRandom are used",
        lost="OpenSSL's AES-NI ciphers and random source (the JDK's JCE is used instead)",
    )


def _netty(kind: str, name: str, artifacts: set[str], fallback: str | None, lost: str | None) -> _Library:
    base = _NETTY_BASE[kind].replace("_", "[-_]") + ("(?:42)?" if kind in ("io_uring", "quic") else "")
    # NativeLibraryLoader prefixes the shading package, mangled: lib<prefix>netty_..._<arch>.so
    pattern = re.compile(rf"(?:^|/)META-INF/native/lib(?:\w*?_)??{base}(?:_(?P<key>\w+))?\.so")
    return _Library(name, frozenset(artifacts), pattern, _netty_plan(kind, fallback, lost))


_LIBRARIES: tuple[_Library, ...] = (
    _Library("sqlite-jdbc", frozenset({"sqlite-jdbc"}),
             re.compile(r"(?:^|/)org/sqlite/native/(?P<key>Linux[^/]*/[^/]+)/libsqlitejdbc\.so"), _sqlite_plan),
    _Library("snappy-java", frozenset({"snappy-java"}),
             re.compile(r"(?:^|/)org/xerial/snappy/native/Linux/(?P<key>[^/]+)/libsnappyjava\.so"), _snappy_plan),
    _Library("rocksdbjni", frozenset({"rocksdbjni"}), re.compile(r"^(?P<key>librocksdbjni-linux[^/]*\.so)"),
             _rocksdb_plan),
    _Library("zstd-jni", frozenset({"zstd-jni"}), re.compile(r"^linux/(?P<key>[^/]+)/libzstd-jni[^/]*\.so"),
             _os_arch_plan("linux/{dir}/libzstd-jni-*.so", "UnsatisfiedLinkError 'Failed to open resource'")),
    _Library("lz4-java", frozenset({"lz4-java"}),
             re.compile(r"(?:^|/)net/jpountz/util/linux/(?P<key>[^/]+)/liblz4-java\.so"),
             _os_arch_plan(
                 "net/jpountz/util/linux/{dir}/liblz4-java.so",
                 "LZ4Factory.fastestInstance() falls back to the Java implementation",
                 "LZ4Factory.fastestInstance() uses the pure-Java LZ4 when the native library fails to load",
                 "the native LZ4 codec (the slower pure-Java LZ4 is used instead)")),
    _netty("epoll", "netty-transport-native-epoll", {"netty-transport-native-epoll", "netty-all"},
           "Epoll.isAvailable() is false: an application that checks it uses NIO; Epoll.ensureAvailability() throws",
           "the epoll transport (NIO is used instead, where the application checks Epoll.isAvailable())"),
    _netty("io_uring", "netty-transport-native-io_uring",
           {"netty-transport-native-io_uring", "netty-incubator-transport-native-io_uring", "netty-all"},
           "IoUring.isAvailable() is false: an application that checks it uses epoll or NIO",
           "the io_uring transport (epoll or NIO is used instead, where the application checks)"),
    _netty("tcnative", "netty-tcnative", {"netty-tcnative-boringssl-static", "netty-tcnative"},
           "OpenSsl.isAvailable() is false: SslProvider.JDK is used unless OPENSSL is required",
           "BoringSSL TLS (the JDK's TLS is used instead: no OpenSSL-only ciphers, slower handshakes)"),
    # Quic.ensureAvailability() throws and no QUIC channel can be built: there is no fallback
    _netty("quic", "netty-codec-native-quic", {"netty-codec-native-quic", "netty-incubator-codec-native-quic"},
           None, None),
    _Library("conscrypt", frozenset({"conscrypt-openjdk-uber", "conscrypt-openjdk"}),
             re.compile(r"(?:^|/)META-INF/native/libconscrypt_openjdk_jni(?P<key>[^/]*)\.so"), _conscrypt_plan),
    _Library("jna", frozenset({"jna"}), re.compile(r"(?:^|/)com/sun/jna/linux-(?P<key>[^/]+)/libjnidispatch\.so"),
             _jna_plan),
    _Library("jansi", frozenset({"jansi"}),
             re.compile(r"(?:^|/)org/fusesource/jansi/internal/native/Linux/(?P<key>[^/]+)/libjansi\.so"), _jansi_plan),
    _Library("commons-crypto", frozenset({"commons-crypto"}),
             re.compile(r"(?:^|/)org/apache/commons/crypto/native/Linux/(?P<key>[^/]+)/libcommons-crypto\.so"),
             _commons_crypto_plan),
)


def _known(native: Native) -> tuple[_Library, str] | None:
    """The known library a native belongs to, and its key for the loader's plan."""
    for library in _LIBRARIES:
        match = library.pattern.search(native.member)
        if match is not None and match.end() == len(native.member):
            return library, match["key"] or ""
    return None


# Unknown libraries: grouped by stem, the arch and libc tokens stripped from the file name.

_STEM_NOISE = re.compile(
    r"[-_.](?:x86[-_]64|x86[-_]32|amd64|x64|aarch[-_]?64|arm64(?:v8)?|armv[5-8]\w*|armhf|armel|arm(?:[-_]?32)?|"
    r"i[3-6]86|x86|ppc(?:le)?[-_]?64(?:le)?|ppc|s390x?(?:[-_]64)?|riscv[-_]?64|loongarch[-_]?64|mips64(?:el)?|"
    r"musl|glibc|gnu|alpine|linux|static|shared|jni)(?=[-_.]|$)",
    re.IGNORECASE,
)


def library_stem(member: str) -> str:
    """``natives/linux-x86_64/libfoo-linux-x86_64-musl.so.1`` -> ``foo``."""
    name = member.rsplit("/", 1)[-1]
    name = re.sub(r"\.so(?:\.\d+)*$", "", name)
    name = name[3:] if name.startswith("lib") and len(name) > 3 else name
    previous = None
    while previous != name:
        previous, name = name, _STEM_NOISE.sub("", name)
    return name or member.rsplit("/", 1)[-1]


def _unknown_choice(stem: str, natives: Sequence[Native], arch: str) -> Choice:
    candidates = [n for n in natives if n.arch == arch]
    musl = [n for n in candidates if _is_musl(n)]
    if musl:
        how = f"{stem} ships a musl build for {arch}; the library's own loader must pick it: unverified"
        selected = musl[0]
    elif candidates:
        ordered = sorted(candidates, key=lambda n: n.flavour is not Flavour.GLIBC)  # the glibc build is judged
        selected = ordered[0]
        how = f"{stem} ships no musl build for {arch}: its {selected.flavour.value}-flavour Linux build is judged"
    else:
        built = ", ".join(sorted({n.arch for n in natives}))
        return Choice(stem, arch, None, f"{stem} ships Linux builds for {built} only, none for {arch}", (), None)
    return Choice(stem, arch, selected, how, tuple(n for n in candidates if n is not selected), None)


def _known_choice(library: _Library, keyed: Sequence[tuple[Native, str]], package: Package | None,
                  arch: str) -> Choice:
    ours = package is not None and package.name.lower() in library.artifacts
    version_text = package.version if ours and package is not None else None
    label = f"{library.name} {version_text}" if version_text else f"{library.name} (version unknown: current loader)"
    plan = library.plan(arch, _version(version_text), label)
    candidates = [(n, key) for n, key in keyed if n.arch == arch]
    selected = next((n for wanted in plan.keys for n, key in candidates if key == wanted), None)
    unused = tuple(n for n, _ in candidates if n is not selected)
    if selected is None:
        return Choice(library.name, arch, None, plan.missing, unused, plan.upgrade, plan.fallback, plan.lost)
    how = plan.found.replace("{member}", selected.member)
    if selected.flavour is Flavour.GLIBC:
        how += " (a glibc build)"
    elif selected.flavour is Flavour.MUSL and not _musl_hint(selected):
        how += " (a musl build)"
    upgrade = plan.upgrade if selected.flavour is not Flavour.MUSL else None
    return Choice(library.name, arch, selected, how, unused, upgrade, plan.fallback, plan.lost)


def split(packages: Sequence[Package], natives: Sequence[Native]) -> list[tuple[Package | None, list[Native]]]:
    """One archive's natives, assigned to the package they belong to: a known library's natives to the package with
    its artifactId (shaded JARs hold several libraries), the rest to packages[0] (the archive's own), or None."""
    groups: dict[int, list[Native]] = {}
    for native in natives:
        known = _known(native)
        index = 0
        if known is not None:
            index = next((i for i, p in enumerate(packages) if p.name.lower() in known[0].artifacts), 0)
        groups.setdefault(index, []).append(native)
    return [(packages[i] if packages else None, groups[i]) for i in sorted(groups)]


def choose(package: Package | None, natives: Sequence[Native], arch: str) -> tuple[Choice, ...]:
    """For the target architecture ``arch``: one Choice per native library of the package that has Linux builds."""
    known: dict[str, tuple[_Library, list[tuple[Native, str]]]] = {}
    unknown: dict[str, list[Native]] = {}
    order: list[tuple[bool, str]] = []
    for native in natives:
        if other_system(native) is not None:
            continue
        found = _known(native)
        if found is not None:
            library, key = found
            if library.name not in known:
                known[library.name] = (library, [])
                order.append((True, library.name))
            known[library.name][1].append((native, key))
        else:
            stem = library_stem(native.member)
            if stem not in unknown:
                unknown[stem] = []
                order.append((False, stem))
            unknown[stem].append(native)
    return tuple(
        _known_choice(*known[name], package, arch) if is_known else _unknown_choice(name, unknown[name], arch)
        for is_known, name in order
    )
