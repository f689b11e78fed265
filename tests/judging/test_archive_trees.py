"""Archives are directories for the loader model (issue 14, part 2): a path through ``/x.whl!`` resolves as it would
once the archive is unpacked in place, ``..`` included, and a directory inside it lists what was read there."""

from __future__ import annotations

from pathlib import Path

import pytest

from muslcheck.elf import read_elf
from muslcheck.ldso.tree import Resolved, Unresolvable
from muslcheck.model.errors import MalformedElf
from muslcheck.targets.archives import ArchiveMetadata, MemberOverlay
from muslcheck.targets.directory import DirectoryRoot
from tests.judging.test_judge_synthetic import library

WHEEL = "/srv/numpy-2.2.6-cp311-cp311-musllinux_1_2_x86_64.whl"
MODULE = f"{WHEEL}!/numpy/_core/_multiarray_umath.so"
VENDORED = f"{WHEEL}!/numpy.libs/libgcc_s-a3a07607.so.1"
NESTED = "/srv/app.jar!/BOOT-INF/lib/x-1.0.jar"
JNI = f"{NESTED}!/org/x/native/Linux/x86_64/libx.so"


@pytest.fixture
def overlay(tmp_path: Path) -> MemberOverlay:
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv/numpy-2.2.6-cp311-cp311-musllinux_1_2_x86_64.whl").write_bytes(b"PK")
    (tmp_path / "srv/app.jar").write_bytes(b"PK")
    (tmp_path / "srv/libbase.so").write_bytes(b"")
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt/numpy.whl").symlink_to("../srv/numpy-2.2.6-cp311-cp311-musllinux_1_2_x86_64.whl")
    facts = read_elf(library("libx.so").build().data)
    members = {MODULE: facts, VENDORED: facts, JNI: facts, f"{WHEEL}!/../../../etc/evil.so": facts}
    metadata = [ArchiveMetadata(WHEEL, {"numpy-2.2.6.dist-info/WHEEL": b"Wheel-Version: 1.0\n"}),
                ArchiveMetadata("/srv/app.jar", {}), ArchiveMetadata(NESTED, {}),
                ArchiveMetadata("/srv/empty.zip", {})]
    return MemberOverlay(DirectoryRoot(tmp_path), members, metadata)


def resolved(overlay: MemberOverlay, path: str) -> Resolved:
    found = overlay.resolve(path)
    assert isinstance(found, Resolved), found
    return found


@pytest.mark.parametrize(("path", "expected"), [
    (VENDORED, VENDORED),
    (f"{WHEEL}!/numpy/_core/../../numpy.libs/libgcc_s-a3a07607.so.1", VENDORED),  # $ORIGIN/../../numpy.libs
    (f"{WHEEL}!/./numpy//_core/./_multiarray_umath.so", MODULE),
    ("/opt/numpy.whl!/numpy.libs/libgcc_s-a3a07607.so.1", VENDORED),  # the archive named through a link
    ("/srv/app.jar!/BOOT-INF/lib/x-1.0.jar!/org/x/native/Linux/../Linux/x86_64/libx.so", JNI),
])
def test_a_member_resolves_through_dot_dot_and_links(overlay: MemberOverlay, path: str, expected: str) -> None:
    found = resolved(overlay, path)
    assert (found.path, found.is_file, found.identity) == (expected, True, ("archive", expected))


def test_a_member_is_found_under_the_name_it_was_read_with(overlay: MemberOverlay) -> None:
    """A hostile name ("../../../etc/evil.so") is a member like any other: it never leads out of the archive."""
    found = resolved(overlay, f"{WHEEL}!/../../../etc/evil.so")
    assert found.identity == ("archive", f"{WHEEL}!/../../../etc/evil.so")


@pytest.mark.parametrize("path", [f"{WHEEL}!", f"{WHEEL}!/", f"{WHEEL}!/numpy", f"{WHEEL}!/numpy/_core/..",
                                  f"{NESTED}!", f"{NESTED}!/org/x", "/srv/empty.zip!"])
def test_inside_an_archive_its_directories_are_directories(overlay: MemberOverlay, path: str) -> None:
    found = resolved(overlay, path)
    assert found.is_dir and not found.is_file


def test_above_an_archives_root_is_the_directory_that_holds_it(overlay: MemberOverlay) -> None:
    found = resolved(overlay, f"{WHEEL}!/numpy/../../libbase.so")
    assert found.path == "/srv/libbase.so" and found.identity != ("archive", found.path)
    assert resolved(overlay, f"{WHEEL}!/../..").path == "/"


def test_what_is_not_in_an_archive_does_not_resolve(overlay: MemberOverlay) -> None:
    for path in (f"{WHEEL}!/numpy.libs/libstdc++.so.6", f"{WHEEL}!/nowhere/x.so", "/srv/other.whl!/x.so"):
        assert isinstance(overlay.resolve(path), Unresolvable), path


def test_a_nested_archive_is_a_file_inside_its_parent(overlay: MemberOverlay) -> None:
    found = resolved(overlay, NESTED)
    assert found.is_file and not found.is_dir
    with pytest.raises(MalformedElf):  # what musl's map_library says of a zip: not an ELF file
        overlay.read_facts(found)


def test_directories_inside_archives_list_what_was_read(overlay: MemberOverlay) -> None:
    assert overlay.list_dir(f"{WHEEL}!") == ["numpy", "numpy-2.2.6.dist-info", "numpy.libs"]
    assert overlay.list_dir(f"{WHEEL}!/numpy/_core/../../numpy.libs") == ["libgcc_s-a3a07607.so.1"]
    assert overlay.list_dir("/srv/app.jar!/BOOT-INF/lib") == ["x-1.0.jar"]
    assert overlay.list_dir("/srv/empty.zip!") == []
    assert "app.jar" in overlay.list_dir("/srv")  # outside archives: the base tree's listing


def test_kept_metadata_reads_as_a_file_and_not_as_a_library(overlay: MemberOverlay) -> None:
    found = resolved(overlay, f"{WHEEL}!/numpy-2.2.6.dist-info/WHEEL")
    assert overlay.read_head(found, 7) == b"Wheel-V"
    with pytest.raises(MalformedElf):
        overlay.read_facts(found)
