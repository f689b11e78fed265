"""Every Alpine architecture against its real musl loader: Debian's musl for that architecture, run under
qemu-user-static as ``--list`` on programs cross-built at test time (zig, or Debian's cross gcc where zig
cannot build), and muslcheck's model in ldd mode against it, Debian's own patches set aside.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from muslcheck.elf import read_elf_file
from muslcheck.elf.constructors import MACHINES
from muslcheck.elf.relocs import RELOCATION_NAMES
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, LoadResult, Target, load
from muslcheck.ldso.relocs import RELOC_CLASSES
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog, Definition, tables_dir
from muslcheck.targets.directory import DirectoryRoot
from tests.oracle.dlopen import DlopenResult, run_dlopen
from tests.oracle.ldd import LoaderReport, run_list
from tests.oracle.loaders import LoadersUnavailable, available_loaders
from tests.oracle.probe import build_probe, debian_library_tree
from tests.oracle.sandbox import sandbox_problem
from tests.support import unavailable

pytestmark = pytest.mark.oracle
CATALOG = Catalog()


@dataclass(frozen=True)
class Arch:
    debian: str  # Debian's name, for the musl package
    qemu: str  # qemu-user-static binary
    zig: str | None  # zig's glibc target, when zig 0.13 can build for it
    gcc: str | None  # Debian's cross gcc otherwise (zig fails: s390x needs libcalls it lacks, riscv64 start.S)
    cflags: tuple[str, ...] = ()


ARCHES = {
    "aarch64": Arch("arm64", "qemu-aarch64-static", "aarch64-linux-gnu", None),
    "i386": Arch("i386", "qemu-i386-static", "x86-linux-gnu", None),
    "arm": Arch("armhf", "qemu-arm-static", "arm-linux-gnueabihf", None),
    "ppc64": Arch("ppc64el", "qemu-ppc64le-static", "powerpc64le-linux-gnu", None),
    "s390x": Arch("s390x", "qemu-s390x-static", None, "s390x-linux-gnu-gcc"),
    "riscv64": Arch("riscv64", "qemu-riscv64-static", None, "riscv64-linux-gnu-gcc"),
}
assert set(ARCHES) == set(SUPPORTED_ARCHES) - {"x86_64"}

SOURCES = {
    "hello.c": '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n',
    "version.c": '#include <stdio.h>\n#include <gnu/libc-version.h>\n'
                 'int main(void){puts(gnu_get_libc_version());return 0;}\n',
    "dep.c": "int greet_value(void){return 42;}\n",
    "usedep.c": "int greet_value(void);\nint main(void){return greet_value()==42?0:1;}\n",
    "plt.c": '#include <gnu/libc-version.h>\nconst char *plt_version(void){return gnu_get_libc_version();}\n',
    "useplt.c": "const char *plt_version(void);\nint main(void){return plt_version()!=0;}\n",
    # Every class a load relies on: thread-locals in both models, data and function pointers, a GOT load, a
    # PLT call, and a non-PIE program's COPY of a library's object.
    "defs.c": "__thread int tls_gd = 1;\n__thread int tls_ie = 2;\nint shared_data = 5;\n"
              "int shared_func(void){return 7;}\n",
    "classes.c": "extern __thread int tls_gd;\n"
                 'extern __thread int tls_ie __attribute__((tls_model("initial-exec")));\n'
                 "extern int shared_data;\nint shared_func(void);\n"
                 "int (*func_pointer)(void) = shared_func;\nint *data_pointer = &shared_data;\n"
                 "int classes_sum(void){return tls_gd + tls_ie + shared_data + shared_func() + func_pointer()"
                 " + *data_pointer;}\n",
    "useclasses.c": "extern int shared_data;\nint classes_sum(void);\n"
                    "int main(void){return classes_sum() + shared_data == 0;}\n",
    # A hidden ifunc called inside its library: an IRELATIVE relocation, which no musl supports.
    "ifunc.c": "static int ifunc_impl(void){return 3;}\n"
               "static int (*ifunc_resolve(void))(void){return ifunc_impl;}\n"
               '__attribute__((visibility("hidden"))) int ifunc_target(void) __attribute__((ifunc("ifunc_resolve")));\n'
               "int ifunc_call(void){return ifunc_target();}\n",
    "useifunc.c": "int ifunc_call(void);\nint main(void){return ifunc_call()!=3;}\n",
    # dlopen samples: a GOT load of a name musl lacks (fatal even lazily), and a constructor that calls one
    # through the PLT (a lazy dlopen runs it before any lazy binding: musl jumps through an unrelocated slot).
    "got.c": "#include <gnu/libc-version.h>\n"
             "const void *got_address(void){return (const void *)gnu_get_libc_version;}\n",
    "ctor.c": '#include <gnu/libc-version.h>\nconst char *ctor_seen;\n'
              "__attribute__((constructor)) static void ctor(void){ctor_seen = gnu_get_libc_version();}\n",
}
LIB = ["-shared", "-fPIC"]
RPATH = ["-Lapp/lib", "-Wl,-rpath,$ORIGIN/../lib"]
# sample -> (build steps as (output, sources, extra flags), entry, the tokens the loader prints)
SAMPLES = {
    "hello": ([("app/bin/hello", ["hello.c"], [])], "app/bin/hello", set()),
    "glibc-version": ([("app/bin/version", ["version.c"], [])], "app/bin/version",
                      {"version: gnu_get_libc_version"}),
    "missing-dep": ([("build/libdep.so", ["dep.c"], ["-shared", "-fPIC", "-Wl,-soname,libdep.so"]),
                     ("app/bin/app", ["usedep.c"], ["-Lbuild", "-ldep"])], "app/bin/app",
                    {"missing libdep.so", "app: greet_value"}),
    "reloc-plt": ([("app/lib/libplt.so", ["plt.c"], ["-shared", "-fPIC", "-Wl,-soname,libplt.so"]),
                   ("app/bin/app", ["useplt.c"], ["-Lapp/lib", "-lplt", "-Wl,-rpath,$ORIGIN/../lib"])],
                  "app/bin/app", {"libplt.so: gnu_get_libc_version"}),
    "reloc-classes": ([("app/lib/libdefs.so", ["defs.c"], [*LIB, "-Wl,-soname,libdefs.so"]),
                       ("app/lib/libclasses.so", ["classes.c"], [*LIB, "-Wl,-soname,libclasses.so", *RPATH,
                                                                 "-ldefs"]),
                       ("app/bin/app", ["useclasses.c"], ["-fno-pie", "-no-pie", *RPATH, "-lclasses", "-ldefs"])],
                      "app/bin/app", {"missing {GLIBC_LDSO}"}),
    "reloc-irelative": ([("app/lib/libifunc.so", ["ifunc.c"], [*LIB, "-Wl,-soname,libifunc.so"]),
                         ("app/bin/app", ["useifunc.c"], [*RPATH, "-lifunc"])],
                        "app/bin/app", {"libifunc.so: reloc {IRELATIVE}"}),
}

# Where elf/constructors/ reads what a constructor calls: elsewhere a lazy dlopen whose constructor calls a
# name musl lacks is a known gap of the model (the real loader crashes; the model says the library loads).
CONSTRUCTOR_ARCHES = frozenset(MACHINES)
# dlopen-ed by the probe, lazily and now: (build steps, the library)
# (zig links with -z now unless told otherwise: these are lazy, as gcc's are by default.)
LAZY_LIB = [*LIB, "-Wl,-z,lazy"]
DLOPEN_SAMPLES = {
    "dl-got": ([("app/lib/libgot.so", ["got.c"], [*LAZY_LIB, "-Wl,-soname,libgot.so"])], "app/lib/libgot.so"),
    "dl-ctor": ([("app/lib/libctor.so", ["ctor.c"], [*LAZY_LIB, "-Wl,-soname,libctor.so"])], "app/lib/libctor.so"),
    "dl-plt-lazy": ([("app/lib/libplt.so", ["plt.c"], [*LAZY_LIB, "-Wl,-soname,libplt.so"])], "app/lib/libplt.so"),
}
DLOPENED = {  # sample -> the library the probe dlopens: the dlopen samples, and libraries of the ldd samples
    **{sample: lib for sample, (_, lib) in DLOPEN_SAMPLES.items()},
    "reloc-plt": "app/lib/libplt.so",
    "reloc-classes": "app/lib/libclasses.so",
    "reloc-irelative": "app/lib/libifunc.so",
}


def compiler(arch: Arch) -> list[str]:
    if arch.zig is not None:
        if importlib.util.find_spec("ziglang") is None:
            unavailable("zig (the PyPI package ziglang) is not installed: it cross-builds the samples")
        return [sys.executable, "-m", "ziglang", "cc", "-target", arch.zig]
    assert arch.gcc is not None
    if shutil.which(arch.gcc) is None:
        unavailable(f"{arch.gcc} is not installed (Debian package gcc-{arch.gcc.removesuffix('-gcc')})")
    return [arch.gcc]


def build(arch: Arch, out: Path) -> None:
    cc = compiler(arch)
    for name, text in SOURCES.items():
        (out / "src").mkdir(parents=True, exist_ok=True)
        (out / "src" / name).write_text(text)
    steps_of = {**{sample: steps for sample, (steps, _, _) in SAMPLES.items()},
                **{sample: steps for sample, (steps, _) in DLOPEN_SAMPLES.items()}}
    for sample, steps in steps_of.items():
        root = out / sample
        for output, sources, flags in steps:
            (root / output).parent.mkdir(parents=True, exist_ok=True)
            cmd = [*cc, "-O1", "-fno-stack-protector", "-o", output, *(str(out / "src" / s) for s in sources),
                   *flags]
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            if proc.returncode:
                pytest.fail(f"{' '.join(cmd)}:\n{proc.stderr}")
        shutil.rmtree(root / "build", ignore_errors=True)  # missing-dep: the library is not shipped


def real_loaders(name: str) -> dict[str, Path]:
    """Debian's musl loaders for architecture ``name``, by version, run under qemu-user (skipped, or failed in
    CI, when they cannot be)."""
    arch = ARCHES[name]
    if problem := sandbox_problem():
        unavailable(problem)
    if shutil.which(arch.qemu) is None:
        unavailable(f"{arch.qemu} is not installed (Debian package qemu-user-static)")
    try:
        return available_loaders(arch=arch.debian, runner=(arch.qemu,))
    except LoadersUnavailable as e:
        unavailable(f"qemu cannot run musl's {name} loader here: {e}")


@pytest.fixture(scope="module", params=sorted(ARCHES))
def arch_setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[str, Arch, dict[str, Path], Path]:
    name: str = request.param
    arch = ARCHES[name]
    loaders = real_loaders(name)
    out = tmp_path_factory.mktemp(f"arch-{name}")
    build(arch, out)
    return name, arch, loaders, out


def tokens(r: LoaderReport) -> set[str]:
    return ({f"missing {n}" for n, _ in r.missing_libraries}
            | {f"{Path(f).name}: {s}" for f, s in r.unresolved_symbols}
            | {f"{Path(f).name}: reloc {t}" for f, t in r.unsupported_relocations}
            | {f"{Path(f).name}: IE TLS {s}" for f, s, _ in r.tls_errors}
            | set(r.other_errors))


def debian_target(version: str, arch: str) -> Target:
    """The target as Debian's libc.so for ARCH is: the table's recorded Debian deviations put back."""
    upstream = CATALOG.musl_exports(version, arch)
    raw = json.loads((tables_dir() / f"musl-{version}-{arch}.json").read_text())
    symbols = dict(upstream.symbols)
    for d in raw["deviations"]:
        if d["action"] == "removed":
            symbols[d["name"]] = Definition("FUNC", "GLOBAL", 0)
        elif d["action"] == "added":
            symbols.pop(d["name"], None)
    return Target(arch, replace(upstream, symbols=symbols), CATALOG.loader_rules(version))


def model_load(root: Path, entry: str, version: str, arch: str) -> LoadResult:
    directory = DirectoryRoot(root)
    return load(directory, FactsCache(directory), debian_target(version, arch), "/" + entry, Context.EXECUTABLE)


def model_tokens(result: LoadResult) -> set[str]:
    return ({f"missing {m.name}" for m in result.missing}
            | {f"{Path(o.path).name}: {u.name}" for o in result.objects for u in o.unresolved
               if u.effect is Effect.FATAL}
            | {f"{Path(o.path).name}: reloc {t}" for o in result.objects for t, _ in o.unsupported_relocations})


def expected_tokens(arch: str, sample: str) -> set[str]:
    """The sample's tokens on ARCH: ``{IRELATIVE}`` is that architecture's R_*_IRELATIVE number;
    ``{GLIBC_LDSO}`` is glibc's ld.so, which a library with general-dynamic TLS needs for __tls_get_addr
    (s390x: __tls_get_offset), except where that TLS dialect is TLSDESC (aarch64)."""
    names = RELOCATION_NAMES[arch]
    [irelative] = [n for n, text in names.items() if text == names[0].removesuffix("NONE") + "IRELATIVE"]
    ldso = Path(CATALOG.glibc_interpreters[arch]).name
    return {token.format(IRELATIVE=irelative, GLIBC_LDSO=ldso) for token in SAMPLES[sample][2]
            if not (arch == "aarch64" and "{GLIBC_LDSO}" in token)}


def test_every_alpine_arch_has_a_loader_version(arch_setup: tuple[str, Arch, dict[str, Path], Path]) -> None:
    """The loaders qemu ran report the versions the tables cover (riscv64: 1.2.5 and 1.2.6 only)."""
    name, _, loaders, _ = arch_setup
    assert {"1.2.5", "1.2.6"} <= set(loaders)
    assert set(loaders) <= set(CATALOG.musl_versions)
    for version in loaders:
        assert (tables_dir() / f"musl-{version}-{name}.json").is_file()


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_real_loader_on_cross_built_samples(arch_setup: tuple[str, Arch, dict[str, Path], Path],
                                            sample: str) -> None:
    name, arch, loaders, out = arch_setup
    entry, expected = SAMPLES[sample][1], expected_tokens(name, sample)
    ldso_arch = CATALOG.loader_rules("1.2.5").ldso_names[name].removeprefix("ld-musl-").removesuffix(".so.1")
    for version, loader in loaders.items():
        rc, report, raw = run_list(loader, out / sample / entry, arch=ldso_arch, runner=(arch.qemu,))
        assert tokens(report) == expected, (version, raw)
        assert rc == (127 if expected else 0), (version, raw)
        assert report.loader_name == CATALOG.glibc_interpreters[name], raw


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_model_agrees_with_the_real_loader(arch_setup: tuple[str, Arch, dict[str, Path], Path],
                                           sample: str) -> None:
    name, arch, loaders, out = arch_setup
    _, entry, _ = SAMPLES[sample]
    ldso_arch = CATALOG.loader_rules("1.2.5").ldso_names[name].removeprefix("ld-musl-").removesuffix(".so.1")
    for version, loader in loaders.items():
        _, report, raw = run_list(loader, out / sample / entry, arch=ldso_arch, runner=(arch.qemu,))
        result = model_load(out / sample, entry, version, name)
        assert model_tokens(result) == tokens(report), (version, raw)
        model_counts = sorted(((o.path.rsplit("/", 1)[-1], t), n) for o in result.objects
                              for t, n in o.unsupported_relocations)
        loader_counts = sorted(((Path(f).name, t), n) for (f, t), n in report.unsupported_relocation_counts)
        assert model_counts == loader_counts, (version, raw)


def test_the_samples_exercise_every_usual_class(arch_setup: tuple[str, Arch, dict[str, Path], Path]) -> None:
    """The relocation types the toolchain emitted for reloc-classes, as musl's arch/*/reloc.h classes them: the
    model comparison above means something only if these are all there (RISC-V has no GOT class: its GOT
    slots are plain R_RISCV_64; ppc64 reaches data through the TOC). zig reaches a library's object through
    the GOT even in a non-PIE program: only gcc's programs COPY it."""
    name, arch, _, out = arch_setup
    app = out / "reloc-classes" / "app"
    types = {t for f in (app / "bin" / "app", *(app / "lib").iterdir()) for t, _ in read_elf_file(f).relocations}
    classes = {RELOC_CLASSES[name].get(t) for t in types}
    assert None not in classes, sorted(t for t in types if t not in RELOC_CLASSES[name])
    usual = ({"SYMBOLIC", "PLT", "TPOFF"} | ({"GOT"} if name not in ("riscv64", "ppc64") else set())
             | ({"COPY"} if arch.gcc else set()))
    assert usual <= classes, sorted(c for c in classes if c)
    assert {"DTPMOD", "DTPOFF"} <= classes or "TLSDESC" in classes, sorted(c for c in classes if c)


@pytest.fixture(scope="module")
def dlopen_probe(arch_setup: tuple[str, Arch, dict[str, Path], Path]) -> Path:
    """The dlopen probe built for this architecture's musl (any version's libc.so links it: it needs only
    dlopen, dlerror and stdio)."""
    name, _, loaders, out = arch_setup
    return build_probe(name, next(iter(loaders.values())), out / "probe")


def musl_arch(name: str) -> str:
    """musl's name of the architecture, as in ld-musl-ARCH.so.1."""
    return CATALOG.loader_rules("1.2.5").ldso_names[name].removeprefix("ld-musl-").removesuffix(".so.1")


@dataclass(frozen=True)
class ModelDlopen:
    loads: bool
    names: frozenset[str]  # what it fails on: fatal symbols, missing libraries, relocation types, TLS names
    at_init: frozenset[str]  # the fatal symbols the library's constructor calls


def model_dlopen(root: Path, lib: str, version: str, arch: str, mode: str,
                 provides: tuple[str, ...] = ()) -> ModelDlopen:
    directory = DirectoryRoot(root)
    ctx = Context.DLOPEN_LAZY if mode == "lazy" else Context.DLOPEN_NOW
    result = load(directory, FactsCache(directory), debian_target(version, arch), "/" + lib, ctx,
                  host_provides=provides)
    fatal = [u for o in result.objects for u in o.unresolved if u.effect is Effect.FATAL]
    names = ({u.name for u in fatal} | {m.name for m in result.missing}
             | {f"relocation type {t}" for o in result.objects for t, _ in o.unsupported_relocations}
             | {e.symbol or Path(e.definer).name for o in result.objects for e in o.tls_errors})
    loads = not (names or result.relr_unsupported)
    return ModelDlopen(loads, frozenset(names), frozenset(u.name for u in fatal if u.called_at_init))


def assert_dlopen_agrees(real: DlopenResult, model: ModelDlopen, where: object) -> None:
    """The same outcome, and a failure the loader names is one the model names (a constructor's call through an
    unrelocated slot kills the process instead: the model must say the constructor calls it)."""
    assert model.loads == real.ok, (where, real, model)
    if real.ok:
        return
    if real.returncode < 0:
        assert model.at_init, (where, real, model)
    else:
        assert any(name in (real.error or "") for name in model.names), (where, real, model)


@pytest.mark.parametrize("mode", ["lazy", "now"])
@pytest.mark.parametrize("sample", sorted(DLOPENED))
def test_dlopen_contexts_agree_with_the_real_loader(arch_setup: tuple[str, Arch, dict[str, Path], Path],
                                                    dlopen_probe: Path, sample: str, mode: str) -> None:
    name, arch, loaders, out = arch_setup
    lib = DLOPENED[sample]
    known_gap = sample == "dl-ctor" and mode == "lazy" and name not in CONSTRUCTOR_ARCHES
    for version, loader in loaders.items():
        real = run_dlopen(loader, dlopen_probe, out / sample / lib, mode, arch=musl_arch(name), runner=(arch.qemu,))
        model = model_dlopen(out / sample, lib, version, name, mode)
        if known_gap:  # the loader crashes in the constructor; the model, not reading its code, says it loads
            assert real.returncode < 0 and model.loads, (version, real, model)
            continue
        assert_dlopen_agrees(real, model, (version, sample, mode))
    if known_gap:
        pytest.xfail(f"constructor calls are read on {sorted(CONSTRUCTOR_ARCHES)} only (elf/constructors/)")


def test_a_constructors_call_fails_only_a_lazy_dlopen_by_the_constructor_rule(
        arch_setup: tuple[str, Arch, dict[str, Path], Path]) -> None:
    """dl-ctor: under RTLD_NOW the name is an ordinary error; lazily it is fatal only because the constructor
    calls it (UnresolvedSymbol.called_at_init), which is what the report says."""
    name, _, loaders, out = arch_setup
    if name not in CONSTRUCTOR_ARCHES:
        pytest.xfail(f"constructor calls are read on {sorted(CONSTRUCTOR_ARCHES)} only (elf/constructors/)")
    for version in loaders:
        lazy = model_dlopen(out / "dl-ctor", DLOPENED["dl-ctor"], version, name, "lazy")
        now = model_dlopen(out / "dl-ctor", DLOPENED["dl-ctor"], version, name, "now")
        assert lazy.at_init == {"gnu_get_libc_version"} and not now.at_init, (version, lazy, now)


# Real glibc libraries of each architecture: GCC's runtime from Debian trixie (14.2.0-19), pinned by sha256 of the
# .deb per Debian architecture. They bring every relocation class of real code, libstdc++'s and libatomic's
# constructors (aarch64: outline atomics call __getauxval), TLS and glibc's versioned names.
GCC_RUNTIME_VERSION = "14.2.0-19"
GCC_RUNTIME: dict[str, dict[str, str]] = {  # package -> Debian architecture -> sha256
    "libgcc-s1": {
        "arm64": "1108bc87879833d6d9a145f22a4a15cddb34e065b4b5f4b97bee586adbac2851",
        "i386": "a4c71fd856d2a48a7505a087b4186e3cca23f94603c05e3fb7c799b27e72f761",
        "armhf": "25910c3a0bce3985e388de445244578b7922dc670c9bba1c8673779b89447873",
        "ppc64el": "9fef01c88bc508ff05ff9ce5d0cc05de36798591e060b07749c3835616ed5696",
        "s390x": "b5e87f11a8ac0537d500bf2dba37165bf8d25b5b44add1035a32deddbd4bfdda",
        "riscv64": "16d3f9f534028615413d23f649e5d246baef48fe7db739ad564ef8b9a6e5587c",
    },
    "libstdc++6": {
        "arm64": "6669b0c52a2e7c6af9adfdabce3ff6e286065cdfbc7b85280862b5f799daebee",
        "i386": "b6020260b92a97ac33ae58a73b16f3ab31fed7632e9b861f7cd5fc393facd6ed",
        "armhf": "9c82eecc30961a3da3e062c0dba8ce076736059f4b8e7794c803985e75aea48b",
        "ppc64el": "ee601ab87b7c7ac01f3d7be0fe2423f0ddc3a51b46d3331b4e9dff4110e6a8b9",
        "s390x": "6a91f4a1c8c30dc6d0a23ad7ead8a56271b9f6966d6d74734f4b423cdfe5c21b",
        "riscv64": "f285313f34e0d8f65463c669fac8eb29760a3f3fd6459005dd3110cdd2b10fd7",
    },
    "libatomic1": {
        "arm64": "7ccff90234484bf21ae5ecb79d25b6a84b2f4038f65dd139085b2e3a937cd8dc",
        "i386": "99b97383f7b8c768e04b5bed83b3854c5a4d9eaed2558632508fde8ef2ec7906",
        "armhf": "e4a4dc17913ded43f2a8571f9c8c214d05534632fc5a41705d6b39acd8d5f4a4",
        "ppc64el": "fd421018c73e8f5a2628f233ff1d277d1ebf797b9e204a59e34ed6072167544a",
        "s390x": "79ce585c987c08702360d5d973fa6f4c596a5c4802d7e3f06294b46f03b0456a",
        "riscv64": "ebaf12b2de00a4b567f70c629c0ff744dc92491029b3219d59c05c733f200c65",
    },
}


def gcc_runtime_tree(name: str, arch: Arch, out: Path) -> tuple[Path, list[str]]:
    """A tree whose /lib holds the pinned packages' libraries (with their SONAME links) and an empty stand-in
    for glibc's ld.so; and the libraries to dlopen (the files, not the links)."""
    lib = out / "lib"
    pinned = {package: (GCC_RUNTIME_VERSION, digests[arch.debian]) for package, digests in GCC_RUNTIME.items()}
    debian_library_tree(lib, name, arch.debian, pinned, "usr/lib/*-linux-gnu*/*.so*",
                        Path(CATALOG.glibc_interpreters[name]).name)
    return out, sorted(f"lib/{p.name}" for p in lib.iterdir()
                       if not p.is_symlink() and p.name != Path(CATALOG.glibc_interpreters[name]).name)


@pytest.mark.parametrize("mode", ["lazy", "now"])
def test_real_debian_libraries_agree_with_the_real_loader(arch_setup: tuple[str, Arch, dict[str, Path], Path],
                                                          dlopen_probe: Path, mode: str) -> None:
    name, arch, loaders, out = arch_setup
    tree = out / "debian"
    if not tree.exists():
        gcc_runtime_tree(name, arch, tree)
    libraries = sorted(f"lib/{p.name}" for p in (tree / "lib").iterdir()
                       if not p.is_symlink() and p.name.startswith(("libgcc_s", "libstdc++", "libatomic")))
    assert len(libraries) == 3, libraries
    gaps = []
    for version, loader in loaders.items():
        for lib in libraries:
            real = run_dlopen(loader, dlopen_probe, tree / lib, mode, arch=musl_arch(name), runner=(arch.qemu,),
                              path_file=str(tree / "lib"))
            model = model_dlopen(tree, lib, version, name, mode)
            if mode == "lazy" and name not in CONSTRUCTOR_ARCHES and real.returncode < 0 and model.loads:
                gaps.append(f"{version} {lib}")  # a crash in dlopen that the model does not read the code for
                continue
            assert_dlopen_agrees(real, model, (version, lib, mode))
    if gaps:
        pytest.xfail(f"constructor calls are read on {sorted(CONSTRUCTOR_ARCHES)} only (elf/constructors/); "
                     f"a lazy dlopen crashes: {', '.join(gaps)}")
