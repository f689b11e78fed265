"""A short smoke run of fuzz/fuzz_inputs.py's targets (docs/fuzzing.md) in every test run, without atheris:
each target's seeds, then a few hundred mutants of them from a fixed random sequence (bytes flipped, cut,
repeated, spliced). The contract is the fuzzer's: a return, or for a layer a ``SourceError``; anything else
fails the test and names the target and the mutant. The coverage-guided campaign itself is not run here."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

MUTANTS = 300


def _harness() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_inputs.py"
    spec = importlib.util.spec_from_file_location("fuzz_inputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    hidden = sys.modules.get("atheris")
    sys.modules["atheris"] = None  # type: ignore[assignment]  # never instrument the test session's imports
    try:
        spec.loader.exec_module(module)
    finally:
        if hidden is None:
            del sys.modules["atheris"]
        else:
            sys.modules["atheris"] = hidden
    return module


HARNESS = _harness()


def _mutant(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        at = rng.randrange(len(data))
        action = rng.randrange(5)
        if action == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif action == 1:
            data[at] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif action == 2:
            del data[at:]
        elif action == 3:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end] * rng.randint(1, 4)
        else:
            other = rng.choice(seeds)
            data[at:] = other[rng.randrange(len(other)):] if other else b""
    return bytes(data)


@pytest.mark.parametrize("target", sorted(HARNESS.TARGETS))
def test_the_fuzz_targets_hold_their_contract_on_seeds_and_mutants(target: str) -> None:
    seeds = list(HARNESS.seeds(target).values())
    run = HARNESS.TARGETS[target]
    for data in seeds:
        run(data)
    rng = random.Random(f"muslcheck-{target}")
    for n in range(MUTANTS):
        data = _mutant(rng, seeds)
        try:
            run(data)
        except Exception as e:  # the contract: nothing escapes but what the target itself lets through
            raise AssertionError(f"{target} mutant {n} ({len(data)} bytes, {data[:32].hex()}...): {e!r}") from e
