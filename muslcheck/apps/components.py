"""Judged files grouped into the units a user acts on, each with one verdict and its fixes in order of preference:
a musl build already present, a known upgrade that has one, the ecosystem's own variant, an Alpine package,
gcompat, LD_PRELOAD, and last a rebuild against musl."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from muslcheck.apps.application import Application
from muslcheck.apps.model import Choice, Ecosystem, Flavour, Package, package_key
from muslcheck.model.report import Component, FileReport, Verdict, component_id, file_components
from muslcheck.targets.osdb import Ownership


def build_components(
    app: Application, reports: tuple[FileReport, ...], ownership: Ownership
) -> tuple[tuple[Component, ...], tuple[FileReport, ...]]:
    """The components, and the file reports, each now naming its component."""
    by_package: dict[str, tuple[Package, list[FileReport]]] = {}
    by_os_package: dict[str, list[FileReport]] = {}
    loose: list[FileReport] = []
    for f in reports:
        package = app.owner.get(f.path)
        os_package = ownership.owners.get(f.path)
        if package is not None:
            by_package.setdefault(package_key(package), (package, []))[1].append(f)
        elif os_package is not None and f.verdict is Verdict.NOT_APPLICABLE:
            by_os_package.setdefault(str(os_package), []).append(f)
        else:
            loose.append(f)
    components: list[Component] = []
    for key, (package, files) in by_package.items():
        components.append(_package_component(package, files, app.choices.get(key, ()), app))
    for files in by_os_package.values():
        pkg = ownership.owners[files[0].path]
        components.append(Component(
            name=pkg.name, version=pkg.version, ecosystem=Ecosystem.OS_PACKAGE.value,
            location=f"{pkg.manager}:{pkg.name}", verdict=Verdict.NOT_APPLICABLE, files=tuple(f.path for f in files),
            selected={}, fix="replaced by the Alpine base image's own package",
            id=component_id(Ecosystem.OS_PACKAGE.value, pkg.name, f"{pkg.manager}:{pkg.name}"),
            fixes=("replaced by the Alpine base image's own package",),
        ))
    components.sort(key=lambda c: (c.ecosystem == Ecosystem.OS_PACKAGE.value, c.location, c.name))
    components.extend(file_components(tuple(loose)))
    member_of = {path: c.id for c in components for path in c.files}
    return tuple(components), tuple(replace(f, component=member_of.get(f.path)) for f in reports)


def _package_component(package: Package, files: list[FileReport], choices: Sequence[Choice],
                       app: Application) -> Component:
    judged = [f for f in files if f.verdict is not Verdict.NOT_APPLICABLE]
    notes = [c.how for c in choices]
    # A library with a fallback (pure Java, NIO, the JDK's TLS) survives a native build that fails to load.
    survives = {c.selected.path for c in choices if c.fallback and c.selected is not None}
    verdicts = []
    for f in judged:
        if f.path in survives and not _loads(f):
            notes.append(f"{f.path.rsplit('/', 1)[-1]} fails to load on musl: " + _fallback(choices, f.path))
        else:
            verdicts.append(f.verdict)
    for c in choices:
        if c.selected is None:
            if c.fallback:
                notes.append(f"{c.library} loads no native build on musl: {c.fallback}")
            else:
                verdicts.append(Verdict.BLOCKED)
    verdict = max(verdicts, key=lambda v: v.severity) if verdicts else (
        Verdict.NATIVE if survives or any(c.fallback for c in choices) else Verdict.NOT_APPLICABLE)
    notes.extend(app.selected[f.path] for f in files if f.path in app.selected and app.selected[f.path] not in notes)
    notes.extend(package.notes)
    selected = {c.arch: c.selected.path for c in choices if c.selected is not None}
    if not choices:
        for f in judged:
            selected.setdefault(f.arch, f.path)
    fixes = _fixes(package, files, judged, choices, verdict, app)
    return Component(
        name=package.name, version=package.version, ecosystem=package.ecosystem.value, location=package.location,
        verdict=verdict, files=tuple(f.path for f in files), selected=selected, fix=fixes[0] if fixes else None,
        id=component_id(package.ecosystem.value, package.name, package.location), fixes=fixes,
        notes=tuple(dict.fromkeys(notes)),
    )


def _loads(f: FileReport) -> bool:
    """The load itself succeeds (only latent problems, which crash on the first call instead)."""
    return not (f.missing_libraries or f.unsupported_relocations or f.tls_errors
                or any(s.fatal for s in f.unresolved_symbols))


def _fallback(choices: Sequence[Choice], path: str) -> str:
    return next(c.fallback or "" for c in choices if c.selected is not None and c.selected.path == path)


def _fixes(package: Package, files: list[FileReport], judged: list[FileReport], choices: Sequence[Choice],
           verdict: Verdict, app: Application) -> tuple[str, ...]:
    if package.ecosystem is Ecosystem.RUNTIME and any(f.path in app.runtimes for f in files):
        return package.advice or ("use the Alpine variant of the base image",)
    if verdict in (Verdict.NATIVE, Verdict.NOT_APPLICABLE):
        return ()
    out = [c.upgrade for c in choices if c.upgrade and (c.selected is None or c.selected.flavour is not Flavour.MUSL)]
    out.extend(package.advice)
    worst = sorted(judged, key=lambda f: -f.verdict.severity)
    for f in worst:
        if f.verdict is not Verdict.NATIVE:
            out.extend(f.fixes)
    return tuple(dict.fromkeys(out))
