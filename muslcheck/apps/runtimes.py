"""Language runtimes the Alpine variant of the base image replaces: a Java home, a CPython prefix, a Node prefix.

Each is found from its own ELF files (``bin/java`` or ``lib/server/libjvm.so``, ``bin/python3.X``, ``bin/node``)
and described from small metadata beside them: a Java home's ``release`` file, Node's ``node_version.h``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from muslcheck.apps.flavour import flavour_of
from muslcheck.apps.metadata import read_metadata
from muslcheck.apps.model import Flavour, Identified, Package
from muslcheck.apps.python import in_site_dir
from muslcheck.apps.registry import Detector, MetadataFiles, anywhere, register
from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import Resolved, RootFS, join, parent
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR

_JVM = re.compile(r"^(?P<home>/.+)/lib/(?:[^/]+/)?(?:server|client|minimal|zero)/libjvm\.so$")
_JAVA = re.compile(r"^(?P<home>/.+)/bin/java$")
_PYTHON = re.compile(r"^(?P<prefix>/.*)/bin/python(?P<version>3\.\d+)$")
_NODE = re.compile(r"^(?P<prefix>/.*)/bin/node$")
_RELEASE_LINE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))$')
_JAVA_VERSION = re.compile(r"^(?:1\.(?P<old>\d+)|(?P<major>\d+))(?:[.+_-][0-9A-Za-z.+_-]*)?$")
_DEBIAN_JVM = re.compile(r"/java-(?:1\.)?(?P<major>\d+)-openjdk-[a-z0-9]+$")  # /usr/lib/jvm/java-17-openjdk-amd64
_NODE_DEFINE = re.compile(r"^#define\s+NODE_(MAJOR|MINOR|PATCH)_VERSION\s+(\d{1,6})\s*$", re.M)
METADATA_FILES: MetadataFiles = {"release": anywhere, "node_version.h": anywhere}  # a Java home's; Node's headers

VENDORS = {  # the release file's IMPLEMENTOR -> the distribution's name
    "Eclipse Adoptium": "Temurin",
    "AdoptOpenJDK": "AdoptOpenJDK",
    "Amazon.com Inc.": "Corretto",
    "Azul Systems, Inc.": "Zulu",
    "BellSoft": "Liberica",
    "Debian": "OpenJDK",
    "Ubuntu": "OpenJDK",
    "Alpine": "OpenJDK",
    "Oracle Corporation": "OpenJDK",
}
# Alpine's packages of a Java feature release: (JRE without GUI, JDK); aports community/openjdkN
ALPINE_OPENJDK = {
    8: ("openjdk8-jre-base", "openjdk8"),
    11: ("openjdk11-jre-headless", "openjdk11-jdk"),
    17: ("openjdk17-jre-headless", "openjdk17-jdk"),
    21: ("openjdk21-jre-headless", "openjdk21-jdk"),
    25: ("openjdk25-jre-headless", "openjdk25-jdk"),
}
_LIBC = {"musl": Flavour.MUSL, "gnu": Flavour.GLIBC, "glibc": Flavour.GLIBC}
_RELEASE_NAMES = ("IMPLEMENTOR", "JAVA_VERSION", "JAVA_RUNTIME_VERSION", "IMAGE_TYPE", "LIBC")  # the values used


def identify(root: RootFS, elves: Mapping[str, ElfFacts]) -> Identified:
    """Every Java home, CPython prefix and Node prefix anchored on an ELF file of the tree."""
    on_disk = elves if not any(ARCHIVE_SEPARATOR in p for p in elves) else {
        p: elves[p] for p in elves if ARCHIVE_SEPARATOR not in p
    }
    packages: list[Package] = []
    owner: dict[str, Package] = {}
    problems: list[Skip] = []
    for home in java_homes(root, on_disk):
        package = _java(root, home, on_disk, problems)
        packages.append(package)
        owner.update((p, package) for p in on_disk if p.startswith(home + "/"))
    for prefix, version, owned in python_prefixes(root, on_disk):
        package = _cpython(root, prefix, version, on_disk)
        packages.append(package)
        owner.update((p, package) for p in owned)
    for prefix in sorted({m.group("prefix") for p in on_disk if (m := _NODE.match(p))}):
        package = _node(root, prefix, on_disk, problems)
        packages.append(package)
        owner.update((p, package) for p in on_disk if p == f"{prefix}/bin/node" or
                     (p.startswith(f"{prefix}/lib/") and p.rsplit("/", 1)[1].startswith("libnode.so")))
    return Identified(tuple(packages), owner, tuple(problems))


def _is_file(root: RootFS, path: str) -> bool:
    found = root.resolve(path)
    return isinstance(found, Resolved) and found.is_file


def java_homes(root: RootFS, elves: Mapping[str, ElfFacts]) -> list[str]:
    """Homes with a libjvm.so, or a bin/java beside a release file; a JDK 8's jre/ folds into its JDK."""
    homes: set[str] = set()
    for path in elves:
        if (m := _JVM.match(path)) or ((m := _JAVA.match(path)) and _is_file(root, join(m.group("home"), "release"))):
            homes.add(m.group("home"))
    folded = set()
    for home in homes:
        up = parent(home)
        jdk8 = home.endswith("/jre") and (up in homes or f"{up}/bin/java" in elves or _is_file(root, f"{up}/release"))
        folded.add(up if jdk8 else home)
    return sorted(h for h in folded if not any(h.startswith(o + "/") for o in folded))


def parse_release(path: str, text: str) -> dict[str, str] | Skip:
    """A Java home's ``release`` file: KEY="value" lines (comments and blank lines allowed)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _RELEASE_LINE.match(line)
        if match is None:
            return Skip(path, f'release line {number} is not KEY="value"', unchecked=False)
        value = match.group(2) if match.group(2) is not None else match.group(3)
        values[match.group(1)] = value
    if "JAVA_VERSION" not in values and "IMPLEMENTOR" not in values:
        return Skip(path, "release file names neither JAVA_VERSION nor IMPLEMENTOR", unchecked=False)
    for key in _RELEASE_NAMES:
        if key in values and not (values[key].isprintable() and len(values[key]) <= 200):
            return Skip(path, f"release {key} is not a short printable value", unchecked=False)
    if values.get("IMAGE_TYPE", "JRE").upper() not in ("JRE", "JDK"):
        return Skip(path, "release IMAGE_TYPE is neither JRE nor JDK", unchecked=False)
    return values


def java_major(version: str) -> int | None:
    """``1.8.0_392`` -> 8, ``17.0.9`` -> 17."""
    match = _JAVA_VERSION.match(version)
    if match is None:
        return None
    return int(match.group("old") or match.group("major"))


@dataclass(frozen=True)
class _Evidence:
    libc: Flavour
    how: str  # where the libc was read


def _elf_libc(candidates: Iterable[str], elves: Mapping[str, ElfFacts]) -> _Evidence:
    for path in candidates:
        if path in elves:
            flavour = flavour_of(elves[path])
            if flavour in (Flavour.GLIBC, Flavour.MUSL):
                return _Evidence(flavour, f"the ELF file {path}")
    return _Evidence(Flavour.UNKNOWN, "no ELF evidence")


def _java(root: RootFS, home: str, elves: Mapping[str, ElfFacts], problems: list[Skip]) -> Package:
    release_path = join(home, "release")
    release: dict[str, str] = {}
    text = read_metadata(root, release_path)
    if text is None:
        problems.append(Skip(release_path, "no release file: vendor and version from the path and the ELF files",
                             unchecked=False))
    else:
        parsed = parse_release(release_path, text) if isinstance(text, str) else text
        if isinstance(parsed, Skip):
            problems.append(parsed)
        else:
            release = parsed
    jvms = sorted(p for p in elves if p.startswith(home + "/") and _JVM.match(p))
    libc = _elf_libc([*jvms, f"{home}/bin/java", f"{home}/jre/bin/java"], elves)
    notes: list[str] = []
    declared = release.get("LIBC")
    if declared in _LIBC:
        if libc.libc is not Flavour.UNKNOWN and libc.libc is not _LIBC[declared]:
            notes.append(f'the release file says LIBC="{declared}" but {libc.how} is built for {libc.libc.value}')
        libc = _Evidence(_LIBC[declared], f'the release file\'s LIBC="{declared}"')
    elif declared not in (None, "default"):
        problems.append(Skip(release_path, "release LIBC is neither musl, gnu nor default", unchecked=False))
    version = release.get("JAVA_VERSION")
    major = java_major(version) if version else None
    if version and major is None:
        problems.append(Skip(release_path, "release JAVA_VERSION is not a Java version", unchecked=False))
        version = None
    debian = _DEBIAN_JVM.search(home)
    if major is None and debian:
        major = int(debian.group("major"))
    implementor = release.get("IMPLEMENTOR")
    name = VENDORS.get(implementor or "", "OpenJDK")
    if implementor is None and "amazon-corretto" in home:
        name, implementor = "Corretto", "Amazon.com Inc. (by the path)"
    if implementor is None and debian:
        implementor = "Debian or Ubuntu (by the path)"
    image_type = release.get("IMAGE_TYPE", "").upper() or ("JDK" if f"{home}/bin/javac" in elves else "JRE")
    details = {"vendor": implementor or "unknown", "libc": libc.libc.value, "image-type": image_type,
               "libc-evidence": libc.how}
    if runtime_version := release.get("JAVA_RUNTIME_VERSION"):
        details["runtime-version"] = runtime_version
    advice: tuple[str, ...] = ()
    if libc.libc is Flavour.GLIBC and major is not None:
        advice, more = _java_advice(name, implementor or "", bool(debian), major, image_type)
        notes.extend(more)
    version = version or (str(major) if major is not None else None)
    return Package(Ecosystem.RUNTIME, name, version, home, None, details, advice, tuple(notes))


def _java_advice(name: str, implementor: str, debian: bool, major: int,
                 image_type: str) -> tuple[tuple[str, ...], list[str]]:
    jdk = image_type == "JDK"
    if name in ("Temurin", "AdoptOpenJDK"):
        notes = ["AdoptOpenJDK continues as Eclipse Temurin"] if name == "AdoptOpenJDK" else []
        return (f"eclipse-temurin:{major}-{'jdk' if jdk else 'jre'}-alpine",), notes
    if name == "Corretto":
        if major == 8 and not jdk:
            return ("amazoncorretto:8-alpine-jre",), []
        return (f"amazoncorretto:{major}-alpine",), [] if jdk else ["amazoncorretto's Alpine images hold the full JDK"]
    if (debian or implementor in ("Debian", "Ubuntu")) and major in ALPINE_OPENJDK:
        jre, full = ALPINE_OPENJDK[major]
        return (f"apk add {full if jdk else jre}",), []
    return (), []


def python_prefixes(root: RootFS, elves: Mapping[str, ElfFacts]) -> list[tuple[str, str, list[str]]]:
    """(prefix, "3.X", the ELF files the interpreter owns) for each bin/python3.X beside its lib/python3.X."""
    found = []
    for path in sorted(elves):
        match = _PYTHON.match(path)
        if match is None:
            continue
        prefix, version = match.group("prefix"), match.group("version")
        stdlib = f"{prefix}/lib/python{version}"
        resolved = root.resolve(stdlib)
        if not (isinstance(resolved, Resolved) and resolved.is_dir):
            continue
        libpython = f"{prefix}/lib/libpython{version}"
        owned = [path, *(p for p in elves if p.startswith(libpython) and ".so" in p)]
        owned.extend(p for p in elves if p.startswith(stdlib + "/") and not in_site_dir(p[len(stdlib):]))
        found.append((prefix, version, owned))
    return found


def _distribution_prefix(prefix: str) -> bool:
    """/usr: the distribution's own build (Alpine's is an apk); elsewhere (/usr/local, /opt): an image's own build."""
    return prefix == "/usr"


def _cpython(root: RootFS, prefix: str, version: str, elves: Mapping[str, ElfFacts]) -> Package:
    libc = _elf_libc([f"{prefix}/bin/python{version}"], elves)
    details = {"libc": libc.libc.value, "libc-evidence": libc.how}
    advice: tuple[str, ...] = ()
    if libc.libc is Flavour.GLIBC:
        advice = (f"python:{version}-alpine",) + (("apk add python3",) if _distribution_prefix(prefix) else ())
    notes: tuple[str, ...] = ()
    if _is_file(root, f"{prefix}/pyvenv.cfg"):
        notes = ("a virtual environment (pyvenv.cfg): create it anew on the Alpine image",)
    return Package(Ecosystem.RUNTIME, "CPython", version, prefix, None, details, advice, notes)


def node_version(path: str, text: str) -> str | Skip:
    """``20.11.1`` from node_version.h's NODE_MAJOR/MINOR/PATCH_VERSION defines."""
    parts = dict(_NODE_DEFINE.findall(text))
    if "MAJOR" not in parts:
        return Skip(path, "node_version.h defines no NODE_MAJOR_VERSION", unchecked=False)
    return ".".join(str(int(parts[k])) for k in ("MAJOR", "MINOR", "PATCH") if k in parts)


def _node(root: RootFS, prefix: str, elves: Mapping[str, ElfFacts], problems: list[Skip]) -> Package:
    header = f"{prefix}/include/node/node_version.h"
    text = read_metadata(root, header)
    version = None
    if text is not None:
        found = node_version(header, text) if isinstance(text, str) else text
        if isinstance(found, Skip):
            problems.append(found)
        else:
            version = found
    libc = _elf_libc([f"{prefix}/bin/node"], elves)
    details = {"libc": libc.libc.value, "libc-evidence": libc.how}
    advice: tuple[str, ...] = ()
    if libc.libc is Flavour.GLIBC:
        image = f"node:{version.split('.')[0]}-alpine" if version else "node:<major>-alpine"
        advice = (image,) + (("apk add nodejs",) if _distribution_prefix(prefix) else ())
    return Package(Ecosystem.RUNTIME, "Node.js", version, prefix, None, details, advice)


# Last: a runtime claims every ELF file of its home, except those a package claims first.
register(Detector(name="runtimes", order=90, metadata=METADATA_FILES, installed=identify))
