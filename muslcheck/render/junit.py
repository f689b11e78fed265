"""JUnit XML, for GitLab (``artifacts:reports:junit``), Jenkins and other CI test views.

One ``<testsuite name="muslcheck">`` (inside ``<testsuites>``) with one ``<testcase>`` per component:
``classname`` is the component's ecosystem, ``name`` is ``NAME (LOCATION)``.

A testcase fails as the CI gate does: only a component whose verdict reaches ``fail_on``
(``--fail-on``, default ``blocked``) gets a ``<failure>``, listing its live findings and the fixes.
So by default a needs-gcompat or needs-packages component is a *passing* testcase whose
``<system-out>`` says what to install: the move works once that is done, and the pipeline stays
green exactly when ``muslcheck scan`` exits 0. A not-applicable component is ``<skipped>``.
Files that could not be checked and notes about the scan as a whole go to the suite's
``<system-out>``. ``errors`` is always 0: a scan that fails produces no report.
No timestamps, host names or durations: the output is deterministic.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from muslcheck.model.report import Component, FileReport, Finding, Report, Verdict
from muslcheck.render.interface import Renderer, escaped

SUITE_NAME = "muslcheck"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(report: Report, *, fail_on: Verdict = Verdict.BLOCKED) -> str:
    report = escaped(report)  # names from the target, shown visibly
    by_path = {f.path: f for f in report.files}
    suites = ET.Element("testsuites", name=SUITE_NAME)
    suite = ET.SubElement(suites, "testsuite", name=SUITE_NAME)
    failures = skipped = 0
    for c in report.components:
        case = ET.SubElement(suite, "testcase", classname=_safe(c.ecosystem), name=_safe(f"{c.name} ({c.location})"))
        files = [by_path[p] for p in c.files if p in by_path]
        if c.verdict is Verdict.NOT_APPLICABLE:
            skipped += 1
            note = next((n for f in files for n in f.notes), "not applicable")
            ET.SubElement(case, "skipped", message=_safe(note))
        elif c.verdict.severity >= fail_on.severity and c.verdict is not Verdict.NOTHING_TO_CHECK:
            failures += 1
            live = [x for f in files for x in f.findings if x.ignored is None]
            failure = ET.SubElement(
                case, "failure", message=_safe(_failure_message(c, live)), type=c.verdict.value
            )
            failure.text = _safe(_details(c, files, live))
        else:
            text = _details(c, files, [x for f in files for x in f.findings if x.ignored is None])
            if text:
                ET.SubElement(case, "system-out").text = _safe(text)
    out = [f"not checked: {s.path}: {s.reason}" for s in report.skipped] + [f"note: {n}" for n in report.notes]
    if out:
        ET.SubElement(suite, "system-out").text = _safe("\n".join(out))
    counts = {"tests": str(len(report.components)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped)}
    for element in (suites, suite):
        element.attrib.update(counts)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


RENDERER = Renderer("junit", lambda report, options: render_junit(report, fail_on=options.fail_on))


def _failure_message(c: Component, live: list[Finding]) -> str:
    if not live:
        return c.verdict.value
    return f"{c.verdict.value}: {len(live)} problem(s), first: {live[0].message}"


def _details(c: Component, files: list[FileReport], live: list[Finding]) -> str:
    """What is wrong and what to do: findings, then the fixes, then what was ignored."""
    lines = [f"{c.verdict.value}: {c.location}"]
    lines.extend(f"[{x.rule_id} {x.rule}] {x.message}" + (f" (fix: {x.fix})" if x.fix else "") for x in live)
    fixes = list(dict.fromkeys(x for f in files for x in f.fixes))
    if not fixes and c.fix:
        fixes = [c.fix]
    lines.extend(f"fix: {x}" for x in fixes)
    lines.extend(f"ignored [{x.rule_id} {x.rule}] {x.message}: {x.ignored}"
                 for f in files for x in f.findings if x.ignored is not None)
    return "\n".join(lines) if len(lines) > 1 else ""


def _safe(text: str) -> str:
    """XML 1.0 cannot carry control characters or lone surrogates (from undecodable file names)."""
    return _NOT_XML.sub("\ufffd", text)
