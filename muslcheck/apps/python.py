"""Python distributions that own extension modules: installed ``*.dist-info`` directories, and wheels.

An installed distribution lists its files in ``RECORD`` (``path,hash,size``, relative to the site directory),
its name and version in ``METADATA`` and its wheel tags in ``WHEEL``. A glibc wheel (``manylinux``, or ``linux``
when built locally) has a musl counterpart only where its release publishes a ``musllinux`` wheel; pip on musl
(packaging's ``sys_tags``) never offers a manylinux tag, so such a tree was installed elsewhere.

Which module CPython imports is decided by its file name: an interpreter imports ``<name>.<SOABI>.so``,
``<name>.abi3.so`` and ``<name>.so`` (``Python/dynload_shlib.c``), and from CPython 3.11 the SOABI of a musl build
ends in ``-linux-musl`` (python/cpython#24502): CPython 3.11+ on Alpine never imports a ``-linux-gnu`` module; it
imports a ``.py`` module of the same name instead, where the wheel has one.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from muslcheck.apps.flavour import flavour_of
from muslcheck.apps.metadata import decode_metadata, read_metadata
from muslcheck.apps.model import Choice, Flavour, Host, Identified, Native, Package, package_key
from muslcheck.apps.registry import Detector, HostProcess, MetadataFiles, exports_prefix, parent_name, register
from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import RootFS, join
from muslcheck.model.options import Context
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR, ArchiveMetadata

# Symbol-name prefixes the CPython process defines for extension modules: libpython (or a statically linked
# python3) exports only Py*/_Py* definitions; its other dynamic symbols are libc/libm/expat imports.
CPYTHON_PROVIDES: tuple[str, ...] = ("Py", "_Py")

SITE_DIRS = ("site-packages", "dist-packages")
WHEEL_SUFFIX = ".whl"

# An extension module's file name with a CPython SOABI tag: json.cpython-311-x86_64-linux-gnu.so
_SOABI_MODULE = re.compile(
    r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*)\.cpython-3(?P<minor>\d+)(?P<flags>[a-z]*)-(?P<triplet>[^.]+)\.so$")
# The CPU of a SOABI's platform triplet, as the ELF machine ("powerpc64le" -> "ppc64")
_TRIPLET_MACHINES = {"x86_64": "x86_64", "aarch64": "aarch64", "i386": "i386", "i686": "i386", "arm": "arm",
                     "powerpc64le": "ppc64", "powerpc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
                     "loongarch64": "loongarch64"}
MUSL_SOABI_SINCE = 11  # CPython 3.11: a musl build's SOABI ends in -linux-musl, no longer -linux-gnu


def _in_dist_info(path: str) -> bool:
    return parent_name(path).endswith(".dist-info")


# An installed distribution's files, and a wheel's (``<name>-<version>.dist-info/`` at its top).
METADATA_FILES: MetadataFiles = {"WHEEL": _in_dist_info, "METADATA": _in_dist_info, "RECORD": _in_dist_info}

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a project name (PEP 508)
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$")
_TAG = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+$")
_HEADER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")


def parse_headers(text: str) -> list[tuple[str, str]] | str:
    """RFC 822 style headers up to the first blank line (continuation lines folded); or what is wrong.

    Continuation lines are collected and joined once: folding them one by one would copy the value each time."""
    headers: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            break
        if line[0] in " \t":
            if not headers:
                return f"line {number} continues no header"
            headers[-1][1].append(line.strip())
            continue
        match = _HEADER.match(line)
        if match is None:
            return f"line {number} is not a 'Name: value' header"
        headers.append((match.group(1), [match.group(2).strip()]))
    return [(key, " ".join(parts)) for key, parts in headers]


@dataclass(frozen=True)
class WheelInfo:
    name: str | None
    version: str | None
    tags: tuple[str, ...]


MAX_WHEEL_TAGS = 1024  # tags of one wheel, once expanded (real wheels list a few dozen)


def tag_count(tag: str) -> int:
    """How many tags ``tag`` expands to, counted before any is made."""
    python, abi, platform = tag.split("-")
    return (python.count(".") + 1) * (abi.count(".") + 1) * (platform.count(".") + 1)


def expand_tags(tag: str) -> Iterator[str]:
    """``py2.py3-none-any`` is the compressed form of two tags (callers check ``tag_count`` first)."""
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
    requirement = f"{name}=={version}" if version else name
    return (f"pip install {requirement} in the Alpine image: pip there installs the release's musllinux wheel where "
            "one is published (never a manylinux one), else builds it from source (apk add build-base python3-dev)")


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
        if len(tags) + tag_count(value) > MAX_WHEEL_TAGS:
            problems.append(Skip(path, f"WHEEL lists more than {MAX_WHEEL_TAGS} tags: the rest are not read",
                                 unchecked=False))
            break
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


@dataclass(frozen=True)
class Unimportable:
    """A distribution's extension modules that CPython on musl never imports, for one architecture."""

    choice: Choice
    unused: Mapping[str, str]  # path -> why musl never loads it (the modules, and what only they load)


def soabi_module(path: str) -> re.Match[str] | None:
    return _SOABI_MODULE.match(path.rsplit("/", 1)[-1])


def unimportable_on_musl(path: str) -> bool:
    """A ``-linux-gnu`` module for CPython 3.11 or later: its name is not among a musl CPython's suffixes."""
    match = soabi_module(path)
    return match is not None and int(match["minor"]) >= MUSL_SOABI_SINCE and "-linux-gnu" in match["triplet"]


def unimportable(name: str, natives: list[Native], listed: frozenset[str]) -> list[Unimportable]:
    """For each architecture with ``-linux-gnu`` modules of CPython 3.11+: what CPython on musl does instead.
    ``listed``: the distribution's files (RECORD), where a ``.py`` module of the same name is the fallback."""
    out = []
    for machine in sorted({n.arch for n in natives}):
        mine = [n for n in natives if n.arch == machine]
        gnu = [n for n in mine if unimportable_on_musl(n.path)]
        if not gnu:
            continue
        match = soabi_module(gnu[0].path)
        assert match is not None
        version = f"3.{match['minor']}"
        musl_triplet = match["triplet"].replace("-linux-gnu", "-linux-musl")
        musl_suffix = f".cpython-3{match['minor']}{match['flags']}-{musl_triplet}.so"
        names = [n.path.rsplit("/", 1)[-1] for n in gnu]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        how = (f"CPython {version} on musl imports only extension modules named *{musl_suffix}, *.abi3.so or *.so: "
               f"{shown} {'is' if len(names) == 1 else 'are'} never imported")
        fallbacks = [_pure_python(n.path, listed) for n in gnu]
        fallback = lost = None
        if all(fallbacks):
            modules = ", ".join(f[len(n.path.rsplit("/", 1)[0]) + 1:] for n, f in zip(gnu, fallbacks, strict=True) if f)
            fallback = f"CPython imports the pure-Python {modules} beside {'it' if len(gnu) == 1 else 'them'} instead"
            lost = f"the compiled speed of {', '.join(names)}"
        else:
            how += ": the import fails (ModuleNotFoundError)"
        unused = {n.path: how for n in gnu}
        if len(gnu) == sum(1 for n in mine if soabi_module(n.path) or n.path.endswith(".abi3.so")):
            # no module of this architecture is imported: the libraries auditwheel vendored for them are never loaded
            vendored = f"loaded only by {name}'s extension modules, which CPython {version} on musl never imports"
            unused.update((n.path, vendored) for n in mine if n not in gnu and parent_name(n.path).endswith(".libs"))
        choice = Choice(name, machine, None, how, tuple(gnu), None, fallback, lost)
        out.append(Unimportable(choice, unused))
    return out


def _pure_python(path: str, listed: frozenset[str]) -> str | None:
    """The ``<module>.py`` (or package) beside an extension module that the import system finds in its stead."""
    match = soabi_module(path)
    if match is None:
        return None
    directory = path.rsplit("/", 1)[0]
    for candidate in (f"{directory}/{match['module']}.py", f"{directory}/{match['module']}/__init__.py"):
        if candidate in listed:
            return candidate
    return None


def _native(path: str) -> Native:
    """An installed extension module as a Native: the machine and libc from its SOABI tag (its name, not the ELF)."""
    match = soabi_module(path)
    cpu = match["triplet"].split("-", 1)[0] if match else ""
    flavour = Flavour.UNKNOWN if match is None else (
        Flavour.GLIBC if "-linux-gnu" in match["triplet"] else Flavour.MUSL if "-linux-musl" in match["triplet"]
        else Flavour.UNKNOWN)
    return Native(path, path.rsplit("/", 1)[-1], _TRIPLET_MACHINES.get(cpu, cpu), flavour)


def identify(root: RootFS, elves: Mapping[str, ElfFacts]) -> Identified:
    """The installed distributions that own ELF files below a site-packages or dist-packages directory, and their
    extension modules that CPython on musl never imports (``unused``, with a ``Choice`` per architecture)."""
    problems: list[Skip] = []
    claimed: dict[str, str] = {}  # ELF path -> dist-info directory
    listed: dict[str, frozenset[str]] = {}  # dist-info directory -> its RECORD
    sites = {site for path in elves if ARCHIVE_SEPARATOR not in path for site in site_dirs_of(path)}
    for site in sorted(sites, key=lambda s: (-s.count("/"), s)):  # a nested site directory's RECORDs first
        for dist in _installed(root, site, problems):
            listed.setdefault(dist.directory, dist.files)
            for path in sorted(dist.files):
                if path in elves:
                    claimed.setdefault(path, dist.directory)
    packages: dict[str, Package] = {}
    for directory in sorted(set(claimed.values())):
        packages[directory] = _package(root, directory, problems)
    owner = {path: packages[directory] for path, directory in claimed.items()}
    unused: dict[str, str] = {}
    choices: dict[str, tuple[Choice, ...]] = {}
    by_dist: dict[str, list[str]] = {}
    for path, directory in sorted(claimed.items()):
        by_dist.setdefault(directory, []).append(path)
    for directory, paths in by_dist.items():
        if not any(unimportable_on_musl(p) for p in paths):
            continue
        package = packages[directory]
        natives = [_native(p) if soabi_module(p) else Native(p, p.rsplit("/", 1)[-1], elves[p].machine,
                                                             flavour_of(elves[p])) for p in paths]
        found = unimportable(package.name, natives, listed[directory])
        if found:
            choices[package_key(package)] = tuple(u.choice for u in found)
            for u in found:
                unused.update(u.unused)
    return Identified(tuple(packages.values()), owner, tuple(problems), unused=unused, choices=choices)


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
    tag = "-".join(parts[-3:])
    tags = tuple(dict.fromkeys(expand_tags(tag))) if tag_count(tag) <= MAX_WHEEL_TAGS else ()
    return WheelInfo(name, version, tags)


def _wheel(archive: ArchiveMetadata, natives: Sequence[Native], target_arch: str) -> Identified | None:
    """A wheel's distribution, owning every native file in it, and its modules CPython on musl never imports;
    None for another kind of archive."""
    if not archive.location.lower().endswith(WHEEL_SUFFIX):
        return None
    wheel, problems = identify_wheel(archive.location, archive.members)
    if wheel is None:
        return Identified(problems=problems)
    listed = _wheel_record(archive.location, archive.members)
    found = unimportable(wheel.name, [n for n in natives if n.arch == target_arch], listed)
    unused = {path: why for u in found for path, why in u.unused.items()}
    choices = {package_key(wheel): tuple(u.choice for u in found)} if found else {}
    return Identified((wheel,), {n.path: wheel for n in natives}, problems, unused=unused, choices=choices)


def _wheel_record(location: str, members: Mapping[str, bytes]) -> frozenset[str]:
    """The wheel's files by full path (``<wheel>!/<member>``), from its RECORD; empty when it has none."""
    record = next((m for m in sorted(members) if m.count("/") == 1 and m.endswith(".dist-info/RECORD")), None)
    if record is None:
        return frozenset()
    text = decode_metadata(f"{location}{ARCHIVE_SEPARATOR}{record}", members[record])
    if isinstance(text, Skip):
        return frozenset()
    files, _ = parse_record(record, text, "/")
    return frozenset(f"{location}{ARCHIVE_SEPARATOR}{f.lstrip('/')}" for f in files)


def _cpython_loads(path: str) -> bool:
    """A wheel's member, or a file below a site directory."""
    if ARCHIVE_SEPARATOR in path:
        return path.rsplit(ARCHIVE_SEPARATOR, 1)[0].endswith(WHEEL_SUFFIX)
    return in_site_dir(path)


_MODULE_INIT = "PyInit_"


def _cpython_module(facts: ElfFacts) -> bool:
    """An extension module: it exports ``PyInit_<name>``, what CPython's importer calls (Python/importdl.c).
    Not the interpreter itself: libpython exports its built-in modules' PyInit_* beside ``Py_Initialize``."""
    return exports_prefix(facts, _MODULE_INIT) and not exports_prefix(facts, "Py_Initialize")


def _cpython_named(path: str) -> bool:
    """Names CPython imports as extension modules (``<name>.cpython-3X-<triplet>.so``, ``<name>.abi3.so``), or a
    file of an interpreter's lib-dynload, wherever the interpreter lives."""
    name = path.rpartition("/")[2]
    return ".cpython-3" in name or name.endswith(".abi3.so") or "/lib-dynload/" in path


register(Detector(
    name="python",
    order=20,  # before java: a wheel is Python's
    metadata=METADATA_FILES,
    installed=identify,
    archive=_wheel,
    # CPython imports an extension module with dlopen(RTLD_NOW)
    host=HostProcess(Host.PYTHON, Context.DLOPEN_NOW, CPYTHON_PROVIDES, _cpython_loads, _cpython_module,
                     _cpython_named, marks=(_MODULE_INIT,)),
))
