"""Libraries dlopen-ed by a host program that exports symbols to them (the JVM's JNI_*, CPython's Py*):
the model, given the host's exports, against the real musl loader dlopen-ing from a host that exports them
(samples/harness/host_symbols.c linked -rdynamic into the probe)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from muslcheck.apps.application import host_provides, identify
from muslcheck.apps.model import Host
from muslcheck.apps.python import CPYTHON_PROVIDES
from muslcheck.elf import read_elf_file
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, Target, load
from muslcheck.ldso.tables import Catalog
from muslcheck.targets.directory import DirectoryRoot, discover
from tests.apps.pinned import debian_pinned
from tests.oracle.dlopen import run_dlopen
from tests.oracle.loaders import LoadersUnavailable, available_loaders
from tests.oracle.probe import build_probe
from tests.oracle.sandbox import sandbox_problem
from tests.support import unavailable
from tests.test_arch_oracle import assert_dlopen_agrees, model_dlopen, musl_arch

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


# CPython's own extension modules: Debian bookworm's CPython 3.11 lib-dynload, per architecture, against the real
# loader dlopen-ing them (RTLD_NOW, as CPython's importer does) from a probe that exports what CPython does.
LIB_DYNLOAD = "usr/lib/python3.11/lib-dynload"
DYNLOAD_ARCHES = {"x86_64": ("amd64", ()), "aarch64": ("arm64", ("qemu-aarch64-static",))}


@dataclass(frozen=True)
class Dynload:
    arch: str
    root: Path  # the extracted package
    modules: tuple[str, ...]  # paths in root
    loaders: dict[str, Path]
    host_probe: Path  # exports every Py*/_Py* name the modules import
    bare_probe: Path
    runner: tuple[str, ...]


def cpython_host_source(modules: list[Path], out: Path) -> Path:
    """C definitions of every name with CPython's prefixes the modules import: what the interpreter exports to
    them (data as data, the rest as functions; nothing calls them: dlopen runs only the modules' constructors)."""
    wanted: dict[str, str] = {}
    for module in modules:
        for use in read_elf_file(module).uses:
            if not use.defined and use.name.startswith(CPYTHON_PROVIDES):
                wanted[use.name] = use.type
    source = out / "cpython_host.c"
    source.write_text("".join(f"char {name}[256];\n" if kind in ("OBJECT", "TLS") else f"void {name}(void) {{}}\n"
                              for name, kind in sorted(wanted.items())))
    return source


@pytest.fixture(scope="module", params=sorted(DYNLOAD_ARCHES))
def dynload(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Dynload:
    arch: str = request.param
    debian, runner = DYNLOAD_ARCHES[arch]
    if problem := sandbox_problem():
        unavailable(problem)
    if runner and shutil.which(runner[0]) is None:
        unavailable(f"{runner[0]} is not installed (Debian package qemu-user-static)")
    try:
        loaders = available_loaders(arch=debian, runner=runner)
    except LoadersUnavailable as e:
        pytest.skip(f"qemu cannot run musl's {arch} loader here: {e}")
    root = debian_pinned("libpython3.11-stdlib", debian)
    modules = sorted((root / LIB_DYNLOAD).glob("*.so"))
    assert len(modules) > 30, modules
    out = tmp_path_factory.mktemp(f"dynload-{arch}")
    libc = next(iter(loaders.values()))
    host = build_probe(arch, libc, out, [cpython_host_source(modules, out)], export_dynamic=True)
    return Dynload(arch, root, tuple(str(m.relative_to(root)) for m in modules), loaders, host,
                   build_probe(arch, libc, out), runner)


def hosts_of(root: Path) -> dict[str, Host | None]:
    tree = DirectoryRoot(root)
    cache = FactsCache(tree)
    found = discover(tree, cache)
    app = identify(tree, cache, found.files, found.archives, None)
    return {f.path: app.host_of(f.path) for f in found.files}


def test_cpythons_own_modules_are_cpythons_wherever_they_live(dynload: Dynload, tmp_path: Path) -> None:
    """lib-dynload, and the same modules renamed in a bundle (a vendored interpreter, PyInstaller): each exports
    PyInit_<name>, so CPython loads it."""
    assert set(hosts_of(dynload.root).values()) == {Host.PYTHON}
    bundle = tmp_path / "opt" / "bundle" / "_internal"
    bundle.mkdir(parents=True)
    for module in dynload.modules:
        shutil.copyfile(dynload.root / module, bundle / Path(module).name.split(".")[0])
    assert set(hosts_of(tmp_path).values()) == {Host.PYTHON}


@pytest.mark.parametrize("with_host", [False, True], ids=["bare-probe", "host-probe"])
def test_cpythons_own_modules_agree_with_the_real_loader(dynload: Dynload, with_host: bool) -> None:
    """Every module, every Debian musl version: with CPython's exports only the modules' own problems remain
    (libraries the package does not ship, glibc names musl lacks); without them, the Py* names fail too."""
    provides = host_provides(Host.PYTHON) if with_host else ()
    probe = dynload.host_probe if with_host else dynload.bare_probe
    outcomes = set()
    for module in dynload.modules:
        for version, loader in dynload.loaders.items():
            real = run_dlopen(loader, probe, dynload.root / module, "now", arch=musl_arch(dynload.arch),
                              runner=dynload.runner)
            model = model_dlopen(dynload.root, module, version, dynload.arch, "now", provides)
            assert_dlopen_agrees(real, model, (version, module))
            outcomes.add(real.ok)
    assert outcomes == ({True, False} if with_host else {False})  # the host makes most of them load
