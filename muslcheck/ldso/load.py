"""A model of musl's dynamic linker (ldso/dynlink.c), run over a root filesystem.

It follows the real loader step by step, without executing anything:
``load_library`` (reserved names, search order, inode dedup, the glibc-libc
substitution), ``load_deps`` (breadth-first over the load list),
``find_sym2`` (one global chain, no version matching, hidden/IFUNC/zero
definitions invisible), ``get_lfs64`` and ``do_relocs`` (per relocation type,
with lazy deferral of GOT/PLT relocations under RTLD_LAZY and the
initial-exec TLS check for modules loaded after start-up).
Line references ("DL:n") are to ldso/dynlink.c of musl 1.2.5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from itertools import compress
from typing import Any

from muslcheck.elf import ElfFacts, SymbolUse, relocation_name
from muslcheck.ldso.facts import FactsCache, NotLoadable
from muslcheck.ldso.tables import Gcompat, LoaderRules, MuslExports
from muslcheck.ldso.tree import Resolved, RootFS, join, parent
from muslcheck.model.options import Context


class Effect(StrEnum):
    FATAL = "fatal"  # the load fails ("Error relocating ...: symbol not found")
    LATENT = "latent"  # deferred under RTLD_LAZY: loads, then crashes on first call
    NULL = "null"  # weak undefined: resolves to 0 silently


# musl's relocation classes (arch/*/reloc.h). A type not listed is "unsupported".
_RELOC_CLASSES: dict[str, dict[int, str]] = {
    "x86_64": {
        0: "NONE", 1: "SYMBOLIC", 2: "OFFSET32", 5: "COPY", 6: "GOT", 7: "PLT", 8: "RELATIVE",
        16: "DTPMOD", 17: "DTPOFF", 18: "TPOFF", 36: "TLSDESC",
    },
    "aarch64": {
        0: "NONE", 257: "SYMBOLIC", 1024: "COPY", 1025: "GOT", 1026: "PLT", 1027: "RELATIVE",
        1028: "DTPMOD", 1029: "DTPOFF", 1030: "TPOFF", 1031: "TLSDESC",
    },
}
REPLACED = "replaced on Alpine: owned by"  # a library of the OS packages the new base image replaces
_OK_TYPES = frozenset({"NOTYPE", "OBJECT", "FUNC", "COMMON", "TLS"})
_OK_BINDS = frozenset({"GLOBAL", "WEAK", "GNU_UNIQUE"})


_LIBC_EXPORTS: dict[int, tuple[MuslExports, dict[str, tuple[str, str, bool]]]] = {}


@dataclass(frozen=True)
class Target:
    """The musl system the file is loaded into."""

    arch: str
    musl: MuslExports
    rules: LoaderRules
    gcompat: Gcompat | None = None  # installed on the target: its files exist, its stub serves glibc programs
    library_path: str | None = None  # LD_LIBRARY_PATH
    preload: tuple[str, ...] = ()  # LD_PRELOAD
    replaced: Mapping[str, str] = field(default_factory=dict)  # path -> the OS package that Alpine's replaces

    @property
    def ldso_path(self) -> str:
        return "/lib/" + self.rules.ldso_names[self.arch]

    @cached_property
    def libc_exports(self) -> dict[str, tuple[str, str, bool]]:
        """One dict per musl table, shared by the targets built on it (so relocation results are too)."""
        entry = _LIBC_EXPORTS.get(id(self.musl))  # the entry keeps the table alive, so the id is not reused
        if entry is None:
            exports = {n: (d.type, d.binding, False) for n, d in self.musl.symbols.items()}
            entry = _LIBC_EXPORTS[id(self.musl)] = (self.musl, exports)
        return entry[1]

    @cached_property
    def virtual_files(self) -> dict[str, _Virtual]:
        """What an Alpine base provides at fixed paths, besides the scanned tree."""
        files = {self.ldso_path: _Virtual("libc")}
        files["/lib/libc.musl-" + self.ldso_path.removeprefix("/lib/ld-musl-")] = _Virtual("libc")
        gc = self.gcompat
        if gc is not None:
            files[gc.preload] = _Virtual("gcompat")
            for link in gc.libc_links:
                files[join(parent(gc.preload), link)] = _Virtual("gcompat")
            stub = gc.loader_paths.get(self.arch)
            if stub:
                files["/lib/" + stub.rsplit("/", 1)[-1]] = _Virtual("stub")
        return files

    @cached_property
    def gcompat_exports(self) -> dict[str, tuple[str, str, bool]]:
        return {n: ("FUNC", "GLOBAL", False) for n in self.gcompat.symbols_for(self.arch)} if self.gcompat else {}


_HOST_FUNCTION = ("FUNC", "GLOBAL", False)


class HostExports(Mapping[str, tuple[str, str, bool]]):
    """What the host program exports to the libraries it dlopens, by name prefix
    (the JVM's JNI_*/JVM_*, CPython's Py*, node's napi_*): functions found before libc."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def __getitem__(self, name: str) -> tuple[str, str, bool]:
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


@dataclass(frozen=True)
class UnresolvedSymbol:
    name: str
    version: str | None
    version_library: str | None
    weak: bool
    relocations: tuple[str, ...]  # relocation type names that failed to bind
    effect: Effect


@dataclass(frozen=True)
class MissingLibrary:
    name: str
    needed_by: str
    reason: str  # musl's %m: "No such file or directory", "Exec format error", ...


@dataclass(frozen=True)
class TlsError:
    symbol: str | None  # None for a relocation against the object's own TLS
    definer: str


@dataclass(frozen=True)
class LoadedObject:
    path: str  # the name the loader gave it: the searched path, or the ldso name for libc
    identity: object  # the inode (or a virtual key): what the scan matches files by
    requested_as: str  # the DT_NEEDED / preload / dlopen name that brought it in
    found_by: str  # how the search found it ("rpath of /app/bin/x", "default path", "libc", ...)
    links: tuple[str, ...]  # symbolic links followed to reach the file
    is_libc: bool
    facts: ElfFacts | None  # None for musl's libc and gcompat (tables, not files)
    runtime_loaded: bool
    unresolved: tuple[UnresolvedSymbol, ...] = ()
    unsupported_relocations: tuple[tuple[int, int], ...] = ()  # (type, count)
    tls_errors: tuple[TlsError, ...] = ()
    lfs64_remapped: tuple[str, ...] = ()  # NAME64 bound to NAME by the loader's remap
    wrong_arch: str | None = None  # the machine, when it is not the target's


@dataclass(frozen=True)
class LoadResult:
    context: Context
    ldso_name: str
    objects: tuple[LoadedObject, ...]  # load order (also the global symbol order)
    missing: tuple[MissingLibrary, ...]
    relr_unsupported: tuple[str, ...]  # objects with DT_RELR on a musl that ignores it


@dataclass(eq=False)  # an object in the load list is itself, whatever its fields
class _Dso:
    path: str
    requested_as: str
    found_by: str
    links: tuple[str, ...]
    identity: object
    needed_by: _Dso | None
    runtime_loaded: bool
    facts: ElfFacts | None = None
    exports: Mapping[str, tuple[str, str, bool]] = field(default_factory=dict)  # name -> (type, binding, plt_only)
    is_libc: bool = False
    shortname: str | None = None
    deps_loaded: bool = False


class _Loader:
    """One simulated process: the load list, the global symbol chain, the errors."""

    def __init__(self, root: RootFS, cache: FactsCache, target: Target, ldso_name: str) -> None:
        self.root = root
        self.cache = cache
        self.target = target
        self.ldso_name = ldso_name
        self.runtime = False
        self.objects: list[_Dso] = []
        self.missing: list[MissingLibrary] = []
        self.libc = _Dso(
            path=ldso_name, requested_as=ldso_name, found_by="libc", links=(), identity=("musl-libc",),
            needed_by=None, runtime_loaded=False, is_libc=True, exports=target.libc_exports,
        )
        self._sys_path: str | None = None

    # -- load_library (DL:1064) -------------------------------------------------
    def load_library(self, name: str, needed_by: _Dso | None) -> _Dso | str:
        """The loaded object, or musl's error text for a failure."""
        if not name:
            return "Invalid argument"
        if self._is_reserved(name) or name == self.ldso_name:
            return self.add_libc()
        if "/" in name:
            return self._open(name, name, needed_by, "path given")
        for p in self.objects[1:]:
            if p.shortname == name:
                return p
        if len(name) > 255:
            return "No such file or directory"
        searches: list[tuple[str, str]] = []
        if self.target.library_path:
            searches.append((self.target.library_path, "LD_LIBRARY_PATH"))
        requester = needed_by
        while requester is not None:
            rpath = self._rpath(requester)
            if rpath is not None:
                kind = "RUNPATH" if requester.facts and requester.facts.runpath is not None else "RPATH"
                searches.append((rpath, f"{kind} of {requester.path}"))
            requester = requester.needed_by
        searches.append((self._system_path(), "system path"))
        for dirs, how in searches:
            for directory in _split_path(dirs):
                candidate = join(directory if directory.startswith("/") else "/" + directory, name)
                located = self._locate(candidate)
                if located is not None:
                    return self._open(candidate, name, needed_by, how, located)
        return "No such file or directory"

    def _is_reserved(self, name: str) -> bool:
        return name.startswith("lib") and any(name[3:].startswith(r) for r in self.target.rules.reserved_prefixes)

    def add_libc(self) -> _Dso:
        if self.libc not in self.objects:
            self.objects.append(self.libc)
        return self.libc

    def _rpath(self, p: _Dso) -> str | None:
        """fixup_rpath (DL:899): RUNPATH replaces RPATH; only $ORIGIN expands, any other $ voids it."""
        if p.facts is None:
            return None
        raw = p.facts.runpath if p.facts.runpath is not None else p.facts.rpath
        if raw is None or "$" not in raw:
            return raw
        origin = parent(p.path) if "/" in p.path else "."
        out, rest = [], raw
        while "$" in rest:
            before, _, after = rest.partition("$")
            if after.startswith("ORIGIN"):
                after = after[6:]
            elif after.startswith("{ORIGIN}"):
                after = after[8:]
            else:
                return None
            out.append(before + origin)
            rest = after
        return "".join(out) + rest

    def _system_path(self) -> str:
        """<prefix>/etc/ld-musl-ARCH.path, prefix two levels above the loader's name (DL:1128)."""
        if self._sys_path is None:
            prefix = ""
            if self.ldso_name.startswith("/"):
                prefix = self.ldso_name[: self.ldso_name.rfind("/")]
                prefix = prefix[: prefix.rfind("/")] if "/" in prefix else ""
            arch = self.target.rules.ldso_names[self.target.arch].removeprefix("ld-musl-").removesuffix(".so.1")
            located = self.root.resolve(f"{prefix}/etc/ld-musl-{arch}.path")
            if isinstance(located, Resolved):
                try:
                    self._sys_path = self.root.read_head(located, 65536).decode("utf-8", "surrogateescape")
                except OSError:
                    self._sys_path = ""
            elif located.reason == "no such file":
                self._sys_path = self.target.rules.default_path
            else:
                self._sys_path = ""
        return self._sys_path

    def _locate(self, path: str) -> Resolved | _Virtual | None:
        found = self.root.resolve(path)
        if isinstance(found, Resolved):
            return found
        return self.target.virtual_files.get(path)

    def _open(
        self, path: str, name: str, needed_by: _Dso | None, how: str, located: Resolved | _Virtual | None = None
    ) -> _Dso | str:
        if located is None:
            located = self._locate(path)
            if located is None:
                return "No such file or directory"
        if isinstance(located, _Virtual):
            return self._open_virtual(path, name, needed_by, how, located)
        if (seen := self._already_loaded(located.identity, path, name)) is not None:
            return seen
        if (owner := self.target.replaced.get(located.path)) is not None:
            return f"{REPLACED} {owner}"
        facts = self.cache.get(located)
        if isinstance(facts, NotLoadable):
            return facts.reason
        if facts.elf_type.value not in ("DYN", "EXEC") or not facts.has_dynamic:
            return "Exec format error"
        exports = self.cache.visible_exports(facts)
        if "__libc_start_main" in exports and "stdin" in exports:
            return self.load_library("libc.so", needed_by)  # another libc: musl substitutes itself (DL:1198)
        dso = _Dso(
            path=path, requested_as=name, found_by=how, links=located.links, identity=located.identity,
            needed_by=needed_by, runtime_loaded=self.runtime, facts=facts, exports=exports,
            shortname=name if path != name else None,
        )
        self.objects.append(dso)
        return dso

    def _open_virtual(self, path: str, name: str, needed_by: _Dso | None, how: str, v: _Virtual) -> _Dso | str:
        if v.kind == "libc":
            return self.add_libc()
        identity = ("virtual", v.kind)
        if (seen := self._already_loaded(identity, path, name)) is not None:
            return seen
        exports = self.target.gcompat_exports if v.kind == "gcompat" else {}
        dso = _Dso(
            path=path, requested_as=name, found_by=how, links=(), identity=identity, needed_by=needed_by,
            runtime_loaded=self.runtime, exports=exports, shortname=name if path != name else None,
        )
        self.objects.append(dso)
        return dso

    def _already_loaded(self, identity: object, path: str, name: str) -> _Dso | None:
        """The same inode under another name is the same object; it gains a short name (DL:1180-1190)."""
        for p in self.objects[1:]:
            if p.identity == identity:
                if p.shortname is None and path != name:
                    p.shortname = p.path.rsplit("/", 1)[-1]
                return p
        return None

    # -- load_deps (DL:1298): breadth-first over the load list --------------------
    def load_deps(self, start: _Dso) -> None:
        i = self.objects.index(start)
        while i < len(self.objects):
            p = self.objects[i]
            i += 1
            if p.deps_loaded or p.is_libc:
                continue
            p.deps_loaded = True
            for needed in self._needed(p):
                result = self.load_library(needed, p)
                if isinstance(result, str):
                    self.missing.append(MissingLibrary(needed, p.path, result))

    def _needed(self, p: _Dso) -> tuple[str, ...]:
        if p.facts is not None:
            return p.facts.needed
        if p.identity == ("virtual", "gcompat"):
            return ("libc.musl-" + self.target.ldso_path.removeprefix("/lib/ld-musl-"),)
        return ()


@dataclass(frozen=True)
class _Virtual:
    kind: str  # "libc", "gcompat", "stub"


def _split_path(s: str) -> Iterable[str]:
    for part in s.replace("\n", ":").split(":"):
        if part:
            yield part


def _visible(exports: Mapping[str, tuple[str, str, bool]], name: str, need_def: bool) -> bool:
    """find_sym2's acceptance test for one object's definitions (DL:302-341)."""
    found = exports.get(name)
    return found is not None and _accepted(found, need_def)


def _accepted(definition: tuple[str, str, bool], need_def: bool) -> bool:
    type_, binding, plt_only = definition
    if plt_only and (need_def or type_ == "TLS"):
        return False
    return type_ in _OK_TYPES and binding in _OK_BINDS


_NOTHING: frozenset[str] = frozenset()


def _invisible(exports: Mapping[str, tuple[str, str, bool]]) -> tuple[frozenset[str], frozenset[str]]:
    """The names of ``exports`` that find_sym2 skips: (in lookups that need a definition, in the others)."""
    if isinstance(exports, HostExports):
        return _NOTHING, _NOTHING  # host functions: always accepted
    kinds = set(exports.values())  # a handful of distinct (type, binding, plt_only)
    rejected = [frozenset(k for k in kinds if not _accepted(k, need_def)) for need_def in (True, False)]
    return tuple(  # type: ignore[return-value]
        frozenset(n for n, k in exports.items() if k in bad) if bad else _NOTHING for bad in rejected
    )


class _Chain:
    """The global symbol chain of one load, with each lookup done once."""

    def __init__(self, objects: list[_Dso]) -> None:
        self.objects = objects
        self._memo: dict[tuple[str, bool, bool], _Dso | None] = {}

    def find(self, name: str, need_def: bool, skip_main: bool = False) -> _Dso | None:
        key = (name, need_def, skip_main)
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = None
        for d in self.objects[1:] if skip_main else self.objects:
            if name in d.exports and _visible(d.exports, name, need_def):  # the membership test is the fast miss
                found = d
                break
        self._memo[key] = found
        return found

    def unbound(self, names: frozenset[str], need_def: bool, memo: RelocationMemo) -> set[str]:
        """Those of ``names`` that no object of the chain defines (``find`` is None), by set operations."""
        remaining = set(names)
        which = 0 if need_def else 1
        for d in self.objects:
            if not remaining:
                break
            exports = d.exports
            if isinstance(exports, HostExports):
                if exports.prefixes:
                    remaining = {n for n in remaining if not n.startswith(exports.prefixes)}
                continue
            skipped = memo.invisible(exports)[which]
            left = remaining.difference(exports)  # iterates over the (few) remaining names, not the definitions
            remaining = left.union(remaining.intersection(skipped)) if skipped else left
        return remaining


def lfs64_base(name: str, rules: LoaderRules, libc_exports: Mapping[str, tuple[str, str, bool]]) -> str | None:
    """get_lfs64 (DL:348): the libc NAME that NAME64 binds to after a failed lookup, else None."""
    if not rules.lfs64 or len(name) > rules.lfs64_name_max:
        return None
    if name == "readdir64_r":
        base = "readdir_r" if rules.readdir64_r else None
    elif name.endswith("64") and name[:-2] in rules.lfs64:
        base = name[:-2]
    else:
        return None
    return base if base is not None and _visible(libc_exports, base, True) else None


@dataclass(frozen=True)
class _Relocated:
    """What do_relocs finds for one object: the part of a LoadedObject that depends on the symbol chain."""

    unresolved: tuple[UnresolvedSymbol, ...]
    unsupported_relocations: tuple[tuple[int, int], ...]
    tls_errors: tuple[TlsError, ...]
    lfs64_remapped: tuple[str, ...]


class RelocationMemo:
    """do_relocs results shared across the loads of one scan: a library relocated against the same
    definers of its names (in the same order) fails the same way, whichever program loaded it."""

    def __init__(self) -> None:
        self._results: dict[tuple[object, ...], _Relocated] = {}
        self._relevant: dict[tuple[int, int], bool] = {}
        self._names: dict[int, tuple[ElfFacts, frozenset[str]]] = {}
        self._plans: dict[int, tuple[ElfFacts, _Plan]] = {}
        self._invisible: dict[int, tuple[Mapping[str, Any], tuple[frozenset[str], frozenset[str]]]] = {}

    def plan(self, facts: ElfFacts) -> _Plan:
        entry = self._plans.get(id(facts))  # the entry keeps facts alive, so the id is not reused
        if entry is None:
            entry = self._plans[id(facts)] = (facts, _Plan.of(facts))
        return entry[1]

    def invisible(self, exports: Mapping[str, tuple[str, str, bool]]) -> tuple[frozenset[str], frozenset[str]]:
        entry = self._invisible.get(id(exports))
        if entry is None:
            entry = self._invisible[id(exports)] = (exports, _invisible(exports))
        return entry[1]

    def key(self, loader: _Loader, chain: _Chain, dso: _Dso, lazy: bool) -> tuple[object, ...]:
        facts = dso.facts
        assert facts is not None
        names = self._use_names(facts)
        definers = tuple(
            (i == 0, o.path, id(o.exports), o.runtime_loaded, o.facts is not None and o.facts.has_tls)
            for i, o in enumerate(chain.objects) if self._defines_any(o.exports, facts, names)
        )
        target = loader.target
        return (id(facts), dso.path, dso.runtime_loaded, lazy, id(target.rules), target.arch, definers)

    def get(self, key: tuple[object, ...]) -> _Relocated | None:
        return self._results.get(key)

    def put(self, key: tuple[object, ...], result: _Relocated) -> None:
        self._results[key] = result

    def _use_names(self, facts: ElfFacts) -> frozenset[str]:
        entry = self._names.get(id(facts))  # the entry keeps facts alive, so the id is not reused
        if entry is None:
            entry = self._names[id(facts)] = (facts, frozenset(u.name for u in facts.uses))
        return entry[1]

    def _defines_any(self, exports: Mapping[str, tuple[str, str, bool]], facts: ElfFacts,
                     names: frozenset[str]) -> bool:
        pair = (id(exports), id(facts))
        found = self._relevant.get(pair)
        if found is None:
            if isinstance(exports, HostExports):
                found = any(n.startswith(exports.prefixes) for n in names) if exports.prefixes else False
            else:
                found = not names.isdisjoint(exports.keys())
            self._relevant[pair] = found
        return found


# Relocation classes whose outcome, once the symbol is found, does not depend on the definer.
_PLAIN_CLASSES = frozenset({"SYMBOLIC", "OFFSET32", "GOT", "PLT", "RELATIVE", "DTPMOD", "DTPOFF", "TLSDESC"})


@dataclass(frozen=True)
class _Plan:
    """How do_relocs treats one file's uses, whatever the chain: most uses only matter when unbound."""

    with_symbol: dict[int, int]  # relocation type -> count, over the relocations that name a symbol
    plain_definition: frozenset[str]  # names whose relocations are all PLT (find with need_def)
    plain_other: frozenset[str]  # names whose relocations are all other plain classes
    plain_uses: dict[str, tuple[int, ...]]  # plain name -> the indices of its uses
    special: tuple[int, ...]  # uses walked one by one every time (COPY, TPOFF, NONE, unsupported, mixed)
    _unbound: dict[tuple[int, bool], UnresolvedSymbol] = field(default_factory=dict, compare=False)

    @cached_property
    def plain_indices(self) -> frozenset[int]:
        return frozenset(i for uses in self.plain_uses.values() for i in uses)

    def unbound(self, i: int, facts: ElfFacts, lazy: bool) -> UnresolvedSymbol:
        """What plain use ``i`` gives when no object binds it (do_relocs' walk, done once)."""
        key = (i, lazy)
        found = self._unbound.get(key)
        if found is None:
            use = facts.uses[i]
            names = [relocation_name(facts.machine, rtype) for rtype, _ in use.relocations]
            if not use.defined and use.binding == "WEAK":
                effect = Effect.NULL  # binds to 0, then the type is applied
            elif lazy and all(_RELOC_CLASSES[facts.machine][t] in ("PLT", "GOT") for t, _ in use.relocations):
                effect = Effect.LATENT  # deferred (DL:438-443)
            else:
                effect = Effect.FATAL
            found = self._unbound[key] = _unresolved(use, names, effect)
        return found

    @classmethod
    def of(cls, facts: ElfFacts) -> _Plan:
        classes = _RELOC_CLASSES.get(facts.machine, {})
        uses = facts.uses
        shapes = Counter(use.relocations for use in uses)  # few distinct shapes: ((7, 1),), ((6, 1),), ...
        with_symbol: Counter[int] = Counter()
        for shape, n in shapes.items():
            for rtype, count in shape:
                with_symbol[rtype] += count * n
        lane = {shape: _lane({classes.get(rtype) for rtype, _ in shape}) for shape in shapes}
        lanes = [lane[use.relocations] for use in uses]
        by_lane: dict[str, dict[str, list[int]]] = {"definition": {}, "other": {}}
        special: list[int] = []
        for i in compress(range(len(uses)), lanes):  # uses with relocations
            kind = lanes[i]
            if kind == "special":
                special.append(i)
            else:
                by_lane[kind].setdefault(uses[i].name, []).append(i)
        definition, other = by_lane["definition"], by_lane["other"]
        for name in definition.keys() & other.keys():  # one name under both lookups: walk it exactly
            special.extend((*definition.pop(name), *other.pop(name)))
        return cls(
            with_symbol=dict(with_symbol),
            plain_definition=frozenset(definition),
            plain_other=frozenset(other),
            plain_uses={n: tuple(v) for n, v in (*definition.items(), *other.items())},
            special=tuple(special),
        )


def _lane(kinds: set[str | None]) -> str:
    """How do_relocs treats a use whose relocations have these classes: "" (none: never looked up),
    "definition" (all PLT), "other" (plain, no PLT) or "special"."""
    if not kinds:
        return ""
    if kinds == {"PLT"}:
        return "definition"
    if kinds <= _PLAIN_CLASSES and "PLT" not in kinds:
        return "other"
    return "special"


def _relocate(loader: _Loader, chain: _Chain, dso: _Dso, lazy: bool, memo: RelocationMemo | None) -> LoadedObject:
    facts = dso.facts
    assert facts is not None
    memo = memo or RelocationMemo()
    key = memo.key(loader, chain, dso, lazy)
    found = memo.get(key)
    if found is None:
        found = _do_relocs(loader, chain, dso, lazy, memo)
        memo.put(key, found)
    return LoadedObject(
        path=dso.path, identity=dso.identity, requested_as=dso.requested_as, found_by=dso.found_by,
        links=dso.links, is_libc=False, facts=facts, runtime_loaded=dso.runtime_loaded,
        unresolved=found.unresolved, unsupported_relocations=found.unsupported_relocations,
        tls_errors=found.tls_errors, lfs64_remapped=found.lfs64_remapped,
        wrong_arch=facts.machine if facts.machine != loader.target.arch else None,
    )


def _do_relocs(loader: _Loader, chain: _Chain, dso: _Dso, lazy: bool, memo: RelocationMemo) -> _Relocated:
    """do_relocs (DL:378) for one object, collecting every error musl would print.

    A plain use (see ``_Plan``) that the chain binds has no effect to report, so only the unbound
    plain names, found by set operations, and the special uses are walked relocation by relocation."""
    facts = dso.facts
    assert facts is not None
    classes = _RELOC_CLASSES.get(facts.machine, {})
    rules = loader.target.rules
    plan = memo.plan(facts)
    unbound = chain.unbound(plan.plain_definition, True, memo) | chain.unbound(plan.plain_other, False, memo)
    walked = sorted((*plan.special, *(i for name in unbound for i in plan.plain_uses[name])))
    unresolved: list[UnresolvedSymbol] = []
    unsupported: dict[int, int] = {}
    tls_errors: list[TlsError] = []
    remapped: list[str] = []
    for i in walked:
        use = facts.uses[i]
        if i in plan.plain_indices:  # unbound: remapped by get_lfs64, or the same finding as last time
            if lfs64_base(use.name, rules, loader.libc.exports):
                remapped.append(use.name)
            else:
                unresolved.append(plan.unbound(i, facts, lazy))
            continue
        failed: list[str] = []
        nulled: list[str] = []
        fatal = False
        for rtype, count in use.relocations:
            cls = classes.get(rtype)
            if cls == "NONE":
                continue
            definer = chain.find(use.name, need_def=cls == "PLT", skip_main=cls == "COPY")
            if definer is None and lfs64_base(use.name, rules, loader.libc.exports):
                definer = loader.libc
                remapped.append(use.name)
            if definer is None and not use.defined and use.binding == "WEAK":
                nulled.append(relocation_name(facts.machine, rtype))  # binds to 0, then the type is applied
            elif definer is None:
                failed.append(relocation_name(facts.machine, rtype))
                fatal = fatal or not (lazy and cls in ("PLT", "GOT"))
                continue
            if cls is None:
                unsupported[rtype] = unsupported.get(rtype, 0) + count
            elif cls == "TPOFF" and definer is not None and _dynamic_tls(definer):
                tls_errors.append(TlsError(use.name, definer.path))
        if failed:
            unresolved.append(_unresolved(use, failed, Effect.FATAL if fatal else Effect.LATENT))
        elif nulled:
            unresolved.append(_unresolved(use, nulled, Effect.NULL))
    for rtype, count in facts.relocations:
        rest = count - plan.with_symbol.get(rtype, 0)
        if rest > 0 and rtype not in classes:
            unsupported[rtype] = unsupported.get(rtype, 0) + rest
    if facts.tls_relocations_local and _dynamic_tls(dso):
        tls_errors.append(TlsError(None, dso.path))
    return _Relocated(
        unresolved=tuple(sorted(unresolved, key=lambda u: (u.name, u.version or ""))),
        unsupported_relocations=tuple(sorted(unsupported.items())),
        tls_errors=tuple(tls_errors), lfs64_remapped=tuple(sorted(set(remapped))),
    )


def _unresolved(use: SymbolUse, relocations: list[str], effect: Effect) -> UnresolvedSymbol:
    return UnresolvedSymbol(
        name=use.name, version=use.version, version_library=use.version_library,
        weak=use.binding == "WEAK", relocations=tuple(sorted(set(relocations))), effect=effect,
    )


def _dynamic_tls(dso: _Dso) -> bool:
    """A module whose TLS id is above static_tls_cnt: it has TLS and came in through dlopen (DL:458)."""
    return dso.runtime_loaded and dso.facts is not None and dso.facts.has_tls


def _snapshot(d: _Dso) -> LoadedObject:
    return LoadedObject(
        path=d.path, identity=d.identity, requested_as=d.requested_as, found_by=d.found_by, links=d.links,
        is_libc=d.is_libc,
        facts=None, runtime_loaded=d.runtime_loaded,
    )


def load(
    root: RootFS,
    cache: FactsCache,
    target: Target,
    path: str,
    context: Context,
    *,
    ldso_name: str | None = None,
    host_provides: tuple[str, ...] = (),
    memo: RelocationMemo | None = None,
) -> LoadResult:
    """Load ``path`` as musl would in ``context`` and report every error.

    Executable context follows start-up (``__dls3``, as in ``ld-musl --list``):
    every error is reported, nothing is lazy. ``ldso_name`` is the name the
    loader runs under (PT_INTERP by default; gcompat's stub passes its own).
    Library contexts follow ``dlopen`` from a musl host process whose chain
    already holds libc (and the preloads), with RTLD_NOW or RTLD_LAZY; the host
    program itself defines the names that start with ``host_provides``.
    ``memo`` shares relocation results between the loads of one scan.
    """
    resolved = _must_resolve(root, path)
    facts = cache.get(resolved)
    assert isinstance(facts, ElfFacts), path
    preloads = target.preload
    if context is Context.EXECUTABLE:
        name = ldso_name or facts.interpreter or target.ldso_path
        stub = gcompat_stub_name(target, facts.interpreter)
        if stub is not None and ldso_name is None:
            # gcompat's stub runs musl's loader as "--argv0 ... --preload /lib/libgcompat.so.0" under its own name.
            name = stub
            preloads = (target.gcompat.preload, *target.preload) if target.gcompat else preloads
        loader = _Loader(root, cache, target, name)
        app = _Dso(path=path, requested_as=path, found_by="main program", links=(), identity=resolved.identity,
                   needed_by=None, runtime_loaded=False, facts=facts, exports=cache.visible_exports(facts))
        loader.objects.append(app)
        for preload in preloads:
            loader.load_library(preload, None)  # a preload that fails is ignored (DL:1356)
        loader.load_deps(app)
        chain = _Chain(list(loader.objects))
        lazy_ok = False
        entries = [loader.objects[1:], [app]]  # libraries first, the program last (DL:2010)
    else:
        loader = _Loader(root, cache, target, ldso_name or target.ldso_path)
        host = _Dso(path="<host program>", requested_as="", found_by="host", links=(), identity=("host",),
                    needed_by=None, runtime_loaded=False, deps_loaded=True,
                    exports=HostExports(host_provides) if host_provides else {})
        loader.objects.append(host)
        for preload in preloads:
            loader.load_library(preload, None)
        loader.add_libc()  # every musl host process names libc
        loader.load_deps(host)
        loaded_before = len(loader.objects)
        loader.runtime = True
        lib = loader.load_library(path, host)
        if isinstance(lib, str):
            loader.missing.append(MissingLibrary(path, "dlopen", lib))
            return LoadResult(context, loader.ldso_name, tuple(_snapshot(d) for d in loader.objects),
                              tuple(loader.missing), ())
        loader.load_deps(lib)
        chain = _Chain(list(loader.objects))
        lazy_ok = context is Context.DLOPEN_LAZY
        entries = [loader.objects[loaded_before:]]
    results: dict[int, LoadedObject] = {}
    for group in entries:
        for d in group:
            if d.facts is None:
                continue
            lazy = lazy_ok and d.runtime_loaded and not d.facts.bind_now
            results[id(d)] = _relocate(loader, chain, d, lazy, memo)
    objects = tuple(results.get(id(d)) or _snapshot(d) for d in loader.objects)
    relr = () if target.rules.relr else tuple(o.path for o in objects if o.facts is not None and o.facts.has_relr)
    return LoadResult(context, loader.ldso_name, objects, tuple(loader.missing), relr)


def gcompat_stub_name(target: Target, interpreter: str | None) -> str | None:
    """The name musl runs under when gcompat's stub is the program's interpreter."""
    if target.gcompat is None or interpreter is None:
        return None
    stub = target.gcompat.loader_paths.get(target.arch)
    if stub is None:
        return None
    name = stub.rsplit("/", 1)[-1]
    return name if interpreter in (stub, "/lib/" + name, "/lib64/" + name) else None


def _must_resolve(root: RootFS, path: str) -> Resolved:
    found = root.resolve(path)
    if not isinstance(found, Resolved):
        raise FileNotFoundError(path)
    return found
