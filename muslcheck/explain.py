"""``explain SYMBOL`` and ``symbols``: where a symbol comes from and what to do about it.

Pure functions over the generated tables; nothing here prints.

* glibc's side comes from ``symbols/glibc-abilists.json`` (zig's glibc
  abilists, plus GLIBC_PRIVATE names read from Debian's libc6; see
  symbols/glibc.py).
* musl's side comes from the musl export tables and the loader rules of the
  :class:`~muslcheck.ldso.tables.Catalog`; the LFS64 remap is decided by
  :func:`muslcheck.ldso.load.lfs64_base` itself, so ``explain`` and the scan agree.
* A name no C library has may still be one a report prints: a C++ name (demangled by
  :mod:`muslcheck.demangle`), the C++ runtime's (libstdc++) or the compiler runtime's (libgcc_s), or an
  API that the host process exports to the libraries it loads (CPython, the JVM, Node, with the same
  prefixes the scan uses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Host
from muslcheck.demangle import demangle
from muslcheck.ldso.load import Target, lfs64_base
from muslcheck.ldso.tables import EXPLAINED_ARCHES as SUPPORTED_ARCHES
from muslcheck.ldso.tables import Catalog, tables_dir
from muslcheck.model.errors import InputError, UsageError

GLIBC_TABLE = "glibc-abilists.json"
_VERSION_PREFIX = "GLIBC_"


# ---------------------------------------------------------------------------
# glibc table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GlibcTable:
    """symbols/glibc-abilists.json, as read."""

    symbols: Mapping[str, Mapping[str, Any]]
    libraries: Mapping[str, Any]  # zig short name -> soname (ld: arch -> soname)
    baseline: Mapping[str, str]  # arch -> the port's first version ("2.2.5")
    provenance: Mapping[str, Any]
    private_provenance: Mapping[str, Any] | None

    def soname(self, lib: str, arch: str) -> str:
        so: Any = self.libraries.get(lib, lib)
        if isinstance(so, dict):
            return str(so.get(arch, lib))
        return str(so)

    @property
    def source(self) -> str:
        p = self.provenance
        text = f"{p.get('package', '?')} {p.get('version', '?')} abilists"
        if self.private_provenance:
            pp = self.private_provenance
            debs: dict[str, dict[str, str]] = dict(pp.get("debs") or {})
            version = next((d.get("version", "?") for d in debs.values()), "?")
            text += f"; GLIBC_PRIVATE from Debian {pp.get('package', 'libc6')} {version}"
        return text


def load_glibc_table(directory: Path | None = None) -> GlibcTable:
    """Read the glibc table from the tables directory (cached per directory)."""
    return _load_glibc(str(directory or tables_dir()))


@lru_cache(maxsize=4)
def _load_glibc(directory: str) -> GlibcTable:
    path = Path(directory) / GLIBC_TABLE
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read table {path}: {e}") from e
    if raw.get("kind") != "glibc-abilists" or not isinstance(raw.get("symbols"), dict):
        raise InputError(f"{path} is not a glibc-abilists table")
    return GlibcTable(
        symbols=raw["symbols"],
        libraries=dict(raw.get("libraries", {})),
        baseline=dict(raw.get("baseline", {})),
        provenance=dict(raw.get("provenance", {})),
        private_provenance=raw.get("private_provenance"),
    )


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


# ---------------------------------------------------------------------------
# The explanation
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GlibcArch:
    arch: str
    introduced: str  # "GLIBC_2.3.4": the lowest version on this arch
    at_baseline: bool  # introduced is the port's first version (the symbol predates the port)
    versions: tuple[tuple[str, str], ...]  # (soname, "GLIBC_x.y") in version order


@dataclass(frozen=True)
class GlibcFacts:
    kind: str  # "func", "object", "tls"
    first: str | None  # "GLIBC_2.1": the lowest version on any of zig's targets
    arches: tuple[GlibcArch, ...]  # public versions, per arch (x86_64, aarch64)
    private_in: tuple[tuple[str, str], ...]  # (arch, soname) defining it as GLIBC_PRIVATE

    @property
    def private(self) -> bool:
        """Only ever GLIBC_PRIVATE: internal to glibc."""
        return bool(self.private_in) and not self.arches

    @property
    def libraries(self) -> tuple[str, ...]:
        names = {so for a in self.arches for so, _ in a.versions} | {so for _, so in self.private_in}
        return tuple(sorted(names))

    def arch(self, arch: str) -> GlibcArch | None:
        return next((a for a in self.arches if a.arch == arch), None)


class MuslState(StrEnum):
    EXPORTED = "exported"
    REMAPPED = "remapped"  # bound to the plain name by the loader's LFS64 remap
    ABSENT = "absent"


@dataclass(frozen=True)
class MuslAvailability:
    musl: str
    arch: str
    state: MuslState
    remapped_to: str | None = None

    @property
    def resolves(self) -> bool:
        return self.state is not MuslState.ABSENT

    @property
    def text(self) -> str:
        if self.state is MuslState.REMAPPED:
            return f"remapped to {self.remapped_to} by the loader's LFS64 remap"
        return self.state.value


class ProviderKind(StrEnum):
    CXX_RUNTIME = "c++-runtime"  # libstdc++.so.6
    COMPILER_RUNTIME = "compiler-runtime"  # libgcc_s.so.1
    HOST = "host"  # the process that loads the library: CPython, the JVM, Node
    CXX_LIBRARY = "c++-library"  # some other C++ library's name


@dataclass(frozen=True)
class Provider:
    """Where a symbol that no C library exports comes from, and what provides it on Alpine."""

    kind: ProviderKind
    source: str  # "libstdc++.so.6 (the GNU C++ runtime)"
    fix: str


@dataclass(frozen=True)
class TargetAnswer:
    """The symbol on one target: each architecture's row of that musl version."""

    musl: str
    alpine: str | None
    rows: tuple[MuslAvailability, ...]

    @property
    def label(self) -> str:
        return f"Alpine {self.alpine} (musl {self.musl})" if self.alpine else f"musl {self.musl}"

    @property
    def resolves(self) -> bool:
        return all(r.resolves for r in self.rows)


@dataclass(frozen=True)
class Explanation:
    symbol: str
    glibc: GlibcFacts | None  # None: glibc does not have it
    musl: tuple[MuslAvailability, ...]  # every (musl version, arch) of the catalog, in order
    gcompat: bool  # gcompat provides it
    gcompat_version: str
    resolves_from: Mapping[str, str | None]  # arch -> first musl from which every later one resolves it
    alpine_from: Mapping[str, str | None]  # arch -> first Alpine release shipping such a musl
    cause: str | None
    fix: str
    glibc_source: str
    alpine_rows: tuple[tuple[str, str], ...] = ()  # (Alpine release, musl version), for rendering
    demangled: str | None = None  # a C++ name, as c++filt prints it
    provider: Provider | None = None  # where a name that no C library has comes from
    target: TargetAnswer | None = None  # the answer for one target (--alpine/--musl)

    def availability(self, musl: str, arch: str) -> MuslAvailability:
        return next(a for a in self.musl if a.musl == musl and a.arch == arch)


# ---------------------------------------------------------------------------


def _glibc_facts(symbol: str, table: GlibcTable) -> GlibcFacts | None:
    entry = table.symbols.get(symbol)
    if entry is None:
        return None
    arches = []
    for arch in SUPPORTED_ARCHES:
        libs: Mapping[str, list[str]] | None = entry.get(arch)
        if not libs:
            continue
        pairs = sorted(((v, table.soname(lib, arch)) for lib, vs in libs.items() for v in vs),
                       key=lambda p: (_vkey(p[0]), p[1]))
        low = pairs[0][0]
        arches.append(GlibcArch(
            arch=arch,
            introduced=_VERSION_PREFIX + low,
            at_baseline=table.baseline.get(arch) == low,
            versions=tuple((so, _VERSION_PREFIX + v) for v, so in pairs),
        ))
    private = tuple(sorted((arch, table.soname(lib, arch))
                           for arch, libs in dict(entry.get("private", {})).items() for lib in libs))
    first = entry.get("first")
    return GlibcFacts(
        kind=str(entry.get("kind", "func")),
        first=_VERSION_PREFIX + str(first) if first else None,
        arches=tuple(arches),
        private_in=private,
    )


def _musl_state(symbol: str, catalog: Catalog, musl: str, arch: str) -> MuslAvailability:
    exports = catalog.musl_exports(musl, arch)
    if symbol in exports.symbols:
        return MuslAvailability(musl, arch, MuslState.EXPORTED)
    rules = catalog.loader_rules(musl)
    plain = lfs64_base(symbol, rules, Target(arch=arch, musl=exports, rules=rules).libc_exports)
    if plain is not None:
        return MuslAvailability(musl, arch, MuslState.REMAPPED, plain)
    return MuslAvailability(musl, arch, MuslState.ABSENT)


def _resolves_from(rows: tuple[MuslAvailability, ...], versions: tuple[str, ...], arch: str) -> str | None:
    """The first musl version from which this and every later version resolves the symbol."""
    first: str | None = None
    for v in versions:
        row = next(r for r in rows if r.musl == v and r.arch == arch)
        first = (first or v) if row.resolves else None
    return first


def _alpine_for(catalog: Catalog, musl: str | None) -> str | None:
    if musl is None:
        return None
    for release in catalog.alpine_releases:
        if _vkey(release.musl) >= _vkey(musl):
            return release.alpine
    return None


# -- causes ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    symbol: str
    glibc: GlibcFacts | None
    musl: tuple[MuslAvailability, ...]
    gcompat: bool
    lfs64_names: frozenset[str]  # NAME64 names some musl version's loader remaps

    def glibc_since(self) -> str:
        """The glibc release that introduced it: its lowest version on any architecture."""
        g = self.glibc
        if g is None or g.first is None:
            return "?"
        return g.first[len(_VERSION_PREFIX):]

    def musl_exports_any(self) -> bool:
        return any(r.state is MuslState.EXPORTED for r in self.musl)


_XSTAT = frozenset({"__xstat", "__lxstat", "__fxstat", "__fxstatat", "__xmknod", "__xmknodat",
                    "__xstat64", "__lxstat64", "__fxstat64", "__fxstatat64"})


def _cause_chk(c: _Ctx) -> str | None:
    if c.symbol.startswith("__") and c.symbol.endswith("_chk"):
        return ("built with _FORTIFY_SOURCE: the compiler called glibc's checked variant "
                f"(glibc {c.glibc_since()}) instead of the plain function")
    return None


def _cause_isoc23(c: _Ctx) -> str | None:
    if c.symbol.startswith("__isoc23_"):
        return (f"built against glibc >= {c.glibc_since()} headers with _GNU_SOURCE or C2x/C23: "
                "the strtol and scanf families are redirected to their __isoc23_ variants")
    return None


def _cause_xstat(c: _Ctx) -> str | None:
    if c.symbol in _XSTAT:
        text = ("built against glibc < 2.33 headers: stat(), lstat(), fstat(), fstatat() and mknod() were "
                "inline wrappers over __xstat and relatives (glibc 2.33 exports the plain names)")
        if c.musl_exports_any():
            text += "; musl exports __xstat, __lxstat, __fxstat, __fxstatat for glibc binaries"
        return text
    return None


def _cause_lfs64(c: _Ctx) -> str | None:
    if c.symbol in c.lfs64_names:
        exported = [r.musl for r in c.musl if r.state is MuslState.EXPORTED]
        remapped = [r.musl for r in c.musl if r.state is MuslState.REMAPPED]
        text = "large-file (LFS64) alias: built with _FILE_OFFSET_BITS=64 or _LARGEFILE64_SOURCE"
        if exported:
            text += f"; musl exported it up to {max(exported, key=_vkey)}"
        text += "; musl 1.2.4 removed the *64 aliases from libc.so's exports"
        if remapped:
            text += f" and its loader remaps them (here from {min(remapped, key=_vkey)}; never for dlsym)"
        else:
            text += "; the loader's remap does not cover this name"
        return text
    return None


def _cause_fcntl64(c: _Ctx) -> str | None:
    if c.symbol == "fcntl64":
        return (f"built against glibc >= {c.glibc_since()} headers with _FILE_OFFSET_BITS=64 (or 64-bit time): "
                "fcntl is redirected to fcntl64, which musl never exported and its loader does not remap")
    return None


def _cause_named(c: _Ctx) -> str | None:
    s = c.symbol
    table: dict[str, str] = {
        "__register_atfork": "pthread_atfork() in glibc's static libc_nonshared.a calls __register_atfork",
        "__cxa_thread_atexit_impl": ("C++ thread_local destructors: a libstdc++ built for glibc >= "
                                     f"{c.glibc_since()} registers them through __cxa_thread_atexit_impl"),
        "mallinfo2": f"glibc {c.glibc_since()} malloc statistics API",
        "mallinfo": "glibc's malloc statistics API",
        "__getauxval": ("glibc's internal name for getauxval, typically called by statically linked "
                        "libgcc code (aarch64 outline-atomics initialisation)"),
    }
    if s in table:
        return table[s]
    if s.startswith("arc4random"):
        return f"arc4random family, added to glibc in {c.glibc_since()}"
    if s in ("gnu_get_libc_version", "gnu_get_libc_release"):
        return "glibc version introspection (a runtime glibc check)"
    if s.startswith("__libc_") and not c.musl_exports_any():
        return "a glibc-internal __libc_ entry point"
    return None


def _cause_private(c: _Ctx) -> str | None:
    if c.glibc is not None and c.glibc.private:
        return "GLIBC_PRIVATE: internal to glibc (its own libraries use it); nothing may link against it"
    return None


_CAUSES: tuple[Callable[[_Ctx], str | None], ...] = (
    _cause_private, _cause_chk, _cause_isoc23, _cause_xstat, _cause_fcntl64, _cause_lfs64, _cause_named,
)


def _musl_added(c: _Ctx, versions: tuple[str, ...]) -> str | None:
    """The first musl version that exports it, when an older one did not and no newer one dropped it."""
    for arch in SUPPORTED_ARCHES:
        states = [next(r for r in c.musl if r.musl == v and r.arch == arch).state for v in versions]
        exported = [s is MuslState.EXPORTED for s in states]
        if any(exported) and not exported[0]:
            first = exported.index(True)
            if all(exported[first:]):
                return versions[first]
    return None


def _cause(c: _Ctx, versions: tuple[str, ...]) -> str | None:
    text = next((t for t in (rule(c) for rule in _CAUSES) if t), None)
    added = _musl_added(c, versions)
    if added is not None:
        note = f"musl added it in {added}"
        if text is None and c.glibc is not None:
            text = f"a glibc {c.glibc_since()} interface"
        return f"{text}; {note}" if text else note
    if text is None and c.glibc is not None and not any(r.resolves for r in c.musl):
        text = f"a glibc interface (glibc {c.glibc_since()}) that musl does not provide"
    return text


# -- fix ------------------------------------------------------------------------


_GCOMPAT_FIX = ("apk add gcompat (executables and their startup libraries; a dlopen-ed library "
                "needs LD_PRELOAD=/lib/libgcompat.so.0)")


def _fix(c: _Ctx, catalog: Catalog, resolves_from: Mapping[str, str | None]) -> str:
    versions = catalog.musl_versions
    # the arches glibc has it on (a glibc binary for another arch never asks for it)
    arches = [a.arch for a in c.glibc.arches] if c.glibc is not None and c.glibc.arches else list(SUPPORTED_ARCHES)
    froms = {resolves_from[a] for a in arches}
    if froms == {versions[0]}:
        if any(r.state is MuslState.REMAPPED and r.arch in arches for r in c.musl):
            return "nothing on load: every musl in the catalog resolves it (the LFS64 remap does not serve dlsym)"
        return "nothing: every musl in the catalog exports it"
    parts: list[str] = []
    if c.glibc is not None and c.glibc.private:
        parts.append("use a musl build of the component: GLIBC_PRIVATE symbols exist only inside glibc")
    elif c.symbol.startswith("__") and c.symbol.endswith("_chk"):
        parts.append("use a musl build, or rebuild with -D_FORTIFY_SOURCE=0 (or -U_FORTIFY_SOURCE)")
    else:
        parts.append("use a musl build of the component (or rebuild it on Alpine)")
    if None not in froms:
        first = max((v for v in froms if v is not None), key=_vkey)
        alpine = _alpine_for(catalog, first)
        where = f"Alpine >= {alpine}" if alpine else "no Alpine release in the catalog ships it yet"
        exported = all(r.state is MuslState.EXPORTED for r in c.musl if r.musl == first and r.arch in arches)
        parts.append(f"or target a newer Alpine: {'exported' if exported else 'resolved'} from musl {first}, {where}")
    if c.gcompat:
        parts.append("or " + _GCOMPAT_FIX)
    return "; ".join(parts)


# -- names no C library has ------------------------------------------------------


_LIBSTDCXX = "libstdc++.so.6 (the GNU C++ runtime)"
_LIBSTDCXX_FIX = "apk add libstdc++  (Alpine's libstdc++.so.6, built for musl; it needs libgcc too)"
_LIBGCC = "libgcc_s.so.1 (GCC's runtime support library)"
_LIBGCC_FIX = "apk add libgcc  (Alpine's libgcc_s.so.1, built for musl)"
# libstdc++'s exports that are not mangled (GCC 12's libstdc++.so.6); __cxa_atexit and __cxa_finalize are
# the C library's, and are found in its tables first.
_LIBSTDCXX_C_NAMES = frozenset({
    "__cxa_allocate_dependent_exception", "__cxa_allocate_exception", "__cxa_bad_cast", "__cxa_bad_typeid",
    "__cxa_begin_catch", "__cxa_call_unexpected", "__cxa_current_exception_type", "__cxa_deleted_virtual",
    "__cxa_demangle", "__cxa_end_catch", "__cxa_free_dependent_exception", "__cxa_free_exception",
    "__cxa_get_exception_ptr", "__cxa_get_globals", "__cxa_get_globals_fast", "__cxa_guard_abort",
    "__cxa_guard_acquire", "__cxa_guard_release", "__cxa_init_primary_exception", "__cxa_pure_virtual",
    "__cxa_rethrow", "__cxa_thread_atexit", "__cxa_throw", "__cxa_throw_bad_array_length",
    "__cxa_throw_bad_array_new_length", "__cxa_tm_cleanup", "__cxa_vec_cctor", "__cxa_vec_cleanup",
    "__cxa_vec_ctor", "__cxa_vec_delete", "__cxa_vec_delete2", "__cxa_vec_delete3", "__cxa_vec_dtor",
    "__cxa_vec_new", "__cxa_vec_new2", "__cxa_vec_new3", "__dynamic_cast", "__gxx_personality_v0",
    "__once_proxy", "__atomic_flag_for_address", "__atomic_flag_wait_explicit", "atomic_flag_clear_explicit",
    "atomic_flag_test_and_set_explicit",
})
_LIBGCC_PREFIXES = ("_Unwind_", "__register_frame", "__deregister_frame", "__emutls_", "__gcc_personality_v0",
                    "__frame_state_for", "__clear_cache", "__cpu_indicator_init", "__cpu_model", "__cpu_features",
                    "__enable_execute_stack")
# GCC's arithmetic helpers (__divti3, __udivmodti4, __floattidf, __extendhfsf2, __powidf2, __mulsc3, ...):
# an operation, a mode (si, di, ti for integers; hf, sf, df, xf, tf for floats; sc ... tc for complex) and
# the operand count.
_LIBGCC_HELPER = re.compile(
    r"__(?:[a-z]+?)(?:[sdt]i|[hsdxt]f|[hsdxt]c)(?:[sdt]i|[hsdxt]f)?[1-5]"
    r"|__(?:fix|fixuns)[hsdxt]f[sdt]i|__float(?:un)?[sdt]i[hsdxt]f")
# How the C++ runtime's names start once "_Z", special-name prefixes ("vtable for") and "N" with its qualifiers
# are gone: std:: (St) and its abbreviations (Sa allocator, Ss string, ...), libstdc++'s other namespaces, and
# the global operators new and delete.
_STD_MANGLED = ("St", "Sa", "Sb", "Ss", "Si", "So", "Sd", "9__gnu_cxx", "10__cxxabiv1", "10__gnu_norm",
                "11__gnu_debug", "14__gnu_parallel", "15__gnu_internal", "nw", "na", "dl", "da")
_NODE_MANGLED = ("2v8", "5cppgc", "4node")  # V8, cppgc and node:: (node's C++ API for addons)
_SPECIAL_MANGLED = re.compile(r"T[VTIS]|Thn?\d+_|Tvn?\d+_n?\d+_|Tc(?:hn?\d+_|vn?\d+_n?\d+_){2}|GV|GT[tn]|T[HW]")
_NESTED = re.compile(r"N[rVK]*[RO]?")


def _cxx_scope(mangled: str) -> tuple[str, bool]:
    """The mangled entity after ``_Z``, special-name prefixes and ``N``; whether there was a special prefix."""
    rest, special = mangled[2:], False
    while m := _SPECIAL_MANGLED.match(rest):
        rest, special = rest[m.end():], True
    m = _NESTED.match(rest)
    return (rest[m.end():] if m else rest), special


def _is_builtin_type(demangled: str) -> bool:
    """``typeinfo for int``, ``typeinfo name for char const*``: about a type with no scope and no template."""
    entity = demangled.rpartition(" for ")[2]
    return "::" not in entity and "<" not in entity


# What each host is, what provides it on Alpine, what the library it loads needs. The names it defines are the
# prefixes the scan itself uses (each ecosystem's HostProcess.provides).
_HOSTS: dict[Host, tuple[str, str, str]] = {
    Host.PYTHON: ("CPython (the python executable or libpython3.x) exports the Python C API",
                  "the python3 package", "the extension module needs a musl build (a musllinux wheel)"),
    Host.JVM: ("the JVM (libjvm.so) exports JNI_*, JVM_* and jio_*",
               "Alpine's OpenJDK (openjdk*-jre)", "the JNI library needs a musl build"),
    Host.NODE: ("node exports Node-API (napi_*, node_api_*) and libuv (uv_*)",
                "the nodejs package", "the addon needs a musl build (a linuxmusl prebuild)"),
}
# Node also re-exports the OpenSSL and zlib it bundles; those names are other libraries' too (libcrypto, libz),
# so only its own APIs are named as Node's here.
_NODE_OWN_API = ("napi_", "node_", "uv_")


def _host_prefixes(host: Host) -> tuple[str, ...]:
    prefixes = host_provides(host)
    return tuple(p for p in prefixes if p.startswith(_NODE_OWN_API)) if host is Host.NODE else prefixes


def provider_of(name: str, version: str | None = None) -> tuple[Provider | None, str | None]:
    """Where ``name`` comes from when it is not the C library's, and its demangled form (None for a C name).

    ``version`` is the symbol version a report printed (``CXXABI_1.3.9`` in ``_ZdlPvm@CXXABI_1.3.9``).
    """
    demangled = demangle(name) if name.startswith("_Z") else None
    if version is not None and version.startswith(("GLIBCXX_", "CXXABI_")):
        return Provider(ProviderKind.CXX_RUNTIME, _LIBSTDCXX, _LIBSTDCXX_FIX), demangled
    if version is not None and version.startswith("GCC_"):
        return Provider(ProviderKind.COMPILER_RUNTIME, _LIBGCC, _LIBGCC_FIX), demangled
    if name in _LIBSTDCXX_C_NAMES:
        return Provider(ProviderKind.CXX_RUNTIME, _LIBSTDCXX, _LIBSTDCXX_FIX), None
    if name.startswith(_LIBGCC_PREFIXES) or _LIBGCC_HELPER.fullmatch(name):
        return Provider(ProviderKind.COMPILER_RUNTIME, _LIBGCC, _LIBGCC_FIX), None
    if demangled is not None:
        scope, special = _cxx_scope(name)
        if scope.startswith(_STD_MANGLED) or (special and _is_builtin_type(demangled)):
            return Provider(ProviderKind.CXX_RUNTIME, _LIBSTDCXX, _LIBSTDCXX_FIX), demangled
        if scope.startswith(_NODE_MANGLED):
            return _host_provider(Host.NODE, "node exports its C++ API (V8, cppgc, node::)"), demangled
        return Provider(
            ProviderKind.CXX_LIBRARY, "a C++ library that defines it (not the C library, not the C++ runtime)",
            "ship that library built for musl (or rebuilt on Alpine); a C++ library also needs apk add libstdc++",
        ), demangled
    for host in _HOSTS:
        if name.startswith(_host_prefixes(host)):
            return _host_provider(host), None
    return None, None


def _host_provider(host: Host, what: str | None = None) -> Provider:
    exports, package, library = _HOSTS[host]
    source = f"the host process: {what or exports} to the libraries it loads"
    return Provider(ProviderKind.HOST, source, f"nothing for the symbol itself: {package} provides it; {library}")


# ---------------------------------------------------------------------------


def explain(symbol: str, catalog: Catalog, glibc: GlibcTable | None = None, *,
            target_musl: str | None = None, target_alpine: str | None = None) -> Explanation:
    """Everything the tables know about SYMBOL. Raises UsageError for a name nobody has.

    ``target_musl`` (with its Alpine release, when the user chose one) adds the answer for that target.
    """
    name = symbol.strip()
    if not name:
        raise UsageError("empty symbol name")
    name, _, tag = name.partition("@")  # "memcpy@GLIBC_2.14": musl never checks versions
    version = tag.lstrip("@") or None  # "name@@VERSION" is a default version
    if target_musl is not None and target_musl not in catalog.musl_versions:
        raise UsageError(f"unknown musl version {target_musl!r}; known: {', '.join(catalog.musl_versions)}")
    table = glibc or load_glibc_table()
    facts = _glibc_facts(name, table)
    versions = catalog.musl_versions
    rows = tuple(_musl_state(name, catalog, v, a) for v in versions for a in SUPPORTED_ARCHES)
    gcompat = catalog.gcompat
    provided = any(name in gcompat.symbols_for(a) for a in SUPPORTED_ARCHES)
    target = (TargetAnswer(target_musl, target_alpine, tuple(r for r in rows if r.musl == target_musl))
              if target_musl is not None else None)
    alpine_rows = tuple((r.alpine, r.musl) for r in catalog.alpine_releases)
    if facts is None and not provided and not any(r.resolves for r in rows):
        provider, demangled = provider_of(name, version)
        if provider is None:
            raise UsageError(
                f"unknown symbol {name!r}: not in glibc ({table.source}), in any musl "
                f"({', '.join(versions)}) or in gcompat {gcompat.version}, and not a C++, compiler runtime "
                "or host (CPython, JVM, Node) name")
        return Explanation(
            symbol=name, glibc=None, musl=rows, gcompat=False, gcompat_version=gcompat.version,
            resolves_from=dict.fromkeys(SUPPORTED_ARCHES), alpine_from=dict.fromkeys(SUPPORTED_ARCHES),
            cause=None, fix=provider.fix, glibc_source=table.source, alpine_rows=alpine_rows,
            demangled=demangled, provider=provider, target=target,
        )
    lfs64 = frozenset(
        n for v in versions for n in
        ({b + "64" for b in catalog.loader_rules(v).lfs64}
         | ({"readdir64_r"} if catalog.loader_rules(v).readdir64_r else set()))
    )
    ctx = _Ctx(name, facts, rows, provided, lfs64)
    resolves_from = {a: _resolves_from(rows, versions, a) for a in SUPPORTED_ARCHES}
    alpine_from = {a: _alpine_for(catalog, v) for a, v in resolves_from.items()}
    fix = _fix(ctx, catalog, resolves_from)
    if target is not None and target.resolves:
        remapped = any(r.state is MuslState.REMAPPED for r in target.rows)
        fix = (f"nothing on {target.label}: its loader resolves it (the LFS64 remap, which does not serve dlsym)"
               if remapped else f"nothing on {target.label}: musl {target.musl} exports it")
    return Explanation(
        symbol=name,
        glibc=facts,
        musl=rows,
        gcompat=provided,
        gcompat_version=gcompat.version,
        resolves_from=resolves_from,
        alpine_from=alpine_from,
        cause=_cause(ctx, versions),
        fix=fix,
        glibc_source=table.source,
        alpine_rows=alpine_rows,
        target=target,
    )


def _glibc_lines(g: GlibcFacts | None) -> list[str]:
    if g is None:
        return ["glibc:    not a glibc symbol"]
    lines: list[str] = []
    if g.arches:
        sonames = sorted({so for a in g.arches for so, _ in a.versions})
        kind = "" if g.kind == "func" else f" ({g.kind})"
        per = "; ".join(f"{a.introduced} on {a.arch}" + (" (the port's first version)" if a.at_baseline else "")
                        for a in g.arches)
        lines.append(f"glibc:    {', '.join(sonames)}{kind}; introduced {per}")
        if g.first and any(a.at_baseline and a.introduced != g.first for a in g.arches):
            lines.append(f"          first in glibc {g.first[len(_VERSION_PREFIX):]} (on any architecture)")
        for a in g.arches:
            vers = ", ".join(v + (f" ({so})" if len(sonames) > 1 else "") for so, v in a.versions)
            lines.append(f"          {a.arch} versions: {vers}")
    if g.private_in:
        libs = ", ".join(sorted({so for _, so in g.private_in}))
        prefix = "glibc:   " if not g.arches else "         "
        lines.append(f"{prefix} GLIBC_PRIVATE in {libs}" + (" (internal to glibc)" if g.private else ""))
    return lines


def _alpine_span(catalog_rows: tuple[tuple[str, str], ...], musl: tuple[str, ...]) -> str:
    alpines = [a for a, m in catalog_rows if m in musl]
    if not alpines:
        return ""
    return f" (Alpine {alpines[0]})" if len(alpines) == 1 else f" (Alpine {alpines[0]}-{alpines[-1]})"


def render_explanation(e: Explanation) -> str:
    """A short human text, one fact per line; musl versions with the same outcome share a line."""
    lines = [e.symbol]
    if e.demangled:
        lines.append(f"  c++:      {e.demangled}")
    if e.provider is not None:
        lines.append(f"  from:     {e.provider.source}")
        lines.append("  libc:     neither glibc nor musl (any version) exports it, nor gcompat")
        if e.target is not None:
            lines.append(f"  target:   {e.target.label}: not in its libc.so")
        lines.append(f"  fix:      {e.fix}")
        return "\n".join(lines) + "\n"
    lines += ["  " + ln for ln in _glibc_lines(e.glibc)]
    versions = list(dict.fromkeys(r.musl for r in e.musl))
    groups: list[tuple[list[str], str]] = []
    for v in versions:
        rows = [r for r in e.musl if r.musl == v]
        texts = {r.text for r in rows}
        what = texts.pop() if len(texts) == 1 else "; ".join(f"{r.arch}: {r.text}" for r in rows)
        if groups and groups[-1][1] == what:
            groups[-1][0].append(v)
        else:
            groups.append(([v], what))
    for i, (vs, what) in enumerate(groups):
        span = vs[0] if len(vs) == 1 else f"{vs[0]}-{vs[-1]}"
        alpine = _alpine_span(e.alpine_rows, tuple(vs))
        lines.append(f"  {'musl:' if i == 0 else '     '}     {span}{alpine}: {what}")
    lines.append(f"  gcompat:  {e.gcompat_version} {'provides it' if e.gcompat else 'does not provide it'}")
    if e.target is not None:
        texts = {r.text for r in e.target.rows}
        what = texts.pop() if len(texts) == 1 else "; ".join(f"{r.arch}: {r.text}" for r in e.target.rows)
        lines.append(f"  target:   {e.target.label}: {what}")
    if e.cause:
        lines.append(f"  cause:    {e.cause}")
    lines.append(f"  fix:      {e.fix}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# symbols
# ---------------------------------------------------------------------------


def symbol_table(catalog: Catalog, musl: str, arch: str) -> list[tuple[str, str, str, int]]:
    """musl's libc.so exports for one version and arch: (name, type, binding, size), sorted by name."""
    exports = catalog.musl_exports(musl, arch)
    return sorted((n, d.type, d.binding, d.size) for n, d in exports.symbols.items())


def render_symbol_table(rows: list[tuple[str, str, str, int]]) -> str:
    """One line per symbol, ``name<TAB>type<TAB>binding<TAB>size`` (grep/cut-friendly)."""
    return "".join(f"{n}\t{t}\t{b}\t{s}\n" for n, t, b, s in rows)
