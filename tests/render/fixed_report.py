"""A hand-built Report for golden files: no scanning, no temporary paths, so every renderer is byte-stable."""

from __future__ import annotations

from dataclasses import replace

from muslcheck.model.options import Context
from muslcheck.model.report import (
    Effect,
    FileKind,
    FileReport,
    Finding,
    LibraryFinding,
    RelocationFinding,
    Report,
    Skip,
    SymbolFinding,
    TargetInfo,
    Verdict,
    file_components,
    library_message,
    symbol_findings,
)
from muslcheck.model.rules import RULES

INTERP = "/lib64/ld-linux-x86-64.so.2"


def finding(rule: str, level: Verdict, path: str, obj: str, subject: str, message: str, fix: str | None,
            ignored: str | None = None) -> Finding:
    return Finding(rule, RULES[rule].id, level, path, obj, subject, message, fix, ignored)


def symbol(name: str, version: str | None, file: str, *, gcompat: bool = False, fatal: bool = True,
           pending_on: str | None = None) -> SymbolFinding:
    return SymbolFinding(
        name=name, version=version, weak=False, relocations=("R_X86_64_JUMP_SLOT",), fatal=fatal,
        effect=Effect.FATAL if fatal else Effect.LATENT, file=file, from_library="libc.so.6" if version else None,
        gcompat=gcompat, pending_on=pending_on,
    )


def file_report(path: str, verdict: Verdict, *, kind: FileKind = FileKind.EXECUTABLE,
                context: Context | None = Context.EXECUTABLE,
                arch: str = "x86_64", interpreter: str | None = INTERP, **fields: object) -> FileReport:
    """A file report; without ``findings``, the ones the judge writes for its missing libraries and symbols."""
    base = FileReport(
        path=path, arch=arch, kind=kind, context=context, verdict=verdict, interpreter=interpreter, soname=None,
        needed=("libc.so.6",), missing_libraries=(), unresolved_symbols=(), weak_unresolved=(),
        unsupported_relocations=(), tls_errors=(), notes=(), fixes=(),
    )
    report = replace(base, **fields)  # type: ignore[arg-type]
    if "findings" in fields:
        return report
    level = Verdict.BLOCKED if verdict is Verdict.NOT_APPLICABLE else verdict
    libraries = []
    for lib in report.missing_libraries:
        rule = "needs-package" if lib.package and lib.package != "gcompat" else "missing-library"
        libraries.append(finding(rule, Verdict.NEEDS_PACKAGES if rule == "needs-package" else level, path,
                                 lib.needed_by, lib.name, library_message(rule, lib), None))
    return replace(report, findings=(*libraries, *symbol_findings(report, level, "rebuild against musl")))


def fixed_report() -> Report:
    app = "/opt/app/bin/server"
    lib = "/opt/app/bin/../lib/libfast.so"
    blocked = file_report(
        app, Verdict.BLOCKED,
        unresolved_symbols=(symbol("gnu_get_libc_version", "GLIBC_2.2.5", app, gcompat=True),),
        unsupported_relocations=(RelocationFinding(37, "R_X86_64_IRELATIVE", 2, lib),),
        notes=(f"glibc interpreter {INTERP}: Alpine has it only with gcompat installed",),
        fixes=("rebuild against musl: musl does not export gnu_get_libc_version",
               "rebuild without IFUNC: musl does not support IRELATIVE relocations"),
        findings=(
            finding("glibc-interpreter", Verdict.BLOCKED, app, app, INTERP,
                    f"interpreter {INTERP} is glibc's loader", "rebuild against musl"),
            finding("unresolved-symbol", Verdict.BLOCKED, app, app, "gnu_get_libc_version",
                    f"gnu_get_libc_version@GLIBC_2.2.5 is not defined: {app} fails to load (R_X86_64_JUMP_SLOT)",
                    "rebuild against musl"),
            finding("unsupported-relocation", Verdict.BLOCKED, app, lib, "R_X86_64_IRELATIVE",
                    f"2 relocation(s) of type R_X86_64_IRELATIVE (37) in {lib}",
                    "rebuild without IFUNC / against musl"),
        ),
    )
    jar_lib = "/opt/app/app.jar!/lib/libnative.so"
    nested = file_report(
        jar_lib, Verdict.BLOCKED, kind=FileKind.SHARED_LIBRARY, context=Context.DLOPEN_LAZY, interpreter=None,
        unresolved_symbols=(symbol("__isoc23_strtol", "GLIBC_2.38", jar_lib, fatal=False),),
        notes=("loads, then crashes on the first call of: __isoc23_strtol",),
        fixes=("rebuild against musl (glibc >= 2.38 with _GNU_SOURCE emits __isoc23_* names)",),
        findings=(
            finding("latent-symbol", Verdict.BLOCKED, jar_lib, jar_lib, "__isoc23_strtol",
                    f"__isoc23_strtol@GLIBC_2.38 is not defined: {jar_lib} loads, then crashes | on the first call",
                    "rebuild against musl"),
        ),
    )
    fortify = "/opt/tools/fortify"
    gcompat = file_report(
        fortify, Verdict.NEEDS_GCOMPAT,
        unresolved_symbols=(symbol("__memcpy_chk", "GLIBC_2.3.4", fortify, gcompat=True),
                            symbol("__printf_chk", "GLIBC_2.3.4", fortify, gcompat=True)),
        notes=(f"glibc interpreter {INTERP}: Alpine has it only with gcompat installed",),
        fixes=("apk add gcompat  (glibc compatibility layer; it applies to this file's load context)",),
        findings=(
            finding("glibc-interpreter", Verdict.NEEDS_GCOMPAT, fortify, fortify, INTERP,
                    f"interpreter {INTERP} is glibc's loader", "apk add gcompat"),
            finding("unresolved-symbol", Verdict.NEEDS_GCOMPAT, fortify, fortify, "__memcpy_chk",
                    f"__memcpy_chk@GLIBC_2.3.4 is not defined: {fortify} fails to load (R_X86_64_JUMP_SLOT)",
                    "apk add gcompat"),
            finding("unresolved-symbol", Verdict.NEEDS_GCOMPAT, fortify, fortify, "__printf_chk",
                    f"__printf_chk@GLIBC_2.3.4 is not defined: {fortify} fails to load (R_X86_64_JUMP_SLOT)",
                    "apk add gcompat", ignored="only reached in debug builds"),
        ),
    )
    cxx = "/opt/app/lib/libcxx.so"
    packages = file_report(
        cxx, Verdict.NEEDS_PACKAGES, kind=FileKind.SHARED_LIBRARY, context=Context.DLOPEN_NOW, interpreter=None,
        needed=("libstdc++.so.6", "libc.so.6"),
        missing_libraries=(LibraryFinding("libstdc++.so.6", cxx, "No such file or directory", "libstdc++"),),
        unresolved_symbols=(symbol("_ZdlPvm", "CXXABI_1.3.9", cxx, pending_on="libstdc++.so.6"),),
        notes=("1 symbol(s) wait on missing libraries and were not checked against them",),
        fixes=("apk add libstdc++  (provides libstdc++.so.6)",),
        findings=(
            finding("needs-package", Verdict.NEEDS_PACKAGES, cxx, cxx, "libstdc++.so.6",
                    f"libstdc++.so.6 (needed by {cxx}) comes from the Alpine package libstdc++",
                    "apk add libstdc++"),
        ),
    )
    native = file_report("/opt/app/bin/helper", Verdict.NATIVE, interpreter="/lib/ld-musl-x86_64.so.1")
    other = file_report(
        "/opt/app/lib/arm/libarm.so", Verdict.NOT_APPLICABLE, kind=FileKind.SHARED_LIBRARY, context=None, arch="arm",
        interpreter=None, notes=("built for arm: no musl table for that architecture",),
    )
    files = (blocked, nested, gcompat, packages, native, other)
    return Report(
        schema_version="2.0",
        tool_version="0.1.0",
        source="/srv/rootfs",
        root="/srv/rootfs",
        target=TargetInfo(musl="1.2.5", alpine="3.23", gcompat=False, arch=None),
        verdict=Verdict.BLOCKED,
        files=files,
        components=file_components(files),
        skipped=(Skip("/opt/app/lib/libbroken.so", "malformed ELF: truncated program header table"),),
        notes=(".muslcheck.toml:4: ignore entry expired on 2025-01-31 and no longer applies (legacy tool)",),
    )
