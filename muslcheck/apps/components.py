"""Judged files grouped into the units a user acts on, each with one verdict and its fixes in order of preference:
the ecosystem's own fix (reinstall in the Alpine image, a known upgrade that ships a musl build, the Alpine runtime
image), an Alpine package, gcompat where it applies, LD_PRELOAD, and last a rebuild against musl."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from muslcheck.apps.application import Application
from muslcheck.apps.model import Choice, Flavour, Package, package_key
from muslcheck.model.report import (
    Component,
    Ecosystem,
    FileKind,
    FileReport,
    FixStep,
    StepKind,
    Verdict,
    component_id,
    file_components,
    file_steps,
    rank,
)
from muslcheck.targets.osdb import Ownership

# OS packages whose Alpine counterpart is known, each cited by the aports APKBUILD that builds it (path at the
# commit read); anything else is named by what apk resolves through its provides (cmd:NAME, so:SONAME).
ALPINE_COUNTERPART: dict[str, tuple[str, str]] = {  # Debian or RPM package -> (Alpine package, source)
    "curl": ("curl", "aports main/curl/APKBUILD (0162f3f): pkgname=curl"),
    "libcurl4": ("libcurl", "aports main/curl/APKBUILD (0162f3f): subpackage libcurl holds usr/lib"),
    "libcurl": ("libcurl", "aports main/curl/APKBUILD (0162f3f): subpackage libcurl holds usr/lib"),
    "libsnappy1v5": ("snappy", "aports main/snappy/APKBUILD (0141cee): the main package holds libsnappy.so.1"),
    "snappy": ("snappy", "aports main/snappy/APKBUILD (0141cee): pkgname=snappy"),
    "libxxhash0": ("libxxhash", "aports main/xxhash/APKBUILD (3b2e469): subpackage lib$pkgname:libs"),
    "xxhash-libs": ("libxxhash", "aports main/xxhash/APKBUILD (3b2e469): subpackage lib$pkgname:libs"),
}
# glibc itself: on Alpine musl is the C library, nothing is installed in its place
GLIBC_PACKAGES = frozenset({"libc6", "libc-bin", "libc6-dev", "glibc", "glibc-common", "glibc-minimal-langpack"})
_SITE_PYTHON = re.compile(r"/lib/python(3\.\d+)/(?:site|dist)-packages/")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$")  # "python:3.11-alpine", "eclipse-temurin:17-jre-alpine"
_APK_LINE = re.compile(r"^apk add ([a-z0-9][a-z0-9+._-]*)$")
_WHERE = (" in the Alpine image", " on Alpine")  # how the ecosystems' advice says where its command runs


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
        steps, notes = os_package_steps(pkg.manager, pkg.name, files)
        components.append(Component(
            name=pkg.name, version=pkg.version, ecosystem=Ecosystem.OS_PACKAGE,
            location=f"{pkg.manager}:{pkg.name}", verdict=Verdict.NOT_APPLICABLE, files=tuple(f.path for f in files),
            selected={}, fix=steps[0].text if steps else None,
            id=component_id(Ecosystem.OS_PACKAGE, pkg.name, f"{pkg.manager}:{pkg.name}"),
            fixes=tuple(s.text for s in steps), notes=notes, steps=steps,
        ))
    components.sort(key=lambda c: (c.ecosystem is Ecosystem.OS_PACKAGE, c.location, c.name))
    components.extend(file_components(tuple(loose)))
    member_of = {path: c.id for c in components for path in c.files}
    return tuple(components), tuple(replace(f, component=member_of.get(f.path)) for f in reports)


def os_package_steps(manager: str, name: str,
                     files: Sequence[FileReport]) -> tuple[tuple[FixStep, ...], tuple[str, ...]]:
    """What to install on Alpine in place of a glibc OS package: its cited counterpart, else each of its programs
    (cmd:NAME) and libraries (so:SONAME) for apk to resolve. No Alpine base image holds curl, git or nginx."""
    if name in GLIBC_PACKAGES:
        return (), ("glibc itself: on Alpine musl is the C library, and gcompat covers what glibc programs need of it",)
    if name in ALPINE_COUNTERPART:
        alpine, source = ALPINE_COUNTERPART[name]
        return (FixStep(StepKind.APK, f"apk add {alpine}  (Alpine's package for {manager}'s {name}: {source})",
                        alpine),), ()
    specs: list[str] = []
    for f in sorted(files, key=lambda f: f.path):
        base = f.path.rsplit("/", 1)[-1]
        if f.kind is FileKind.EXECUTABLE and ("/bin/" in f.path or "/sbin/" in f.path):
            specs.append(f"cmd:{base}")
        elif f.kind is FileKind.SHARED_LIBRARY and f.soname and "/" not in f.soname:
            specs.append(f"so:{f.soname}")
    steps = tuple(FixStep(StepKind.APK, f"apk add {spec}  (apk installs the package that provides it; no cited "
                                        f"Alpine name for {manager}'s {name})", spec) for spec in dict.fromkeys(specs))
    return steps, ()


def _package_component(package: Package, files: list[FileReport], choices: Sequence[Choice],
                       app: Application) -> Component:
    judged = [f for f in files if f.verdict is not Verdict.NOT_APPLICABLE]
    notes = [c.how for c in choices]
    lost: list[str] = []
    # A library with a fallback (pure Java, NIO, the JDK's TLS) survives a native build that fails to load:
    # it is degraded, and says what it runs without.
    survives = {c.selected.path: c for c in choices if c.fallback and c.selected is not None}
    verdicts = []
    for f in judged:
        choice = survives.get(f.path)
        if choice is not None and f.verdict is Verdict.BLOCKED and not _loads(f):
            notes.append(f"{f.path.rsplit('/', 1)[-1]} fails to load on musl: {choice.fallback}")
            verdicts.append(Verdict.DEGRADED)
            lost.append(choice.lost or choice.fallback or "")
        else:
            verdicts.append(f.verdict)
    for c in choices:
        if c.selected is None:
            if c.fallback:
                notes.append(f"{c.library} loads no native build on musl: {c.fallback}")
                verdicts.append(Verdict.DEGRADED)
                lost.append(c.lost or c.fallback)
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
    steps = _steps(package, files, judged, choices, verdict, app)
    return Component(
        name=package.name, version=package.version, ecosystem=package.ecosystem, location=package.location,
        verdict=verdict, files=tuple(f.path for f in files), selected=selected,
        fix=steps[0].text if steps else None,
        id=component_id(package.ecosystem, package.name, package.location), fixes=tuple(s.text for s in steps),
        notes=tuple(dict.fromkeys(notes)), steps=steps,
        lost="; ".join(dict.fromkeys(x for x in lost if x)) or None if verdict is Verdict.DEGRADED else None,
    )


def _loads(f: FileReport) -> bool:
    """The load itself succeeds (only latent problems, which crash on the first call instead)."""
    return not (f.missing_libraries or f.unsupported_relocations or f.tls_errors
                or any(s.fatal for s in f.unresolved_symbols))


def advice_step(line: str) -> FixStep:
    """An ecosystem's advice line as a step: an image, an apk package, or a command run in the Alpine image."""
    if _IMAGE.match(line):
        return FixStep(StepKind.BASE_IMAGE, line, line)
    if match := _APK_LINE.match(line):
        return FixStep(StepKind.APK, line, match.group(1))
    cut = min((i for i in (line.find(w) for w in _WHERE) if i > 0), default=-1)
    return FixStep(StepKind.REINSTALL, line, line[:cut] if cut > 0 else None)


def _steps(package: Package, files: list[FileReport], judged: list[FileReport], choices: Sequence[Choice],
           verdict: Verdict, app: Application) -> tuple[FixStep, ...]:
    if package.ecosystem is Ecosystem.RUNTIME and any(f.path in app.runtimes for f in files):
        return rank([advice_step(a) for a in package.advice] or [
            FixStep(StepKind.BASE_IMAGE, "use the Alpine variant of the base image")])
    if verdict in (Verdict.NATIVE, Verdict.NOT_APPLICABLE):
        return ()
    out = [FixStep(StepKind.UPGRADE, c.upgrade) for c in choices
           if c.upgrade and (c.selected is None or c.selected.flavour is not Flavour.MUSL)]
    own = [advice_step(a) for a in package.advice]
    out.extend(own)
    if any(s.kind is StepKind.REINSTALL for s in own):
        # Reinstalling in the Alpine image replaces these files: their packages and gcompat would contradict it.
        if package.ecosystem is Ecosystem.PYPI and (m := _SITE_PYTHON.search(package.location + "/")):
            image = f"python:{m.group(1)}-alpine"
            out.append(FixStep(StepKind.BASE_IMAGE, f"{image}  (the packages were installed for CPython "
                                                    f"{m.group(1)}: lib/python{m.group(1)})", image))
        return rank(out)
    for f in sorted(judged, key=lambda f: -f.verdict.severity):
        if f.verdict is not Verdict.NATIVE:
            out.extend(file_steps(f))
    return rank(out)
