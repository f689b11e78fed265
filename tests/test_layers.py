"""The house: each stage imports only the stages below it, so the pipeline reads from the folders.

    model < elf < ldso < targets < apps < judging < render, cache < the entry points (cli, scan, explain)

Every import counts: at module level, inside functions (lazy imports), and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "muslcheck"
RANK = {"model": 0, "elf": 1, "ldso": 2, "targets": 3, "apps": 4, "judging": 5, "render": 5, "cache": 5}
ENTRY = 6  # cli.py, scan.py, explain.py, the package face, and the entry-level folders below
ENTRY_FOLDERS = {"fleet"}  # many scans at once: beside scan.py, it may import any stage


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "entry"


def rank(stage: str) -> int:
    return RANK.get(stage, ENTRY)


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(module imported, names taken from it, line) for every import of muslcheck in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names if a.name.split(".")[0] == "muslcheck"]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            if target.split(".")[0] != "muslcheck":
                continue
            # "from muslcheck import apps" imports the module muslcheck.apps, not the package face.
            modules = [a.name for a in node.names if is_module(f"{target}.{a.name}")]
            found += [(f"{target}.{name}", (), node.lineno) for name in modules]
            if names := tuple(a.name for a in node.names if a.name not in modules):
                found.append((target, names, node.lineno))
    return found


def is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_stages_are_folders() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANK) | ENTRY_FOLDERS


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_reaches_above_its_stage(path: Path) -> None:
    here = stage_of(module_name(path))
    upward = []
    for target, _, line in imports(path):
        there = stage_of(target)
        if there != here and rank(there) >= rank(here):
            upward.append(f"line {line}: {here} imports {target} ({there})")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize(("stage", "never"), [
    ("ldso", {"targets", "apps", "judging", "render", "cache"}),
    ("targets", {"apps", "judging", "render", "cache"}),
    ("render", {"elf", "ldso", "targets", "apps", "judging", "cache"}),
])
def test_named_boundaries(stage: str, never: set[str]) -> None:
    """The boundaries the design names, spelled out (the rank test implies most of them)."""
    crossing = [f"{path.relative_to(PACKAGE)}:{line} imports {target}"
                for path in MODULES if stage_of(module_name(path)) == stage
                for target, _, line in imports(path) if stage_of(target) in never]
    assert not crossing, "\n".join(crossing)


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: lazy, TYPE_CHECKING and relative imports are all found."""
    module = PACKAGE / "ldso" / "_probe_for_test.py"
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from muslcheck.targets import Tree\n"
              "def f():\n    import muslcheck.apps.model\n    from ..render import json\n")
    try:
        module.write_text(source)
        found = {target for target, _, _ in imports(module)}
    finally:
        module.unlink()
    assert found == {"muslcheck.targets", "muslcheck.apps.model", "muslcheck.render.json"}
