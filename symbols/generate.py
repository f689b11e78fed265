#!/usr/bin/env python3
"""Regenerate every table in symbols/ with one command.

    python3 symbols/generate.py [--work DIR] [--gcompat-src DIR] [--no-probe]

What it does (details in symbols/README.md and docs/symbols.md):

* musl 1.2.2, 1.2.3, 1.2.5, 1.2.6 (x86_64, aarch64): Debian's ``musl``
  packages (bullseye, bookworm, trixie, sid) fetched by symbols/debian.py;
  the real ``libc.so`` ``.dynsym`` is read with pyelftools.  Debian-specific
  changes are undone as listed in DEBIAN_DEVIATIONS (every one with a reason)
  and the result is cross-checked against upstream.
* musl 1.2.4 (x86_64, aarch64): ``ziglang/lib/libc/musl/libc.S`` of the
  ``ziglang==0.11.0`` wheel (upstream musl 1.2.4 exports).  ziglang 0.13.0
  carries musl 1.2.5's libc.S and is used to cross-check the 1.2.5 tables.
* loader.json: loader facts per version, read from the libc.so bytes where
  possible, else from musl's ldso/dynlink.c at the release tag (a musl git
  mirror, --musl-git), and verified with small probe programs run under the
  real Debian loaders (amd64 host with gcc only; --no-probe keeps the
  committed probe results).
* gcompat-<ver>.json: only with --gcompat-src DIR (an extracted gcompat tree);
  WITHOUT it the committed gcompat table is kept unchanged.
* alpine.json: written from ALPINE_RELEASES below (the sourced list is the
  source of truth).

Every output is deterministic (sorted keys, symbols sorted by name).
Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import debian  # noqa: E402
import glibc  # noqa: E402

GENERATOR = "symbols/generate.py"
# The model's architecture names are ELF machine names (ElfFacts.machine);
# each row: Debian arch, musl's ld-musl-NAME, glibc's PT_INTERP, Alpine's
# names.  Alpine's armhf (ARMv6) and armv7 are both musl's hard-float "armhf"
# ABI (one loader name, one export set); Debian's armhf is ARMv7 hard-float,
# the same musl ABI; Debian's armel is soft-float (ld-musl-arm.so.1), which
# no Alpine architecture uses.  "ppc64" is little-endian ELFv2 only.
ARCH_ROWS = {
    "x86_64": ("amd64", "x86_64", "/lib64/ld-linux-x86-64.so.2", ("x86_64",)),
    "aarch64": ("arm64", "aarch64", "/lib/ld-linux-aarch64.so.1", ("aarch64",)),
    "i386": ("i386", "i386", "/lib/ld-linux.so.2", ("x86",)),
    "arm": ("armhf", "armhf", "/lib/ld-linux-armhf.so.3", ("armhf", "armv7")),
    "ppc64": ("ppc64el", "powerpc64le", "/lib64/ld64.so.2", ("ppc64le",)),
    "s390x": ("s390x", "s390x", "/lib/ld64.so.1", ("s390x",)),
    "riscv64": ("riscv64", "riscv64", "/lib/ld-linux-riscv64-lp64d.so.1", ("riscv64",)),
}
ARCHES = {a: row[0] for a, row in ARCH_ROWS.items()}       # model -> Debian
DEBIAN_SUITES = {"1.2.2": "bullseye", "1.2.3": "bookworm",
                 "1.2.5": "trixie", "1.2.6": "sid"}
# (version, arch) that Debian does not ship: riscv64 became a release
# architecture in trixie (bullseye/bookworm have no riscv64).  Alpine added
# riscv64 in 3.20 (musl 1.2.5), so no Alpine release needs these tables;
# they are left out (1.2.4 riscv64 comes from zig's libc.S like every 1.2.4).
DEBIAN_MISSING = {("1.2.2", "riscv64"): "bullseye has no riscv64",
                  ("1.2.3", "riscv64"): "bookworm has no riscv64",
                  ("1.2.2", "ppc64"): "bullseye builds musl for no ppc64el",
                  ("1.2.2", "s390x"): "bullseye builds musl for no s390x"}
# Of those, derived from the real 1.2.3 table of the same arch (see
# derive_122): Alpine 3.13-3.15 ship musl 1.2.2 on ppc64le and s390x.
DERIVED_122 = ("ppc64", "s390x")
ZIG_FOR = {"1.2.4": "0.11.0", "1.2.5": "0.13.0"}           # libc.S version
ALL_VERSIONS = ["1.2.2", "1.2.3", "1.2.4", "1.2.5", "1.2.6"]

# ---------------------------------------------------------------------------
# Debian deviations from upstream musl.  Each entry applies to the listed
# upstream versions (Debian suites) and is verified against upstream by
# cross_check_debian(); an unexplained difference stops the generator.
# ---------------------------------------------------------------------------
FTS = ["fts_children", "fts_close", "fts_open", "fts_read", "fts_set"]
DEBIAN_DEVIATIONS = [
    {"versions": ["1.2.3", "1.2.5", "1.2.6"], "names": FTS,
     "action": "removed",
     "reason": "Debian-only: Debian's musl imports musl-fts into libc.so "
               "(debian/changelog 1.2.3-1: 'Import musl-fts. (Closes: "
               "#989746)'); upstream musl and Alpine's musl do not export "
               "fts_* (on Alpine they live in musl-fts, libfts.so.0). Absent "
               "from upstream libc.S (zig 0.11.0 = 1.2.4, 0.13.0 = 1.2.5) and "
               "from musl's src/ at the release tag."},
    {"versions": ["1.2.5"], "names": ["renameat2"], "action": "removed",
     "reason": "Debian-only in 1.2.5: Debian 1.2.5-3 backported the wrapper "
               "('Provide renameat2 syscall wrapper. (Closes: #1105007)'); "
               "upstream added it after 1.2.5 (musl commit 05ce67fe, "
               "2024-05-06) and released it in 1.2.6. Absent from zig "
               "0.13.0's libc.S (upstream 1.2.5)."},
    {"versions": ["1.2.3"], "names": ["crypt", "crypt_r", "encrypt", "setkey"],
     "action": "added",
     "reason": "Missing only in Debian: Debian 1.2.3-1 removed crypt "
               "('Remove crypt functionality and drop crypt.h header. "
               "(Closes: #947193)'; restored in 1.2.5-1 'for ABI "
               "compatibility'). Upstream 1.2.3 exports them "
               "(src/crypt/crypt.c, crypt_r.c, encrypt.c at v1.2.3; present "
               "in Debian's unpatched 1.2.2 and in upstream 1.2.4 libc.S). "
               "Type/binding taken from the 1.2.4 libc.S; size unknown "
               "(null)."},
]

# ---------------------------------------------------------------------------
# Alpine release -> musl version.  The list with its citations is the source
# of truth; alpine.json is written from it.
# ---------------------------------------------------------------------------
ALPINE_RELEASES = [
    ("3.13", "1.2.2", "aports branch 3.13-stable, main/musl/APKBUILD pkgver=1.2.2"),
    ("3.14", "1.2.2", "aports branch 3.14-stable, main/musl/APKBUILD pkgver=1.2.2"),
    ("3.15", "1.2.2", "aports branch 3.15-stable, main/musl/APKBUILD pkgver=1.2.2"),
    ("3.16", "1.2.3", "aports branch 3.16-stable, main/musl/APKBUILD pkgver=1.2.3"),
    ("3.17", "1.2.3", "aports branch 3.17-stable, main/musl/APKBUILD pkgver=1.2.3"),
    ("3.18", "1.2.4", "aports branch 3.18-stable, main/musl/APKBUILD pkgver=1.2.4 "
                      "(alpine:3.18 ships musl-1.2.4-r2)"),
    ("3.19", "1.2.4", "aports branch 3.19-stable, main/musl/APKBUILD "
                      "pkgver=1.2.4_git20230717: a 1.2.4 snapshot from upstream "
                      "git, mapped to the 1.2.4 table (musl git "
                      "v1.2.4..83b858f8, 2023-07-17, adds no export: fixes "
                      "only)"),
    ("3.20", "1.2.5", "aports branch 3.20-stable, main/musl/APKBUILD pkgver=1.2.5"),
    ("3.21", "1.2.5", "aports branch 3.21-stable, main/musl/APKBUILD pkgver=1.2.5"),
    ("3.22", "1.2.5", "aports branch 3.22-stable, main/musl/APKBUILD pkgver=1.2.5"),
    ("3.23", "1.2.5", "aports branch 3.23-stable, main/musl/APKBUILD pkgver=1.2.5"),
]
ALPINE_CITATION_STATUS = (
    "Rows cite the aports stable branch's main/musl/APKBUILD pkgver. When the "
    "table was written, the aports repository was too large to mirror here, "
    "so the branch files were not re-read. Only 3.18 (musl-1.2.4-r2 in "
    "alpine:3.18) was checked against an independent source. Re-check the "
    "rows against aports before relying on them.")
ALPINE_UNVERIFIED = [
    {"alpine": "3.24",
     "note": "Released mid-2026 (press reports); its musl version (1.2.5 or "
             "1.2.6, upstream 1.2.6 reached Debian in May 2026) could not be "
             "confirmed from aports 3.24-stable in this environment. Not "
             "mapped until verified."},
]

# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[generate] {msg}", file=sys.stderr, flush=True)


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


sha256_file = debian.sha256_file


def dump_json(obj: dict, path: Path) -> None:
    """Sorted keys; lists of symbols one entry per line (stable diffs)."""
    parts = []
    for k in sorted(obj):
        v = obj[k]
        if (k == "symbols" and isinstance(v, list)) or (k == "deviations" and isinstance(v, list) and v):
            body = ",\n".join(" " + json.dumps(s, sort_keys=True) for s in v)
            parts.append(f"{json.dumps(k)}: [\n{body}\n]")
        else:
            parts.append(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    json.loads(text)  # sanity
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    log(f"wrote {path.relative_to(HERE.parent)}")


# ---------------------------------------------------------------------------
# Real libc.so: .dynsym with pyelftools
# ---------------------------------------------------------------------------
_TYPES = {"STT_NOTYPE": "NOTYPE", "STT_OBJECT": "OBJECT", "STT_FUNC": "FUNC",
          "STT_COMMON": "COMMON", "STT_TLS": "TLS", "STT_GNU_IFUNC": "GNU_IFUNC",
          "STT_LOOS": "GNU_IFUNC"}
_BINDS = {"STB_GLOBAL": "GLOBAL", "STB_WEAK": "WEAK",
          "STB_GNU_UNIQUE": "GNU_UNIQUE", "STB_LOOS": "GNU_UNIQUE"}


def read_dynsym(path: Path) -> dict[str, tuple]:
    from elftools.elf.elffile import ELFFile
    out: dict[str, tuple] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(".dynsym")
        if sec is None:
            raise SystemExit(f"{path}: no .dynsym")
        for s in sec.iter_symbols():
            if not s.name or s["st_shndx"] == "SHN_UNDEF":
                continue
            bind = s["st_info"]["bind"]
            if bind == "STB_LOCAL":
                continue
            typ = s["st_info"]["type"]
            if typ not in _TYPES or bind not in _BINDS:
                raise SystemExit(f"{path}: {s.name}: unexpected {typ}/{bind}")
            t = _TYPES[typ]
            if s["st_value"] == 0 and t != "TLS":
                continue  # musl skips zero-valued non-TLS definitions
            out[s.name] = (t, _BINDS[bind], int(s["st_size"]))
    return out


def section_bytes(path: Path, name: str) -> bytes:
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        return sec.data() if sec is not None else b""


def loader_strings(libc: Path) -> dict:
    """Reserved prefixes / LFS64 list / readdir64_r, from libc.so bytes."""
    ro = section_bytes(libc, ".rodata")
    m = re.search(rb"c\.pthread\.[a-z.]*\.\x00", ro)
    if not m:
        raise SystemExit(f"{libc}: reserved-name string not found")
    reserved = [p + "." for p in m.group(0)[:-1].decode().split(".") if p]
    m = re.search(rb"aio_cancel\x00aio_error\x00(?:[A-Za-z_0-9]+\x00)*?\x00", ro)
    lfs = None
    if m:
        lfs = [x.decode() for x in m.group(0).split(b"\x00") if x]
    r64 = b"readdir64_r\x00" in ro
    return {"reserved_prefixes": reserved, "lfs64": lfs,
            "readdir64_r_in_rodata": r64}


# ---------------------------------------------------------------------------
# zig's libc.S
# ---------------------------------------------------------------------------
# zig's libc.S is generated from the arches zig builds musl for; its #if
# lists name only those, so for any other arch (arm, s390x) it would list
# every arch's extras (measured: __cachectl, ioperm, ... for arm).  It is
# also wrong for 32-bit arches: it lists __xstat __fxstat __fxstatat
# __lxstat unconditionally, but src/stat/__xstat.c is `#if !_REDIR_TIME64`
# (absent from the real i386 and armhf libc.so).  So only the 64-bit arches
# zig covers take 1.2.4 from libc.S; the others are derived (derive_from).
ZIG_COVERED = ("x86_64", "aarch64", "ppc64", "riscv64")
DERIVED_124 = ("i386", "arm", "s390x")
ZIG_DEFS = {"x86_64": {"ARCH_x86_64", "PTR64"},
            "aarch64": {"ARCH_aarch64", "PTR64"},
            "i386": {"ARCH_x86", "PTR32"},
            "arm": {"ARCH_arm", "PTR32"},
            "ppc64": {"ARCH_powerpc64", "PTR64"},
            "s390x": {"ARCH_s390x", "PTR64"},
            "riscv64": {"ARCH_riscv64", "PTR64"}}
_IGNORED_DIRECTIVES = {".text", ".data", ".bss", ".rodata", ".data.rel.ro",
                       ".section", ".protected", ".hidden", ".balign",
                       ".p2align", ".align"}


def _pp_cond(expr: str, defs: set[str]) -> bool:
    toks = re.findall(r"defined\s*\(\s*\w+\s*\)|!|&&|\|\||\(|\)|\S+", expr)
    py = []
    for t in toks:
        m = re.fullmatch(r"defined\s*\(\s*(\w+)\s*\)", t)
        if m:
            py.append(str(m.group(1) in defs))
        elif t in ("!", "&&", "||", "(", ")"):
            py.append({"!": " not ", "&&": " and ", "||": " or "}.get(t, t))
        else:
            raise SystemExit(f"libc.S: unsupported #if token {t!r}")
    return bool(eval("".join(py), {"__builtins__": {}}, {}))


class IfStack:
    """#if/#else/#endif nesting: is the current line compiled in?"""

    def __init__(self) -> None:
        self.stack: list[tuple[bool, bool]] = []
        self.active = True

    def push(self, cond: bool) -> None:
        self.stack.append((self.active, cond))
        self.active = self.active and cond

    def flip(self) -> None:
        parent, cond = self.stack[-1]
        self.active = parent and not cond

    def pop(self) -> None:
        self.active = self.stack.pop()[0]


def parse_libc_S(text: str, arch: str) -> dict[str, tuple]:
    defs = set(ZIG_DEFS[arch])
    macros: dict[str, str] = {}
    ifs = IfStack()
    types: dict[str, str] = {}
    sizes: dict[str, int] = {}
    binds: dict[str, str] = {}
    for ln, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            kw, _, rest = line[1:].strip().partition(" ")
            rest = rest.strip()
            if kw in ("ifdef", "ifndef", "if"):
                ifs.push(rest in defs if kw == "ifdef" else
                         rest not in defs if kw == "ifndef" else _pp_cond(rest, defs))
            elif kw == "else":
                ifs.flip()
            elif kw == "endif":
                ifs.pop()
            elif kw == "define":
                if ifs.active:
                    n, _, v = rest.partition(" ")
                    macros[n] = v.strip()
            else:
                raise SystemExit(f"libc.S:{ln}: unsupported {line!r}")
            continue
        if not ifs.active:
            continue
        op, _, arg = line.partition(" ")
        op = macros.get(op, op)
        arg = arg.strip()
        if op in (".globl", ".weak"):
            binds[arg] = "GLOBAL" if op == ".globl" else "WEAK"
        elif op == ".type":
            n, t = [x.strip() for x in arg.split(",")]
            types[n] = {"%function": "FUNC", "%object": "OBJECT",
                        "%tls_object": "TLS", "%notype": "NOTYPE"}[t.rstrip(";")]
        elif op == ".size":
            n, sz = [x.strip() for x in arg.split(",")]
            sizes[n] = int(macros.get(sz, sz), 0)
        elif op in _IGNORED_DIRECTIVES or line.endswith(":"):
            pass
        else:
            raise SystemExit(f"libc.S:{ln}: unsupported {line!r}")
    if ifs.stack:
        raise SystemExit("libc.S: unbalanced #if")
    out = {}
    for n, t in types.items():
        if n not in binds:
            raise SystemExit(f"libc.S: {n} has no binding")
        out[n] = (t, binds[n], sizes.get(n))
    return out


def zig_libc(work: Path, ver: str) -> dict:
    whl = glibc.zig_wheel(work, ver)
    member = "ziglang/lib/libc/musl/libc.S"
    with zipfile.ZipFile(whl) as z:
        text = z.read(member).decode()
        vh = z.read("ziglang/lib/libc/musl/src/internal/version.h").decode()
    m = re.search(r'VERSION\s+"([^"]+)"', vh)
    return {"wheel": whl, "member": member, "text": text,
            "musl": m.group(1) if m else None,
            "sha256": sha256_file(whl), "file_sha256": sha256_bytes(text.encode())}


# ---------------------------------------------------------------------------
# musl source (git mirror) helpers, for cross-checks
# ---------------------------------------------------------------------------

def musl_git(gitdir: str | None, *args: str) -> str | None:
    if not gitdir or not Path(gitdir).exists():
        return None
    p = subprocess.run(["git", "-C", gitdir, *args], capture_output=True)
    return p.stdout.decode(errors="replace") if p.returncode == 0 else None


def musl_src_tokens(gitdir: str | None, ref: str) -> set[str] | None:
    if not gitdir or not Path(gitdir).exists():
        return None
    p = subprocess.run(["git", "-C", gitdir, "archive", "--format=tar", ref,
                        "src", "ldso", "arch", "compat", "include"],
                       capture_output=True)
    if p.returncode != 0:
        return None
    import tarfile
    toks: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        for m in tf:
            if m.isfile():
                toks |= set(re.findall(rb"[A-Za-z_][A-Za-z_0-9]*",
                                       tf.extractfile(m).read()))
    return {t.decode() for t in toks}


# ---------------------------------------------------------------------------
# symbol tables
# ---------------------------------------------------------------------------

def table(version, arch, provenance, deviations, syms, extra=None) -> dict:
    d = {"kind": "musl-exports", "musl": version, "arch": arch,
         "provenance": provenance,
         "deviations": sorted(deviations, key=lambda x: (x["name"], x["action"])),
         "symbols": [[n, *syms[n]] for n in sorted(syms)]}
    if extra:
        d.update(extra)
    return d


def diff_sets(a: dict, b: dict) -> dict:
    tb = sorted([n, list(a[n][:2]), list(b[n][:2])] for n in set(a) & set(b)
                if a[n][:2] != b[n][:2])
    return {"only_in_first": sorted(set(a) - set(b)),
            "only_in_second": sorted(set(b) - set(a)),
            "type_binding_differs": tb}


def build_debian(work: Path, musl_gitdir: str | None, zig: dict) -> dict:
    infos = []
    for ver, suite in DEBIAN_SUITES.items():
        arches = [d for a, d in ARCHES.items() if (ver, a) not in DEBIAN_MISSING]
        infos += debian.fetch_musl(work / "debian", [suite], arches)
    by = {(i["suite"], i["arch"]): i for i in infos}
    raw = {}
    for ver, suite in DEBIAN_SUITES.items():
        for arch, darch in ARCHES.items():
            if (ver, arch) in DEBIAN_MISSING:
                continue
            info = by[(suite, darch)]
            if info["upstream_version"] != ver:
                raise SystemExit(f"{suite}/{darch}: expected musl {ver}, Debian "
                                 f"has {info['version']}")
            libc = work / "debian" / f"{suite}-{darch}" / "root" / info["libc_so"]
            raw[(ver, arch)] = (info, libc, read_dynsym(libc))
    return raw


def apply_deviations(ver, arch, syms, z124) -> tuple[dict, list]:
    syms = dict(syms)
    devs = []
    for d in DEBIAN_DEVIATIONS:
        if ver not in d["versions"]:
            continue
        for n in d["names"]:
            if d["action"] == "removed":
                if n not in syms:
                    raise SystemExit(f"{ver}/{arch}: deviation {n} not present")
                del syms[n]
            elif d["action"] == "added":
                if n in syms:
                    raise SystemExit(f"{ver}/{arch}: {n} already present")
                t, b, _ = z124[n]
                syms[n] = (t, b, None)
            devs.append({"name": n, "action": d["action"], "reason": d["reason"]})
    return syms, devs


def cross_check_debian(ver, arch, syms, raw_syms, upstream, tokens, notes):
    """Verify a corrected Debian table against upstream evidence."""
    if ver == "1.2.5" and (ver, arch) in upstream:
        z = upstream[("1.2.5", arch)]
        if set(z) != set(syms):
            raise SystemExit(f"1.2.5/{arch}: Debian (corrected) != zig 0.13.0 "
                             f"libc.S: {diff_sets(syms, z)}")
        d = diff_sets(syms, z)
        notes["vs_upstream_libc_S_1.2.5"] = {
            "same_names": True, "type_binding_differs": d["type_binding_differs"]}
        sz = sorted(n for n in syms if z[n][2] is not None and syms[n][2] != z[n][2])
        if sz:
            raise SystemExit(f"1.2.5/{arch}: object sizes differ: {sz}")
    if tokens is not None:
        missing = sorted(n for n in syms if n not in tokens)
        if missing:
            raise SystemExit(f"{ver}/{arch}: names not found in upstream musl "
                             f"source: {missing}")
        notes["all_names_in_upstream_source"] = True
    # names upstream exports on both sides of this version must be present
    z124 = upstream.get(("1.2.4", arch))
    z125 = upstream.get(("1.2.5", arch), upstream.get(("debian-1.2.5", arch)))
    if ver == "1.2.3" and z124 is not None:
        lost = sorted(set(z124) - set(syms))
        if lost:
            raise SystemExit(f"1.2.3/{arch}: in 1.2.4 but not 1.2.3: {lost}")
    if ver == "1.2.6":
        lost = sorted(set(z125) - set(syms) - UPSTREAM_HIDDEN_126.get(arch, set()))
        if arch in UPSTREAM_HIDDEN_126:
            notes["hidden_since_1.2.5"] = {"names": sorted(UPSTREAM_HIDDEN_126[arch]),
                                           "why": "musl commit 362fc545 (riscv: mark "
                                                  "__restore and __restore_rt hidden)"}
        if lost:
            raise SystemExit(f"1.2.6/{arch}: in 1.2.5 but not 1.2.6: {lost}")
        notes["new_vs_upstream_1.2.5"] = sorted(set(syms) - set(z125))


ARCH_NOTES = [
    "Keys are ELF machine names as muslcheck reads them; alpine_arches maps "
    "Alpine's names onto them.",
    "Alpine armhf (ARMv6) and armv7 share musl's hard-float ABI: one loader "
    "name (ld-musl-armhf.so.1), one export set. Their tables come from "
    "Debian armhf (ARMv7 hard-float, the same musl ABI); Debian armel is "
    "soft-float (ld-musl-arm.so.1), which no Alpine architecture uses.",
    "ppc64 is little-endian only (Alpine ppc64le, Debian ppc64el): "
    "ld-musl-powerpc64le.so.1.",
    "riscv64 has no table for musl 1.2.2 and 1.2.3: Debian has no riscv64 "
    "before trixie, and Alpine has riscv64 only from 3.20 (musl 1.2.5).",
]


def build_tables(work: Path, musl_gitdir: str | None) -> dict:
    zig = {v: zig_libc(work, zv) for v, zv in ZIG_FOR.items()}
    for v, z in zig.items():
        if z["musl"] != v:
            raise SystemExit(f"ziglang {ZIG_FOR[v]} carries musl {z['musl']}, "
                             f"expected {v}")
    upstream = {(v, a): parse_libc_S(zig[v]["text"], a)
                for v in zig for a in ZIG_COVERED}
    raw = build_debian(work, musl_gitdir, zig)
    tags = {v: musl_git(musl_gitdir, "rev-parse", f"v{v}^{{commit}}") for v in ALL_VERSIONS}
    tokens = {}
    for v in ("1.2.2", "1.2.3", "1.2.5"):
        tokens[v] = musl_src_tokens(musl_gitdir, f"v{v}") if tags[v] else None
    # 1.2.6 is not tagged in the mirror: use master (post-1.2.5) plus names
    # that upstream's own 1.2.6 release notes (WHATSNEW, shipped in the
    # package as usr/share/doc/musl/changelog.gz) list as new.
    head = musl_src_tokens(musl_gitdir, "HEAD")
    tokens["1.2.6"] = head | {"__getauxval"} if head is not None else None

    tables = {}
    summary = {}
    for (ver, arch), (info, libc, syms) in sorted(raw.items()):
        # crypt's type/binding (the "added" deviation): the same on every arch
        fixed, devs = apply_deviations(ver, arch, syms, upstream[("1.2.4", "x86_64")])
        notes: dict = {}
        cross_check_debian(ver, arch, fixed, syms, upstream, tokens.get(ver), notes)
        if ver == "1.2.5" and arch not in ZIG_COVERED:
            upstream[("debian-1.2.5", arch)] = fixed  # 1.2.6 must keep these
        if ver == "1.2.6":
            wn = whatsnew_126(work, info)
            notes["upstream_release_notes_1.2.6"] = wn
        rel = libc.relative_to(work / "debian" / f"{info['suite']}-{info['arch']}" / "root")
        prov = {"source": "debian", "package": "musl",
                "package_version": info["version"], "suite": info["suite"],
                "debian_arch": info["arch"], "deb": info["deb"],
                "sha256": info["sha256"], "file": str(rel),
                "file_sha256": sha256_file(libc), "generator": GENERATOR}
        tables[(ver, arch)] = table(ver, arch, prov, devs, fixed,
                                    {"cross_check": notes,
                                     "debian_raw_count": len(syms)})
        summary[(ver, arch)] = (len(syms), len(fixed))
    for arch in DERIVED_122:
        tables[("1.2.2", arch)] = derive_from("1.2.2", "1.2.3", arch, tables,
                                              DERIVED_122, musl_gitdir)
        summary[("1.2.2", arch)] = (None, len(tables[("1.2.2", arch)]["symbols"]))
    # 1.2.4 from zig 0.11.0
    for arch in ZIG_COVERED:
        z = upstream[("1.2.4", arch)]
        d5 = tables[("1.2.5", arch)]["symbols"]
        t5 = {s[0]: tuple(s[1:]) for s in d5}
        t3 = ({s[0]: tuple(s[1:]) for s in tables[("1.2.3", arch)]["symbols"]}
              if ("1.2.3", arch) in tables else None)
        devs = []
        for n, a, b in diff_sets(t5, z)["type_binding_differs"]:
            devs.append({"name": n, "action": "flagged",
                         "reason": f"zig libc.S says {b[0]}/{b[1]}; the real "
                                   f"1.2.3 and 1.2.5 libc.so have {a[0]}/{a[1]} "
                                   "(both resolvable by the loader; value kept "
                                   "as libc.S states)"})
        check_124_between(arch, z, t3, t5)
        notes = {"vs_debian_1.2.3_corrected": (diff_sets(t3, z) if t3 is not None
                                               else "no Debian 1.2.3 for this arch"),
                 "vs_debian_1.2.5_corrected": diff_sets(t5, z),
                 "function_sizes": "libc.S gives sizes for objects only; "
                                   "function sizes are null"}
        zz = zig["1.2.4"]
        prov = {"source": "ziglang", "package": "ziglang",
                "package_version": ZIG_FOR["1.2.4"], "wheel": zz["wheel"].name,
                "sha256": zz["sha256"], "file": zz["member"],
                "file_sha256": zz["file_sha256"], "generator": GENERATOR,
                "musl_version_in_wheel": zz["musl"]}
        tables[("1.2.4", arch)] = table("1.2.4", arch, prov, devs, z,
                                        {"cross_check": notes})
        summary[("1.2.4", arch)] = (None, len(z))
    for arch in DERIVED_124:
        t = tables[("1.2.4", arch)] = derive_from("1.2.4", "1.2.5", arch, tables,
                                                  DERIVED_124, musl_gitdir)
        z = {x[0]: tuple(x[1:]) for x in t["symbols"]}
        check_124_between(arch, z, {x[0]: tuple(x[1:]) for x in tables[("1.2.3", arch)]["symbols"]},
                          {x[0]: tuple(x[1:]) for x in tables[("1.2.5", arch)]["symbols"]})
        summary[("1.2.4", arch)] = (None, len(z))
    # record the zig 1.2.5 reference used for the 1.2.5 cross-check
    for arch in ZIG_COVERED:
        z5 = zig["1.2.5"]
        tables[("1.2.5", arch)]["cross_check"]["upstream_reference"] = {
            "package": "ziglang", "package_version": ZIG_FOR["1.2.5"],
            "wheel": z5["wheel"].name, "sha256": z5["sha256"],
            "file": z5["member"], "file_sha256": z5["file_sha256"]}
    return tables, raw, summary


def derive_from(ver: str, base_ver: str, arch: str, tables: dict,
                derived: tuple[str, ...], musl_gitdir: str | None) -> dict:
    """musl VER for an arch without a real or libc.S table: that arch's real
    BASE_VER table with the VER..BASE_VER change undone.  The change (names
    gained and lost, type/binding changes) is measured on every arch that
    has both tables from a source, and must be the same on all of them; the
    arch's own files changed between the tags are recorded."""
    def syms(v: str, a: str) -> dict:
        return {x[0]: tuple(x[1:]) for x in tables[(v, a)]["symbols"]}
    deltas = {}
    for a in ARCH_ROWS:
        if (ver, a) in tables and (base_ver, a) in tables and a not in derived:
            old, new = syms(ver, a), syms(base_ver, a)
            deltas[a] = (tuple(sorted(set(new) - set(old))), tuple(sorted(set(old) - set(new))))
    if len(set(deltas.values())) != 1:
        raise SystemExit(f"{ver}/{arch}: the {ver}->{base_ver} change differs per arch: {deltas}")
    gained, lost = next(iter(deltas.values()))
    if lost:
        raise SystemExit(f"{ver}/{arch}: names gone in {base_ver} {lost}: no source for them")
    # type/binding changes: only those every reference arch agrees on
    changed = None
    for a in deltas:
        old, new = syms(ver, a), syms(base_ver, a)
        c = {n: old[n][:2] for n in set(old) & set(new) if old[n][:2] != new[n][:2]}
        changed = c if changed is None else {n: t for n, t in changed.items() if c.get(n) == t}
    out = syms(base_ver, arch)
    for n in gained:
        out.pop(n)
    for n, tb in sorted((changed or {}).items()):
        out[n] = (*tb, out[n][2])
    march = ARCH_ROWS[arch][1].removesuffix("le").removesuffix("hf")
    own = musl_git(musl_gitdir, "diff", "--stat", f"v{min(ver, base_ver)}",
                   f"v{max(ver, base_ver)}", "--", f"arch/{march}",
                   f"src/*/{march}", f"ldso/{march}", f"crt/{march}")
    if own is None:
        raise SystemExit(f"{ver}/{arch}: needs --musl-git to check arch/{march}")
    base = tables[(base_ver, arch)]
    prov = {"source": "derived",
            "from": f"musl-{base_ver}-{arch}.json (Debian {base['provenance']['package_version']} "
                    f"{base['provenance']['debian_arch']}, sha256 {base['provenance']['sha256']})",
            "method": f"the real {base_ver} table with the {ver}..{base_ver} change undone; "
                      f"the change is the one measured between the {ver} and {base_ver} "
                      f"tables of {', '.join(deltas)}, identical on all of them",
            f"arch_files_changed_v{min(ver, base_ver)}..v{max(ver, base_ver)}":
                own.strip().splitlines()[:-1],
            "generator": GENERATOR}
    return table(ver, arch, prov, [], out,
                 {"cross_check": {f"names_gained_in_{base_ver}": list(gained),
                                  "type_binding_undone": sorted(changed or {})}})


# Exports upstream itself withdrew after 1.2.5 (checked in musl's git log).
UPSTREAM_HIDDEN_126 = {"riscv64": {"__restore", "__restore_rt"}}
LFS64_REMOVED_IN_124 = 60
TIME32_XSTAT = {"__fxstat", "__fxstatat", "__lxstat", "__xstat"}   # musl commit 246f1c81: 59 *64 aliases + readdir64_r
NEW_IN_125 = {"preadv2", "pwritev2", "statx"}


def check_124_between(arch: str, z124: dict, t123: dict | None, t125: dict) -> None:
    """zig's 1.2.4 libc.S must sit exactly between the real 1.2.3 and 1.2.5."""
    if t123 is not None:
        gone = set(t123) - set(z124)
        # 32-bit: compat/time32/__xstat.c defines __fxstat64 ... at v1.2.3 and
        # __fxstat ... at v1.2.4 (the LFS64 rename), so those four are new
        gained_ok = TIME32_XSTAT if ARCH_ROWS[arch][2] in ("/lib/ld-linux.so.2",
                                                          "/lib/ld-linux-armhf.so.3") else set()
        if set(z124) - set(t123) - gained_ok or len(gone) != LFS64_REMOVED_IN_124 or not all(
                n.endswith("64") or n == "readdir64_r" for n in gone):
            raise SystemExit(f"1.2.4/{arch}: libc.S is not 1.2.3 minus the LFS64 "
                             f"names: {diff_sets(t123, z124)}")
    if set(z124) - set(t125) or set(t125) - set(z124) != NEW_IN_125:
        raise SystemExit(f"1.2.4/{arch}: libc.S is not 1.2.5 minus {sorted(NEW_IN_125)}: "
                         f"{diff_sets(t125, z124)}")


def whatsnew_126(work: Path, info: dict) -> list[str]:
    import gzip
    root = work / "debian" / f"{info['suite']}-{info['arch']}" / "root"
    p = root / "usr/share/doc/musl/changelog.gz"
    text = gzip.decompress(p.read_bytes()).decode(errors="replace")
    m = re.search(r"^1\.2\.6 release notes\n(.*?)(?:^\d+\.\d+\.\d+ release notes|\Z)",
                  text, re.S | re.M)
    if not m:
        raise SystemExit("1.2.6 release notes not found in sid's changelog.gz")
    sec = re.search(r"new features:\n(.*?)\n\n", m.group(1), re.S)
    return [line.strip("- ").strip() for line in sec.group(1).splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# loader facts
# ---------------------------------------------------------------------------
PROBE_SRC = {
    "lfs": r'''
#define _LARGEFILE64_SOURCE 1
#define _GNU_SOURCE 1
#include <stdio.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>
extern int readdir64_r();
int main(void){ volatile int r = 0;
 if (r) { posix_fallocate64(0,0,0); fopen64("x","r"); readdir64_r(0,0,0);
          open64("x",0); lseek64(0,0,0); }
 puts("ok"); return 0; }
''',
    "relr": r'''
#include <stdio.h>
static const char a[]="relr-a", b[]="relr-b", c[]="relr-c";
const char *tab[] = {a,b,c,a,b,c,a,b};
int main(void){ for(int i=0;i<8;i++) if(!tab[i]||tab[i][0]!='r'){puts("bad");return 3;}
 puts("relr-ok"); return 0; }
''',
}


def run_probes(work: Path, raw: dict) -> dict | None:
    """Run tiny glibc-built programs under each real Debian x86_64 loader."""
    if platform.machine() not in ("x86_64", "AMD64") or not shutil.which("gcc"):
        return None
    d = work / "probe"
    d.mkdir(parents=True, exist_ok=True)
    (d / "lfs.c").write_text(PROBE_SRC["lfs"])
    (d / "relr.c").write_text(PROBE_SRC["relr"])
    cmds = [["gcc", "-O0", "-w", "-fno-stack-protector", "-o", "lfs", "lfs.c"],
            ["gcc", "-O0", "-fPIE", "-pie", "-fno-stack-protector",
             "-Wl,-z,pack-relative-relocs", "-o", "relr", "relr.c"]]
    for c in cmds:
        if subprocess.run(c, cwd=d, capture_output=True).returncode != 0:
            log(f"probe build failed: {' '.join(c)}; skipping probes")
            return None
    res = {}
    for (ver, arch), (_info, libc, _) in sorted(raw.items()):
        if arch != "x86_64":
            continue
        env = {"PATH": "/usr/bin:/bin"}
        lst = subprocess.run([str(libc), "--list", "./lfs"], cwd=d, env=env,
                             capture_output=True, text=True, timeout=30)
        errs = sorted(set(re.findall(r"Error relocating \./lfs: (\S+): symbol not found",
                                     lst.stdout + lst.stderr)))
        rr = subprocess.run([str(libc), "./relr"], cwd=d, env=env,
                            capture_output=True, text=True, timeout=30)
        res[ver] = {"arch": "x86_64",
                    "lfs_probe_unresolved": errs,
                    "lfs_probe_names": ["fopen64", "lseek64", "open64",
                                        "posix_fallocate64", "readdir64_r"],
                    "relr_probe": "ok" if rr.returncode == 0 and "relr-ok" in rr.stdout
                                  else f"failed (exit {rr.returncode})"}
    return res


def lfs_name_max_from_source(src: str) -> int | None:
    body = src[src.find("get_lfs64"):]
    body = body[:body.find("nomatch:")]
    m = re.search(r"char buf\[(\d+)\]", body)
    if m:
        return int(m.group(1))           # names of strlen <= N-1+1 fit: l < N
    m = re.search(r"strnlen\(name,\s*(\d+)\)", body)
    if m:
        return int(m.group(1)) - 1       # name[l] must be NUL, so l <= N-1
    return None


def lfs_list_from_source(src: str) -> list[str] | None:
    m = re.search(r"lfs64_list\[\]\s*=\s*((?:\s*\"[^\"]*\")+)\s*;", src)
    if not m:
        return None
    s = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
    return [x for x in s.split("\\0") if x]


def reserved_from_source(src: str) -> list[str] | None:
    m = re.search(r"reserved\[\]\s*=\s*\"([^\"]+)\"", src)
    return [p + "." for p in m.group(1).split(".") if p] if m else None


def build_loader(raw: dict, musl_gitdir: str | None, probes: dict | None,
                 old: dict | None) -> dict:
    versions = {}
    for ver in ALL_VERSIONS:
        facts = None
        src_ref = f"v{ver}" if musl_git(musl_gitdir, "rev-parse", f"v{ver}") else None
        src = musl_git(musl_gitdir, "show", f"{src_ref}:ldso/dynlink.c") if src_ref else None
        if ver in DEBIAN_SUITES:
            per_arch = {a: loader_strings(raw[(ver, a)][1]) for a in ARCHES
                        if (ver, a) in raw}
            vals = list(per_arch.values())
            if any(v != vals[0] for v in vals):
                raise SystemExit(f"{ver}: loader strings differ per arch: {per_arch}")
            facts = dict(vals[0])
            info = raw[(ver, "x86_64")][0]
            source = (f"reserved_prefixes and lfs64 read from the .rodata of the "
                      f"real libc.so of Debian musl {info['version']} (all of "
                      f"{', '.join(ARCHES[a] for a in per_arch)} agree)")
            if src:
                if reserved_from_source(src) != facts["reserved_prefixes"]:
                    raise SystemExit(f"{ver}: reserved prefixes differ from source")
                if lfs_list_from_source(src) != facts["lfs64"]:
                    raise SystemExit(f"{ver}: lfs64 list differs from source")
                source += f"; matches ldso/dynlink.c at {src_ref}"
        elif src:
            facts = {"reserved_prefixes": reserved_from_source(src),
                     "lfs64": lfs_list_from_source(src),
                     "readdir64_r_in_rodata": '"readdir64_r"' in src}
            source = (f"no Debian binary; read from ldso/dynlink.c at tag {src_ref} "
                      f"(musl commit 246f1c81 introduced the LFS64 remapping)")
        else:
            f5 = versions["1.2.3"]
            facts = {"reserved_prefixes": f5["reserved_prefixes"],
                     "lfs64": None, "readdir64_r_in_rodata": False}
            source = "unavailable"
            raise SystemExit("1.2.4 loader facts need --musl-git (musl source)")
        lfs = facts["lfs64"]
        # lfs64_name_max: longest *64 name (strlen) get_lfs64 can remap
        name_max = None
        name_src = None
        if lfs is not None:
            if src:
                name_max = lfs_name_max_from_source(src)
                name_src = f"ldso/dynlink.c get_lfs64 at {src_ref}"
            else:
                head = musl_git(musl_gitdir, "show", "HEAD:ldso/dynlink.c")
                name_max = lfs_name_max_from_source(head) if head else None
                name_src = ("musl master ldso/dynlink.c (commits 53ac44ff and "
                            "50ab8306, 2024-06, after 1.2.5: strnlen(name, 18)); "
                            "no v1.2.6 tag in the mirror")
        relr = ver >= "1.2.4"
        v = {"reserved_prefixes": facts["reserved_prefixes"],
             "lfs64": lfs,
             "lfs64_name_max": name_max,
             "lfs64_name_max_source": name_src,
             "readdir64_r": bool(lfs is not None and facts["readdir64_r_in_rodata"]),
             "relr": relr,
             "relr_source": "DT_RELR support added by musl commit d32dadd6 "
                            "(2022-08-02), first released in 1.2.4; earlier "
                            "loaders ignore the tag",
             "source": source}
        if probes is not None and ver in probes:
            v["probe"] = probes[ver]
        elif old and ver in old.get("versions", {}) and "probe" in old["versions"][ver]:
            v["probe"] = old["versions"][ver]["probe"]
        # consistency of probe with facts
        pr = v.get("probe")
        if pr:
            unresolved = set(pr["lfs_probe_unresolved"])
            if lfs is None:
                exp = set()  # all *64 names exported
            else:
                exp = {n for n in pr["lfs_probe_names"]
                       if n != "readdir64_r" and len(n) > (name_max or 0)}
                if not v["readdir64_r"]:
                    exp.add("readdir64_r")
            if unresolved != exp:
                raise SystemExit(f"{ver}: probe {sorted(unresolved)} contradicts "
                                 f"facts (expected {sorted(exp)})")
            if (pr["relr_probe"] == "ok") != relr:
                raise SystemExit(f"{ver}: relr probe contradicts relr={relr}")
        versions[ver] = v
    return {"kind": "musl-loader", "versions": versions,
            "ldso_names": {a: f"ld-musl-{row[1]}.so.1" for a, row in ARCH_ROWS.items()},
            "glibc_interpreters": {a: row[2] for a, row in ARCH_ROWS.items()},
            "alpine_arches": {alp: a for a, row in ARCH_ROWS.items() for alp in row[3]},
            "arch_notes": ARCH_NOTES,
            "default_path": "/lib:/usr/local/lib:/usr/lib",
            "generator": GENERATOR}


# ---------------------------------------------------------------------------
# gcompat
# ---------------------------------------------------------------------------
GCOMPAT_DEFAULTS = {"repository": "github:truboxl/gcompat (mirror of "
                                  "git.adelielinux.org/adelie/gcompat)",
                    "tag": "1.1.0",
                    "commit": "b7bfe0b08c52fdc72e0c1d9d4dcb2129f1642bd6"}
# Conditions met in gcompat 1.1.0's sources, per arch, as built by Alpine
# (Makefile + aports main/gcompat/APKBUILD: WITH_LIBUCONTEXT=1,
# WITH_OBSTACK=musl-obstack; neither defines HAVE_LIBUCONTEXT or
# NO_BROKEN_SHADOW_SETRLIMIT).  SYS__sysctl exists in musl's x86_64 syscall
# table only.
# SYS__sysctl: __NR__sysctl in arch/*/bits/syscall.h.in of musl v1.2.5
# (x86_64, i386, arm, powerpc64, s390x have it; aarch64, riscv64 do not).
# __powerpc__: GCC defines it for 64-bit PowerPC too.
_SYSCTL_ARCHES = {"x86_64", "i386", "arm", "ppc64", "s390x"}
GCOMPAT_CONDS = {
    "0": dict.fromkeys(ARCH_ROWS, False),
    "defined(__powerpc__)": {a: a == "ppc64" for a in ARCH_ROWS},
    "SYS__sysctl": {a: a in _SYSCTL_ARCHES for a in ARCH_ROWS},
    "!HAVE_LIBUCONTEXT": dict.fromkeys(ARCH_ROWS, True),
    "!NO_BROKEN_SHADOW_SETRLIMIT": dict.fromkeys(ARCH_ROWS, True),
    # LINKER/LOADER are always passed by the Makefile: #error branches off
    "!LINKER": dict.fromkeys(ARCH_ROWS, False),
    "!LOADER": dict.fromkeys(ARCH_ROWS, False),
}
# aports main/gcompat/APKBUILD (commit 9e88698c): LINKER_PATH is
# /lib/ld-musl-$ARCH.so.1 with ARCH=arm on armhf/armv7 and ARCH=powerpc64 on
# ppc64le: not the loader names musl installs there (ld-musl-armhf.so.1,
# ld-musl-powerpc64le.so.1).  Recorded as the APKBUILD states it.
GCOMPAT_LINKER_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "i386": "i386",
                       "arm": "arm", "ppc64": "powerpc64", "s390x": "s390x",
                       "riscv64": "riscv64"}
GCOMPAT_LIB64_LINK = ("x86_64", "ppc64", "aarch64", "s390x", "riscv64")


def _strip_c(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])*'", "''", text)
    return text


def gcompat_exports(src: str, arch: str, fname: str) -> set[str]:
    lines = _strip_c(src).split("\n")
    # join continuation lines
    out_lines: list[str] = []
    ifs = IfStack()
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        s = line.strip()
        if s.startswith("#"):
            kw, _, rest = s[1:].strip().partition(" ")
            rest = rest.strip()
            if kw in ("if", "ifdef", "ifndef"):
                if kw == "ifndef" and re.fullmatch(r"\w+_H_?", rest):
                    c = True  # include guard
                else:
                    key = rest if kw == "if" else (rest if kw == "ifdef" else "!" + rest)
                    if key not in GCOMPAT_CONDS:
                        raise SystemExit(f"gcompat {fname}: unknown condition {s!r}")
                    c = GCOMPAT_CONDS[key][arch]
                ifs.push(c)
            elif kw == "else":
                ifs.flip()
            elif kw == "endif":
                ifs.pop()
            elif kw == "elif":
                raise SystemExit(f"gcompat {fname}: #elif unsupported")
            continue
        if ifs.active:
            out_lines.append(line)
    text = "\n".join(out_lines)
    names: set[str] = set()
    depth, chunk = 0, []
    for ch in text:
        if depth == 0:
            if ch == "{":
                head = "".join(chunk).strip()
                chunk = []
                depth = 1
                if "=" in head or re.match(r"^(typedef\s+)?(struct|union|enum)\b[^()]*$", head):
                    m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*=\s*$", head)
                    if m and not re.search(r"\bstatic\b", head) and "=" in head:
                        names.add(m.group(1))
                    continue
                m = re.search(r"(\w+)\s*\(([^()]|\([^()]*\))*\)\s*$", head)
                if m and not re.search(r"\bstatic\b", head):
                    names.add(m.group(1))
                continue
            if ch == ";":
                st = "".join(chunk).strip()
                chunk = []
                m = re.match(r"^(weak_alias|alias)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)$", st)
                if m:
                    names.add(m.group(3))
                    continue
                if (st and "(" not in st.split("=")[0] and not re.search(
                        r"\b(static|extern|typedef)\b", st)
                        and not re.match(r"^(struct|union|enum)\s+\w+$", st)):
                    m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*(=.*)?$", st, re.S)
                    if m:
                        names.add(m.group(1))
                continue
            chunk.append(ch)
        else:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    chunk = []
    return names


def build_gcompat(src_dir: Path, repo: str, tag: str, commit: str) -> dict:
    mk = (src_dir / "Makefile").read_text()
    m = re.search(r"LIBGCOMPAT_SRC\s*=\s*((?:[^\n]*\\\n)*[^\n]*)", mk)
    files = re.findall(r"libgcompat/\w+\.c", m.group(1))
    if not files:
        raise SystemExit("gcompat: LIBGCOMPAT_SRC not found in Makefile")
    hashes = {"Makefile": sha256_file(src_dir / "Makefile"),
              "loader/loader.c": sha256_file(src_dir / "loader" / "loader.c")}
    per_arch = {}
    for arch in ARCHES:
        names: set[str] = set()
        for f in files:
            text = (src_dir / f).read_text()
            hashes[f] = sha256_file(src_dir / f)
            names |= gcompat_exports(text, arch, f)
        names = {n for n in names if not n.startswith("GCOMPAT__")}
        per_arch[arch] = names
    internal = sorted({n for n in set().union(*per_arch.values())
                       if n.startswith("GCOMPAT_")})
    common = set.intersection(*per_arch.values())
    arch_specific = {a: sorted(per_arch[a] - common) for a in ARCHES
                     if per_arch[a] - common}
    loader = (src_dir / "loader" / "loader.c").read_text()
    return {"kind": "gcompat-exports", "gcompat": tag,
            "provenance": {"repository": repo, "tag": tag, "commit": commit,
                           "files": hashes, "generator": GENERATOR,
                           "method": "top-level non-static definitions and "
                                     "alias()/weak_alias() targets in the "
                                     "files of LIBGCOMPAT_SRC, with #if "
                                     "conditions evaluated as Alpine builds "
                                     "it (see GCOMPAT_CONDS)"},
            "symbols": sorted(common),
            "arch_specific": arch_specific,
            "internal_excluded": internal,
            "libc_links": ["libc.so.6", "libcrypt.so.1", "libm.so.6",
                           "libpthread.so.0", "libresolv.so.2", "librt.so.1",
                           "libutil.so.1"],
            "libc_links_source": "aports main/gcompat/APKBUILD package()",
            "loader_paths": {a: row[2] for a, row in ARCH_ROWS.items()},
            "loader_paths_source": "glibc's PT_INTERP per arch; aports "
                                   "main/gcompat/APKBUILD installs the stub "
                                   "as /lib/$_ld, with a /lib64 link on "
                                   + ", ".join(GCOMPAT_LIB64_LINK),
            "stub_linker_paths": {a: f"/lib/ld-musl-{m}.so.1"
                                  for a, m in GCOMPAT_LINKER_ARCH.items()},
            "loader_stub": stub_facts(loader),
            "preload": "/lib/libgcompat.so.0"}


def stub_facts(loader_c: str) -> dict:
    """Facts of loader/loader.c (checked, so a changed stub stops us)."""
    need = ['"--argv0"', '"--preload"', '"--"', 'readlink("/proc/self/exe"',
            'execve(LINKER, new_argv, envp)', 'getenv("LD_PRELOAD")']
    for n in need:
        if n not in loader_c:
            raise SystemExit(f"gcompat loader.c changed: {n} not found")
    return {"exec": "execve(LINKER_PATH, argv, envp) with the environment "
                    "unchanged; Alpine sets LINKER_PATH=/lib/ld-musl-$ARCH.so.1",
            "argv": ["<LOADER_NAME: glibc ld.so basename, e.g. "
                     "ld-linux-x86-64.so.2>", "--argv0", "<original argv[0]>",
                     "--preload", "/lib/libgcompat.so.0 <$LD_PRELOAD or empty>",
                     "--", "<readlink(/proc/self/exe)>", "<argv[1:]...>"],
            "notes": ["musl takes argv[0] (the glibc ld.so basename) as its "
                      "own name, so a DT_NEEDED on ld-linux-x86-64.so.2 / "
                      "ld-linux-aarch64.so.1 is treated as the loader itself",
                      "--preload makes musl ignore the LD_PRELOAD variable; "
                      "the stub appends $LD_PRELOAD after libgcompat, space-"
                      "separated",
                      "the program is run by its resolved /proc/self/exe "
                      "path, not the path it was invoked by",
                      "the stub refuses to run when /proc/self/exe contains "
                      "LOADER_NAME (someone running the stub directly)"]}


# ---------------------------------------------------------------------------
# alpine
# ---------------------------------------------------------------------------

def build_alpine() -> dict:
    rows = []
    for alp, musl, src in ALPINE_RELEASES:
        if musl not in ALL_VERSIONS:
            raise SystemExit(f"alpine {alp}: musl {musl} has no table")
        rows.append({"alpine": alp, "musl": musl, "source": src})
    return {"kind": "alpine-musl", "releases": rows,
            "unverified": ALPINE_UNVERIFIED, "generator": GENERATOR,
            "citation_status": ALPINE_CITATION_STATUS}


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Regenerate symbols/*.json. Without --gcompat-src the "
                    "committed gcompat table is kept unchanged.")
    ap.add_argument("--work", type=Path,
                    default=Path(tempfile.gettempdir()) / "muslcheck-symbols-work",
                    help="scratch directory (downloads, extracted packages)")
    ap.add_argument("--gcompat-src", type=Path,
                    help="an extracted gcompat source tree; without it the "
                         "committed gcompat-*.json is kept unchanged")
    ap.add_argument("--gcompat-repo", default=GCOMPAT_DEFAULTS["repository"])
    ap.add_argument("--gcompat-tag", default=GCOMPAT_DEFAULTS["tag"])
    ap.add_argument("--gcompat-commit", default=GCOMPAT_DEFAULTS["commit"])
    ap.add_argument("--musl-git", default=None, metavar="DIR",
                    help="a git clone or mirror of musl (for source cross-checks "
                         "and 1.2.4 loader facts); without it they are skipped")
    ap.add_argument("--no-probe", action="store_true",
                    help="do not run probe programs under the real loaders; "
                         "keep the committed probe results")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    musl_gitdir = args.musl_git if args.musl_git and Path(args.musl_git).exists() else None
    if not musl_gitdir:
        log("WARNING: no musl git mirror; source cross-checks skipped")
    try:
        tables, raw, summary = build_tables(work, musl_gitdir)
    except debian.FetchError as e:
        print(f"generate.py: error: {e}", file=sys.stderr)
        return 1
    for (ver, arch), t in sorted(tables.items()):
        dump_json(t, HERE / f"musl-{ver}-{arch}.json")
    old_loader = None
    lp = HERE / "loader.json"
    if lp.exists():
        old_loader = json.loads(lp.read_text())
    probes = None if args.no_probe else run_probes(work, raw)
    if probes is None:
        log("probes not run; keeping committed probe results")
    dump_json(build_loader(raw, musl_gitdir, probes, old_loader), lp)
    if args.gcompat_src:
        g = build_gcompat(args.gcompat_src.resolve(), args.gcompat_repo,
                          args.gcompat_tag, args.gcompat_commit)
        dump_json(g, HERE / f"gcompat-{args.gcompat_tag}.json")
    else:
        log("no --gcompat-src: committed gcompat table kept unchanged")
    dump_json(build_alpine(), HERE / "alpine.json")
    try:
        glibc.generate(work)  # symbols/glibc-abilists.json
    except debian.FetchError as e:
        print(f"generate.py: error: {e}", file=sys.stderr)
        return 1
    for (ver, arch), (rawn, n) in sorted(summary.items()):
        log(f"musl {ver} {arch}: {n} symbols"
            + (f" (Debian raw {rawn})" if rawn is not None else
               f" ({tables[(ver, arch)]['provenance']['source']})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
