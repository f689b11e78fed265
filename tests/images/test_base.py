"""--base: the layers an image shares with its base are the base's; only the app's layers are judged."""

from __future__ import annotations

from pathlib import Path

from muslcheck import scan
from tests.images.imagebuild import file, image_config, write_docker_archive_legacy, write_oci_dir


def test_only_files_the_app_layers_add_or_change_are_judged(samples_dir: Path, tmp_path: Path) -> None:
    hello = samples_dir / "hello" / "app" / "bin" / "hello"
    fortify = samples_dir / "fortify" / "app" / "bin" / "fortify"
    base_layers = [[file("usr/bin/base-tool", source=hello)], [file("usr/bin/base-other", source=hello)]]
    app_layers = [*base_layers, [file("app/bin/fortify", source=fortify), file("usr/bin/base-other", source=hello)]]
    write_oci_dir(tmp_path / "base", base_layers, tag="base")
    write_docker_archive_legacy(tmp_path / "app.tar", app_layers)

    whole = scan(f"docker-archive:{tmp_path / 'app.tar'}")
    assert {f.path for f in whole.files} == {"/usr/bin/base-tool", "/usr/bin/base-other", "/app/bin/fortify"}

    app_only = scan(f"docker-archive:{tmp_path / 'app.tar'}", base=f"oci-dir:{tmp_path / 'base'}:base")
    # base-other is rewritten by the app's layer, so it counts as the app's.
    assert {f.path for f in app_only.files} == {"/usr/bin/base-other", "/app/bin/fortify"}
    assert any("its 2 layers are left out" in note for note in app_only.notes)


def test_a_base_sharing_no_layer_judges_everything_and_says_so(samples_dir: Path, tmp_path: Path) -> None:
    hello = samples_dir / "hello" / "app" / "bin" / "hello"
    write_oci_dir(tmp_path / "other", [[file("x", b"unrelated")]], tag="x")
    write_docker_archive_legacy(tmp_path / "app.tar", [[file("app/hello", source=hello)]])
    report = scan(f"docker-archive:{tmp_path / 'app.tar'}", base=f"oci-dir:{tmp_path / 'other'}:x")
    assert [f.path for f in report.files] == ["/app/hello"]
    assert any("no layer of" in note for note in report.notes)


def test_the_entrypoint_and_ld_library_path_come_from_the_config(samples_dir: Path, tmp_path: Path) -> None:
    """PATH finds a bare entrypoint; LD_LIBRARY_PATH from the config feeds the loader model."""
    app = samples_dir / "missing-dep" / "app" / "bin" / "app"  # NEEDED libdep.so, RPATH $ORIGIN/../lib
    dep = samples_dir / "rpath-origin" / "app" / "lib" / "libdep.so"
    layers = [[file("srv/bin/server", source=app), file("opt/deps/libdep.so", source=dep)]]
    config = image_config(env=["PATH=/srv/bin:/usr/bin", "LD_LIBRARY_PATH=/opt/deps"], entrypoint=["server"])
    write_docker_archive_legacy(tmp_path / "app.tar", layers, config)
    report = scan(f"docker-archive:{tmp_path / 'app.tar'}")
    server = next(f for f in report.files if f.path == "/srv/bin/server")
    assert not server.missing_libraries  # found through the config's LD_LIBRARY_PATH
    assert any(step.found_by == "LD_LIBRARY_PATH" for step in server.load_order)
    assert "entrypoint server: /srv/bin/server is needs-gcompat" in report.notes
