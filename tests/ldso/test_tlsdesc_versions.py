"""Relocation classes by musl version (relocs.RELOC_SINCE): R_RISCV_TLSDESC (type 12) is mapped only since musl
1.2.5; musl 1.2.4 says "unsupported relocation type 12". The model on a synthetic library, then against Debian's
real riscv64 loaders under qemu on a library zig built with TLS descriptors.

Debian ships riscv64 musl only from trixie: 1.2.5 and 1.2.6. Its 1.2.2-1.2.4 do not exist, so the "before 1.2.5"
side rests on musl's source (v1.2.4's arch/riscv64/reloc.h has no REL_TLSDESC) and on a one-off run of musl 1.2.4
built from its tag (docs/symbols.md, "Relocation types by version")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from muslcheck.elf import read_elf_file
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, LoadResult, RelocationMemo, load
from muslcheck.ldso.relocs import RELOC_CLASSES, RELOC_SINCE, reloc_classes
from muslcheck.ldso.tables import SUPPORTED_ARCHES, tables_dir, version_key
from muslcheck.targets.directory import DirectoryRoot
from tests.elf.elfbuilder import ElfSpec, Sym
from tests.ldso.synthetic import CATALOG, musl
from tests.oracle.dlopen import run_dlopen
from tests.oracle.ldd import run_list
from tests.oracle.loaders import LoadersUnavailable, available_loaders
from tests.oracle.probe import MUSL_TARGETS, build_probe, compile_objects, musl_dev, zig
from tests.oracle.sandbox import run_loader, sandbox_problem
from tests.support import unavailable

R_RISCV_TLSDESC = 12  # include/elf.h
EM_RISCV, STT_TLS = 243, 6
# The versions with a riscv64 table (no Alpine release ships riscv64 with musl before 1.2.5; 1.2.4's is derived
# from the source), and the loaders of Debian's riscv64 musl package, as last checked.
RISCV64_VERSIONS = tuple(v for v in CATALOG.musl_versions if (tables_dir() / f"musl-{v}-riscv64.json").is_file())
DEBIAN_RISCV64 = ("1.2.5", "1.2.6")
QEMU = "qemu-riscv64-static"


def library_with_tlsdesc() -> bytes:
    """A riscv64 library that defines a thread-local and reaches it, and its own TLS block, by TLS descriptors."""
    return ElfSpec(machine=EM_RISCV, soname="libtls.so", tls=True,
                   symbols=[Sym("tls_value", type=STT_TLS, shndx=5, value=0)],
                   relocations=[("rela", R_RISCV_TLSDESC, 1), ("rela", R_RISCV_TLSDESC, 0)]).build().data


def loads(result: LoadResult) -> bool:
    return not (result.missing or any(o.unresolved or o.unsupported_relocations or o.tls_errors
                                      for o in result.objects))


def test_every_type_that_appears_later_is_a_mapped_type_of_a_known_version() -> None:
    for (machine, rtype), since in RELOC_SINCE.items():
        assert machine in SUPPORTED_ARCHES
        assert rtype in RELOC_CLASSES[machine]
        assert since in CATALOG.musl_versions


@pytest.mark.parametrize("version", CATALOG.musl_versions)
def test_classes_by_version_withhold_exactly_what_is_not_there_yet(version: str) -> None:
    for machine, classes in RELOC_CLASSES.items():
        later = {t for (m, t), since in RELOC_SINCE.items()
                 if m == machine and version_key(since) > version_key(version)}
        assert reloc_classes(machine, version) == {t: c for t, c in classes.items() if t not in later}
    assert (R_RISCV_TLSDESC in reloc_classes("riscv64", version)) is (version_key(version) >= (1, 2, 5))


def test_the_model_reports_tlsdesc_unsupported_before_1_2_5(tmp_path: Path) -> None:
    """Every relocation of type 12 (one against a symbol, one against the library's own TLS) is unsupported at
    1.2.4, in each context; one memo serves every version in turn without mixing their plans."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libtls.so").write_bytes(library_with_tlsdesc())
    directory, memo = DirectoryRoot(tmp_path), RelocationMemo()
    facts = FactsCache(directory)
    assert "1.2.4" in RISCV64_VERSIONS
    for version in (*RISCV64_VERSIONS, *reversed(RISCV64_VERSIONS)):
        target = musl(version, "riscv64")
        for context in (Context.EXECUTABLE, Context.DLOPEN_NOW, Context.DLOPEN_LAZY):
            result = load(directory, facts, target, "/lib/libtls.so", context, memo=memo)
            [lib] = [o for o in result.objects if o.path == "/lib/libtls.so"]
            before = version_key(version) < (1, 2, 5)
            assert lib.unsupported_relocations == (((R_RISCV_TLSDESC, 2),) if before else ()), (version, context)
            assert loads(result) is not before


# The real loaders: a library whose thread-local is reached by a TLS descriptor (zig's clang: -mtls-dialect=desc;
# Debian's gcc-12 cannot emit them for RISC-V), and a musl program that calls it and checks the value it reads.
TLS_SOURCE = ("__thread int tls_value = 41;\n"
              "int tls_next(void){return ++tls_value;}\n")
APP_SOURCE = "int tls_next(void);\nint main(void){return tls_next() == 42 && tls_next() == 43 ? 0 : 3;}\n"


def run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        pytest.fail(f"{' '.join(cmd)}:\n{proc.stderr}")


@pytest.fixture(scope="module")
def riscv64_tlsdesc(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    """Debian's riscv64 loaders (version -> libc.so), and a root with /lib/libtls.so and /bin/app built for
    riscv64 musl."""
    if problem := sandbox_problem():
        unavailable(problem)
    if shutil.which(QEMU) is None:
        unavailable(f"{QEMU} is not installed (Debian package qemu-user-static)")
    try:
        loaders = available_loaders(arch="riscv64", runner=(QEMU,))
    except LoadersUnavailable as e:
        pytest.skip(f"qemu cannot run musl's riscv64 loader here: {e}")
    out = tmp_path_factory.mktemp("tlsdesc")
    root = out / "root"
    (root / "lib").mkdir(parents=True)
    (root / "bin").mkdir()
    (out / "tls.c").write_text(TLS_SOURCE)
    (out / "app.c").write_text(APP_SOURCE)
    target = MUSL_TARGETS["riscv64"]
    run([*zig(), "cc", "-target", target.zig, "-O1", "-fPIC", "-shared", "-nostdlib", "-mtls-dialect=desc",
         "-Wl,-soname,libtls.so", "-o", str(root / "lib" / "libtls.so"), str(out / "tls.c")], out)
    [app_object] = compile_objects("riscv64", [out / "app.c"], out)
    crt = musl_dev("riscv64") / "lib" / target.triplet
    libc_dir = out / "libc"
    libc_dir.mkdir()
    shutil.copyfile(next(iter(loaders.values())), libc_dir / "libc.so")  # only to link: the run picks the loader
    run([*zig(), "ld.lld", "-o", str(root / "bin" / "app"), "-dynamic-linker", "/lib/ld-musl-riscv64.so.1",
         "-rpath", "$ORIGIN/../lib", str(crt / "crt1.o"), str(crt / "crti.o"), str(app_object),
         "-L", str(root / "lib"), "-ltls", "-L", str(libc_dir), "-lc", str(crt / "crtn.o")], out)
    return loaders, root


@pytest.mark.oracle
def test_debian_has_riscv64_musl_only_from_1_2_5(riscv64_tlsdesc: tuple[dict[str, Path], Path]) -> None:
    loaders, _ = riscv64_tlsdesc
    assert tuple(loaders) == DEBIAN_RISCV64


@pytest.mark.oracle
def test_the_library_holds_tls_descriptors(riscv64_tlsdesc: tuple[dict[str, Path], Path]) -> None:
    _, root = riscv64_tlsdesc
    types = {t for t, _ in read_elf_file(root / "lib" / "libtls.so").relocations}
    assert R_RISCV_TLSDESC in types, sorted(types)


@pytest.mark.oracle
def test_model_agrees_with_the_real_loader_on_tls_descriptors(riscv64_tlsdesc: tuple[dict[str, Path], Path],
                                                              tmp_path: Path) -> None:
    """At each of Debian's versions: ``--list`` and the model agree on the program, the program reads its
    thread-local through the descriptor, and dlopen (lazy and now) loads the library, as the model says."""
    loaders, root = riscv64_tlsdesc
    directory = DirectoryRoot(root)
    facts = FactsCache(directory)
    probe = build_probe("riscv64", next(iter(loaders.values())), tmp_path / "probe")
    for version, loader in loaders.items():
        target = musl(version, "riscv64")
        rc, report, raw = run_list(loader, root / "bin" / "app", arch="riscv64", runner=(QEMU,))
        model = load(directory, facts, target, "/bin/app", Context.EXECUTABLE)
        assert {(Path(f).name, t) for f, t in report.unsupported_relocations} == {
            (Path(o.path).name, t) for o in model.objects for t, _ in o.unsupported_relocations}, (version, raw)
        assert report.clean is loads(model) is (rc == 0), (version, raw)
        rc, output = run_loader(loader, [str(root / "bin" / "app")], arch="riscv64", runner=(QEMU,))
        assert rc == (0 if loads(model) else 127), (version, output)
        for mode, context in (("lazy", Context.DLOPEN_LAZY), ("now", Context.DLOPEN_NOW)):
            real = run_dlopen(loader, probe, root / "lib" / "libtls.so", mode, arch="riscv64", runner=(QEMU,))
            modelled = load(directory, facts, target, "/lib/libtls.so", context)
            assert real.ok is loads(modelled), (version, mode, real.error)
