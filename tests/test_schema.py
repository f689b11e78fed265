"""`-o json` output against the published JSON Schema (Draft 2020-12)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from muslcheck.cli import main
from muslcheck.model.report import FILE_VERDICTS, SCHEMA_VERSION, StepKind, Verdict

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "muslcheck" / "schema" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def samples_json(samples_dir: Path) -> dict[str, Any]:
    result = CliRunner(catch_exceptions=False).invoke(main, ["scan", str(samples_dir), "-o", "json"])
    assert result.exit_code in (0, 1), result.output  # the samples include blocked files
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_whole_samples_dir_validates(validator: jsonschema.Draft202012Validator, samples_json: dict[str, Any],
                                     samples_manifest: dict[str, Any]) -> None:
    assert errors(validator, samples_json) == []
    # The document is not trivially valid: it covers every sample file and every per-file verdict the
    # samples produce (README: hello-musl native, fortify needs-gcompat, cxx needs-packages, ifunc blocked).
    judged = {f["path"] for f in samples_json["files"]}
    for sample in samples_manifest["samples"]:
        for rel in sample["files"]:
            assert f"/{sample['name']}/{rel}" in judged
    verdicts = {f["verdict"] for f in samples_json["files"]}
    assert {"native", "needs-packages", "needs-gcompat", "blocked"} <= verdicts
    assert any(f["unresolved_symbols"] for f in samples_json["files"])
    assert any(f["missing_libraries"] for f in samples_json["files"])
    assert any(f["unsupported_relocations"] for f in samples_json["files"])


def test_schema_enums_match_the_code(validator: jsonschema.Draft202012Validator) -> None:
    schema = validator.schema
    assert set(schema["properties"]["verdict"]["enum"]) == {v.value for v in Verdict}
    file_verdicts = set(schema["properties"]["files"]["items"]["properties"]["verdict"]["enum"])
    assert file_verdicts == {v.value for v in FILE_VERDICTS}
    component_verdicts = set(schema["properties"]["components"]["items"]["properties"]["verdict"]["enum"])
    assert component_verdicts == {v.value for v in Verdict} - {Verdict.NOTHING_TO_CHECK.value}
    kinds = schema["properties"]["components"]["items"]["properties"]["steps"]["items"]["properties"]["kind"]["enum"]
    assert kinds == [k.value for k in StepKind]


def test_schema_takes_degraded_components_and_a_plan(validator: jsonschema.Draft202012Validator,
                                                    samples_json: dict[str, Any]) -> None:
    """2.0 added "degraded" (components and the report, never a file), ``plan``, and a component's steps/lost."""
    assert samples_json["schema_version"] == SCHEMA_VERSION == "3.0"
    assert set(samples_json["plan"]) == {"base_images", "reinstall", "apk", "upgrades", "gcompat", "rebuild", "lost"}
    degraded = copy.deepcopy(samples_json)
    degraded["verdict"] = "degraded"
    degraded["components"][0].update(verdict="degraded", lost="the native LZ4 codec (pure-Java LZ4 instead)")
    assert errors(validator, degraded) == []
    per_file = copy.deepcopy(samples_json)
    per_file["files"][0]["verdict"] = "degraded"  # a file loads or not: degraded is a component's
    assert errors(validator, per_file) != []
    old_major = copy.deepcopy(samples_json)
    old_major["schema_version"] = "2.1"  # a 2.x reader finds no symbols by reference: the major version says so
    assert errors(validator, old_major) != []
    no_plan = copy.deepcopy(samples_json)
    del no_plan["plan"]
    assert any("plan" in e for e in errors(validator, no_plan))
    free_text = copy.deepcopy(samples_json)
    free_text["plan"]["apk"] = ["libexecinfo (Alpine <= 3.16 only)"]  # never text where a package name goes
    assert errors(validator, free_text) != []


def test_bad_verdict_fails_validation(validator: jsonschema.Draft202012Validator,
                                      samples_json: dict[str, Any]) -> None:
    overall = copy.deepcopy(samples_json)
    overall["verdict"] = "probably-fine"
    assert any("verdict" in e for e in errors(validator, overall))

    per_file = copy.deepcopy(samples_json)
    per_file["files"][0]["verdict"] = "nothing-to-check"  # an overall-only verdict
    assert errors(validator, per_file) != []


def test_missing_required_field_fails_validation(validator: jsonschema.Draft202012Validator,
                                                 samples_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(samples_json)
    del doc["files"][0]["unresolved_symbols"]
    assert any("unresolved_symbols" in e for e in errors(validator, doc))


def test_schema_3_lists_each_objects_symbols_once_and_files_refer_to_them(
        validator: jsonschema.Draft202012Validator, samples_json: dict[str, Any]) -> None:
    """3.0: an object's unresolved symbols are under ``objects``, once; each file refers to groups of them."""
    objects = samples_json["objects"]
    assert objects
    for groups in objects.values():
        for group in groups:
            assert group["names"] and len(set(group["names"])) == len(group["names"])
    referred = set()
    for f in samples_json["files"]:
        for ref in f["unresolved_symbols"]:
            names = objects[ref["object"]][ref["group"]]["names"]
            assert all(0 <= i < len(names) for i in ref.get("symbols", ()))
            referred.add((ref["object"], ref["group"]))
    assert referred == {(obj, i) for obj, groups in objects.items() for i in range(len(groups))}  # none unused
    dangling = copy.deepcopy(samples_json)
    dangling["files"][0]["unresolved_symbols"] = [{"object": "/x", "group": -1, "effect": "fatal"}]
    assert errors(validator, dangling) != []
    no_objects = copy.deepcopy(samples_json)
    del no_objects["objects"]
    assert any("objects" in e for e in errors(validator, no_objects))
