"""Each source kind and each architecture is known in one table (SOURCE_KINDS, ARCHITECTURES); what reads a
reference, opens an image, writes the CLI help or maps a platform to musl's architecture derives from them."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from muslcheck import scan
from muslcheck.cli import scan_command
from muslcheck.ldso.tables import SUPPORTED_ARCHES
from muslcheck.model.errors import UsageError
from muslcheck.targets import ImageAccess, open_target
from muslcheck.targets.image.sources import open_image, parse_platform, source_for
from muslcheck.targets.image.sources.oci import Platform, platform_matches
from muslcheck.targets.reference import (
    ARCHITECTURES,
    IMAGE_FORMS,
    IMAGE_KINDS,
    KINDS,
    MUSL_ARCH_OF_OCI,
    SOURCE_KINDS,
    Reference,
    ReferenceKind,
    parse_reference,
    source_kind,
)
from tests.sources.sources_support import Blobs, annotate, write_layout


def test_every_kind_has_one_row_and_its_old_string() -> None:
    assert [row.kind for row in SOURCE_KINDS] == list(ReferenceKind) == list(KINDS)
    # The values are what users write and what JSON carries: they never change.
    assert [str(k) for k in KINDS] == ["dir", "file", "docker-archive", "oci-archive", "oci-dir", "registry", "docker",
                                       "rootfs"]
    assert json.dumps(list(IMAGE_KINDS)) == ('["docker-archive", "oci-archive", "oci-dir", "registry", "docker", '
                                             '"rootfs"]')
    assert {row.kind for row in SOURCE_KINDS if row.source is None} == {ReferenceKind.DIR, ReferenceKind.FILE}
    for row in SOURCE_KINDS:
        assert row.form.startswith(f"{row.kind}:"), row


def _image_references(tmp: Path) -> dict[ReferenceKind, tuple[str, dict[str, Any]]]:
    """A reference of each image kind, and the attributes its source must be built with."""
    (tmp / "app.tar").write_bytes(b"")
    (tmp / "layout").mkdir()
    return {
        ReferenceKind.DOCKER_ARCHIVE: (f"docker-archive:{tmp}/app.tar:org/app:1",
                                       {"path": tmp / "app.tar", "tag": "org/app:1"}),
        ReferenceKind.OCI_ARCHIVE: (f"oci-archive:{tmp}/app.tar:v2", {"path": tmp / "app.tar", "tag": "v2"}),
        ReferenceKind.OCI_DIR: (f"oci-dir:{tmp}/layout", {"path": tmp / "layout", "tag": None}),
        ReferenceKind.REGISTRY: ("registry:ghcr.io/org/app:1.4",
                                 {"name": "ghcr.io/org/app", "tag": "1.4", "digest": None, "insecure": True,
                                  "docker_config": tmp / "config.json"}),
        ReferenceKind.DOCKER: ("docker:app:3", {"spec": "app:3"}),
        ReferenceKind.ROOTFS: (f"rootfs:{tmp}/app.tar", {"path": tmp / "app.tar"}),
    }


def test_source_for_builds_the_class_the_row_names(tmp_path: Path) -> None:
    references = _image_references(tmp_path)
    assert set(references) == set(IMAGE_KINDS)
    for kind, (text, attributes) in references.items():
        ref = parse_reference(text)
        assert ref.kind is kind and ref.is_image
        source: Any = source_for(ref, platform="linux/arm64", insecure_registry=True,
                                 docker_config=tmp_path / "config.json")
        row = source_kind(kind)
        assert row.source is not None
        module, _, name = row.source.partition(":")
        assert (type(source).__module__, type(source).__name__) == (f"muslcheck.targets.image.sources.{module}", name)
        assert source.kind is kind  # the class's own kind is the row's
        assert (source.reference, source.platform) == (text, "linux/arm64")
        assert {a: getattr(source, a) for a in attributes} == attributes


def test_what_is_no_image_gets_no_source(tmp_path: Path) -> None:
    for text in (f"dir:{tmp_path}", f"file:{tmp_path}/prog"):
        ref = parse_reference(text)
        assert not ref.is_image
        with pytest.raises(UsageError, match=r"not a container image"):
            source_for(ref)


def test_a_reference_lacking_its_part_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^oci-dir:: no path in this oci-dir reference$"):
        source_for(Reference(ReferenceKind.OCI_DIR, "oci-dir:"))
    with pytest.raises(UsageError, match=r"no image name in this registry reference"):
        source_for(Reference(ReferenceKind.REGISTRY, "registry:"))


def test_unknown_prefix_names_the_known_kinds(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"'sftp' is not a source kind; known: dir, file, docker-archive, oci-arch"):
        parse_reference("sftp:Host/x")


def test_cli_help_shows_every_image_form() -> None:
    assert scan_command.help is not None and IMAGE_FORMS in scan_command.help
    assert IMAGE_FORMS.split(", ") == [row.form for row in SOURCE_KINDS if row.source is not None]


# ---- architectures ---------------------------------------------------------------------------------------

def test_every_loader_table_is_reachable_from_an_image() -> None:
    assert sorted(MUSL_ARCH_OF_OCI.values()) == sorted(SUPPORTED_ARCHES)
    assert MUSL_ARCH_OF_OCI == {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386",
                                "ppc64le": "ppc64", "s390x": "s390x", "riscv64": "riscv64"}


def test_every_spelling_reads_as_the_oci_name() -> None:
    for arch in ARCHITECTURES:
        for spelling in (arch.oci, *arch.aliases):
            assert parse_platform(f"linux/{spelling.upper()}").architecture == arch.oci


def test_the_plain_variant_matches_no_variant() -> None:
    for arch in ARCHITECTURES:
        if arch.plain_variant is None:
            continue
        plain, named = Platform("linux", arch.oci), Platform("linux", arch.oci, arch.plain_variant)
        assert named.normal_variant is None
        assert platform_matches(plain, named) and platform_matches(named, plain)
    assert Platform("linux", "arm", "v7").normal_variant == "v7"
    assert not platform_matches(Platform("linux", "arm", "v7"), Platform("linux", "arm", "v6"))


def test_an_image_config_in_musl_spelling_is_judged_as_its_architecture(tmp_path: Path) -> None:
    blobs = Blobs()
    built = blobs.image([{"app/run": b"run"}], arch="aarch64", platform_in_descriptor=False)
    layout = write_layout(tmp_path / "layout", blobs, [annotate(built.descriptor, "1")])
    ref = parse_reference(f"oci-dir:{layout}:1")
    with ExitStack() as stack:
        image = stack.enter_context(open_image(ref, platform="linux/arm64/v8"))
        assert image.config.architecture == "arm64"
        assert open_target(stack, ref, image, ImageAccess("linux/arm64/v8", False, None)).arch == "aarch64"


@pytest.mark.parametrize("platform", [p for arch in ARCHITECTURES if arch.oci in MUSL_ARCH_OF_OCI
                                      for p in arch.linux_platforms])
def test_scan_takes_each_platform_of_a_judged_architecture(tmp_path: Path, platform: str) -> None:
    arch = MUSL_ARCH_OF_OCI[platform.split("/")[1]]
    assert scan(tmp_path, platform=platform).target.arch == arch
    assert scan(tmp_path, platform=platform, arch=arch).target.arch == arch
    other = next(a for a in SUPPORTED_ARCHES if a != arch)
    with pytest.raises(UsageError) as e:
        scan(tmp_path, platform=platform, arch=other)
    assert str(e.value) == f"platform {platform} is {arch}, not {other}"


def test_scan_names_the_platforms_it_knows(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        scan(tmp_path, platform="linux/mips64le")
    assert str(e.value) == ("unknown platform 'linux/mips64le'; "
                            "known: linux/amd64, linux/amd64/v1, linux/arm64, linux/arm64/v8, linux/arm, "
                            "linux/386, linux/ppc64le, linux/s390x, linux/riscv64")
