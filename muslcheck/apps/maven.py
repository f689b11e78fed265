"""Which Maven packages a JAR, WAR or EAR declares: its pom.properties files, else its manifest, else its file name.

Metadata comes from the archive itself and may be hostile: anything unreadable becomes a ``Skip`` (a finding, not an
error) and the next source is tried. Nothing here raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from muslcheck.apps.model import METADATA_MAX_BYTES, Host, Package
from muslcheck.apps.registry import MetadataFiles, anywhere, parent_name
from muslcheck.model.report import Ecosystem, Skip

_POM_MEMBER = re.compile(r"META-INF/maven/[^/]+/[^/]+/pom\.properties")
_MANIFEST_MEMBER = "meta-inf/manifest.mf"
# What an archive keeps for identify_archive: every pom.properties, and the manifest.
METADATA_FILES: MetadataFiles = {"pom.properties": anywhere,
                                 "MANIFEST.MF": lambda path: parent_name(path) == "META-INF"}
_ARCHIVE_SUFFIX = re.compile(r"\.(?:jar|war|ear|rar|sar|aar)$", re.IGNORECASE)

_VALUE_MAX = 200  # longer coordinates, versions and titles are garbage, not metadata
_COORDINATE = re.compile(r"[A-Za-z0-9_.\-]+")  # Maven's own pattern for groupId and artifactId
_VERSION = re.compile(r"[^\s\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # not text: binary garbage
_BUILD_TAG = re.compile(r"(\S+)\s+\([^()\x00-\x1f]*\)")  # a version, then a build tag in parentheses

# java.util.jar.Manifest reads each line into a 512-byte buffer, line end included, and rejects longer lines.
_MANIFEST_LINE_MAX = 511
_MANIFEST_HEADER = re.compile(rb"([A-Za-z0-9_\-]{1,70}): (.*)", re.DOTALL)

_PROPERTIES_BLANK = " \t\f"
_PROPERTIES_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class _Unreadable(ValueError):
    """Metadata that cannot be used; the message is the one-line reason."""


def identify_archive(location: str, metadata: Mapping[str, bytes]) -> tuple[tuple[Package, ...], tuple[Skip, ...]]:
    """Every Maven package the archive at ``location`` declares, its own identity first, and the metadata that
    could not be read. ``metadata`` maps member names of this archive to their bytes."""
    skips: list[Skip] = []
    poms: list[Package] = []
    manifest: dict[str, str] = {}
    for member in sorted(metadata):
        try:
            if _POM_MEMBER.fullmatch(member):
                poms.append(_pom_package(location, metadata[member]))
            elif member.lower() == _MANIFEST_MEMBER:
                manifest = _manifest_attributes(metadata[member])
        except _Unreadable as problem:
            skips.append(Skip(path=f"{location}!/{member}", reason=str(problem), unchecked=False))
    poms = _unique(poms)

    stem = _ARCHIVE_SUFFIX.sub("", location.rsplit("/", 1)[-1])
    file_name, file_version = _split_file_name(stem)
    own = _best_pom(poms, stem, file_name)
    # One pom that the file name does not name is the archive's own when the file was renamed (no version in its
    # name); a file named with a version of its own holds the pom of a shaded dependency (scala-compiler-2.12.18.jar
    # carries only jline's), and its manifest or file name says what it is.
    if own is None and len(poms) == 1 and (file_version is None or poms[0].version == file_version):
        own = poms[0]
    if own is None:
        try:
            own = _manifest_package(location, manifest, poms)
        except _Unreadable as problem:
            member = next(m for m in sorted(metadata) if m.lower() == _MANIFEST_MEMBER)
            skips.append(Skip(path=f"{location}!/{member}", reason=str(problem), unchecked=False))
    if own is None:
        own = _package(location, file_name, file_version, {"artifact": file_name, "source": "file name"})
    return (own, *(p for p in poms if p is not own)), tuple(skips)


def _split_file_name(stem: str) -> tuple[str, str | None]:
    """``name-1.2.3`` -> (name, 1.2.3); the version starts at the last ``-<digits>.`` (``log4j-1.2-api-2.17.1`` ->
    log4j-1.2-api), else at the first ``-<digit>``; no version -> None."""
    dotted = [m.start() for m in re.finditer(r"-\d+\.", stem) if m.start() > 0]
    plain = [m.start() for m in re.finditer(r"-\d", stem) if m.start() > 0]
    cut = dotted[-1] if dotted else plain[0] if plain else None
    if cut is None:
        return stem, None
    return stem[:cut], stem[cut + 1 :]


def _package(location: str, name: str, version: str | None, details: dict[str, str]) -> Package:
    return Package(Ecosystem.MAVEN, name, version, location, host=Host.JVM, details=details)


def _unique(poms: Sequence[Package]) -> list[Package]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for pom in poms:
        key = (pom.details["group"], pom.name)
        if key not in seen:
            seen.add(key)
            kept.append(pom)
    return kept


def _best_pom(poms: Sequence[Package], stem: str, file_name: str) -> Package | None:
    """The pom whose artifactId matches the file name best (exact ``artifact-version`` first, longest artifactId)."""
    scored = [(_name_score(pom, stem.lower(), file_name.lower()), len(pom.name), -i, pom) for i, pom in enumerate(poms)]
    best = max(scored, default=None, key=lambda entry: entry[:3])
    return best[3] if best is not None and best[0] > 0 else None


def _name_score(pom: Package, stem: str, file_name: str) -> int:
    artifact = pom.name.lower()
    exact = f"{artifact}-{(pom.version or '').lower()}"
    if pom.version and (stem == exact or stem.startswith(exact + "-")):
        return 3
    if file_name == artifact:
        return 2
    return 1 if stem == artifact or stem.startswith(artifact + "-") else 0


# pom.properties


def _pom_package(location: str, data: bytes) -> Package:
    properties = _properties(data)
    values: dict[str, str] = {}
    for key in ("groupId", "artifactId", "version"):
        value = properties.get(key, "").strip()
        if not value:
            raise _Unreadable(f"pom.properties without {key}")
        pattern = _VERSION if key == "version" else _COORDINATE
        if len(value) > _VALUE_MAX or not pattern.fullmatch(value):
            raise _Unreadable(f"pom.properties {key} is not a Maven {key}: {_shorten(value)}")
        values[key] = value
    details = {"group": values["groupId"], "artifact": values["artifactId"], "source": "pom.properties"}
    return _package(location, values["artifactId"], values["version"], details)


def _properties(data: bytes) -> dict[str, str]:
    """java.util.Properties.load(InputStream): ISO-8859-1, ``key=value``/``key:value``/``key value``, ``#``/``!``
    comments, backslash continuations, ``\\u`` escapes (four hex digits)."""
    if len(data) > METADATA_MAX_BYTES:
        raise _Unreadable(f"pom.properties larger than {METADATA_MAX_BYTES >> 20} MiB")
    text = data.decode("latin-1")
    if _CONTROL.search(text):
        raise _Unreadable("pom.properties holds binary data")
    properties: dict[str, str] = {}
    for line in _logical_lines(text):
        key, value = _split_property(line)
        properties[_unescape(key)] = _unescape(value)
    return properties


def _logical_lines(text: str) -> Iterator[str]:
    pending: list[str] | None = None
    for natural in re.split(r"\r\n|\r|\n", text):
        line = natural.lstrip(_PROPERTIES_BLANK)
        if pending is None and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:
            pending = pending or []
            pending.append(line[:-1])  # appended, never copied: linear in the continuation lines
            continue
        yield "".join([*(pending or []), line])
        pending = None
    if pending is not None:
        yield "".join(pending)


def _split_property(line: str) -> tuple[str, str]:
    end, escaped = len(line), False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "=:" or char in _PROPERTIES_BLANK:
            end = i
            break
    rest = line[end:].lstrip(_PROPERTIES_BLANK)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_PROPERTIES_BLANK)
    return line[:end], rest


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        i += 1
        if char != "\\" or i == len(raw):
            out.append("" if char == "\\" else char)
            continue
        char = raw[i]
        i += 1
        if char == "u":
            digits = raw[i : i + 4]
            if len(digits) < 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _Unreadable("pom.properties has a malformed \\u escape (not four hex digits)")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_PROPERTIES_ESCAPES.get(char, char))
    return "".join(out)


# MANIFEST.MF


def _manifest_attributes(data: bytes) -> dict[str, str]:
    """The main section of a JAR manifest, header names lowercased; continuation lines start with one space."""
    if len(data) > METADATA_MAX_BYTES:
        raise _Unreadable(f"manifest larger than {METADATA_MAX_BYTES >> 20} MiB")
    if b"\x00" in data:
        raise _Unreadable("manifest holds binary data")
    raw: list[tuple[bytes, list[bytes]]] = []  # continuation lines joined once at the end: linear time
    for line in re.split(rb"\r\n|\r|\n", data):
        if len(line) > _MANIFEST_LINE_MAX:
            raise _Unreadable(f"manifest line longer than {_MANIFEST_LINE_MAX} bytes")
        if not line:
            if raw:
                break  # the main section ends at the first blank line
            continue
        if line.startswith(b" "):
            if not raw:
                raise _Unreadable("manifest starts with a continuation line")
            raw[-1][1].append(line[1:])
            continue
        header = _MANIFEST_HEADER.fullmatch(line)
        if header is None:
            raise _Unreadable(f"manifest has an invalid header line: {_shorten(line.decode('latin-1'))}")
        raw.append((header[1], [header[2]]))
    try:
        return {name.decode("ascii").lower(): b"".join(value).decode("utf-8").strip() for name, value in raw}
    except UnicodeDecodeError:
        raise _Unreadable("manifest is not UTF-8") from None


def _manifest_package(location: str, manifest: Mapping[str, str], poms: Sequence[Package]) -> Package | None:
    """The identity the manifest gives: Implementation-Title, Bundle-SymbolicName or Automatic-Module-Name; a pom
    whose artifactId it names wins (it has the group)."""
    title = manifest.get("implementation-title", "")
    symbolic = manifest.get("bundle-symbolicname", "").split(";", 1)[0].strip()
    module = manifest.get("automatic-module-name", "")
    names = [name for name in (title, symbolic, module) if name]
    if not names:
        return None
    for pom in poms:
        if {n.lower() for n in names} & {pom.name.lower(), f"{pom.details['group']}.{pom.name}".lower()}:
            return pom
    name = names[0]
    implementation, bundle = manifest.get("implementation-version", ""), manifest.get("bundle-version", "")
    version = (bundle or implementation) if name == symbolic and name != title else (implementation or bundle)
    if tagged := _BUILD_TAG.fullmatch(version):  # JNA's "Implementation-Version: 5.13.0 (b0)" is version 5.13.0
        version = tagged[1]
    if len(name) > _VALUE_MAX or _CONTROL.search(name):
        raise _Unreadable(f"manifest names no usable title: {_shorten(name)}")
    if version and (len(version) > _VALUE_MAX or not _VERSION.fullmatch(version)):
        raise _Unreadable(f"manifest version is not a version: {_shorten(version)}")
    details = {"artifact": name, "source": "manifest"}
    group = manifest.get("implementation-vendor-id", "")
    if group and len(group) <= _VALUE_MAX and _COORDINATE.fullmatch(group):
        details["group"] = group
    return _package(location, name, version or None, details)


def _shorten(value: str) -> str:
    value = _CONTROL.sub("?", value.replace("\n", " ").replace("\r", " "))
    return value if len(value) <= 60 else value[:57] + "..."
