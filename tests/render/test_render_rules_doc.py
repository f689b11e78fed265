"""docs/rules.md has a section for every rule, at the anchor its help_uri points to."""

from __future__ import annotations

import re
from pathlib import Path

from muslcheck.model.rules import DOCS_URL, RULES

RULES_MD = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def github_anchor(heading: str) -> str:
    """GitHub's slug: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_rule_has_its_anchor() -> None:
    assert DOCS_URL.endswith("/docs/rules.md")
    text = RULES_MD.read_text(encoding="utf-8")
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}
    for rule in RULES.values():
        fragment = rule.help_uri.split("#", 1)[1]
        assert fragment == f"{rule.id.lower()}-{rule.name}"
        assert fragment in anchors, f"docs/rules.md has no heading for {rule.id} ({fragment})"
        section = text.split(f"## {rule.id} {rule.name}\n", 1)[1].split("\n## ", 1)[0]
        assert "**What it means.**" in section and "**Fix.**" in section and "```" in section
