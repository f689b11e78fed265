"""The architectures whose constructor code is read: one module each, registered here only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from muslcheck.elf.constructors import aarch64, arm, i386, ppc64, riscv64, s390x, x86_64
from muslcheck.elf.constructors.machine import Machine

MACHINES: Final[Mapping[str, Machine]] = {
    "x86_64": x86_64.MACHINE,
    "aarch64": aarch64.MACHINE,
    "i386": i386.MACHINE,
    "arm": arm.MACHINE,
    "s390x": s390x.MACHINE,
    "riscv64": riscv64.MACHINE,
    "ppc64": ppc64.MACHINE,
}
