"""Python distributions that own extension modules: installed ``*.dist-info`` directories, and wheels.

An installed distribution lists its files in ``RECORD`` (``path,hash,size``, relative to the site directory),
its name and version in ``METADATA`` and its wheel tags in ``WHEEL``. A glibc wheel (``manylinux``, or ``linux``
when built locally) has a musl counterpart only where its release publishes a ``musllinux`` wheel.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from muslcheck.apps.metadata import decode_metadata, read_metadata
from muslcheck.apps.model import Ecosystem, Host, Identified, Native, Package
from muslcheck.apps.registry import Detector, HostProcess, MetadataFiles, parent_name, register
from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import RootFS, join
from muslcheck.model.options import Context
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata

# Symbol-name prefixes the CPython process defines for extension modules: libpython (or a statically linked
# python3) exports only Py*/_Py* definitions; its other dynamic symbols are libc/libm/expat imports.
CPYTHON_PROVIDES: tuple[str, ...] = ("Py", "_Py")

SITE_DIRS = ("site-packages", "dist-packages")
WHEEL_SUFFIX = ".whl"


def _in_dist_info(path: str) -> bool:
    return parent_name(path).endswith(".dist-info")


# An installed distribution's files, and a wheel's (``<name>-<version>.dist-info/`` at its top).
METADATA_FILES: MetadataFiles = {"WHEEL": _in_dist_info, "METADATA": _in_dist_info, "RECORD": _in_dist_info}

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a project name (PEP 508)
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$")
_TAG = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+$")
_HEADER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")


def parse_headers(text: str) -> list[tuple[str, str]] | str:
    """RFC 822 style headers up to the first blank line (continuation lines folded); or what is wrong."""
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            break
        if line[0] in " \t":
            if not headers:
                return f"line {number} continues no header"
            key, value = headers[-1]
            headers[-1] = (key, f"{value} {line.strip()}")
            continue
        match = _HEADER.match(line)
        if match is None:
            return f"line {number} is not a 'Name: value' header"
        headers.append((match.group(1), match.group(2).strip()))
    return headers


@dataclass(frozen=True)
class WheelInfo:
    name: str | None
    version: str | None
    tags: tuple[str, ...]


def expand_tags(tag: str) -> Iterator[str]:
    """``py2.py3-none-any`` is the compressed form of two tags."""
    python, abi, platform = tag.split("-")
    for p in python.split("."):
        for a in abi.split("."):
            for plat in platform.split("."):
                yield f"{p}-{a}-{plat}"


def platforms_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.rsplit("-", 1)[1] for t in tags))


def is_glibc_only(platforms: tuple[str, ...]) -> bool:
    """A Linux wheel for glibc alone: manylinux (or a local linux_* build) and no musllinux tag."""
    linux = any(p.startswith(("manylinux", "linux_")) for p in platforms)
    return linux and not any(p.startswith("musllinux") for p in platforms)


def musl_advice(name: str, version: str | None) -> str:
    release = f"{name} {version}" if version else name
    return (f"pip install on Alpine selects a musllinux wheel of {release} when that release publishes one; "
            "otherwise pip builds it from source (apk add build-base python3-dev)")


def make_package(location: str, info: WheelInfo, fallback_name: str) -> Package:
    name = info.name or fallback_name
    platforms = platforms_of(info.tags)
    details = {"wheel-tags": " ".join(info.tags), "platform": " ".join(platforms)} if info.tags else {}
    advice = (musl_advice(name, info.version),) if is_glibc_only(platforms) else ()
    return Package(Ecosystem.PYPI, name, info.version, location, Host.PYTHON, details, advice)


def split_dist_info_name(directory: str) -> tuple[str, str | None]:
    """``orjson-3.9.10.dist-info`` -> ("orjson", "3.9.10"); the name part escapes "-" as "_"."""
    stem = directory.rsplit("/", 1)[-1].removesuffix(".dist-info")
    name, _, version = stem.partition("-")
    return name, version or None


def parse_metadata(path: str, text: str) -> tuple[str | None, str | None, list[Skip]]:
    """Name and Version from METADATA (None where absent or invalid, with a Skip saying so)."""
    headers = parse_headers(text)
    if isinstance(headers, str):
        return None, None, [Skip(path, f"METADATA {headers}", unchecked=False)]
    fields = {k.lower(): v for k, v in reversed(headers)}  # the first occurrence wins
    problems: list[Skip] = []
    name = fields.get("name")
    if name is None or not _NAME.match(name):
        problems.append(Skip(path, "METADATA has no valid Name header", unchecked=False))
        name = None
    version = fields.get("version")
    if version is not None and not _VERSION.match(version):
        problems.append(Skip(path, "METADATA Version is not a version", unchecked=False))
        version = None
    return name, version, problems


def parse_wheel(path: str, text: str) -> tuple[tuple[str, ...], list[Skip]]:
    """The Tag lines of WHEEL, expanded; a bad tag is left out with a Skip."""
    headers = parse_headers(text)
    if isinstance(headers, str):
        return (), [Skip(path, f"WHEEL {headers}", unchecked=False)]
    tags: list[str] = []
    problems: list[Skip] = []
    for key, value in headers:
        if key.lower() != "tag":
            continue
        if not _TAG.match(value):
            problems.append(Skip(path, "WHEEL Tag is not python-abi-platform", unchecked=False))
            continue
        tags.extend(expand_tags(value))
    return tuple(dict.fromkeys(tags)), problems


def parse_record(path: str, text: str, site: str) -> tuple[frozenset[str], list[Skip]]:
    """The absolute in-root paths a RECORD lists (relative to ``site``; ".." allowed, never above the root)."""
    files: set[str] = set()
    bad = 0
    try:
        for row in csv.reader(text.splitlines()):
            if not row:
                continue
            if len(row) != 3 or not row[0]:
                bad += 1
                continue
            files.add(posixpath.normpath(row[0] if row[0].startswith("/") else join(site, row[0])))
    except csv.Error as e:
        return frozenset(files), [Skip(path, f"RECORD is not CSV: {e}", unchecked=False)]
    problems = [Skip(path, f"RECORD: {bad} line(s) are not path,hash,size", unchecked=False)] if bad else []
    return frozenset(files), problems


def in_site_dir(path: str) -> bool:
    return any(f"/{d}/" in path for d in SITE_DIRS)


def site_dirs_of(path: str) -> list[str]:
    """Every enclosing site-packages/dist-packages directory, nearest first."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts) - 2, 0, -1) if parts[i] in SITE_DIRS]


@dataclass(frozen=True)
class _Installed:
    directory: str
    files: frozenset[str]


def identify(root: RootFS, elves: Mapping[str, ElfFacts]) -> Identified:
    """The installed distributions that own ELF files below a site-packages or dist-packages directory."""
    problems: list[Skip] = []
    claimed: dict[str, str] = {}  # ELF path -> dist-info directory
    sites = {site for path in elves if ARCHIVE_SEPARATOR not in path for site in site_dirs_of(path)}
    for site in sorted(sites, key=lambda s: (-s.count("/"), s)):  # a nested site directory's RECORDs first
        for dist in _installed(root, site, problems):
            for path in sorted(dist.files):
                if path in elves:
                    claimed.setdefault(path, dist.directory)
    packages: dict[str, Package] = {}
    for directory in sorted(set(claimed.values())):
        packages[directory] = _package(root, directory, problems)
    owner = {path: packages[directory] for path, directory in claimed.items()}
    return Identified(tuple(packages.values()), owner, tuple(problems))


def _installed(root: RootFS, site: str, problems: list[Skip]) -> Iterator[_Installed]:
    for name in root.list_dir(site):
        if not name.endswith(".dist-info"):
            continue
        directory = join(site, name)
        record_path = join(directory, "RECORD")
        text = read_metadata(root, record_path)
        if isinstance(text, Skip):
            problems.append(text)
        elif text is not None:
            files, record_problems = parse_record(record_path, text, site)
            problems.extend(record_problems)
            yield _Installed(directory, files)


def _package(root: RootFS, directory: str, problems: list[Skip]) -> Package:
    fallback_name, fallback_version = split_dist_info_name(directory)
    name = version = None
    metadata_path = join(directory, "METADATA")
    text = read_metadata(root, metadata_path)
    if isinstance(text, Skip):
        problems.append(text)
    elif text is None:
        problems.append(Skip(metadata_path, "no METADATA: name and version from the directory", unchecked=False))
    else:
        name, version, found = parse_metadata(metadata_path, text)
        problems.extend(found)
    tags: tuple[str, ...] = ()
    wheel_path = join(directory, "WHEEL")
    text = read_metadata(root, wheel_path)
    if isinstance(text, Skip):
        problems.append(text)
    elif text is not None:
        tags, found = parse_wheel(wheel_path, text)
        problems.extend(found)
    info = WheelInfo(name, version or fallback_version, tags)
    return make_package(directory, info, fallback_name)


def identify_wheel(location: str, metadata: Mapping[str, bytes]) -> tuple[Package | None, tuple[Skip, ...]]:
    """The distribution a ``.whl`` file holds, from its top-level ``*.dist-info`` members (else its file name)."""
    problems: list[Skip] = []
    dist_infos = sorted({m.split("/", 1)[0] for m in metadata if m.count("/") == 1 and
                         m.split("/", 1)[0].endswith(".dist-info")})
    from_name = _wheel_file_name(location)
    if not dist_infos and from_name is None:
        return None, (Skip(location, "no .dist-info metadata and not a wheel file name", unchecked=False),)
    name = version = None
    tags: tuple[str, ...] = ()
    fallback_name = from_name.name if from_name and from_name.name else location.rsplit("/", 1)[-1]
    if dist_infos:
        directory = dist_infos[0]
        fallback_name, fallback_version = split_dist_info_name(directory)
        name, version = _wheel_metadata(location, directory, metadata, problems)
        tags = _wheel_tags(location, directory, metadata, problems)
        version = version or fallback_version
    if not tags and from_name is not None:
        tags = from_name.tags
    if version is None and from_name is not None:
        version = from_name.version
    return make_package(location, WheelInfo(name, version, tags), fallback_name), tuple(problems)


def _wheel_metadata(location: str, directory: str, metadata: Mapping[str, bytes],
                    problems: list[Skip]) -> tuple[str | None, str | None]:
    path = f"{location}{ARCHIVE_SEPARATOR}{directory}/METADATA"
    data = metadata.get(f"{directory}/METADATA")
    if data is None:
        problems.append(Skip(path, "no METADATA in the wheel", unchecked=False))
        return None, None
    text = decode_metadata(path, data)
    if isinstance(text, Skip):
        problems.append(text)
        return None, None
    name, version, found = parse_metadata(path, text)
    problems.extend(found)
    return name, version


def _wheel_tags(location: str, directory: str, metadata: Mapping[str, bytes], problems: list[Skip]) -> tuple[str, ...]:
    path = f"{location}{ARCHIVE_SEPARATOR}{directory}/WHEEL"
    data = metadata.get(f"{directory}/WHEEL")
    if data is None:
        return ()
    text = decode_metadata(path, data)
    if isinstance(text, Skip):
        problems.append(text)
        return ()
    tags, found = parse_wheel(path, text)
    problems.extend(found)
    return tags


def _wheel_file_name(location: str) -> WheelInfo | None:
    """``name-version(-build)?-python-abi-platform.whl`` (PEP 427), or None when the name is not of that form."""
    base = location.rsplit(ARCHIVE_SEPARATOR, 1)[-1].rsplit("/", 1)[-1]
    if not base.lower().endswith(WHEEL_SUFFIX):
        return None
    parts = base[: -len(WHEEL_SUFFIX)].split("-")
    if len(parts) not in (5, 6) or not _TAG.match("-".join(parts[-3:])):
        return None
    name = parts[0] if _NAME.match(parts[0]) else None
    version = parts[1] if _VERSION.match(parts[1]) else None
    return WheelInfo(name, version, tuple(dict.fromkeys(expand_tags("-".join(parts[-3:])))))


def _wheel(archive: ArchiveMetadata, natives: Sequence[Native], target_arch: str) -> Identified | None:
    """A wheel's distribution, owning every native file in it; None for another kind of archive."""
    if not archive.location.lower().endswith(WHEEL_SUFFIX):
        return None
    wheel, problems = identify_wheel(archive.location, archive.members)
    if wheel is None:
        return Identified(problems=problems)
    return Identified((wheel,), {n.path: wheel for n in natives}, problems)


def _cpython_loads(path: str) -> bool:
    """A wheel's member, or a file below a site directory."""
    if ARCHIVE_SEPARATOR in path:
        return path.rsplit(ARCHIVE_SEPARATOR, 1)[0].endswith(WHEEL_SUFFIX)
    return in_site_dir(path)


register(Detector(
    name="python",
    order=20,  # before java: a wheel is Python's
    metadata=METADATA_FILES,
    installed=identify,
    archive=_wheel,
    # CPython imports an extension module with dlopen(RTLD_NOW)
    host=HostProcess(Host.PYTHON, Context.DLOPEN_NOW, CPYTHON_PROVIDES, _cpython_loads),
))
