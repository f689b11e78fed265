"""Libraries dlopen-ed by a host program that exports symbols to them (the JVM's JNI_*, CPython's Py*):
the model, given the host's exports, against the real musl loader dlopen-ing from a host that exports them
(samples/harness/host_symbols.c linked -rdynamic into the probe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Host
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, Target, load
from muslcheck.ldso.tables import Catalog
from muslcheck.targets.directory import DirectoryRoot
from tests.oracle.dlopen import run_dlopen

CATALOG = Catalog()
LIBRARIES = {  # sample library -> the host that loads it
    ("jni", "app/lib/glibc/libdemojni.so"): Host.JVM,
    ("jni", "app/lib/musl/libdemojni.so"): Host.JVM,
    ("py-ext", "app/lib/glibc/demo.so"): Host.PYTHON,
    ("py-ext", "app/lib/musl/demo.so"): Host.PYTHON,
}


def model_loads(root: Path, lib: str, mode: str, version: str, provides: tuple[str, ...]) -> tuple[bool, set[str]]:
    tree = DirectoryRoot(root)
    target = Target("x86_64", CATALOG.musl_exports(version, "x86_64"), CATALOG.loader_rules(version))
    ctx = Context.DLOPEN_LAZY if mode == "lazy" else Context.DLOPEN_NOW
    result = load(tree, FactsCache(tree), target, "/" + lib, ctx, host_provides=provides)
    fatal = {u.name for o in result.objects for u in o.unresolved if u.effect is Effect.FATAL}
    return not fatal and not result.missing, fatal


@pytest.mark.oracle
@pytest.mark.parametrize("with_host", [False, True], ids=["bare-probe", "host-probe"])
@pytest.mark.parametrize("mode", ["lazy", "now"])
@pytest.mark.parametrize(("sample", "lib"), sorted(LIBRARIES))
def test_host_exports_agree_with_the_real_loader(
    sample: str, lib: str, mode: str, with_host: bool, samples_dir: Path, samples_manifest: dict[str, Any],
    musl_loaders: dict[str, Path],
) -> None:
    harness = samples_manifest["host_harness" if with_host else "harness"]
    provides = host_provides(LIBRARIES[sample, lib]) if with_host else ()
    for version, loader in musl_loaders.items():
        real = run_dlopen(loader, samples_dir / harness, samples_dir / sample / lib, mode)
        loads, fatal = model_loads(samples_dir / sample, lib, mode, version, provides)
        assert loads == real.ok, (version, real, fatal)
        if not real.ok:
            assert any(f"{name}: symbol not found" in (real.error or "") for name in fatal), (version, real, fatal)


def test_the_host_decides_what_a_glibc_jni_library_lacks(samples_dir: Path) -> None:
    """Under the JVM, JNI_GetCreatedJavaVMs is the JVM's: only the fortified glibc calls are missing."""
    root = samples_dir / "jni"
    loads, fatal = model_loads(root, "app/lib/glibc/libdemojni.so", "now", "1.2.5", host_provides(Host.JVM))
    assert not loads and fatal == {"__memcpy_chk", "__snprintf_chk"}
    assert model_loads(root, "app/lib/glibc/libdemojni.so", "lazy", "1.2.5", host_provides(Host.JVM)) == (True, set())
