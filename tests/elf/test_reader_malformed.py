"""Malformed input gives ``MalformedElf`` and nothing else."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muslcheck.elf import ElfFacts, read_elf, read_elf_file
from muslcheck.model.errors import MalformedElf
from tests.elf.conftest import sample
from tests.elf.elfbuilder import DT, ElfSpec, Image, Sym


def base_spec() -> ElfSpec:
    return ElfSpec(
        interp="/lib/ld-musl-x86_64.so.1",
        needed=["libc.so.6"],
        symbols=[Sym("printf", versym=2), Sym("exported", shndx=5, value=0x10, versym=3)],
        relocations=[("jmprel", 7, 1), ("rela", 8, 0)],
        verdefs=[(1, "libt.so"), (3, "V1")],
        verneeds=[("libc.so.6", [("GLIBC_2.2.5", 2)])],
    )


BASE = base_spec().build()


def patched(image: Image | bytes, offset: int, fmt: str, *values: int) -> bytes:
    data = bytearray(image.data if isinstance(image, Image) else image)
    struct.pack_into("<" + fmt, data, offset, *values)
    return bytes(data)


def dyn_offset(image: Image, tag: str) -> int:
    """File offset of the value of the first dynamic entry with ``tag``."""
    data, offset = image.data, image.offsets["dynamic"]
    while True:
        d_tag, _ = struct.unpack_from("<QQ", data, offset)
        if d_tag == DT[tag]:
            return offset + 8
        if d_tag == 0:
            raise KeyError(tag)
        offset += 16


def with_dyn(tag: str, value: int) -> bytes:
    return patched(BASE, dyn_offset(BASE, tag), "Q", value)


def with_dyn_tag(old: str, new: int) -> bytes:
    return patched(BASE, dyn_offset(BASE, old) - 8, "Q", new)


SYM_SIZE = 24
PHDR = 64  # e_phoff of the built images; PT_INTERP, PT_LOAD, PT_DYNAMIC follow


CASES: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "not-elf": lambda: b"MZ\x90\x00" + bytes(60),
    "truncated-ident": lambda: b"\x7fELF\x02\x01",
    "truncated-header": lambda: BASE.data[:40],
    "bad-class": lambda: BASE.data[:4] + b"\x03" + BASE.data[5:],
    "bad-byte-order": lambda: BASE.data[:5] + b"\x00" + BASE.data[6:],
    "wrong-byte-order": lambda: BASE.data[:5] + b"\x02" + BASE.data[6:],
    "phoff-past-eof": lambda: patched(BASE, 32, "Q", len(BASE.data) + 8),
    "huge-phnum": lambda: patched(BASE, 56, "H", 0xFFFF),
    "phentsize-too-small": lambda: patched(BASE, 54, "H", 8),
    "interp-past-eof": lambda: patched(BASE, PHDR + 8, "Q", len(BASE.data)),
    "dynamic-past-eof": lambda: patched(BASE, PHDR + 2 * 56 + 8, "Q", len(BASE.data) - 8),
    "dynamic-empty": lambda: patched(BASE, PHDR + 2 * 56 + 32, "Q", 0),
    "dynamic-without-null": lambda: patched(BASE, PHDR + 2 * 56 + 32, "Q", 16),
    "load-segment-truncated": lambda: patched(BASE, PHDR + 56 + 32, "Q", 100),
    "strtab-outside-load": lambda: with_dyn("STRTAB", 1 << 40),
    "strsz-huge": lambda: with_dyn("STRSZ", 1 << 40),
    "strtab-without-strsz": lambda: with_dyn_tag("STRSZ", 0x7FFFFFF0),
    "needed-out-of-range": lambda: with_dyn("NEEDED", 1 << 20),
    "symbol-name-out-of-range": lambda: patched(BASE, BASE.offsets["dynsym"] + SYM_SIZE, "I", 1 << 20),
    "symtab-outside-load": lambda: with_dyn("SYMTAB", len(BASE.data) - 8),
    "hash-nchain-huge": lambda: patched(BASE, BASE.offsets["hash"] + 4, "I", 0xFFFFFFFF),
    "hash-outside-file": lambda: with_dyn("HASH", 1 << 33),
    "relasz-not-multiple": lambda: with_dyn("RELASZ", 25),
    "relasz-huge": lambda: with_dyn("RELASZ", 24 << 30),
    "jmprel-without-pltrel": lambda: with_dyn_tag("PLTREL", 0x7FFFFFF0),
    "pltrel-bad-value": lambda: with_dyn("PLTREL", 3),
    "reloc-symbol-past-eof": lambda: patched(BASE, BASE.offsets["jmprel"] + 8, "Q", (1 << 40) | 7),
    "versym-unknown-version": lambda: patched(BASE, BASE.offsets["versym"] + 2, "H", 9),
    "versym-outside-file": lambda: with_dyn("VERSYM", len(BASE.data) - 2),
    "verneed-count-huge": lambda: with_dyn("VERNEEDNUM", 1 << 40),
    "verneed-next-past-eof": lambda: patched(
        patched(BASE, BASE.offsets["verneed"] + 12, "I", 1 << 20), dyn_offset(BASE, "VERNEEDNUM"), "Q", 2
    ),
    "vernaux-next-past-eof": lambda: patched(
        patched(BASE, BASE.offsets["verneed"] + 2, "H", 2), BASE.offsets["verneed"] + 16 + 12, "I", 1 << 20
    ),
    "verneed-file-out-of-range": lambda: patched(BASE, BASE.offsets["verneed"] + 4, "I", 1 << 20),
    "verdef-aux-past-eof": lambda: patched(BASE, BASE.offsets["verdef"] + 28 + 12, "I", 1 << 20),
    "verdef-count-huge": lambda: with_dyn("VERDEFNUM", 1 << 40),
    "unterminated-strtab": lambda: with_dyn("STRSZ", 3),
}


def test_base_image_is_valid() -> None:
    facts = read_elf(BASE.data)
    assert [u.name for u in facts.uses] == ["printf"]
    assert facts.uses[0].version_library == "libc.so.6"
    assert [(e.name, e.version) for e in facts.exports] == [("exported", "V1")]


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_malformed(make: Callable[[], bytes]) -> None:
    with pytest.raises(MalformedElf):
        read_elf(make())


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(MalformedElf, match="empty"):
        read_elf_file(tmp_path / "empty")


def test_static_file_has_empty_tables() -> None:
    data = bytearray(BASE.data)
    struct.pack_into("<H", data, 56, 2)  # keep PT_INTERP and PT_LOAD only
    facts = read_elf(bytes(data))
    assert not facts.has_dynamic and len(facts.uses) == 0 and len(facts.exports) == 0 and facts.needed == ()


@pytest.mark.parametrize("size", range(0, len(BASE.data), 3))
def test_every_truncation(size: int) -> None:
    _valid_or_malformed(BASE.data[:size])


def _valid_or_malformed(data: bytes) -> None:
    try:
        facts = read_elf(data)
    except MalformedElf:
        return
    assert isinstance(facts, ElfFacts)


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6)


@settings(max_examples=400, deadline=None, database=None)
@given(mutations=mutations, cut=st.integers(min_value=0))
def test_mutated_synthetic_elf(mutations: list[tuple[int, int]], cut: int) -> None:
    _valid_or_malformed(_mutate(BASE.data, mutations, cut, len(BASE.data)))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=mutations, cut=st.integers(min_value=0), which=st.sampled_from(["hello", "libplain.so"]))
def test_mutated_real_elf(sample_dir: Path, mutations: list[tuple[int, int]], cut: int, which: str) -> None:
    data = sample(sample_dir, which).read_bytes()
    # The loader's structures sit in the first pages of these small files.
    _valid_or_malformed(_mutate(data, mutations, cut, min(len(data), 0x1000)))


def _mutate(data: bytes, mutations: list[tuple[int, int]], cut: int, span: int) -> bytes:
    out = bytearray(data)
    for position, value in mutations:
        out[position % span] = value
    return bytes(out[: len(out) - cut % 64 if cut % 3 == 0 else len(out)])
