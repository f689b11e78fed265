"""A JAR inside an image layer is read from the layer stream, like any other member."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from muslcheck import scan
from tests.images.imagebuild import file, write_docker_archive_legacy


def test_archives_inside_image_layers_are_read_from_the_stream(samples_dir: Path, tmp_path: Path) -> None:
    lib = (samples_dir / "reloc-plt" / "app" / "lib" / "libplt.so").read_bytes()
    app_jar = io.BytesIO()
    with zipfile.ZipFile(app_jar, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("native/libx.so", lib)
    write_docker_archive_legacy(tmp_path / "img.tar", [[file("app/app.jar", app_jar.getvalue())]])
    report = scan(f"docker-archive:{tmp_path / 'img.tar'}")
    assert [(f.path, f.context) for f in report.files] == [("/app/app.jar!/native/libx.so", "dlopen-lazy")]
