"""A model of musl's dynamic linker (ldso/dynlink.c), run over a root filesystem.

It follows the real loader step by step, without executing anything:
``load_library`` and ``load_deps`` (``search``: reserved names, search order, inode dedup, the glibc-libc
substitution), ``find_sym2`` and ``get_lfs64`` (``chain``: one global chain, no version matching,
hidden/IFUNC/zero definitions invisible) and ``do_relocs`` (``relocs``: per relocation type, with lazy
deferral of GOT/PLT relocations under RTLD_LAZY and the initial-exec TLS check for modules loaded after
start-up). This module runs them in the order of start-up (``__dls3``) or of ``dlopen``.
Line references ("DL:n") are to ldso/dynlink.c of musl 1.2.5.

The package reads a tree only through the ``RootFS`` and ``FactsSource`` protocols, and imports nothing above
``muslcheck.elf`` and ``muslcheck.model``.
"""

from __future__ import annotations

from muslcheck.elf import ElfFacts
from muslcheck.ldso.chain import Chain, lfs64_base
from muslcheck.ldso.dso import Dso, definitions
from muslcheck.ldso.facts import FactsSource
from muslcheck.ldso.relocs import Relocated, RelocationMemo
from muslcheck.ldso.results import (
    Effect,
    LoadedObject,
    LoadResult,
    MissingLibrary,
    MissingReason,
    TlsError,
    UnresolvedSymbol,
)
from muslcheck.ldso.search import Process
from muslcheck.ldso.target import Target, gcompat_stub_name
from muslcheck.ldso.tree import Resolved, RootFS
from muslcheck.model.options import Context

__all__ = [
    "Context",
    "Effect",
    "LoadResult",
    "LoadedObject",
    "MissingLibrary",
    "MissingReason",
    "RelocationMemo",
    "Target",
    "TlsError",
    "UnresolvedSymbol",
    "gcompat_stub_name",
    "lfs64_base",
    "load",
]


def load(
    root: RootFS,
    cache: FactsSource,
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
    memo = memo or RelocationMemo()
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
        process = Process(root, cache, target, name)
        app = Dso(path=path, requested_as=path, found_by="main program", links=(), identity=resolved.identity,
                  needed_by=None, runtime_loaded=False, facts=facts, exports=definitions(facts))
        process.objects.append(app)
        for preload in preloads:
            process.load_library(preload, None)  # a preload that fails is ignored (DL:1365)
        process.load_deps(app)
        lazy_mode = False  # start-up binds everything now
        relocated = [*process.objects[1:], app]  # libraries first, the program last (DL:2028-2029)
    else:
        process = Process(root, cache, target, ldso_name or target.ldso_path)
        host = Dso(path="<host program>", requested_as="", found_by="host", links=(), identity=("host",),
                   needed_by=None, runtime_loaded=False, deps_loaded=True, exports=memo.host_exports(host_provides))
        process.objects.append(host)
        for preload in preloads:
            process.load_library(preload, None)
        process.add_libc()  # every musl host process names libc
        process.load_deps(host)
        loaded_before = len(process.objects)
        process.runtime = True
        lib = process.require(path, host, "dlopen")
        if lib is None:
            return LoadResult(context, process.ldso_name, tuple(_snapshot(d) for d in process.objects),
                              tuple(process.missing), ())
        process.load_deps(lib)
        lazy_mode = context is Context.DLOPEN_LAZY
        relocated = process.objects[loaded_before:]
    chain = Chain(list(process.objects))
    results: dict[int, LoadedObject] = {}
    for d in relocated:
        if d.facts is None:
            continue
        # prepare_lazy (DL:2079-2086): a bind-now object is relocated in full even under RTLD_LAZY.
        lazy = lazy_mode and d.runtime_loaded and not d.facts.bind_now
        if lazy:  # what its constructors call decides whether a deferred slot is fatal
            d.facts = cache.with_constructor_calls(d.path, d.identity, d.facts)
        results[id(d)] = _relocated(d, memo.relocate(chain, d, lazy, target.rules, process.libc), target)
    objects = tuple(results.get(id(d)) or _snapshot(d) for d in process.objects)
    relr = () if target.rules.relr else tuple(o.path for o in objects if o.facts is not None and o.facts.has_relr)
    return LoadResult(context, process.ldso_name, objects, tuple(process.missing), relr)


def _relocated(d: Dso, found: Relocated, target: Target) -> LoadedObject:
    assert d.facts is not None
    return LoadedObject(
        path=d.path, identity=d.identity, requested_as=d.requested_as, found_by=d.found_by, links=d.links,
        is_libc=False, facts=d.facts, runtime_loaded=d.runtime_loaded,
        unresolved=found.unresolved, unsupported_relocations=found.unsupported_relocations,
        tls_errors=found.tls_errors, lfs64_remapped=found.lfs64_remapped,
        wrong_arch=d.facts.machine if d.facts.machine != target.arch else None,
    )


def _snapshot(d: Dso) -> LoadedObject:
    return LoadedObject(
        path=d.path, identity=d.identity, requested_as=d.requested_as, found_by=d.found_by, links=d.links,
        is_libc=d.is_libc, facts=None, runtime_loaded=d.runtime_loaded,
    )


def _must_resolve(root: RootFS, path: str) -> Resolved:
    found = root.resolve(path)
    if not isinstance(found, Resolved):
        raise FileNotFoundError(path)
    return found

