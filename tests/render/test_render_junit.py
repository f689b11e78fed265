"""JUnit XML: parses, one testcase per component, failures exactly where the CI gate fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from muslcheck.model.report import Report, Verdict, file_components
from muslcheck.render import RENDERERS, RenderOptions
from muslcheck.render.junit import render_junit
from tests.render.fixed_report import fixed_report
from tests.render.render_support import scan_samples


@pytest.fixture
def samples_report(samples_dir: Path) -> Report:
    return scan_samples(samples_dir)


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def suite_of(root: ET.Element) -> ET.Element:
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "muslcheck"
    return suites[0]


def count(report: Report, *verdicts: Verdict) -> int:
    return sum(1 for c in report.components if c.verdict in verdicts)


def check_counts(root: ET.Element, report: Report, fail_on: Verdict = Verdict.BLOCKED) -> None:
    suite = suite_of(root)
    cases = suite.findall("testcase")
    judged = (Verdict.NATIVE, Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED)
    failing = [v for v in judged if v.severity >= fail_on.severity]  # as the CLI's exit_code counts
    expected = {
        "tests": len(report.components),
        "failures": count(report, *failing),
        "skipped": count(report, Verdict.NOT_APPLICABLE),
        "errors": 0,
    }
    for element in (root, suite):
        assert {k: int(element.get(k, "-1")) for k in expected} == expected
    assert len(cases) == expected["tests"]
    assert sum(1 for c in cases if c.find("failure") is not None) == expected["failures"]
    assert sum(1 for c in cases if c.find("skipped") is not None) == expected["skipped"]
    assert not any(c.find("error") is not None for c in cases)
    for case, component in zip(cases, report.components, strict=True):
        assert case.get("classname") == component.ecosystem
        assert case.get("name") == f"{component.name} ({component.location})"


def test_junit_registered_with_the_fail_on_option() -> None:
    report = fixed_report()
    outputs = {level: RENDERERS["junit"].render(report, RenderOptions(fail_on=level))
               for level in (Verdict.NATIVE, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED)}
    assert outputs == {level: render_junit(report, fail_on=level) for level in outputs}
    assert len(set(outputs.values())) == len(outputs)  # the option reaches the renderer


def test_samples_counts(samples_report: Report) -> None:
    root = parse(render_junit(samples_report))
    check_counts(root, samples_report)
    assert count(samples_report, Verdict.BLOCKED) > 0
    assert count(samples_report, Verdict.NEEDS_GCOMPAT) > 0


def test_samples_case_contents(samples_report: Report) -> None:
    cases = {c.get("name"): c for c in suite_of(parse(render_junit(samples_report))).findall("testcase")}
    ifunc = cases["libifunc.so (/ifunc/app/lib/libifunc.so)"]
    failure = ifunc.find("failure")
    assert failure is not None
    assert failure.get("type") == "blocked"
    assert "R_X86_64_IRELATIVE" in (failure.get("message") or "")
    assert "fix: rebuild without IFUNC" in (failure.text or "")
    fortify = cases["fortify (/fortify/app/bin/fortify)"]
    assert fortify.find("failure") is None
    out = fortify.find("system-out")
    assert out is not None and "apk add gcompat" in (out.text or "")
    cxx = cases["libcxx.so (/cxx/app/lib/libcxx.so)"].find("system-out")
    assert cxx is not None and "apk add libstdc++" in (cxx.text or "")


def test_fail_on_moves_the_threshold(samples_report: Report) -> None:
    for level in (Verdict.NATIVE, Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED):
        check_counts(parse(render_junit(samples_report, fail_on=level)), samples_report, level)


def test_fixed_report() -> None:
    report = fixed_report()
    root = parse(render_junit(report))
    check_counts(root, report)
    suite = suite_of(root)
    skipped = suite.find("testcase/skipped")
    assert skipped is not None and "arm" in (skipped.get("message") or "")
    out = suite.find("system-out")
    assert out is not None
    assert "not checked: /opt/app/lib/libbroken.so" in (out.text or "")
    assert "ignore entry expired" in (out.text or "")
    fortify = next(c for c in suite.findall("testcase") if c.get("name") == "fortify (/opt/tools/fortify)")
    text = fortify.findtext("system-out") or ""
    assert "ignored [MC003 unresolved-symbol]" in text and "only reached in debug builds" in text
    assert "__printf_chk" not in text.split("ignored")[0]  # not listed as a live finding


def test_characters_xml_cannot_carry() -> None:
    report = fixed_report()
    odd = replace(report.files[0], path="/opt/app/bin/ser\x01ver\udcff")
    files = (odd, *report.files[1:])
    report = replace(report, files=files, components=file_components(files))
    root = parse(render_junit(report))
    names = [c.get("name") or "" for c in suite_of(root).findall("testcase")]
    assert "ser\\x01ver\\xff (/opt/app/bin/ser\\x01ver\\xff)" in names  # shown visibly (issue 18.6)
