"""The fast ELF reader: only the structures musl's dynamic linker reads.

Everything is found the way the loader finds it, through the program headers
and the dynamic section; section headers are never read, so stripped files
work. Struct layouts live in tables keyed by class and byte order.

Choices, where the format leaves room:

- Symbol count: DT_HASH's nchain, else the DT_GNU_HASH walk (as musl's
  ``count_syms``), raised to cover every symbol index a relocation names.
  With neither hash table, only the symbols relocations name are read; musl
  itself cannot look anything up in such a file.
- A single-valued dynamic tag that appears twice: the last one wins, as in
  musl's ``decode_vec``. The first PT_INTERP and PT_DYNAMIC are used.
- Names decode as UTF-8 with ``errors="surrogateescape"`` (lossless).
- All names read from one string table may together be at most four times
  its size (plus 1 MiB): strings can be shared or overlap, and without a bound
  a small file could name one huge string from every symbol.
- Any inconsistency raises ``MalformedElf``; nothing is guessed. Every table
  must lie inside a PT_LOAD segment's file image and inside the file, which
  bounds all work by the file size. PT_LOAD file images must not overlap (the
  loader would map one over the other), so an address maps to one offset.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, count, groupby, islice, pairwise, repeat
from operator import eq, itemgetter
from typing import Final, NamedTuple, TypeVar, cast

from muslcheck.elf.constructors import read_constructor_calls
from muslcheck.elf.facts import (
    BINDING_NAMES,
    NO_EXPORTS,
    NO_USES,
    TYPE_NAMES,
    ElfFacts,
    ElfType,
    Exports,
    SymbolUse,
    Uses,
)
from muslcheck.model.errors import MalformedElf

ELF_MAGIC: Final = b"\x7fELF"

Buffer = bytes | bytearray | memoryview | mmap.mmap


def is_elf(head: bytes) -> bool:
    """True if ``head`` (at least the first four bytes of a file) starts with the ELF magic."""
    return head[:4] == ELF_MAGIC


# --- constants of the ELF format -------------------------------------------------------------

_PT_LOAD, _PT_DYNAMIC, _PT_INTERP, _PT_TLS = 1, 2, 3, 7

_DT_NULL, _DT_NEEDED, _DT_PLTRELSZ, _DT_HASH, _DT_STRTAB, _DT_SYMTAB = 0, 1, 2, 4, 5, 6
_DT_RELA, _DT_RELASZ, _DT_STRSZ, _DT_SONAME, _DT_RPATH = 7, 8, 10, 14, 15
_DT_REL, _DT_RELSZ, _DT_PLTREL, _DT_TEXTREL, _DT_JMPREL, _DT_BIND_NOW = 17, 18, 20, 22, 23, 24
_DT_RUNPATH, _DT_FLAGS, _DT_RELR = 29, 30, 36
_DT_GNU_HASH, _DT_VERSYM, _DT_FLAGS_1 = 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFB
_DT_VERDEF, _DT_VERDEFNUM, _DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF

_DF_TEXTREL, _DF_BIND_NOW, _DF_STATIC_TLS = 0x4, 0x8, 0x10
_DF_1_NOW, _DF_1_PIE = 0x1, 0x08000000

_STB_LOCAL, _STB_GLOBAL, _STB_WEAK = 0, 1, 2
_STT_TLS = 6
_VERSYM_HIDDEN, _VERSYM_INDEX = 0x8000, 0x7FFF

_EM_386, _EM_MIPS, _EM_PPC, _EM_PPC64, _EM_S390, _EM_ARM = 3, 8, 20, 21, 22, 40
_EM_SPARCV9, _EM_X86_64, _EM_AARCH64, _EM_RISCV, _EM_LOONGARCH = 43, 62, 183, 243, 258

_ELF_TYPES: Final = {1: ElfType.REL, 2: ElfType.EXEC, 3: ElfType.DYN, 4: ElfType.CORE}

# e_machine -> name, per ELF class (32, 64).
_MACHINES: Final[dict[int, tuple[str, str]]] = {
    _EM_386: ("i386", "i386"),
    _EM_MIPS: ("mips", "mips64"),
    _EM_PPC: ("ppc", "ppc"),
    _EM_PPC64: ("ppc64", "ppc64"),
    _EM_S390: ("s390", "s390x"),
    _EM_ARM: ("arm", "arm"),
    _EM_SPARCV9: ("sparc64", "sparc64"),
    _EM_X86_64: ("x86_64", "x86_64"),
    _EM_AARCH64: ("aarch64", "aarch64"),
    _EM_RISCV: ("riscv32", "riscv64"),
    _EM_LOONGARCH: ("loongarch32", "loongarch64"),
}

# Relocation types that write a thread-pointer offset (musl's REL_TPOFF and REL_TPOFF_NEG).
TPOFF_RELOCATIONS: Final[dict[str, frozenset[int]]] = {
    "x86_64": frozenset({18}),  # R_X86_64_TPOFF64
    "aarch64": frozenset({1030}),  # R_AARCH64_TLS_TPREL64
    "i386": frozenset({14, 37}),  # R_386_TLS_TPOFF, R_386_TLS_TPOFF32
    "arm": frozenset({19}),  # R_ARM_TLS_TPOFF32
    "riscv64": frozenset({11}),  # R_RISCV_TLS_TPREL64
    "riscv32": frozenset({10}),  # R_RISCV_TLS_TPREL32
    "ppc64": frozenset({73}),  # R_PPC64_TPREL64
    "ppc": frozenset({73}),  # R_PPC_TPREL32
    "s390x": frozenset({56}),  # R_390_TLS_TPOFF
    "mips": frozenset({47}),  # R_MIPS_TLS_TPREL32
    "mips64": frozenset({48}),  # R_MIPS_TLS_TPREL64
    "loongarch64": frozenset({11}),  # R_LARCH_TLS_TPREL64
}



# --- layouts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Struct layouts of one ELF class and byte order."""

    bits: int
    swap: bool  # the file's byte order differs from this machine's (for ``array``)
    ehdr: struct.Struct  # the header after e_ident
    phdr: struct.Struct
    phdr_fields: Callable[[tuple[int, ...]], tuple[int, ...]]  # -> (type, offset, vaddr, filesz)
    sym_size: int
    sym_info_offset: int  # byte offsets of st_info, st_shndx and st_value (st_size follows st_value)
    sym_shndx_offset: int
    sym_value_offset: int
    word: str  # array typecode of an address-sized word
    r_sym_shift: int
    r_type_mask: int
    u32: struct.Struct
    verneed: struct.Struct  # vn_version, vn_cnt, vn_file, vn_aux, vn_next
    vernaux: struct.Struct  # vna_hash, vna_flags, vna_other, vna_name, vna_next
    verdef: struct.Struct  # vd_version, vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux, vd_next
    verdaux: struct.Struct  # vda_name, vda_next


# Per class: header, program header (and where its fields sit), symbol size and the byte offsets
# of st_info, st_shndx and st_value, word, r_info split.
_CLASS_FORMATS: Final = {
    1: ("HHIIIIIHHHHHH", "IIIIIIII", (0, 1, 2, 4), (16, 12, 14, 4), "I", 8, 0xFF),
    2: ("HHIQQQIHHHHHH", "IIQQQQQQ", (0, 2, 3, 5), (24, 4, 6, 8), "Q", 32, 0xFFFFFFFF),
}
_BYTE_ORDERS: Final = {1: ("<", "little"), 2: (">", "big")}


def _make_layout(elf_class: int, data: int) -> _Layout:
    ehdr, phdr, phdr_fields, (sym_size, info, shndx, value), word, shift, mask = _CLASS_FORMATS[elf_class]
    prefix, order = _BYTE_ORDERS[data]
    return _Layout(
        bits=32 * elf_class,
        swap=order != sys.byteorder,
        ehdr=struct.Struct(prefix + ehdr),
        phdr=struct.Struct(prefix + phdr),
        phdr_fields=itemgetter(*phdr_fields),
        sym_size=sym_size,
        sym_info_offset=info,
        sym_shndx_offset=shndx,
        sym_value_offset=value,
        word=word,
        r_sym_shift=shift,
        r_type_mask=mask,
        u32=struct.Struct(prefix + "I"),
        verneed=struct.Struct(prefix + "HHIII"),
        vernaux=struct.Struct(prefix + "IHHII"),
        verdef=struct.Struct(prefix + "HHHHIII"),
        verdaux=struct.Struct(prefix + "II"),
    )


# DT_HASH words are 32 bits wide except on 64-bit s390 (musl's Elf_Symndx).
_HASH_WORDS: Final = {(_EM_S390, 64): "Q"}

_LOW_BIT: Final = bytes(b & 1 for b in range(256))  # bytes.translate table: a byte's low bit

_LAYOUTS: Final = {(c, d): _make_layout(c, d) for c in _CLASS_FORMATS for d in _BYTE_ORDERS}
assert array("I").itemsize == 4 and array("Q").itemsize == 8 and array("H").itemsize == 2


_Relocations = tuple[tuple[int, int], ...]  # ((relocation type, count), ...), sorted


# --- the reader ------------------------------------------------------------------------------


class _Image:
    """The file, its layouts, and the address map its PT_LOAD segments define."""

    def __init__(self, buf: Buffer, layout: _Layout, machine: int, holes: Sequence[tuple[int, int]] = (),
                 fill: Fill | None = None) -> None:
        self.buf = buf
        self.fill = fill
        self.size = len(buf)
        self.holes = list(holes)
        self.hole_starts = [start for start, _ in holes]
        self.layout = layout
        self.machine = machine
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.starts: list[int] = []  # vaddr of each non-empty file image, ascending
        self.images: list[tuple[int, int, int]] = []  # (vaddr, end vaddr, offset), same order

    def index_loads(self) -> None:
        """Sort the non-empty PT_LOAD file images by address; they must not overlap.

        Then each lookup is a bisection, so a file with 65535 PT_LOAD entries costs no more per
        table entry than one with four.
        """
        images = sorted((vaddr, vaddr + filesz, offset) for vaddr, offset, filesz in self.loads if filesz)
        for (_, end, _), (start, _, _) in pairwise(images):
            if end > start:
                raise MalformedElf("PT_LOAD segments overlap")
        self.images = images
        self.starts = [vaddr for vaddr, _, _ in images]

    def check(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise MalformedElf(f"{what} extends past the end of the file")
        if self.holes and size:  # the last hole starting before the range's end is the only one that can meet it
            i = bisect_left(self.hole_starts, offset + size) - 1
            if i >= 0 and self.holes[i][1] > offset:
                raise MalformedElf(f"{what} of {size} bytes is not backed by the file's data (a hole of a sparse "
                                   "file, or a file that shrank while read)")
        if self.fill is not None and size:
            self.fill(offset, size)

    def bytes_at(self, offset: int, size: int, what: str) -> bytes:
        self.check(offset, size, what)
        return bytes(self.buf[offset : offset + size])

    def offset_of(self, vaddr: int, size: int, what: str) -> int:
        """File offset of ``size`` bytes at ``vaddr``; they must lie in one segment's file image."""
        if size > 0:  # the images are disjoint: only the last one starting at or before vaddr can hold it
            i = bisect_right(self.starts, vaddr) - 1
            if i >= 0 and vaddr + size <= self.images[i][1]:
                offset = self.images[i][2] + vaddr - self.starts[i]
                self.check(offset, size, what)
                return offset
            raise MalformedElf(f"{what} at {vaddr:#x} is outside the file image of every PT_LOAD segment")
        for seg_vaddr, seg_offset, seg_filesz in self.loads:
            if seg_vaddr <= vaddr and vaddr + size <= seg_vaddr + seg_filesz:
                offset = seg_offset + vaddr - seg_vaddr
                self.check(offset, size, what)
                return offset
        raise MalformedElf(f"{what} at {vaddr:#x} is outside the file image of every PT_LOAD segment")

    def extent(self, vaddr: int, offset: int) -> int:
        """Bytes from ``vaddr`` (at file ``offset``, found by ``offset_of``) to the end of its file image."""
        i = bisect_right(self.starts, vaddr) - 1
        return min(self.images[i][1] - vaddr, self.size - offset)

    def read_at(self, vaddr: int, size: int, what: str) -> bytes:
        return self.bytes_at(self.offset_of(vaddr, size, what), size, what)

    def view_at(self, vaddr: int, size: int, what: str) -> memoryview:
        """A view of ``size`` bytes at ``vaddr``; release it (``with``) before the file's map is closed."""
        offset = self.offset_of(vaddr, size, what)
        with memoryview(self.buf) as whole:
            return whole[offset : offset + size]

    def unpack_at(self, fmt: struct.Struct, vaddr: int, what: str) -> tuple[int, ...]:
        return fmt.unpack_from(self.buf, self.offset_of(vaddr, fmt.size, what))

    def words(self, code: str, offset: int, n: int, what: str, start: int = 0, step: int = 1) -> array[int]:
        """``n`` unsigned integers of array typecode ``code``, in file byte order.

        With ``start`` and ``step``, only every ``step``-th from the ``start``-th: the others are not copied.
        """
        result = array(code)
        size = n * result.itemsize
        self.check(offset, size, what)
        with memoryview(self.buf) as whole, whole[offset : offset + size] as part:
            result.frombytes(_every(part, code, start, step))
        if self.layout.swap:
            result.byteswap()
        return result


def _every(data: memoryview, code: str, start: int, step: int) -> bytes:
    """The bytes of every ``step``-th item of array typecode ``code`` in ``data``, from the ``start``-th."""
    with data.cast(code) as items, items[start::step] as kept:  # type: ignore[call-overload]
        return cast(bytes, kept.tobytes())


class _Strings:
    """The dynamic string table.

    It is decoded once as latin-1, so that string offsets are text offsets; a name with non-ASCII
    bytes is then re-decoded as UTF-8 (surrogateescape).
    """

    def __init__(self, raw: bytes | memoryview) -> None:
        self.text = str(raw, "latin-1")
        self.ascii = self.text.isascii()
        self.budget = _NAMES_PER_TABLE * len(raw) + _NAMES_SLACK  # characters left for names

    def get(self, offset: int) -> str:
        text = self.text
        end = text.find("\0", offset)
        if end < 0 or offset >= len(text):
            raise MalformedElf(f"string offset {offset} is not a string of the string table")
        self.spend(end - offset)
        name = text[offset:end]
        return name if self.ascii else _from_latin1(name)

    def spend(self, characters: int) -> None:
        self.budget -= characters
        if self.budget < 0:
            raise MalformedElf(_NAMES_OVER_BUDGET)


_NAMES_PER_TABLE: Final = 4  # real files stay under 2: shared strings are versioned duplicates
_NAMES_SLACK: Final = 1 << 20
_NAMES_OVER_BUDGET: Final = "the names read from the string table add up to more than four times its size"


def _from_latin1(name: str) -> str:
    return name if name.isascii() else name.encode("latin-1").decode("utf-8", "surrogateescape")


MAX_FILE_BYTES: Final = 1 << 30  # a larger file is not read (the image reader's MAX_ELF_BYTES)
MAX_NEEDED: Final = 4096  # DT_NEEDED entries of one file (real ones have at most a few hundred)
_READ_CHUNK: Final = 16 << 20
_EHDR_MAX: Final = 64  # the ELF identification and header, either class
Fill = Callable[[int, int], None]  # (offset, size): put those bytes of the file in place before they are read


def read_elf_file(path: str | os.PathLike[str], *, symbols: bool = True, constructors: bool | None = None,
                  marks: Collection[str] | None = None) -> ElfFacts:
    """Read the facts of the ELF file at ``path`` (see ``read_elf_descriptor``). The open never blocks
    (``O_NONBLOCK``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        return read_elf_descriptor(fd, symbols=symbols, constructors=constructors, marks=marks)
    finally:
        os.close(fd)


def read_elf_descriptor(fd: int, *, symbols: bool = True, constructors: bool | None = None,
                        marks: Collection[str] | None = None,
                        pages_read: Callable[[tuple[int, ...], bytes], None] | None = None) -> ElfFacts:
    """Read the facts of the ELF file open at ``fd`` (see ``read_elf``); the descriptor stays open.

    ``pages_read``, when given, is called once the facts are read with the runs of 4 KiB pages the reader read
    (first page, page count, ...) and a digest of their bytes: the facts are a function of the file's size and
    those bytes alone (a file without holes), so ``pages_unchanged`` later tells whether they still hold.

    The file is read, never mapped: a mapped file that shrinks under the scan would kill the process with SIGBUS.
    It is read into anonymous memory, and only where the reader looks (``_LazyFile``): a sparse file costs the bytes
    it really holds, and a table that claims a hole (or what a shrinking file no longer holds) is ``MalformedElf``.
    Anything but a regular file is refused."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise MalformedElf("not a regular file")
    if st.st_size == 0:
        raise MalformedElf("empty file")
    if st.st_size > MAX_FILE_BYTES:
        raise MalformedElf(f"ELF file of {st.st_size} bytes, above the {MAX_FILE_BYTES}-byte limit: not read")
    # A small file in the heap; a larger one in anonymous memory, where untouched pages cost nothing.
    memory = bytearray(st.st_size) if st.st_size <= _HEAP_FILE_BYTES else mmap.mmap(-1, st.st_size)
    try:
        with memoryview(memory) as whole:
            reader = _LazyFile(fd, whole, st)
            facts = read_elf(whole, symbols=symbols, constructors=constructors, holes=reader.holes, fill=reader.fill,
                             marks=marks)
            if pages_read is not None:
                runs = reader.runs()
                pages_read(runs, reader.digest(runs))
            return facts
    finally:
        if isinstance(memory, mmap.mmap):
            memory.close()


_HEAP_FILE_BYTES = 64 << 10  # read into a bytearray: no mapping made and unmapped for it


class _LazyFile:
    """A file read into anonymous memory only where the ELF reader looks (its headers and dynamic tables, a few
    percent of a library), a run of 4 KiB pages at a time: reading every byte cost 1.3x the scan, and 64 KiB pages
    read twice the bytes (the headers, dynamic section and string tables are small and far apart). Its holes
    (``SEEK_HOLE``) are known up front; bytes a shrinking file no longer holds end the read with ``MalformedElf``."""

    _PAGE = 1 << 12

    def __init__(self, fd: int, whole: memoryview, st: os.stat_result) -> None:
        self.fd, self.whole, self.size = fd, whole, st.st_size
        # A file with as many bytes of blocks as it is long holds all of them: no hole to look for.
        self.holes = [] if st.st_blocks * 512 >= st.st_size else _holes(fd, st.st_size)
        self.loaded = bytearray((self.size + self._PAGE - 1) // self._PAGE)  # 1: that page was read

    def fill(self, offset: int, size: int) -> None:
        first, last = offset // self._PAGE, min(offset + size - 1, self.size - 1) // self._PAGE
        loaded = self.loaded
        page = loaded.find(0, first, last + 1)  # the runs of pages not read yet, found at C speed
        while page >= 0:
            run = loaded.find(1, page, last + 1)
            run = last + 1 if run < 0 else run
            start, end = page * self._PAGE, min(run * self._PAGE, self.size)
            while start < end:
                n = os.preadv(self.fd, [self.whole[start : min(end, start + _READ_CHUNK)]], start)
                if n <= 0:
                    raise MalformedElf(f"the file shrank to {start} bytes while it was read")
                start += n
            loaded[page:run] = b"\1" * (run - page)
            page = loaded.find(0, run, last + 1)

    def runs(self) -> tuple[int, ...]:
        """The runs of pages read so far: (first page, page count) pairs, flattened, ascending."""
        loaded, found = self.loaded, list[int]()
        page = loaded.find(1)
        while page >= 0:
            end = loaded.find(0, page)
            end = len(loaded) if end < 0 else end
            found += (page, end - page)
            page = loaded.find(1, end)
        return tuple(found)

    def digest(self, runs: tuple[int, ...]) -> bytes:
        """``_pages_digest`` of ``runs``, over the bytes read into memory (what the facts were read from)."""
        return _pages_digest(self.size, runs, lambda start, end: self.whole[start:end])


def pages_unchanged(fd: int, runs: tuple[int, ...], digest: bytes) -> bool:
    """Whether the file open at ``fd`` still holds, in the pages of ``runs``, the bytes ``digest`` was made of
    (``read_elf_descriptor``'s ``pages_read``): the pages read again (``pread``), hashed the same way. A file of
    another size, or too short to hold them now, is False."""
    size = os.fstat(fd).st_size
    if len(runs) % 2:
        return False
    end = 0
    for first, n in zip(runs[::2], runs[1::2], strict=True):  # ascending, apart, each page inside the file
        if first < end or n <= 0:
            return False
        end = first + n
    if (end - 1) * _LazyFile._PAGE >= size:
        return False
    short = False

    def read(start: int, end: int) -> bytes:
        nonlocal short
        data = os.pread(fd, end - start, start)
        short = short or len(data) != end - start
        return data
    try:
        found = _pages_digest(size, runs, read)
    except OSError:  # unreadable now: the read that follows says why
        return False
    return not short and found == digest


def _pages_digest(size: int, runs: tuple[int, ...], chunk: Callable[[int, int], Buffer]) -> bytes:
    """sha256 over the file size, the runs and the bytes of each run (``chunk(start, end)``, at most 16 MiB each)."""
    h = hashlib.sha256(b"muslcheck pages\0%d\0" % size)
    h.update(array("q", runs).tobytes())
    page = _LazyFile._PAGE
    for first, n in zip(runs[::2], runs[1::2], strict=True):
        start, end = first * page, min((first + n) * page, size)
        while start < end:
            h.update(chunk(start, min(end, start + _READ_CHUNK)))
            start += _READ_CHUNK
    return h.digest()


def _holes(fd: int, size: int) -> list[tuple[int, int]]:
    """The file's holes (a sparse file's ranges that hold no data), (start, end) ascending."""
    holes: list[tuple[int, int]] = []
    position = 0
    while position < size:
        try:
            start = min(os.lseek(fd, position, os.SEEK_DATA), size)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:  # ENXIO: no data from here on
            start = end = size
        if start > position:
            holes.append((position, start))
        if end <= position:
            break
        position = end
    return holes


def read_elf(data: Buffer, *, symbols: bool = True, constructors: bool | None = None,
             holes: Sequence[tuple[int, int]] = (), fill: Fill | None = None,
             marks: Collection[str] | None = None) -> ElfFacts:
    """Read the facts musl's loader acts on from an in-memory ELF image.

    ``symbols=False`` stops after the dynamic section's tags: relocations, uses and exports stay
    empty and ``symbols_read`` is False (a problem in the symbol tables is then not yet found).
    ``constructors`` (by default: as ``symbols``) reads what the init functions call (``constructor_calls``), from
    their code; without it ``constructors_read`` is False.
    ``holes`` are (start, end) ranges, ascending, that the file does not really hold (a sparse file's holes):
    no table may lie in one. ``fill(offset, size)``, when given, is called before any bytes of ``data`` are read:
    it puts them there (``read_elf_file`` reads a file's bytes only when the reader needs them).
    ``marks``: strings to look for in the dynamic string table (``dynstr_marks``, those found; None: not looked for).
    """
    buf: Buffer = data.cast("B") if isinstance(data, memoryview) and data.format != "B" else data
    if fill is not None:
        fill(0, min(len(buf), _EHDR_MAX))
    ident = bytes(buf[:16])
    if len(ident) < 16:
        raise MalformedElf("truncated ELF identification")
    if not is_elf(ident):
        raise MalformedElf("missing ELF magic")
    layout = _LAYOUTS.get((ident[4], ident[5]))
    if layout is None:
        raise MalformedElf(f"bad ELF class {ident[4]} or byte order {ident[5]}")
    if len(buf) < 16 + layout.ehdr.size:
        raise MalformedElf("truncated ELF header")
    e_type, e_machine, _, _, e_phoff, _, _, _, e_phentsize, e_phnum, *_ = layout.ehdr.unpack_from(buf, 16)
    image = _Image(buf, layout, e_machine, holes, fill)
    machine = _MACHINES.get(e_machine, (f"EM_{e_machine}",) * 2)[layout.bits == 64]

    interp: tuple[int, int] | None = None
    dynamic: tuple[int, int] | None = None
    has_tls = False
    if e_phnum:
        if e_phentsize < layout.phdr.size:
            raise MalformedElf(f"program header entry size {e_phentsize} is too small")
        image.check(e_phoff, e_phnum * e_phentsize, "program header table")
    phdrs: Iterable[tuple[int, ...]]
    if e_phentsize == layout.phdr.size:  # packed: decode the table in one call
        phdrs = layout.phdr.iter_unpack(buf[e_phoff : e_phoff + e_phnum * e_phentsize])
    else:
        phdrs = (layout.phdr.unpack_from(buf, e_phoff + n * e_phentsize) for n in range(e_phnum))
    for p_type, p_offset, p_vaddr, p_filesz in map(layout.phdr_fields, phdrs):
        if p_type == _PT_LOAD:
            image.loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC and dynamic is None:
            dynamic = (p_offset, p_filesz)
        elif p_type == _PT_INTERP and interp is None:
            interp = (p_offset, p_filesz)
        elif p_type == _PT_TLS:
            has_tls = True
    image.index_loads()

    interpreter = None
    if interp is not None:
        raw = image.bytes_at(*interp, "PT_INTERP")
        interpreter = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    elf_type = _ELF_TYPES.get(e_type, ElfType.OTHER)
    found = _NO_DYNAMIC if dynamic is None else _read_dynamic(image, dynamic, machine, symbols, marks)
    if marks is not None and found.dynstr_marks is None:  # no string table: no name at all
        found = found._replace(dynstr_marks=frozenset())
    if constructors is None:
        constructors = symbols
    return ElfFacts(
        elf_class=layout.bits,
        little_endian=ident[5] == 1,
        machine=machine,
        elf_type=elf_type,
        interpreter=interpreter,
        has_dynamic=dynamic is not None,
        has_tls=has_tls,
        **found._asdict(),
        symbols_read=symbols or dynamic is None,
        constructor_calls=read_constructor_calls(image, dynamic, machine).names if constructors and dynamic else (),
        constructors_read=constructors or dynamic is None,
    )


class _Dynamic(NamedTuple):
    """The facts that come from PT_DYNAMIC."""

    soname: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    bind_now: bool
    static_tls: bool
    pie: bool
    has_relr: bool
    textrel: bool
    relocations: tuple[tuple[int, int], ...]
    tls_relocations_local: int
    uses: Uses
    exports: Exports
    dynstr_marks: frozenset[str] | None


_NO_DYNAMIC: Final = _Dynamic(None, (), None, None, False, False, False, False, False, (), 0, NO_USES, NO_EXPORTS,
                              None)


def _read_dynamic(image: _Image, dynamic: tuple[int, int], machine: str, symbols: bool,
                  marks: Collection[str] | None = None) -> _Dynamic:
    layout = image.layout
    word_size = layout.bits // 8
    dyn_offset, dyn_size = dynamic
    entries = image.words(layout.word, dyn_offset, dyn_size // word_size & ~1, "dynamic section")
    tags, values = entries[0::2], entries[1::2]
    try:
        end = tags.index(_DT_NULL)
    except ValueError:
        raise MalformedElf("dynamic section has no DT_NULL terminator") from None
    tags, values = tags[:end], values[:end]
    tag: dict[int, int] = dict(zip(tags, values, strict=True))
    needed_offsets = [v for t, v in zip(tags, values, strict=True) if t == _DT_NEEDED]
    if len(needed_offsets) > MAX_NEEDED:
        raise MalformedElf(f"{len(needed_offsets)} DT_NEEDED entries (library names), above the limit of {MAX_NEEDED}")

    strings = _Strings(b"")
    if _DT_STRTAB in tag:
        if _DT_STRSZ not in tag:
            raise MalformedElf("DT_STRTAB without DT_STRSZ")
        with image.view_at(tag[_DT_STRTAB], tag[_DT_STRSZ], "string table") as raw:
            strings = _Strings(raw)

    def string_tag(t: int) -> str | None:
        return strings.get(tag[t]) if t in tag else None

    flags, flags_1 = tag.get(_DT_FLAGS, 0), tag.get(_DT_FLAGS_1, 0)
    head = _NO_DYNAMIC._replace(
        soname=string_tag(_DT_SONAME),
        needed=tuple(strings.get(v) for v in needed_offsets),
        rpath=string_tag(_DT_RPATH),
        runpath=string_tag(_DT_RUNPATH),
        bind_now=_DT_BIND_NOW in tag or bool(flags & _DF_BIND_NOW) or bool(flags_1 & _DF_1_NOW),
        static_tls=bool(flags & _DF_STATIC_TLS),
        pie=bool(flags_1 & _DF_1_PIE),
        has_relr=_DT_RELR in tag,
        textrel=_DT_TEXTREL in tag or bool(flags & _DF_TEXTREL),
        dynstr_marks=None if marks is None else frozenset(m for m in marks if m in strings.text),
    )
    if not symbols:
        return head

    # Relocations: count r_info values first; there are far fewer distinct values than entries.
    infos: Counter[int] = Counter()
    for address_tag, size_tag, rela in _relocation_tables(tag):
        entry_words = 3 if rela else 2
        size = tag.get(size_tag, 0)
        if size % (entry_words * word_size):
            raise MalformedElf("relocation table size is not a multiple of the entry size")
        offset = image.offset_of(tag[address_tag], size, "relocation table")
        _count_into(infos, image.words(layout.word, offset, size // word_size, "relocation table", 1, entry_words))
    relocations, refs = _group_relocations(infos, layout.r_sym_shift, layout.r_type_mask)

    with _read_symbols(image, tag, max(refs) + 1 if refs else 0) as symtab:
        return _read_symbol_facts(image, tag, head, infos, relocations, refs, strings, symtab, machine)


def _read_symbol_facts(image: _Image, tag: dict[int, int], head: _Dynamic, infos: Counter[int],
                       relocations: _Relocations, refs: dict[int, _Relocations], strings: _Strings,
                       symtab: memoryview, machine: str) -> _Dynamic:
    layout = image.layout
    nsyms = len(symtab) // layout.sym_size
    versyms: array[int] | None = None
    if _DT_VERSYM in tag and nsyms:
        offset = image.offset_of(tag[_DT_VERSYM], 2 * nsyms, "version symbol table")
        versyms = image.words("H", offset, nsyms, "version symbol table")
    versions = _read_versions(image, tag, strings)

    tpoff = TPOFF_RELOCATIONS.get(machine, frozenset())
    info_offset, sym_size = layout.sym_info_offset, layout.sym_size
    tls_local = 0
    if any(r_type in tpoff for r_type, _ in relocations):
        tls_local = sum(
            n
            for info, n in infos.items()
            if info & layout.r_type_mask in tpoff
            and (
                (r_sym := info >> layout.r_sym_shift) == 0
                or symtab[r_sym * sym_size + info_offset] >> 4 == _STB_LOCAL
            )
        )
    uses, exports = _collect_symbols(layout, symtab, versyms, versions, strings, refs)
    return head._replace(relocations=relocations, tls_relocations_local=tls_local, uses=uses, exports=exports)


def _count_into(counter: Counter[int], column: array[int]) -> None:
    """Add the values of ``column`` to ``counter``.

    Linkers put the RELATIVE relocations, often most of them, in one leading run of equal r_info
    values; that run is measured with array comparisons, which run at C speed.
    """
    if not column:
        return
    first = column[0]
    run = column.count(first)
    if column[:run] == array(column.typecode, (first,)) * run:
        counter[first] += run
        column = column[run:]
    counter.update(column)


def _group_relocations(
    infos: Counter[int], shift: int, mask: int
) -> tuple[_Relocations, dict[int, _Relocations]]:
    """From r_info counts: (type, count) over all relocations, and per symbol index.

    Written with comprehensions and C-level helpers: a large library has 10^5 distinct r_info values.
    """
    keys = sorted(infos)  # so sorted by symbol index, then type
    counts = list(map(infos.__getitem__, keys))
    types = [key & mask for key in keys]
    totals = Counter(types)  # as if every count were 1; most are
    for i in compress(count(), map((1).__lt__, counts)):
        totals[types[i]] += counts[i] - 1
    first = bisect_right(keys, mask)  # keys from here on name a symbol
    syms = [key >> shift for key in keys[first:]]
    pairs = list(zip(types[first:], counts[first:], strict=True))
    refs: dict[int, _Relocations] = dict(zip(syms, _single_relocations(pairs), strict=True))
    if len(refs) < len(syms):  # some symbols have several relocation types: regroup those
        for sym in set(compress(syms, map(eq, syms, islice(syms, 1, None)))):
            start = bisect_left(syms, sym)
            refs[sym] = tuple(pairs[start : bisect_right(syms, sym)])
    return tuple(sorted(totals.items())), refs


# ((type, count),) tuples shared by symbols and files, as most symbols have one relocation or two of
# one type. Bounded: once full, further tuples are simply not shared.
_SHARED_RELOCATIONS: dict[tuple[int, int], _Relocations] = {}
_SHARED_RELOCATIONS_MAX: Final = 4096


def _single_relocations(pairs: list[tuple[int, int]]) -> list[_Relocations]:
    """``((type, count),)`` for each (type, count) pair, shared where possible."""
    found = list(map(_SHARED_RELOCATIONS.get, pairs))
    if None in found:
        return [shared or _share_relocations(pair) for pair, shared in zip(pairs, found, strict=True)]
    return cast(list[_Relocations], found)


def _share_relocations(pair: tuple[int, int]) -> _Relocations:
    relocations = (pair,)
    if len(_SHARED_RELOCATIONS) < _SHARED_RELOCATIONS_MAX:
        _SHARED_RELOCATIONS[pair] = relocations
    return relocations


def _relocation_tables(tag: dict[int, int]) -> Iterable[tuple[int, int, bool]]:
    """(address tag, size tag, is RELA) of each relocation table present, as musl's reloc_all."""
    if _DT_JMPREL in tag:
        pltrel = tag.get(_DT_PLTREL)
        if pltrel not in (_DT_REL, _DT_RELA):
            raise MalformedElf("DT_JMPREL without a DT_PLTREL of DT_REL or DT_RELA")
        yield _DT_JMPREL, _DT_PLTRELSZ, pltrel == _DT_RELA
    if _DT_REL in tag:
        yield _DT_REL, _DT_RELSZ, False
    if _DT_RELA in tag:
        yield _DT_RELA, _DT_RELASZ, True


def _read_symbols(image: _Image, tag: dict[int, int], referenced: int) -> memoryview:
    """The raw dynamic symbol table, a view (not a copy): as many entries as the hash table names, or relocations
    use."""
    if _DT_SYMTAB not in tag:
        if referenced:
            raise MalformedElf("relocations name symbols but there is no DT_SYMTAB")
        return memoryview(b"")
    nsyms = max(_symbol_count(image, tag), referenced)
    return image.view_at(tag[_DT_SYMTAB], nsyms * image.layout.sym_size, "symbol table")


def _symbol_count(image: _Image, tag: dict[int, int]) -> int:
    """Symbols in the table, as musl's count_syms: DT_HASH's nchain, else the DT_GNU_HASH walk.

    On 64-bit s390x, DT_HASH words are 64-bit for GNU ld and 32-bit for lld; musl looks symbols up through
    DT_GNU_HASH when there is one and uses the count for dladdr only, so there the GNU walk counts. With DT_HASH
    alone, the 32-bit reading is taken when the 64-bit count does not fit before the end of the file."""
    layout = image.layout
    wide = _HASH_WORDS.get((image.machine, layout.bits))
    if _DT_HASH in tag and not (wide and _DT_GNU_HASH in tag):
        count = _nchain(image, tag, wide or "I")
        if wide and _DT_SYMTAB in tag and count * layout.sym_size > image.size:
            count = _nchain(image, tag, "I")
        return count
    if _DT_GNU_HASH not in tag:
        return 0
    address = tag[_DT_GNU_HASH]
    nbuckets, symoffset, bloom_size, _ = image.words(
        "I", image.offset_of(address, 16, "DT_GNU_HASH"), 4, "DT_GNU_HASH"
    )
    buckets = address + 16 + bloom_size * (layout.bits // 8)
    offset = image.offset_of(buckets, 4 * nbuckets, "DT_GNU_HASH buckets")
    last = max(image.words("I", offset, nbuckets, "DT_GNU_HASH buckets"), default=0)
    if last == 0 or last < symoffset:  # no hashed symbols
        return int(symoffset)
    # Walk the chain of the highest bucket to its end (the entry with the low bit set), a growing
    # block at a time: only the low byte of each word is looked at, at C speed.
    chain = buckets + 4 * nbuckets + 4 * (last - symoffset)
    low = 0 if layout.u32.format.startswith("<") else 3
    block = 16
    while True:
        offset = image.offset_of(chain, 4, "DT_GNU_HASH chain")
        n = min(block, image.extent(chain, offset) // 4)
        image.check(offset, 4 * n, "DT_GNU_HASH chain")
        found = bytes(image.buf[offset + low : offset + 4 * n : 4]).translate(_LOW_BIT).find(1)
        if found >= 0:
            return int(last) + found + 1
        last += n
        chain += 4 * n
        block *= 2


def _nchain(image: _Image, tag: dict[int, int], code: str) -> int:
    size = 2 * array(code).itemsize
    return int(image.words(code, image.offset_of(tag[_DT_HASH], size, "DT_HASH"), 2, "DT_HASH")[1])


def _read_versions(
    image: _Image, tag: dict[int, int], strings: _Strings
) -> dict[int, tuple[str, str | None]]:
    """versym index -> (version name, vn_file or None for a definition), for the indices from 2 up."""
    layout = image.layout
    versions: dict[int, tuple[str, str | None]] = {}
    # Distinct vernaux entries cannot outnumber what the file holds; entries that overlap (shared
    # or overlapping aux chains) would otherwise cost vn_cnt steps per verneed entry.
    vernaux_budget = image.size // layout.vernaux.size
    for address, (_, _, ndx, cnt, _, aux, _) in _chain(image, tag, _DT_VERDEF, _DT_VERDEFNUM, 6):
        if cnt and ndx & _VERSYM_INDEX > 1:
            name = image.unpack_at(layout.verdaux, address + aux, "version definition")[0]
            versions[ndx & _VERSYM_INDEX] = (strings.get(name), None)
    for address, (_, cnt, file, aux, _) in _chain(image, tag, _DT_VERNEED, _DT_VERNEEDNUM, 4):
        library = strings.get(file)
        aux_address = address + aux
        for _ in range(cnt):  # vn_cnt is 16 bits; the links only move forward
            vernaux_budget -= 1
            if vernaux_budget < 0:
                raise MalformedElf("version need entries overlap: more vernaux entries than the file holds")
            _, _, other, name, next_aux = image.unpack_at(layout.vernaux, aux_address, "version need")
            if other & _VERSYM_INDEX > 1:
                versions[other & _VERSYM_INDEX] = (strings.get(name), library)
            if not next_aux:
                break
            aux_address += next_aux
    return versions


def _chain(
    image: _Image, tag: dict[int, int], address_tag: int, count_tag: int, next_field: int
) -> Iterable[tuple[int, tuple[int, ...]]]:
    """(address, fields) of each entry of a verdef or verneed chain.

    The links are unsigned offsets, so the chain only moves forward and cannot loop; its length
    is bounded by the count tag (checked against the file size) or by the file's end.
    """
    if address_tag not in tag:
        return
    fmt = image.layout.verdef if address_tag == _DT_VERDEF else image.layout.verneed
    limit = image.size // fmt.size
    entries = tag.get(count_tag, limit)
    if entries > limit:
        raise MalformedElf("version table count is larger than the file allows")
    address = tag[address_tag]
    for _ in range(entries):
        entry = image.unpack_at(fmt, address, "version table")
        yield address, entry
        if not entry[next_field]:
            return
        address += entry[next_field]


# Per distinct versym value: (version name, vn_file, hidden).
_VersionEntry = tuple[str | None, str | None, bool]
_UNVERSIONED: Final[_VersionEntry] = (None, None, False)


def _version_entries(versyms: array[int] | None, kept: array[int] | None,
                     versions: dict[int, tuple[str, str | None]]) -> list[_VersionEntry] | None:
    """The version entry of each value of ``kept`` (the non-local symbols' versym values); every versym value of
    the table must name a version. None when there is no versym table."""
    if versyms is None or kept is None:
        return None
    entries: dict[int, _VersionEntry] = {}
    for value in set(versyms):
        index = value & _VERSYM_INDEX
        hidden = bool(value & _VERSYM_HIDDEN)
        if index <= 1:
            entries[value] = (None, None, hidden)
        elif index in versions:
            name, library = versions[index]
            entries[value] = (name, library, hidden)
        else:
            raise MalformedElf(f"version index {index} has no version definition or need")
    return list(map(entries.__getitem__, kept))


# Per st_info byte (bytes.translate tables): the binding is not LOCAL; it is GLOBAL or WEAK; the type is TLS.
_NOT_LOCAL: Final = bytes(info >> 4 != _STB_LOCAL for info in range(256))
_IMPORTED: Final = bytes(info >> 4 in (_STB_GLOBAL, _STB_WEAK) for info in range(256))
_TLS: Final = bytes(info & 0xF == _STT_TLS for info in range(256))
_UNDEFINED: Final = bytes(value == 0 for value in range(256))  # translates a defined flag into plt_only
_NONZERO: Final = bytes(value != 0 for value in range(256))
_VISIBLE: Final = bytes(not value & 0x80 for value in range(256))  # versym's high byte: the hidden bit is clear
# Rows in the argument order of SymbolUse, for the rare files with two uses of one name.
_UseRow = tuple[str, str | None, str | None, str, str, bool, _Relocations]
_NAME: Final = itemgetter(0)
_LIBRARY: Final = itemgetter(1)
_T = TypeVar("_T")


def _use_key(row: _UseRow) -> tuple[str, str, str, bool, bool]:
    """The contract's order of uses, and (all but the last field) what makes two uses one."""
    name, version, _, binding, _, defined, _ = row
    return name, version or "", binding, defined, version is None


def _kept_table(layout: _Layout, symtab: memoryview) -> tuple[range | list[int], memoryview | bytes]:
    """The non-local symbols (not the null symbol either): their indices, and their entries as one table. The
    ELF format puts the local symbols first, so that table is nearly always a view of the table's tail."""
    step = layout.sym_size
    not_local = symtab[layout.sym_info_offset :: step].tobytes().translate(_NOT_LOCAL)
    first = not_local.find(1)
    if first < 0:
        return range(0), b""
    if not_local.find(0, first) < 0:
        return range(first, len(not_local)), symtab[first * step :]
    kept = list(compress(range(len(not_local)), not_local))
    return kept, b"".join(symtab[i * step : (i + 1) * step] for i in kept)


def _column(layout: _Layout, table: memoryview | bytes, code: str, offset: int) -> array[int]:
    """The field of typecode ``code`` at byte ``offset`` of every entry of ``table``, in this machine's order."""
    column = array(code)
    with memoryview(table) as view:
        column.frombytes(_every(view, code, offset // column.itemsize, layout.sym_size // column.itemsize))
    if layout.swap:
        column.byteswap()
    return column


def _nonzero(layout: _Layout, table: memoryview | bytes, offset: int, width: int) -> int:
    """A flag per entry of ``table``: its ``width``-byte field at ``offset`` is not zero. The flags are one
    integer with a byte each (the first entry's is the lowest): byte order does not matter, any byte counts."""
    flags = 0
    with memoryview(table) as view:
        for byte in range(offset, offset + width):
            flags |= int.from_bytes(view[byte :: layout.sym_size].tobytes().translate(_NONZERO), "little")
    return flags


def _symbol_names(strings: _Strings, kept: Sequence[int], offsets: list[int]) -> list[str]:
    """The names at ``offsets`` (of the symbols ``kept``), within the string table's budget. The first name (in
    table order) that runs past the budget or starts outside the table is the error, as if read one by one."""
    text = strings.text
    ends = list(map(text.find, repeat("\0"), offsets))
    bad = ends.index(-1) if -1 in ends else len(ends)
    spent = sum(ends[:bad]) - sum(offsets[:bad]) if bad < len(ends) else sum(ends) - sum(offsets)
    if spent > strings.budget:
        raise MalformedElf(_NAMES_OVER_BUDGET)
    if bad < len(ends):
        raise MalformedElf(f"symbol {kept[bad]} has a name offset outside the string table")
    strings.budget -= spent
    names = list(map(text.__getitem__, map(slice, offsets, ends)))
    return list(map(sys.intern, names if strings.ascii else map(_from_latin1, names)))


def _collect_symbols(
    layout: _Layout,
    symtab: memoryview,
    versyms: array[int] | None,
    versions: dict[int, tuple[str, str | None]],
    strings: _Strings,
    refs: dict[int, _Relocations],
) -> tuple[Uses, Exports]:
    """``uses`` and ``exports`` as columns, without an object or a Python step per symbol.

    This runs once per dynamic symbol of every file scanned. Each test of the contract is a flag per non-local
    symbol, a byte each of one integer, cut from the table's bytes at C speed and combined with ``&`` and
    ``|``; the rows kept are then gathered from the columns, also at C speed."""
    kept, table = _kept_table(layout, symtab)
    try:
        return _columns_of(layout, symtab, kept, table, versyms, versions, strings, refs)
    finally:
        if isinstance(table, memoryview):
            table.release()  # a view of the file's memory: the file cannot be closed while it lives


def _columns_of(layout: _Layout, symtab: memoryview, kept: range | list[int], table: memoryview | bytes,
                versyms: array[int] | None, versions: dict[int, tuple[str, str | None]], strings: _Strings,
                refs: dict[int, _Relocations]) -> tuple[Uses, Exports]:
    """``_collect_symbols`` for the non-local symbols ``kept``, whose entries ``table`` holds."""
    count = len(kept)
    if not count:
        return NO_USES, NO_EXPORTS
    step = layout.sym_size
    with memoryview(table) as view:
        kinds = view[layout.sym_info_offset :: step].tobytes()
    kept_versyms = None if versyms is None else _gather_array(versyms, kept)
    entries = _version_entries(versyms, kept_versyms, versions)
    names = _symbol_names(strings, kept, _column(layout, table, "I", 0).tolist())
    word = layout.bits // 8
    is_defined = _nonzero(layout, table, layout.sym_shndx_offset, 2)
    defined = is_defined.to_bytes(count, "little")
    ones = int.from_bytes(b"\1" * count, "little")
    referenced = bytearray(len(symtab) // step)
    deque(map(referenced.__setitem__, refs, repeat(1)), maxlen=0)
    # An undefined GLOBAL or WEAK symbol, or any that a relocation names.
    use_flags = int.from_bytes(_gather_bytes(referenced, kept), "little") | (
        int.from_bytes(kinds.translate(_IMPORTED), "little") & (is_defined ^ ones))
    # A name, a visible version, and a value (TLS: defined is enough).
    export_flags = _nonzero_names(names) & (_nonzero(layout, table, layout.sym_value_offset, word) | (
        is_defined & int.from_bytes(kinds.translate(_TLS), "little")))
    if kept_versyms is not None:
        high = 1 if sys.byteorder == "little" else 0  # the byte that holds the hidden bit (0x8000)
        export_flags &= int.from_bytes(kept_versyms.tobytes()[high::2].translate(_VISIBLE), "little")
    positions = range(count)
    uses = list(compress(positions, use_flags.to_bytes(count, "little")))
    exports = list(compress(positions, export_flags.to_bytes(count, "little")))
    return (_use_columns(uses, kept, names, entries, kinds, defined, refs),
            _export_columns(exports, names, entries, kinds, defined, _column(layout, table, layout.word,
                                                                             layout.sym_value_offset + word)))


def _gather_array(column: array[int], kept: range | list[int]) -> array[int]:
    if isinstance(kept, range):
        return column[kept.start : kept.stop]
    return array(column.typecode, map(column.__getitem__, kept))


def _gather_bytes(column: bytes | bytearray, kept: range | list[int]) -> bytes:
    if isinstance(kept, range):
        return bytes(column[kept.start : kept.stop])
    return bytes(map(column.__getitem__, kept))


def _nonzero_names(names: list[str]) -> int:
    """A flag per name: it is not empty (nearly always: then made without looking at each)."""
    if "" not in names:
        return int.from_bytes(b"\1" * len(names), "little")
    return int.from_bytes(bytes(map(bool, names)), "little")


def _pick(values: Sequence[_T], rows: list[int]) -> tuple[_T, ...]:
    """``values`` at ``rows``, gathered at C speed."""
    if len(rows) == 1:
        return (values[rows[0]],)
    return cast(tuple[_T, ...], itemgetter(*rows)(values)) if rows else ()


def _use_columns(rows: list[int], kept: range | list[int], names: list[str], entries: list[_VersionEntry] | None,
                 kinds: bytes, defined: bytes, refs: dict[int, _Relocations]) -> Uses:
    """The ``Uses`` of the symbols at ``rows`` (positions in ``kept``): one per (name, version, binding, defined),
    in order; the first symbol gives type and library, and the relocations add up."""
    if not rows:
        return NO_USES
    rows.sort(key=names.__getitem__)  # stable: symbols of the same name stay in table order
    row_names = _pick(names, rows)
    if _has_repeated(row_names):
        entry = (lambda k: entries[k]) if entries is not None else (lambda k: _UNVERSIONED)
        return Uses.from_rows(SymbolUse(*row) for row in _merged_uses([
            (names[k], entry(k)[0], None if defined[k] else entry(k)[1], BINDING_NAMES[kinds[k] >> 4],
             TYPE_NAMES[kinds[k] & 0xF], bool(defined[k]), refs.get(kept[k], ())) for k in rows]))
    shapes = list(map(refs.get, _pick(kept, rows), repeat(())))
    table = sorted(set(shapes))
    shape_index = {shape: n for n, shape in enumerate(table)}
    row_defined = bytes(_pick(defined, rows))
    if entries is None:
        versions: tuple[str | None, ...] = (None,) * len(rows)
        libraries = versions
    else:
        row_entries = _pick(entries, rows)
        versions = tuple(map(_NAME, row_entries))
        found = list(map(_LIBRARY, row_entries))
        deque(map(found.__setitem__, compress(range(len(rows)), row_defined), repeat(None)), maxlen=0)
        libraries = tuple(found)  # a defined symbol's version is its own: it names no library
    return Uses(
        names=tuple(map(sys.intern, row_names)),  # the names files import recur in file after file: one string each
        versions=versions,
        version_libraries=libraries,
        infos=bytes(_pick(kinds, rows)),
        defined=row_defined,
        relocations=tuple(map(shape_index.__getitem__, shapes)),
        relocation_table=tuple(table),
    )


def _export_columns(rows: list[int], names: list[str], entries: list[_VersionEntry] | None, kinds: bytes,
                    defined: bytes, sizes: array[int]) -> Exports:
    """The ``Exports`` of the symbols at ``rows`` (positions in the non-local symbols), sorted by name, then
    version."""
    if not rows:
        return NO_EXPORTS
    rows.sort(key=names.__getitem__)  # names are nearly always distinct, and strings compare fastest
    if _has_repeated(_pick(names, rows)):
        def key(k: int) -> tuple[str, str, bool, str, str, int, bool]:
            version = entries[k][0] if entries is not None else None
            return (names[k], version or "", version is None, TYPE_NAMES[kinds[k] & 0xF],
                    BINDING_NAMES[kinds[k] >> 4], sizes[k], not defined[k])
        rows.sort(key=key)
    return Exports(
        names=_pick(names, rows),
        versions=(None,) * len(rows) if entries is None else tuple(map(_NAME, _pick(entries, rows))),
        infos=bytes(_pick(kinds, rows)),
        sizes=_pick(sizes, rows),
        plt_only=bytes(_pick(defined, rows)).translate(_UNDEFINED),
    )


def _merged_uses(uses: list[_UseRow]) -> list[_UseRow]:
    """One use per (name, version, binding, defined), in order; the first symbol gives type and library."""
    uses.sort(key=_use_key)
    merged: list[_UseRow] = []
    for _, group in groupby(uses, _use_key):
        first, *others = group
        if others:  # one count per type over the group: each merge costs its own size, not the total's
            counts = Counter(dict(first[6]))
            for use in others:
                counts.update(dict(use[6]))
            first = (*first[:6], tuple(sorted(counts.items())))
        merged.append(first)
    return merged


def _has_repeated(names: Sequence[str]) -> bool:
    """Whether two of ``names``, sorted, are the same."""
    return any(map(eq, names, islice(names, 1, None)))
