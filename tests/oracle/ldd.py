"""The musl loader in ``--list`` (ldd) mode: a pure parser of its output, and the run."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.oracle.sandbox import run_loader

_LOADED = re.compile(r"\t(?P<name>.+) => (?P<path>.+) \(\S+\)")
_SELF = re.compile(r"\t(?P<name>.+) \(\S+\)")
_NOT_FOUND = re.compile(r"Error relocating (?P<file>.+): (?P<sym>\S+): symbol not found")
_TLS = re.compile(r"Error relocating (?P<file>.+?): (?P<sym>\S+): initial-exec TLS resolves to "
                  r"dynamic definition in (?P<definer>.+)")
_RELOC = re.compile(r"Error relocating (?P<file>.+): unsupported relocation type (?P<type>\d+)")
_LIB_NEEDED = re.compile(r"Error loading shared library (?P<name>.+?): (?P<why>.+) \(needed by (?P<by>.+)\)")
_LIB = re.compile(r"Error loading shared library (?P<name>.+?): (?P<why>.+)")


@dataclass(frozen=True)
class LoaderReport:
    """What one run of the loader said. ``needed_by`` is "" for a library dlopen-ed directly."""

    missing_libraries: frozenset[tuple[str, str]] = frozenset()  # (name, needed_by)
    library_errors: frozenset[tuple[str, str, str]] = frozenset()  # (name, needed_by, strerror text)
    unresolved_symbols: frozenset[tuple[str, str]] = frozenset()  # (file, symbol)
    unsupported_relocations: frozenset[tuple[str, int]] = frozenset()  # (file, type)
    unsupported_relocation_counts: tuple[tuple[tuple[str, int], int], ...] = ()
    tls_errors: frozenset[tuple[str, str, str]] = frozenset()  # (file, symbol, defining file)
    other_errors: tuple[str, ...] = ()
    loaded: tuple[tuple[str, str], ...] = ()  # (name, path) in the order printed
    loader_name: str | None = None  # the first ldd line: the interpreter the loader stands in for

    @property
    def clean(self) -> bool:
        return not (self.missing_libraries or self.unresolved_symbols or self.unsupported_relocations
                    or self.tls_errors or self.other_errors)

    def unresolved_in(self, file_suffix: str) -> frozenset[str]:
        """Unresolved symbol names in files whose path ends with ``file_suffix``."""
        return frozenset(s for f, s in self.unresolved_symbols if f.endswith(file_suffix))


def parse_loader_output(text: str) -> LoaderReport:
    missing: set[tuple[str, str]] = set()
    lib_errors: set[tuple[str, str, str]] = set()
    unresolved: set[tuple[str, str]] = set()
    relocs: Counter[tuple[str, int]] = Counter()
    tls: set[tuple[str, str, str]] = set()
    other: list[str] = []
    loaded: list[tuple[str, str]] = []
    loader_name = None
    for line in text.splitlines():
        if m := _LOADED.fullmatch(line):
            loaded.append((m["name"], m["path"]))
        elif m := _SELF.fullmatch(line):
            loader_name = m["name"]
        elif m := _NOT_FOUND.fullmatch(line):
            unresolved.add((m["file"], m["sym"]))
        elif m := _TLS.fullmatch(line):
            tls.add((m["file"], m["sym"], m["definer"]))
        elif m := _RELOC.fullmatch(line):
            relocs[m["file"], int(m["type"])] += 1
        elif m := _LIB_NEEDED.fullmatch(line) or _LIB.fullmatch(line):
            by = m.groupdict().get("by") or ""
            missing.add((m["name"], by))
            lib_errors.add((m["name"], by, m["why"]))
        elif line.strip():
            other.append(line)
    return LoaderReport(
        missing_libraries=frozenset(missing),
        library_errors=frozenset(lib_errors),
        unresolved_symbols=frozenset(unresolved),
        unsupported_relocations=frozenset(relocs),
        unsupported_relocation_counts=tuple(sorted(relocs.items())),
        tls_errors=frozenset(tls),
        other_errors=tuple(other),
        loaded=tuple(loaded),
        loader_name=loader_name,
    )


def run_list(loader: Path, file: Path, *, path_file: str | None = "",
             env_library_path: str | None = None, arch: str = "x86_64",
             runner: tuple[str, ...] = ()) -> tuple[int, LoaderReport, str]:
    """``loader --list FILE`` in the sandbox (see sandbox.py for ``path_file``).

    Returns (exit status, parsed report, raw output): 0 when clean, 127 after load errors.
    """
    rc, text = run_loader(loader, ["--list", str(Path(file).absolute())], path_file=path_file,
                          env_library_path=env_library_path, arch=arch, runner=runner)
    return rc, parse_loader_output(text), text
