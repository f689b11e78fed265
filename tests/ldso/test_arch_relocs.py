"""Each architecture's relocation classes, as musl's arch/<arch>/reloc.h defines them ("RH:n"), applied by
do_relocs (DL:n, musl 1.2.5's ldso/dynlink.c). The real loaders agree on built samples in test_arch_oracle.py;
these pin the rules that those samples cannot reach in ldd mode: what RTLD_LAZY defers, the TLS check, and
the types no musl supports."""

from __future__ import annotations

from unittest import mock

import pytest

from muslcheck.elf import SymbolUse
from muslcheck.elf.facts import Uses
from muslcheck.ldso.dso import Dso
from muslcheck.ldso.relocs import RELOC_CLASSES, relocate_use
from muslcheck.ldso.results import Effect, TlsError
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog

# Per machine: (REL_GOT and REL_PLT types, REL_SYMBOLIC type, the R_*_IRELATIVE type), read from reloc.h and
# include/elf.h.
ARCH_TYPES = {
    "x86_64": ({6, 7}, 1, 37),
    "aarch64": ({1025, 1026}, 257, 1032),
    "i386": ({6, 7}, 1, 42),  # RH:3-6
    "arm": ({21, 22}, 2, 160),  # RH:19-21
    "ppc64": ({20, 21}, 38, 248),  # RH:11-14
    "s390x": ({10, 11}, 22, 61),  # RH:3-5
    "riscv64": ({5}, 2, 58),  # RH:13-14: no REL_GOT
}
# Per machine, every type that writes a thread-pointer offset (REL_TPOFF, and REL_TPOFF_NEG on i386).
NEWEST = Catalog().musl_versions[-1]  # RELOC_CLASSES are the newest release's (older ones: test_tlsdesc_versions.py)
TPOFF_TYPES = {"x86_64": (18,), "aarch64": (1030,), "i386": (14, 37), "arm": (19,), "ppc64": (73,),
               "s390x": (56,), "riscv64": (11,)}


def use(rtype: int, *, weak: bool = False) -> tuple[Uses, int]:
    """A file's one use, an undefined "sym" named by one relocation of type ``rtype``: (its uses, its row)."""
    return Uses.from_rows([SymbolUse("sym", None, None, "WEAK" if weak else "GLOBAL", "FUNC", False, ((rtype, 1),))]), 0


def definer(dynamic_tls: bool) -> Dso:
    found: Dso = mock.Mock(spec=Dso, path="/lib/libdef.so", dynamic_tls=dynamic_tls)
    return found


def test_every_alpine_arch_has_classes() -> None:
    assert set(RELOC_CLASSES) == set(SUPPORTED_ARCHES) == set(ARCH_TYPES)


@pytest.mark.parametrize("machine", sorted(ARCH_TYPES))
def test_rtld_lazy_defers_exactly_the_got_and_plt_types(machine: str) -> None:
    """DL:438: an unbound GOT or PLT relocation waits for the first call under RTLD_LAZY; anything else fails."""
    deferred, _, _ = ARCH_TYPES[machine]
    for rtype in RELOC_CLASSES[machine]:
        if rtype == 0:
            continue  # REL_NONE: never looked up
        failed, _, _, _ = relocate_use(*use(rtype), machine, NEWEST, True, None, None)
        assert failed is not None
        assert failed.effect is (Effect.LATENT if rtype in deferred else Effect.FATAL), rtype
        now, _, _, _ = relocate_use(*use(rtype), machine, NEWEST, False, None, None)
        assert now is not None and now.effect is Effect.FATAL


@pytest.mark.parametrize("machine", sorted(ARCH_TYPES))
def test_a_bound_symbolic_relocation_reports_nothing(machine: str) -> None:
    _, symbolic, _ = ARCH_TYPES[machine]
    bound = relocate_use(*use(symbolic), machine, NEWEST, False, lambda *_: definer(False), None)
    assert bound == (None, (), (), False)


@pytest.mark.parametrize("machine", sorted(ARCH_TYPES))
def test_irelative_is_unsupported_even_when_bound(machine: str) -> None:
    """DL:553-556: no reloc.h names IRELATIVE, so the switch reaches its default."""
    _, _, irelative = ARCH_TYPES[machine]
    assert irelative not in RELOC_CLASSES[machine]
    _, unsupported, _, _ = relocate_use(*use(irelative), machine, NEWEST, False, lambda *_: definer(False), None)
    assert unsupported == ((irelative, 1),)


@pytest.mark.parametrize(("machine", "rtype"), [(m, t) for m, types in sorted(TPOFF_TYPES.items()) for t in types])
def test_initial_exec_tls_needs_a_static_definer(machine: str, rtype: int) -> None:
    """DL:459-464: REL_TPOFF and REL_TPOFF_NEG fail against a definer whose TLS came in through dlopen."""
    _, _, tls, _ = relocate_use(*use(rtype), machine, NEWEST, False, lambda *_: definer(True), None)
    assert tls == (TlsError("sym", "/lib/libdef.so"),)
    _, _, tls, _ = relocate_use(*use(rtype), machine, NEWEST, False, lambda *_: definer(False), None)
    assert tls == ()


@pytest.mark.parametrize("machine", sorted(ARCH_TYPES))
def test_a_weak_undefined_binds_to_null_whatever_the_class(machine: str) -> None:
    """DL:436-437: not an error; the type is then applied (and an unsupported one is still reported)."""
    for rtype in RELOC_CLASSES[machine]:
        failed, unsupported, _, _ = relocate_use(*use(rtype, weak=True), machine, NEWEST, False, None, None)
        assert unsupported == ()
        assert failed is None or failed.effect is Effect.NULL
