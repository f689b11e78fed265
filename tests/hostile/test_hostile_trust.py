"""Trust (issue 18, class 7): a report-cache hit still checks the layer blobs it stands for, so a blob swapped
after the first scan fails as an uncached scan does, for every kind of local image."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from muslcheck import ScanOptions, Verdict, scan
from muslcheck.cache import Store, default_salt
from muslcheck.cli import main
from muslcheck.fleet import scan_fleet
from muslcheck.judging import survey
from muslcheck.ldso.tree import Resolved
from muslcheck.targets.image import verify
from muslcheck.targets.image.sources import DigestMismatch, SourceError
from tests.hostile.hostile_support import imagebuild as ib
from tests.hostile.hostile_support import put_blob, run_scan


def _flip_middle(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0xFF
    return bytes(out)


def _grow(data: bytes) -> bytes:
    return data + bytes(512)


Edit = Callable[[bytes], bytes]


def _oci_dir(path: Path, layers: list[ib.Layer], edit_later: Edit) -> tuple[str, Callable[[], None]]:
    image = ib.write_oci_dir(path, layers)
    blob = ib.blob_path(path, image.layers[0].digest)
    return f"oci-dir:{path}", lambda: blob.write_bytes(edit_later(blob.read_bytes()))


def _oci_archive(path: Path, layers: list[ib.Layer], edit_later: Edit) -> tuple[str, Callable[[], None]]:
    archive = path.with_suffix(".tar")
    image = ib.write_oci_archive(archive, layers)
    name = f"blobs/sha256/{ib.hexof(image.layers[0].digest)}"
    return f"oci-archive:{archive}", lambda: ib.rewrite_tar_member(archive, name, edit_later)


def _docker_archive(path: Path, layers: list[ib.Layer], edit_later: Edit) -> tuple[str, Callable[[], None]]:
    archive = path.with_suffix(".tar")
    image = ib.write_docker_archive_oci(archive, layers)  # uncompressed: the layer is read through a map
    name = f"blobs/sha256/{ib.hexof(image.layers[0].digest)}"
    return f"docker-archive:{archive}", lambda: ib.rewrite_tar_member(archive, name, edit_later)


def _docker_archive_legacy(path: Path, layers: list[ib.Layer], edit_later: Edit) -> tuple[str, Callable[[], None]]:
    archive = path.with_suffix(".tar")
    ib.write_docker_archive_legacy(archive, layers)
    with tarfile.open(archive) as tar:
        name = next(m.name for m in tar.getmembers() if m.name.endswith("/layer.tar"))
    return f"docker-archive:{archive}", lambda: ib.rewrite_tar_member(archive, name, edit_later)


KINDS = {"oci-dir": _oci_dir, "oci-archive": _oci_archive, "docker-archive": _docker_archive,
         "docker-archive-legacy": _docker_archive_legacy}


SIZE_OR_DIGEST = r"the blob is \d+ bytes, its descriptor says \d+|content hashes to"  # no size in manifest.json


@pytest.mark.parametrize("kind", KINDS)

@pytest.mark.parametrize(("edit", "message"), [(_flip_middle, "content hashes to"), (_grow, SIZE_OR_DIGEST)],
                         ids=["same-size", "other-size"])
def test_a_cache_hit_fails_like_a_scan_when_a_layer_blob_was_swapped(
        kind: str, edit: Edit, message: str, samples_dir: Path, tmp_path: Path) -> None:
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()
    layers: list[ib.Layer] = [[ib.file("app/bin/app", app), ib.file("app/README", b"x" * 4096)]]
    target, swap = KINDS[kind](tmp_path / "image", layers, edit)
    store = Store(tmp_path / "cache", salt=default_salt())
    first = scan(target, musl="1.2.5", cache=store)
    assert scan(target, musl="1.2.5", cache=store) == first
    assert (store.stats.hits, store.stats.writes) == (1, 3)  # unchanged: a hit, and it verified (writes: the
    # report, its layer's facts and the judging kept for images on that layer)

    swap()
    with pytest.raises(SourceError):
        scan(target, musl="1.2.5")  # without the cache: the layer read fails (its digest, or its gzip stream)
    with pytest.raises(DigestMismatch, match=message):
        scan(target, musl="1.2.5", cache=store)  # the hit fails too, naming the layer
    assert store.stats.hits == 2  # it was a hit: the report existed, and was not returned


# ---- class 8: credentials only for a registry target -------------------------------------------------------

def test_a_fleet_reads_the_docker_config_only_for_registry_targets(
        samples_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A FIFO as the docker config: a directory-only fleet never looks at it; a registry target next to the
    directory gets one warning (checked without blocking) and pulls anonymously; the directory is scanned."""
    config = tmp_path / "config.json"
    os.mkfifo(config)
    options = ScanOptions(musl="1.2.5", docker_config=config, insecure_registry=True)
    directory = str(samples_dir / "hello")
    with caplog.at_level(logging.WARNING, logger="muslcheck"):
        alone = scan_fleet([directory], options)
    assert not alone.failed and caplog.records == []
    with socket.socket() as closed:  # a port nothing listens on: the registry target fails fast
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="muslcheck"):
        mixed = scan_fleet([directory, f"registry:127.0.0.1:{port}/app:1"], options)
    assert [r.getMessage() for r in caplog.records] == [
        f"muslcheck: warning: {config}: not a regular file: no registry credentials are used"]
    assert mixed.targets[0].verdict is not None  # the directory: scanned
    assert mixed.targets[1].error_kind == "input"  # the registry: tried anonymously, and unreachable


def count_digests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests of the blobs hashed from now on, one per hash made (``verify._digest`` counted)."""
    hashed: list[str] = []
    real_digest = verify._digest

    def counting_digest(expected: str, location: Any) -> str:
        hashed.append(expected)
        return real_digest(expected, location)

    monkeypatch.setattr(verify, "_digest", counting_digest)
    return hashed


# ---- a directory target: a link swapped in during the scan is never followed --------------------------------

def test_a_directory_swapped_for_a_link_to_outside_after_discovery_is_not_read_through(
        samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery reads the headers; the judge reads the symbols later. In between (the seam: right after
    ``open_target`` returns), /app/lib becomes a link to a directory outside the root holding another
    libdep.so; the paths were resolved (and cached) before, so only the opens stand between the scan and the
    outside. Every open made afterwards is checked by what it really opened: nothing outside, and the
    library the program needs is a finding."""
    root, outside = tmp_path / "root", tmp_path / "outside" / "lib"
    shutil.copytree(samples_dir / "rpath-origin/app", root / "app")
    outside.mkdir(parents=True)
    shutil.copy(samples_dir / "hello/app/bin/hello", outside / "libdep.so")  # an ELF file the scan must not see
    opened: list[str] = []
    real_open = os.open

    def spying_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        opened.append(os.readlink(f"/proc/self/fd/{fd}"))  # what the descriptor really is
        return fd

    real_open_target = survey.open_target

    def open_then_swap(*args: Any, **kwargs: Any) -> Any:
        tree = real_open_target(*args, **kwargs)
        for path in ("/app/bin/app", "/app/lib/libdep.so", "/app/lib"):
            assert isinstance(tree.root.resolve(path), Resolved)  # resolved before the swap, opened after it
        (root / "app" / "lib").rename(root / "app" / "lib.moved")
        (root / "app" / "lib").symlink_to(outside)
        monkeypatch.setattr(os, "open", spying_open)
        return tree

    monkeypatch.setattr(survey, "open_target", open_then_swap)
    report = scan(root, musl="1.2.5", jobs=1)
    monkeypatch.setattr(os, "open", real_open)
    assert opened, "the judge opened nothing after the swap: the seam is not where the test thinks"
    assert not [p for p in opened if p.startswith(str(tmp_path / "outside"))]
    app = next(f for f in report.files if f.path == "/app/bin/app")
    assert app.verdict is not Verdict.NATIVE  # its library is gone from the tree, or unreadable: a finding
    reasons = json.dumps(report.to_dict())
    assert "libdep.so" in reasons


def test_a_hit_hashes_a_blob_once_then_trusts_its_unchanged_file_until_it_changes(
        samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memo of hashed blobs: the scan that read the blob remembers it (its file unchanged while it was hashed), so
    no hit hashes it; a blob rewritten in place with its old mtime put back (ctime cannot be put back) is hashed
    again, and fails."""
    now = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: now() + 60 * 10**9)  # the files are out of the 2 s window
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()
    layout = tmp_path / "layout"
    image = ib.write_oci_dir(layout, [[ib.file("app/bin/app", app)]], compression="none")
    blob = ib.blob_path(layout, image.layers[0].digest)
    hashed = count_digests(monkeypatch)
    store = Store(tmp_path / "cache", salt=default_salt())
    target = f"oci-dir:{layout}"
    scan(target, musl="1.2.5", cache=store)
    scan(target, musl="1.2.5", cache=store)
    assert hashed == []  # the read hashed the blob (beside the judging) and remembered it: same file, same identity
    scan(target, musl="1.2.5", cache=store)
    assert hashed == []

    st = blob.stat()
    blob.write_bytes(_flip_middle(blob.read_bytes()))
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(DigestMismatch, match="content hashes to"):
        scan(target, musl="1.2.5", cache=store)
    assert hashed == [image.layers[0].digest]


# ---- the platform chosen decides, not the config's claim --------------------------------------------------

@pytest.mark.parametrize("platform", [None, "linux/amd64"])
def test_a_config_claiming_another_platform_changes_nothing_judged_and_is_reported(
        platform: str | None, samples_dir: Path, tmp_path: Path) -> None:
    """x86_64 files under a config that says linux/arm64: before, all of them were set aside as built for another
    architecture and the image passed. Without --platform each file is judged for its own architecture, and the
    report (JSON notes) says why."""
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()  # needs libdep.so, which the image lacks
    archive = tmp_path / "claims-arm64.tar"
    ib.write_docker_archive_legacy(archive, [[ib.file("app/bin/app", app, mode=0o755)]],
                                   ib.image_config(platform="linux/arm64"))
    ref = f"docker-archive:{archive}"
    if platform is not None:  # a single image must match an explicit platform: its config is all it says
        with pytest.raises(SourceError, match="no image for platform linux/amd64; available: linux/arm64"):
            scan(ref, musl="1.2.5", platform=platform)
        return
    report = scan(ref, musl="1.2.5")
    assert report.target.arch is None
    app_report = next(f for f in report.files if f.path == "/app/bin/app")
    assert (app_report.arch, app_report.verdict) == ("x86_64", Verdict.BLOCKED)  # judged, not set aside
    note = ("the image config says linux/arm64 and no --platform was given: each file is judged for its own "
            "architecture")
    assert note in report.notes
    result = run_scan(ref, "--musl", "1.2.5", work=tmp_path / "cli")
    assert note in json.loads(result.stdout)["notes"]
    assert result.rc == 1


def _index_contradicting_its_config(tmp_path: Path, app: bytes) -> Path:
    """An OCI layout whose index says linux/amd64 for an image whose config says linux/arm64."""
    lying = ib.build_image([[ib.file("app/bin/app", app, mode=0o755)]], ib.image_config(platform="linux/arm64"))
    layout = tmp_path / "layout"
    index = ib.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [
        {**lying.descriptor({ib.REF_NAME: "latest"}), "platform": {"os": "linux", "architecture": "amd64"}}]})
    for data in lying.blobs.values():
        put_blob(layout, data)
    (layout / "index.json").write_bytes(index)
    (layout / "oci-layout").write_bytes(ib.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout


def test_an_index_whose_config_contradicts_its_descriptor_is_judged_for_the_descriptor(
        samples_dir: Path, tmp_path: Path) -> None:
    """The index says linux/amd64 and is chosen for it; the config behind it says arm64: the files are judged as
    x86_64, with the warning."""
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()
    layout = _index_contradicting_its_config(tmp_path, app)
    report = scan(f"oci-dir:{layout}", musl="1.2.5", platform="linux/amd64")
    assert report.target.arch == "x86_64"
    assert next(f for f in report.files if f.path == "/app/bin/app").verdict is Verdict.BLOCKED
    assert any(n.startswith("warning: the image config says linux/arm64, but the platform is linux/amd64 "
                            "(chosen with --platform)") for n in report.notes)


def test_the_platform_warning_reaches_stderr_beside_the_table(samples_dir: Path, tmp_path: Path) -> None:
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()
    layout = _index_contradicting_its_config(tmp_path, app)
    result = CliRunner().invoke(main, ["scan", f"oci-dir:{layout}", "--platform", "linux/amd64", "--musl", "1.2.5",
                                       "--no-cache"])
    assert result.exit_code == 1
    assert "note: warning: the image config says linux/arm64" in result.stdout  # the table's notes
    assert "muslcheck: warning: the image config says linux/arm64" in result.stderr


def test_a_root_filesystem_tar_is_keyed_on_the_hash_made_when_it_is_opened(
        samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rootfs tar is hashed whole as it is opened (its digest is its key): a hit hashes it no second time, and
    a swapped tar is another key, scanned again, never the old report."""
    hashed = count_digests(monkeypatch)
    app = (samples_dir / "missing-dep/app/bin/app").read_bytes()
    hello = (samples_dir / "hello/app/bin/hello").read_bytes()
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(ib.layer_tar([ib.file("app/bin/app", app, mode=0o755)]))
    store = Store(tmp_path / "cache", salt=default_salt())
    first = scan(f"rootfs:{tar}", musl="1.2.5", cache=store)
    assert scan(f"rootfs:{tar}", musl="1.2.5", cache=store) == first and store.stats.hits == 1
    assert hashed == []
    tar.write_bytes(ib.layer_tar([ib.file("app/bin/app", hello, mode=0o755)]))
    swapped = scan(f"rootfs:{tar}", musl="1.2.5", cache=store)
    assert store.stats.hits == 1 and swapped != first


def test_an_arm64_image_without_a_platform_is_judged_as_arm64(tmp_path: Path) -> None:
    """Its files are what the image is: judged for aarch64, not set aside as built for the default amd64."""
    from tests.judging.test_judge_synthetic import library

    lib = library("libarm.so", machine=183).build().data  # EM_AARCH64, using nothing
    archive = tmp_path / "arm64.tar"
    ib.write_docker_archive_legacy(archive, [[ib.file("app/lib/libarm.so", lib)]],
                                   ib.image_config(platform="linux/arm64"))
    report = scan(f"docker-archive:{archive}", musl="1.2.5")
    [f] = [f for f in report.files if f.path == "/app/lib/libarm.so"]
    assert (f.arch, f.verdict) == ("aarch64", Verdict.NATIVE)
    assert report.target.arch is None
