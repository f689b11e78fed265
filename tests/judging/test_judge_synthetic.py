"""The judge and its verdicts on synthetic ELF files (tests/elf/elfbuilder.py): no compiler, no musl toolchain,
seconds. Each expectation follows from a loader fact of shared/DESIGN.md §1-2, cited beside it.

Executables are ET_DYN with a PT_INTERP; libraries have a soname. Every undefined symbol a test cares about is
referenced by a relocation: musl looks up only what a relocation names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from muslcheck import Context, FileReport, Report, ScanOptions, UsageError, Verdict, scan
from muslcheck.model.report import FileKind
from tests.elf.elfbuilder import ElfSpec, Sym

GLIBC_INTERP = "/lib64/ld-linux-x86-64.so.2"
MUSL_INTERP = "/lib/ld-musl-x86_64.so.1"
R_64, R_GLOB_DAT, R_JUMP_SLOT, R_TPOFF64, R_IRELATIVE = 1, 6, 7, 18, 37
STB_WEAK, STT_OBJECT, STT_TLS = 2, 1, 6


def undefined(*names: str, relocation: int = R_JUMP_SLOT, weak: bool = False) -> tuple[list[Sym], list]:
    """Undefined symbols, each referenced by one relocation of ``relocation``'s type (index 0 is the null symbol)."""
    symbols = [Sym(n, bind=STB_WEAK if weak else 1) for n in names]
    table = "jmprel" if relocation == R_JUMP_SLOT else "rela"
    return symbols, [(table, relocation, i + 1) for i in range(len(names))]


def write(root: Path, path: str, spec: ElfSpec) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(spec.build().data)


def library(soname: str, *, needed: tuple[str, ...] = ("libc.so",), uses: tuple[str, ...] = (),
            exports: tuple[str, ...] = (), relocation: int = R_JUMP_SLOT, weak: bool = False,
            runpath: str | None = None, machine: int = 62) -> ElfSpec:
    symbols, relocations = undefined(*uses, relocation=relocation, weak=weak)
    symbols += [Sym(n, shndx=7, value=0x1000 + 16 * i, size=16) for i, n in enumerate(exports)]
    return ElfSpec(soname=soname, needed=list(needed), symbols=symbols, relocations=relocations, runpath=runpath,
                   machine=machine)


def program(interp: str, *, needed: tuple[str, ...], uses: tuple[str, ...] = ()) -> ElfSpec:
    symbols, relocations = undefined(*uses)
    return ElfSpec(interp=interp, needed=list(needed), symbols=symbols, relocations=relocations)


def judged(root: Path, path: str, **options: object) -> tuple[FileReport, Report]:
    report = scan(root, ScanOptions(musl="1.2.5", jobs=1), **options)
    by_path = {f.path: f for f in report.files}
    assert path in by_path, sorted(by_path)
    return by_path[path], report


def test_a_musl_program_using_libc_is_native(tmp_path: Path) -> None:
    write(tmp_path, "/app/tool", program(MUSL_INTERP, needed=("libc.so",), uses=("memcpy", "printf")))
    f, _ = judged(tmp_path, "/app/tool")
    assert (f.kind, f.context, f.verdict) == (FileKind.EXECUTABLE, Context.EXECUTABLE, Verdict.NATIVE)


def test_a_glibc_program_needs_gcompat_for_its_interpreter(tmp_path: Path) -> None:
    # The glibc PT_INTERP does not exist on Alpine; gcompat's package puts its loader stub there (§3).
    write(tmp_path, "/app/tool", program(GLIBC_INTERP, needed=("libc.so.6",), uses=("memcpy",)))
    f, _ = judged(tmp_path, "/app/tool")
    assert f.verdict is Verdict.NEEDS_GCOMPAT
    assert not f.missing_libraries  # libc.so.6 is a reserved name: musl itself (DL:1072-1098)


def test_a_fortified_glibc_program_needs_gcompat_for_its_symbols_too(tmp_path: Path) -> None:
    # __memcpy_chk is not in musl; gcompat's preloaded libgcompat defines it (§3).
    write(tmp_path, "/app/tool", program(GLIBC_INTERP, needed=("libc.so.6",), uses=("__memcpy_chk",)))
    f, _ = judged(tmp_path, "/app/tool")
    assert f.verdict is Verdict.NEEDS_GCOMPAT
    [symbol] = f.unresolved_symbols
    assert symbol.name == "__memcpy_chk" and symbol.fatal and symbol.gcompat


def test_a_missing_symbol_in_a_dlopened_library_is_fatal_now_and_latent_lazy(tmp_path: Path) -> None:
    # RTLD_NOW: "symbol not found" at dlopen. RTLD_LAZY: a JUMP_SLOT use is deferred (DL:438-443).
    write(tmp_path, "/app/libx.so", library("libx.so", uses=("no_such_function",)))
    now, _ = judged(tmp_path, "/app/libx.so", context=Context.DLOPEN_NOW)
    lazy, _ = judged(tmp_path, "/app/libx.so", context=Context.DLOPEN_LAZY)
    assert now.verdict is lazy.verdict is Verdict.BLOCKED
    assert [(s.name, s.fatal) for s in now.unresolved_symbols] == [("no_such_function", True)]
    assert [(s.name, s.fatal, s.effect) for s in lazy.unresolved_symbols] == [("no_such_function", False, "latent")]


def test_a_data_reference_is_fatal_even_when_lazy(tmp_path: Path) -> None:
    # Only PLT/GOT classes are deferred: an absolute R_X86_64_64 use fails at load under RTLD_LAZY too.
    write(tmp_path, "/app/libx.so", library("libx.so", uses=("no_such_object",), relocation=R_64))
    lazy, _ = judged(tmp_path, "/app/libx.so", context=Context.DLOPEN_LAZY)
    assert [(s.name, s.fatal) for s in lazy.unresolved_symbols] == [("no_such_object", True)]


def test_a_weak_undefined_reference_binds_to_null(tmp_path: Path) -> None:
    write(tmp_path, "/app/libx.so", library("libx.so", uses=("optional_hook",), weak=True))
    f, _ = judged(tmp_path, "/app/libx.so")
    assert f.verdict is Verdict.NATIVE
    assert f.weak_unresolved == ("optional_hook",) and not f.unresolved_symbols


def test_an_unreferenced_undefined_symbol_is_never_looked_up(tmp_path: Path) -> None:
    spec = library("libx.so")
    spec.symbols.append(Sym("never_relocated"))  # undefined, and no relocation names it
    write(tmp_path, "/app/libx.so", spec)
    f, _ = judged(tmp_path, "/app/libx.so")
    assert f.verdict is Verdict.NATIVE and not f.unresolved_symbols


def test_irelative_is_an_unsupported_relocation(tmp_path: Path) -> None:
    spec = library("libx.so")
    spec.relocations.append(("rela", R_IRELATIVE, 0))
    write(tmp_path, "/app/libx.so", spec)
    f, _ = judged(tmp_path, "/app/libx.so")
    assert f.verdict is Verdict.BLOCKED
    assert [r.type for r in f.unsupported_relocations] == [R_IRELATIVE]


def test_a_dependency_found_through_origin_defines_what_the_library_uses(tmp_path: Path) -> None:
    write(tmp_path, "/app/lib/libdep.so.1", library("libdep.so.1", exports=("dep_function",)))
    write(tmp_path, "/app/bin/libuser.so", library("libuser.so", needed=("libdep.so.1", "libc.so"),
                                                   uses=("dep_function",), runpath="$ORIGIN/../lib"))
    f, _ = judged(tmp_path, "/app/bin/libuser.so")
    assert f.verdict is Verdict.NATIVE
    # musl opens the expanded rpath entry as written, without normalising "..".
    [step] = [s for s in f.load_order if s.name == "libdep.so.1"]
    assert step.path == "/app/bin/../lib/libdep.so.1" and step.found_by == "RUNPATH of /app/bin/libuser.so"


def test_an_rpath_token_other_than_origin_voids_it(tmp_path: Path) -> None:
    # Only $ORIGIN/${ORIGIN} expand; any other $ token voids that rpath (DL fixup_rpath).
    write(tmp_path, "/app/lib/libdep.so.1", library("libdep.so.1", exports=("dep_function",)))
    write(tmp_path, "/app/bin/libuser.so", library("libuser.so", needed=("libdep.so.1", "libc.so"),
                                                   uses=("dep_function",), runpath="$LIB/../lib"))
    f, _ = judged(tmp_path, "/app/bin/libuser.so")
    assert [m.name for m in f.missing_libraries] == ["libdep.so.1"]
    assert f.verdict is Verdict.BLOCKED


def test_a_missing_soname_that_alpine_packages_is_a_package_to_install(tmp_path: Path) -> None:
    write(tmp_path, "/app/libx.so", library("libx.so", needed=("libz.so.1", "libc.so"), uses=("deflate",)))
    f, _ = judged(tmp_path, "/app/libx.so")
    assert f.verdict is Verdict.NEEDS_PACKAGES
    [missing] = f.missing_libraries
    assert missing.name == "libz.so.1" and missing.package
    [symbol] = f.unresolved_symbols
    assert symbol.pending_on == "libz.so.1"  # waits on the missing library, not blamed on musl


def test_a_file_of_another_architecture_is_not_applicable(tmp_path: Path) -> None:
    write(tmp_path, "/app/libarm.so", library("libarm.so", machine=183))  # EM_AARCH64
    f, _ = judged(tmp_path, "/app/libarm.so", arch="x86_64")
    assert f.verdict is Verdict.NOT_APPLICABLE


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_report_does_not_depend_on_the_workers(tmp_path: Path, jobs: int) -> None:
    for i in range(40):  # above the size at which workers start
        write(tmp_path, f"/app/lib{i}.so", library(f"lib{i}.so", uses=(f"missing_{i}",)))
    write(tmp_path, "/app/tool", program(GLIBC_INTERP, needed=("libc.so.6", "lib0.so"), uses=("missing_0",)))
    one = scan(tmp_path, ScanOptions(musl="1.2.5", jobs=1))
    many = scan(tmp_path, ScanOptions(musl="1.2.5", jobs=jobs))
    assert one.to_json_bytes() == many.to_json_bytes()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("preload", ("/nope.so",), "preload /nope.so: no such file in the target"),
    ("preload", ("/app",), "preload /app: no such file in the target"),
    ("library_path", "/app:/nowhere", "library path /nowhere: no such directory in the target"),
])
def test_a_preload_or_library_directory_missing_from_the_tree_is_a_usage_error(
        tmp_path: Path, option: str, value: object, message: str) -> None:
    write(tmp_path, "/app/libx.so", library("libx.so"))
    with pytest.raises(UsageError) as e:
        scan(tmp_path, ScanOptions(musl="1.2.5"), **{option: value})
    assert str(e.value) == message


def test_a_preload_searched_by_name_and_existing_paths_are_accepted(tmp_path: Path) -> None:
    write(tmp_path, "/app/libx.so", library("libx.so"))
    report = scan(tmp_path, ScanOptions(musl="1.2.5", preload=("/app/libx.so", "libfoo.so"), library_path="/app"))
    assert report.verdict is not Verdict.NOTHING_TO_CHECK
