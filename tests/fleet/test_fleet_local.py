"""Fleets of directories, scanned locally: the per-target parts equal each target's own scan, the shared
blockers are ranked by the number of targets they block, --targets FILE, and targets that fail beside
targets that scan. The ELF files are synthetic (tests/elf/elfbuilder.py), so no toolchain is needed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from muslcheck import ScanOptions, scan
from muslcheck.cli import EXIT_INCOMPATIBLE, EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from muslcheck.fleet import FLEET_SCHEMA_VERSION, FleetOptions, read_targets_file, scan_fleet
from muslcheck.fleet.report import summarize
from muslcheck.model.report import Verdict
from tests.fleet.fleet_support import library, program, write_tree

OPTIONS = ScanOptions(musl="1.2.5")


def run(*args: str | os.PathLike[str]) -> Result:
    return CliRunner(catch_exceptions=False).invoke(main, [str(a) for a in args])


@pytest.fixture
def fleet_dirs(tmp_path: Path) -> dict[str, Path]:
    """Four services: libgone.so.1 is missing in three, no_such_fn unresolved in two, one service is native."""
    gone = library("liba.so", needed=("libc.so", "libgone.so.1"))
    return {
        "alpha": write_tree(tmp_path / "alpha", {
            "/app/lib/liba.so": gone,
            "/app/lib/libx.so": library("libx.so", uses=("no_such_fn",)),
            "/app/bin/tool": program(uses=("memcpy",)),
        }),
        "beta": write_tree(tmp_path / "beta", {
            "/opt/beta/liba.so": gone,  # the same cause at another path: the same blocker
            "/opt/beta/libother.so": library("libother.so", needed=("libc.so", "libgone.so.1")),
        }),
        "gamma": write_tree(tmp_path / "gamma", {
            "/srv/liba.so": gone,
            "/srv/liby.so": library("liby.so", uses=("no_such_fn", "also_missing")),
        }),
        "delta": write_tree(tmp_path / "delta", {"/app/bin/tool": program(uses=("printf",))}),
    }


def test_each_target_is_its_own_scan_and_blockers_rank_by_targets(fleet_dirs: dict[str, Path]) -> None:
    targets = [str(p) for p in fleet_dirs.values()]
    fleet = scan_fleet(targets, OPTIONS, FleetOptions(keep_reports=True))
    assert [t.target for t in fleet.targets] == targets  # the order given, whatever the order of work
    for target, result in zip(targets, fleet.targets, strict=True):
        alone = scan(target, OPTIONS)
        assert result.report == alone
        assert result == summarize(target, alone)
    by_name = {Path(t.target).name: t for t in fleet.targets}
    assert {name: t.verdict for name, t in by_name.items()} == {
        "alpha": Verdict.BLOCKED, "beta": Verdict.BLOCKED, "gamma": Verdict.BLOCKED, "delta": Verdict.NATIVE}
    ranked = [(b.rule, b.subject, b.count, b.files) for b in fleet.blockers]
    assert ranked == [
        ("missing-library", "libgone.so.1", 3, 4),  # beta has two files that need it
        ("unresolved-symbol", "no_such_fn", 2, 2),
        ("unresolved-symbol", "also_missing", 1, 1),
    ]
    assert fleet.blockers[0].targets == tuple(str(fleet_dirs[n]) for n in ("alpha", "beta", "gamma"))
    assert [(b.subject, b.files) for b in by_name["beta"].blockers] == [("libgone.so.1", 2)]
    assert by_name["delta"].blockers == ()


def test_worker_processes_give_the_same_report(fleet_dirs: dict[str, Path], tmp_path: Path) -> None:
    targets = [str(p) for p in fleet_dirs.values()]
    in_process = scan_fleet(targets, OPTIONS, FleetOptions(jobs=1))
    in_workers = scan_fleet(targets, OPTIONS, FleetOptions(jobs=2))
    assert in_workers == in_process
    assert in_workers.to_json_bytes() == in_process.to_json_bytes()


def test_targets_file_mixed_failure_and_exit_codes(fleet_dirs: dict[str, Path], tmp_path: Path) -> None:
    listing = tmp_path / "fleet.txt"
    listing.write_text(f"# our services\n{fleet_dirs['alpha']}\n\n   \n{fleet_dirs['delta']}  # the tool\n"
                       f"{tmp_path / 'not-there'}\n")
    assert read_targets_file(listing) == [str(fleet_dirs["alpha"]), str(fleet_dirs["delta"]),
                                          str(tmp_path / "not-there")]
    result = run("scan", "--musl", "1.2.5", "--targets", listing, "-o", "json", "-q")
    assert result.exit_code == EXIT_INCOMPATIBLE, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == FLEET_SCHEMA_VERSION
    assert [(t["verdict"], t["error_kind"]) for t in data["targets"]] == [
        ("blocked", None), ("native", None), (None, "input")]
    assert "no such file or directory" in data["targets"][2]["error"]
    assert data["summary"] == {"targets": 3, "blocked": 1, "error": 1, "native": 1}
    # The native one alone passes; beside a target that failed, the fleet does not.
    assert run("scan", "--musl", "1.2.5", fleet_dirs["delta"], fleet_dirs["delta"], "-q").exit_code == EXIT_OK
    assert run("scan", "--musl", "1.2.5", fleet_dirs["delta"], tmp_path / "nope", "-q").exit_code \
        == EXIT_INCOMPATIBLE
    # --fail-on over every target: alpha blocks the default gate; delta (native) passes the strictest one.
    assert run("scan", "--musl", "1.2.5", fleet_dirs["alpha"], fleet_dirs["delta"], "-q").exit_code \
        == EXIT_INCOMPATIBLE
    assert run("scan", "--musl", "1.2.5", fleet_dirs["delta"], fleet_dirs["delta"], "--fail-on", "needs-packages",
               "-q").exit_code == EXIT_OK
    everything_failed = run("scan", tmp_path / "nope1", tmp_path / "nope2")
    assert everything_failed.exit_code == EXIT_INPUT
    assert everything_failed.stderr.count("muslcheck: error:") == 2


def test_fleet_formats_and_usage_errors(fleet_dirs: dict[str, Path], tmp_path: Path) -> None:
    args = ("scan", "--musl", "1.2.5", fleet_dirs["alpha"], fleet_dirs["beta"])
    table = run(*args)
    assert table.stdout.startswith("muslcheck ") and "BLOCKERS (by the number of targets they block)" in table.stdout
    assert "2/2  MC002 missing-library libgone.so.1" in table.stdout
    assert table.stdout.rstrip().endswith("1 shared")
    markdown = run(*args, "-o", "markdown").stdout
    assert "| MC002 `libgone.so.1` (missing-library) | 2 |" in markdown
    assert run(*args, "-o", "sarif").exit_code == EXIT_USAGE
    assert run(*args, "--alpine", "9.9").exit_code == EXIT_USAGE
    assert run("scan").exit_code == EXIT_USAGE
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert run("scan", "--targets", empty).exit_code == EXIT_USAGE


def test_one_target_keeps_the_single_report(fleet_dirs: dict[str, Path]) -> None:
    """Without --targets or --dask, one target is today's scan: the same bytes as the single report."""
    from muslcheck.render import render_json

    result = run("scan", "--musl", "1.2.5", fleet_dirs["alpha"], "-o", "json", "--no-cache")
    assert result.stdout.encode() == render_json(scan(fleet_dirs["alpha"], OPTIONS))


def test_a_shared_cache_directory_serves_the_second_fleet(fleet_dirs: dict[str, Path], tmp_path: Path) -> None:
    from muslcheck.fleet import CacheSpec

    time.sleep(2.1)  # a directory changed in the last 2 s is never cached (docs/cache.md, "racily clean")
    cache = tmp_path / "shared-cache"
    spec = CacheSpec(str(cache), 1 << 26)
    targets = [str(p) for p in fleet_dirs.values()]
    first = scan_fleet(targets, OPTIONS, FleetOptions(jobs=2, cache=spec))
    entries = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and len(p.name) == 62}
    # per target, written by the two workers: its report, the judging kept for its next scan, and its files' facts
    assert len(entries) == 3 * len(targets)
    second = scan_fleet(targets, OPTIONS, FleetOptions(jobs=2, cache=spec))
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in entries} == entries  # served, not written again


def test_a_target_named_again_is_scanned_once(fleet_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A targets file that names one target many times (100,000 lines of it) costs one scan, not one per line;
    each line keeps its entry, as if scanned."""
    from muslcheck.fleet import run as fleet_run

    scanned: list[str] = []
    real = fleet_run.run_task

    def counting(task: fleet_run.Task) -> fleet_run.Outcome:
        scanned.append(task.target)
        return real(task)

    alpha, delta = str(fleet_dirs["alpha"]), str(fleet_dirs["delta"])
    targets = [alpha, delta, alpha, alpha, delta]
    in_workers = scan_fleet(targets, OPTIONS, FleetOptions(jobs=2))
    monkeypatch.setattr(fleet_run, "run_task", counting)
    fleet = scan_fleet(targets, OPTIONS, FleetOptions(jobs=1))
    assert sorted(scanned) == sorted([alpha, delta])
    assert [t.target for t in fleet.targets] == targets
    assert fleet == in_workers
    assert fleet.targets[0] == fleet.targets[2] == summarize(alpha, scan(alpha, OPTIONS))


def test_a_cache_directory_removed_between_fleets_is_opened_again(fleet_dirs: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    """A process that outlives fleets (a Dask worker; here this one, at -j 1) keeps its open store per cache.
    Removed and made again (rm -rf, a CI cache step), the directory is a new one: the next fleet writes into it
    instead of into the removed one, where every write failed and every scan missed."""
    import shutil

    from muslcheck.fleet import CacheSpec

    time.sleep(2.1)  # a directory changed in the last 2 s is never cached (docs/cache.md, "racily clean")
    cache = tmp_path / "removed-cache"
    spec = CacheSpec(str(cache), 1 << 26)
    targets = [str(p) for p in fleet_dirs.values()]

    def entries() -> int:
        return sum(1 for p in cache.rglob("*") if p.is_file() and len(p.name) == 62)

    first = scan_fleet(targets, OPTIONS, FleetOptions(jobs=1, cache=spec))
    assert entries() == 3 * len(targets)
    shutil.rmtree(cache)
    cache.mkdir()
    again = scan_fleet(targets, OPTIONS, FleetOptions(jobs=1, cache=spec))
    assert again == first
    assert entries() == 3 * len(targets)
