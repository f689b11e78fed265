"""What a cached report is filed under: its key (what was scanned, with which options) and the store's salt
(which tool, which tables). Keys are canonical JSON strings, so no two different inputs make the same key."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path

from muslcheck.cache.codec import CODEC_VERSION
from muslcheck.ldso.tables import tables_dir
from muslcheck.model.version import __version__

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the muslcheck package: its sources are the tool

RACY_WINDOW_NS = 2 * 10**9  # see recently_changed


def recently_changed(st: os.stat_result, *, now_ns: int | None = None) -> bool:
    """The file changed within the last 2 s: a write in the same clock tick could leave its stat identity
    unchanged, so it must not be trusted to stand for the content (git's "racily clean" rule)."""
    now = time.time_ns() if now_ns is None else now_ns
    return max(st.st_mtime_ns, st.st_ctime_ns) > now - RACY_WINDOW_NS


def directory_fingerprint(root: Path) -> str | None:
    """sha256 over every entry under ``root`` (path, lstat identity, link target), links never followed;
    None when an entry changed too recently to trust its stat identity, or the walk fails."""
    manifest = directory_manifest(root)
    return None if manifest is None else manifest_fingerprint(manifest)


def manifest_fingerprint(manifest: tuple[tuple[str, str], ...]) -> str:
    h = hashlib.sha256(b"muslcheck tree\0")
    for path, signature in manifest:
        h.update(_canonical([path, signature]).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def directory_manifest(root: Path) -> tuple[tuple[str, str], ...] | None:
    """Every entry under ``root`` as (its path in the tree, "/"-rooted; its lstat identity and link target), sorted,
    links never followed; None when an entry changed too recently to trust its stat identity, or the walk fails."""
    entries_seen: list[tuple[str, str]] = []
    now = time.time_ns()
    stack = [""]  # directories, relative to root
    top = str(root)
    try:
        while stack:
            directory = stack.pop()
            with os.scandir(os.path.join(top, directory)) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if recently_changed(st, now_ns=now):
                        return None
                    relative = os.path.join(directory, entry.name)
                    link = os.readlink(entry.path) if entry.is_symlink() else ""
                    entries_seen.append(("/" + relative, f"{st.st_mode} {st.st_dev} {st.st_ino} {st.st_size} "
                                                         f"{st.st_mtime_ns} {st.st_ctime_ns} {link}"))
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(relative)
    except OSError:
        return None
    return tuple(sorted(entries_seen))


def scan_key(source_identity: str, options: Mapping[str, object]) -> str:
    """A whole report: what was scanned (image config digest, directory fingerprint) and every option that matters.

    ``options`` must hold JSON values (str, int, float, bool, None, lists, tuples, str-keyed mappings).
    """
    return _canonical(["scan", source_identity, dict(options)])


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@lru_cache(maxsize=8)
def tables_digest(symbols_dir: Path) -> str:
    """sha256 over the names and bytes of the table files (``*.json``) of ``symbols_dir``; computed once."""
    h = hashlib.sha256(b"muslcheck tables\0")
    for path in sorted(symbols_dir.glob("*.json")):
        data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def sources_digest(package: Path) -> str:
    """sha256 over the paths (relative to ``package``) and bytes of every ``*.py`` under ``package``.

    When they cannot be read, a random value: no entry is then ever shared between processes.
    """
    h = hashlib.sha256(b"muslcheck code\0")
    try:
        for path in sorted(package.rglob("*.py")):
            data = path.read_bytes()
            h.update(f"{path.relative_to(package).as_posix()}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return "unreadable-" + secrets.token_hex(16)
    return h.hexdigest()


@cache
def code_digest() -> str:
    """``sources_digest`` of the whole muslcheck package (found from its ``__init__``, wherever this module
    sits in it): a changed checkout with the same version number is a new tool."""
    return sources_digest(PACKAGE_ROOT)


def default_salt(symbols_dir: Path | None = None) -> str:
    """The salt a scan's Store uses: the tool version, its code, the symbol tables and the codec version."""
    tables = tables_digest((symbols_dir or tables_dir()).resolve())
    return f"muslcheck {__version__}; code {code_digest()}; tables {tables}; codec {CODEC_VERSION}"
