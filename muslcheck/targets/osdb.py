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
from typing import Any, Final

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
    """RFC 822 paragraphs; continuation lines are collected and joined once (linear in the text)."""
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()]
        if fields:
            yield {name: "\n".join(lines) for name, lines in fields.items()}


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


MAX_SQL_STEPS = 20_000_000  # sqlite virtual-machine instructions per query (about a second), then interrupted
_SQL_STEP_BATCH = 1000  # the progress handler runs every so many instructions
_SQL_ALLOWED: Final = {  # the one query, on named tables: anything else (a view, a function, a CTE) is denied
    (sqlite3.SQLITE_SELECT, None, None),
    (sqlite3.SQLITE_READ, "sqlite_master", "type"),
    (sqlite3.SQLITE_READ, "sqlite_master", "name"),
    (sqlite3.SQLITE_READ, "Packages", "blob"),
}


def _rpm_sqlite(data: bytes) -> dict[str, OsPackage]:
    """rpm >= 4.16's sqlite database: each row of Packages is one header blob.

    The database is the image's: only two fixed queries run, ``Packages`` must be a table (never a view, which
    could be a recursive query), an authorizer denies every other table, column and function, triggers cannot
    fire on a read-only connection, and each query is interrupted after ``MAX_SQL_STEPS`` instructions."""
    owners: dict[str, OsPackage] = {}
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as copy:  # sqlite3 reads files only
        copy.write(data)
        copy.flush()
        db = sqlite3.connect(f"file:{copy.name}?mode=ro&immutable=1", uri=True)
        try:
            db.execute("PRAGMA trusted_schema = OFF")  # no function of the schema runs (views, defaults)
            db.execute("PRAGMA query_only = ON")
            db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_DB_BYTES)
            columns = _query(db, "PRAGMA table_xinfo(Packages)")  # cid, name, type, notnull, default, pk, hidden
            if not any(row[1] == "blob" and row[6] == 0 for row in columns):
                raise ValueError("Packages has no stored blob column")  # a generated one is computed on read
            db.set_authorizer(_authorize)
            kinds = _query(db, "SELECT type FROM sqlite_master WHERE name = 'Packages'")
            if kinds != [("table",)]:
                raise ValueError("Packages is not a table")
            rows = _query(db, "SELECT blob FROM Packages", MAX_DB_BYTES)
        finally:
            db.close()
    for (blob,) in rows:
        if not isinstance(blob, bytes):
            continue
        tags = _rpm_header(blob)
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


def _authorize(action: int, first: str | None, second: str | None, database: str | None, source: str | None) -> int:
    return sqlite3.SQLITE_OK if (action, first, second) in _SQL_ALLOWED else sqlite3.SQLITE_DENY


def _query(db: sqlite3.Connection, sql: str, max_bytes: int = 1 << 20) -> list[Any]:
    """The rows of ``sql``; interrupted (``sqlite3.OperationalError``) past ``MAX_SQL_STEPS`` instructions,
    refused (``ValueError``) past ``max_bytes`` of blobs and strings."""
    steps = [0]

    def progress() -> int:
        steps[0] += _SQL_STEP_BATCH
        return steps[0] > MAX_SQL_STEPS  # true interrupts the query

    db.set_progress_handler(progress, _SQL_STEP_BATCH)
    rows: list[Any] = []
    try:
        for row in db.execute(sql):
            max_bytes -= sum(len(value) for value in row if isinstance(value, (bytes, str)))
            if max_bytes < 0:
                raise ValueError("the query returns more data than the database holds")
            rows.append(row)
    finally:
        db.set_progress_handler(None, 0)
    return rows


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
