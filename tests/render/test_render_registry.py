"""The output formats as data: each declared once beside its code, every name and alias reachable from `-o`,
listed by --help and by the usage error; colour and the stderr summary follow the renderer, not its name."""

from __future__ import annotations

import importlib
import os
import pkgutil
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import muslcheck.render
from muslcheck.cli import EXIT_INCOMPATIBLE, EXIT_USAGE, main
from muslcheck.model.errors import UsageError
from muslcheck.render import (
    DEFAULT_FORMAT,
    FORMATS,
    RENDERERS,
    Renderer,
    describe_formats,
    render_table,
    renderer_for,
)
from muslcheck.render.interface import RenderOptions
from tests.render.fixed_report import fixed_report

REPO = Path(__file__).resolve().parents[2]
ANSI = "\x1b["
# README's -o row: table (default; alias text), json, sarif, junit, markdown
DOCUMENTED_NAMES = {"table", "text", "json", "sarif", "junit", "markdown", "dockerfile"}


def every_name(renderer: Renderer) -> tuple[str, ...]:
    return (renderer.name, *renderer.aliases)


def test_names_and_aliases_are_unique_and_all_reachable() -> None:
    names = [n for r in FORMATS for n in every_name(r)]
    assert len(names) == len(set(names))
    assert set(RENDERERS) == set(names) == DOCUMENTED_NAMES
    assert all(RENDERERS[n] is r for r in FORMATS for n in every_name(r))
    assert DEFAULT_FORMAT.name == "table" and DEFAULT_FORMAT.aliases == ("text",)


def test_every_format_module_is_registered() -> None:
    """The recipe's second step: a module of muslcheck/render that declares a RENDERER is in FORMATS."""
    modules = [m.name for m in pkgutil.iter_modules(muslcheck.render.__path__) if m.name != "interface"]
    declared = [importlib.import_module(f"muslcheck.render.{m}").RENDERER for m in modules]
    assert all(isinstance(r, Renderer) for r in declared)
    assert sorted(r.name for r in declared) == sorted(r.name for r in FORMATS)


def test_a_name_claimed_twice_fails_at_import() -> None:
    clash = Renderer("json2", lambda report, options: "", aliases=("text",))
    with pytest.raises(ValueError, match="'text' is claimed by 'table' and 'json2'"):
        muslcheck.render._by_name((*FORMATS, clash))


def test_only_the_table_reads_the_colour_option() -> None:
    report = fixed_report()
    coloured = {r.name for r in FORMATS
                if r.render(report, RenderOptions(color=True)) != r.render(report, RenderOptions())}
    assert coloured == {"table"}


def test_unknown_name_lists_every_name_and_alias() -> None:
    with pytest.raises(UsageError) as e:
        renderer_for("xml")
    message = str(e.value)
    assert message.startswith("unknown output format 'xml'; known: ")
    assert "table (alias: text)" in message
    assert all(n in message for n in DOCUMENTED_NAMES)
    assert describe_formats() in message


def run(*args: str) -> Result:
    return CliRunner(catch_exceptions=False).invoke(main, ["scan", *args])


def test_cli_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(tmp_path), "-o", "json", "-o", "xml=out.xml")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr == f"muslcheck: error: unknown output format 'xml'; known: {describe_formats()}\n"
    assert result.stdout == ""


def test_cli_help_lists_names_and_aliases() -> None:
    result = CliRunner().invoke(main, ["scan", "--help"], terminal_width=400)
    assert result.exit_code == 0
    assert f"Output format, repeatable: {describe_formats()} (default: table on stdout)." in result.stdout


@pytest.fixture(autouse=True)
def _no_ignore_file_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ./.muslcheck.toml when it exists: run where there is none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_cli_summary_on_stderr_unless_the_table_is_on_stdout(name: str, samples_dir: Path, tmp_path: Path) -> None:
    target = str(samples_dir / "ifunc")
    on_stdout = run(target, "--no-cache", "-o", name)
    into_file = run(target, "--no-cache", "-o", f"{name}={tmp_path / 'out'}")
    assert on_stdout.exit_code == into_file.exit_code == EXIT_INCOMPATIBLE
    summary = into_file.stderr.splitlines()[-1].removeprefix("muslcheck: ")
    assert summary.startswith("Verdict: blocked (")
    table_on_stdout = on_stdout.stdout.splitlines()[-1] == summary
    assert table_on_stdout is (name in ("table", "text")) is RENDERERS[name].shows_summary
    assert on_stdout.stderr == ("" if table_on_stdout else into_file.stderr)


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """The real entry point with stdout on a pseudo-terminal; what the terminal shows."""
    controller, terminal = pty.openpty()
    command = [sys.executable, "-c", "from muslcheck.cli import main; main()", "scan", "--no-cache", "-q", *args]
    proc = subprocess.Popen(command, stdout=terminal, stderr=subprocess.DEVNULL, env=env)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert proc.wait(timeout=60) == EXIT_INCOMPATIBLE
    return shown.decode("utf-8")


@pytest.mark.parametrize("no_color", [None, "1"])
def test_colour_only_for_the_table_on_a_terminal(no_color: str | None, samples_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if no_color is not None:
        env["NO_COLOR"] = no_color
    target = str(samples_dir / "ifunc")
    plain = render_table(muslcheck.scan(target))
    for name in sorted(RENDERERS):
        shown = run_on_a_terminal([target, "-o", name, "-o", f"table={tmp_path / 'table.txt'}"], env)
        assert (ANSI in shown) is (RENDERERS[name] is RENDERERS["table"] and no_color is None), name
        assert (tmp_path / "table.txt").read_text(encoding="utf-8") == plain, "colour went into a file"
