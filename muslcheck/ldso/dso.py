"""An object in a simulated process's load list (musl's ``struct dso``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from muslcheck.elf import ElfFacts
from muslcheck.elf.facts import Definition as Definition

Definitions = Mapping[str, Definition]  # name -> its first definition: (type, binding, plt_only)
# What an object that defines nothing exports: one lasting mapping.
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


def definitions(facts: ElfFacts) -> Definitions:
    """The first definition of each name ``facts`` exports (made once per facts, by ``Exports``)."""
    return facts.exports.definitions
