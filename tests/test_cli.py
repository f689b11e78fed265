"""The command line: exit codes, error messages, output files and awkward trees.

Expected verdicts come from samples/README.md (what the real musl loaders said) and the
README's exit-code table, not from a recorded run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from muslcheck.cli import EXIT_INCOMPATIBLE, EXIT_INPUT, EXIT_OK, EXIT_USAGE, exit_code, main
from muslcheck.model.options import Context
from muslcheck.model.report import (
    SCHEMA_VERSION,
    FileKind,
    FileReport,
    Report,
    Skip,
    TargetInfo,
    Verdict,
    file_components,
    overall_verdict,
)

REPO = Path(__file__).resolve().parents[1]
ERROR_PREFIX = "muslcheck: error: "
# A hang (a FIFO opened for reading blocks until a writer appears) must become a test failure.
HANG_TIMEOUT = 15


def run(*args: str | os.PathLike[str]) -> Result:
    return CliRunner(catch_exceptions=False).invoke(main, [str(a) for a in args])


def run_subprocess(
    *args: str | os.PathLike[str], cwd: Path | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter, as a user would run it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [*prefix, sys.executable, "-c", "from muslcheck.cli import main; main()", *map(str, args)]
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=HANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"muslcheck {' '.join(map(str, args))} did not finish within {HANG_TIMEOUT}s (hang)")


def assert_one_error_line(stderr: str, code_hint: str = "") -> str:
    """Exactly one line, ``muslcheck: error: ...``; no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr{code_hint}, got: {stderr!r}"
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    return lines[0].removeprefix(ERROR_PREFIX)


def copy_sample(samples_dir: Path, name: str, dest: Path) -> Path:
    shutil.copytree(samples_dir / name, dest, symlinks=True)
    return dest


# ---------------------------------------------------------------------------------------------
# exit codes on the samples


def test_native_sample_exits_0(samples_dir: Path) -> None:
    # hello-musl: musl-gcc hello, loads on every musl version.
    result = run("scan", samples_dir / "hello-musl")
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout.splitlines()[-1].startswith("Verdict: native")
    assert result.stderr == ""


def test_blocked_sample_exits_1(samples_dir: Path) -> None:
    # ifunc: IRELATIVE is "unsupported relocation type 37" on every musl.
    result = run("scan", samples_dir / "ifunc")
    assert result.exit_code == EXIT_INCOMPATIBLE, result.output
    assert result.stdout.splitlines()[-1].startswith("Verdict: blocked")


def test_fail_on_needs_gcompat(samples_dir: Path) -> None:
    # fortify: glibc interpreter + __*_chk, all of which gcompat provides -> needs-gcompat,
    # which is below the default level "blocked" but reaches --fail-on needs-gcompat.
    default = run("scan", samples_dir / "fortify")
    assert default.exit_code == EXIT_OK, default.output
    assert "Verdict: needs-gcompat" in default.stdout
    strict = run("scan", samples_dir / "fortify", "--fail-on", "needs-gcompat")
    assert strict.exit_code == EXIT_INCOMPATIBLE, strict.output
    assert strict.stdout == default.stdout  # --fail-on changes the exit code only


def test_fail_on_needs_packages(samples_dir: Path) -> None:
    # cxx: NEEDED libstdc++.so.6 is not in the tree but Alpine packages it -> needs-packages.
    default = run("scan", samples_dir / "cxx")
    assert default.exit_code == EXIT_OK, default.output
    result = run("scan", samples_dir / "cxx", "--fail-on", "needs-packages")
    assert result.exit_code == EXIT_INCOMPATIBLE, result.output
    assert "apk add libstdc++" in result.stdout
    # needs-packages is below needs-gcompat: that level does not fail on it.
    assert run("scan", samples_dir / "cxx", "--fail-on", "needs-gcompat").exit_code == EXIT_OK


# ---------------------------------------------------------------------------------------------
# exit_code(), the pure function


def _file(verdict: Verdict, path: str = "/x") -> FileReport:
    return FileReport(
        path=path, arch="x86_64", kind=FileKind.EXECUTABLE, context=Context.EXECUTABLE, verdict=verdict,
        interpreter=None, soname=None, needed=(), missing_libraries=(), unresolved_symbols=(), weak_unresolved=(),
        unsupported_relocations=(), tls_errors=(), notes=(), fixes=(),
    )


def _report(*verdicts: Verdict) -> Report:
    files = tuple(_file(v, f"/f{i}") for i, v in enumerate(verdicts))
    return Report(
        schema_version=SCHEMA_VERSION, tool_version="test", source="/t",
        target=TargetInfo("1.2.5", "3.22", False, None), verdict=overall_verdict(files), files=files,
        components=file_components(files), skipped=(),
    )


FAIL_LEVELS = (Verdict.NATIVE, Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED)
# Verdicts in increasing severity; not-applicable never counts, native fails only --fail-on native.
LADDER = (Verdict.NOT_APPLICABLE, Verdict.NATIVE, Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED)


@pytest.mark.parametrize("fail_on", FAIL_LEVELS, ids=lambda v: v.value)
@pytest.mark.parametrize("verdict", LADDER, ids=lambda v: v.value)
def test_exit_code_each_level(verdict: Verdict, fail_on: Verdict) -> None:
    rank = {v: i for i, v in enumerate(LADDER)}
    counted = verdict is not Verdict.NOT_APPLICABLE
    expected = EXIT_INCOMPATIBLE if counted and rank[verdict] >= rank[fail_on] else EXIT_OK
    assert exit_code(_report(verdict), fail_on) == expected


@pytest.mark.parametrize("fail_on", FAIL_LEVELS, ids=lambda v: v.value)
def test_exit_code_empty_report(fail_on: Verdict) -> None:
    report = _report()
    assert report.verdict is Verdict.NOTHING_TO_CHECK
    assert exit_code(report, fail_on) == EXIT_OK


def test_exit_code_uses_worst_file() -> None:
    mixed = _report(Verdict.NATIVE, Verdict.NOT_APPLICABLE, Verdict.NEEDS_GCOMPAT, Verdict.NEEDS_PACKAGES)
    assert exit_code(mixed, Verdict.BLOCKED) == EXIT_OK
    assert exit_code(mixed, Verdict.NEEDS_GCOMPAT) == EXIT_INCOMPATIBLE
    assert exit_code(mixed, Verdict.NEEDS_PACKAGES) == EXIT_INCOMPATIBLE
    assert exit_code(_report(Verdict.NOT_APPLICABLE, Verdict.NOT_APPLICABLE), Verdict.NEEDS_PACKAGES) == EXIT_OK


# ---------------------------------------------------------------------------------------------
# bad input: one line on stderr, the documented code


def test_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    result = run("scan", missing)
    assert result.exit_code == EXIT_INPUT
    message = assert_one_error_line(result.stderr)
    assert str(missing) in message
    assert result.stdout == ""


def test_unknown_alpine_lists_known_releases(samples_dir: Path) -> None:
    result = run("scan", samples_dir / "hello-musl", "--alpine", "9.99")
    assert result.exit_code == EXIT_USAGE
    message = assert_one_error_line(result.stderr)
    assert "9.99" in message
    # the known releases are listed: at least the one the README uses as an example
    assert "3.18" in message and "3.20" in message
    versions = run("versions")
    assert versions.exit_code == EXIT_OK
    for line in versions.stdout.splitlines():
        if line.startswith("alpine ") and "not mapped" not in line:  # unverified releases are not targets
            assert line.split()[1] in message


def test_unknown_musl(samples_dir: Path) -> None:
    result = run("scan", samples_dir / "hello-musl", "--musl", "0.0.1")
    assert result.exit_code == EXIT_USAGE
    message = assert_one_error_line(result.stderr)
    assert "0.0.1" in message and "1.2.5" in message


def test_alpine_and_musl_together(samples_dir: Path) -> None:
    result = run("scan", samples_dir / "hello-musl", "--alpine", "3.18", "--musl", "1.2.4")
    assert result.exit_code == EXIT_USAGE
    message = assert_one_error_line(result.stderr)
    assert "--alpine" in message and "--musl" in message


def test_unknown_output_format(samples_dir: Path) -> None:
    result = run("scan", samples_dir / "hello-musl", "-o", "xml")
    assert result.exit_code == EXIT_USAGE
    line = assert_one_error_line(result.stderr)
    assert "unknown output format 'xml'" in line and "sarif" in line
    assert result.stdout == ""


def test_two_outputs_on_stdout_is_a_usage_error(samples_dir: Path) -> None:
    result = run("scan", samples_dir / "hello-musl", "-o", "json", "-o", "sarif")
    assert result.exit_code == EXIT_USAGE
    assert "more than one output goes to stdout" in assert_one_error_line(result.stderr)


def test_every_format_at_once(samples_dir: Path, tmp_path: Path) -> None:
    """-o FORMAT=FILE is repeatable; the table still goes to stdout; the exit code is unchanged."""
    args = [f"-o{fmt}={tmp_path / ('out.' + fmt)}" for fmt in ("json", "sarif", "junit", "markdown")]
    result = run("scan", samples_dir / "ifunc", "-o", "table", *args)
    assert result.exit_code == EXIT_INCOMPATIBLE
    assert result.stdout.rstrip().splitlines()[-1].startswith("Verdict: blocked")
    assert json.loads((tmp_path / "out.json").read_text())["verdict"] == "blocked"
    assert json.loads((tmp_path / "out.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "out.junit").read_text().startswith("<?xml")
    assert "blocked" in (tmp_path / "out.markdown").read_text().splitlines()[0]


def test_fail_on_native_fails_on_any_counted_component(samples_dir: Path) -> None:
    assert run("scan", samples_dir / "hello-musl", "--fail-on", "native").exit_code == EXIT_INCOMPATIBLE
    assert run("scan", samples_dir / "hello-musl").exit_code == EXIT_OK


def test_ignore_file_is_read_from_the_working_directory(samples_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".muslcheck.toml").write_text(
        '[[ignore]]\nrule = "unsupported-relocation"\nreason = "r"\n'
        '[[ignore]]\nrule = "unresolved-symbol"\nsymbol = "ifunc_add"\nreason = "s"\n'
        '[[ignore]]\nrule = "glibc-interpreter"\nreason = "i"\n')
    monkeypatch.chdir(tmp_path)
    result = run("scan", samples_dir / "ifunc", "-o", "json")
    assert result.exit_code == EXIT_OK, result.stdout
    data = json.loads(result.stdout)
    assert {f["ignored"] for doc in data["files"] for f in doc["findings"]} == {"r", "s", "i"}


def test_malformed_ignore_file_is_a_usage_error(samples_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "ignore.toml"
    bad.write_text('[[ignore]]\nsymbol = "x"\n')
    result = run("scan", samples_dir / "hello-musl", "--ignore", bad)
    assert result.exit_code == EXIT_USAGE
    assert f"{bad}:1: key 'reason' is required" in assert_one_error_line(result.stderr)


def test_explain_and_symbols_commands() -> None:
    explained = run("explain", "__memcpy_chk")
    assert explained.exit_code == EXIT_OK
    assert "GLIBC_2.3.4" in explained.stdout and "gcompat" in explained.stdout
    unknown = run("explain", "no_such_symbol_anywhere")
    assert unknown.exit_code == EXIT_USAGE
    assert "unknown symbol 'no_such_symbol_anywhere'" in assert_one_error_line(unknown.stderr)
    table = run("symbols", "--alpine", "3.20")
    assert table.exit_code == EXIT_OK
    assert "statx\tFUNC\tGLOBAL" in table.stdout and "\nfopen64\t" not in table.stdout
    assert run("symbols", "--alpine", "9.9").exit_code == EXIT_USAGE


def test_single_non_elf_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file\n")
    result = run("scan", text)
    assert result.exit_code == EXIT_INPUT
    assert "not an ELF file" in assert_one_error_line(result.stderr)


def test_single_truncated_elf_file(samples_dir: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "hello"
    truncated.write_bytes((samples_dir / "hello" / "app" / "bin" / "hello").read_bytes()[:100])
    result = run("scan", truncated)
    assert result.exit_code == EXIT_INPUT
    assert "malformed ELF" in assert_one_error_line(result.stderr)


def test_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("scan", empty)
    assert result.exit_code == EXIT_OK
    assert "warning: nothing to check" in result.stderr
    assert "error" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("Verdict: nothing-to-check")
    quiet = run("scan", empty, "-q")
    assert "warning: nothing to check" in quiet.stderr  # never silent, not even with -q


def test_fail_on_empty_turns_an_empty_target_into_exit_1(tmp_path: Path, samples_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("a mistyped path in CI: no ELF file here")
    result = run("scan", empty, "--fail-on-empty", "-o", "json")
    assert result.exit_code == EXIT_INCOMPATIBLE
    assert "warning: nothing to check" in result.stderr
    assert run("scan", samples_dir / "hello-musl", "--fail-on-empty").exit_code == EXIT_OK


def test_output_file_in_missing_directory(samples_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.json"
    result = run("scan", samples_dir / "hello-musl", "-o", "json", "--file", target)
    assert result.exit_code == EXIT_INPUT
    assert_one_error_line(result.stderr)
    assert not target.parent.exists()
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""


def test_failed_rename_leaves_old_file_and_no_temp(
    samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails at the last step leaves the previous report intact and no temporary file."""
    target = tmp_path / "out.json"
    target.write_text("previous report\n")

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("muslcheck.cli.os.replace", failing_replace)
    result = run("scan", samples_dir / "hello-musl", "-o", "json", "--file", target)
    assert result.exit_code == EXIT_INPUT
    assert "No space left on device" in assert_one_error_line(result.stderr)
    assert target.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_errors_in_a_real_process_have_no_traceback(samples_dir: Path, tmp_path: Path) -> None:
    """The installed entry point, in a fresh interpreter: one line and the documented code, each time."""
    not_elf = tmp_path / "plain.txt"
    not_elf.write_text("hello\n")
    cases = [
        (["scan", tmp_path / "missing"], EXIT_INPUT),
        (["scan", not_elf], EXIT_INPUT),
        (["scan", samples_dir / "hello-musl", "--alpine", "9.99"], EXIT_USAGE),
        (["scan", samples_dir / "hello-musl", "--musl", "0.0.1"], EXIT_USAGE),
        (["scan", samples_dir / "hello-musl", "--file", tmp_path / "nodir" / "r.txt"], EXIT_INPUT),
    ]
    for args, code in cases:
        proc = run_subprocess(*args, cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stderr)
        assert_one_error_line(proc.stderr, f" for {args}")
        assert proc.stdout == ""
    ok = run_subprocess("scan", samples_dir / "ifunc", cwd=tmp_path)
    assert ok.returncode == EXIT_INCOMPATIBLE
    assert ok.stderr == ""
    assert ok.stdout.splitlines()[-1].startswith("Verdict: blocked")


# ---------------------------------------------------------------------------------------------
# output


def test_json_to_file_is_valid_and_matches_stdout(samples_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("stale")  # replaced, not appended to
    result = run("scan", samples_dir / "fortify", "-o", "json", "--file", target)
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == ""  # the report went to the file
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["verdict"] == "needs-gcompat"
    assert [f["path"] for f in doc["files"]] == ["/app/bin/fortify"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left
    assert target.read_text(encoding="utf-8") == run("scan", samples_dir / "fortify", "-o", "json").stdout


def test_output_file_mode_follows_umask(samples_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    old = os.umask(0o022)
    try:
        assert run("scan", samples_dir / "hello-musl", "--file", target).exit_code == EXIT_OK
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


def test_text_orders_blocked_then_gcompat_then_native(samples_dir: Path) -> None:
    # The whole samples dir has all three: ifunc (blocked), fortify (needs-gcompat), hello-musl (native).
    result = run("scan", samples_dir)
    assert result.exit_code == EXIT_INCOMPATIBLE
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("Verdict: blocked (")

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    def last(prefix: str) -> int:
        return max(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert last("BLOCKED  ") < first("NEEDS-GCOMPAT  ")
    assert last("NEEDS-GCOMPAT  ") < first("NEEDS-PACKAGES  ")
    assert last("NEEDS-PACKAGES  ") < first("NATIVE (")
    # the samples named as examples are in their groups
    assert any(line.startswith("BLOCKED  /ifunc/app/bin/app") for line in lines)
    assert any(line.startswith("NEEDS-GCOMPAT  /fortify/app/bin/fortify") for line in lines)
    native_block = lines[first("NATIVE ("):]
    assert "  /hello-musl/app/bin/hello" in native_block
    # the summary counts add up to the number of files
    summary = lines[-1]
    total = int(summary.split("(")[1].split()[0])
    counts = [int(part.split()[0]) for part in summary.split(": ", 2)[-1].rstrip(")").split(", ")]
    assert sum(counts) == total


# ---------------------------------------------------------------------------------------------
# awkward entries inside a scanned tree: recorded in "skipped", the scan goes on


def _scan_json(*args: str | os.PathLike[str]) -> tuple[int, dict[str, Any]]:
    result = run("scan", *args, "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def test_bad_entries_are_skipped_and_scan_continues(samples_dir: Path, tmp_path: Path) -> None:
    tree = copy_sample(samples_dir, "hello-musl", tmp_path / "tree")
    (tree / "truncated.so").write_bytes((samples_dir / "hello" / "app" / "bin" / "hello").read_bytes()[:100])
    (tree / "dangling").symlink_to("no-such-target")
    (tree / "loop-a").symlink_to("loop-b")
    (tree / "loop-b").symlink_to("loop-a")
    code, doc = _scan_json(tree)
    # The truncated ELF went unchecked, so the scan cannot read as compatible; dangling links can.
    assert code == EXIT_INCOMPATIBLE and doc["complete"] is False
    assert run("scan", tree, "--allow-unchecked").exit_code == EXIT_OK
    assert [s["path"] for s in doc["skipped"] if s["unchecked"]] == ["/truncated.so"]
    skipped = {s["path"]: s["reason"] for s in doc["skipped"]}
    assert set(skipped) == {"/truncated.so", "/dangling", "/loop-a", "/loop-b"}
    assert "malformed ELF" in skipped["/truncated.so"]
    assert "no such file" in skipped["/dangling"]
    assert "symbolic links" in skipped["/loop-a"] and "symbolic links" in skipped["/loop-b"]
    # the good file was still judged
    assert [(f["path"], f["verdict"]) for f in doc["files"]] == [("/app/bin/hello", "native")]
    text = run("scan", tree)
    assert "SKIPPED (4)" in text.stdout
    assert text.stdout.splitlines()[-1].endswith("; 4 skipped) INCOMPLETE: some files could not be checked")


def test_fifo_in_tree_does_not_hang(samples_dir: Path, tmp_path: Path) -> None:
    """A FIFO is not a regular file: it is never opened (that would block), and the scan finishes."""
    tree = copy_sample(samples_dir, "hello-musl", tmp_path / "tree")
    os.mkfifo(tree / "app" / "bin" / "pipe")
    proc = run_subprocess("scan", tree, "-o", "json")
    assert proc.returncode == EXIT_OK, proc.stderr
    doc = json.loads(proc.stdout)
    assert [f["path"] for f in doc["files"]] == ["/app/bin/hello"]


def test_fifo_as_needed_library_does_not_hang(samples_dir: Path, tmp_path: Path) -> None:
    tree = copy_sample(samples_dir, "rpath-origin", tmp_path / "tree")
    dep = tree / "app" / "lib" / "libdep.so"
    dep.unlink()
    os.mkfifo(dep)
    proc = run_subprocess("scan", tree, "-o", "json")
    assert proc.returncode == EXIT_INCOMPATIBLE, proc.stderr  # the exe cannot load its dependency
    doc = json.loads(proc.stdout)
    assert [f["path"] for f in doc["files"]] == ["/app/bin/app"]


def test_fifo_as_path_is_an_input_error(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = run_subprocess("scan", fifo)
    assert proc.returncode == EXIT_INPUT
    assert_one_error_line(proc.stderr)


def test_unreadable_file_is_skipped(samples_dir: Path, tmp_path: Path) -> None:
    """chmod 000: as root, read permission is bypassed by CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH,
    so the scan then runs under setpriv with those capabilities dropped from the bounding set."""
    tree = copy_sample(samples_dir, "hello-musl", tmp_path / "tree")
    secret = tree / "app" / "bin" / "secret"
    shutil.copyfile(samples_dir / "hello" / "app" / "bin" / "hello", secret)
    secret.chmod(0)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed: root reads a chmod 000 file")
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
        probe = subprocess.run([*prefix, "cat", str(secret)], capture_output=True, text=True, timeout=HANG_TIMEOUT)
        if probe.returncode == 0:
            pytest.skip("dropping CAP_DAC_OVERRIDE with setpriv did not make a chmod 000 file unreadable here")
        if "Permission denied" not in probe.stderr:
            pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.strip()}")
    try:
        proc = run_subprocess("scan", tree, "-o", "json", prefix=prefix)
    finally:
        secret.chmod(0o644)
    assert proc.returncode == EXIT_INCOMPATIBLE, proc.stderr  # an unreadable file went unchecked
    doc = json.loads(proc.stdout)
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("/app/bin/secret", "unreadable: Permission denied")]
    assert [f["path"] for f in doc["files"]] == ["/app/bin/hello"]


def test_no_progress_or_summary_when_quiet_or_not_a_terminal(samples_dir: Path) -> None:
    """CliRunner's stderr is not a TTY: no progress bar ever; the summary line only without -q."""
    loud = run("scan", samples_dir / "fortify", "-o", "json")
    assert loud.stderr.splitlines() == ["muslcheck: Verdict: needs-gcompat (1 ELF files: 1 needs-gcompat)"]
    quiet = run("scan", samples_dir / "fortify", "-o", "json", "-q")
    assert quiet.stderr == ""


def test_exit_code_when_something_went_unchecked() -> None:
    native = _report(Verdict.NATIVE)
    unchecked = dataclasses.replace(native, skipped=(Skip("/x.so", "malformed ELF: truncated"),))
    dangling = dataclasses.replace(native, skipped=(Skip("/l", "broken link: no such file", unchecked=False),))
    assert exit_code(unchecked, Verdict.BLOCKED) == EXIT_INCOMPATIBLE
    assert exit_code(unchecked, Verdict.BLOCKED, allow_unchecked=True) == EXIT_OK
    assert exit_code(dangling, Verdict.BLOCKED) == EXIT_OK
