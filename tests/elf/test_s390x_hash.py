"""64-bit s390x: GNU ld writes DT_HASH with 64-bit words, lld with 32-bit ones. musl looks symbols up through
DT_GNU_HASH where there is one and uses the DT_HASH count only for dladdr, so the reader must read the same
symbols from every variant (built at test time: Debian's s390x cross gcc, linked by it and by zig's ld.lld)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from muslcheck.elf import read_elf_file
from tests.support import unavailable

SOURCE = "extern int bar(void);\nint foo(void) { return 1; }\nint baz(void) { return bar(); }\n"


def run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        pytest.fail(f"{' '.join(argv)}:\n{proc.stderr}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    gcc = shutil.which("s390x-linux-gnu-gcc")
    if gcc is None:
        unavailable("s390x-linux-gnu-gcc (apt: gcc-s390x-linux-gnu) builds the s390x objects")
    if importlib.util.find_spec("ziglang") is None:
        unavailable("zig (the PyPI package ziglang) provides ld.lld")
    tmp = tmp_path_factory.mktemp("s390x")
    (tmp / "a.c").write_text(SOURCE)
    run(gcc, "-c", "-fPIC", "-O2", str(tmp / "a.c"), "-o", str(tmp / "a.o"))
    out = {}
    for style in ("sysv", "both", "gnu"):
        out[f"lld-{style}"] = tmp / f"lib-lld-{style}.so"
        run(sys.executable, "-m", "ziglang", "ld.lld", "-shared", f"--hash-style={style}", "-o",
            str(out[f"lld-{style}"]), str(tmp / "a.o"))
    for style in ("sysv", "both"):
        out[f"bfd-{style}"] = tmp / f"lib-bfd-{style}.so"
        run(gcc, "-shared", f"-Wl,--hash-style={style}", "-o", str(out[f"bfd-{style}"]), str(tmp / "a.o"))
    return out


@pytest.mark.parametrize("variant", ["lld-sysv", "lld-both", "lld-gnu", "bfd-sysv", "bfd-both"])
def test_every_hash_table_variant_reads_the_same_symbols(built: dict[str, Path], variant: str) -> None:
    facts = read_elf_file(built[variant])
    assert facts.machine == "s390x"
    assert {e.name for e in facts.exports} >= {"foo", "baz"}
    assert "bar" in {u.name for u in facts.uses}
