"""What one architecture's decoder is given and gives back: the interface between reader.py and each machine's
module. A decoder sweeps one function's code linearly and reports the GOT slots it calls and the object's own
functions it calls; reader.py does the rest (init functions, relocations, names, bounds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

Decoded = tuple[int, set[int], list[int]]  # (instructions used, GOT slots called, own functions called)


class Memory(Protocol):
    """The object's memory image, as a decoder reads it."""

    @property
    def little(self) -> bool: ...
    @property
    def word_size(self) -> int: ...
    @property
    def tags(self) -> Mapping[int, int]: ...  # the dynamic section
    def read_code(self, vaddr: int, size: int) -> bytes | None: ...
    def word(self, vaddr: int) -> int | None: ...
    def plt_slot(self, target: int) -> int | None: ...  # the machine's plt_slot, memoised
    def zero_at_load(self, vaddr: int) -> bool: ...  # in the object's .bss, which no relocation writes


def _same(address: int) -> int:
    return address


@dataclass(frozen=True, slots=True)
class Machine:
    slot_types: frozenset[int]  # the relocation types that fill a PLT or GOT slot with a symbol's address
    relative: int  # R_*_RELATIVE: how a RELA object stores its DT_INIT_ARRAY entries
    decode: Callable[[bytes, int, int, Memory], Decoded]  # (code, its address, instruction budget, memory)
    plt_slot: Callable[[Memory, int], int | None]  # the GOT slot of the PLT stub at an address, or None
    code_per_instruction: int = 4  # bytes of code read per instruction of budget
    code_address: Callable[[int], int] = _same  # where a function pointer's code starts (arm: less the Thumb bit)


def sign(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def direct(here: int, target: int, start: int, slot: int | None, call: bool, furthest: int, slots: set[int],
           calls: list[int]) -> int | None:
    """A direct call (``call``) or unconditional jump at ``here`` to ``target``, in the function at ``start``;
    ``slot``: the GOT slot of the PLT stub at ``target``, if it is one. Recorded in ``slots`` or ``calls``; returns
    how far the function is known to reach, or None when the jump ends the sweep. A jump into a PLT stub, back
    before the function's start, or forward from its known end is a tail call; any other, a jump inside it."""
    if slot is not None:
        slots.add(slot)
    elif call or target < start or (target > here and here >= furthest):
        calls.append(target)
    if call:
        return furthest
    if here >= furthest:
        return None
    return max(furthest, target) if slot is None and target > here else furthest
