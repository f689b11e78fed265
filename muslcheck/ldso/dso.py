"""An object in a simulated process's load list (musl's ``struct dso``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from muslcheck.elf import ElfFacts

# What find_sym2 checks of a definition (DL:327-335): (type, binding, plt_only), plt_only being
# st_shndx == SHN_UNDEF with a non-zero value (an executable's canonical PLT address).
Definition = tuple[str, str, bool]
Definitions = Mapping[str, Definition]
# What an object that defines nothing exports: one lasting mapping, so memos keyed by its id stay right.
NO_DEFINITIONS: Definitions = MappingProxyType({})


@dataclass(eq=False, slots=True)  # an object in the load list is itself, whatever its fields
class Dso:
    path: str
    requested_as: str
    found_by: str
    links: tuple[str, ...]
    identity: object
    needed_by: Dso | None
    runtime_loaded: bool
    facts: ElfFacts | None = None
    exports: Definitions = field(default_factory=lambda: NO_DEFINITIONS)  # name -> its first definition
    is_libc: bool = False
    shortname: str | None = None
    deps_loaded: bool = False

    @property
    def dynamic_tls(self) -> bool:
        """Its TLS id is above static_tls_cnt: it has TLS and came in through dlopen (DL:460)."""
        return self.runtime_loaded and self.facts is not None and self.facts.has_tls


def definitions(facts: ElfFacts) -> dict[str, Definition]:
    """The first definition of each name ``facts`` exports."""
    visible: dict[str, Definition] = {}
    for e in facts.exports:
        visible.setdefault(e.name, (e.type, e.binding, e.plt_only))
    return visible
