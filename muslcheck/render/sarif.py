"""SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

One run; the driver lists every rule of ``muslcheck.model.rules.RULES``. Each ``Finding`` is a result
(an ignored one carries an external suppression with the ignore entry's reason), and each skipped
file is a result of MC010. Levels: a blocked finding is an error, one that gcompat fixes a warning,
one that an Alpine package fixes a note.

Locations are artifact URIs relative to the scanned root (``uriBaseId`` ``SCANROOT``): the report
path without its leading slash, percent-encoded except for ``/`` and RFC 3986 sub-delimiters, so a
nested archive path stays readable (``app/app.jar!/BOOT-INF/lib/x.jar!/lib.so``). When the problem
happens in another loaded object (a library of the file's closure), that object is a related location.

``partialFingerprints["muslcheck/v1"]`` is the SHA-256 of rule id, path, object and subject (joined by
NUL): it does not depend on message wording, versions or the scanned root, so a finding stays the same
finding across runs. Output order is deterministic and there are no timestamps.

A name that is not UTF-8 (its bytes kept as surrogate escapes) is carried losslessly where SARIF has room for
bytes: the artifact URI percent-encodes the original bytes (``lib%FF.so``), and the fingerprint hashes them. In
message text, which must be Unicode, each such byte reads ``\\xNN``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from typing import Any
from urllib.parse import quote

from muslcheck.model.report import Finding, Report, Skip, Verdict
from muslcheck.model.rules import RULES, Rule
from muslcheck.render.interface import Renderer

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/muslcheck/muslcheck"
ROOT_BASE_ID = "SCANROOT"
FINGERPRINT_KEY = "muslcheck/v1"

_SKIPPED_RULE = "skipped-file"
_LEVELS = {
    Verdict.BLOCKED: "error",
    Verdict.NEEDS_GCOMPAT: "warning",
    Verdict.NEEDS_PACKAGES: "note",
}
_DEFAULT_LEVELS = {"needs-package": "note", "skipped-file": "warning"}
# unreserved characters are never quoted; keep "/" and the sub-delimiters RFC 3986 allows in a path
# (":" is quoted: in a first segment it would read as a scheme).
_URI_SAFE = "/!$&'()*+,;=@"


def render_sarif(report: Report) -> str:
    text = json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"
    return text if text.isascii() or not _SURROGATE.search(text) else _SURROGATE.sub(_byte_escape, text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _byte_escape(match: re.Match[str]) -> str:
    """A surrogate escape inside a JSON string, as the JSON text of a backslash, ``x`` and two hex digits."""
    code = ord(match.group())
    return f"\\\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\\\u{code:04x}"


RENDERER = Renderer("sarif", lambda report, options: render_sarif(report))


def sarif_log(report: Report) -> dict[str, Any]:
    """The SARIF log as plain JSON data."""
    rules = list(RULES.values())
    index = {r.name: i for i, r in enumerate(rules)}
    results = [_finding_result(f, index) for f in _findings(report)]
    results.extend(_skip_result(s, index) for s in sorted(report.skipped, key=lambda s: s.path))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "muslcheck",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(r) for r in rules],
            }
        },
        "originalUriBaseIds": {ROOT_BASE_ID: _root_location(report)},
        "results": results,
        "properties": {
            "verdict": report.verdict.value,
            "target": {
                "musl": report.target.musl,
                "alpine": report.target.alpine,
                "gcompat": report.target.gcompat,
                "arch": report.target.arch,
            },
            "summary": report.summary,
        },
    }
    if report.notes:
        run["invocations"] = [{
            "executionSuccessful": True,
            "toolConfigurationNotifications": [
                {"level": "warning", "message": {"text": note}} for note in report.notes
            ],
        }]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def fingerprint(rule_id: str, path: str, obj: str, subject: str) -> str:
    """Stable identity of a finding: independent of its message, the tool version and the scanned root."""
    joined = "\0".join((rule_id, path, obj, subject)).encode("utf-8", "surrogateescape")
    return hashlib.sha256(joined).hexdigest()


def artifact_uri(path: str) -> str:
    """A path in the scanned root (``/app/lib/x.so``, ``/app/a.jar!/lib/x.so``) as a relative URI reference.

    Dot segments are removed as URI resolution would (RFC 3986 5.2.4): ``bin/../lib`` is ``lib``.
    """
    return quote(posixpath.normpath("/" + path).lstrip("/").encode("utf-8", "surrogateescape"), safe=_URI_SAFE)


def _findings(report: Report) -> list[Finding]:
    out = [x for f in report.files for x in f.findings]
    return sorted(out, key=lambda x: (x.path, x.rule_id, x.object, x.subject, x.message))


def _rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.help},
        "help": {"text": f"{r.help}\n\nSee {r.help_uri}", "markdown": f"{r.help}\n\n[{r.id} {r.name}]({r.help_uri})"},
        "helpUri": r.help_uri,
        "defaultConfiguration": {"level": _DEFAULT_LEVELS.get(r.name, "error")},
        "properties": {"tags": ["musl", "alpine", "portability"]},
    }


def _location(path: str) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": {"uri": artifact_uri(path), "uriBaseId": ROOT_BASE_ID}}}


def _finding_result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    text = f.message if f.fix is None else f"{f.message}. Fix: {f.fix}"
    result: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": index[f.rule],
        "level": _LEVELS.get(f.level, "note"),
        "message": {"text": text},
        "locations": [_location(f.path)],
    }
    if f.object != f.path and f.object.startswith("/"):
        related = _location(f.object)
        related["id"] = 1
        related["message"] = {"text": f"the loaded object where it happens ({f.rule}: {f.subject})"}
        result["relatedLocations"] = [related]
    result["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(f.rule_id, f.path, f.object, f.subject)}
    if f.ignored is not None:
        result["suppressions"] = [{"kind": "external", "justification": f.ignored}]
    result["properties"] = {"verdict": f.level.value, "object": f.object, "subject": f.subject}
    return result


def _skip_result(s: Skip, index: dict[str, int]) -> dict[str, Any]:
    r = RULES[_SKIPPED_RULE]
    return {
        "ruleId": r.id,
        "ruleIndex": index[r.name],
        "level": "warning",
        "message": {"text": f"{s.path} was not checked: {s.reason}"},
        "locations": [_location(s.path)],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(r.id, s.path, s.path, "")},
    }


def _root_location(report: Report) -> dict[str, Any]:
    """Where SCANROOT points: the scanned directory (the parent of a file scanned alone), when known."""
    source = report.root
    location: dict[str, Any] = {"description": {"text": f"the scanned root: {report.source}"}}
    if source.startswith("/"):
        location["uri"] = "file://" + quote(source.rstrip("/") + "/", safe=_URI_SAFE + ":")
    return location
