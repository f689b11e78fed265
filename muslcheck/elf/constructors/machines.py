"""The architectures whose constructor code is read: one module each, registered here only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from muslcheck.elf.constructors import aarch64, x86_64
from muslcheck.elf.constructors.machine import Machine

MACHINES: Final[Mapping[str, Machine]] = {
    "x86_64": x86_64.MACHINE,
    "aarch64": aarch64.MACHINE,
}
