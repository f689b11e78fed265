"""The report cache through scan() and the CLI: a hit for an unchanged tree and the same options,
a miss for any change that matters, and never a stale report."""

from __future__ import annotations

import os
import shutil
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
    assert (store.stats.misses, store.stats.hits, store.stats.writes) == (1, 1, 1)
    assert again == first


@pytest.mark.usefixtures("later")
def test_a_changed_file_or_option_is_scanned_again(tree: Path, store: Store, samples_dir: Path) -> None:
    first = scan(tree, musl="1.2.5", cache=store)
    assert scan(tree, musl="1.2.3", cache=store).target.musl == "1.2.3"  # another option: a miss
    shutil.copy(samples_dir / "fortify/app/bin/fortify", tree / "bin" / "hello")
    settle(tree)
    changed = scan(tree, musl="1.2.5", cache=store)
    assert store.stats.hits == 0
    assert changed.files[0].unresolved_symbols and not first.files[0].unresolved_symbols


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
