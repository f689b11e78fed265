"""From simulated loads to a verdict, with the reasons and the fix for each file."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from muslcheck.elf import ElfFacts, relocation_name
from muslcheck.judging.packages import GLIBC_LIBRARIES, apk_for
from muslcheck.ldso.load import Effect, LoadResult, MissingLibrary, MissingReason
from muslcheck.ldso.tables import Gcompat
from muslcheck.model.ignore import NO_IGNORES, Ignores
from muslcheck.model.options import Context
from muslcheck.model.report import (
    SYMBOL_RULES,
    FileKind,
    FileReport,
    Finding,
    LibraryFinding,
    LoadStep,
    RelocationFinding,
    SymbolFinding,
    TlsFinding,
    Verdict,
    apk_spec,
    fix_steps,
    library_message,
    symbol_message,
    symbol_order,
)
from muslcheck.model.rules import RULES

_NULL, _FATAL = Effect.NULL, Effect.FATAL  # read once: an Effect member is a slow descriptor lookup
# Unresolved symbols listed for one load; past it they are counted in one finding (a report's size is bounded by
# this, not by what a hostile symbol table claims: 200,000 of them took 1.5 GB to render as SARIF).
MAX_LISTED_SYMBOLS = 4096
# Missing libraries listed for one load, the blocking ones first; past it they are counted in one finding (each is
# listed about five times in a report: 1,000 files of 4,096 missing DT_NEEDED made a 2 GB JSON).
MAX_LISTED_LIBRARIES = 256
# Objects of a load listed in the load order of each file judged in it (n libraries that all need each other: n
# files of n steps each).
MAX_LISTED_OBJECTS = 256

# Weak references every gcc-built file carries (crtstuff, gmon); bound to NULL on glibc too.
TOOLCHAIN_WEAK = frozenset({
    "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__gmon_start__", "_Jv_RegisterClasses",
})


@dataclass(frozen=True)
class Problems:
    """What stands in the way in one simulated load, seen from one file."""

    symbols: tuple[SymbolFinding, ...]  # fatal or latent
    weak_null: tuple[str, ...]  # weak undefined references musl binds to 0 (not errors)
    libraries: tuple[LibraryFinding, ...]
    relocations: tuple[RelocationFinding, ...]
    tls: tuple[TlsFinding, ...]
    relr: tuple[str, ...]
    wrong_arch: tuple[str, ...]
    glibc_interpreter: str | None
    findings: tuple[Finding, ...]  # every problem above, flat, with the ignore file applied

    @property
    def blockers(self) -> int:
        return sum(1 for f in self.findings if f.ignored is None and f.level is Verdict.BLOCKED)

    @property
    def packages(self) -> tuple[str, ...]:
        wanted = {f.subject for f in self.findings if f.ignored is None and f.rule == "needs-package"}
        return tuple(sorted({lib.package for lib in self.libraries if lib.package and lib.name in wanted}))


def problems(
    result: LoadResult,
    scope: Collection[str] | None,
    gcompat: Gcompat | None,
    glibc_interpreter: str | None,
    *,
    path: str,
    ignores: Ignores = NO_IGNORES,
) -> Problems:
    """Problems of the objects in ``scope`` (every object of the load when None), for the file ``path``."""

    def in_scope(path: str) -> bool:
        return scope is None or path in scope

    libraries = tuple(
        LibraryFinding(m.name, m.needed_by, m.message, _package_for(m))
        for m in _missing_of(result.missing, scope)
        if in_scope(m.needed_by) or m.needed_by == "dlopen"
    )
    packaged = [lib.name for lib in libraries if lib.package and lib.name not in GLIBC_LIBRARIES]
    packaged_names = set(packaged)
    # every missing library a symbol may come from: gcompat's files are glibc's (their symbols are libc's)
    awaited = packaged + [lib.name for lib in libraries if lib.name not in packaged_names
                          and lib.name not in GLIBC_LIBRARIES and apk_spec(lib) != "gcompat"]
    awaited_names = set(awaited)  # tested once per symbol: a list made that the product of symbols and libraries
    symbols: list[SymbolFinding] = []
    weak_null: set[str] = set()
    relocations: list[RelocationFinding] = []
    tls: list[TlsFinding] = []
    wrong_arch: list[str] = []
    for obj in result.objects:
        if obj.facts is None or not in_scope(obj.path):
            continue
        gcompat_names = gcompat.symbols_for(obj.facts.machine) if gcompat is not None and obj.unresolved else ()
        # The missing library that will probably provide a symbol (musl cannot be blamed before it is there): the
        # one its version names, else the first awaited.
        pending_on = awaited[0] if awaited else None
        for u in obj.unresolved:
            effect = u.effect
            if effect is _NULL:
                if u.name not in TOOLCHAIN_WEAK:
                    weak_null.add(u.name)
                continue
            library = u.version_library
            symbols.append(SymbolFinding(
                name=u.name, version=u.version, weak=u.weak, relocations=u.relocations,
                fatal=effect is _FATAL, effect=effect, file=obj.path,  # both from the one Effect
                from_library=library,
                gcompat=u.name in gcompat_names,
                pending_on=pending_on if library is None else library if library in awaited_names else None,
            ))
        machine = obj.facts.machine
        relocations.extend(
            RelocationFinding(t, relocation_name(machine, t), n, obj.path) for t, n in obj.unsupported_relocations
        )
        tls.extend(TlsFinding(e.symbol, obj.path, e.definer) for e in obj.tls_errors)
        if obj.wrong_arch:
            wrong_arch.append(f"{obj.path} ({obj.wrong_arch})")
    relr = tuple(p for p in result.relr_unsupported if in_scope(p))
    not_listed = 0
    if len(symbols) > MAX_LISTED_SYMBOLS:  # the fatal ones first; the rest are counted, in one finding
        symbols.sort(key=lambda s: (not s.fatal, symbol_order(s)))
        not_listed = len(symbols) - MAX_LISTED_SYMBOLS
        del symbols[MAX_LISTED_SYMBOLS:]
    libraries, unlisted_libraries = _listed_libraries(libraries)
    # TLS errors (one per initial-exec relocation's symbol) and unsupported relocation types (one per type and
    # object: r_info's type has 32 bits) grow with the relocation tables, as symbols do: listed up to the same cap.
    unlisted_tls, unlisted_relocations = len(tls) - MAX_LISTED_SYMBOLS, len(relocations) - MAX_LISTED_SYMBOLS
    del tls[MAX_LISTED_SYMBOLS:], relocations[MAX_LISTED_SYMBOLS:]
    found = _findings(path, glibc_interpreter, libraries, symbols, relocations, tls, relr, wrong_arch)
    if unlisted_relocations > 0:
        found.append(_finding("unsupported-relocation", Verdict.BLOCKED, path, path, f"({unlisted_relocations} more)",
                              f"{unlisted_relocations} more unsupported relocation types in this load are not "
                              f"listed (at most {MAX_LISTED_SYMBOLS} are)"))
    if unlisted_tls > 0:
        found.append(_finding("initial-exec-tls", Verdict.BLOCKED, path, path, f"({unlisted_tls} more)",
                              f"{unlisted_tls} more initial-exec TLS errors in this load are not listed (at most "
                              f"{MAX_LISTED_SYMBOLS} are)"))
    if unlisted_libraries:
        blocking = sum(1 for lib in unlisted_libraries if _blocks(lib))
        rule, level = ("missing-library", Verdict.BLOCKED) if blocking else ("needs-package", Verdict.NEEDS_PACKAGES)
        found.append(_finding(rule, level, path, path, f"({len(unlisted_libraries)} more)",
                              f"{len(unlisted_libraries)} more missing libraries in this load ({blocking} of them "
                              f"not in a package) are not listed (at most {MAX_LISTED_LIBRARIES} are)"))
    if not_listed:
        found.append(_finding("unresolved-symbol", Verdict.BLOCKED, path, path, f"({not_listed} more)",
                              f"{not_listed} more unresolved symbols in this load are not listed (at most "
                              f"{MAX_LISTED_SYMBOLS} are)"))
    return Problems(
        symbols=tuple(symbols), weak_null=tuple(sorted(weak_null)), libraries=libraries,
        relocations=tuple(relocations), tls=tuple(tls), relr=relr, wrong_arch=tuple(wrong_arch),
        glibc_interpreter=glibc_interpreter,
        findings=tuple(found) if not ignores.entries else tuple(
            f if (why := ignores.match(f.rule, f.subject, path)) is None else replace(f, ignored=why) for f in found
        ),
    )


# The missing libraries of the last large loads (a root's plain, gcompat and preloaded ones), by requester: each
# library a root's load brings in is judged in it, and walking the whole list for each made a root of N libraries
# that each miss N libraries cost N^3.
_GROUPED_FROM = 64
_GROUPED_LOADS = 4
_grouped: dict[int, tuple[tuple[MissingLibrary, ...], dict[str, list[tuple[int, MissingLibrary]]]]] = {}


def _missing_of(missing: tuple[MissingLibrary, ...], scope: Collection[str] | None) -> Sequence[MissingLibrary]:
    """The entries of ``missing`` that may be in ``scope`` (requested by one of its objects, or by dlopen), in order:
    for a large list and a small scope, from an index of the list made once."""
    if scope is None or len(missing) < _GROUPED_FROM or len(scope) > 8:
        return missing
    entry = _grouped.get(id(missing))
    if entry is None or entry[0] is not missing:  # the entry keeps its list alive: its id is not reused meanwhile
        by_requester: dict[str, list[tuple[int, MissingLibrary]]] = {}
        for position, m in enumerate(missing):
            by_requester.setdefault(m.needed_by, []).append((position, m))
        if len(_grouped) >= _GROUPED_LOADS:
            del _grouped[next(iter(_grouped))]  # the oldest
        entry = _grouped[id(missing)] = (missing, by_requester)
    wanted = sorted(found for key in {*scope, "dlopen"} for found in entry[1].get(key, ()))
    return [m for _, m in wanted]


def _blocks(lib: LibraryFinding) -> bool:
    """A missing library no package provides (gcompat's files count as missing): a missing-library finding."""
    return not lib.package or lib.package == "gcompat"


def _listed_libraries(
    libraries: tuple[LibraryFinding, ...],
) -> tuple[tuple[LibraryFinding, ...], tuple[LibraryFinding, ...]]:
    """(the libraries listed, those only counted): at most MAX_LISTED_LIBRARIES, the blocking ones first, each
    group in load order."""
    if len(libraries) <= MAX_LISTED_LIBRARIES:
        return libraries, ()
    ordered = sorted(libraries, key=lambda lib: not _blocks(lib))  # stable: load order within each group
    return tuple(ordered[:MAX_LISTED_LIBRARIES]), tuple(ordered[MAX_LISTED_LIBRARIES:])


def _package_for(missing: MissingLibrary) -> str | None:
    """What ``apk add`` takes for a library musl did not find (a cited name, or ``gcompat`` for its files), or for
    one the Alpine counterpart of its OS package must provide (else ``so:SONAME``, resolved by apk through the
    provides): a package spec, never free text."""
    if missing.reason is MissingReason.REPLACED:
        return apk_for(missing.name) or apk_spec(LibraryFinding(missing.name, missing.needed_by, missing.message, None))
    return apk_for(missing.name) if missing.reason is MissingReason.NOT_FOUND else None


def _finding(rule_name: str, level: Verdict, path: str, obj: str, subject: str, message: str) -> Finding:
    return Finding(rule_name, RULES[rule_name].id, level, path, obj, subject, message, None)


def _findings(
    path: str,
    glibc_interpreter: str | None,
    libraries: Sequence[LibraryFinding],
    symbols: Sequence[SymbolFinding],
    relocations: Sequence[RelocationFinding],
    tls: Sequence[TlsFinding],
    relr: Sequence[str],
    wrong_arch: Sequence[str],
) -> list[Finding]:
    blocked = Verdict.BLOCKED
    out: list[Finding] = []
    if glibc_interpreter:
        out.append(_finding("glibc-interpreter", blocked, path, path, glibc_interpreter,
                            f"interpreter {glibc_interpreter} is glibc's loader"))
    for lib in libraries:
        if lib.package and lib.package != "gcompat":
            out.append(_finding("needs-package", Verdict.NEEDS_PACKAGES, path, lib.needed_by, lib.name,
                                library_message("needs-package", lib)))
        else:
            out.append(_finding("missing-library", blocked, path, lib.needed_by, lib.name,
                                library_message("missing-library", lib)))
    for sym in sorted(symbols, key=symbol_order):  # the order of the file's unresolved_symbols
        if sym.pending_on is not None:
            continue  # waits on a package's library: not checkable yet, and not a blocker
        out.append(_finding(SYMBOL_RULES[sym.effect], blocked, path, sym.file, sym.name, symbol_message(sym)))
    for r in relocations:
        out.append(_finding("unsupported-relocation", blocked, path, r.file, r.name,
                            f"{r.count} relocation(s) of type {r.name} ({r.type}) in {r.file}"))
    for t in tls:
        subject = t.symbol or "(own TLS)"
        out.append(_finding("initial-exec-tls", blocked, path, t.file, subject,
                            f"initial-exec TLS {subject} in {t.file} resolves to dynamic TLS of {t.definer}"))
    for obj in relr:
        out.append(_finding("relr-unsupported", blocked, path, obj, "DT_RELR",
                            f"{obj} uses DT_RELR, which this musl ignores"))
    for desc in wrong_arch:
        out.append(_finding("wrong-architecture", blocked, path, desc.split(" ", 1)[0], desc,
                            f"{desc} is built for another architecture"))
    return out


def decide(plain: Problems, with_gcompat: Problems | None) -> Verdict:
    if plain.blockers == 0:
        return Verdict.NEEDS_PACKAGES if plain.packages else Verdict.NATIVE
    if with_gcompat is not None and with_gcompat.blockers == 0:
        return Verdict.NEEDS_GCOMPAT
    return Verdict.BLOCKED


_FIX_BY_RULE = {
    "unresolved-symbol": "rebuild against musl",
    "latent-symbol": "rebuild against musl",
    "unsupported-relocation": "rebuild without IFUNC / against musl",
    "initial-exec-tls": "rebuild with -ftls-model=global-dynamic",
    "relr-unsupported": "target musl >= 1.2.4 (Alpine >= 3.18) or relink without -z pack-relative-relocs",
    "wrong-architecture": "use the build for the target architecture",
    "glibc-interpreter": "rebuild against musl",
}


def _settled(f: Finding, verdict: Verdict, libraries: dict[str, LibraryFinding]) -> Finding:
    """A finding's level and fix once the file's verdict is known; ``libraries``: the first listed of each name."""
    level, fix = f.level, _FIX_BY_RULE.get(f.rule)
    if f.rule == "needs-package":
        package = lib.package if (lib := libraries.get(f.subject)) is not None else None
        fix = f"apk add {package}" if package else None  # None: the count of libraries not listed
    elif f.rule == "missing-library" and verdict is not Verdict.NEEDS_GCOMPAT:
        lib = libraries.get(f.subject)
        spec = apk_spec(lib) if lib is not None else None
        fix = f"apk add {spec}" if spec else "ship a musl build of the library"
    elif verdict is Verdict.NEEDS_GCOMPAT:
        level, fix = Verdict.NEEDS_GCOMPAT, "apk add gcompat"
    # Built directly: dataclasses.replace costs ten times as much, and a report holds 10^5 findings.
    return Finding(f.rule, f.rule_id, level, f.path, f.object, f.subject, f.message, fix, f.ignored)


def notes(shown: Problems, result: LoadResult, context: Context, scope: Collection[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    if shown.glibc_interpreter:
        out.append(f"glibc interpreter {shown.glibc_interpreter}: Alpine has it only with gcompat installed")
    latent = sorted({s.name for s in shown.symbols if s.effect is Effect.LATENT})
    if latent:
        out.append("loads, then crashes on the first call of: " + ", ".join(latent))
    if shown.weak_null:
        out.append("weak references bound to NULL: " + ", ".join(shown.weak_null))
    pending = sorted({s.name for s in shown.symbols if s.pending_on})
    if pending:
        out.append(f"{len(pending)} symbol(s) wait on missing libraries and were not checked against them")
    if context in (Context.DLOPEN_NOW, Context.DLOPEN_LAZY) and any(s.effect == Effect.FATAL for s in shown.symbols):
        out.append("dlopen stops at the first fatal error; every one is listed here")
    for obj in result.objects:
        if obj.facts is None or (scope is not None and obj.path not in scope):
            continue
        if obj.lfs64_remapped:
            out.append(f"{obj.path}: {', '.join(obj.lfs64_remapped)} bound by musl's LFS64 remap")
        at_init = sorted({u.name for u in obj.unresolved if u.called_at_init})
        if at_init:
            out.append(f"{obj.path}: its constructor calls {', '.join(at_init)} during dlopen: the call goes through "
                       "a slot musl never bound, so even RTLD_LAZY crashes in dlopen")
        ifuncs = sorted(obj.facts.exports.names_of_type("GNU_IFUNC"))
        if ifuncs:
            out.append(f"{obj.path}: exports IFUNC symbols invisible to musl: {', '.join(ifuncs[:5])}")
    if shown.relr:
        out.append("DT_RELR is ignored by this musl: the relative relocations are never applied (crash at run time)")
    return tuple(out)


def load_steps(result: LoadResult) -> tuple[LoadStep, ...]:
    """The load order, its first MAX_LISTED_OBJECTS objects; a last step counts the rest."""
    shown = result.objects[:MAX_LISTED_OBJECTS]
    steps = [LoadStep(o.requested_as, o.path, o.found_by, o.links) for o in shown]
    if len(result.objects) > MAX_LISTED_OBJECTS:
        steps.append(LoadStep(f"({len(result.objects) - MAX_LISTED_OBJECTS} more)", "", "not listed", ()))
    return tuple(steps)


def file_report(
    *,
    path: str,
    facts: ElfFacts,
    kind: FileKind,
    context: Context,
    verdict: Verdict,
    shown: Problems,
    result: LoadResult,
    scope: Collection[str] | None,
    preload_fixes: bool,
    aliases: tuple[str, ...],
) -> FileReport:
    by_name: dict[str, LibraryFinding] = {}
    for lib in shown.libraries:
        by_name.setdefault(lib.name, lib)
    report = FileReport(
        path=path, arch=facts.machine, kind=kind, context=context, verdict=verdict,
        interpreter=facts.interpreter, soname=facts.soname, needed=facts.needed,
        missing_libraries=shown.libraries,
        unresolved_symbols=tuple(sorted(shown.symbols, key=symbol_order)),
        weak_unresolved=shown.weak_null, unsupported_relocations=shown.relocations, tls_errors=shown.tls,
        notes=notes(shown, result, context, scope), fixes=(),
        findings=tuple(_settled(f, verdict, by_name) for f in shown.findings),
        aliases=aliases, load_order=load_steps(result),
    )
    return replace(report, fixes=tuple(step.text for step in fix_steps(report, preload_fixes)))
