"""The fast reader, pyelftools and lief must agree on every file."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from muslcheck.elf import ElfFacts, read_elf_file
from muslcheck.model.errors import MalformedElf
from tests.elf.conftest import SAMPLES, sample
from tests.elf.crosscheck import read_elf_lief, read_elf_pyelftools
from tests.elf.elfbuilder import ElfSpec, Sym

SYSTEM_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/bin")


def differences(fast: ElfFacts, other: ElfFacts) -> list[str]:
    out = []
    for field in dataclasses.fields(ElfFacts):
        mine, theirs = getattr(fast, field.name), getattr(other, field.name)
        if mine == theirs:
            continue
        if field.name in ("uses", "exports"):
            only_fast = sorted(set(mine) - set(theirs), key=repr)[:3]
            only_other = sorted(set(theirs) - set(mine), key=repr)[:3]
            out.append(f"{field.name}: only fast {only_fast}, only other {only_other}")
        else:
            out.append(f"{field.name}: {mine!r} != {theirs!r}")
    return out


def compare(path: str | Path) -> list[str]:
    """Every disagreement between the three readers on ``path``, as text."""
    try:
        fast = read_elf_file(path)
    except MalformedElf as e:
        return [f"{path}: fast reader: {e}"]
    problems = []
    for name, reader in (("pyelftools", read_elf_pyelftools), ("lief", read_elf_lief)):
        problems += [f"{path}: {name}: {d}" for d in differences(fast, reader(path))]
    return problems


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_agree(sample_dir: Path, name: str) -> None:
    assert compare(sample(sample_dir, name)) == []


def synthetic_spec(elf_class: int, little_endian: bool, hash_style: str) -> ElfSpec:
    # lief takes the byte order of x86 files from e_machine, not EI_DATA; big-endian samples
    # therefore use big-endian machines (PowerPC), as real files do.
    machine = {(64, True): 62, (32, True): 3, (64, False): 21, (32, False): 20}[elf_class, little_endian]
    tpoff = {62: 18, 3: 14, 21: 73, 20: 73}[machine]
    table = "rela" if elf_class == 64 else "rel"
    return ElfSpec(
        elf_class=elf_class,
        little_endian=little_endian,
        machine=machine,
        interp="/lib/ld.so.1",
        needed=["libc.so.6", "libx.so"],
        soname="libt.so",
        runpath="$ORIGIN",
        symbols=[
            Sym("printf", versym=2),
            Sym("weak_ref", bind=2, type=0),
            Sym("data", type=1, shndx=5, value=0x10, size=4, versym=4),
            Sym("old_api", shndx=5, value=0x20, versym=0x8005),
            Sym("tls_var", type=6, shndx=6, value=0, size=4, versym=4),
            Sym("own_tls", bind=0, type=6, shndx=6, value=8),
            Sym("plt_canonical", value=0x30),
            Sym("unique", bind=10, type=1, shndx=5, value=0x40, size=8),
        ],
        relocations=[("jmprel", 7, 1), (table, 6, 2), (table, 8, 0), (table, tpoff, 6), (table, tpoff, 0),
                     (table, 1, 3), (table, 1, 3), (table, 6, 3), (table, 6, 8)],
        verdefs=[(1, "libt.so"), (4, "V1"), (5, "V0")],
        verneeds=[("libc.so.6", [("GLIBC_2.2.5", 2)]), ("libx.so", [("X_1", 3)])],
        hash_style=hash_style,
        flags=0x8 | 0x10,
        flags_1=0x08000000,
    )


@pytest.mark.parametrize("hash_style", ["sysv", "gnu"])
@pytest.mark.parametrize("little_endian", [True, False], ids=["le", "be"])
@pytest.mark.parametrize("elf_class", [32, 64])
def test_synthetic_agree(tmp_path: Path, elf_class: int, little_endian: bool, hash_style: str) -> None:
    path = tmp_path / "synthetic.so"
    path.write_bytes(synthetic_spec(elf_class, little_endian, hash_style).build().data)
    assert compare(path) == []


def system_elf_files() -> Iterator[str]:
    """Every regular ELF file under SYSTEM_DIRS, once per inode; symlinks are skipped."""
    seen: set[tuple[int, int]] = set()
    for top in SYSTEM_DIRS:
        for root, _, files in os.walk(top):
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    if os.path.islink(path):
                        continue
                    st = os.stat(path)
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    with open(path, "rb") as f:
                        if f.read(4) != b"\x7fELF":
                            continue
                except OSError:
                    continue
                seen.add((st.st_dev, st.st_ino))
                yield path


@pytest.mark.system
def test_system_files_agree() -> None:
    files = list(system_elf_files())
    if not files:
        pytest.skip("no ELF files under " + ", ".join(SYSTEM_DIRS))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        problems = [p for result in pool.map(compare, files, chunksize=8) for p in result]
    assert not problems, f"{len(problems)} disagreements over {len(files)} files:\n" + "\n".join(problems)
