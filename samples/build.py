#!/usr/bin/env python3
"""Build muslcheck's sample scenario trees: ``build.py OUTDIR [--only NAME ...] [--list]``.

Each sample is laid out like a root filesystem under ``OUTDIR/<sample>/``; ``OUTDIR/manifest.json``
describes them and ``OUTDIR/_harness/dlopen_probe`` is the musl-built dlopen harness.
Standard library only; needs gcc, g++, musl-gcc and readelf (``--demo``: gcc, g++ and readelf only).
See samples/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
HARNESS_SRC = HERE / "harness" / "dlopen_probe.c"
HARNESS = "_harness/dlopen_probe"
HOST_HARNESS = "_harness/host_probe"  # the same probe, exporting what a JVM and CPython export (host_symbols.c)
CFLAGS = ("-O2", "-Wall", "-Wno-deprecated-declarations")


@dataclass(frozen=True)
class Unit:
    """One ELF file of a sample: ``path`` is inside the sample root; ``{root}`` in flags is expanded."""

    path: str
    sources: tuple[str, ...]
    role: str = "exe"  # exe | lib
    libc: str = "glibc"  # glibc | musl
    flags: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # undefined dynamic symbols the build must have produced
    relocs: tuple[str, ...] = ()  # "TYPE SYMBOL" (or "TYPE") pairs readelf -r must show
    ship: bool = True  # False: needed only to link, removed from the tree afterwards


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    units: tuple[Unit, ...]
    entry: str
    dlopen: tuple[str, ...] = ()  # libraries meant for the dlopen harness


def exe(name: str, src: str, **kw: object) -> Unit:
    return Unit(f"app/bin/{name}", (src,), **kw)  # type: ignore[arg-type]


def lib(path: str, src: str, **kw: object) -> Unit:
    return Unit(path, (src,), role="lib", **kw)  # type: ignore[arg-type]


L = ("-L{root}/app/lib",)
RPATH = ("-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
RUNPATH = ("-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
GREET = lib("app/lib/libdep.so", "greet.c")
CHAIN_B = lib("app/lib/libchainb.so", "chain_b.c")
CHAIN_A = lib("app/lib/libchaina.so", "chain_a.c", flags=(*L, "-lchainb"))


def chain_exe(dtags: tuple[str, ...]) -> Unit:
    return exe("app", "use_chain.c", flags=(*L, "-Wl,-rpath-link,{root}/app/lib", "-lchaina", *dtags))


def glibc_only(name: str, src: str, symbol: str, what: str) -> Sample:
    return Sample(f"glibc-{name}", f"glibc exe importing {symbol} ({what})",
                  (exe(name, src, imports=(symbol,)),), f"app/bin/{name}")


SAMPLES: tuple[Sample, ...] = (
    Sample("hello", "glibc hello world", (exe("hello", "hello.c", imports=("puts",)),), "app/bin/hello"),
    Sample("hello-musl", "musl-gcc hello world",
           (Unit("app/bin/hello", ("hello.c",), libc="musl"),), "app/bin/hello"),
    Sample("musl-lib", "musl exe using a musl shared library through RPATH $ORIGIN/../lib",
           (lib("app/lib/libgreet.so", "greet.c", libc="musl"),
            Unit("app/bin/app", ("use_greet.c",), libc="musl",
                 flags=("-L{root}/app/lib", "-l:libgreet.so", *RPATH))), "app/bin/app"),
    Sample("fortify", "-O2 -D_FORTIFY_SOURCE=2: __memcpy_chk, __sprintf_chk, __printf_chk",
           (exe("fortify", "fortify.c", flags=("-D_FORTIFY_SOURCE=2",),
                imports=("__memcpy_chk", "__sprintf_chk", "__printf_chk")),), "app/bin/fortify"),
    glibc_only("backtrace", "glibc_backtrace.c", "backtrace", "execinfo"),
    glibc_only("error", "glibc_error.c", "error", "error.h"),
    glibc_only("version", "glibc_version.c", "gnu_get_libc_version", "gnu/libc-version.h"),
    glibc_only("atfork", "glibc_atfork.c", "__register_atfork", "pthread_atfork via libc_nonshared.a"),
    glibc_only("qsort-r", "glibc_qsort_r.c", "qsort_r", "musl >= 1.2.3 has it"),
    glibc_only("statx", "glibc_statx.c", "statx", "musl >= 1.2.5 has it"),
    Sample("lfs64-fob", "-D_FILE_OFFSET_BITS=64 with plain names: glibc x86_64 headers still redirect to *64",
           (exe("lfs64-fob", "lfs64_fob.c", flags=("-D_FILE_OFFSET_BITS=64",),
                imports=("fopen64", "open64", "lseek64", "stat64", "readdir64", "posix_fallocate64")),),
           "app/bin/lfs64-fob"),
    Sample("lfs64-explicit", "-D_LARGEFILE64_SOURCE: fopen64 lseek64 stat64 posix_fallocate64 readdir64_r",
           (exe("lfs64-explicit", "lfs64_explicit.c", flags=("-D_LARGEFILE64_SOURCE",),
                imports=("fopen64", "lseek64", "stat64", "posix_fallocate64", "readdir64_r")),),
           "app/bin/lfs64-explicit"),
    Sample("weak-undef", "weak undefined muslcheck_absent, checked before the call",
           (exe("weak-undef", "weak_undef.c", imports=("muslcheck_absent",)),), "app/bin/weak-undef"),
    Sample("rpath-origin", "exe with DT_RPATH $ORIGIN/../lib -> libdep.so",
           (GREET, exe("app", "use_greet.c", flags=(*L, "-ldep", *RPATH))), "app/bin/app"),
    Sample("runpath-origin", "exe with DT_RUNPATH $ORIGIN/../lib -> libdep.so",
           (GREET, exe("app", "use_greet.c", flags=(*L, "-ldep", *RUNPATH))), "app/bin/app"),
    Sample("rpath-chain", "exe (RPATH) -> libchaina (no rpath) -> libchainb, found via the exe's RPATH",
           (CHAIN_B, CHAIN_A, chain_exe(RPATH)), "app/bin/app"),
    Sample("runpath-chain", "exe (RUNPATH) -> libchaina (no rpath) -> libchainb: musl inherits RUNPATH, "
           "glibc does not", (CHAIN_B, CHAIN_A, chain_exe(RUNPATH)), "app/bin/app"),
    Sample("missing-dep", "exe needs libdep.so, which is not shipped",
           (lib("app/lib/libdep.so", "greet.c", ship=False),
            exe("app", "use_greet.c", flags=(*L, "-ldep", *RPATH))), "app/bin/app"),
    Sample("ifunc", "library exporting an IFUNC (invisible to musl) plus an internal one (IRELATIVE)",
           (lib("app/lib/libifunc.so", "ifunc_lib.c"),
            exe("app", "use_ifunc.c", flags=(*L, "-lifunc", *RPATH), imports=("ifunc_add",))),
           "app/bin/app", dlopen=("app/lib/libifunc.so",)),
    Sample("ie-tls", "library with initial-exec TLS: fine at start-up, fatal under dlopen",
           (lib("app/lib/libtls.so", "ie_tls.c", flags=("-ftls-model=initial-exec",)),
            exe("app", "use_tls.c", flags=(*L, "-ltls", *RPATH))),
           "app/bin/app", dlopen=("app/lib/libtls.so",)),
    Sample("relr", "DT_RELR library (-z pack-relative-relocs) whose constructor reads relocated pointers",
           (lib("app/lib/librelr.so", "relr.c", flags=("-Wl,-z,pack-relative-relocs",)),),
           "app/lib/librelr.so", dlopen=("app/lib/librelr.so",)),
    Sample("copy-reloc", "non-PIE exe reading a library's data object (R_X86_64_COPY)",
           (lib("app/lib/libdata.so", "copy_data.c"),
            exe("app", "use_copy.c", flags=("-fno-pie", "-no-pie", *L, "-ldata", *RPATH),
                relocs=("R_X86_64_COPY shared_table",))), "app/bin/app"),
    Sample("reloc-plt", "lazy library reaching gnu_get_libc_version only via the PLT (JUMP_SLOT)",
           (lib("app/lib/libplt.so", "reloc_plt.c", imports=("gnu_get_libc_version",)),),
           "app/lib/libplt.so", dlopen=("app/lib/libplt.so",)),
    Sample("reloc-plt-now", "reloc-plt built with -z now (DT_BIND_NOW, DF_1_NOW)",
           (lib("app/lib/libpltnow.so", "reloc_plt.c", flags=("-Wl,-z,now",),
                imports=("gnu_get_libc_version",)),),
           "app/lib/libpltnow.so", dlopen=("app/lib/libpltnow.so",)),
    Sample("reloc-got", "library taking gnu_get_libc_version's address in code (GLOB_DAT)",
           (lib("app/lib/libgot.so", "reloc_got.c", imports=("gnu_get_libc_version",)),),
           "app/lib/libgot.so", dlopen=("app/lib/libgot.so",)),
    Sample("reloc-abs64", "library with a static pointer to gnu_get_libc_version (R_X86_64_64)",
           (lib("app/lib/libabs64.so", "reloc_abs64.c", imports=("gnu_get_libc_version",)),),
           "app/lib/libabs64.so", dlopen=("app/lib/libabs64.so",)),
    Sample("cxx", "C++ library needing libstdc++.so.6 and libgcc_s.so.1 (not shipped)",
           (lib("app/lib/libcxx.so", "cxx.cpp"),), "app/lib/libcxx.so"),
    Sample("gcc-s", "C library needing libgcc_s.so.1 for _Unwind_Backtrace (not shipped)",
           (lib("app/lib/libgccs.so", "gcc_s.c", imports=("_Unwind_Backtrace",)),), "app/lib/libgccs.so"),
    Sample("jni", "JNI library, glibc (fortified) and musl builds: JNI_GetCreatedJavaVMs comes from the JVM",
           (lib("app/lib/glibc/libdemojni.so", "jni_native.c", flags=("-D_FORTIFY_SOURCE=2",),
                imports=("__memcpy_chk", "__snprintf_chk", "JNI_GetCreatedJavaVMs")),
            lib("app/lib/musl/libdemojni.so", "jni_native.c", libc="musl", imports=("JNI_GetCreatedJavaVMs",))),
           "app/lib/glibc/libdemojni.so"),
    Sample("py-ext", "CPython extension module, glibc and musl builds: PyLong_FromLong comes from the interpreter",
           (lib("app/lib/glibc/demo.so", "py_ext.c", imports=("PyLong_FromLong",)),
            lib("app/lib/musl/demo.so", "py_ext.c", libc="musl", imports=("PyLong_FromLong",))),
           "app/lib/glibc/demo.so"),
    Sample("no-libc-needed", "library linked -nostdlib calling strlen: no DT_NEEDED names libc",
           (lib("app/lib/libnolibc.so", "no_libc.c", flags=("-nostdlib", "-fno-builtin"),
                imports=("strlen",)),), "app/lib/libnolibc.so", dlopen=("app/lib/libnolibc.so",)),
)


# One of each verdict, built with gcc/g++ alone: what a fresh machine can show.
DEMO = ("hello", "fortify", "cxx", "ifunc", "reloc-plt")
# The Debian and Ubuntu packages that bring each tool (libc6-dev: the C headers that gcc alone lacks).
APT_PACKAGES = {"gcc": ("gcc", "libc6-dev"), "g++": ("g++",), "readelf": ("binutils",), "musl-gcc": ("musl-tools",)}


def apt_hint(tools: list[str]) -> str:
    packages = sorted({p for t in tools for p in APT_PACKAGES.get(t, (t,))})
    return f"on Debian or Ubuntu: sudo apt-get install {' '.join(packages)}"


def compiler(unit: Unit) -> str:
    if unit.libc == "musl":
        return "musl-gcc"
    return "g++" if any(s.endswith(".cpp") for s in unit.sources) else "gcc"


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        hint = f"\n({apt_hint([cmd[0]])})" if "No such file or directory" in proc.stderr else ""
        sys.exit(f"build.py: {' '.join(cmd)} failed:\n{proc.stderr}{hint}")
    return proc.stdout


def undefined_symbols(path: Path) -> set[str]:
    out = run(["readelf", "--dyn-syms", "-W", str(path)])
    return {f[7].split("@")[0] for f in (line.split() for line in out.splitlines())
            if len(f) >= 8 and f[6] == "UND"}


def relocations(path: Path) -> set[str]:
    out = run(["readelf", "-r", "-W", str(path)])
    rows = [f for f in (line.split() for line in out.splitlines()) if len(f) >= 3 and f[2].startswith("R_")]
    return {f[2] for f in rows} | {f"{f[2]} {f[4].split('@')[0]}" for f in rows if len(f) >= 5}


def build_unit(unit: Unit, root: Path) -> None:
    out = root / unit.path
    out.parent.mkdir(parents=True, exist_ok=True)
    shape = ("-shared", "-fPIC") if unit.role == "lib" else ()
    flags = [f.replace("{root}", str(root)) for f in unit.flags]
    run([compiler(unit), *CFLAGS, *shape, "-o", str(out), *(str(SRC / s) for s in unit.sources), *flags])
    missing = set(unit.imports) - undefined_symbols(out)
    if missing:
        sys.exit(f"build.py: {unit.path} does not import {sorted(missing)}")
    if missing := set(unit.relocs) - relocations(out):
        sys.exit(f"build.py: {unit.path} lacks relocations {sorted(missing)}")


def build_sample(sample: Sample, outdir: Path) -> dict[str, object]:
    root = outdir / sample.name
    shutil.rmtree(root, ignore_errors=True)
    for unit in sample.units:
        build_unit(unit, root)
    for unit in sample.units:
        if not unit.ship:
            (root / unit.path).unlink()
    return {
        "name": sample.name,
        "description": sample.description,
        "files": {u.path: {"role": u.role, "libc": u.libc} for u in sample.units if u.ship},
        "entry": sample.entry,
        "dlopen": list(sample.dlopen),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", type=Path)
    parser.add_argument("--only", action="append", metavar="NAME", help="build only this sample (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the samples and exit")
    parser.add_argument("--demo", action="store_true", help=f"build the README demo: {', '.join(DEMO)} (gcc only)")
    args = parser.parse_args(argv)
    if args.demo:
        args.only = [*(args.only or ()), *DEMO]
    if args.list:
        for s in SAMPLES:
            print(f"{s.name:16} {s.description}")
        return 0
    if args.outdir is None:
        parser.error("OUTDIR is required")
    chosen = [s for s in SAMPLES if not args.only or s.name in args.only]
    if unknown := set(args.only or ()) - {s.name for s in SAMPLES}:
        parser.error(f"unknown sample(s): {', '.join(sorted(unknown))}")
    # The dlopen harness needs musl-gcc; a build of glibc samples alone (the README demo) needs only gcc.
    with_harness = not args.demo and (not args.only or shutil.which("musl-gcc") is not None)
    needed = {"readelf", *(compiler(u) for s in chosen for u in s.units)} | ({"musl-gcc"} if with_harness else set())
    if missing := sorted(t for t in needed if shutil.which(t) is None):
        sys.exit(f"build.py: missing tools: {', '.join(missing)} ({apt_hint(missing)})")
    outdir: Path = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    if with_harness:
        (outdir / HARNESS).parent.mkdir(exist_ok=True)
        run(["musl-gcc", *CFLAGS, "-o", str(outdir / HARNESS), str(HARNESS_SRC)])
        run(["musl-gcc", *CFLAGS, "-rdynamic", "-o", str(outdir / HOST_HARNESS), str(HARNESS_SRC),
             str(HARNESS_SRC.parent / "host_symbols.c")])
    manifest = {"harness": HARNESS if with_harness else None,
                "host_harness": HOST_HARNESS if with_harness else None,
                "samples": [build_sample(s, outdir) for s in chosen]}
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"build.py: built {len(chosen)} sample(s) in {outdir}: {', '.join(s.name for s in chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
