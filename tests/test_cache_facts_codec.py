"""The ELF facts and layer records through the report's codec (``cache/codec.py``, shapes from ``model/codec.py``):
every file of the benchmark tree round-trips, read with and without its symbols, and a damaged payload decodes to
the value it held or is refused, never to another value or a crash."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muslcheck.cache.codec import _decode, _encode
from muslcheck.cache.layers import decode_layer, encode_layer, full_facts
from muslcheck.elf import ElfFacts, read_elf
from muslcheck.model.codec import Bytes, Fixed, Maybe, Plain, StrSet, shape_of
from muslcheck.model.errors import MalformedElf
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ArchiveElf
from muslcheck.targets.image.fs import (
    LayerRecord,
    RecordedArchive,
    RecordedEntry,
    RecordedFile,
    RecordedMetadata,
)
from muslcheck.targets.image.sources.interface import SourceError

BENCH_TREE = Path("/work/bench/tree")  # benchmarks/inputs.py: 1,065 ELF files


def _elf_files(samples_dir: Path) -> list[Path]:
    """The benchmark tree's ELF files where this machine has it, else the samples' (built for every test run)."""
    root = BENCH_TREE if BENCH_TREE.is_dir() else samples_dir
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(path)
    return sorted(found)


def test_the_new_kinds_have_shapes() -> None:
    assert shape_of(bytes) == Bytes()
    assert shape_of(frozenset[str]) == StrSet()
    assert shape_of(tuple[int, bool]) == Fixed((Plain(frozenset({int})), Plain(frozenset({bool}))))
    assert shape_of(bytes | None) == Maybe(Bytes())
    assert shape_of(ElfFacts | None) == Maybe(shape_of(ElfFacts))


def test_every_elf_file_of_the_benchmark_tree_round_trips(samples_dir: Path) -> None:
    files = _elf_files(samples_dir)
    assert len(files) >= (1000 if BENCH_TREE.is_dir() else 10)
    checked = 0
    for path in files:
        data = path.read_bytes()
        for symbols in (True, False):
            try:
                facts = read_elf(data, symbols=symbols)
            except MalformedElf:
                continue
            decoded = _decode(ElfFacts, _encode(ElfFacts, facts))
            assert decoded == facts, path
            assert decoded.uses.name_set == facts.uses.name_set
            assert decoded.exports.definitions == facts.exports.definitions
            checked += 1
    assert checked >= len(files)  # at least the header-only read of each


def _record(samples_dir: Path) -> LayerRecord:
    """A record holding every kind a layer record has: facts with symbols, header-only facts pointing into a blob,
    a kept file, an archive with a member and metadata, a problem, budget takes and a rejection."""
    hello = read_elf((samples_dir / "hello/app/bin/hello").read_bytes())
    lib = read_elf((samples_dir / "rpath-origin/app/lib/libdep.so").read_bytes(), symbols=False, marks={"x", "y"})
    over = Skip("/var/lib/dpkg/status", "more than 1 bytes of metadata files in the image: not read", False)
    archive = RecordedArchive((ArchiveElf("/app/a.jar!/lib/x.so", hello),), (Skip("/app/a.jar!/y", "corrupt"),),
                              (RecordedMetadata("/app/a.jar", ("META-INF/MANIFEST.MF",), (b"Manifest-Version: 1\n",)),))
    files = (
        RecordedFile(hello, None, None, None, None, (), ()),
        RecordedFile(lib, None, None, None, (4096, 12345), (), ()),
        RecordedFile(None, None, b"Package: x\n\xff\x00", None, None, ((12, True), (7, False)), (over,)),
        RecordedFile(None, None, None, archive, None, ((20, True),), ()),
        RecordedFile(None, "malformed ELF: truncated", None, None, None, (), ()),
    )
    entries = (RecordedEntry("app/", "dir", "", -1), RecordedEntry("app/bin/hello", "file", "", 0),
               RecordedEntry("lib/libdep.so", "file", "", 1), RecordedEntry("var/lib/dpkg/status", "file", "", 2),
               RecordedEntry("app/a.jar", "file", "", 3), RecordedEntry("app/bad", "file", "", 4),
               RecordedEntry("app/link", "symlink", "bin/hello", -1), RecordedEntry("app/h", "hardlink", "app/bad", -1))
    return LayerRecord(entries, files)


def test_a_layer_record_round_trips(samples_dir: Path) -> None:
    """A streamed layer's ELF file comes back as its headers, with its facts in full kept apart (decoded when
    asked for); everything else comes back as it was."""
    record = _record(samples_dir)
    decoded = decode_layer(encode_layer(record))
    assert decoded.entries == record.entries
    apart = 0
    for kept, made in zip(decoded.files, record.files, strict=True):
        if made.facts is not None and made.facts.symbols_read and made.member is None:
            assert kept.facts == made.facts.headers() and not kept.facts.symbols_read
            assert kept.symbols is not None and full_facts(kept.symbols) == made.facts
            assert replace(kept, facts=made.facts, symbols=None) == made
            apart += 1
        else:
            assert kept == made
    assert apart == 1  # hello, read in full


def test_damaged_symbols_kept_apart_are_one_clear_error(samples_dir: Path) -> None:
    kept = decode_layer(encode_layer(_record(samples_dir))).files[0]
    assert kept.symbols is not None
    with pytest.raises(SourceError, match="damaged layer record"):
        full_facts(kept.symbols[:-3])


@pytest.fixture(scope="module")
def payload(samples_dir: Path) -> tuple[LayerRecord, bytes]:
    """The record as it comes back (the symbols apart), and its payload."""
    encoded = encode_layer(_record(samples_dir))
    return decode_layer(encoded), encoded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_damaged_payload_decodes_to_its_value_or_is_refused(payload: tuple[LayerRecord, bytes],
                                                               data: st.DataObject) -> None:
    record, encoded = payload
    damaged = bytearray(encoded)
    how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = data.draw(st.integers(0, len(damaged) - 1))
    if how == "flip":
        damaged[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del damaged[at:]
    else:
        damaged[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        decoded = decode_layer(bytes(damaged))
    except ValueError:
        return
    assert decoded == record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_payload_whose_json_changed_shape_is_refused(payload: tuple[LayerRecord, bytes],
                                                       data: st.DataObject) -> None:
    """Past the zlib check: a JSON value of another type or arity anywhere in the document is refused (a value of the
    right type is data, which the store's checksum guards)."""
    _, encoded = payload
    document = json.loads(zlib.decompress(encoded))
    paths: list[tuple[list[object], int]] = []

    def walk(node: object) -> None:
        if isinstance(node, list):
            for i, child in enumerate(node):
                paths.append((node, i))
                walk(child)

    walk(document[3])
    parent, index = data.draw(st.sampled_from(paths))
    old = parent[index]
    new = data.draw(st.sampled_from([{"x": 1}, 1.5, [old, old], [], "?", None, True]))
    if type(new) is type(old) and new == old:
        return
    parent[index] = new
    try:
        decoded = decode_layer(zlib.compress(json.dumps(document).encode()))
    except ValueError:
        return
    # Accepted only when the value is still of its field's kind: None where a field is optional, a string where
    # one is, an empty list for an empty column or an item list with one item fewer ... never a crash, and always
    # a LayerRecord whose every value has its declared type.
    assert isinstance(decoded, LayerRecord)
    for file in decoded.files:
        assert file.facts is None or isinstance(file.facts, ElfFacts)
        assert file.head is None or isinstance(file.head, bytes)
