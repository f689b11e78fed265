"""The constructor rule (muslcheck/elf/constructors/) against the real aarch64 loader on the two libraries where it
used to disagree (issue 19): Debian trixie's libgfortran5 and libopenblas0-pthread for arm64, dlopened lazily and
eagerly by a musl-built probe under qemu-aarch64-static, on every Debian musl of arm64.

- libgfortran's ``set_fpu`` calls ``feenableexcept`` (which musl lacks) only when ``options.fpe``, a ``.bss`` field
  only a Fortran main program sets, is non-zero: on 1.2.6 the lazy dlopen loads (the ``.bss`` guard).
- OpenBLAS's constructor ``gotoblas_init`` is an init_array entry filled by a symbolic relocation; it calls its own
  exported ``openblas_fork_handler`` through the PLT, which reaches ``__register_atfork@plt``: on 1.2.6 the lazy
  dlopen crashes there (the symbolic entry and the own PLT call followed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from muslcheck.elf.constructors import aarch64
from muslcheck.elf.constructors.machine import Memory
from tests.oracle.dlopen import run_dlopen
from tests.oracle.probe import build_probe, debian_library_tree
from tests.test_arch_oracle import (
    ARCHES,
    CATALOG,
    GCC_RUNTIME,
    GCC_RUNTIME_VERSION,
    model_dlopen,
    musl_arch,
    real_loaders,
)

ARCH = "aarch64"
# package -> (version, sha256 of the arm64 .deb); libgcc-s1 is what libgfortran needs besides glibc
PACKAGES = {
    "libgcc-s1": (GCC_RUNTIME_VERSION, GCC_RUNTIME["libgcc-s1"]["arm64"]),
    "libgfortran5": ("14.2.0-19", "5f771ed84bf8779d4598e66b719121ab1413c11412c87629e50c79d26b042612"),
    "libopenblas0-pthread": ("0.3.29+ds-3", "aa224d7ec5feed97f14e251586782052be4ad3719ac33915dc17ee0cedf7bb89"),
}
GFORTRAN, OPENBLAS = "lib/libgfortran.so.5.0.0", "lib/libopenblasp-r0.3.29.so"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path, Path]:
    """The loaders by version, the probe, and a tree whose /lib holds the packages' libraries."""
    arch = ARCHES[ARCH]
    loaders = real_loaders(ARCH)
    out = tmp_path_factory.mktemp("ctor-oracle")
    debian_library_tree(out / "tree" / "lib", ARCH, arch.debian, PACKAGES, "usr/lib/aarch64-linux-gnu/**/*.so*",
                        Path(CATALOG.glibc_interpreters[ARCH]).name)
    probe = build_probe(ARCH, next(iter(loaders.values())), out / "probe")
    return loaders, probe, out / "tree"


@pytest.mark.oracle
@pytest.mark.parametrize("mode", ["lazy", "now"])
@pytest.mark.parametrize("lib", [GFORTRAN, OPENBLAS], ids=["libgfortran", "libopenblas"])
def test_the_constructor_rule_agrees_with_the_real_loader(setup: tuple[dict[str, Path], Path, Path],
                                                          lib: str, mode: str) -> None:
    loaders, probe, tree = setup
    arch = ARCHES[ARCH]
    assert set(loaders) >= {"1.2.5", "1.2.6"}, sorted(loaders)
    for version, loader in loaders.items():
        real = run_dlopen(loader, probe, tree / lib, mode, arch=musl_arch(ARCH), runner=(arch.qemu,),
                          path_file=str(tree / "lib"))
        model = model_dlopen(tree, lib, version, ARCH, mode)
        where = (version, lib, mode, real, model)
        assert model.loads == real.ok, where
        if mode == "now":  # a missing name is an error the loader names; no constructor runs
            assert real.returncode >= 0 and not model.at_init, where
            continue
        if not real.ok:  # a lazy dlopen fails only by a crash in a constructor: the model names what it calls
            assert real.returncode < 0 and model.at_init, where
        if lib == GFORTRAN:  # class 1: set_fpu's feenableexcept is skipped, as the real run shows
            assert not model.at_init & {"feenableexcept", "fedisableexcept"}, where
        if lib == OPENBLAS and version == "1.2.6":  # class 2: the crash's own cause, three hops from the entry
            assert "__register_atfork" in model.at_init and real.returncode < 0, where


def _fake_memory(bss: bool) -> Memory:
    code = {0x1000: [0xD0000001,   # adrp x1, 0x3000
                     0xB9401020,   # ldr w0, [x1, #0x10]
                     0x35000060,   # cbnz w0, 0x1014
                     0xD65F03C0,   # ret
                     0xD503201F,   # nop
                     0x940003FB,   # bl 0x2000 (a PLT stub, slot 0x4000)
                     0xD65F03C0]}  # ret

    class Fake:
        little, word_size, tags = True, 8, dict[int, int]()

        def read_code(self, vaddr: int, size: int) -> bytes | None:
            words = code.get(vaddr)
            return b"".join(w.to_bytes(4, "little") for w in words)[:size] if words else None

        def word(self, vaddr: int) -> int | None:
            return None

        def plt_slot(self, target: int) -> int | None:
            return 0x4000 if target == 0x2000 else None

        def zero_at_load(self, vaddr: int) -> bool:
            return bss and vaddr == 0x3010

    return Fake()


def test_a_branch_on_a_bss_word_is_not_taken_and_what_only_it_reaches_is_not_read() -> None:
    memory = _fake_memory(bss=True)
    code = memory.read_code(0x1000, 28)
    assert code is not None
    assert aarch64.decode(code, 0x1000, 100, memory) == (4, set(), [])
    assert aarch64.decode(code, 0x1000, 100, _fake_memory(bss=False)) == (7, {0x4000}, [])  # data: both paths


def test_a_call_between_the_load_and_the_branch_ends_the_guard() -> None:
    memory = _fake_memory(bss=True)
    code = memory.read_code(0x1000, 28)
    assert code is not None
    words = [int.from_bytes(code[i : i + 4], "little") for i in range(0, 28, 4)]
    # bl 0x2000 where the cbnz was, cbnz one word later (to the same target): the callee may have written the word
    words[2:5] = [0x940003FE, 0x35000040, 0xD65F03C0]
    patched = b"".join(w.to_bytes(4, "little") for w in words)
    assert aarch64.decode(patched, 0x1000, 100, memory) == (7, {0x4000}, [])
