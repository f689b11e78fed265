#!/usr/bin/env python3
"""glibc's exports for x86_64 and aarch64 -> symbols/glibc-abilists.json.

    python3 symbols/glibc.py [--work DIR] [--zig VERSION] [--no-private]

Two sources, both recorded in the table's provenance:

* ``ziglang/lib/libc/glibc/abilists`` of a ``ziglang`` wheel (default
  ZIG_VERSION): every public symbol of glibc's libc, libm, libpthread, libdl,
  librt, libutil, libresolv and ld.so, with every ``GLIBC_x.y[.z]`` version it
  exists under, per target.  zig builds this file from glibc's ``*.abilist``
  files, which list public versions only: it has **no GLIBC_PRIVATE
  symbols**, and no libcrypt/libanl/libnsl/libmvec.
* GLIBC_PRIVATE names: the real shared objects of Debian's ``libc6`` package
  (suite PRIVATE_SUITE, amd64 and arm64), ``.dynsym`` + ``.gnu.version`` +
  ``.gnu.version_d`` read with pyelftools.  The same objects cross-check the
  zig data: every public ``GLIBC_*`` definition in Debian's libc.so.6 must be
  in the abilists for that architecture.

The abilists format (all integers little-endian), as zig's own reader
``src/glibc.zig`` and ziglang/libc-abi-tools document it:

* u8 library count, each a NUL-terminated name ("c", "m", "pthread", ...);
* u8 version count, each u8 major, u8 minor, u8 patch (ascending);
* u8 target count, each a NUL-terminated triple ("x86_64-linux-gnu");
* three sections (functions, objects, TLS), each a u16 count of inclusions.
  An inclusion: the symbol name (NUL-terminated; only before the first
  inclusion of a symbol), uleb128 target bitmask, uleb128 size (objects and
  TLS only), a u8 library index (bit 7: last inclusion of this symbol,
  bit 6: weak, bit 5: unversioned), then version indexes, one byte each,
  bit 7 set on the last one.  Older files (zig <= 0.14) have no TLS section.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import debian  # noqa: E402

GENERATOR = "symbols/glibc.py"
OUTPUT = "glibc-abilists.json"
ZIG_VERSION = "0.17.1"  # the newest ziglang wheel on PyPI when this was written
ABILISTS = "ziglang/lib/libc/glibc/abilists"
TARGETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PRIVATE_SUITE = "trixie"
PRIVATE_PACKAGE = "libc6"
# zig's short library names -> sonames (glibc's shlib-versions; ld.so differs per arch).
LDSO = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}
LIBRARIES: dict[str, Any] = {
    "c": "libc.so.6", "m": "libm.so.6", "pthread": "libpthread.so.0", "dl": "libdl.so.2",
    "rt": "librt.so.1", "util": "libutil.so.1", "resolv": "libresolv.so.2", "ld": LDSO,
}
# libanl.so.1's functions (merged into libc.so.6 in glibc 2.34; zig has no libanl)
LIBANL = frozenset({"gai_cancel", "gai_error", "gai_suspend", "getaddrinfo_a"})


def log(msg: str) -> None:
    print(f"[glibc] {msg}", file=sys.stderr, flush=True)


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------
# abilists
# ---------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise SystemExit("abilists: truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        return self.u8() | self.u8() << 8

    def cstr(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise SystemExit("abilists: unterminated string")
        s = self.data[self.pos:end].decode("ascii")
        self.pos = end + 1
        return s

    def uleb(self) -> int:
        value = shift = 0
        while True:
            b = self.u8()
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value


def version_name(v: tuple[int, int, int]) -> str:
    return f"GLIBC_{v[0]}.{v[1]}" + (f".{v[2]}" if v[2] else "")


def parse_abilists(data: bytes) -> dict[str, Any]:
    """The whole file: libs, versions, targets and every inclusion."""
    r = _Reader(data)
    libs = [r.cstr() for _ in range(r.u8())]
    versions = [(r.u8(), r.u8(), r.u8()) for _ in range(r.u8())]
    targets = [r.cstr() for _ in range(r.u8())]
    inclusions: list[dict[str, Any]] = []
    for kind in ("func", "object", "tls"):
        if kind == "tls" and r.pos == len(data):
            break  # older format: two sections
        name: str | None = None
        for _ in range(r.u16()):
            if name is None:
                name = r.cstr()
            mask = r.uleb()
            size = r.uleb() if kind != "func" else None
            lib = r.u8()
            terminal, weak, unversioned = bool(lib & 0x80), bool(lib & 0x40), bool(lib & 0x20)
            lib &= 0x1F
            if lib >= len(libs):
                raise SystemExit(f"abilists: {name}: library index {lib} out of range")
            vers: list[int] = []
            while True:
                b = r.u8()
                if (b & 0x7F) >= len(versions):
                    raise SystemExit(f"abilists: {name}: version index {b & 0x7F} out of range")
                vers.append(b & 0x7F)
                if b & 0x80:
                    break
            inclusions.append({"name": name, "kind": kind, "targets": mask, "size": size,
                               "lib": libs[lib], "weak": weak, "unversioned": unversioned,
                               "versions": vers})
            if terminal:
                name = None
        if name is not None:
            raise SystemExit(f"abilists: {kind} section ends inside {name}")
    if r.pos != len(data):
        raise SystemExit(f"abilists: {len(data) - r.pos} trailing bytes")
    return {"libs": libs, "versions": versions, "targets": targets, "inclusions": inclusions}


def zig_wheel(work: Path, ver: str) -> Path:
    """The ziglang wheel: reused from WORK/zig/VER, /tmp/zig or pip download."""
    d = work / "zig" / ver
    d.mkdir(parents=True, exist_ok=True)
    pat = f"ziglang-{ver}-*.whl"
    found = sorted(d.glob(pat)) or sorted(Path("/tmp/zig").glob(pat))
    if not found:
        log(f"pip download ziglang=={ver}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--only-binary=:all:", "--platform", "manylinux_2_12_x86_64",
               "--python-version", "3.11", "-d", str(d), f"ziglang=={ver}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"pip download ziglang=={ver} failed: "
                             f"{(p.stderr.strip().splitlines() or ['?'])[-1]}")
        found = sorted(d.glob(pat))
    if not found:
        raise SystemExit(f"no ziglang {ver} wheel")
    return found[0]


def short_version(v: tuple[int, int, int]) -> str:
    """2.2.5 for GLIBC_2.2.5 (the table stores versions without the prefix)."""
    return version_name(v)[len("GLIBC_"):]


def from_abilists(parsed: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """name -> {arch -> {lib: [versions]}, "first", "kind" (non-functions)}, and each arch's baseline.

    lib is zig's short name ("c", "pthread", "ld"; LIBRARIES maps them to
    sonames); versions are ascending, without the GLIBC_ prefix.  The version
    that introduced a symbol on an arch is the lowest one listed for it;
    "first" is the lowest on any of zig's targets (i386 etc. predate the
    64-bit ports, whose first versions are the "baseline").
    """
    versions = parsed["versions"]
    index = {arch: parsed["targets"].index(t) for arch, t in TARGETS.items()}
    acc: dict[str, dict[str, dict[str, set[int]]]] = {}
    kinds: dict[str, str] = {}
    lowest: dict[str, int] = {}
    for inc in parsed["inclusions"]:
        if inc["weak"] or inc["unversioned"]:
            raise SystemExit(f"abilists: {inc['name']}: weak/unversioned inclusion (not expected for glibc)")
        if inc["lib"] not in LIBRARIES:
            raise SystemExit(f"abilists: unknown library {inc['lib']!r}")
        for arch, ti in index.items():
            if not inc["targets"] >> ti & 1:
                continue
            if kinds.setdefault(inc["name"], inc["kind"]) != inc["kind"]:
                raise SystemExit(f"abilists: {inc['name']} is both {kinds[inc['name']]} and {inc['kind']}")
            acc.setdefault(inc["name"], {}).setdefault(arch, {}).setdefault(inc["lib"], set()).update(inc["versions"])
            lowest[arch] = min([lowest.get(arch, 255), *inc["versions"]])
    first_any: dict[str, int] = {}
    for inc in parsed["inclusions"]:
        if inc["name"] in acc:
            first_any[inc["name"]] = min([first_any.get(inc["name"], 255), *inc["versions"]])
    out: dict[str, dict[str, Any]] = {}
    for name, per_arch in acc.items():
        entry: dict[str, Any] = {
            arch: {lib: [short_version(versions[i]) for i in sorted(v)] for lib, v in sorted(libs.items())}
            for arch, libs in sorted(per_arch.items())
        }
        entry["first"] = short_version(versions[first_any[name]])
        if kinds[name] != "func":
            entry["kind"] = kinds[name]
        out[name] = entry
    baseline = {arch: short_version(versions[i]) for arch, i in sorted(lowest.items())}
    return out, baseline


# ---------------------------------------------------------------------------
# GLIBC_PRIVATE from Debian's libc6 (real shared objects)
# ---------------------------------------------------------------------------

def fetch_libc6(work: Path) -> dict[str, dict[str, Any]]:
    """Download and extract libc6 for amd64 and arm64; returns arch -> info."""
    base = work / "glibc-debian"
    apt = debian.PrivateApt(base / ".apt" / PRIVATE_SUITE, PRIVATE_SUITE, debian.find_mirror())
    if not apt.updated():
        apt.update()
    debs = base / ".debs"
    debs.mkdir(parents=True, exist_ok=True)
    result: dict[str, dict[str, Any]] = {}
    for arch, darch in DEB_ARCH.items():
        show = apt.cache(["show", "--no-all-versions", f"{PRIVATE_PACKAGE}:{darch}"])
        version = next((ln.split(":", 1)[1].strip() for ln in show.splitlines()
                        if ln.startswith("Version:")), None)
        if version is None:
            raise debian.FetchError(f"no {PRIVATE_PACKAGE}:{darch} in {PRIVATE_SUITE}")
        fname_version = version.replace(":", "%3a")
        deb = debs / f"{PRIVATE_PACKAGE}_{fname_version}_{darch}.deb"
        if not deb.is_file():
            log(f"apt-get download {PRIVATE_PACKAGE}:{darch}={version}")
            apt.run(["download", f"{PRIVATE_PACKAGE}:{darch}={version}"], cwd=debs)
        if not deb.is_file():
            raise debian.FetchError(f"apt-get download produced no {deb.name}")
        root = base / f"{PRIVATE_SUITE}-{darch}"
        stamp = root / ".extracted"
        if not stamp.is_file() or stamp.read_text() != deb.name:
            subprocess.run(["rm", "-rf", str(root)], check=True)
            root.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.write_text(deb.name)
        result[arch] = {"version": version, "deb": deb.name, "sha256": debian.sha256_file(deb), "root": root}
    return result


def _version_defs(elf: Any) -> dict[int, str]:
    from elftools.elf.gnuversions import GNUVerDefSection
    defs: dict[int, str] = {}
    for sec in elf.iter_sections():
        if isinstance(sec, GNUVerDefSection):
            for verdef, auxiter in sec.iter_versions():
                aux = next(iter(auxiter))
                defs[int(verdef["vd_ndx"])] = aux.name
    return defs


def read_versioned_exports(path: Path) -> tuple[str, dict[str, set[str]]]:
    """(soname, name -> set of defined version names) from one shared object."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerSymSection
    with open(path, "rb") as f:
        elf = ELFFile(f)
        soname = path.name
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
        defs = _version_defs(elf)
        dynsym = elf.get_section_by_name(".dynsym")
        versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
        out: dict[str, set[str]] = {}
        if dynsym is None or versym is None:
            return soname, out
        for i, sym in enumerate(dynsym.iter_symbols()):
            if not sym.name or sym["st_shndx"] == "SHN_UNDEF" or sym["st_info"]["bind"] == "STB_LOCAL":
                continue
            ndx = versym.get_symbol(i)["ndx"]
            if not isinstance(ndx, int):
                continue  # VER_NDX_LOCAL / VER_NDX_GLOBAL
            ver = defs.get(ndx & 0x7FFF)
            if ver is not None and not (sym.name == ver and sym["st_shndx"] == "SHN_ABS"):  # the version's own symbol
                out.setdefault(sym.name, set()).add(ver)
    return soname, out


def _shared_objects(root: Path) -> list[Path]:
    objs = []
    for p in sorted(root.rglob("*.so*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    objs.append(p)
    return objs


def _short_lib(soname: str, arch: str) -> str:
    for short, so in LIBRARIES.items():
        if so == soname or (isinstance(so, dict) and so.get(arch) == soname):
            return short
    return soname


def private_and_check(debs: dict[str, dict[str, Any]],
                      public: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any]]:
    """name -> arch -> [sonames] for GLIBC_PRIVATE definitions; and the cross-check."""
    private: dict[str, dict[str, list[str]]] = {}
    check: dict[str, Any] = {}
    for arch, info in debs.items():
        missing: list[str] = []
        checked = 0
        for path in _shared_objects(info["root"]):
            soname, exports = read_versioned_exports(path)
            for name, vers in exports.items():
                if "GLIBC_PRIVATE" in vers:
                    private.setdefault(name, {}).setdefault(arch, []).append(_short_lib(soname, arch))
            if soname == "libc.so.6":
                for name, vers in sorted(exports.items()):
                    pub = {v[len("GLIBC_"):] for v in vers if v.startswith("GLIBC_2.")}
                    if not pub:
                        continue
                    checked += 1
                    # any library: zig files a symbol that moved into libc (2.34's
                    # libpthread/libdl/librt/libutil/libanl merge) under its old library
                    have = {v for vs in public.get(name, {}).get(arch, {}).values() for v in vs}
                    if not pub <= have:
                        missing.append(f"{name}@{','.join(sorted(pub - have))}")
        explained = sorted(m for m in missing if m.split("@")[0] in LIBANL)
        unexplained = sorted(set(missing) - set(explained))
        if unexplained:
            raise SystemExit(f"{arch}: Debian libc.so.6 has public versions the abilists lack: {unexplained}")
        check[arch] = {"debian_libc_so_6_public_names": checked,
                       "missing_from_abilists": explained,
                       "why": "libanl is not among zig's libraries; its functions moved into libc in "
                              "2.34 (GLIBC_2.34 is in the abilists), the old libanl versions are not"}
    for name in private:
        for arch in private[name]:
            private[name][arch] = sorted(set(private[name][arch]))
    return private, check


# ---------------------------------------------------------------------------

def build(work: Path, zig_version: str = ZIG_VERSION, with_private: bool = True) -> dict[str, Any]:
    whl = zig_wheel(work, zig_version)
    with zipfile.ZipFile(whl) as z:
        data = z.read(ABILISTS)
    parsed = parse_abilists(data)
    for t in TARGETS.values():
        if t not in parsed["targets"]:
            raise SystemExit(f"abilists of ziglang {zig_version} has no target {t}")
    symbols, baseline = from_abilists(parsed)
    log(f"ziglang {zig_version}: {len(parsed['inclusions'])} inclusions, "
        f"{len(symbols)} symbols on {'/'.join(TARGETS)}")
    provenance: dict[str, Any] = {
        "package": "ziglang",
        "version": zig_version,
        "sha256": debian.sha256_file(whl),
        "wheel": whl.name,
        "file": ABILISTS,
        "file_sha256": sha256_bytes(data),
        "generator": GENERATOR,
        "glibc_versions": [version_name(parsed["versions"][0]), version_name(parsed["versions"][-1])],
        "targets": TARGETS,
        "note": "zig's abilists come from glibc's *.abilist files: public versions only, "
                "no GLIBC_PRIVATE, no libcrypt/libanl/libnsl/libmvec",
    }
    table: dict[str, Any] = {
        "kind": "glibc-abilists",
        "provenance": provenance,
        "baseline": baseline,
        "libraries": LIBRARIES,
        "format": "symbols: name -> {arch: {library: [versions ascending]}, first: lowest version on any "
                  "zig target, kind: object|tls (absent for functions), private: {arch: [library]}}; "
                  "versions are GLIBC_<v>; a symbol's version on an arch is the lowest listed",
    }
    if with_private:
        debs = fetch_libc6(work)
        private, check = private_and_check(debs, symbols)
        for name, per_arch in private.items():
            symbols.setdefault(name, {})["private"] = per_arch
        table["private_provenance"] = {
            "package": PRIVATE_PACKAGE, "suite": PRIVATE_SUITE, "generator": GENERATOR,
            "debs": {arch: {"version": i["version"], "deb": i["deb"], "sha256": i["sha256"]}
                     for arch, i in sorted(debs.items())},
            "what": "names defined under GLIBC_PRIVATE in any shared object of the package "
                    "(.gnu.version_d), read with pyelftools",
        }
        table["cross_check"] = check
        log(f"Debian {PRIVATE_PACKAGE}: {len(private)} GLIBC_PRIVATE names")
    else:
        table["private_provenance"] = None
        log("--no-private: GLIBC_PRIVATE names not collected")
    table["symbols"] = dict(sorted(symbols.items()))
    return table


def dump(table: dict[str, Any], path: Path) -> None:
    """Sorted keys; one symbol per line (stable diffs)."""
    parts = []
    for k in sorted(table):
        v = table[k]
        if k == "symbols":
            body = ",\n".join(f"{json.dumps(n)}: {json.dumps(e, sort_keys=True, separators=(',', ':'))}"
                              for n, e in v.items())
            parts.append(f'"symbols": {{\n{body}\n}}')
        else:
            parts.append(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    json.loads(text)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    log(f"wrote {path} ({len(text.encode())} bytes)")


def generate(work: Path, with_private: bool = True) -> Path:
    """The entry point for generate.py: build and write symbols/glibc-abilists.json."""
    path = HERE / OUTPUT
    dump(build(work, with_private=with_private), path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate symbols/glibc-abilists.json.")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "muslcheck-symbols-work",
                    help="scratch directory (zig wheel, Debian libc6)")
    ap.add_argument("--zig", default=ZIG_VERSION, help="ziglang wheel version")
    ap.add_argument("--no-private", action="store_true",
                    help="skip Debian libc6 (no GLIBC_PRIVATE names, no cross-check)")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        table = build(work, args.zig, not args.no_private)
    except debian.FetchError as e:
        print(f"glibc.py: error: {e}", file=sys.stderr)
        return 1
    dump(table, HERE / OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
