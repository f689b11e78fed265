"""OS package ownership from each package manager's database, and what the scan does with it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
from pathlib import Path

from muslcheck import Verdict, scan
from muslcheck.targets.directory import DirectoryRoot
from muslcheck.targets.osdb import read_ownership


def put(root: Path, path: str, text: str | bytes) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(text.encode() if isinstance(text, str) else text)


def test_dpkg_status_and_lists_with_merged_usr(tmp_path: Path) -> None:
    put(tmp_path, "/var/lib/dpkg/status", "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n")
    put(tmp_path, "/var/lib/dpkg/info/libssl3:amd64.list", "/.\n/lib/x86_64-linux-gnu/libssl.so.3\n")
    put(tmp_path, "/var/lib/dpkg/info/gone.list", "/usr/bin/gone\n")
    (tmp_path / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    os.symlink("usr/lib", tmp_path / "lib")  # merged /usr: /lib -> usr/lib
    owners = read_ownership(DirectoryRoot(tmp_path)).owners
    assert str(owners["/usr/lib/x86_64-linux-gnu/libssl.so.3"]) == "libssl3 3.0.11-1 (dpkg)"
    assert "/usr/bin/gone" not in owners


def test_distroless_status_d(tmp_path: Path) -> None:
    put(tmp_path, "/var/lib/dpkg/status.d/libc6", "Package: libc6\nVersion: 2.36-9\n")
    put(tmp_path, "/var/lib/dpkg/status.d/libc6.md5sums", "0123  usr/lib/x86_64-linux-gnu/libc.so.6\n")
    ownership = read_ownership(DirectoryRoot(tmp_path))
    assert ownership.distro == "debian"
    assert ownership.owners["/usr/lib/x86_64-linux-gnu/libc.so.6"].name == "libc6"


def test_apk_installed(tmp_path: Path) -> None:
    put(tmp_path, "/lib/apk/db/installed", "C:Q1x\nP:zlib\nV:1.3.1-r0\nF:lib\nR:libz.so.1\nR:libz.so.1.3.1\n\n"
        "P:musl\nV:1.2.5-r0\nF:lib\nR:ld-musl-x86_64.so.1\n")
    ownership = read_ownership(DirectoryRoot(tmp_path))
    assert ownership.distro == "alpine"
    assert str(ownership.owners["/lib/libz.so.1"]) == "zlib 1.3.1-r0 (apk)"


def rpm_header(tags: dict[int, tuple[int, list[str] | list[int]]]) -> bytes:
    """An rpm header blob as rpm >= 4.16 stores it in rpmdb.sqlite (no lead magic)."""
    index, store = b"", b""
    for tag, (kind, values) in tags.items():
        offset = len(store)
        if kind == 4:
            store += struct.pack(f">{len(values)}i", *values)
        else:
            store += b"".join(str(v).encode() + b"\0" for v in values)
        index += struct.pack(">iiii", tag, kind, offset, len(values))
    return struct.pack(">II", len(tags), len(store)) + index + store


def test_rpm_sqlite(tmp_path: Path) -> None:
    db_path = tmp_path / "var/lib/rpm/rpmdb.sqlite"
    db_path.parent.mkdir(parents=True)
    blob = rpm_header({
        1000: (6, ["openssl-libs"]), 1001: (6, ["3.0.7"]), 1002: (6, ["25.el9"]),
        1118: (8, ["/usr/lib64/", "/usr/bin/"]), 1117: (8, ["libssl.so.3", "openssl"]), 1116: (4, [0, 1]),
    })
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    db.commit()
    db.close()
    ownership = read_ownership(DirectoryRoot(tmp_path))
    assert str(ownership.owners["/usr/lib64/libssl.so.3"]) == "openssl-libs 3.0.7-25.el9 (rpm)"
    assert ownership.owners["/usr/bin/openssl"].name == "openssl-libs"


def test_a_corrupt_rpm_database_is_a_note(tmp_path: Path) -> None:
    put(tmp_path, "/var/lib/rpm/rpmdb.sqlite", b"not sqlite at all" * 100)
    ownership = read_ownership(DirectoryRoot(tmp_path))
    assert ownership.owners == {} and "could not be read" in ownership.notes[0]


def test_os_package_files_are_set_apart_and_their_libraries_come_from_alpine(
    samples_dir: Path, tmp_path: Path
) -> None:
    """An app needing a library that dpkg owns: the library is Alpine's to provide, not a glibc file to judge."""
    shutil.copytree(samples_dir / "rpath-origin", tmp_path, dirs_exist_ok=True)
    (tmp_path / "app/lib/libdep.so").rename(tmp_path / "app/lib/libdep-owned.so")
    put(tmp_path, "/var/lib/dpkg/status", "Package: libdep1\nStatus: install ok installed\nVersion: 1.0\n")
    put(tmp_path, "/var/lib/dpkg/info/libdep1.list", "/app/lib/libdep.so\n")
    os.symlink("libdep-owned.so", tmp_path / "app/lib/libdep.so")
    put(tmp_path, "/var/lib/dpkg/info/libdep1.list", "/app/lib/libdep.so\n/app/lib/libdep-owned.so\n")
    report = scan(tmp_path)
    by_path = {f.path: f for f in report.files}
    assert by_path["/app/lib/libdep-owned.so"].verdict is Verdict.NOT_APPLICABLE
    exe = by_path["/app/bin/app"]
    [lib] = exe.missing_libraries
    assert lib.name == "libdep.so" and lib.reason == "replaced on Alpine: owned by libdep1 1.0 (dpkg)"
    assert lib.package == "so:libdep.so"  # no cited Alpine name: a package spec apk resolves, never free text
    assert [c.ecosystem for c in report.components if c.name == "libdep1"] == ["os-package"]
    included = scan(tmp_path, include_os_packages=True)
    assert {f.path: f.verdict for f in included.files}["/app/lib/libdep-owned.so"] is not Verdict.NOT_APPLICABLE
