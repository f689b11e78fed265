"""do_relocs (DL:382-560) for one object against a load's symbol chain, collecting every error musl would print.

The rules live in ``unbound_effect`` and ``relocate_use``. ``relocate`` applies them to every use of a file;
``RelocationMemo`` only decides which uses need a fresh walk and remembers outcomes, it never re-decides them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import compress

from muslcheck.elf import ElfFacts, relocation_name
from muslcheck.elf.facts import STB_WEAK, Uses
from muslcheck.ldso.chain import Chain, HostExports, invisible, lfs64_base
from muslcheck.ldso.dso import NO_DEFINITIONS, Definitions, Dso
from muslcheck.ldso.lru import Bounded
from muslcheck.ldso.results import Effect, TlsError, UnresolvedSymbol
from muslcheck.ldso.tables import LoaderRules, version_key

# musl's relocation classes: arch/<arch>/reloc.h maps REL_<class> onto type numbers (cited below as "RH:n", a
# line of that file at musl 1.2.5; the same at 1.2.2-1.2.6 except RELOC_SINCE). Type 0 is REL_NONE everywhere
# (src/internal/dynlink.h). A type not listed is "unsupported relocation type N" (DL:553), IRELATIVE included.
# Read them per version with ``reloc_classes``.
RELOC_CLASSES: dict[str, dict[int, str]] = {
    "x86_64": {  # RH:3-12
        0: "NONE", 1: "SYMBOLIC", 2: "OFFSET32", 5: "COPY", 6: "GOT", 7: "PLT", 8: "RELATIVE",
        16: "DTPMOD", 17: "DTPOFF", 18: "TPOFF", 36: "TLSDESC",
    },
    "aarch64": {  # RH:13-21
        0: "NONE", 257: "SYMBOLIC", 1024: "COPY", 1025: "GOT", 1026: "PLT", 1027: "RELATIVE",
        1028: "DTPMOD", 1029: "DTPOFF", 1030: "TPOFF", 1031: "TLSDESC",
    },
    "i386": {  # RH:3-13; DT_REL: the addend is read in place
        0: "NONE", 1: "SYMBOLIC", 2: "OFFSET", 5: "COPY", 6: "GOT", 7: "PLT", 8: "RELATIVE",
        35: "DTPMOD", 36: "DTPOFF", 14: "TPOFF", 37: "TPOFF_NEG", 41: "TLSDESC",
    },
    "arm": {  # RH:19-27; DT_REL
        0: "NONE", 2: "SYMBOLIC", 20: "COPY", 21: "GOT", 22: "PLT", 23: "RELATIVE",
        17: "DTPMOD", 18: "DTPOFF", 19: "TPOFF", 13: "TLSDESC",
    },
    "ppc64": {  # RH:11-19 (no TLSDESC)
        0: "NONE", 38: "SYMBOLIC", 43: "USYMBOLIC", 19: "COPY", 20: "GOT", 21: "PLT", 22: "RELATIVE",
        68: "DTPMOD", 78: "DTPOFF", 73: "TPOFF",
    },
    "s390x": {  # RH:3-10 (no TLSDESC)
        0: "NONE", 22: "SYMBOLIC", 9: "COPY", 10: "GOT", 11: "PLT", 12: "RELATIVE",
        54: "DTPMOD", 55: "DTPOFF", 56: "TPOFF",
    },
    "riscv64": {  # RH:13-20. No REL_GOT: GOT slots are R_RISCV_64, never deferred. TLSDESC: see RELOC_SINCE
        0: "NONE", 2: "SYMBOLIC", 4: "COPY", 5: "PLT", 3: "RELATIVE",
        7: "DTPMOD", 9: "DTPOFF", 11: "TPOFF", 12: "TLSDESC",
    },
}
# The one place that says which (machine, type) a musl release maps first: before it, the type reaches
# do_relocs' default case (DL:553), looked up like any other, then "unsupported relocation type N".
# Checked with `git log -- arch/*/reloc.h` from v1.2.2 to master: no other Alpine architecture changed.
RELOC_SINCE: dict[tuple[str, int], str] = {
    # R_RISCV_TLSDESC: musl commit 407aea62 "riscv: add TLSDESC support" (2024-02-03), first tagged v1.2.5.
    ("riscv64", 12): "1.2.5",
}


@cache
def reloc_classes(machine: str, version: str) -> dict[int, str]:
    """``RELOC_CLASSES[machine]`` as musl ``version``'s reloc.h maps them (shared: do not modify)."""
    at = version_key(version)
    return {rtype: cls for rtype, cls in RELOC_CLASSES.get(machine, {}).items()
            if (since := RELOC_SINCE.get((machine, rtype))) is None or version_key(since) <= at}


@cache
def _withheld(machine: str, version: str) -> tuple[int, ...]:
    """The types of ``machine`` that ``version`` does not map yet: what makes its classes differ from the newest."""
    return tuple(sorted(rtype for (m, rtype), since in RELOC_SINCE.items()
                        if m == machine and version_key(since) > version_key(version)))


_DEFERRABLE = frozenset({"PLT", "GOT"})  # what RTLD_LAZY defers (DL:438)

Finder = Callable[[str, bool, bool], Dso | None]  # (name, need_def, skip_main) -> the definer


def lookup(cls: str | None) -> tuple[bool, bool]:
    """find_sym's arguments for a relocation of class ``cls`` (DL:432-434): (need_def, skip_main).
    A PLT slot needs a definition; a COPY is looked up past the main program."""
    return cls == "PLT", cls == "COPY"




@cache
def _types(machine: str, version: str) -> dict[int, tuple[str | None, bool, bool]]:
    """Relocation type -> (class, need_def, skip_main): ``lookup`` applied once to each class."""
    return {rtype: (cls, *lookup(cls)) for rtype, cls in reloc_classes(machine, version).items()}


_UNSUPPORTED: tuple[str | None, bool, bool] = (None, *lookup(None))
_TPOFF = frozenset({"TPOFF", "TPOFF_NEG"})  # initial-exec TLS, checked against the definer (DL:459-464)
_NULL, _LATENT, _FATAL = Effect.NULL, Effect.LATENT, Effect.FATAL  # read once: Effect.X is a slow descriptor
_SEVERITY = {_NULL: 0, _LATENT: 1, _FATAL: 2}


def unbound_effect(weak_undefined: bool, cls: str | None, lazy: bool, called_at_init: bool = False) -> Effect:
    """A relocation of class ``cls`` that no object binds, nor the LFS64 remap (DL:436-446); ``weak_undefined``:
    the symbol is an undefined WEAK reference. ``called_at_init``: the object's DT_INIT or DT_INIT_ARRAY calls the
    name through its slot (``ElfFacts.constructor_calls``)."""
    if weak_undefined:
        return _NULL  # binds to 0, then the type is applied
    if lazy and cls in _DEFERRABLE:
        # Deferred to the first call (DL:438-443); a constructor makes that call inside dlopen (do_init_fini), through
        # the slot as the file holds it: dlopen itself crashes.
        return _FATAL if called_at_init else _LATENT
    return _FATAL  # "symbol not found"


# What do_relocs reports for the relocations that name one use: (its unresolved symbol, the unsupported
# (type, count), the initial-exec TLS errors, whether get_lfs64 bound it). A plain tuple: made at every walk.
UseOutcome = tuple[UnresolvedSymbol | None, tuple[tuple[int, int], ...], tuple[TlsError, ...], bool]
_BOUND: UseOutcome = (None, (), (), False)
_REMAPPED: UseOutcome = (None, (), (), True)


def relocate_use(uses: Uses, i: int, machine: str, version: str, lazy: bool, find: Finder | None,
                 lfs64: Callable[[str], Dso | None] | None, called_at_init: bool = False) -> UseOutcome:
    """do_relocs' walk over the relocations that name use ``i`` of ``uses`` (DL:409-560), by musl ``version``'s
    classes: each is looked up (``find``, then ``lfs64``; None when nothing binds it); unbound, it takes
    ``unbound_effect``; bound or nulled, its type is applied."""
    types = _types(machine, version)
    name = uses.names[i]
    weak_undefined = uses.weak_undefined(i)
    at_init = False
    unbound: list[str] = []
    worst = _NULL
    unsupported: tuple[tuple[int, int], ...] = ()  # both rare: no list made for them
    tls_errors: tuple[TlsError, ...] = ()
    remapped = False
    for rtype, count in uses.relocations_of(i):
        cls, need_def, skip_main = types.get(rtype, _UNSUPPORTED)
        if cls == "NONE":
            continue  # never looked up (DL:410)
        definer = find(name, need_def, skip_main) if find is not None else None
        if definer is None and lfs64 is not None and (definer := lfs64(name)) is not None:
            remapped = True
        if definer is None:
            effect = unbound_effect(weak_undefined, cls, lazy, called_at_init)
            at_init |= lazy and called_at_init and cls in _DEFERRABLE and effect is _FATAL
            unbound.append(relocation_name(machine, rtype))
            if _SEVERITY[effect] > _SEVERITY[worst]:
                worst = effect
            if effect is not _NULL:
                continue  # deferred, or an error: the relocation is not applied
        if cls is None:
            unsupported += ((rtype, count),)  # "unsupported relocation type" (DL:553-556)
        elif cls in _TPOFF and definer is not None and definer.dynamic_tls:
            tls_errors += (TlsError(name, definer.path),)  # initial-exec TLS, dynamic definer (DL:459-464)
    if not (unbound or unsupported or tls_errors):
        return _REMAPPED if remapped else _BOUND
    return _unresolved(uses, i, unbound, worst, at_init) if unbound else None, unsupported, tls_errors, remapped


def _unresolved(uses: Uses, i: int, relocations: list[str], effect: Effect, at_init: bool) -> UnresolvedSymbol:
    names = (relocations[0],) if len(relocations) == 1 else tuple(sorted(set(relocations)))
    return _symbol(uses, i, names, effect, at_init)


def _symbol(uses: Uses, i: int, relocations: tuple[str, ...], effect: Effect, at_init: bool) -> UnresolvedSymbol:
    return UnresolvedSymbol(uses.names[i], uses.versions[i], uses.version_libraries[i],
                            uses.infos[i] >> 4 == STB_WEAK, relocations, effect, at_init)


# A plain use none of whose relocations binds: what ``relocate_use`` reports depends only on these, not on the
# use: (machine, version, its relocations, undefined weak, lazy, called at init) -> (relocation names, the worst
# effect, whether a constructor's call made it fatal). Shared by every file.
_UNBOUND: Bounded[tuple[object, ...], tuple[tuple[str, ...], Effect, bool]] = Bounded(4096)


def _unbound(facts: ElfFacts, i: int, version: str, lazy: bool) -> UnresolvedSymbol:
    uses = facts.uses
    at_init = uses.names[i] in facts.constructor_calls
    key = (facts.machine, version, uses.relocations_of(i), uses.weak_undefined(i), lazy, at_init)
    found = _UNBOUND.get(key)
    if found is None:
        failed = relocate_use(uses, i, facts.machine, version, lazy, None, None, at_init)[0]
        assert failed is not None
        found = _UNBOUND.put(key, (failed.relocations, failed.effect, failed.called_at_init))
    return _symbol(uses, i, *found)


@dataclass(frozen=True, slots=True)
class Relocated:
    """What do_relocs finds for one object: the part of a LoadedObject that depends on the symbol chain."""

    unresolved: tuple[UnresolvedSymbol, ...]
    unsupported_relocations: tuple[tuple[int, int], ...]
    tls_errors: tuple[TlsError, ...]
    lfs64_remapped: tuple[str, ...]


def relocate(chain: Chain, dso: Dso, lazy: bool, rules: LoaderRules, libc: Dso,
             memo: RelocationMemo) -> Relocated:
    """do_relocs for ``dso`` (with facts) against ``chain``; ``lazy`` under RTLD_LAZY for an object not bound now.

    Only the uses that ``memo``'s plan cannot settle by set operations are walked: the special ones, and the
    plain names no object binds (their outcome, fixed once the lookup fails, is remembered)."""
    facts = dso.facts
    assert facts is not None and (facts.constructors_read or not lazy or not facts.symbols_read)
    plan = memo.plan(dso.identity, facts, rules.version)
    unbound: set[str] = set()
    for need_def, names in plan.plain.items():
        unbound |= chain.unbound(names, need_def, memo.invisible_of)

    libc_exports = libc.exports

    def lfs64(name: str) -> Dso | None:
        return libc if lfs64_base(name, rules, libc_exports) else None

    unresolved: list[UnresolvedSymbol] = []
    unsupported: Counter[int] = Counter()
    tls_errors: list[TlsError] = []
    remapped: set[str] = set()
    plain, uses, use_names, machine = plan.plain_indices, facts.uses, facts.uses.names, facts.machine
    for i in sorted((*plan.special, *(i for name in unbound for i in plan.plain_uses[name]))):
        name = use_names[i]
        if i in plain:
            outcome = plan.unbound_outcome(i, facts, rules.version, lazy, lfs64(name))
        else:
            outcome = relocate_use(uses, i, machine, rules.version, lazy, chain.find, lfs64,
                                   name in facts.constructor_calls)
        failed, bad_types, tls, lfs64_bound = outcome
        if failed is not None:
            unresolved.append(failed)
        for rtype, count in bad_types:
            unsupported[rtype] += count
        if tls:
            tls_errors.extend(tls)
        if lfs64_bound:
            remapped.add(name)
    classes = reloc_classes(machine, rules.version)
    for rtype, count in facts.relocations:  # those that name no symbol (or a local one): only the type matters
        rest = count - plan.with_symbol.get(rtype, 0)
        if rest > 0 and rtype not in classes:
            unsupported[rtype] += rest
    if facts.tls_relocations_local and dso.dynamic_tls:
        tls_errors.append(TlsError(None, dso.path))
    return Relocated(
        unresolved=tuple(sorted(unresolved, key=lambda u: (u.name, u.version or ""))),
        unsupported_relocations=tuple(sorted(unsupported.items())),
        tls_errors=tuple(tls_errors), lfs64_remapped=tuple(sorted(remapped)),
    )


# Classes whose relocation, once its symbol is bound, reports nothing whichever object binds it: not COPY
# (looked up past the main program), TPOFF and TPOFF_NEG (their TLS check looks at the definer), NONE (never
# looked up), and not an unsupported type.
_DEFINER_FREE = frozenset({"SYMBOLIC", "USYMBOLIC", "OFFSET", "OFFSET32", "GOT", "PLT", "RELATIVE", "DTPMOD",
                           "DTPOFF", "TLSDESC"})
_PLAIN_LOOKUPS = frozenset(lookup(c) for c in _DEFINER_FREE)  # none skips the main program, as Chain.unbound


def _lane(kinds: set[str | None]) -> tuple[bool, bool] | str:
    """How a use whose relocations have these classes can be settled: "" when it has none (never looked up),
    its one lookup (need_def, skip_main) when only that lookup's success matters, else "special" (walked)."""
    if not kinds:
        return ""
    lookups = {lookup(k) for k in kinds}
    if len(lookups) == 1 and kinds <= _DEFINER_FREE:
        return lookups.pop()
    return "special"


@dataclass(frozen=True)
class _Plan:
    """How ``relocate`` treats one file's uses, whatever the chain: most uses only matter when unbound."""

    with_symbol: dict[int, int]  # relocation type -> count, over the relocations that name a symbol
    plain: dict[bool, frozenset[str]]  # need_def -> the names whose relocations all take that one lookup
    plain_uses: dict[str, tuple[int, ...]]  # plain name -> the indices of its uses
    special: tuple[int, ...]  # uses walked one by one every time (COPY, TPOFF, NONE, unsupported, mixed)
    _outcomes: dict[tuple[int, bool], UseOutcome] = field(default_factory=dict, compare=False)

    @cached_property
    def plain_indices(self) -> frozenset[int]:
        return frozenset(i for uses in self.plain_uses.values() for i in uses)

    def unbound_outcome(self, i: int, facts: ElfFacts, version: str, lazy: bool, remap: Dso | None) -> UseOutcome:
        """``relocate_use`` for plain use ``i`` when its lookup fails; ``remap`` is what get_lfs64 binds it to.
        Remembered: for plain classes the outcome does not depend on which object ``remap`` is, and a plan
        serves only the versions whose classes it was made from (``RelocationMemo.plan``)."""
        if remap is not None:
            return _REMAPPED  # get_lfs64 binds each of its (plain, definer-free) relocations
        key = (i, lazy)
        found = self._outcomes.get(key)
        if found is None:
            found = self._outcomes[key] = (_unbound(facts, i, version, lazy), (), (), False)
        return found

    @classmethod
    def of(cls, facts: ElfFacts, version: str) -> _Plan:
        """The plan of ``facts``' uses under musl ``version``'s classes, made from their columns: each use's
        lane is a byte, and the uses of a lane are picked out at C speed."""
        classes = reloc_classes(facts.machine, version)
        uses = facts.uses
        names, table, shapes = uses.names, uses.relocation_table, uses.relocations
        with_symbol: Counter[int] = Counter()
        for shape, n in Counter(shapes).items():
            for rtype, count in table[shape]:
                with_symbol[rtype] += count * n
        lookups = tuple(_PLAIN_LOOKUPS)
        # Per shape, its lane as a byte: 0 no relocation (never looked up), 1 special, 2 + k plain lookup k.
        lane_of_shape = bytes(_lane_code(_lane({classes.get(rtype) for rtype, _ in shape}), lookups)
                              for shape in table)
        lanes = bytes(map(lane_of_shape.__getitem__, shapes))
        rows = range(len(uses))
        special = list(compress(rows, lanes.translate(_IS_CODE[1])))
        plain = [(lookup_k, _by_name(names, list(compress(rows, lanes.translate(_IS_CODE[2 + k])))))
                 for k, lookup_k in enumerate(lookups)]
        for k, (_, by_name) in enumerate(plain):  # one name under two lookups: walk it exactly
            for _, others in plain[k + 1:]:
                for name in by_name.keys() & others.keys():
                    special.extend((*by_name.pop(name), *others.pop(name)))
        return cls(
            with_symbol=dict(with_symbol),
            plain={need_def: frozenset(by_name) for (need_def, _), by_name in plain},
            plain_uses={n: v for _, by_name in plain for n, v in by_name.items()},
            special=tuple(special),
        )


_IS_CODE = tuple(bytes(value == code for value in range(256)) for code in range(8))  # bytes.translate tables


def _lane_code(lane: tuple[bool, bool] | str, lookups: tuple[tuple[bool, bool], ...]) -> int:
    if lane == "":
        return 0
    return 2 + lookups.index(lane) if lane in lookups else 1


def _by_name(names: tuple[str, ...], rows: list[int]) -> dict[str, tuple[int, ...]]:
    """``rows`` (of a file's uses) by their names (a name has several rows when versions or bindings differ)."""
    keys = list(map(names.__getitem__, rows))
    if len(set(keys)) == len(keys):
        return dict(zip(keys, zip(rows), strict=True))  # one row each: (row,)
    grouped: dict[str, list[int]] = {}
    for name, row in zip(keys, rows, strict=True):
        grouped.setdefault(name, []).append(row)
    return {name: tuple(found) for name, found in grouped.items()}


# A loaded file, for the memo: its identity (an inode, an archive member...; one identity is one file's facts in
# a scan) and whether its symbols were read (a header-only read has none).
FileKey = tuple[object, bool]
# A plan's key: the file, and the types its machine's classes withhold at the version (``_withheld``), so that
# the versions whose classes agree share one plan.
PlanKey = tuple[object, bool, tuple[int, ...]]


class RelocationMemo:
    """What the loads of one scan share: each file's plan, and do_relocs results. A library relocated against the
    same definers of its names (in the same order) fails the same way, whichever program loaded it.

    Memory stays flat in the number of files: a file is known by its identity (``FileKey``), never by the ``id()``
    of facts that would have to be kept alive, and every table is bounded (least recently used first out). The
    few mappings that no file backs (libc's table, gcompat's, a host's) are known by their ``id()`` and kept alive
    in ``_lasting`` while a result may name them."""

    PLANS = 1024
    RESULTS = 2048
    RELEVANT = 1 << 16
    INVISIBLE = 4096
    LASTING = 256

    def __init__(self) -> None:
        self._results: Bounded[tuple[object, ...], Relocated] = Bounded(self.RESULTS)
        self._relevant: Bounded[tuple[Hashable, FileKey], bool] = Bounded(self.RELEVANT)
        self._plans: Bounded[PlanKey, _Plan] = Bounded(self.PLANS)
        self._invisible: Bounded[Hashable, tuple[frozenset[str], frozenset[str]]] = Bounded(self.INVISIBLE)
        self._lasting: dict[int, Definitions] = {}
        self._hosts: dict[tuple[str, ...], HostExports] = {}

    def relocate(self, chain: Chain, dso: Dso, lazy: bool, rules: LoaderRules, libc: Dso) -> Relocated:
        """``relocate``, remembered by what its outcome depends on."""
        key = self._key(chain, dso, lazy, rules, libc)
        found = self._results.get(key)
        if found is None:
            found = self._results.put(key, relocate(chain, dso, lazy, rules, libc, self))
        return found

    def host_exports(self, prefixes: tuple[str, ...]) -> Definitions:
        """One lasting HostExports per set of prefixes, so the results that name it are shared."""
        if not prefixes:
            return NO_DEFINITIONS
        found = self._hosts.get(prefixes)
        if found is None:
            if len(self._hosts) >= self.LASTING:
                self._hosts.clear()
            found = self._hosts[prefixes] = HostExports(prefixes)
        return found

    def plan(self, identity: object, facts: ElfFacts, version: str) -> _Plan:
        key = (identity, facts.symbols_read, _withheld(facts.machine, version))
        found = self._plans.get(key)
        if found is None:
            found = self._plans.put(key, _Plan.of(facts, version))
        return found

    def invisible_of(self, dso: Dso) -> tuple[frozenset[str], frozenset[str]]:
        """``chain.invisible`` of ``dso``'s exports, remembered by the object's ``exports_key``."""
        key = self.exports_key(dso)
        found = self._invisible.get(key)
        if found is None:
            found = self._invisible.put(key, invisible(dso.exports))
        return found

    def exports_key(self, dso: Dso) -> Hashable:
        """What ``dso``'s exports are known by: its file, or the lasting mapping that no file backs."""
        if dso.facts is not None:
            return (dso.identity, dso.facts.symbols_read)
        exports = dso.exports
        if self._lasting.get(id(exports)) is not exports:
            if len(self._lasting) >= self.LASTING:  # rare: many targets. Results may name a dropped id: drop them too
                self._lasting.clear()
                self._results.clear()
                self._relevant.clear()
                self._invisible.clear()
            self._lasting[id(exports)] = exports
        return id(exports)

    def _key(self, chain: Chain, dso: Dso, lazy: bool, rules: LoaderRules, libc: Dso) -> tuple[object, ...]:
        """Everything ``relocate`` reads: the file, its name and TLS, the mode, the rules (the remap's, and the
        version's relocation classes), libc's table, and of each object that defines one of its names: whether it
        is the main program (skipped by COPY), its name (in TLS errors), its definitions and whether its TLS is
        dynamic."""
        facts = dso.facts
        assert facts is not None
        me: FileKey = (dso.identity, facts.symbols_read)
        names = facts.uses.name_set
        definers = tuple(  # none for a file with no names (header facts): no walk of a long chain
            (i == 0, o.path, key, o.dynamic_tls)
            for i, o in enumerate(chain.objects) if self._defines_any(key := self.exports_key(o), o, me, names)
        ) if names else ()
        return (me, dso.path, dso.dynamic_tls, lazy, id(rules), rules.version, self.exports_key(libc),
                definers)

    def _defines_any(self, key: Hashable, definer: Dso, me: FileKey, names: frozenset[str]) -> bool:
        pair = (key, me)
        found = self._relevant.get(pair)
        if found is None:
            exports = definer.exports
            if isinstance(exports, HostExports):
                found = bool(exports.provided(names))
            else:
                found = not names.isdisjoint(exports.keys())
            self._relevant.put(pair, found)
        return found
