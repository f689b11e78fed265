"""Which Alpine package provides a soname that the scanned tree lacks.

Only cited names: each row was checked against the Alpine package index (pkgs.alpinelinux.org, "contents"
search, edge and v3.20-v3.22) or the aports APKBUILD named beside it. A soname without a row is named
``so:SONAME`` in fixes (``model.report.apk_spec``): apk installs whichever package provides it, so no
package name is ever guessed. What ``apk add gcompat`` installs comes from gcompat's generated table
(``symbols/gcompat-*.json``: its ``libc_links`` and the loader stub's ``loader_paths``), never from this file.
"""

from __future__ import annotations

from functools import cache

from muslcheck.ldso.tables import Catalog

APK_BY_SONAME: dict[str, str] = {
    "libstdc++.so.6": "libstdc++",
    "libgcc_s.so.1": "libgcc",
    "libatomic.so.1": "libatomic",
    "libgomp.so.1": "libgomp",
    "libz.so.1": "zlib",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libcrypto3",
    "libbz2.so.1": "libbz2",
    "liblzma.so.5": "xz-libs",
    "libzstd.so.1": "zstd-libs",
    "liblz4.so.1": "lz4-libs",
    "libffi.so.8": "libffi",
    "libsqlite3.so.0": "sqlite-libs",
    "libexpat.so.1": "libexpat",
    "libuuid.so.1": "libuuid",
    "libfts.so.0": "musl-fts",
    "libucontext.so.1": "libucontext",
    "libcurl.so.4": "libcurl",  # aports main/curl/APKBUILD (0162f3f): subpackage libcurl holds usr/lib
    "libsnappy.so.1": "snappy",  # aports main/snappy/APKBUILD (0141cee): no library subpackage
    "libxxhash.so.0": "libxxhash",  # aports main/xxhash/APKBUILD (3b2e469): subpackage lib$pkgname:libs
}

# Packages Alpine dropped: soname -> (package, the last Alpine release that has it). Never a fix on their own:
# libexecinfo's backtrace() is in gcompat on later releases, but its soname is not.
RETIRED: dict[str, tuple[str, str]] = {
    "libexecinfo.so.1": ("libexecinfo", "3.16"),
}

# Sonames whose symbols come from glibc's own libraries: on musl they are libc itself or gcompat.
GLIBC_LIBRARIES = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libcrypt.so.1", "libnsl.so.1", "libanl.so.1", "libmvec.so.1",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
})


@cache
def gcompat_files() -> frozenset[str]:
    """Sonames gcompat's package installs: its libc.so.6-style links to libgcompat.so.0 and its loader stub at
    the glibc interpreter path of each architecture, by name (``ld-linux-x86-64.so.2``) and by the full path a
    DT_NEEDED entry may give (``/lib64/ld-linux-x86-64.so.2``)."""
    table = Catalog().gcompat
    loaders = table.loader_paths.values()
    return frozenset(table.libc_links) | frozenset(loaders) | frozenset(p.rsplit("/", 1)[-1] for p in loaders)


def apk_for(soname: str) -> str | None:
    """The Alpine package that provides ``soname``: a cited name, ``gcompat`` for what gcompat's package
    installs, else None (fixes then say ``so:SONAME``)."""
    if soname in APK_BY_SONAME:
        return APK_BY_SONAME[soname]
    return "gcompat" if soname in gcompat_files() else None
