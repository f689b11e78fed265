"""Layer blobs a report-cache hit has hashed before, filed by the stat identity of their file
(``targets.image.verify.VerifiedMemo``): the next hit on an unchanged file skips the hash (docs/cache.md)."""

from __future__ import annotations

import os

from muslcheck.cache.interface import CacheStore
from muslcheck.cache.keys import recently_changed, scan_key
from muslcheck.targets.image.sources.interface import BlobLocation

_MARK = b"verified"


class StoredVerifications:
    """The memo in a report store: one tiny entry per (digest, place, stat identity), evicted like any other."""

    def __init__(self, store: CacheStore) -> None:
        self.store = store

    def known(self, digest: str, location: BlobLocation, st: os.stat_result) -> bool:
        key = _key(digest, location, st)
        return key is not None and self.store.get(key) == _MARK

    def remember(self, digest: str, location: BlobLocation, st: os.stat_result) -> None:
        key = _key(digest, location, st)
        if key is not None:
            self.store.put(key, _MARK)


def _key(digest: str, location: BlobLocation, st: os.stat_result) -> str | None:
    """None for a file changed in the last 2 s: a write in the same clock tick keeps its identity."""
    if recently_changed(st):
        return None
    return scan_key("verified blob " + digest, {
        "path": os.path.abspath(location.path), "offset": location.offset, "size": location.size,
        "dev": st.st_dev, "ino": st.st_ino, "file_size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    })
