"""parse_reference: the prefix forms of syft/skopeo, Docker name normalisation, detection from content."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from muslcheck.model.errors import InputError, UsageError
from muslcheck.targets.reference import Reference, ReferenceKind, parse_reference
from tests.sources.sources_support import layer_tar, legacy_docker_archive, oci_docker_archive, tar_layout, tar_members

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "kind", "name", "tag", "digest"), [
    ("registry:alpine", "registry", "docker.io/library/alpine", "latest", None),
    ("registry:alpine:3.19", "registry", "docker.io/library/alpine", "3.19", None),
    ("registry:org/app", "registry", "docker.io/org/app", "latest", None),
    ("registry:docker.io/alpine", "registry", "docker.io/library/alpine", "latest", None),
    ("registry:index.docker.io/library/alpine:3", "registry", "docker.io/library/alpine", "3", None),
    ("registry:ghcr.io/org/app:1.4", "registry", "ghcr.io/org/app", "1.4", None),
    ("registry:localhost:5000/app", "registry", "localhost:5000/app", "latest", None),
    ("registry:localhost/app:v1", "registry", "localhost/app", "v1", None),
    ("registry:127.0.0.1:5000/team/app:2", "registry", "127.0.0.1:5000/team/app", "2", None),
    (f"registry:alpine@{DIGEST}", "registry", "docker.io/library/alpine", None, DIGEST),
    (f"registry:quay.io/org/app:1@{DIGEST}", "registry", "quay.io/org/app", "1", DIGEST),
    ("docker:app", "docker", "docker.io/library/app", "latest", None),
    ("docker:app:latest", "docker", "docker.io/library/app", "latest", None),
])
def test_image_names(text: str, kind: str, name: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.name, ref.tag, ref.digest) == (kind, name, tag, digest)
    assert ref.text == text
    assert ref.registry == name.split("/")[0]


def test_docker_spec_is_kept_as_written() -> None:
    assert parse_reference("docker:app:1").spec == "app:1"
    ref = parse_reference("docker:3f57d9401f8d")
    assert (ref.kind, ref.spec, ref.name) == ("docker", "3f57d9401f8d", None)


def test_prefixed_paths(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    archive.write_bytes(b"")
    layout = tmp_path / "lay:out"  # a colon in the path itself
    layout.mkdir()
    assert parse_reference(f"dir:{tmp_path}") == Reference(ReferenceKind.DIR, f"dir:{tmp_path}", path=tmp_path)
    assert parse_reference(f"docker-archive:{archive}").path == archive
    ref = parse_reference(f"docker-archive:{archive}:repo/app:1")
    assert (ref.kind, ref.path, ref.tag) == ("docker-archive", archive, "repo/app:1")
    assert parse_reference(f"docker-archive:{archive}:app").tag == "app:latest"
    assert parse_reference(f"docker-archive:{archive}:@1").tag == "@1"
    ref = parse_reference(f"oci-dir:{layout}")
    assert (ref.kind, ref.path, ref.tag) == ("oci-dir", layout, None)
    ref = parse_reference(f"oci-dir:{layout}:v2")
    assert (ref.kind, ref.path, ref.tag) == ("oci-dir", layout, "v2")
    ref = parse_reference(f"oci-archive:{archive}:v3")
    assert (ref.kind, ref.path, ref.tag) == ("oci-archive", archive, "v3")
    ref = parse_reference("oci-dir:./missing:tag")  # nothing exists: skopeo's reading, the open says what is missing
    assert (ref.path, ref.tag) == (Path("./missing"), "tag")


def test_detect_directories(tmp_path: Path) -> None:
    assert parse_reference(str(tmp_path)).kind == "dir"
    (tmp_path / "oci-layout").write_text("{}")
    (tmp_path / "index.json").write_text("{}")
    assert parse_reference(str(tmp_path)).kind == "oci-dir"


def test_detect_files(tmp_path: Path) -> None:
    elf = tmp_path / "prog"
    elf.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57))
    assert parse_reference(str(elf)) == Reference(ReferenceKind.FILE, str(elf), path=elf)
    legacy = legacy_docker_archive(tmp_path / "legacy.tar", [(["app:1"], [{"a": b"x"}], "amd64")])
    assert parse_reference(str(legacy)).kind == "docker-archive"
    both = oci_docker_archive(tmp_path / "new.tar", ["app:1"], [{"a": b"x"}])  # manifest.json + oci-layout
    assert parse_reference(str(both)).kind == "docker-archive"
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text("{}")
    assert parse_reference(str(tar_layout(layout, tmp_path / "oci.tar"))).kind == "oci-archive"


@pytest.mark.parametrize(("content", "message"), [
    (b"just text\n", "not an ELF file, a JAR/zip, a directory, a tar of a root filesystem, a docker-archive or an "
                    "oci-archive"),
    (gzip.compress(layer_tar({"manifest.json": b'[{"Config": "c.json", "Layers": ["l/layer.tar"]}]'})),
     "compressed image archive"),
])
def test_detect_rejects(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "thing"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        parse_reference(str(path))


def test_detect_plain_tar_that_is_no_image_as_a_root_filesystem(tmp_path: Path) -> None:
    path = tar_members(tmp_path / "x.tar", {"hello.txt": b"hi"})
    assert parse_reference(str(path)).kind == "rootfs"


def test_missing_path_suggests_registry(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such file or directory") as e:
        parse_reference(str(tmp_path / "nope"))
    assert "registry:" not in str(e.value)
    with pytest.raises(InputError, match=r"write registry:alpine:3\.19"):
        parse_reference("alpine:3.19")


@pytest.mark.parametrize("text", [
    "", " alpine", "registry:", "registry:Alpine", "registry:alpine:bad tag", "registry:alpine:",
    "registry:alpine@sha256:xyz", "registry:alpine@md5:" + "a" * 32, "registry:a//b", "docker:", "docker:-rm",
    "oci-dir:", "docker-archive:", "dir:", "registry:ex ample.com/app",
])
def test_unparsable(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_reference(text)
    assert "\n" not in str(e.value) and str(e.value)


def test_a_zip_is_detected_as_one_file(tmp_path: Path) -> None:
    """A JAR, WAR or wheel given as the target is scanned like a lone ELF file: its members are read."""
    import zipfile

    path = tmp_path / "app.jar"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    assert parse_reference(str(path)).kind == "file"


def test_the_sources_are_imported_when_an_image_is_opened_not_before() -> None:
    code = ("import sys, muslcheck.cli, muslcheck.targets.image.sources as s; "
            "print(sorted(m for m in sys.modules if m.startswith('muslcheck.targets.image.sources.'))); "
            "print(s.RegistrySource.__module__, s.parse_platform('linux/arm64'))")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0] == "['muslcheck.targets.image.sources.interface']"  # no ssl, no http
    assert lines[1].startswith("muslcheck.targets.image.sources.registry ")
