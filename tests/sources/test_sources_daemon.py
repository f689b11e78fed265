"""docker: a reachable daemon exports with `docker save`; without one, a one-line error that says what to do."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from muslcheck.targets.image.sources import SourceError, open_image, parse_reference
from muslcheck.targets.image.sources.daemon import DockerDaemonSource, daemon_reachable
from tests.sources.sources_support import legacy_docker_archive

MESSAGE = ("no Docker daemon is reachable; run `docker save app:1 -o image.tar` "
           "and scan docker-archive:image.tar")


def test_no_daemon_message() -> None:
    if shutil.which("docker") and daemon_reachable():
        pytest.skip("a Docker daemon is reachable here")
    with pytest.raises(SourceError) as e:
        open_image(parse_reference("docker:app:1")).__enter__()
    assert str(e.value) == MESSAGE


def test_no_docker_binary(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as e:
        DockerDaemonSource("app:1", docker=str(tmp_path / "docker")).open().__enter__()
    assert str(e.value) == MESSAGE


def fake_docker(tmp_path: Path, archive: Path | None) -> Path:
    """A `docker` that answers `version` and writes ``archive`` for `save -o OUT NAME`."""
    script = tmp_path / "docker"
    script.write_text(f"""#!{sys.executable}
import shutil, sys
args = sys.argv[1:]
if args[0] == "version":
    print("27.0.0")
elif args[:2] == ["save", "-o"] and {str(archive)!r} != "None":
    shutil.copyfile({str(archive)!r}, args[2])
else:
    print("Error response from daemon: reference does not exist", file=sys.stderr)
    sys.exit(1)
""")
    script.chmod(0o755)
    return script


def test_docker_save_is_read_as_a_docker_archive(tmp_path: Path) -> None:
    archive = legacy_docker_archive(tmp_path / "saved.tar", [(["app:1"], [{"app/run": b"x"}], "amd64")])
    docker = fake_docker(tmp_path, archive)
    with DockerDaemonSource("app:1", docker=str(docker), reference="docker:app:1").open() as image:
        assert (image.kind, image.reference, len(image.layers)) == ("docker", "docker:app:1", 1)
        exported = Path(image.blobs.path)  # type: ignore[attr-defined]
        assert exported.is_file() and exported.name == "image.tar"
        with image.blobs.open_blob(image.layers[0].digest) as f:
            assert f.read(5)
    assert not exported.exists() and not exported.parent.exists()  # the temporary export is gone


def test_docker_save_failure(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, None)
    with pytest.raises(SourceError, match=r"^docker save nope failed: Error response from daemon: reference does not"):
        DockerDaemonSource("nope", docker=str(docker)).open().__enter__()
