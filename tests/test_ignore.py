"""The ignore file: matching, expiry, what an ignored finding still shows, and malformed files."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from muslcheck import UsageError, Verdict, scan
from muslcheck.cli import main
from muslcheck.model.ignore import MAX_IGNORE_BYTES, load_ignores

TODAY = dt.date(2026, 6, 1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".muslcheck.toml"
    path.write_text(text)
    return path


def test_an_entry_matches_by_rule_subject_and_path(tmp_path: Path) -> None:
    ignores = load_ignores(write(tmp_path, """
[[ignore]]
rule = "MC003"
symbol = "__memcpy_chk"
path = "/app/bin/*"
reason = "fortify helpers come from gcompat"
"""), today=TODAY)
    assert ignores.match("unresolved-symbol", "__memcpy_chk", "/app/bin/x") == "fortify helpers come from gcompat"
    assert ignores.match("unresolved-symbol", "__memcpy_chk", "/usr/bin/x") is None
    assert ignores.match("latent-symbol", "__memcpy_chk", "/app/bin/x") is None
    assert ignores.match("unresolved-symbol", "__printf_chk", "/app/bin/x") is None


def test_an_expired_entry_stops_ignoring_and_says_so(tmp_path: Path) -> None:
    ignores = load_ignores(write(tmp_path, """
[[ignore]]
symbol = "backtrace"
reason = "until the rebuild lands"
expires = 2026-05-31
"""), today=TODAY)
    assert ignores.match("unresolved-symbol", "backtrace", "/x") is None
    [note] = ignores.expiry_notes()
    assert "expired on 2026-05-31" in note and ":2:" in note  # the entry's line


def test_ignored_findings_stay_in_the_report_and_stop_counting(samples_dir: Path, tmp_path: Path) -> None:
    root = samples_dir / "glibc-backtrace"
    before = scan(root)
    [exe] = [f for f in before.files if f.kind == "executable"]
    assert exe.verdict is Verdict.NEEDS_GCOMPAT
    ignore = write(tmp_path, """
[[ignore]]
rule = "glibc-interpreter"
reason = "we ship our own loader"

[[ignore]]
symbol = "backtrace"
reason = "only in the crash handler"
""")
    after = scan(root, ignore=ignore)
    [exe] = [f for f in after.files if f.kind == "executable"]
    assert exe.verdict is Verdict.NATIVE
    assert {(f.rule, f.subject, f.ignored) for f in exe.findings} == {
        ("glibc-interpreter", "/lib64/ld-linux-x86-64.so.2", "we ship our own loader"),
        ("unresolved-symbol", "backtrace", "only in the crash handler"),
    }
    assert [s.name for s in exe.unresolved_symbols] == ["backtrace"]  # the loader's truth is unchanged
    data = json.loads(after.to_json())
    [doc] = [f for f in data["files"] if f["path"] == exe.path]
    assert all(f["ignored"] for f in doc["findings"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[ignore]]\nrule = \"latent-symbol\"\n", ":1: key 'reason' is required"),
        ("[[ignore]]\nreason = \"x\"\n", ":1: give key 'rule' or key 'symbol'"),
        ("\n\n[[ignore]]\nsymbol = \"x\"\nreason = \"y\"\ncolour = \"red\"\n", ":3: unknown key 'colour'"),
        ("[[ignore]]\nrule = \"no-such-rule\"\nreason = \"y\"\n", "key 'rule': unknown rule 'no-such-rule'"),
        ("[[ignore]]\nsymbol = \"x\"\nreason = \"y\"\nexpires = \"soon\"\n", "key 'expires' must be a date"),
        ("[[ignore]\nsymbol = \"x\"\n", "not valid TOML"),
        ("ignore = 3\n", "'ignore' must be an array of tables"),
    ],
    ids=["no-reason", "no-rule-or-symbol", "unknown-key", "unknown-rule", "bad-date", "bad-toml", "not-a-table"],
)
def test_a_malformed_ignore_file_names_the_line_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_ignores(write(tmp_path, text))


def test_a_fifo_or_device_as_the_ignore_file_is_refused_without_blocking(tmp_path: Path) -> None:
    """load_ignores itself checks the type before it opens (the CLI's own check aside): no hang, no device read."""
    fifo = tmp_path / "ignore.fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"ignore\.fifo: a FIFO, not a regular file: refused as an ignore file"):
        load_ignores(fifo)
    with pytest.raises(UsageError, match=r"/dev/zero: a character device, not a regular file"):
        load_ignores("/dev/zero")  # would never end if it were read
    with pytest.raises(UsageError, match=r": a directory, not a regular file"):
        load_ignores(tmp_path)


def test_an_ignore_file_that_is_not_utf8_or_too_large_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[[ignore]]\nrule = "latent-symbol"\nreason = "caf\xe9"\n')
    with pytest.raises(UsageError, match=r"latin1\.toml: not UTF-8"):
        load_ignores(bad)
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(MAX_IGNORE_BYTES + 1)
    with pytest.raises(UsageError, match=r"big\.toml: larger than 4 MiB"):
        load_ignores(big)


def test_the_cli_refuses_a_fifo_ignore_file_with_the_usage_exit_code(tmp_path: Path, samples_dir: Path) -> None:
    fifo = tmp_path / "ignore.fifo"
    os.mkfifo(fifo)
    result = CliRunner().invoke(main, ["scan", str(samples_dir / "hello"), "--no-cache", "--ignore", str(fifo)])
    assert result.exit_code == 2
    assert "ignore.fifo" in result.output and "FIFO" in result.output
