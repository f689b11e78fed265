"""Names of dynamic relocation types, for messages ("unsupported relocation type 37")."""

from __future__ import annotations

from typing import Final


def _table(prefix: str, names: dict[int, str]) -> dict[int, str]:
    return {number: prefix + name for number, name in names.items()}


_X86_64: Final = _table("R_X86_64_", {
    0: "NONE", 1: "64", 2: "PC32", 3: "GOT32", 4: "PLT32", 5: "COPY", 6: "GLOB_DAT", 7: "JUMP_SLOT",
    8: "RELATIVE", 9: "GOTPCREL", 10: "32", 11: "32S", 12: "16", 13: "PC16", 14: "8", 15: "PC8",
    16: "DTPMOD64", 17: "DTPOFF64", 18: "TPOFF64", 19: "TLSGD", 20: "TLSLD", 21: "DTPOFF32",
    22: "GOTTPOFF", 23: "TPOFF32", 24: "PC64", 25: "GOTOFF64", 26: "GOTPC32", 27: "GOT64",
    28: "GOTPCREL64", 29: "GOTPC64", 30: "GOTPLT64", 31: "PLTOFF64", 32: "SIZE32", 33: "SIZE64",
    34: "GOTPC32_TLSDESC", 35: "TLSDESC_CALL", 36: "TLSDESC", 37: "IRELATIVE", 38: "RELATIVE64",
    41: "GOTPCRELX", 42: "REX_GOTPCRELX",
})  # fmt: skip

_AARCH64: Final = _table("R_AARCH64_", {
    0: "NONE", 180: "P32_COPY", 181: "P32_GLOB_DAT", 182: "P32_JUMP_SLOT", 183: "P32_RELATIVE",
    184: "P32_TLS_DTPMOD", 185: "P32_TLS_DTPREL", 186: "P32_TLS_TPREL", 187: "P32_TLSDESC",
    188: "P32_IRELATIVE", 257: "ABS64", 258: "ABS32", 259: "ABS16", 260: "PREL64", 261: "PREL32",
    262: "PREL16", 1024: "COPY", 1025: "GLOB_DAT", 1026: "JUMP_SLOT", 1027: "RELATIVE",
    1028: "TLS_DTPMOD64", 1029: "TLS_DTPREL64", 1030: "TLS_TPREL64", 1031: "TLSDESC", 1032: "IRELATIVE",
})  # fmt: skip

_I386: Final = _table("R_386_", {
    0: "NONE", 1: "32", 2: "PC32", 3: "GOT32", 4: "PLT32", 5: "COPY", 6: "GLOB_DAT", 7: "JMP_SLOT",
    8: "RELATIVE", 9: "GOTOFF", 10: "GOTPC", 11: "32PLT", 14: "TLS_TPOFF", 15: "TLS_IE", 16: "TLS_GOTIE",
    17: "TLS_LE", 18: "TLS_GD", 19: "TLS_LDM", 20: "16", 21: "PC16", 22: "8", 23: "PC8", 24: "TLS_GD_32",
    25: "TLS_GD_PUSH", 26: "TLS_GD_CALL", 27: "TLS_GD_POP", 28: "TLS_LDM_32", 29: "TLS_LDM_PUSH",
    30: "TLS_LDM_CALL", 31: "TLS_LDM_POP", 32: "TLS_LDO_32", 33: "TLS_IE_32", 34: "TLS_LE_32",
    35: "TLS_DTPMOD32", 36: "TLS_DTPOFF32", 37: "TLS_TPOFF32", 38: "SIZE32", 39: "TLS_GOTDESC",
    40: "TLS_DESC_CALL", 41: "TLS_DESC", 42: "IRELATIVE", 43: "GOT32X",
})  # fmt: skip

_ARM: Final = _table("R_ARM_", {
    0: "NONE", 2: "ABS32", 3: "REL32", 13: "TLS_DESC", 17: "TLS_DTPMOD32", 18: "TLS_DTPOFF32",
    19: "TLS_TPOFF32", 20: "COPY", 21: "GLOB_DAT", 22: "JUMP_SLOT", 23: "RELATIVE", 160: "IRELATIVE",
})  # fmt: skip

_RISCV: Final = _table("R_RISCV_", {
    0: "NONE", 1: "32", 2: "64", 3: "RELATIVE", 4: "COPY", 5: "JUMP_SLOT", 6: "TLS_DTPMOD32",
    7: "TLS_DTPMOD64", 8: "TLS_DTPREL32", 9: "TLS_DTPREL64", 10: "TLS_TPREL32", 11: "TLS_TPREL64",
    12: "TLSDESC", 58: "IRELATIVE",
})  # fmt: skip

_LOONGARCH: Final = _table("R_LARCH_", {
    0: "NONE", 1: "32", 2: "64", 3: "RELATIVE", 4: "COPY", 5: "JUMP_SLOT", 6: "TLS_DTPMOD32",
    7: "TLS_DTPMOD64", 8: "TLS_DTPREL32", 9: "TLS_DTPREL64", 10: "TLS_TPREL32", 11: "TLS_TPREL64",
    12: "IRELATIVE",
})  # fmt: skip

_PPC64: Final = _table("R_PPC64_", {
    0: "NONE", 1: "ADDR32", 19: "COPY", 20: "GLOB_DAT", 21: "JMP_SLOT", 22: "RELATIVE", 24: "UADDR32",
    38: "ADDR64", 43: "UADDR64", 68: "DTPMOD64", 73: "TPREL64", 78: "DTPREL64", 248: "IRELATIVE",
})  # fmt: skip

_S390X: Final = _table("R_390_", {
    0: "NONE", 4: "32", 9: "COPY", 10: "GLOB_DAT", 11: "JMP_SLOT", 12: "RELATIVE", 22: "64",
    54: "TLS_DTPMOD", 55: "TLS_DTPOFF", 56: "TLS_TPOFF", 61: "IRELATIVE",
})  # fmt: skip

RELOCATION_NAMES: Final[dict[str, dict[int, str]]] = {
    "x86_64": _X86_64,
    "aarch64": _AARCH64,
    "i386": _I386,
    "arm": _ARM,
    "riscv64": _RISCV,
    "riscv32": _RISCV,
    "loongarch64": _LOONGARCH,
    "ppc64": _PPC64,
    "s390x": _S390X,
}


def relocation_name(machine: str, rtype: int) -> str:
    """The standard name of relocation type ``rtype`` on ``machine`` (an ``ElfFacts.machine``).

    Unknown types give ``R_<MACHINE>_<number>``, e.g. ``R_X86_64_99``.
    """
    name = RELOCATION_NAMES.get(machine, {}).get(rtype)
    return name if name is not None else f"R_{machine.upper()}_{rtype}"
