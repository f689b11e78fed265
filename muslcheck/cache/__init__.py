"""The report cache (design and safety: docs/cache.md): ``store`` keeps bytes on disk, bounded and verified on
every read; ``keys`` says what a report is filed under; ``codec`` turns a Report into bytes and back."""

from muslcheck.cache.codec import load_report, save_report
from muslcheck.cache.keys import default_salt, directory_fingerprint, scan_key
from muslcheck.cache.store import Store, default_cache_dir

__all__ = [
    "Store",
    "default_cache_dir",
    "default_salt",
    "directory_fingerprint",
    "load_report",
    "save_report",
    "scan_key",
]
