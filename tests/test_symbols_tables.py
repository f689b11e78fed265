"""Invariants of the generated tables in symbols/ (no network needed)."""
import itertools
import json
from pathlib import Path

import pytest

from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog, version_key
from muslcheck.model.errors import UsageError

SYM = Path(__file__).resolve().parent.parent / "symbols"
VERSIONS = Catalog().musl_versions
ARCHES = SUPPORTED_ARCHES
TYPES = {"NOTYPE", "OBJECT", "FUNC", "COMMON", "TLS", "GNU_IFUNC"}
BINDS = {"GLOBAL", "WEAK", "GNU_UNIQUE"}


def load(name):
    return json.loads((SYM / name).read_text())


def names(v, a):
    return {s[0] for s in load(f"musl-{v}-{a}.json")["symbols"]}


# Pairs without a table: Debian has no riscv64 before trixie, and Alpine has riscv64 only from 3.20 (musl 1.2.5).
ABSENT = {("1.2.2", "riscv64"), ("1.2.3", "riscv64")}
# Debian lacks these pairs; the table is derived from the same arch's next real table (symbols/README.md).
DERIVED = {("1.2.2", "ppc64"), ("1.2.2", "s390x"), ("1.2.4", "i386"), ("1.2.4", "arm"), ("1.2.4", "s390x")}
PAIRS = [(v, a) for v in VERSIONS for a in ARCHES if (v, a) not in ABSENT]
BITS32 = {"i386", "arm"}


def test_exactly_the_documented_pairs_are_absent():
    present = {(f.name.split("-")[1], f.name.split("-")[2].removesuffix(".json")) for f in SYM.glob("musl-*.json")}
    assert present == set(PAIRS)
    for v, a in ABSENT:
        with pytest.raises(UsageError, match=f"no musl {v} table for {a}"):
            Catalog().musl_exports(v, a)


def source_of(v, a):
    if (v, a) in DERIVED:
        return "derived"
    return "ziglang" if v == "1.2.4" else "debian"


@pytest.mark.parametrize(("v", "a"), PAIRS)
def test_table_shape_and_provenance(v, a):
    t = load(f"musl-{v}-{a}.json")
    assert t["kind"] == "musl-exports" and t["musl"] == v and t["arch"] == a
    p = t["provenance"]
    assert p["source"] == source_of(v, a)
    if p["source"] == "derived":
        assert p["from"] and p["method"] and p["generator"]
        assert f"musl-{'1.2.3' if v == '1.2.2' else '1.2.5'}-{a}.json" in p["from"]
    else:
        for k in ("package", "package_version", "sha256", "file", "file_sha256", "generator"):
            assert p.get(k), k
        assert len(p["sha256"]) == 64 and len(p["file_sha256"]) == 64
    syms = t["symbols"]
    assert [s[0] for s in syms] == sorted(s[0] for s in syms)
    assert len({s[0] for s in syms}) == len(syms)
    for n, typ, bind, size in syms:
        assert n and typ in TYPES and bind in BINDS
        assert size is None or isinstance(size, int)
    for d in t["deviations"]:
        assert d["action"] in ("removed", "flagged", "added") and d["reason"]
    assert 1600 < len(syms) < 1800


@pytest.mark.parametrize("a", ARCHES)
def test_symbol_invariants(a):
    for v in VERSIONS:
        if (v, a) in ABSENT:
            continue
        n = names(v, a)
        assert "memcpy" in n
        # 32-bit: compat/time32 defines __xstat64 (<= 1.2.3) or __xstat (>= 1.2.4), src/stat/__xstat.c neither
        has_plain_xstat = a not in BITS32 or version_key(v) >= (1, 2, 4)
        assert ("__xstat" in n and "__lxstat" in n and "__fxstat" in n) == has_plain_xstat
        assert "fts_open" not in n, "Debian-only fts_* must be stripped"
        assert "__memcpy_chk" not in n
        assert "fcntl64" not in n
        assert "crypt" in n, "upstream musl exports crypt in every version"
        assert ("fopen64" in n) == (version_key(v) <= (1, 2, 3))
        assert ("__xstat64" in n) == (version_key(v) <= (1, 2, 3))
        assert ("statx" in n) == (version_key(v) >= (1, 2, 5))
        assert ("qsort_r" in n) == (version_key(v) >= (1, 2, 3))
        assert ("renameat2" in n) == (version_key(v) >= (1, 2, 6))
        assert ("posix_getdents" in n) == (version_key(v) >= (1, 2, 6))
        assert ("__getauxval" in n) == (version_key(v) >= (1, 2, 6))


def test_arch_differences():
    for v in VERSIONS:
        assert names(v, "x86_64") - names(v, "aarch64") == {"arch_prctl", "ioperm", "iopl"}
        assert names(v, "aarch64") <= names(v, "x86_64")
        # 32-bit arches add the time32 compat names (__time64 and friends redirect to them)
        for a in BITS32:
            assert "__time64" in names(v, a) and "__time64" not in names(v, "x86_64")


@pytest.mark.parametrize("a", sorted(set(ARCHES) - {"x86_64", "aarch64"}))
def test_version_steps_match_x86_64(a):
    """What one release adds over the previous is the same on every arch (the derived tables rely on it)."""
    steps = [(o, n) for o, n in itertools.pairwise(VERSIONS) if (o, a) not in ABSENT]
    for old, new in steps:
        gained = names(new, a) - names(old, a)
        lost = names(old, a) - names(new, a)
        ref_gained = names(new, "x86_64") - names(old, "x86_64")
        ref_lost = names(old, "x86_64") - names(new, "x86_64")
        if a == "riscv64" and new == "1.2.6":
            ref_lost |= {"__restore", "__restore_rt"}  # musl commit 362fc545 hid them (riscv only)
        if a in BITS32 and new == "1.2.4":
            ref_gained |= {"__fxstat", "__fxstatat", "__lxstat", "__xstat"}  # compat/time32 renamed
        assert (gained, lost) == (ref_gained, ref_lost), (old, new)


def test_loader():
    t = load("loader.json")
    assert t["kind"] == "musl-loader"
    assert t["default_path"] == "/lib:/usr/local/lib:/usr/lib"
    assert t["ldso_names"] == {"x86_64": "ld-musl-x86_64.so.1", "aarch64": "ld-musl-aarch64.so.1",
                               "i386": "ld-musl-i386.so.1", "arm": "ld-musl-armhf.so.1",
                               "ppc64": "ld-musl-powerpc64le.so.1", "s390x": "ld-musl-s390x.so.1",
                               "riscv64": "ld-musl-riscv64.so.1"}
    assert set(t["glibc_interpreters"]) == set(ARCHES) == set(t["alpine_arches"].values())
    assert t["alpine_arches"]["armv7"] == t["alpine_arches"]["armhf"] == "arm"
    assert t["alpine_arches"]["x86"] == "i386" and t["alpine_arches"]["ppc64le"] == "ppc64"
    for v in VERSIONS:
        f = t["versions"][v]
        assert f["reserved_prefixes"] == ["c.", "pthread.", "rt.", "m.", "dl.",
                                          "util.", "xnet."]
        assert f["source"]
        assert f["relr"] == (version_key(v) >= (1, 2, 4))
        if version_key(v) <= (1, 2, 3):
            assert f["lfs64"] is None and f["readdir64_r"] is False
        else:
            assert len(f["lfs64"]) == 59 and "posix_fallocate" in f["lfs64"]
            assert f["readdir64_r"] is True
            assert f["lfs64_name_max"] == (17 if version_key(v) >= (1, 2, 6) else 16)
            # every base name must be exported in that version, the *64 not
            n = names(v, "x86_64")
            assert all(b in n and b + "64" not in n for b in f["lfs64"])


def test_gcompat():
    files = sorted(SYM.glob("gcompat-*.json"))
    assert files
    g = json.loads(files[0].read_text())
    assert g["kind"] == "gcompat-exports"
    p = g["provenance"]
    assert p["repository"] and p["tag"] and len(p["commit"]) == 40 and p["files"]
    s = set(g["symbols"])
    assert 200 < len(s) < 320
    for n in ("__memcpy_chk", "backtrace", "backtrace_symbols", "error",
              "gnu_get_libc_version", "__res_ninit", "__res_nclose",
              "__res_search", "dlvsym", "dlmopen", "mallinfo",
              "__register_atfork", "__cxa_thread_atexit_impl",
              "__libc_single_threaded", "__getauxval", "__sysconf",
              "__rawmemchr", "__strdup", "pthread_yield"):
        assert n in s, n
    for n in ("fcntl64", "posix_fallocate64", "mallinfo2", "arc4random",
              "__xstat64", "__isoc23_strtol", "__isoc23_sscanf"):
        assert n not in s, n
    assert not any(n.startswith("__isoc23_") for n in s)
    assert g["preload"] == "/lib/libgcompat.so.0"
    assert g["loader_paths"]["x86_64"] == "/lib64/ld-linux-x86-64.so.2"
    assert g["loader_paths"] == load("loader.json")["glibc_interpreters"]
    assert g["arch_specific"]["ppc64"] == ["__libc_start_main", "sysctl"]  # gcompat's #if defined(__powerpc__)
    assert "libresolv.so.2" in g["libc_links"]


def test_alpine():
    t = load("alpine.json")
    assert t["kind"] == "alpine-musl"
    seen = [r["alpine"] for r in t["releases"]]
    assert seen[0] == "3.13" and len(seen) == len(set(seen))
    for r in t["releases"]:
        assert r["musl"] in VERSIONS and r["source"]
        assert (SYM / f"musl-{r['musl']}-x86_64.json").exists()
