"""Which OS package owns each file: dpkg, distroless's status.d, apk, rpm (sqlite database).

Files an OS package owns are replaced by Alpine's packages when the base image changes, so the
report sets them apart from the application's own files. Every reader is pure over bytes; a
database that cannot be parsed yields no owners and a note, never an exception.
"""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from muslcheck.ldso.tree import Resolved, RootFS

MAX_DB_BYTES = 64 << 20


@dataclass(frozen=True)
class OsPackage:
    manager: str  # "dpkg", "apk", "rpm"
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.manager})"


@dataclass(frozen=True)
class Ownership:
    owners: dict[str, OsPackage]  # in-root path -> package
    distro: str | None  # "debian", "alpine", "rpm-based", or None
    notes: tuple[str, ...]


def read_ownership(root: RootFS) -> Ownership:
    owners: dict[str, OsPackage] = {}
    notes: list[str] = []
    distro = None
    if status := _read(root, "/var/lib/dpkg/status"):
        packages = {p.name: p for p in _dpkg_status(status)}
        for name in root.list_dir("/var/lib/dpkg/info"):
            if name.endswith(".list") and (pkg := packages.get(name[:-5].split(":")[0])):
                for path in _read(root, f"/var/lib/dpkg/info/{name}").decode("utf-8", "replace").splitlines():
                    if path.startswith("/") and path != "/.":
                        owners[path] = pkg
        distro = "debian"
    status_d = root.list_dir("/var/lib/dpkg/status.d")
    for name in status_d:  # distroless: one status paragraph per package, file lists in NAME.md5sums
        if name.endswith(".md5sums"):
            continue
        for pkg in _dpkg_status(_read(root, f"/var/lib/dpkg/status.d/{name}")):
            for line in _read(root, f"/var/lib/dpkg/status.d/{name}.md5sums").decode("utf-8", "replace").splitlines():
                _, _, path = line.partition("  ")
                if path:
                    owners["/" + path.lstrip("/")] = pkg
        distro = "debian"
    if installed := _read(root, "/lib/apk/db/installed"):
        owners.update(_apk_installed(installed))
        distro = "alpine"
    if rpmdb := _read(root, "/var/lib/rpm/rpmdb.sqlite"):
        try:
            owners.update(_rpm_sqlite(rpmdb))
            distro = "rpm-based"
        except (sqlite3.Error, struct.error, ValueError) as e:
            notes.append(f"/var/lib/rpm/rpmdb.sqlite could not be read ({e}): its files are not attributed")
    elif root.list_dir("/var/lib/rpm"):
        notes.append("an rpm database other than rpmdb.sqlite (Berkeley DB or NDB) is not read: rpm files are "
                     "not attributed")
    return Ownership(_canonical(root, owners), distro, tuple(notes))


def _canonical(root: RootFS, owners: dict[str, OsPackage]) -> dict[str, OsPackage]:
    """Package lists name paths as installed (/bin/ls); a merged-/usr tree holds /usr/bin/ls."""
    directories: dict[str, str | None] = {}
    out: dict[str, OsPackage] = {}
    for path, pkg in owners.items():
        directory, _, name = path.rpartition("/")
        if directory not in directories:
            found = root.resolve(directory or "/")
            directories[directory] = found.path if isinstance(found, Resolved) and found.is_dir else None
        real = directories[directory]
        out.setdefault(path if real is None else real.rstrip("/") + "/" + name, pkg)
    return out


def _read(root: RootFS, path: str) -> bytes:
    found = root.resolve(path)
    if not isinstance(found, Resolved) or not found.is_file:
        return b""
    try:
        return root.read_head(found, MAX_DB_BYTES)
    except OSError:
        return b""


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def _dpkg_status(data: bytes) -> Iterator[OsPackage]:
    for fields in _paragraphs(data.decode("utf-8", "replace")):
        status = fields.get("Status", "install ok installed")
        if "Package" in fields and status.endswith("installed") and "not-installed" not in status:
            yield OsPackage("dpkg", fields["Package"], fields.get("Version", ""))


def _apk_installed(data: bytes) -> dict[str, OsPackage]:
    owners: dict[str, OsPackage] = {}
    for block in data.decode("utf-8", "replace").split("\n\n"):
        name = version = ""
        directory = ""
        files: list[str] = []
        for line in block.splitlines():
            tag, _, value = line.partition(":")
            if tag == "P":
                name = value
            elif tag == "V":
                version = value
            elif tag == "F":
                directory = value
            elif tag == "R":
                files.append(f"/{directory}/{value}" if directory else f"/{value}")
        if name:
            pkg = OsPackage("apk", name, version)
            owners.update((path, pkg) for path in files)
    return owners


_RPM_NAME, _RPM_VERSION, _RPM_RELEASE = 1000, 1001, 1002
_RPM_DIRINDEXES, _RPM_BASENAMES, _RPM_DIRNAMES = 1116, 1117, 1118


def _rpm_sqlite(data: bytes) -> dict[str, OsPackage]:
    """rpm >= 4.16's sqlite database: each row of Packages is one header blob."""
    owners: dict[str, OsPackage] = {}
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as copy:  # sqlite3 reads files only
        copy.write(data)
        copy.flush()
        db = sqlite3.connect(f"file:{copy.name}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT blob FROM Packages").fetchall()
        finally:
            db.close()
    for (blob,) in rows:
        tags = _rpm_header(bytes(blob))
        name = tags.get(_RPM_NAME)
        if not isinstance(name, list) or not name:
            continue
        version = "-".join(str(v[0]) for t in (_RPM_VERSION, _RPM_RELEASE) if isinstance(v := tags.get(t), list) and v)
        pkg = OsPackage("rpm", str(name[0]), version)
        dirs, bases, indexes = tags.get(_RPM_DIRNAMES, []), tags.get(_RPM_BASENAMES, []), tags.get(_RPM_DIRINDEXES, [])
        for base, index in zip(bases, indexes, strict=False):
            if isinstance(index, int) and 0 <= index < len(dirs):
                owners[f"{dirs[index]}{base}"] = pkg
    return owners


def _rpm_header(blob: bytes) -> dict[int, list[str | int]]:
    """An rpm header without its magic: index count, data size, index entries, then the data store."""
    count, size = struct.unpack_from(">II", blob, 0)
    if count > 100_000 or 8 + 16 * count + size > len(blob):
        raise ValueError("rpm header larger than its blob")
    store = 8 + 16 * count
    tags: dict[int, list[str | int]] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag not in (_RPM_NAME, _RPM_VERSION, _RPM_RELEASE, _RPM_DIRINDEXES, _RPM_BASENAMES, _RPM_DIRNAMES):
            continue
        start = store + offset
        if kind == 4:  # INT32
            tags[tag] = list(struct.unpack_from(f">{n}i", blob, start))
        elif kind in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING
            strings = blob[start:store + size].split(b"\0")[: max(n, 1)]
            tags[tag] = [s.decode("utf-8", "replace") for s in strings]
    return tags
