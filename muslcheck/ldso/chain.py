"""Symbol lookup: find_sym2 over the global chain (DL:312-341) and the LFS64 remap (get_lfs64, DL:348-376).

One global chain in load order; requested versions are never checked; a definition is visible when its
type, binding and value pass find_sym2's tests (``accepted``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from muslcheck.ldso.dso import Definition, Definitions, Dso
from muslcheck.ldso.tables import LoaderRules

_OK_TYPES = frozenset({"NOTYPE", "OBJECT", "FUNC", "COMMON", "TLS"})
_OK_BINDS = frozenset({"GLOBAL", "WEAK", "GNU_UNIQUE"})
_NOTHING: frozenset[str] = frozenset()


def accepted(definition: Definition, need_def: bool) -> bool:
    """find_sym2's test of one definition (DL:327-335); ``need_def`` for PLT relocations and the LFS64 remap."""
    type_, binding, plt_only = definition
    if plt_only and (need_def or type_ == "TLS"):
        return False
    return type_ in _OK_TYPES and binding in _OK_BINDS


def visible(exports: Definitions, name: str, need_def: bool) -> bool:
    found = exports.get(name)
    return found is not None and accepted(found, need_def)


_HOST_FUNCTION: Definition = ("FUNC", "GLOBAL", False)


class HostExports(Mapping[str, Definition]):
    """What the host program exports to the libraries it dlopens, by name prefix
    (the JVM's JNI_*/JVM_*, CPython's Py*, node's napi_*): functions found before libc."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def provided(self, names: Iterable[str]) -> set[str]:
        """Those of ``names`` the host defines."""
        return {n for n in names if n.startswith(self.prefixes)} if self.prefixes else set()

    def __getitem__(self, name: str) -> Definition:
        if not name.startswith(self.prefixes):
            raise KeyError(name)
        return _HOST_FUNCTION

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.startswith(self.prefixes)

    def get(self, name: str, default: object = None) -> Any:  # looked up for every symbol: no KeyError on a miss
        return _HOST_FUNCTION if name.startswith(self.prefixes) else default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def invisible(exports: Definitions) -> tuple[frozenset[str], frozenset[str]]:
    """The names of ``exports`` that find_sym2 skips: (in lookups that need a definition, in the others)."""
    if isinstance(exports, HostExports):
        return _NOTHING, _NOTHING  # host functions: always accepted
    kinds = set(exports.values())  # a handful of distinct (type, binding, plt_only)
    need_def, other = (frozenset(k for k in kinds if not accepted(k, need)) for need in (True, False))
    return (
        frozenset(n for n, k in exports.items() if k in need_def) if need_def else _NOTHING,
        frozenset(n for n, k in exports.items() if k in other) if other else _NOTHING,
    )


class Chain:
    """The global symbol chain of one load (head->syms_next), with each lookup done once."""

    def __init__(self, objects: list[Dso]) -> None:
        self.objects = objects
        self._found: dict[tuple[str, bool, bool], Dso | None] = {}

    def find(self, name: str, need_def: bool, skip_main: bool) -> Dso | None:
        """find_sym: the first object whose definition of ``name`` is visible; ``skip_main`` starts past the
        main program, as COPY relocations do (DL:433)."""
        key = (name, need_def, skip_main)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = None
        for d in self.objects[1:] if skip_main else self.objects:
            if name in d.exports and visible(d.exports, name, need_def):  # the membership test is the fast miss
                found = d
                break
        self._found[key] = found
        return found

    def unbound(self, names: frozenset[str], need_def: bool,
                hidden: Callable[[Dso], tuple[frozenset[str], frozenset[str]]] | None = None) -> set[str]:
        """Those of ``names`` for which ``find`` (not skipping the main program) is None, by set operations;
        ``hidden`` is ``invisible`` of an object's exports, or a cache of it."""
        remaining = set(names)
        which = 0 if need_def else 1
        for d in self.objects:
            if not remaining:
                break
            exports = d.exports
            if isinstance(exports, HostExports):
                remaining -= exports.provided(remaining)
                continue
            skipped = (hidden(d) if hidden is not None else invisible(exports))[which]
            left = remaining.difference(exports)  # iterates over the (few) remaining names, not the definitions
            remaining = left.union(remaining.intersection(skipped)) if skipped else left
        return remaining


def lfs64_base(name: str, rules: LoaderRules, libc_exports: Definitions) -> str | None:
    """get_lfs64 (DL:348): the libc NAME that NAME64 binds to after a failed lookup, else None."""
    if not rules.lfs64 or len(name) > rules.lfs64_name_max:
        return None
    if name == "readdir64_r":
        base = "readdir_r" if rules.readdir64_r else None
    elif name.endswith("64") and name[:-2] in rules.lfs64:
        base = name[:-2]
    else:
        return None
    return base if base is not None and visible(libc_exports, base, True) else None
