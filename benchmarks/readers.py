"""The in-process baselines: one process reads every ELF file of a list with one library.

    python3 readers.py pyelftools LIST          # .dynsym (name, binding, type, version index) + DT_NEEDED
    python3 readers.py lief LIST                # lief.ELF.parse: dynamic symbols with versions + libraries
    python3 readers.py auditwheel LIST          # auditwheel's lddtree (``ldd``) per file, host library paths

LIST holds NUL-separated paths. A file the library cannot read is counted, not fatal. Prints one
summary line (files, symbols, errors) so the work cannot be skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path


def pyelftools(paths: list[str]) -> tuple[int, int]:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerSymSection

    symbols = errors = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
                dynsym = elf.get_section_by_name(".dynsym")
                if dynsym is not None:
                    for i, sym in enumerate(dynsym.iter_symbols()):
                        _ = (sym.name, sym["st_info"]["bind"], sym["st_info"]["type"], sym["st_shndx"])
                        if versym is not None:
                            _ = versym.get_symbol(i)["ndx"]
                        symbols += 1
                for sec in elf.iter_sections():
                    if isinstance(sec, DynamicSection):
                        _ = [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        except Exception:  # a file pyelftools cannot read counts as an error, as the others' do
            errors += 1
    return symbols, errors


def lief(paths: list[str]) -> tuple[int, int]:
    import lief as lief_

    lief_.logging.disable()
    symbols = errors = 0
    for path in paths:
        binary = lief_.ELF.parse(path)
        if binary is None:
            errors += 1
            continue
        for sym in binary.dynamic_symbols:
            _ = (sym.name, sym.binding, sym.type, sym.symbol_version)
            symbols += 1
        _ = list(binary.libraries)
    return symbols, errors


def auditwheel(paths: list[str]) -> tuple[int, int]:
    from auditwheel import lddtree as module

    # auditwheel renamed lddtree() to ldd() (taking a Path) in 6.x. Libraries are looked up as on the
    # host (the default): its ``root`` argument does not confine every lookup to the root.
    ldd = getattr(module, "ldd", None)
    libraries = errors = 0
    for path in paths:
        try:
            if ldd is not None:
                tree = ldd(Path(path))
                libraries += len(tree.libraries)
            else:
                tree = module.lddtree(path)
                libraries += len(tree["libs"])
        except Exception:
            errors += 1
    return libraries, errors


def main() -> None:
    reader, listfile = sys.argv[1], sys.argv[2]
    paths = [p for p in Path(listfile).read_bytes().decode().split("\0") if p]
    if reader == "pyelftools":
        found, errors = pyelftools(paths)
    elif reader == "lief":
        found, errors = lief(paths)
    elif reader == "auditwheel":
        found, errors = auditwheel(paths)
    else:
        raise SystemExit(f"unknown reader {reader}")
    print(f"{reader}: {len(paths)} files, {found} symbols/libraries, {errors} errors")


if __name__ == "__main__":
    main()
