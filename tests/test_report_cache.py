"""The report cache through scan() and the CLI: a hit for an unchanged tree and the same options,
a miss for any change that matters, and never a stale report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from muslcheck import scan
from muslcheck.cache import Store, default_salt
from muslcheck.cli import main

HELLO = "hello/app/bin/hello"


@pytest.fixture
def tree(samples_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(samples_dir / HELLO, root / "bin" / "hello")
    settle(root)
    return root


def settle(root: Path) -> None:
    """Date every entry a minute back, out of the 2-second window in which a stat identity is not trusted
    (its ctime stays now: the clock seen by the cache is moved on instead, see ``later``)."""
    past = time.time() - 60
    for path in (*root.rglob("*"), root):
        os.utime(path, (past, past), follow_symlinks=False)


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: now() + 60 * 10**9)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache", salt=default_salt())


@pytest.mark.usefixtures("later")
def test_an_unchanged_tree_is_scanned_once(tree: Path, store: Store) -> None:
    first = scan(tree, musl="1.2.5", cache=store)
    again = scan(tree, musl="1.2.5", cache=store)
    # the first scan misses the report, the judging kept for the next scan and its files' facts, and writes all three
    assert (store.stats.misses, store.stats.hits, store.stats.writes) == (3, 1, 3)
    assert again == first


@pytest.mark.usefixtures("later")
def test_a_changed_file_or_option_is_scanned_again(tree: Path, store: Store, samples_dir: Path) -> None:
    first = scan(tree, musl="1.2.5", cache=store)
    assert scan(tree, musl="1.2.3", cache=store).target.musl == "1.2.3"  # another option: a miss
    shutil.copy(samples_dir / "fortify/app/bin/fortify", tree / "bin" / "hello")
    settle(tree)
    changed = scan(tree, musl="1.2.5", cache=store)
    # not the report: the judging kept by the first scan (tests/judging/test_reuse.py), and the files' facts that
    # the first two scans recorded (tests/cache/test_file_facts.py)
    assert store.stats.hits == 3
    assert changed.files[0].unresolved_symbols and not first.files[0].unresolved_symbols


JUDGING = ("muslcheck.judging.survey", "muslcheck.judging.judge", "muslcheck.ldso.load", "muslcheck.apps.application",
           "multiprocessing")


def test_a_cache_hit_and_the_cli_start_need_none_of_the_judging_machinery(tree: Path, tmp_path: Path) -> None:
    """Each in a fresh interpreter (the tree is settled a minute back, so the clock moves on with it)."""
    scan_twice = (
        "import sys, time; now = time.time_ns; time.time_ns = lambda: now() + 60 * 10**9\n"
        "from muslcheck import scan\nfrom muslcheck.cache import Store, default_salt\n"
        f"store = Store({str(tmp_path / 'cache')!r}, salt=default_salt())\n"
        f"scan({str(tree)!r}, musl='1.2.5', cache=store)\n"
        f"print(store.stats.hits, [m for m in {JUDGING!r} if m in sys.modules])\n"
    )
    outputs = [subprocess.run([sys.executable, "-c", scan_twice], capture_output=True, text=True, check=True).stdout
               for _ in range(2)]
    assert outputs[0] == f"0 {list(JUDGING)}\n"  # a miss judges
    assert outputs[1] == "1 []\n"  # a hit only decodes the report
    cli = f"import sys; from muslcheck.cli import main; print([m for m in {JUDGING!r} if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_a_tree_written_just_now_is_not_cached(tree: Path, store: Store) -> None:
    scan(tree, musl="1.2.5", cache=store)
    scan(tree, musl="1.2.5", cache=store)
    assert (store.stats.hits, store.stats.writes) == (0, 0)


@pytest.mark.usefixtures("later")
def test_cli_caches_unless_told_not_to_and_prunes(tree: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSLCHECK_CACHE_DIR", str(tmp_path / "cli-cache"))
    runner = CliRunner()
    out = tmp_path / "r.json"
    assert runner.invoke(main, ["scan", str(tree), "-q", "--no-cache", "-o", f"json={out}"]).exit_code == 0
    assert not (tmp_path / "cli-cache").exists() or not any((tmp_path / "cli-cache").rglob("*.entry"))
    first = runner.invoke(main, ["scan", str(tree), "-q", "-o", "json"])
    second = runner.invoke(main, ["scan", str(tree), "-q", "-o", "json"])
    assert first.output == second.output and first.exit_code == second.exit_code
    assert runner.invoke(main, ["cache", "dir"]).output.strip() == str(tmp_path / "cli-cache")
    pruned = runner.invoke(main, ["cache", "prune"])
    assert pruned.exit_code == 0 and "removed" in pruned.output
    assert int(pruned.output.split("removed ")[1].split()[0]) > 0
