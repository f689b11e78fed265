"""The first ten minutes (issue 15, parts 1, 2 and 9): the README's two set-up commands on a fresh machine,
CI in a fresh venv with every test dependency declared, the demo's prerequisites, one version."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import muslcheck
from tests.support import REPO, unavailable

README = REPO / "README.md"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
BUILD_PY = REPO / "samples" / "build.py"
DEMO_TOOLS = ("gcc", "g++", "readelf")


def setup_commands() -> list[str]:
    """The shell blocks of the README's set-up section, each one command."""
    text = README.read_text()
    section = text[text.index("## Set-up on a fresh machine"):text.index("## Usage")]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_has_two_setup_commands_in_a_venv() -> None:
    """PEP 668: a stock Debian or Ubuntu python3 refuses `pip install` outside a venv."""
    demo, tests = setup_commands()
    for command in (demo, tests):
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install "), command
        assert not re.search(r"(^|&& )(pip|python3 -m pip) ", command), f"a pip outside the venv: {command}"
    assert "samples/build.py --demo" in demo and "muslcheck scan" in demo
    assert tests.endswith("&& .venv/bin/python -m pytest") and "'.[test]'" in tests
    text = README.read_text()
    # the demo's prerequisites, by their Debian/Ubuntu package names; and how to run the whole suite
    assert "python3-venv gcc g++ binutils libc6-dev" in text
    assert ".venv/bin/python -m pytest --run-slow" in text


def test_ci_runs_the_readme_test_command_in_a_fresh_venv() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert any(re.fullmatch(r'venv="\$\(mktemp -d .*\)/venv"', c) for c in commands), "no fresh venv"
    assert 'python3 -m venv "$venv"' in commands
    assert """"$venv/bin/python" -m pip install -q -e '.[test]'""" in commands
    readme_test = setup_commands()[1].rpartition(" && ")[2]
    assert commands[-1] == readme_test.replace(".venv/bin/python", '"$venv/bin/python"')
    assert re.search(r"apt-get install .*\\\n\s+python3-venv ", ci), "python3-venv is not installed"


def test_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "muslcheck/model/version.py"
    assert importlib.metadata.version("muslcheck") == muslcheck.__version__


def _requirement_name(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert m is not None, requirement
    return re.sub(r"[-_.]+", "-", m[0]).lower()


def _declared_for_tests() -> set[str]:
    """The distributions `pip install -e '.[test]'` brings in by name: the dependencies, the test extra and the
    extras it names of muslcheck itself."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    declared = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    pending = list(extras["test"])
    while pending:
        requirement = pending.pop()
        if requirement.startswith("muslcheck["):
            for extra in requirement[len("muslcheck["):-1].split(","):
                pending += extras[extra.strip()]
        else:
            declared.add(_requirement_name(requirement))
    return declared


def _imported_by_tests() -> dict[str, Path]:
    """Top-level modules the test files import, other than the standard library and the project's own."""
    tests = REPO / "tests"
    local = {p.stem for p in tests.rglob("*.py")} | {p.name for p in tests.rglob("*") if p.is_dir()}
    local |= {"muslcheck", "tests"} | {p.stem for p in (REPO / "symbols").glob("*.py")}
    found: dict[str, Path] = {}
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, path)
    return found


def test_test_extra_declares_everything_the_tests_import() -> None:
    """CI's fresh venv has only what pyproject.toml declares: a module the tests import from anything else
    would fail there (hypothesis did, issue 15)."""
    declared = _declared_for_tests()
    providers = importlib.metadata.packages_distributions()
    imported = _imported_by_tests()
    assert {"pytest", "hypothesis", "elftools"} <= set(imported)
    missing = {}
    for module, path in imported.items():
        distributions = {_requirement_name(d) for d in providers.get(module, [])}
        if not distributions & declared:
            missing[module] = (path.relative_to(REPO), sorted(distributions) or "not installed")
    assert not missing, f"imported by the tests, not in the test extra: {missing}"


def _run_build(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BUILD_PY), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_demo_names_the_apt_packages_it_lacks(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _run_build(["--demo", str(tmp_path / "out")], env={**os.environ, "PATH": str(empty)})
    assert proc.returncode == 1
    assert "missing tools: g++, gcc, readelf" in proc.stderr
    assert "sudo apt-get install binutils g++ gcc libc6-dev" in proc.stderr


def test_demo_says_where_it_built(tmp_path: Path) -> None:
    if missing := [t for t in DEMO_TOOLS if shutil.which(t) is None]:
        unavailable(f"the demo needs {', '.join(missing)}")
    out = tmp_path / "demo"
    proc = _run_build(["--demo", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"build.py: built 5 sample(s) in {out}: hello, fortify, ifunc, reloc-plt, cxx"
    assert (out / "cxx" / "app" / "lib" / "libcxx.so").is_file()


def test_plain_pytest_skips_the_slow_tests() -> None:
    """The fast default the README promises: a system test is skipped, and says how to run it."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/elf/test_crosscheck.py::test_system_files_agree"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "--run-slow" in proc.stdout


_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*_cache", ".hypothesis", ".benchmarks",
                                     "build", "dist", "*.egg-info")


@pytest.mark.slow
@pytest.mark.network
def test_readme_demo_command_in_a_fresh_venv(tmp_path: Path) -> None:
    """The README's first command, as written, in a copy of the checkout: a fresh .venv, the package built and
    installed from it, the demo built with gcc and g++, and scanned. Needs the package index (hatchling, click)."""
    if missing := [t for t in DEMO_TOOLS if shutil.which(t) is None]:
        unavailable(f"the demo needs {', '.join(missing)}")
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=_NOT_COPIED, symlinks=True)
    demo_dir = tmp_path / "muslcheck-demo"
    command = setup_commands()[0]
    assert command.count("/tmp/muslcheck-demo") == 2
    command = command.replace("/tmp/muslcheck-demo", str(demo_dir))  # not the machine's shared /tmp
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["MUSLCHECK_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(["bash", "-c", command], cwd=checkout, capture_output=True, text=True, env=env,
                          timeout=900, check=False)
    if proc.returncode not in (0, 1) and not (checkout / ".venv" / "bin" / "muslcheck").exists():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        unavailable(f"pip could not install the package (no package index?): {lines[-1] if lines else ''}")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the demo holds blocked files on purpose
    assert f"build.py: built 5 sample(s) in {demo_dir}" in proc.stdout
    assert f"muslcheck {muslcheck.__version__}: {demo_dir} on Alpine" in proc.stdout
    assert "Verdict: blocked" in proc.stdout
    assert "NEEDS-PACKAGES  /cxx/app/lib/libcxx.so" in proc.stdout
    installed = checkout / ".venv" / "lib"
    assert not [p for p in installed.rglob("muslcheck/__init__.py") if p.is_symlink()]  # a real install


def test_readme_code_blocks_are_closed_and_hold_no_heading() -> None:
    """Every fenced block of the README closes, and none swallows a section: a missing fence once made the
    "Fleets" section, and the demo's output above it, one code block."""
    inside, opened = False, 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            inside, opened = not inside, number
        elif inside:
            assert not line.startswith("## "), f"README.md:{number}: a heading inside the block opened at {opened}"
    assert not inside, f"README.md: the block opened at line {opened} never closes"
