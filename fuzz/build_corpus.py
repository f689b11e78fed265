#!/usr/bin/env python3
"""Build the seed corpus for fuzz/fuzz_elf.py into OUTDIR (see fuzz/README.md).

    python3 fuzz/build_corpus.py OUTDIR [--samples DIR] [--max-size BYTES]

Seeds, each named by the SHA-1 of its content (so rebuilding is idempotent):

- every ELF file that ``samples/build.py`` builds (it is run into a temporary directory unless
  ``--samples`` names an existing output), and each one truncated at the interesting offsets:
  inside e_ident and the ELF header, at and inside each program header, at and inside PT_INTERP
  and PT_DYNAMIC, and at the start, middle and end of each table the dynamic section points to
  (dynsym, dynstr, DT_HASH / DT_GNU_HASH, versym, verdef, verneed, REL/RELA/JMPREL);
- synthetic files from ``tests/elf/elfbuilder.py``: 32 and 64-bit, little and big endian, SysV,
  GNU and no hash table, with and without versions and relocations, for several machines
  (s390x has 64-bit DT_HASH words), with the same truncations.

Standard library only (plus the repository's own tests/elf/elfbuilder.py); no binary is stored.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.elf.elfbuilder import DT, ElfSpec, Sym  # noqa: E402

# Dynamic tags whose value is an address of a table, and the tag giving that table's size, if any.
_TABLE_TAGS = {
    DT["SYMTAB"]: None, DT["STRTAB"]: DT["STRSZ"], DT["HASH"]: None, DT["GNU_HASH"]: None,
    DT["VERSYM"]: None, DT["VERDEF"]: None, DT["VERNEED"]: None, DT["RELA"]: DT["RELASZ"],
    DT["REL"]: DT["RELSZ"], DT["JMPREL"]: DT["PLTRELSZ"],
}  # fmt: skip


def interesting_offsets(data: bytes) -> set[int]:
    """File offsets worth truncating at: structure starts, insides and ends (a best-effort parse)."""
    cuts = {4, 5, 6, 15, 16, 17, 24, 40}
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return cuts
    is64, e = data[4] == 2, "<" if data[5] == 1 else ">"
    ehdr = struct.Struct(e + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"))
    if len(data) < 16 + ehdr.size:
        return cuts
    _, _, _, _, phoff, _, _, _, phentsize, phnum, *_ = ehdr.unpack_from(data, 16)
    cuts |= {16 + ehdr.size - 1, 16 + ehdr.size, 16 + ehdr.size + 1}
    phdr = struct.Struct(e + ("IIQQQQQQ" if is64 else "IIIIIIII"))
    loads: list[tuple[int, int, int]] = []  # vaddr, offset, filesz
    spans: list[tuple[int, int]] = []  # offset, size
    dynamic: tuple[int, int] | None = None
    for n in range(phnum):
        at = phoff + n * phentsize
        cuts |= {at, at + 4, at + phentsize // 2}
        if at + phdr.size > len(data):
            break
        fields = phdr.unpack_from(data, at)
        p_type, p_offset, p_vaddr, p_filesz = (
            (fields[0], fields[2], fields[3], fields[5]) if is64 else (fields[0], fields[1], fields[2], fields[4])
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type in (2, 3):  # PT_DYNAMIC, PT_INTERP
            spans.append((p_offset, p_filesz))
            if p_type == 2:
                dynamic = (p_offset, p_filesz)
    cuts.add(phoff + phnum * phentsize)
    word = struct.Struct(e + ("QQ" if is64 else "II"))
    tags: dict[int, int] = {}
    if dynamic is not None:
        offset, size = dynamic
        for at in range(offset, min(offset + size, len(data)) - word.size + 1, word.size):
            tag, value = word.unpack_from(data, at)
            if tag == 0:
                break
            tags[tag] = value
            cuts.add(at + word.size // 2)
    for address_tag, size_tag in _TABLE_TAGS.items():
        if address_tag not in tags:
            continue
        vaddr = tags[address_tag]
        for seg_vaddr, seg_offset, seg_filesz in loads:
            if seg_vaddr <= vaddr < seg_vaddr + seg_filesz:
                offset = seg_offset + vaddr - seg_vaddr
                size = tags.get(size_tag, 64) if size_tag is not None else 64
                spans.append((offset, size))
                break
    for offset, size in spans:
        cuts |= {offset, offset + 1, offset + size // 2, offset + size - 1, offset + size}
    return {c for c in cuts if 0 < c < len(data)}


def synthetic_specs() -> Iterator[tuple[str, ElfSpec]]:
    """Small valid images of every class, byte order and hash style."""
    for elf_class in (32, 64):
        for little in (True, False):
            for hash_style in ("sysv", "gnu", "none"):
                for machine in (62, 183, 3, 22) if (elf_class, little, hash_style) == (64, True, "sysv") else (62,):
                    name = f"synth-{elf_class}{'le' if little else 'be'}-{hash_style}-m{machine}"
                    yield f"{name}-full", ElfSpec(
                        elf_class=elf_class, little_endian=little, machine=machine, hash_style=hash_style,
                        interp="/lib/ld-musl-x86_64.so.1", needed=["libc.so.6", "libm.so.6"],
                        soname="libt.so", runpath="$ORIGIN/../lib",
                        symbols=[
                            Sym("printf", versym=2), Sym("tls_var", type=6, versym=2),
                            Sym("exported", shndx=5, value=0x10, size=8, versym=3),
                            Sym("hidden", shndx=5, value=0x20, versym=0x8003),
                            Sym("weak", bind=2, versym=1), Sym("local", bind=0, shndx=5, value=4, versym=1),
                        ],
                        relocations=[("jmprel", 7, 1), ("rela", 8, 0), ("rela", 18, 2),
                                     ("rel", 6, 3), ("rela", 1, 3)],
                        verdefs=[(1, "libt.so"), (3, "V1")],
                        verneeds=[("libc.so.6", [("GLIBC_2.2.5", 2), ("GLIBC_2.3", 4)]), ("libm.so.6", [("M1", 5)])],
                        flags=0x18, flags_1=0x08000001,
                    )  # fmt: skip
            yield f"synth-{elf_class}{'le' if little else 'be'}-minimal", ElfSpec(
                elf_class=elf_class, little_endian=little, section_headers=False
            )


def seeds_of(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    yield name, data
    for cut in sorted(interesting_offsets(data)):
        yield f"{name}@{cut}", data[:cut]


def sample_files(samples: Path, max_size: int) -> Iterable[tuple[str, bytes]]:
    for path in sorted(samples.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > max_size:
            continue
        with path.open("rb") as file:
            if file.read(4) != b"\x7fELF":
                continue
        yield str(path.relative_to(samples)), path.read_bytes()


def build(outdir: Path, samples: Path | None, max_size: int) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()

    def write(items: Iterable[tuple[str, bytes]]) -> None:
        for _, data in items:
            digest = hashlib.sha1(data).hexdigest()
            if digest not in written:
                written.add(digest)
                (outdir / digest).write_bytes(data)

    for name, spec in synthetic_specs():
        write(seeds_of(name, spec.build().data))
    n_synthetic = len(written)

    with tempfile.TemporaryDirectory(prefix="muslcheck-samples-") as tmp:
        if samples is None:
            samples = Path(tmp)
            proc = subprocess.run([sys.executable, str(REPO / "samples" / "build.py"), tmp],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                print(f"warning: samples/build.py failed, synthetic seeds only:\n{proc.stderr[-2000:]}",
                      file=sys.stderr)
        n_files = 0
        for name, data in sample_files(samples, max_size):
            n_files += 1
            write(seeds_of(name, data))
    print(f"{outdir}: {len(written)} seeds ({n_synthetic} synthetic, {len(written) - n_synthetic} "
          f"from {n_files} sample ELF files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--samples", type=Path, help="an existing samples/build.py OUTDIR (default: build one)")
    parser.add_argument("--max-size", type=int, default=1 << 20,
                        help="skip sample files larger than this (default 1 MiB; static binaries)")
    args = parser.parse_args(argv)
    return build(args.outdir, args.samples, args.max_size)


if __name__ == "__main__":
    sys.exit(main())
