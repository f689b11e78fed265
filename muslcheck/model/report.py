"""The result of a scan: frozen dataclasses, and their JSON form (schema in schema/report.schema.json)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import orjson

from muslcheck.model.codec import builder, fields_of, pickled_by_fields
from muslcheck.model.options import Context
from muslcheck.model.rules import RULES

# 2.0: "degraded" joined the verdicts of components and of the whole report, where a 1.x reader's enum rejects it
# (docs/api.md: within a major version fields are only added); ``plan`` and a component's ``steps`` and ``lost``.
# 3.0: findings by reference. A library's unresolved symbols are listed once, under ``objects``; each file refers
# to them, with the effect in its own load; a field equal to what it derives from is left out (docs/api.md).
SCHEMA_VERSION = "3.0"
READABLE_MAJORS = ("1", "2", "3")  # a 1.x document is a 2.0 one without those fields


class Verdict(StrEnum):
    NATIVE = "native"
    NEEDS_PACKAGES = "needs-packages"
    NEEDS_GCOMPAT = "needs-gcompat"
    # components only: the native part cannot load on musl, and the library runs without it (``Component.lost``)
    DEGRADED = "degraded"
    BLOCKED = "blocked"
    NOT_APPLICABLE = "not-applicable"  # another OS/architecture, or not loaded by the dynamic linker
    NOTHING_TO_CHECK = "nothing-to-check"  # overall only: no ELF file was found

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Verdict.NOTHING_TO_CHECK: 0,
    Verdict.NOT_APPLICABLE: 0,
    Verdict.NATIVE: 0,
    Verdict.NEEDS_PACKAGES: 1,
    Verdict.NEEDS_GCOMPAT: 2,
    Verdict.DEGRADED: 3,
    Verdict.BLOCKED: 4,
}
# What a file can be judged (a file either loads or not: "degraded" is a component's, "nothing-to-check" a report's).
FILE_VERDICTS = tuple(v for v in Verdict if v not in (Verdict.DEGRADED, Verdict.NOTHING_TO_CHECK))


class Ecosystem(StrEnum):
    """Where a component comes from: the package manager or runtime a user acts through."""

    MAVEN = "maven"
    PYPI = "pypi"
    NPM = "npm"
    RUNTIME = "runtime"
    OS_PACKAGE = "os-package"
    FILE = "file"  # a loose ELF file that no package claims


class Effect(StrEnum):
    """What an unbound symbol reference does (musl's do_relocs, DL:431-443); the loader model decides it."""

    FATAL = "fatal"  # the load fails ("Error relocating ...: symbol not found")
    LATENT = "latent"  # deferred under RTLD_LAZY: loads, then crashes on first call
    NULL = "null"  # weak undefined: resolves to 0 silently


class FileKind(StrEnum):
    """What an ELF file is to the dynamic linker."""

    EXECUTABLE = "executable"  # has PT_INTERP (or is ET_EXEC): the loader starts it
    STATIC = "static"  # no dynamic section, or a static PIE: no loader involved
    SHARED_LIBRARY = "shared-library"
    OTHER = "other"  # an object file, a core dump: never mapped by the loader


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SymbolFinding:
    name: str
    version: str | None  # the version requested (never checked by musl)
    weak: bool
    relocations: tuple[str, ...]
    fatal: bool  # False: latent (deferred by RTLD_LAZY: loads, then crashes on the first call)
    effect: Effect  # FATAL or LATENT (a NULL binding is listed under weak_unresolved instead)
    file: str  # the object whose relocation fails
    from_library: str | None  # the library the version requirement names (e.g. "libc.so.6")
    gcompat: bool  # gcompat provides it
    pending_on: str | None  # a missing library that probably provides it (then it is not a blocker yet)


def symbol_order(s: SymbolFinding) -> tuple[str, str, str, str, bool, str, tuple[str, ...], bool]:
    """The order of a file's unresolved symbols: by object, then name; the other fields only break ties."""
    return (s.file, s.name, s.version or "", s.effect.value, s.weak, s.pending_on or "", s.relocations, s.gcompat)


def symbol_message(s: SymbolFinding) -> str:
    """What the finding of an unresolved symbol says."""
    version = f"@{s.version}" if s.version else ""
    if s.effect is Effect.FATAL:
        return f"{s.name}{version} is not defined: {s.file} fails to load ({', '.join(s.relocations)})"
    return f"{s.name}{version} is not defined: {s.file} loads, then crashes on the first call"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class LibraryFinding:
    name: str
    needed_by: str
    reason: str
    package: str | None  # the Alpine package that provides the soname, when known


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class RelocationFinding:
    type: int
    name: str
    count: int
    file: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TlsFinding:
    symbol: str | None
    file: str
    definer: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, flat: what SARIF, JUnit, Markdown and ignore files work with."""

    rule: str  # a rule name from muslcheck.model.rules ("unresolved-symbol", ...)
    rule_id: str  # its stable id ("MC003")
    level: Verdict  # the verdict this finding drives the file to
    path: str  # the scanned file it is reported on
    object: str  # the loaded object where it happens (a library in the file's closure, or the file)
    subject: str  # the symbol, soname, relocation or interpreter concerned
    message: str
    fix: str | None
    ignored: str | None = None  # the ignore entry's reason, when one matched


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class LoadStep:
    name: str  # as requested (DT_NEEDED, preload)
    path: str  # where the model found it
    found_by: str
    links: tuple[str, ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FileReport:
    path: str
    arch: str
    kind: FileKind
    context: Context | None
    verdict: Verdict
    interpreter: str | None
    soname: str | None
    needed: tuple[str, ...]
    missing_libraries: tuple[LibraryFinding, ...]
    unresolved_symbols: tuple[SymbolFinding, ...]
    weak_unresolved: tuple[str, ...]  # weak undefined references bound to NULL: not errors, the code must cope
    unsupported_relocations: tuple[RelocationFinding, ...]
    tls_errors: tuple[TlsFinding, ...]
    notes: tuple[str, ...]
    fixes: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    aliases: tuple[str, ...] = ()
    load_order: tuple[LoadStep, ...] = ()
    component: str | None = None  # the id of the component it belongs to


class StepKind(StrEnum):
    """What a fix does, in the order of preference a component's ``steps`` keep."""

    REINSTALL = "reinstall"  # the ecosystem's own fix in the Alpine image: pip install, npm ci, npm rebuild
    UPGRADE = "upgrade"  # a release of the library that ships a musl build
    BASE_IMAGE = "base-image"  # the Alpine variant of a runtime's image
    APK = "apk"  # an Alpine package: a cited name, or so:SONAME / cmd:NAME for apk to resolve by its provides
    GCOMPAT = "gcompat"  # apk add gcompat, where it applies to the load
    PRELOAD = "preload"  # LD_PRELOAD=/lib/libgcompat.so.0 for a dlopen-ed library
    REBUILD = "rebuild"  # rebuild (or replace) against musl


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FixStep:
    kind: StepKind
    text: str  # the line a person reads
    action: str | None = None  # what a tool runs: the command, the apk package or so:/cmd: form, the image


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Component:
    """A unit a user acts on: a Maven library, a Python distribution, an npm package, a runtime,
    an OS package, or a loose ELF file."""

    name: str
    version: str | None
    ecosystem: Ecosystem
    location: str
    verdict: Verdict
    files: tuple[str, ...]
    selected: dict[str, str]  # architecture -> the file its loader would pick on musl
    fix: str | None  # the best of ``fixes``
    id: str = ""  # "ecosystem:name:location", what a file's ``component`` names
    fixes: tuple[str, ...] = ()  # every fix line, most preferred first
    notes: tuple[str, ...] = ()  # how its loader picks a build, why a file does not count...
    steps: tuple[FixStep, ...] = ()  # ``fixes`` with what each does, in the same order
    lost: str | None = None  # degraded: what the application runs without (its native part cannot load)


def component_id(ecosystem: Ecosystem, name: str, location: str) -> str:
    return f"{ecosystem}:{name}:{location}"


def file_components(files: tuple[FileReport, ...]) -> tuple[Component, ...]:
    """Each file its own component (ecosystem "file")."""
    out = []
    for f in files:
        steps = file_steps(f) if f.verdict not in (Verdict.NATIVE, Verdict.NOT_APPLICABLE) else ()
        fixes = tuple(s.text for s in steps)
        out.append(Component(
            name=f.path.rsplit("/", 1)[-1], version=None, ecosystem=Ecosystem.FILE, location=f.path, verdict=f.verdict,
            files=(f.path,), selected={f.arch: f.path} if f.verdict is not Verdict.NOT_APPLICABLE else {},
            fix=fixes[0] if fixes else None, id=component_id(Ecosystem.FILE, f.path.rsplit("/", 1)[-1], f.path),
            fixes=fixes, steps=steps,
        ))
    return tuple(out)


# -- fixes as steps: one ranked list per component, and one plan for the whole target --------------------------

_HASHED_SONAME = re.compile(r"-[0-9a-f]{8}\.so(?:\.|$)")  # auditwheel/delocate vendored copies: never packaged
_GLIBC_ONLY = ("libnsl.so.1", "libanl.so.1", "libmvec.so.1", "libBrokenLocale.so.1", "libthread_db.so.1")


def apk_spec(lib: LibraryFinding) -> str | None:
    """What ``apk add`` takes for a missing library: the cited package name the judge recorded, else
    ``so:SONAME`` (apk installs whichever package provides that soname, or says none does); None where no Alpine
    package can hold it (a glibc-only library, an auditwheel copy with a hashed name: those come with a rebuild or
    a reinstall)."""
    if lib.package == "gcompat":
        return "gcompat"
    if lib.package and " " not in lib.package:
        return lib.package
    if lib.name in _GLIBC_ONLY or _HASHED_SONAME.search(lib.name) or "/" in lib.name:
        return None
    return f"so:{lib.name}"


def waits_on_library(symbol: SymbolFinding, f: FileReport) -> bool:
    """The symbol is looked for in a library that is missing, not in libc: it is no fault of musl's."""
    if symbol.pending_on is not None:
        return True
    if symbol.version is not None and symbol.version.startswith("GLIBC_"):
        return False  # glibc's own version: libc's symbol
    return any(apk_spec(lib) != "gcompat" for lib in f.missing_libraries)


PRELOAD_FIX = ("LD_PRELOAD=/lib/libgcompat.so.0 with gcompat installed resolves the missing symbols "
               "(gcompat does not apply to a dlopen-ed library otherwise)")


def _some(names: list[str], at_most: int) -> str:
    return ", ".join(names[:at_most]) + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def fix_steps(f: FileReport, preload: bool) -> tuple[FixStep, ...]:
    """A judged file's fixes, ranked: Alpine packages, gcompat where it applies, the gcompat preload, then
    rebuilds. The one writer of fixes: a file's ``fixes`` are these steps' texts, and its component's steps are
    these steps. ``preload``: gcompat preloaded resolves every blocker (the judge tried it).

    Built from the findings that are not ignored and the facts behind them: a symbol that waits on a missing
    library is never blamed on musl, and whatever gcompat's package installs (its loader stub, the
    libc.so.6-style links) is its step."""
    live: dict[str, list[str]] = {}
    for x in f.findings:
        if x.ignored is None:
            live.setdefault(x.rule, []).append(x.subject)
    subjects = {rule: sorted(set(names)) for rule, names in live.items()}
    steps: list[FixStep] = []
    by_package: dict[str, list[str]] = {}
    gcompat_covers: list[str] = []
    unpackaged: list[str] = []
    for lib in sorted({lib.name: lib for lib in f.missing_libraries}.values(), key=lambda lib: lib.name):
        if lib.name not in subjects.get("needs-package", ()) and lib.name not in subjects.get("missing-library", ()):
            continue
        spec = apk_spec(lib)
        if spec == "gcompat":
            gcompat_covers.append(lib.name)
        elif spec is None:
            unpackaged.append(lib.name)
        else:
            by_package.setdefault(spec, []).append(lib.name)
    for spec, sonames in sorted(by_package.items()):
        why = (f"apk installs whichever package provides {', '.join(sonames)}; no verified Alpine name"
               if spec.startswith("so:") else f"provides {', '.join(sonames)}")
        steps.append(FixStep(StepKind.APK, f"apk add {spec}  ({why})", spec))
    if "glibc-interpreter" in subjects:
        gcompat_covers.insert(0, f"the interpreter {f.interpreter}")
    names = {*subjects.get("unresolved-symbol", ()), *subjects.get("latent-symbol", ())}
    has = sorted({s.name for s in f.unresolved_symbols if s.gcompat and s.name in names})
    if has:
        gcompat_covers.append(_some(has, 5))
    if gcompat_covers:
        steps.append(FixStep(StepKind.GCOMPAT, f"apk add gcompat  (its package provides {', '.join(gcompat_covers)})",
                             "gcompat"))
    elif f.verdict is Verdict.NEEDS_GCOMPAT:
        steps.append(FixStep(StepKind.GCOMPAT, "apk add gcompat  (glibc compatibility layer; it applies to this "
                                               "file's load context)", "gcompat"))
    if f.verdict is Verdict.BLOCKED and names:
        if preload:
            steps.append(FixStep(StepKind.PRELOAD, PRELOAD_FIX))
        if any(n.startswith("__") and n.endswith("_chk") for n in names):
            steps.append(FixStep(StepKind.REBUILD, "rebuild without -D_FORTIFY_SOURCE, or against musl (the "
                                                   "__*_chk functions are glibc's)"))
        if any(n.startswith("__isoc23_") for n in names):
            steps.append(FixStep(StepKind.REBUILD, "rebuild against musl (glibc >= 2.38 with _GNU_SOURCE emits "
                                                   "__isoc23_* names)"))
        # gcompat applies to a program and its start-up libraries: a symbol it has is not what a rebuild is for
        gcompat_applies = f.context in (Context.EXECUTABLE, Context.STARTUP_LIBRARY)
        blamed = sorted({s.name for s in f.unresolved_symbols if s.name in names and not waits_on_library(s, f)
                         and not (s.gcompat and gcompat_applies)})
        if blamed:
            steps.append(FixStep(StepKind.REBUILD, f"rebuild against musl: musl does not export {_some(blamed, 8)}"))
    relocations = subjects.get("unsupported-relocation", [])
    if any(r.endswith("IRELATIVE") for r in relocations):
        steps.append(FixStep(StepKind.REBUILD, "rebuild without IFUNC: musl does not support IRELATIVE relocations"))
    elif relocations:
        steps.append(FixStep(StepKind.REBUILD, "rebuild against musl: it uses relocation types musl does not "
                                               "support"))
    if "initial-exec-tls" in subjects:
        steps.append(FixStep(StepKind.REBUILD, "rebuild with -ftls-model=global-dynamic: initial-exec TLS fails in "
                                               "a library loaded by dlopen"))
    if "relr-unsupported" in subjects:
        steps.append(FixStep(StepKind.REBUILD, "target musl >= 1.2.4 (Alpine >= 3.18), or relink without -z "
                                               "pack-relative-relocs (DT_RELR)"))
    if wrong := subjects.get("wrong-architecture"):
        steps.append(FixStep(StepKind.REBUILD, "replace the libraries built for another architecture: "
                                               + ", ".join(wrong)))
    if unpackaged:
        steps.append(FixStep(StepKind.REBUILD, f"ship a musl build of {', '.join(unpackaged)} (not in the tree, and "
                                               "no Alpine package holds it)"))
    if "glibc-interpreter" in subjects and f.verdict is Verdict.BLOCKED and not steps:
        steps.append(FixStep(StepKind.REBUILD, f"rebuild against musl (interpreter {f.interpreter} is glibc's)"))
    if any(s.kind is StepKind.REBUILD for s in steps) and not any(s.kind is StepKind.PRELOAD for s in steps):
        # a musl build needs no gcompat: offering both would be two contradictory plans
        steps = [s for s in steps if s.kind is not StepKind.GCOMPAT]
    return rank(steps)


def file_steps(f: FileReport) -> tuple[FixStep, ...]:
    """The steps behind a judged file's ``fixes`` (written by ``fix_steps``)."""
    return fix_steps(f, preload=PRELOAD_FIX in f.fixes)


def rank(steps: list[FixStep] | tuple[FixStep, ...]) -> tuple[FixStep, ...]:
    """Steps in the order of ``StepKind``, each text once (a stable sort: the order within a kind stays)."""
    order = {kind: i for i, kind in enumerate(StepKind)}
    unique = {s.text: s for s in steps}
    return tuple(sorted(unique.values(), key=lambda s: order[s.kind]))


@dataclass(frozen=True)
class Plan:
    """One migration plan for the whole target, from the components' steps: run in this order."""

    base_images: tuple[str, ...]  # the Alpine image of each glibc runtime found ("python:3.11-alpine")
    reinstall: tuple[str, ...]  # the ecosystems' own commands, run in the Alpine image ("pip install x==1.0")
    apk: tuple[str, ...]  # the arguments of one `apk add` line: cited package names, so:SONAME, cmd:NAME
    upgrades: tuple[str, ...]  # library releases that ship a musl build (JARs)
    gcompat: tuple[str, ...]  # what `apk add gcompat` covers, one line per component it helps
    rebuild: tuple[str, ...]  # what only a rebuild against musl fixes: "component: how"
    lost: tuple[str, ...]  # degraded components: "component: what it runs without"


def plan_sections(plan: Plan) -> list[tuple[str, tuple[str, ...]]]:
    """The plan as (heading, items), in the order to act, empty parts left out: what the text formats print."""
    parts = [
        ("Alpine base image", plan.base_images),
        ("Reinstall in the Alpine image", plan.reinstall),
        ("Upgrade", plan.upgrades),
        ("Install", (f"apk add {' '.join(plan.apk)}",) if plan.apk else ()),
        ("gcompat covers", plan.gcompat),
        ("Rebuild against musl", plan.rebuild),
        ("Runs without its native part", plan.lost),
    ]
    return [(heading, items) for heading, items in parts if items]


def plan_of(components: tuple[Component, ...]) -> Plan:
    images: list[str] = []
    reinstall: list[str] = []
    apk: list[str] = []
    upgrades: list[str] = []
    gcompat: list[str] = []
    rebuild: list[str] = []
    for c in components:
        title = f"{c.name} {c.version}" if c.version else c.name
        own_fix = any(s.kind in (StepKind.REINSTALL, StepKind.UPGRADE, StepKind.BASE_IMAGE) for s in c.steps)
        for s in c.steps:
            if s.kind is StepKind.BASE_IMAGE and s.action:
                images.append(s.action)
            elif s.kind is StepKind.REINSTALL:
                reinstall.append(s.action or s.text)
            elif s.kind is StepKind.UPGRADE:
                upgrades.append(s.text)
            elif own_fix:
                continue  # the ecosystem's own fix replaces the files these steps are about
            elif s.kind is StepKind.APK and s.action:
                apk.append(s.action)
            elif s.kind is StepKind.GCOMPAT:
                apk.append("gcompat")
                gcompat.append(f"{title}: {s.text.removeprefix('apk add gcompat').strip(' ()')}")
            elif s.kind is StepKind.PRELOAD:
                apk.append("gcompat")
                gcompat.append(f"{title}: {s.text}")
            elif s.kind is StepKind.REBUILD:
                rebuild.append(f"{title}: {s.text}")
    lost = tuple(f"{c.name}: {c.lost}" for c in components if c.verdict is Verdict.DEGRADED and c.lost)
    return Plan(
        base_images=tuple(dict.fromkeys(images)), reinstall=tuple(dict.fromkeys(reinstall)),
        apk=tuple(sorted(set(apk))), upgrades=tuple(dict.fromkeys(upgrades)), gcompat=tuple(dict.fromkeys(gcompat)),
        rebuild=tuple(dict.fromkeys(rebuild)), lost=lost,
    )


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Skip:
    path: str
    reason: str
    unchecked: bool = True  # content that may hold ELF code went unchecked (False: only a dangling link)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TargetInfo:
    musl: str
    alpine: str | None
    gcompat: bool
    arch: str | None  # None: each file is judged for its own architecture


@dataclass(frozen=True)
class Report:
    schema_version: str
    tool_version: str
    source: str
    target: TargetInfo
    verdict: Verdict
    files: tuple[FileReport, ...]
    components: tuple[Component, ...]
    skipped: tuple[Skip, ...]
    notes: tuple[str, ...] = ()  # about the scan as a whole (expired ignore entries, ...)
    root: str = ""  # the host directory every file path is relative to (a lone file's directory)

    @property
    def complete(self) -> bool:
        """Everything that could hold ELF code was checked: only then can the scan read as compatible."""
        return not any(s.unchecked for s in self.skipped)

    @property
    def plan(self) -> Plan:
        """The migration plan, derived from the components (so a report read back has the same one)."""
        return plan_of(self.components)

    @property
    def summary(self) -> dict[str, int]:
        counts = {v.value: 0 for v in FILE_VERDICTS}
        for f in self.files:
            counts[f.verdict.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``SCHEMA_VERSION``) as plain values."""
        return orjson.loads(self.to_json_bytes())  # type: ignore[no-any-return]

    def to_json(self, indent: bool = False) -> str:
        """``to_dict`` as JSON, compact unless ``indent`` (two spaces)."""
        return self.to_json_bytes(indent).decode()

    def to_json_bytes(self, indent: bool = False) -> bytes:
        """``to_json`` as UTF-8, encoded by orjson from the dataclasses and the references ``_by_reference``
        builds: a large tree's report is big, and a ``str`` of it would be one more copy."""
        top = _by_reference(self)
        try:
            return orjson.dumps(top, option=orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0))
        except orjson.JSONEncodeError:  # a name that is not UTF-8 (surrogate escapes): json writes it as \udcXX
            return (json.dumps(top, indent=2 if indent else None, default=_fields_of) + "\n").encode("ascii")

    def json_pieces(self) -> list[bytes]:
        """``to_json_bytes()`` (compact) in pieces that concatenate to it, about one per file: each file's part is
        encoded as soon as it is made, so neither the whole document's values nor one object of all its bytes is
        ever held (for 10,000 files, 45 MB of JSON and as much again of dicts)."""
        references = _References()
        files: list[bytes] = []  # the files' parts, joined a megabyte at a time: orjson's buffers are larger
        group: list[bytes] = []
        size = 0
        try:
            for f in self.files:
                if group or files:
                    group.append(b",")
                encoded = orjson.dumps(references.file(f))
                group.append(encoded)
                size += len(encoded)
                if size >= _JSON_PIECE:
                    files.append(b"".join(group))
                    group, size = [], 0
            files.append(b"".join(group))
            # The members around the files, each encoded alone (orjson's compact form does not depend on where a
            # value sits): no copy of the large ones (objects, components) is made to cut them.
            document = _document(self, [], references.objects)
            keys = list(document)
            cut = keys.index("files")
            head = orjson.dumps({key: document[key] for key in keys[:cut]})[:-1] + b',"files":['
            tail: list[bytes] = [b"]"]
            for key in keys[cut + 1:]:
                tail += (b"," + orjson.dumps(key) + b":", orjson.dumps(document[key]))
        except orjson.JSONEncodeError:  # a name that is not UTF-8: the whole document as json writes it
            return [self.to_json_bytes()]
        return [head, *files, *tail, b"}\n"]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """The inverse of ``to_dict`` for schema 1.x to 3.x; unknown keys (from newer minor versions) are ignored,
        and ``plan`` is derived from the components again."""
        major = str(data.get("schema_version", "")).split(".")[0]
        if major not in READABLE_MAJORS:
            raise ValueError(f"unsupported schema_version {data.get('schema_version')!r}")
        if major == "3":
            data = _expanded(data)
        report: Report = builder(cls)(data)
        return report

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))


# -- schema 3: findings by reference ---------------------------------------------------------------------------

_JSON_PIECE = 1 << 20  # bytes of files' JSON per piece of ``Report.json_pieces``
SYMBOL_RULES = {Effect.FATAL: "unresolved-symbol", Effect.LATENT: "latent-symbol"}
# The findings that come before a file's symbol findings (verdict._findings writes them in this order).
_BEFORE_SYMBOLS = frozenset({"glibc-interpreter", "missing-library", "needs-package"})
_GroupKey = tuple[str | None, str | None, bool, tuple[str, ...], bool]


def library_message(rule: str, lib: LibraryFinding) -> str:
    """What the finding of a missing library says (rule ``needs-package`` or ``missing-library``)."""
    if rule == "needs-package":
        return f"{lib.name} (needed by {lib.needed_by}) comes from the Alpine package {lib.package}"
    return f"{lib.name} (needed by {lib.needed_by}): {lib.reason}"


def symbol_findings(f: FileReport, level: Verdict, fix: str | None) -> list[Finding]:
    """The findings of the file's unresolved symbols (those that wait on no library), in their order."""
    return [Finding(SYMBOL_RULES[s.effect], RULES[SYMBOL_RULES[s.effect]].id, level, f.path, s.file, s.name,
                    symbol_message(s), fix) for s in f.unresolved_symbols if s.pending_on is None]


def _by_reference(report: Report) -> dict[str, Any]:
    """The report as a schema-3 document.

    ``objects`` maps each object with unresolved symbols to groups of them that share every fact but the name,
    listed once for the whole report. A file's ``unresolved_symbols`` refer to a group (to some of its names by
    index, unless all), with the effect and the library the symbols wait on in that file's load. Its findings
    about those symbols are one ``symbol_findings`` line (their level and fix) where ``symbol_findings()`` gives
    them back exactly; the other findings leave out what is derived: ``path`` and ``object`` when they are the
    file's path, ``rule_id`` (the rule's), ``ignored`` when None, a missing library's ``message`` when
    ``library_message`` says it. A component leaves out ``fix`` and ``fixes`` when they are its steps' texts, and
    ``id`` when it is ``component_id``'s."""
    references = _References()
    return _document(report, [references.file(f) for f in report.files], references.objects)


def _document(report: Report, files: list[dict[str, Any]], objects: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    top = {**fields_of(report), "files": files, "objects": objects,
           "components": [_component_by_reference(c) for c in report.components]}
    return {**top, "summary": report.summary, "complete": report.complete, "plan": report.plan}


class _References:
    """The ``objects`` of a schema-3 document, filled as its files are made, each file referring to them."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[_GroupKey, tuple[int, dict[str, int], list[str]]]] = {}
        self.objects: dict[str, list[dict[str, Any]]] = {}

    def file(self, f: FileReport) -> dict[str, Any]:
        groups, objects = self.groups, self.objects
        refs: dict[tuple[str, int, Effect, str | None], list[int]] = {}
        for s in f.unresolved_symbols:
            of_object = groups.setdefault(s.file, {})
            key = (s.version, s.from_library, s.weak, s.relocations, s.gcompat)
            group = of_object.get(key)
            if group is None:
                names: list[str] = []
                group = of_object[key] = (len(of_object), {}, names)
                objects.setdefault(s.file, []).append({
                    "version": s.version, "from_library": s.from_library, "weak": s.weak,
                    "relocations": s.relocations, "gcompat": s.gcompat, "names": names,
                })
            number, index, names = group
            at = index.get(s.name)
            if at is None:
                at = index[s.name] = len(names)
                names.append(s.name)
            refs.setdefault((s.file, number, s.effect, s.pending_on), []).append(at)
        unresolved = []
        for (obj, number, effect, pending_on), indices in refs.items():
            ref: dict[str, Any] = {"object": obj, "group": number, "effect": effect}
            if pending_on is not None:
                ref["pending_on"] = pending_on
            if indices != list(range(len(objects[obj][number]["names"]))):
                ref["symbols"] = indices
            unresolved.append(ref)
        return {**fields_of(f), "unresolved_symbols": unresolved, **_findings_by_reference(f)}


def _findings_by_reference(f: FileReport) -> dict[str, Any]:
    findings = list(f.findings)
    first = next((i for i, x in enumerate(findings) if x.rule in SYMBOL_RULES.values()), None)
    block: dict[str, Any] = {}
    if first is not None and all(x.rule in _BEFORE_SYMBOLS for x in findings[:first]):
        level, fix = findings[first].level, findings[first].fix
        derived = symbol_findings(f, level, fix)
        if findings[first:first + len(derived)] == derived and not any(
                x.rule in SYMBOL_RULES.values() for x in findings[first + len(derived):]):
            block = {"symbol_findings": {"level": level, "fix": fix}}
            del findings[first:first + len(derived)]
    return {"findings": [_finding_by_reference(x, f) for x in findings], **block}


def _finding_by_reference(x: Finding, f: FileReport) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": x.rule}
    if RULES[x.rule].id != x.rule_id:
        out["rule_id"] = x.rule_id
    out["level"] = x.level
    if x.path != f.path:
        out["path"] = x.path
    if x.object != f.path:
        out["object"] = x.object
    out["subject"] = x.subject
    if x.message != _library_message(f.missing_libraries, x.rule, x.object, x.subject):
        out["message"] = x.message
    out["fix"] = x.fix
    if x.ignored is not None:
        out["ignored"] = x.ignored
    return out


def _library_message(libraries: tuple[LibraryFinding, ...], rule: str, obj: str, subject: str) -> str | None:
    if rule not in ("needs-package", "missing-library"):
        return None
    lib = next((lib for lib in libraries if lib.name == subject and lib.needed_by == obj), None)
    return None if lib is None else library_message(rule, lib)


def _component_by_reference(c: Component) -> dict[str, Any]:
    texts = tuple(s.text for s in c.steps)
    derived: dict[str, object] = {"id": component_id(c.ecosystem, c.name, c.location)}
    if c.fixes == texts and c.fix == (texts[0] if texts else None):
        derived.update(fixes=texts, fix=texts[0] if texts else None)
    return {k: v for k, v in fields_of(c).items() if k not in derived or derived[k] != v}


def _expanded(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-3 document in the schema-2 shape that ``builder`` reads."""
    objects: dict[str, list[dict[str, Any]]] = data.get("objects", {})
    build_file = builder(FileReport)
    files = []
    for f in data.get("files", []):
        symbols = []
        for ref in f.get("unresolved_symbols", []):
            group = objects[ref["object"]][ref["group"]]
            names = group["names"]
            for i in ref.get("symbols", range(len(names))):
                symbols.append({
                    "name": names[i], "version": group["version"], "weak": group["weak"],
                    "relocations": group["relocations"], "fatal": ref["effect"] == Effect.FATAL.value,
                    "effect": ref["effect"], "file": ref["object"], "from_library": group["from_library"],
                    "gcompat": group["gcompat"], "pending_on": ref.get("pending_on"),
                })
        file: FileReport = build_file({**f, "unresolved_symbols": symbols, "findings": []})
        file = dataclasses.replace(file, unresolved_symbols=tuple(sorted(file.unresolved_symbols, key=symbol_order)))
        findings = []
        for x in f.get("findings", []):
            rule, obj = x["rule"], x.get("object", file.path)
            message = x.get("message")
            if message is None:
                message = _library_message(file.missing_libraries, rule, obj, x["subject"])
            findings.append({"rule": rule, "rule_id": x.get("rule_id", RULES[rule].id if rule in RULES else ""),
                             "level": x["level"], "path": x.get("path", file.path), "object": obj,
                             "subject": x["subject"], "message": message, "fix": x.get("fix"),
                             "ignored": x.get("ignored")})
        block = f.get("symbol_findings")
        if block is not None:
            at = next((i for i, x in enumerate(findings) if x["rule"] not in _BEFORE_SYMBOLS), len(findings))
            findings[at:at] = [fields_of(x) for x in symbol_findings(file, Verdict(block["level"]), block.get("fix"))]
        files.append({**f, "unresolved_symbols": [fields_of(s) for s in file.unresolved_symbols], "findings": findings})
    components = []
    for c in data.get("components", []):
        texts = [step["text"] for step in c.get("steps", [])]
        derived = {"id": component_id(Ecosystem(c["ecosystem"]), c["name"], c["location"]), "fixes": texts,
                   "fix": texts[0] if texts else None}
        components.append({**derived, **c})
    return {**data, "files": files, "components": components}


def _fields_of(value: Any) -> Any:
    """What json cannot encode itself: a dataclass is its fields (in order), an enum its value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return fields_of(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not part of a report")




_SUMMARY_ORDER = (
    Verdict.BLOCKED, Verdict.NEEDS_GCOMPAT, Verdict.NEEDS_PACKAGES, Verdict.NATIVE, Verdict.NOT_APPLICABLE,
)


def summary_line(report: Report) -> str:
    """'Verdict: blocked (7 ELF files: 3 blocked, 2 needs-gcompat; 1 skipped)': the last line of a table."""
    counts = report.summary
    parts = ", ".join(f"{counts[v.value]} {v.value}" for v in _SUMMARY_ORDER if counts[v.value])
    skipped = f"; {len(report.skipped)} skipped" if report.skipped else ""
    incomplete = "" if report.complete else " INCOMPLETE: some files could not be checked"
    return f"Verdict: {report.verdict.value} ({len(report.files)} ELF files: {parts or 'none'}{skipped}){incomplete}"


def overall_verdict(units: tuple[FileReport, ...] | tuple[Component, ...]) -> Verdict:
    """The worst verdict of the files or components, not-applicable ones aside."""
    judged = [u.verdict for u in units if u.verdict is not Verdict.NOT_APPLICABLE]
    if not units:
        return Verdict.NOTHING_TO_CHECK
    if not judged:
        return Verdict.NOT_APPLICABLE
    return max(judged, key=lambda v: v.severity)
