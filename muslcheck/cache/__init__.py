"""The report cache (design and safety: docs/cache.md): ``store`` keeps bytes on disk, bounded and verified on
every read (``fsspec_store``: the same under an fsspec URL, docs/fleet.md); ``keys`` says what a report is filed
under; ``codec`` turns a Report into bytes and back."""

from muslcheck.cache.codec import load_judged, load_report, save_judged, save_report
from muslcheck.cache.fsspec_store import FsspecStore, open_store
from muslcheck.cache.interface import CacheStore
from muslcheck.cache.keys import default_salt, directory_fingerprint, directory_manifest, manifest_fingerprint, scan_key
from muslcheck.cache.store import Store, default_cache_dir

__all__ = [
    "CacheStore",
    "FsspecStore",
    "Store",
    "default_cache_dir",
    "default_salt",
    "directory_fingerprint",
    "directory_manifest",
    "load_judged",
    "load_report",
    "manifest_fingerprint",
    "open_store",
    "save_judged",
    "save_report",
    "scan_key",
]
