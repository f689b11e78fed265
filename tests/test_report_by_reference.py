"""Schema 3.0: a library's unresolved symbols are written once, at the library, and each file that loads it refers
to them with the effect in its own load. The document reads back to the same report."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from muslcheck.model.options import Context
from muslcheck.model.report import (
    SCHEMA_VERSION,
    Component,
    Ecosystem,
    Effect,
    FileKind,
    FileReport,
    Finding,
    FixStep,
    LibraryFinding,
    Report,
    StepKind,
    SymbolFinding,
    TargetInfo,
    Verdict,
    library_message,
    symbol_findings,
    symbol_order,
)
from muslcheck.model.rules import RULES

LIB = "/app/lib/libfoo.so"


def _symbol(name: str, effect: Effect, *, version: str | None = "GLIBC_2.2.5", pending_on: str | None = None,
            relocations: tuple[str, ...] = ("R_X86_64_JUMP_SLOT",), file: str = LIB,
            gcompat: bool = False) -> SymbolFinding:
    return SymbolFinding(name, version, False, relocations, effect is Effect.FATAL, effect, file, "libc.so.6",
                         gcompat, pending_on)


def _file(path: str, context: Context, symbols: list[SymbolFinding], *, libraries: tuple[LibraryFinding, ...] = (),
          fix: str | None = "rebuild against musl") -> FileReport:
    ordered = tuple(sorted(symbols, key=symbol_order))
    shell = FileReport(path, "x86_64", FileKind.EXECUTABLE, context, Verdict.BLOCKED, None, None, ("libfoo.so",),
                       libraries, ordered, (), (), (), (), ("rebuild against musl",))
    library_findings = tuple(Finding(rule, RULES[rule].id, Verdict.BLOCKED, path, lib.needed_by, lib.name,
                                     library_message(rule, lib), "apk add so:x")
                             for lib in libraries for rule in ("missing-library",))
    return replace(shell, findings=(*library_findings, *symbol_findings(shell, Verdict.BLOCKED, fix)))


def _report(*files: FileReport) -> Report:
    steps = (FixStep(StepKind.REBUILD, "rebuild against musl"),)
    components = tuple(Component(f.path.rsplit("/", 1)[-1], None, Ecosystem.FILE, f.path, f.verdict, (f.path,),
                                 {"x86_64": f.path}, "rebuild against musl",
                                 f"file:{f.path.rsplit('/', 1)[-1]}:{f.path}", ("rebuild against musl",),
                                 steps=steps) for f in files)
    return Report(SCHEMA_VERSION, "test", "/app", TargetInfo("1.2.5", "3.21", False, None), Verdict.BLOCKED,
                  files, components, ())


def _doc(report: Report) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(report.to_json_bytes())
    return doc


def test_a_library_loaded_by_two_programs_has_its_symbols_written_once() -> None:
    shared = ["memcpy_chk", "error", "strtoq", "__isoc23_strtol"]
    program = _file("/app/bin/server", Context.EXECUTABLE,
                    [_symbol(n, Effect.FATAL) for n in shared] + [_symbol("own", Effect.FATAL, file="/app/bin/server",
                                                                          version=None)])
    plugin_host = _file("/app/bin/plugins", Context.DLOPEN_LAZY,
                        [_symbol(n, Effect.LATENT) for n in shared[:3]])  # its load defines __isoc23_strtol
    report = _report(program, plugin_host)
    doc = _doc(report)
    groups = doc["objects"][LIB]
    assert [g["names"] for g in groups] == [sorted(shared)]
    assert groups[0]["version"] == "GLIBC_2.2.5" and groups[0]["gcompat"] is False
    server, plugins = doc["files"]
    assert {"object": LIB, "group": 0, "effect": "fatal"} in server["unresolved_symbols"]
    names = groups[0]["names"]
    assert plugins["unresolved_symbols"] == [{"object": LIB, "group": 0, "effect": "latent",
                                              "symbols": [names.index(n) for n in sorted(shared[:3])]}]
    assert Report.from_json(report.to_json()) == report


def test_effects_versions_and_waiting_libraries_split_the_references() -> None:
    symbols = [_symbol("a", Effect.FATAL), _symbol("b", Effect.LATENT), _symbol("c", Effect.FATAL, version=None),
               _symbol("error", Effect.FATAL, gcompat=True),
               _symbol("d", Effect.FATAL, pending_on="libsnappy.so.1"),
               _symbol("e", Effect.FATAL, relocations=("R_X86_64_GLOB_DAT",))]
    report = _report(_file("/app/bin/x", Context.EXECUTABLE, symbols))
    doc = _doc(report)
    (f,) = doc["files"]
    refs = f["unresolved_symbols"]
    assert len(refs) == 6 and sum(1 for r in refs if r.get("pending_on") == "libsnappy.so.1") == 1
    assert len(doc["objects"][LIB]) == 4  # (GLIBC_2.2.5, JUMP_SLOT), (no version), gcompat has it, GLOB_DAT
    assert f["symbol_findings"] == {"level": "blocked", "fix": "rebuild against musl"}
    assert not any(x["rule"] in ("unresolved-symbol", "latent-symbol") for x in f["findings"])
    again = Report.from_json(report.to_json())
    assert again == report
    # the symbol that waits on a library has no finding of its own
    assert [x.subject for x in again.files[0].findings] == ["a", "b", "c", "e", "error"]


def test_findings_that_are_not_derived_are_written_whole() -> None:
    lib = LibraryFinding("libsnappy.so.1", "/app/bin/x", "No such file or directory", None)
    plain = _file("/app/bin/x", Context.EXECUTABLE, [_symbol("a", Effect.FATAL), _symbol("b", Effect.FATAL)],
                  libraries=(lib,))
    ignored = replace(plain.findings[-1], ignored="known, fixed in 2.0")
    odd = replace(plain, findings=(*plain.findings[:-1], ignored))
    report = _report(plain, replace(odd, path="/app/bin/y"))
    doc = _doc(report)
    first, second = doc["files"]
    assert first["findings"] == [{"rule": "missing-library", "level": "blocked", "subject": "libsnappy.so.1",
                                  "fix": "apk add so:x"}]  # path, object, rule_id and message derived
    assert "symbol_findings" not in second  # one symbol's finding is ignored: all of them are written
    assert [x["subject"] for x in second["findings"]][1:] == ["a", "b"]
    assert second["findings"][-1]["ignored"] == "known, fixed in 2.0"
    assert Report.from_json(report.to_json()) == report


def test_components_leave_out_what_their_steps_say() -> None:
    report = _report(_file("/app/bin/x", Context.EXECUTABLE, [_symbol("a", Effect.FATAL)]))
    (component,) = _doc(report)["components"]
    assert not {"fix", "fixes", "id"} & component.keys()
    other = replace(report, components=(replace(report.components[0], fix="something else"),))
    (written,) = _doc(other)["components"]
    assert written["fix"] == "something else" and "id" not in written
    assert Report.from_json(other.to_json()) == other


@pytest.mark.parametrize("major", ["1.1", "2.0"])
def test_documents_of_earlier_majors_still_read(major: str) -> None:
    report = _report(_file("/app/bin/x", Context.EXECUTABLE, [_symbol("a", Effect.FATAL)]))
    file = report.files[0]
    old = {
        "schema_version": major, "tool_version": "old", "source": "/app",
        "target": {"musl": "1.2.5", "alpine": "3.21", "gcompat": False, "arch": None}, "verdict": "blocked",
        "files": [{**orjson.loads(orjson.dumps(file)), "path": file.path}], "components": [], "skipped": [],
    }
    again = Report.from_dict(old)
    assert again.files[0] == file
