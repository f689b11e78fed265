"""Which Alpine package provides a soname that the scanned tree lacks.

Source: the Alpine package index (pkgs.alpinelinux.org, "contents" search, edge
and v3.20-v3.22), checked per row. ``gcompat`` rows are the sonames gcompat
links to /lib/libgcompat.so.0 that musl does not treat as itself.
"""

from __future__ import annotations

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
    "libexecinfo.so.1": "libexecinfo (Alpine <= 3.16 only)",
    "libresolv.so.2": "gcompat",
    "libcrypt.so.1": "gcompat",
}

# Sonames whose symbols come from glibc's own libraries: on musl they are libc itself or gcompat.
GLIBC_LIBRARIES = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libcrypt.so.1", "libnsl.so.1", "libanl.so.1", "libmvec.so.1",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
})


def apk_for(soname: str) -> str | None:
    return APK_BY_SONAME.get(soname)
