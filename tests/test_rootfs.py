"""Links resolve inside the root, never out of it, with the chain recorded and loops caught."""

from __future__ import annotations

import os
from pathlib import Path

from muslcheck.ldso.tree import MAX_LINKS, Resolved, Unresolvable
from muslcheck.targets.directory import DirectoryRoot


def test_relative_and_absolute_links_resolve_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "libz.so.1.3").write_bytes(b"x")
    os.symlink("libz.so.1.3", tmp_path / "real" / "libz.so.1")
    (tmp_path / "lib").mkdir()
    os.symlink("/real/libz.so.1", tmp_path / "lib" / "libz.so.1")  # absolute: the root's /real, not the host's
    found = DirectoryRoot(tmp_path).resolve("/lib/libz.so.1")
    assert isinstance(found, Resolved)
    assert found.path == "/real/libz.so.1.3"
    assert found.links == ("/lib/libz.so.1 -> /real/libz.so.1", "/real/libz.so.1 -> libz.so.1.3")
    assert found.is_file


def test_dotdot_never_climbs_above_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "marker").write_text("inside")
    os.symlink("../../../../../../etc/marker", tmp_path / "escape")
    found = DirectoryRoot(tmp_path).resolve("/escape")
    assert isinstance(found, Resolved) and found.path == "/etc/marker"
    os.symlink("../../../../../../etc/passwd", tmp_path / "passwd")
    assert isinstance(DirectoryRoot(tmp_path).resolve("/passwd"), Unresolvable)  # the host's passwd is not seen


def test_loops_and_dangling_links_are_reported(tmp_path: Path) -> None:
    os.symlink("/b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    os.symlink("/nowhere", tmp_path / "dangling")
    root = DirectoryRoot(tmp_path)
    loop = root.resolve("/a")
    assert isinstance(loop, Unresolvable) and loop.reason == "too many levels of symbolic links"
    assert len(loop.links) == MAX_LINKS
    dangling = root.resolve("/dangling")
    assert isinstance(dangling, Unresolvable) and dangling.reason == "no such file"


def test_a_file_used_as_a_directory_does_not_resolve(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    found = DirectoryRoot(tmp_path).resolve("/file/libc.so")
    assert isinstance(found, Unresolvable) and found.reason == "not a directory"
