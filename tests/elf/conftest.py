"""Sample ELF files built from ``samples/elf/*.c`` at test time, with gcc and musl-gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parents[2] / "samples" / "elf"

# name -> (compiler, arguments); "{src}" is the sample source directory, the output is ``name``.
SAMPLES: dict[str, tuple[str, list[str]]] = {
    "libversioned.so": ("gcc", ["-shared", "-fPIC", "{src}/versioned.c",
                                "-Wl,--version-script={src}/versioned.map", "-Wl,-soname,libversioned.so"]),
    "uses-nopie": ("gcc", ["-no-pie", "{src}/uses.c", "-L.", "-lversioned", "-Wl,-rpath,$ORIGIN"]),
    "uses-pie": ("gcc", ["-pie", "-fPIE", "{src}/uses.c", "-L.", "-lversioned",
                         "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"]),
    "hello": ("gcc", ["{src}/main.c"]),
    "hello-static": ("gcc", ["-static", "{src}/main.c"]),
    "libplain.so": ("gcc", ["-shared", "-fPIC", "{src}/plain.c", "-Wl,--disable-new-dtags,-rpath,/opt/x"]),
    "libnow.so": ("gcc", ["-shared", "-fPIC", "{src}/plain.c", "-Wl,-z,now"]),
    "librelr.so": ("gcc", ["-shared", "-fPIC", "{src}/plain.c", "-Wl,-z,pack-relative-relocs"]),
    "libtlsie.so": ("gcc", ["-shared", "-fPIC", "{src}/tls_ie.c"]),
    "libifunc.so": ("gcc", ["-shared", "-fPIC", "{src}/ifunc.c"]),
    "libsysvhash.so": ("gcc", ["-shared", "-fPIC", "{src}/versioned.c", "-Wl,--hash-style=sysv",
                               "-Wl,--version-script={src}/versioned.map"]),
    "musl-hello": ("musl-gcc", ["{src}/main.c"]),
    "musl-libplain.so": ("musl-gcc", ["-shared", "-fPIC", "{src}/plain.c"]),
    "musl-libtlsie.so": ("musl-gcc", ["-shared", "-fPIC", "{src}/tls_ie.c"]),
}  # fmt: skip


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every sample that this toolchain can build (a missing compiler or linker option skips it)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("elf-samples")
    for name, (compiler, args) in SAMPLES.items():
        if shutil.which(compiler) is None:
            continue
        command = [compiler, "-O1", "-o", name, *(a.replace("{src}", str(SOURCES)) for a in args)]
        subprocess.run(command, cwd=out, capture_output=True, check=False)
    return out


def sample(sample_dir: Path, name: str) -> Path:
    path = sample_dir / name
    if not path.exists():
        pytest.skip(f"this toolchain cannot build {name}")
    return path
