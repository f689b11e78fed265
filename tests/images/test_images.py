"""Container images as input: every source form judges the same tree the same way as a ``dir:`` scan.

The images are built here, from real glibc and musl binaries (``samples/build.py``): with our own
writers (tests/images/imagebuild.py), with umoci and skopeo, and pushed to a real registry (Debian's
docker-registry on 127.0.0.1). The reference is always the directory scan of the same layers applied
to a host directory, never a recorded run. Real tools are skipped locally when missing and fail
under CI=true.
"""

from __future__ import annotations

import os
import signal
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import muslcheck
from muslcheck import MuslcheckError, Report
from muslcheck.cli import EXIT_INPUT, main
from tests.elf.elfbuilder import ElfSpec
from tests.images.imagebuild import (
    Entry,
    Registry,
    add_platform_index,
    blob_path,
    corrupt_blob,
    device,
    fifo,
    file,
    hardlink,
    hexof,
    image_config,
    layer_member_names,
    layer_tar,
    materialize,
    raw,
    registry,
    require_tools,
    rewrite_manifest,
    rewrite_tar_member,
    sample_layers,
    skopeo_copy,
    symlink,
    umoci_build,
    write_docker_archive_legacy,
    write_docker_archive_oci,
    write_multiplatform_oci_archive,
    write_multiplatform_oci_dir,
    write_oci_archive,
    write_oci_dir,
)

Verdicts = dict[str, tuple[str, tuple[str, ...]]]


def verdicts(report: Report) -> Verdicts:
    """path (and each hard-link alias) -> (verdict, sorted unresolved symbol names)."""
    out: Verdicts = {}
    for f in report.files:
        v = (str(f.verdict), tuple(sorted({s.name for s in f.unresolved_symbols})))
        for p in (f.path, *f.aliases):
            out[p] = v
    return out


def skipped(report: Report) -> list[str]:
    return sorted(s.path for s in report.skipped)


def by_path(report: Report) -> dict[str, Any]:
    return {p: f for f in report.files for p in (f.path, *f.aliases)}


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a symlink loop must not hang the scan)."""

    def expired(signum: int, frame: object) -> None:
        raise AssertionError(f"scan did not finish within {seconds}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def scan(reference: str, **kwargs: Any) -> Report:
    with deadline(120):
        return muslcheck.scan(reference, **kwargs)


def cli(*args: str) -> Result:
    with deadline(120):
        return CliRunner().invoke(main, list(args))


def one_error_line(result: Result, tmp: Path) -> str:
    """The one stderr line of a failed scan, exit 3, with the temp dir replaced by "<tmp>" (its name
    holds the test's name, which must not satisfy a keyword check)."""
    assert result.exit_code == EXIT_INPUT, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    return lines[0].replace(str(tmp), "<tmp>")


# --- the sample image and its reference scan -----------------------------------------------------


@pytest.fixture(scope="module")
def layers(samples_dir: Path) -> list[list[Entry]]:
    return sample_layers(samples_dir)


@pytest.fixture(scope="module")
def reference_dir(layers: list[list[Entry]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(layers, tmp_path_factory.mktemp("reference") / "rootfs")


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> Report:
    """The ``dir:`` scan of the squashed tree: what every image form must say."""
    report = scan(f"dir:{reference_dir}")
    assert verdicts(report) == verdicts(muslcheck.scan(reference_dir)), "dir: differs from a plain path"
    return report


def test_reference_tree_is_what_the_image_tests_expect(reference: Report) -> None:
    """The dir scan itself (already supported): guards the expectations the image tests lean on."""
    v = verdicts(reference)
    assert "/usr/lib/libplt.so" not in v  # deleted by layer 3
    assert "/app/old/bin/hello" not in v and v["/app/old/bin/hello-musl"][0] == "native"
    assert v["/app/musl-lib/bin/app"] == ("native", ())
    assert v["/app/fortify/bin/fortify-hardlink"] == v["/app/fortify/bin/fortify"]
    assert skipped(reference) == ["/app/loop/a", "/app/loop/b"]


# Each writer, as (name, builder(tmp, layers) -> reference string).
Former = Callable[[Path, list[list[Entry]]], str]


def _legacy(compression: str) -> Former:
    def build(tmp: Path, layers: list[list[Entry]]) -> str:
        write_docker_archive_legacy(tmp / "app.tar", layers, compression=compression)
        return f"docker-archive:{tmp / 'app.tar'}"

    return build


def _oci_dir(compression: str | list[str], media_types: str = "oci", ref: str = ":app") -> Former:
    def build(tmp: Path, layers: list[list[Entry]]) -> str:
        write_oci_dir(tmp / "layout", layers, tag="app", compression=compression, media_types=media_types)
        return f"oci-dir:{tmp / 'layout'}{ref}"

    return build


def _docker_oci(tmp: Path, layers: list[list[Entry]]) -> str:
    write_docker_archive_oci(tmp / "app.tar", layers)
    return f"docker-archive:{tmp / 'app.tar'}"


def _oci_archive(tmp: Path, layers: list[list[Entry]]) -> str:
    write_oci_archive(tmp / "app-oci.tar", layers, tag="app")
    return f"oci-archive:{tmp / 'app-oci.tar'}"


def _detected_docker(tmp: Path, layers: list[list[Entry]]) -> str:
    write_docker_archive_legacy(tmp / "app.tar", layers)
    return str(tmp / "app.tar")


def _detected_docker_oci(tmp: Path, layers: list[list[Entry]]) -> str:
    write_docker_archive_oci(tmp / "app.tar", layers)
    return str(tmp / "app.tar")


def _detected_oci_archive(tmp: Path, layers: list[list[Entry]]) -> str:
    write_oci_archive(tmp / "app-oci.tar", layers, tag="app")
    return str(tmp / "app-oci.tar")


FORMS: dict[str, Former] = {
    "docker-archive-legacy": _legacy("none"),
    "docker-archive-legacy-gzip": _legacy("gzip"),
    "docker-archive-oci": _docker_oci,
    "oci-dir-gzip": _oci_dir("gzip"),
    "oci-dir-zstd": _oci_dir("zstd"),
    "oci-dir-uncompressed": _oci_dir("none"),
    "oci-dir-mixed-compression": _oci_dir(["zstd", "gzip", "none"]),
    "oci-dir-docker-media-types": _oci_dir("gzip", media_types="docker"),
    "oci-dir-no-tag-in-reference": _oci_dir("gzip", ref=""),
    "oci-archive": _oci_archive,
    "detected-docker-archive": _detected_docker,
    "detected-docker-archive-oci": _detected_docker_oci,
    "detected-oci-archive": _detected_oci_archive,
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_matches_the_dir_scan(
    form: str, layers: list[list[Entry]], reference: Report, tmp_path: Path
) -> None:
    ref = FORMS[form](tmp_path, layers)
    report = scan(ref)
    assert verdicts(report) == verdicts(reference)
    assert skipped(report) == skipped(reference)
    assert report.verdict == reference.verdict


# --- squashing: whiteouts, opaque dirs, shadowing, links -------------------------------------------


@pytest.fixture(scope="module")
def image(layers: list[list[Entry]], tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The sample image (oci-dir, gzip), scanned once."""
    tmp = tmp_path_factory.mktemp("image")
    write_oci_dir(tmp / "layout", layers, tag="app")
    return scan(f"oci-dir:{tmp / 'layout'}:app")


@pytest.fixture(scope="module")
def lower(layers: list[list[Entry]], tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The first two layers only: what layer 3 deletes, hides and replaces is still there."""
    tmp = tmp_path_factory.mktemp("lower")
    write_oci_dir(tmp / "layout", layers[:2], tag="app")
    return scan(f"oci-dir:{tmp / 'layout'}:app")


def test_file_deleted_in_a_later_layer_is_not_scanned(image: Report, lower: Report) -> None:
    assert "/usr/lib/libplt.so" in verdicts(lower)
    assert "/usr/lib/libplt.so" not in verdicts(image)
    assert "/usr/lib/libplt.so" not in skipped(image)
    assert not [p for p in (*verdicts(image), *skipped(image)) if ".wh." in p]


def test_opaque_directory_hides_lower_content(image: Report, lower: Report) -> None:
    assert "/app/old/bin/hello" in verdicts(lower)
    assert "/app/old/bin/hello" not in verdicts(image)
    assert verdicts(image)["/app/old/bin/hello-musl"] == ("native", ())


def test_shadowed_library_is_the_later_layers(image: Report, lower: Report) -> None:
    """Layer 3 replaces a glibc libgreet.so with the musl build: the musl program turns native."""
    before, after = verdicts(lower), verdicts(image)
    assert before["/app/musl-lib/bin/app"][0] == "blocked"
    assert "greet_value" in before["/app/musl-lib/bin/app"][1]
    assert after["/app/musl-lib/bin/app"] == ("native", ())
    assert after["/app/musl-lib/lib/libgreet.so"] == ("native", ())


def test_absolute_and_relative_symlinks_resolve_inside_the_image(image: Report) -> None:
    files = by_path(image)
    # /usr/lib/libdep.so -> /opt/dep/libdep.so.1: the absolute target is inside the image root.
    dep = files["/app/missing-dep/bin/app"]
    assert not dep.missing_libraries
    step = next(s for s in dep.load_order if s.name == "libdep.so")
    assert step.path == "/usr/lib/libdep.so"
    assert any("/opt/dep/libdep.so.1" in link for link in step.links)
    # libifunc.so -> libifunc.so.1 (relative): found, and judged (blocked by its IFUNC).
    app = files["/app/ifunc/bin/app"]
    assert not app.missing_libraries
    assert app.verdict == "blocked" and "ifunc_add" in {s.name for s in app.unresolved_symbols}
    assert any(r.type == 37 for r in app.unsupported_relocations)


def test_absolute_symlink_never_reaches_the_host(samples_dir: Path, tmp_path: Path) -> None:
    """A link to a host path that exists on the host, but not in the image: the library is missing."""
    host_lib = samples_dir / "rpath-origin/app/lib/libdep.so"
    assert host_lib.is_file()
    layers = [[
        file("/app/bin/app", source=samples_dir / "missing-dep/app/bin/app"),
        symlink("/usr/lib/libdep.so", str(host_lib)),
    ]]  # fmt: skip
    write_oci_dir(tmp_path / "layout", layers, tag="app")
    report = scan(f"oci-dir:{tmp_path / 'layout'}:app")
    app = by_path(report)["/app/bin/app"]
    assert [m.name for m in app.missing_libraries] == ["libdep.so"]
    assert verdicts(report) == verdicts(scan(str(materialize(layers, tmp_path / "rootfs"))))


def test_symlink_loop_is_skipped_not_a_hang(image: Report, samples_dir: Path, tmp_path: Path) -> None:
    assert {"/app/loop/a", "/app/loop/b"} <= set(skipped(image))
    # A loop on a library search path: the search goes on, the scan ends.
    layers = [[
        file("/app/bin/app", source=samples_dir / "missing-dep/app/bin/app"),
        symlink("/app/lib", "/app/lib2"),
        symlink("/app/lib2", "/app/lib"),
        symlink("/usr/lib/libdep.so", "libdep.so"),
    ]]  # fmt: skip
    write_oci_dir(tmp_path / "layout", layers, tag="app")
    report = scan(f"oci-dir:{tmp_path / 'layout'}:app")
    assert "/app/bin/app" in verdicts(report)
    assert verdicts(report) == verdicts(scan(str(materialize(layers, tmp_path / "rootfs"))))


def test_hard_link_is_judged_like_its_target(image: Report) -> None:
    v = verdicts(image)
    assert v["/app/fortify/bin/fortify-hardlink"] == v["/app/fortify/bin/fortify"]
    assert v["/app/fortify/bin/fortify"][0] == "needs-gcompat"
    assert "__memcpy_chk" in v["/app/fortify/bin/fortify"][1]


def test_hard_link_to_a_file_of_a_lower_layer(samples_dir: Path, tmp_path: Path) -> None:
    layers = [
        [file("/app/bin/fortify", source=samples_dir / "fortify/app/bin/fortify")],
        [hardlink("/app/bin/again", "/app/bin/fortify")],
    ]
    write_docker_archive_legacy(tmp_path / "app.tar", layers)
    v = verdicts(scan(f"docker-archive:{tmp_path / 'app.tar'}"))
    assert v["/app/bin/again"] == v["/app/bin/fortify"]
    assert v["/app/bin/fortify"][0] == "needs-gcompat"


def test_layer_compressions_each_read(samples_dir: Path, tmp_path: Path) -> None:
    """One image, three layers: uncompressed, gzip, zstd; each layer adds one program."""
    layers = [
        [file("/a/hello", source=samples_dir / "hello/app/bin/hello")],
        [file("/b/hello-musl", source=samples_dir / "hello-musl/app/bin/hello")],
        [file("/c/fortify", source=samples_dir / "fortify/app/bin/fortify")],
    ]
    write_oci_dir(tmp_path / "layout", layers, tag="app", compression=["none", "gzip", "zstd"])
    v = verdicts(scan(f"oci-dir:{tmp_path / 'layout'}:app"))
    assert set(v) == {"/a/hello", "/b/hello-musl", "/c/fortify"}
    assert v["/b/hello-musl"] == ("native", ())


def test_image_config_does_not_change_file_verdicts(
    layers: list[list[Entry]], reference: Report, tmp_path: Path
) -> None:
    """Env, WORKDIR and entrypoint are read (the scan does not choke on them)."""
    config = image_config(
        env=["PATH=/app/bin:/usr/bin", "LD_LIBRARY_PATH=/nonexistent"],
        workdir="/app",
        entrypoint=["/app/fortify/bin/fortify"],
        cmd=["--help"],
    )
    write_oci_dir(tmp_path / "layout", layers, config, tag="app")
    report = scan(f"oci-dir:{tmp_path / 'layout'}:app")
    assert {p: v[0] for p, v in verdicts(report).items()} == {p: v[0] for p, v in verdicts(reference).items()}


# --- platforms ---------------------------------------------------------------------------------------


def _platform_layers(samples_dir: Path) -> dict[str, tuple[list[list[Entry]], None]]:
    arm64 = ElfSpec(machine=183, interp="/lib/ld-musl-aarch64.so.1", needed=["libc.so"]).build().data
    return {
        "linux/amd64": ([[file("/app/bin/hello", source=samples_dir / "hello-musl/app/bin/hello")]], None),
        "linux/arm64": ([[file("/app/bin/hello", arm64, mode=0o755), file("/app/ARM64", b"arm64\n")]], None),
    }


@pytest.mark.parametrize("nested", [True, False], ids=["index-in-index", "flat-index"])
@pytest.mark.parametrize("kind", ["oci-dir", "oci-archive"])
def test_platform_selects_the_manifest(kind: str, nested: bool, samples_dir: Path, tmp_path: Path) -> None:
    platforms = _platform_layers(samples_dir)
    if kind == "oci-dir":
        write_multiplatform_oci_dir(tmp_path / "layout", platforms, tag="multi", nested=nested)
        ref = f"oci-dir:{tmp_path / 'layout'}:multi"
    else:
        write_multiplatform_oci_archive(tmp_path / "multi.tar", platforms, tag="multi", nested=nested)
        ref = f"oci-archive:{tmp_path / 'multi.tar'}"
    arm = by_path(scan(ref, platform="linux/arm64"))
    assert arm["/app/bin/hello"].arch == "aarch64"
    default = by_path(scan(ref))  # linux/amd64 by default
    assert default["/app/bin/hello"].arch == "x86_64"
    assert default["/app/bin/hello"].verdict == "native"


def test_absent_platform_lists_the_available_ones(samples_dir: Path, tmp_path: Path) -> None:
    arm64 = _platform_layers(samples_dir)["linux/arm64"]
    write_multiplatform_oci_dir(tmp_path / "layout", {"linux/arm64": arm64, "linux/ppc64le": arm64}, tag="multi")
    with pytest.raises(MuslcheckError) as e:
        scan(f"oci-dir:{tmp_path / 'layout'}:multi")  # default linux/amd64 is not there
    assert "linux/arm64" in str(e.value) and "linux/ppc64le" in str(e.value)
    result = cli("scan", f"oci-dir:{tmp_path / 'layout'}:multi")
    assert result.exit_code != 0 and "linux/arm64" in result.stderr and "Traceback" not in result.output


# --- bad input -----------------------------------------------------------------------------------


def _small_layers(samples_dir: Path) -> list[list[Entry]]:
    return [
        [file("/app/bin/hello", source=samples_dir / "hello-musl/app/bin/hello")],
        [file("/app/bin/fortify", source=samples_dir / "fortify/app/bin/fortify")],
    ]


def _intact(ref: str) -> None:
    """The image scans before it is damaged: the error below comes from the damage."""
    assert "/app/bin/fortify" in verdicts(scan(ref)), ref


@pytest.mark.parametrize("which", ["layer", "config"])
def test_digest_mismatch_is_an_input_error(which: str, samples_dir: Path, tmp_path: Path) -> None:
    built = write_oci_dir(tmp_path / "layout", _small_layers(samples_dir), tag="app", compression="none")
    ref = f"oci-dir:{tmp_path / 'layout'}:app"
    _intact(ref)
    digest = built.layers[1].digest if which == "layer" else built.config_digest
    size = len(blob_path(tmp_path / "layout", digest).read_bytes())
    # In a layer: inside the file's bytes, so the tar still parses and only the digest tells.
    corrupt_blob(tmp_path / "layout", digest, offset=size - 1500 if which == "layer" else None)
    line = one_error_line(cli("scan", ref), tmp_path)
    assert "digest" in line.lower() or "sha256" in line.lower(), line
    with pytest.raises(MuslcheckError):
        scan(ref)


def test_digest_mismatch_in_a_docker_archive(samples_dir: Path, tmp_path: Path) -> None:
    built = write_docker_archive_legacy(tmp_path / "app.tar", _small_layers(samples_dir))
    _intact(f"docker-archive:{tmp_path / 'app.tar'}")
    with tarfile.open(tmp_path / "app.tar") as tar:
        names = [n for n in tar.getnames() if n.endswith("/layer.tar")]
        name = next(n for n in names if (f := tar.extractfile(n)) is not None and f.read() == built.layers[1].data)

    def flip(data: bytes) -> bytes:
        b = bytearray(data)
        b[len(b) - 1500] ^= 0xFF  # inside the file's bytes: the tar still parses
        return bytes(b)

    rewrite_tar_member(tmp_path / "app.tar", name, flip)
    line = one_error_line(cli("scan", f"docker-archive:{tmp_path / 'app.tar'}"), tmp_path)
    assert "digest" in line.lower() or "sha256" in line.lower() or "diff" in line.lower(), line


def test_missing_blob_is_an_input_error(samples_dir: Path, tmp_path: Path) -> None:
    built = write_oci_dir(tmp_path / "layout", _small_layers(samples_dir), tag="app")
    _intact(f"oci-dir:{tmp_path / 'layout'}:app")
    blob_path(tmp_path / "layout", built.layers[0].digest).unlink()
    line = one_error_line(cli("scan", f"oci-dir:{tmp_path / 'layout'}:app"), tmp_path)
    assert hexof(built.layers[0].digest)[:12] in line or "missing" in line.lower() or "blob" in line.lower(), line


def test_unknown_media_type_is_an_input_error(samples_dir: Path, tmp_path: Path) -> None:
    write_oci_dir(tmp_path / "layout", _small_layers(samples_dir), tag="app")
    _intact(f"oci-dir:{tmp_path / 'layout'}:app")

    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["mediaType"] = "application/vnd.example.not-a-layer"

    rewrite_manifest(tmp_path / "layout", edit)
    line = one_error_line(cli("scan", f"oci-dir:{tmp_path / 'layout'}:app"), tmp_path)
    assert "application/vnd.example.not-a-layer" in line or "media type" in line.lower(), line


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_truncated_layer_is_a_clear_error(compression: str, samples_dir: Path, tmp_path: Path) -> None:
    """The blob's digests are right (computed over the truncated tar): the tar itself is short."""
    tar = layer_tar([file("/app/bin/fortify", source=samples_dir / "fortify/app/bin/fortify")])
    write_oci_dir(tmp_path / "intact", [tar], tag="app", compression=compression)
    _intact(f"oci-dir:{tmp_path / 'intact'}:app")
    write_oci_dir(tmp_path / "layout", [tar[: len(tar) // 2]], tag="app", compression=compression)
    ref = f"oci-dir:{tmp_path / 'layout'}:app"
    line = one_error_line(cli("scan", ref), tmp_path)
    assert "trunc" in line.lower() or "tar" in line.lower() or "unexpected end" in line.lower(), line
    with pytest.raises(MuslcheckError):
        scan(ref)


def test_truncated_archive_is_a_clear_error(samples_dir: Path, tmp_path: Path) -> None:
    write_docker_archive_legacy(tmp_path / "app.tar", _small_layers(samples_dir))
    _intact(f"docker-archive:{tmp_path / 'app.tar'}")
    data = (tmp_path / "app.tar").read_bytes()
    (tmp_path / "app.tar").write_bytes(data[: len(data) - 4096])
    one_error_line(cli("scan", f"docker-archive:{tmp_path / 'app.tar'}"), tmp_path)


def _listing(root: Path) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = Path(dirpath) / n
            out.append((str(p.relative_to(root)), p.lstat().st_size if not p.is_dir() else 0))
    return sorted(out)


@pytest.mark.parametrize("form", ["oci-dir", "docker-archive"])
def test_hostile_member_names_never_land_outside(
    form: str, samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``../`` and absolute names, a write through a symlink, a hard link out, devices, a FIFO and a
    duplicate: the scan works on an in-memory tree, so nothing is written anywhere. Refusing the
    layer with one clear line is as good as reading it safely."""
    tag = uuid.uuid4().hex[:12]
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    hello = samples_dir / "hello-musl/app/bin/hello"
    fortify = samples_dir / "fortify/app/bin/fortify"
    layers = [[
        file("/app/bin/hello", source=fortify),
        raw(f"../../escape-{tag}", data=b"escaped"),
        raw(f"../../../../../../../../tmp/escape-{tag}", data=b"escaped"),
        raw(f"/tmp/abs-{tag}", data=b"escaped"),
        raw(f"./app/../../up-{tag}", data=b"escaped"),
        symlink("/app/out", "../../../../../../../../tmp"),
        raw(f"app/out/through-link-{tag}", data=b"escaped"),
        raw(f"app/hardlink-{tag}", kind="hardlink", target="../../../../../../etc/hostname"),
        device("/app/dev/null-like"),
        device("/app/dev/block-like", kind="block", major=8, minor=0),
        fifo("/app/fifo"),
        file("/app/bin/hello", source=hello),  # a duplicate: the later one wins
    ]]  # fmt: skip
    clean = [[file("/app/bin/hello", source=hello)]]
    if form == "oci-dir":
        write_oci_dir(tmp_path / "clean", clean, tag="app")
        write_oci_dir(tmp_path / "image", layers, tag="app")
        clean_ref, ref = f"oci-dir:{tmp_path / 'clean'}:app", f"oci-dir:{tmp_path / 'image'}:app"
    else:
        write_docker_archive_legacy(tmp_path / "clean.tar", clean)
        write_docker_archive_legacy(tmp_path / "image.tar", layers)
        clean_ref, ref = f"docker-archive:{tmp_path / 'clean.tar'}", f"docker-archive:{tmp_path / 'image.tar'}"
    assert verdicts(scan(clean_ref)) == {"/app/bin/hello": ("native", ())}, "a clean image of this form scans"
    before = _listing(tmp_path)
    try:
        report = scan(ref)
    except MuslcheckError as e:
        assert "\n" not in str(e).strip()
        one_error_line(cli("scan", ref), tmp_path)
    else:
        v = verdicts(report)
        assert v["/app/bin/hello"] == ("native", ()), "the later duplicate is the one scanned"
        for p in v:  # judged files all sit inside the root
            assert p.startswith("/") and ".." not in p.split("/"), p
        for s in report.skipped:  # a refused member may be named as written, with the reason
            assert s.path.startswith("/") and s.reason, s
    assert _listing(tmp_path) == before
    for name in (f"escape-{tag}", f"abs-{tag}", f"up-{tag}", f"through-link-{tag}", f"hardlink-{tag}"):
        for where in (Path("/"), Path("/tmp"), tmp_path, tmp_path / "work", work, Path.cwd().parent):
            assert not (where / name).exists(), where / name


# --- real producers: umoci and skopeo ----------------------------------------------------------------


@pytest.fixture(scope="module")
def umoci_layout(layers: list[list[Entry]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample layers built by umoci (tag "app"): its own tars, its own whiteouts."""
    require_tools("umoci")
    tmp = tmp_path_factory.mktemp("umoci")
    return umoci_build(tmp / "layout", "app", layers, tmp)


def test_umoci_writes_real_whiteouts(umoci_layout: Path) -> None:
    import json

    index = json.loads((umoci_layout / "index.json").read_text())
    manifest = json.loads(blob_path(umoci_layout, index["manifests"][0]["digest"]).read_bytes())
    assert len(manifest["layers"]) == 3
    top = layer_member_names(blob_path(umoci_layout, manifest["layers"][2]["digest"]).read_bytes())
    assert any(n.rstrip("/").endswith("usr/lib/.wh.libplt.so") for n in top), top
    assert any("app/old/" in n and ".wh." in n for n in top), top  # /app/old/bin/hello removed


def test_umoci_image_matches_the_dir_scan(umoci_layout: Path, reference: Report) -> None:
    report = scan(f"oci-dir:{umoci_layout}:app")
    assert verdicts(report) == verdicts(reference)
    assert skipped(report) == skipped(reference)


@pytest.mark.parametrize("dest", ["docker-archive", "oci-archive", "oci"])
def test_skopeo_conversions_match_the_dir_scan(
    dest: str, umoci_layout: Path, reference: Report, tmp_path: Path
) -> None:
    if dest == "docker-archive":
        skopeo_copy(f"oci:{umoci_layout}:app", f"docker-archive:{tmp_path / 'app.tar'}:app:1")
        refs = [f"docker-archive:{tmp_path / 'app.tar'}", str(tmp_path / "app.tar")]
    elif dest == "oci-archive":
        skopeo_copy(f"oci:{umoci_layout}:app", f"oci-archive:{tmp_path / 'app-oci.tar'}:app")
        refs = [f"oci-archive:{tmp_path / 'app-oci.tar'}", str(tmp_path / "app-oci.tar")]
    else:  # skopeo's own layout, zstd-compressed layers
        skopeo_copy(f"oci:{umoci_layout}:app", f"oci:{tmp_path / 'layout'}:app", "--dest-compress-format", "zstd")
        refs = [f"oci-dir:{tmp_path / 'layout'}:app"]
    for ref in refs:
        report = scan(ref)
        assert verdicts(report) == verdicts(reference), ref
        assert skipped(report) == skipped(reference), ref


def test_skopeo_reads_our_writers(layers: list[list[Entry]], reference: Report, tmp_path: Path) -> None:
    """skopeo accepts what our writers produce (so they are real images), and round-trips them."""
    write_docker_archive_legacy(tmp_path / "ours.tar", layers)
    skopeo_copy(f"docker-archive:{tmp_path / 'ours.tar'}", f"oci:{tmp_path / 'from-docker'}:app")
    write_oci_archive(tmp_path / "ours-oci.tar", layers, tag="app", compression="gzip")
    skopeo_copy(f"oci-archive:{tmp_path / 'ours-oci.tar'}:app", f"docker-archive:{tmp_path / 'back.tar'}:app:1")
    for ref in (f"oci-dir:{tmp_path / 'from-docker'}:app", f"docker-archive:{tmp_path / 'back.tar'}"):
        assert verdicts(scan(ref)) == verdicts(reference), ref


@pytest.fixture(scope="module")
def umoci_multiplatform(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two umoci images (amd64, arm64) under an index written by the test, tagged "multi"."""
    require_tools("umoci")
    tmp = tmp_path_factory.mktemp("umoci-multi")
    layout = tmp / "layout"
    for plat, (plat_layers, _) in _platform_layers(samples_dir).items():
        umoci_build(layout, plat.split("/")[1], plat_layers, tmp, platform=plat)
    add_platform_index(layout, "multi", {"linux/amd64": "amd64", "linux/arm64": "arm64"})
    return layout


def test_umoci_multiplatform_index(umoci_multiplatform: Path, tmp_path: Path) -> None:
    ref = f"oci-dir:{umoci_multiplatform}:multi"
    assert by_path(scan(ref, platform="linux/arm64"))["/app/bin/hello"].arch == "aarch64"
    assert by_path(scan(ref))["/app/bin/hello"].arch == "x86_64"
    skopeo_copy(f"oci:{umoci_multiplatform}:multi", f"oci-archive:{tmp_path / 'multi.tar'}:multi", "--all")
    assert (
        by_path(scan(f"oci-archive:{tmp_path / 'multi.tar'}", platform="linux/arm64"))["/app/bin/hello"].arch
        == "aarch64"
    )


# --- a real registry ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pushed_layout(layers: list[list[Entry]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = tmp_path_factory.mktemp("push") / "layout"
    write_oci_dir(layout, layers, tag="app")
    return layout


@pytest.fixture(scope="module")
def anonymous_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("docker-registry", "skopeo")
    with registry(tmp_path_factory.mktemp("registry-anon")) as reg:
        yield reg


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("docker-registry", "skopeo", "htpasswd")
    with registry(tmp_path_factory.mktemp("registry-auth"), user="muslcheck", password="s3cret-pw") as reg:
        yield reg


@pytest.fixture
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG, so the machine's own ~/.docker/config.json cannot help."""
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    return empty


def test_registry_listens_on_loopback_only(anonymous_registry: Registry) -> None:
    assert anonymous_registry.host.startswith("127.0.0.1:")
    assert anonymous_registry.process.poll() is None


def test_registry_anonymous_push_and_scan(
    anonymous_registry: Registry, pushed_layout: Path, reference: Report, no_docker_credentials: Path
) -> None:
    name = anonymous_registry.push(f"oci:{pushed_layout}:app", "app:1")
    report = scan(f"registry:{name}", insecure_registry=True)
    assert verdicts(report) == verdicts(reference)
    assert skipped(report) == skipped(reference)


def test_registry_multiplatform_index(
    anonymous_registry: Registry, umoci_multiplatform: Path, no_docker_credentials: Path
) -> None:
    name = anonymous_registry.host + "/multi:1"
    skopeo_copy(f"oci:{umoci_multiplatform}:multi", f"docker://{name}", "--all", "--dest-tls-verify=false")
    assert (
        by_path(scan(f"registry:{name}", insecure_registry=True, platform="linux/arm64"))["/app/bin/hello"].arch
        == "aarch64"
    )
    assert by_path(scan(f"registry:{name}", insecure_registry=True))["/app/bin/hello"].arch == "x86_64"


def test_registry_unknown_tag_is_an_input_error(
    anonymous_registry: Registry, pushed_layout: Path, tmp_path: Path, no_docker_credentials: Path
) -> None:
    name = anonymous_registry.push(f"oci:{pushed_layout}:app", "app:1")
    assert verdicts(scan(f"registry:{name}", insecure_registry=True)), "the pushed tag scans"
    line = one_error_line(
        cli("scan", f"registry:{anonymous_registry.host}/nothing-here:1", "--insecure-registry"), tmp_path
    )
    line = line.replace(anonymous_registry.host, "<registry>")  # the port's digits are no status
    assert "404" in line or "not found" in line.lower() or "unknown" in line.lower(), line


def test_registry_basic_auth_from_a_docker_config(
    auth_registry: Registry, pushed_layout: Path, reference: Report, tmp_path: Path, no_docker_credentials: Path
) -> None:
    name = auth_registry.push(f"oci:{pushed_layout}:app", "app:1")
    config = auth_registry.docker_config(tmp_path / "config.json")
    report = scan(f"registry:{name}", insecure_registry=True, docker_config=config)
    assert verdicts(report) == verdicts(reference)


def test_registry_without_credentials_is_a_401(
    auth_registry: Registry, pushed_layout: Path, tmp_path: Path, no_docker_credentials: Path
) -> None:
    name = auth_registry.push(f"oci:{pushed_layout}:app", "app:1")
    with pytest.raises(MuslcheckError) as e:
        scan(f"registry:{name}", insecure_registry=True)
    message = str(e.value).replace(auth_registry.host, "<registry>")  # the port's digits are no status
    assert "401" in message or "unauthorized" in message.lower() or "credential" in message.lower(), message
    assert auth_registry.password not in message  # type: ignore[operator]
    line = one_error_line(cli("scan", f"registry:{name}", "--insecure-registry"), tmp_path)
    line = line.replace(auth_registry.host, "<registry>")
    assert "401" in line or "unauthorized" in line.lower() or "credential" in line.lower(), line


def test_registry_wrong_password_is_refused(
    auth_registry: Registry, pushed_layout: Path, tmp_path: Path, no_docker_credentials: Path
) -> None:
    name = auth_registry.push(f"oci:{pushed_layout}:app", "app:1")
    right = auth_registry.docker_config(tmp_path / "right.json")
    assert verdicts(scan(f"registry:{name}", insecure_registry=True, docker_config=right)), "the right one works"
    wrong = Registry(auth_registry.host, auth_registry.process, auth_registry.log, "muslcheck", "not-the-password")
    config = wrong.docker_config(tmp_path / "config.json")
    with pytest.raises(MuslcheckError) as e:
        scan(f"registry:{name}", insecure_registry=True, docker_config=config)
    assert "not-the-password" not in str(e.value)
