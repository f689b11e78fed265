"""The model against the real loaders: every sample, every Debian musl version, and the dlopen harness."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from muslcheck.elf import is_elf, read_elf_file
from muslcheck.judging.judge import kind_of
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.load import Context, Effect, LoadResult, Target, load
from muslcheck.ldso.tables import Catalog, Definition, tables_dir
from muslcheck.targets.directory import DirectoryRoot
from tests.oracle.dlopen import run_dlopen
from tests.oracle.ldd import LoaderReport, run_list
from tests.oracle.loaders import EXPECTED_VERSIONS

pytestmark = pytest.mark.oracle
CATALOG = Catalog()


@dataclass(frozen=True)
class Errors:
    """What a load fails on, in the loader's own terms, with paths relative to the root."""

    missing: frozenset[tuple[str, str]]
    unresolved: frozenset[tuple[str, str]]
    unsupported: frozenset[tuple[str, int]]
    tls: frozenset[tuple[str, str]]


def model_errors(result: LoadResult) -> Errors:
    unresolved = {(o.path, u.name) for o in result.objects for u in o.unresolved if u.effect is Effect.FATAL}
    return Errors(
        missing=frozenset((m.name, m.needed_by) for m in result.missing),
        unresolved=frozenset(unresolved),
        unsupported=frozenset((o.path, t) for o in result.objects for t, _ in o.unsupported_relocations),
        tls=frozenset((o.path, e.definer) for o in result.objects for e in o.tls_errors),
    )


def oracle_errors(report: LoaderReport, root: Path) -> Errors:
    prefix = str(root)

    def rel(path: str) -> str:
        return path[len(prefix):] if path.startswith(prefix + "/") else path

    return Errors(
        missing=frozenset((name, rel(by)) for name, by in report.missing_libraries),
        unresolved=frozenset((rel(f), s) for f, s in report.unresolved_symbols),
        unsupported=frozenset((rel(f), t) for f, t in report.unsupported_relocations),
        tls=frozenset((rel(f), rel(d)) for f, _, d in report.tls_errors),
    )


def debian_target(version: str) -> Target:
    """The target as Debian's libc.so really is: the upstream table with the documented deviations undone.

    The oracle loaders are Debian's builds; symbols/ strips Debian-only exports (fts_*, the renameat2
    backport in 1.2.5) and restores what Debian dropped (crypt in 1.2.3). Each difference is recorded
    in the table's "deviations", so the test can put Debian's view back and still demand exact agreement.
    """
    upstream = CATALOG.musl_exports(version, "x86_64")
    raw = json.loads((tables_dir() / f"musl-{version}-x86_64.json").read_text())
    symbols = dict(upstream.symbols)
    for d in raw["deviations"]:
        if d["action"] == "removed":
            symbols[d["name"]] = Definition("FUNC", "GLOBAL", 0)
        elif d["action"] == "added":
            symbols.pop(d["name"], None)
    return Target("x86_64", replace(upstream, symbols=symbols), CATALOG.loader_rules(version))


def model(root: Path, path: str, version: str, context: Context) -> LoadResult:
    directory = DirectoryRoot(root)
    return load(directory, FactsCache(directory), debian_target(version), path, context)


def sample_cases(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["name"], s["entry"]) for s in manifest["samples"]]


def test_every_sample_agrees_with_every_loader(
    samples_dir: Path, samples_manifest: dict[str, Any], musl_loaders: dict[str, Path]
) -> None:
    assert set(musl_loaders) >= set(EXPECTED_VERSIONS)
    disagreements = []
    checked = 0
    for version, loader in sorted(musl_loaders.items()):
        for name, entry in sample_cases(samples_manifest):
            root = samples_dir / name
            _, report, raw = run_list(loader, root / entry)
            assert not report.other_errors, raw
            real = oracle_errors(report, root)
            predicted = model_errors(model(root, "/" + entry, version, Context.EXECUTABLE))
            checked += 1
            if real != predicted:
                disagreements.append(f"{name} on musl {version}:\n  real:  {real}\n  model: {predicted}")
    assert checked >= 4 * 25
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("mode", ["lazy", "now"])
def test_dlopen_fatal_vs_latent_agrees_with_the_harness(
    samples_dir: Path, samples_manifest: dict[str, Any], musl_loaders: dict[str, Path], mode: str
) -> None:
    context = Context.DLOPEN_LAZY if mode == "lazy" else Context.DLOPEN_NOW
    harness = samples_dir / samples_manifest["harness"]
    disagreements = []
    for version, loader in sorted(musl_loaders.items()):
        for sample in samples_manifest["samples"]:
            root = samples_dir / sample["name"]
            for lib in sample["dlopen"]:
                real = run_dlopen(loader, harness, root / lib, mode)
                result = model(root, "/" + lib, version, context)
                errors = model_errors(result)
                fatal = {s for _, s in errors.unresolved} | {n for n, _ in errors.missing}
                crashes = bool(result.relr_unsupported)
                loads = not (fatal or errors.unsupported or errors.tls or crashes)
                where = f"{sample['name']} {lib} on {version} ({mode})"
                if real.ok != loads:
                    disagreements.append(f"{where}: real ok={real.ok} ({real.error}); model {errors}")
                elif not real.ok and crashes:
                    if real.error != "killed by SIGSEGV":
                        disagreements.append(f"{where}: model predicts a crash (DT_RELR), real: {real.error}")
                elif not real.ok:
                    assert real.error is not None
                    named = fatal | {f"type {t}" for _, t in errors.unsupported}
                    if "initial-exec TLS" not in real.error and not any(n in real.error for n in named):
                        disagreements.append(f"{where}: real error {real.error!r} not among {sorted(named)}")
    assert not disagreements, "\n".join(disagreements)


def test_latent_symbols_are_exactly_the_ones_lazy_dlopen_defers(
    samples_dir: Path, samples_manifest: dict[str, Any], musl_loaders: dict[str, Path]
) -> None:
    """reloc-plt and reloc-got load lazily and fail with RTLD_NOW; the model calls them latent, not fatal."""
    loader = musl_loaders["1.2.5"]
    harness = samples_dir / samples_manifest["harness"]
    for name, lib in (("reloc-plt", "app/lib/libplt.so"), ("reloc-got", "app/lib/libgot.so")):
        root = samples_dir / name
        assert run_dlopen(loader, harness, root / lib, "lazy").ok
        now = run_dlopen(loader, harness, root / lib, "now")
        assert not now.ok and now.error and "gnu_get_libc_version" in now.error
        lazy = model(root, "/" + lib, "1.2.5", Context.DLOPEN_LAZY)
        [obj] = [o for o in lazy.objects if o.path == "/" + lib]
        assert [(u.name, u.effect) for u in obj.unresolved if u.effect is not Effect.NULL] == [
            ("gnu_get_libc_version", Effect.LATENT)
        ]
        strict = model(root, "/" + lib, "1.2.5", Context.DLOPEN_NOW)
        [obj] = [o for o in strict.objects if o.path == "/" + lib]
        assert [(u.name, u.effect) for u in obj.unresolved if u.effect is not Effect.NULL] == [
            ("gnu_get_libc_version", Effect.FATAL)
        ]


def system_elf_files() -> list[Path]:
    found = []
    for top in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        for directory, _, names in os.walk(top):
            for name in names:
                path = Path(directory, name)
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    with open(path, "rb") as f:
                        if is_elf(f.read(4)):
                            found.append(path)
                except OSError:
                    continue
    return sorted(found)


@pytest.mark.system
def test_every_system_elf_agrees_with_every_loader(musl_loaders: dict[str, Path]) -> None:
    """Every ELF file of /usr/bin and /usr/lib/x86_64-linux-gnu, loaded as a program, on every version.

    Root is "/", so both sides read the same /etc/ld-musl-x86_64.path and search the same directories.
    """
    files = system_elf_files()
    assert len(files) > 300
    host_path_file = Path("/etc/ld-musl-x86_64.path")
    path_file = host_path_file.read_text() if host_path_file.exists() else None
    root = DirectoryRoot(Path("/"))
    cache = FactsCache(root)
    disagreements: list[str] = []
    for version, loader in sorted(musl_loaders.items()):
        tgt = debian_target(version)
        with ThreadPoolExecutor(4) as pool:
            runs = pool.map(lambda p, loader=loader: (p, run_list(loader, p, path_file=path_file)), files)
            for path, (_, report, raw) in runs:
                facts = read_elf_file(path)
                if report.other_errors:
                    # The loader refuses what is not a dynamic program; the scan calls those not applicable.
                    if not ("Not a valid dynamic program" in raw and kind_of(facts) in ("other", "static")):
                        disagreements.append(f"{path} on {version}: {report.other_errors}")
                    continue
                predicted = model_errors(load(root, cache, tgt, str(path), Context.EXECUTABLE))
                real = oracle_errors(report, Path("/nonexistent"))
                if real != predicted:
                    disagreements.append(f"{path} on {version}: {_difference(real, predicted)}")
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements[:50])


def _difference(real: Errors, predicted: Errors) -> str:
    parts = []
    for name in ("missing", "unresolved", "unsupported", "tls"):
        only_real = getattr(real, name) - getattr(predicted, name)
        only_model = getattr(predicted, name) - getattr(real, name)
        if only_real or only_model:
            parts.append(f"{name}: real only {sorted(only_real)}, model only {sorted(only_model)}")
    return "; ".join(parts)
