"""Hostile directory trees (issue 18, parts 3 and 4): nesting deeper than Python's recursion limit, and special
files (a FIFO, a socket) inside the tree, which are never opened blocking."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from muslcheck.targets import directory
from tests.hostile.hostile_support import run_scan, skipped


def test_a_tree_nested_1200_deep_is_walked_without_recursion_and_the_limit_reports(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.chdir(tree)  # each mkdir relative: the full path passes PATH_MAX
    for _ in range(1200):
        os.mkdir("d")
        os.chdir("d")
    os.chdir(tmp_path)
    try:
        result = run_scan(str(tree), work=tmp_path / "w")
    finally:  # pytest's own clean-up recurses (shutil.rmtree in 3.11): remove it bottom-up here
        os.chdir(tree)
        depth = 0
        while os.path.isdir("d"):
            os.chdir("d")
            depth += 1
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(tmp_path)
    [(path, reason)] = [(p, r) for p, r in skipped(result.report).items() if "nested" in r]
    assert reason == f"directories nested more than {directory.MAX_DEPTH} deep: what is below is not read"
    assert path == "/" + "/".join(["d"] * directory.MAX_DEPTH)


def test_fifos_and_sockets_in_a_tree_are_never_opened(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "libfifo.so")
    os.mkfifo(tree / "app.jar")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "lib.sock.so"))
        result = run_scan(str(tree), work=tmp_path / "w", timeout=60)
    assert result.rc is not None
    assert not any(e["event"] == "open" and e["path"].startswith(str(tree) + "/") for e in result.events)
