#!/usr/bin/env python3
"""Coverage-guided fuzzing of the production ELF-facts entry point, ``read_elf``, with atheris.

    python3 fuzz/build_corpus.py /tmp/corpus
    python3 fuzz/fuzz_elf.py /tmp/corpus -max_len=65536 -timeout=10 -runs=1000000

Every argument is passed to libFuzzer. The contract under test: ``read_elf(data)`` either
returns an ``ElfFacts`` or raises ``MalformedElf``; any other exception is a crash. For about
one input in eight (chosen from the input's CRC, so a crash reproduces), the same bytes are
also read as a ``memoryview`` and as a ``bytearray``, and all three results must agree.

To reproduce one input: ``python3 fuzz/fuzz_elf.py crash-<sha1>``.
See docs/fuzzing.md.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

with atheris.instrument_imports(include=["muslcheck.elf"]):
    from muslcheck.elf.facts import ElfFacts
    from muslcheck.elf.reader import read_elf
from muslcheck.model.errors import MalformedElf


def _read(data: bytes | bytearray | memoryview) -> ElfFacts | str:
    """The facts, or the ``MalformedElf`` message; any other exception escapes (a crash)."""
    try:
        facts = read_elf(data)
    except MalformedElf as e:
        return f"MalformedElf: {e}"
    if not isinstance(facts, ElfFacts):
        raise TypeError(f"read_elf returned {type(facts).__name__}, not ElfFacts")
    return facts


def test_one_input(data: bytes) -> None:
    result = _read(data)
    if zlib.crc32(data) & 7 == 0:
        for other in (memoryview(data), bytearray(data)):
            again = _read(other)
            if again != result:
                raise AssertionError(f"read_elf({type(other).__name__}) gave {again!r}, bytes gave {result!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
