"""The result of a scan: frozen dataclasses, and their JSON form (schema in schema/report.schema.json)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import orjson

from muslcheck.model.codec import builder
from muslcheck.model.options import Context

SCHEMA_VERSION = "1.1"


class Verdict(StrEnum):
    NATIVE = "native"
    NEEDS_PACKAGES = "needs-packages"
    NEEDS_GCOMPAT = "needs-gcompat"
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
    Verdict.BLOCKED: 3,
}


class FileKind(StrEnum):
    """What an ELF file is to the dynamic linker."""

    EXECUTABLE = "executable"  # has PT_INTERP (or is ET_EXEC): the loader starts it
    STATIC = "static"  # no dynamic section, or a static PIE: no loader involved
    SHARED_LIBRARY = "shared-library"
    OTHER = "other"  # an object file, a core dump: never mapped by the loader


@dataclass(frozen=True)
class SymbolFinding:
    name: str
    version: str | None  # the version requested (never checked by musl)
    weak: bool
    relocations: tuple[str, ...]
    fatal: bool  # False: latent (deferred by RTLD_LAZY: loads, then crashes on the first call)
    effect: str  # "fatal" | "latent"
    file: str  # the object whose relocation fails
    from_library: str | None  # the library the version requirement names (e.g. "libc.so.6")
    gcompat: bool  # gcompat provides it
    pending_on: str | None  # a missing library that probably provides it (then it is not a blocker yet)


@dataclass(frozen=True)
class LibraryFinding:
    name: str
    needed_by: str
    reason: str
    package: str | None  # the Alpine package that provides the soname, when known


@dataclass(frozen=True)
class RelocationFinding:
    type: int
    name: str
    count: int
    file: str


@dataclass(frozen=True)
class TlsFinding:
    symbol: str | None
    file: str
    definer: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class LoadStep:
    name: str  # as requested (DT_NEEDED, preload)
    path: str  # where the model found it
    found_by: str
    links: tuple[str, ...]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Component:
    """A unit a user acts on: a Maven library, a Python distribution, an npm package, a runtime,
    an OS package, or a loose ELF file."""

    name: str
    version: str | None
    ecosystem: str  # "maven", "pypi", "npm", "runtime", "os-package" or "file"
    location: str
    verdict: Verdict
    files: tuple[str, ...]
    selected: dict[str, str]  # architecture -> the file its loader would pick on musl
    fix: str | None  # the best of ``fixes``
    id: str = ""  # "ecosystem:name:location", what a file's ``component`` names
    fixes: tuple[str, ...] = ()  # every fix line, most preferred first
    notes: tuple[str, ...] = ()  # how its loader picks a build, why a file does not count...


def component_id(ecosystem: str, name: str, location: str) -> str:
    return f"{ecosystem}:{name}:{location}"


def file_components(files: tuple[FileReport, ...]) -> tuple[Component, ...]:
    """Each file its own component (ecosystem "file")."""
    return tuple(
        Component(
            name=f.path.rsplit("/", 1)[-1], version=None, ecosystem="file", location=f.path, verdict=f.verdict,
            files=(f.path,), selected={f.arch: f.path} if f.verdict is not Verdict.NOT_APPLICABLE else {},
            fix=f.fixes[0] if f.fixes else None, id=component_id("file", f.path.rsplit("/", 1)[-1], f.path),
            fixes=f.fixes,
        )
        for f in files
    )


@dataclass(frozen=True)
class Skip:
    path: str
    reason: str
    unchecked: bool = True  # content that may hold ELF code went unchecked (False: only a dangling link)


@dataclass(frozen=True)
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
    def summary(self) -> dict[str, int]:
        counts = {v.value: 0 for v in Verdict if v is not Verdict.NOTHING_TO_CHECK}
        for f in self.files:
            counts[f.verdict.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _plain(self)
        data["summary"] = self.summary
        data["complete"] = self.complete
        return data

    def to_json(self, indent: bool = False) -> str:
        """``to_dict`` as JSON, compact unless ``indent`` (two spaces)."""
        return self.to_json_bytes(indent).decode()

    def to_json_bytes(self, indent: bool = False) -> bytes:
        """``to_json`` as UTF-8, encoded straight from the dataclasses by orjson: a large tree's report is
        big (26 MB for 1,000 glibc libraries), and a ``str`` of it would be one more copy."""
        top = {**vars(self), "summary": self.summary, "complete": self.complete}
        try:
            return orjson.dumps(top, option=orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0))
        except orjson.JSONEncodeError:  # a name that is not UTF-8 (surrogate escapes): json writes it as \udcXX
            return (json.dumps(top, indent=2 if indent else None, default=_fields_of) + "\n").encode("ascii")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """The inverse of ``to_dict``; unknown keys (from newer 1.x writers) are ignored."""
        major = str(data.get("schema_version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"unsupported schema_version {data.get('schema_version')!r}")
        report: Report = builder(cls)(data)
        return report

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))


def _fields_of(value: Any) -> Any:
    """What json cannot encode itself: a dataclass is its fields (in order), an enum its value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return vars(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not part of a report")


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, enums to their values (no deep copies)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    names = _FIELD_NAMES.get(type(value))
    if names is None and dataclasses.is_dataclass(value):
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.value if isinstance(value, Enum) else value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


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
