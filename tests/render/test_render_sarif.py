"""SARIF 2.1.0: valid against the official schema, one rule per RULES entry, stable fingerprints."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import muslcheck
from muslcheck.model.report import Report
from muslcheck.model.rules import RULES
from muslcheck.render import RENDERERS, RenderOptions
from muslcheck.render.sarif import FINGERPRINT_KEY, artifact_uri, render_sarif
from tests.render.fixed_report import fixed_report
from tests.render.render_support import DATA, sarif_schema, scan_samples

SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


@pytest.fixture
def samples_report(samples_dir: Path) -> Report:
    return scan_samples(samples_dir)


@pytest.fixture(name="sarif_schema")
def _sarif_schema() -> dict[str, Any]:
    return sarif_schema()


def sarif(report: Report) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(report))
    return log


def validate(log: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def results(log: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = log["runs"][0]["results"]
    return found


def uri(result: dict[str, Any]) -> str:
    location: str = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    return location


def find(log: dict[str, Any], rule_id: str, location: str, text: str) -> dict[str, Any]:
    hits = [r for r in results(log) if r["ruleId"] == rule_id and uri(r) == location and text in r["message"]["text"]]
    assert len(hits) == 1, f"{rule_id} at {location} with {text!r}: {hits}"
    return hits[0]


def test_vendored_schema_is_the_official_file(sarif_schema: dict[str, Any]) -> None:
    raw = (DATA / "sarif-schema-2.1.0.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256
    assert sarif_schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert sarif_schema["id"].endswith("/sarif-schema-2.1.0.json")


def test_sarif_registered() -> None:
    assert RENDERERS["sarif"].render(fixed_report(), RenderOptions()) == render_sarif(fixed_report())


def test_samples_scan_validates(samples_report: Report, sarif_schema: dict[str, Any]) -> None:
    log = sarif(samples_report)
    validate(log, sarif_schema)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "muslcheck"
    assert driver["version"] == muslcheck.__version__
    assert driver["informationUri"].startswith("https://")


def test_fixed_report_validates(sarif_schema: dict[str, Any]) -> None:
    validate(sarif(fixed_report()), sarif_schema)


def test_one_rule_per_rules_entry(samples_report: Report) -> None:
    log = sarif(samples_report)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in RULES.values()]
    for entry, rule in zip(rules, RULES.values(), strict=True):
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["fullDescription"]["text"] == rule.help
        assert entry["helpUri"] == rule.help_uri
    for r in results(log):
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]


def test_known_blockers(samples_report: Report) -> None:
    log = sarif(samples_report)
    irelative = find(log, "MC005", "ifunc/app/lib/libifunc.so", "R_X86_64_IRELATIVE")
    assert irelative["level"] == "error"
    assert "Fix: " in irelative["message"]["text"]
    # the executable fails in its library: the library is a related location
    in_app = find(log, "MC005", "ifunc/app/bin/app", "R_X86_64_IRELATIVE")
    related = in_app["relatedLocations"][0]["physicalLocation"]["artifactLocation"]
    assert related == {"uri": "ifunc/app/lib/libifunc.so", "uriBaseId": "SCANROOT"}
    # fortify loads with gcompat: needs-gcompat, so a warning
    chk = find(log, "MC003", "fortify/app/bin/fortify", "__memcpy_chk")
    assert chk["level"] == "warning"
    assert chk["message"]["text"].endswith("Fix: apk add gcompat")
    packaged = find(log, "MC009", "cxx/app/lib/libcxx.so", "libstdc++.so.6")
    assert packaged["level"] == "note"
    assert "relatedLocations" not in chk
    roots = log["runs"][0]["originalUriBaseIds"]
    assert roots["SCANROOT"]["uri"].startswith("file:///") and roots["SCANROOT"]["uri"].endswith("/")


def test_every_finding_is_a_result(samples_report: Report) -> None:
    log = sarif(samples_report)
    findings = [x for f in samples_report.files for x in f.findings]
    assert len(results(log)) == len(findings) + len(samples_report.skipped)
    assert all("suppressions" not in r for r in results(log))


def test_deterministic_and_fingerprints_stable_across_scans(samples_dir: Path, samples_report: Report) -> None:
    again = muslcheck.scan(samples_dir)
    assert render_sarif(again) == render_sarif(samples_report)
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in results(sarif(samples_report))]
    assert all(len(p) == 64 for p in prints)
    assert "timestamp" not in render_sarif(again).lower()


def test_fingerprint_ignores_message_wording() -> None:
    report = fixed_report()
    first = report.files[0]
    reworded = replace(first, findings=tuple(replace(x, message="reworded: " + x.message, fix="other fix")
                                             for x in first.findings))
    moved = replace(report, files=(reworded, *report.files[1:]), source="/elsewhere", tool_version="9.9.9")
    before = {r["partialFingerprints"][FINGERPRINT_KEY] for r in results(sarif(report))}
    after = {r["partialFingerprints"][FINGERPRINT_KEY] for r in results(sarif(moved))}
    assert before == after
    assert len(before) == len(results(sarif(report)))  # distinct findings, distinct fingerprints
    changed = replace(first, findings=tuple(replace(x, subject=x.subject + "2") for x in first.findings))
    other = {r["partialFingerprints"][FINGERPRINT_KEY]
             for r in results(sarif(replace(report, files=(changed, *report.files[1:]))))}
    assert other != before


def test_ignored_findings_are_suppressed(samples_dir: Path, tmp_path: Path, sarif_schema: dict[str, Any]) -> None:
    ignore = tmp_path / ".muslcheck.toml"
    ignore.write_text(
        '[[ignore]]\nsymbol = "__memcpy_chk"\npath = "/fortify/*"\nreason = "checked by hand"\n'
        '[[ignore]]\nrule = "MC005"\nreason = "IFUNC replaced at deploy time"\n',
        encoding="utf-8",
    )
    log = sarif(muslcheck.scan(samples_dir, ignore=ignore))
    validate(log, sarif_schema)
    chk = find(log, "MC003", "fortify/app/bin/fortify", "__memcpy_chk")
    assert chk["suppressions"] == [{"kind": "external", "justification": "checked by hand"}]
    assert "suppressions" not in find(log, "MC003", "fortify/app/bin/fortify", "__printf_chk")
    irelative = find(log, "MC005", "ifunc/app/lib/libifunc.so", "R_X86_64_IRELATIVE")
    assert irelative["suppressions"][0]["justification"] == "IFUNC replaced at deploy time"


def test_skipped_files_are_mc010(samples_dir: Path, tmp_path: Path, sarif_schema: dict[str, Any]) -> None:
    root = tmp_path / "root"
    shutil.copytree(samples_dir / "hello", root / "hello", symlinks=True)
    (root / "lib").mkdir()
    (root / "lib" / "libbroken.so").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9)  # header cut short
    (root / "lib" / "libgone.so").symlink_to("/nowhere/libgone.so.1")
    report = muslcheck.scan(root)
    assert {s.path for s in report.skipped} >= {"/lib/libbroken.so"}
    log = sarif(report)
    validate(log, sarif_schema)
    skipped = [r for r in results(log) if r["ruleId"] == "MC010"]
    assert {uri(r) for r in skipped} == {s.path.lstrip("/") for s in report.skipped}
    assert all(r["level"] == "warning" for r in skipped)
    broken = next(r for r in skipped if uri(r) == "lib/libbroken.so")
    assert "not checked" in broken["message"]["text"]


def test_fixed_report_locations_and_notes() -> None:
    log = sarif(fixed_report())
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["SCANROOT"]["uri"] == "file:///srv/rootfs/"
    nested = find(log, "MC004", "opt/app/app.jar!/lib/libnative.so", "__isoc23_strtol")
    assert nested["level"] == "error"
    ignored = find(log, "MC003", "opt/tools/fortify", "__printf_chk")
    assert ignored["suppressions"] == [{"kind": "external", "justification": "only reached in debug builds"}]
    notes = run["invocations"][0]["toolConfigurationNotifications"]
    assert [n["message"]["text"] for n in notes] == list(fixed_report().notes)
    assert [r["ruleId"] for r in results(log)][-1] == "MC010"


@pytest.mark.parametrize(("path", "expected"), [
    ("/app/app.jar!/BOOT-INF/lib/x.jar!/lib.so", "app/app.jar!/BOOT-INF/lib/x.jar!/lib.so"),
    ("/opt/my app/lib/libé.so", "opt/my%20app/lib/lib%C3%A9.so"),
    ("/a:b/c%d#e?f", "a%3Ab/c%25d%23e%3Ff"),
    ("/x/bin/../lib/libx.so", "x/lib/libx.so"),
])
def test_artifact_uri(path: str, expected: str) -> None:
    assert artifact_uri(path) == expected
