"""The command line: parse, call the library, render, choose the exit code. Nothing else."""

from __future__ import annotations

import errno
import gc
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TextIO, TypeVar

import click

from muslcheck import __version__
from muslcheck.cache import CacheStore, Store, default_cache_dir, default_salt, open_store
from muslcheck.cache.store import DEFAULT_MAX_BYTES
from muslcheck.ldso.tables import SUPPORTED_ARCHES, Catalog
from muslcheck.model.errors import InputError, MuslcheckError, UsageError
from muslcheck.model.options import Context
from muslcheck.model.report import Report, Verdict, summary_line
from muslcheck.render import DEFAULT_FORMAT, Renderer, RenderOptions, describe_formats, renderer_for
from muslcheck.render.interface import visible
from muslcheck.scan import ScanOptions, resolve_version, scan
from muslcheck.targets.reference import IMAGE_FORMS, ReferenceKind, parse_reference

if TYPE_CHECKING:
    from muslcheck.fleet import FleetReport

EXIT_OK = 0
EXIT_INCOMPATIBLE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3

# In order of severity: "degraded" (a fallback runs instead of the native part) is worse than needing gcompat
FAIL_LEVELS = (Verdict.NATIVE, Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.DEGRADED, Verdict.BLOCKED)
DEFAULT_IGNORE_FILE = ".muslcheck.toml"

EXIT_CODES_HELP = """\b
Exit codes:
  0  compatible: no component reaches the --fail-on level, and every file was checked
  1  incompatible: a component reaches it, or a file could not be checked (see --allow-unchecked),
     or there was no ELF file to check and --fail-on-empty was given
  2  usage error (unknown option, version or format; bad ignore file)
  3  input error (missing path, unreadable input, unwritable output, internal error)"""
MAIN_EXIT_CODES_HELP = """\b
Exit codes (each command's --help lists its own):
  0  success (scan: compatible)
  1  scan: incompatible, or a file could not be checked
  2  usage error
  3  input error"""
EXPLAIN_EXIT_CODES_HELP = """\b
Exit codes:
  0  the symbol is known: where it comes from and what to do about it
  2  usage error: a symbol that no C library, C++ or compiler runtime or host has; unknown --alpine/--musl
  3  input error: a symbol table cannot be read"""
SYMBOLS_EXIT_CODES_HELP = """\b
Exit codes:
  0  the table was printed
  2  usage error: unknown --alpine or --musl version, or both given
  3  input error: a symbol table cannot be read"""


def exit_code(report: Report, fail_on: Verdict, allow_unchecked: bool = False, fail_on_empty: bool = False) -> int:
    """1 when any counted component (not "not-applicable") reaches ``fail_on``, when something that may
    hold ELF code went unchecked (unless allowed), or when there was nothing to check (if ``fail_on_empty``);
    else 0."""
    if fail_on_empty and report.verdict is Verdict.NOTHING_TO_CHECK:
        return EXIT_INCOMPATIBLE
    counted = [c.verdict for c in report.components if c.verdict is not Verdict.NOT_APPLICABLE]
    if any(v.severity >= fail_on.severity for v in counted):
        return EXIT_INCOMPATIBLE
    return EXIT_OK if report.complete or allow_unchecked else EXIT_INCOMPATIBLE


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=MAIN_EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="muslcheck")
def main() -> None:
    """Can this application move to Alpine (musl libc)? And if not, what breaks and what fixes it."""


_R = TypeVar("_R", bound="_Named")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class OutputSpec(Generic[_R]):
    renderer: _R
    file: Path | None  # None: stdout


def parse_outputs(values: tuple[str, ...], default_file: Path | None) -> list[OutputSpec[Renderer]]:
    """``-o FORMAT[=FILE]``, repeatable (as syft); FORMAT is a name or an alias of ``muslcheck.render.FORMATS``;
    at most one output may go to stdout."""
    return _parse_specs(values, default_file, renderer_for)


def _parse_specs(values: tuple[str, ...], default_file: Path | None,
                 lookup: Callable[[str], _R]) -> list[OutputSpec[_R]]:
    specs = []
    for value in values or (DEFAULT_FORMAT.name,):
        name, sep, file = value.partition("=")
        renderer = lookup(name)
        if sep and not file:
            raise UsageError(f"-o {value}: the file name after '=' is empty")
        specs.append(OutputSpec(renderer, Path(file) if sep else None))
    to_stdout = [s for s in specs if s.file is None]
    if default_file is not None and len(to_stdout) == 1:
        specs = [OutputSpec(s.renderer, default_file) if s.file is None else s for s in specs]
    elif len(to_stdout) > 1:
        raise UsageError("more than one output goes to stdout: give FORMAT=FILE for all but one")
    return specs


@main.command(epilog=EXIT_CODES_HELP, help="Judge every ELF file of TARGET: a directory (the target's root "
              f"filesystem), one file, or an image: {IMAGE_FORMS}, or a path whose kind is detected from its content. "
              "Several targets (or --targets, or --dask) make one fleet report: per target its verdict and blockers, "
              "and the blockers they share, ranked (formats: table, json, markdown).")
@click.argument("paths", metavar="TARGET...", nargs=-1)
@click.option("--targets", "targets_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read targets from FILE, one per line (blank lines and # comments ignored): a fleet report.")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Scan the targets on the Dask cluster whose scheduler is ADDRESS (tcp://HOST:PORT); "
                   "needs muslcheck[fleet].")
@click.option("--cache", "cache_location", metavar="DIR|URL",
              help="The report cache: a directory or an fsspec URL (s3://bucket/prefix, ...) workers share "
                   "(default: $MUSLCHECK_CACHE_DIR, else $XDG_CACHE_HOME/muslcheck).")
@click.option("--alpine", metavar="X.Y", help="Target Alpine release (default: the newest known).")
@click.option("--musl", metavar="X.Y.Z", help="Target musl version instead of an Alpine release.")
@click.option("--arch", type=click.Choice(SUPPORTED_ARCHES), help="Judge only files of this architecture.")
@click.option("--platform", metavar="OS/ARCH",
              help="linux/amd64 (default for images), linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x "
                   "or linux/riscv64: the image manifest, and the architecture judged.")
@click.option("--base", metavar="IMAGE", help="Judge only what TARGET adds to this base image (any image form).")
@click.option("--include-runtimes", is_flag=True,
              help="Judge glibc language runtimes (a JRE, CPython, Node) instead of naming their Alpine variant.")
@click.option("--include-os-packages", is_flag=True,
              help="Also judge files that OS packages own (dpkg, apk, rpm); Alpine replaces those.")
@click.option("--insecure-registry", is_flag=True, help="Allow plain HTTP to a registry on localhost.")
@click.option("--docker-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Registry credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).")
@click.option("--gcompat/--no-gcompat", default=False, show_default=True,
              help="Whether gcompat is installed on the target.")
@click.option("--context", "load_context", type=click.Choice([c.value for c in Context]),
              help="Load context for every dynamic file (default: from what the file is).")
@click.option("--library-path", metavar="DIRS", help="LD_LIBRARY_PATH for the model (paths inside the root).")
@click.option("--preload", metavar="LIB", multiple=True, help="LD_PRELOAD entry for the model (repeatable).")
@click.option("-o", "--output", "outputs", metavar="FORMAT[=FILE]", multiple=True,
              help=f"Output format, repeatable: {describe_formats()} (default: {DEFAULT_FORMAT.name} on stdout).")
@click.option("--file", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the output that would go to stdout here instead.")
@click.option("--fail-on", type=click.Choice([v.value for v in FAIL_LEVELS]), default=Verdict.BLOCKED.value,
              show_default=True, help="Exit 1 when any component reaches this verdict "
              f"({' < '.join(v.value for v in FAIL_LEVELS)}).")
@click.option("--ignore", "ignore_file", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Accepted findings (default: ./{DEFAULT_IGNORE_FILE} when it exists).")
@click.option("--fail-on-empty", is_flag=True,
              help="Exit 1 when the target holds no ELF file (a mistyped path in CI then fails).")
@click.option("--allow-unchecked", is_flag=True,
              help="Exit 0 even when some files could not be checked (malformed, unreadable, too large).")
@click.option("--no-cache", is_flag=True,
              help="Neither read nor write the report cache ($MUSLCHECK_CACHE_DIR, $XDG_CACHE_HOME/muslcheck).")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes that judge the files; 0: one per idle CPU, at most 8.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
def scan_command(
    paths: tuple[str, ...],
    targets_file: Path | None,
    dask_address: str | None,
    cache_location: str | None,
    alpine: str | None,
    musl: str | None,
    arch: str | None,
    platform: str | None,
    base: str | None,
    include_os_packages: bool,
    include_runtimes: bool,
    no_cache: bool,
    insecure_registry: bool,
    docker_config: Path | None,
    gcompat: bool,
    load_context: str | None,
    library_path: str | None,
    preload: tuple[str, ...],
    outputs: tuple[str, ...],
    out_file: Path | None,
    fail_on: str,
    ignore_file: Path | None,
    fail_on_empty: bool,
    allow_unchecked: bool,
    jobs: int,
    quiet: bool,
) -> None:
    if not paths and targets_file is None:
        _fail("give a TARGET, several, or --targets FILE (muslcheck scan --help)", EXIT_USAGE)
    if len(paths) > 1 or targets_file is not None or dask_address is not None:
        _scan_fleet(paths, targets_file, dask_address, cache_location, outputs, out_file, fail_on, allow_unchecked,
                    fail_on_empty, quiet, jobs, no_cache, dict(
                        alpine=alpine, musl=musl, arch=arch, platform=platform, gcompat=gcompat,
                        context=Context(load_context) if load_context else None, library_path=library_path,
                        preload=preload, ignore=ignore_file, base=base, include_os_packages=include_os_packages,
                        include_runtimes=include_runtimes, insecure_registry=insecure_registry,
                        docker_config=docker_config))
    path = paths[0]
    with _exit_codes():
        specs = parse_outputs(outputs, out_file)
        render_options = RenderOptions(color=_stdout_takes_color(), fail_on=Verdict(fail_on))
        if ignore_file is None and Path(DEFAULT_IGNORE_FILE).is_file():
            ignore_file = Path(DEFAULT_IGNORE_FILE)
        _refuse_special_inputs(path, ignore_file)
        with _no_cycle_collection(), StderrProgress(enabled=not quiet and sys.stderr.isatty()) as progress, \
                _report_cache(no_cache, cache_location) as store:
            options = ScanOptions(
                alpine=alpine, musl=musl, arch=arch, platform=platform, gcompat=gcompat,
                context=Context(load_context) if load_context else None, library_path=library_path,
                preload=preload, ignore=ignore_file, base=base, include_os_packages=include_os_packages,
                include_runtimes=include_runtimes, insecure_registry=insecure_registry,
                docker_config=_docker_config_for(path, docker_config), progress=progress, cache=store, jobs=jobs,
            )
            report = scan(path, options)
            progress.close()  # the bar's line is gone and the cursor back before any output
            for spec in specs:
                output = _render(spec, report, render_options)
                if spec.file is None:
                    click.echo(output, nl=False)
                else:
                    _write_atomically(spec.file, output)
    if report.verdict is Verdict.NOTHING_TO_CHECK:
        click.echo(f"muslcheck: warning: nothing to check: no ELF file under {path}", err=True)
    elif not quiet and not any(s.renderer.shows_summary and s.file is None for s in specs):
        # No human summary (the table) on stdout: the notes and the summary line go to stderr instead.
        for line in (*report.notes, summary_line(report)):
            click.echo(f"muslcheck: {visible(line)}", err=True)  # notes may quote names from the target
    else:  # the table on stdout holds the notes; a warning among them (the platform mismatch) goes to stderr too
        for line in report.notes:
            if line.startswith("warning: "):
                click.echo(f"muslcheck: {visible(line)}", err=True)
    sys.exit(exit_code(report, Verdict(fail_on), allow_unchecked, fail_on_empty))


def _scan_fleet(paths: tuple[str, ...], targets_file: Path | None, dask_address: str | None,
                cache_location: str | None, outputs: tuple[str, ...], out_file: Path | None, fail_on: str,
                allow_unchecked: bool, fail_on_empty: bool, quiet: bool, jobs: int, no_cache: bool,
                scan_fields: dict[str, Any]) -> NoReturn:
    """Several targets (or --targets, or --dask): one fleet report (docs/fleet.md), and its exit code."""
    from muslcheck.fleet import CacheSpec, FleetOptions, fleet_renderer_for, read_targets_file, scan_fleet
    from muslcheck.fleet import summary_line as fleet_summary_line

    with _exit_codes():
        specs = _parse_specs(outputs, out_file, fleet_renderer_for)
        targets = [*paths, *(read_targets_file(targets_file) if targets_file is not None else ())]
        if not targets:
            raise UsageError(f"{targets_file}: no targets in the file")
        if scan_fields["ignore"] is None and Path(DEFAULT_IGNORE_FILE).is_file():
            scan_fields["ignore"] = Path(DEFAULT_IGNORE_FILE)
        docker_config = scan_fields["docker_config"] or _default_docker_config(warn=False)
        options = ScanOptions(**{**scan_fields, "docker_config": docker_config})
        location = cache_location if cache_location is not None else str(default_cache_dir())
        cache = None if no_cache else CacheSpec(location, DEFAULT_MAX_BYTES)
        render_options = RenderOptions(color=_stdout_takes_color(), fail_on=Verdict(fail_on))
        with StderrProgress(enabled=not quiet and sys.stderr.isatty()) as progress:
            fleet = scan_fleet(targets, options, FleetOptions(jobs=jobs, dask=dask_address, cache=cache,
                                                              progress=progress))
            progress.close()
            for spec in specs:
                output = spec.renderer.render(fleet, render_options if spec.file is None
                                              else replace(render_options, color=False))
                if spec.file is None:
                    click.echo(output, nl=False)
                else:
                    _write_atomically(spec.file, output)
    for t in fleet.targets:
        if t.error is not None:
            where = "" if t.error.startswith(t.target) else f"{t.target}: "
            click.echo(f"muslcheck: error: {where}{t.error}", err=True)
        elif t.verdict is Verdict.NOTHING_TO_CHECK:
            click.echo(f"muslcheck: warning: nothing to check: no ELF file under {t.target}", err=True)
    if not quiet and not any(s.renderer.shows_summary and s.file is None for s in specs):
        click.echo(f"muslcheck: {fleet_summary_line(fleet)}", err=True)
    sys.exit(fleet_exit_code(fleet, Verdict(fail_on), allow_unchecked, fail_on_empty))


def fleet_exit_code(fleet: FleetReport, fail_on: Verdict, allow_unchecked: bool = False,
                    fail_on_empty: bool = False) -> int:
    """``exit_code``'s rule over every target; a target that failed counts as unchecked (1), and when every
    target failed: 2 if each failed on a usage error, else 3."""
    scanned = [t for t in fleet.targets if not t.failed]
    if not scanned:
        return EXIT_USAGE if all(t.error_kind == "usage" for t in fleet.targets) else EXIT_INPUT
    if len(scanned) < len(fleet.targets):
        return EXIT_INCOMPATIBLE
    for t in scanned:
        if fail_on_empty and t.verdict is Verdict.NOTHING_TO_CHECK:
            return EXIT_INCOMPATIBLE
        if t.worst_component is not None and t.worst_component.severity >= fail_on.severity:
            return EXIT_INCOMPATIBLE
        if not (t.complete or allow_unchecked):
            return EXIT_INCOMPATIBLE
    return EXIT_OK


@contextmanager
def _exit_codes() -> Iterator[None]:
    """The CLI boundary: each error is one line on stderr and its documented exit code, never a traceback."""
    try:
        yield
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and no traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except (InputError, MuslcheckError, OSError) as e:
        _fail(str(e), EXIT_INPUT)
    except Exception as e:  # a bug still ends in one line and exit 3
        _fail(f"internal error: {e!r}", EXIT_INPUT)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A scan makes many small acyclic objects (the facts, the report): the cycle collector would walk them
    again and again for nothing, a fifth of the scan's time. It runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _report_cache(disabled: bool, location: str | None = None) -> Iterator[CacheStore | None]:
    if disabled:
        yield None
        return
    store = open_store(location if location is not None else default_cache_dir(), salt=default_salt())
    try:
        yield store
    finally:
        store.close()


@main.group()
def cache() -> None:
    """The report cache: an unchanged directory or image is not scanned twice with the same options."""


@cache.command("prune")
def cache_prune() -> None:
    """Remove every cached report."""
    directory = default_cache_dir()
    with Store(directory, salt="") as store:
        freed = store.prune()
        reason = store.stats.disabled
    if reason:
        _fail(f"cache {directory}: {reason}", EXIT_INPUT)
    click.echo(f"muslcheck: removed {freed} bytes from {directory}")


@cache.command("dir")
def cache_dir() -> None:
    """Print the cache directory."""
    click.echo(str(default_cache_dir()))


def _default_docker_config(warn: bool = True) -> Path | None:
    """Where `docker login` keeps credentials; the library never reads the environment itself. One that cannot be
    read is a warning (the pull goes on anonymously), never an error."""
    directory = os.environ.get("DOCKER_CONFIG")
    path = Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"
    problem = _unreadable_regular_file(path)
    if problem is None:
        return path
    if warn and problem != "no such file":
        click.echo(f"muslcheck: warning: {path}: {problem}: no registry credentials are used", err=True)
    return None


def _docker_config_for(target: str, given: Path | None) -> Path | None:
    """Credentials are read only for a registry target: any other scan never touches the docker config."""
    try:
        is_registry = parse_reference(target).kind is ReferenceKind.REGISTRY
    except MuslcheckError:
        return given  # the scan reports the bad reference itself
    if not is_registry:
        return None
    if given is not None:
        problem = _unreadable_regular_file(given / "config.json" if given.is_dir() else given)
        if problem is not None:
            click.echo(f"muslcheck: warning: {given}: {problem}: no registry credentials are used", err=True)
            return None
        return given
    return _default_docker_config()


def _unreadable_regular_file(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file (checked without blocking: a FIFO is never opened), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return e.strerror or str(e)
    try:
        return None if stat.S_ISREG(os.fstat(fd).st_mode) else "not a regular file"
    finally:
        os.close(fd)


def _refuse_special_inputs(target: str, ignore_file: Path | None) -> None:
    """A FIFO, device or socket as the target or the ignore file would block or never end: a one-line error."""
    try:
        ref = parse_reference(target)
    except MuslcheckError:
        ref = None  # the scan reports it
    for path, code in ((ref.path if ref is not None else None, EXIT_INPUT), (ignore_file, EXIT_USAGE)):
        if path is None:
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # missing: the scan says so
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            _fail(f"{path}: {_special_kind(mode)}, not a file or directory: refused", code)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _stdout_takes_color() -> bool:
    """A terminal on stdout, and NO_COLOR unset or empty (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _render(spec: OutputSpec[Renderer], report: Report, options: RenderOptions) -> str | bytes | list[bytes]:
    """Colour (which only the table uses) goes to stdout alone, never into a file. A file takes the pieces of a
    format that has them (JSON), written one by one: the whole document is never one object."""
    if spec.file is not None and spec.renderer.pieces is not None:
        return spec.renderer.pieces(report, replace(options, color=False))
    return spec.renderer.render(report, options if spec.file is None else replace(options, color=False))


class StderrProgress:
    """Progress on a terminal's stderr, on one line: a counter while the total is unknown, then a bar per stage.

    ``close()`` clears that line and shows the cursor again; the scan command calls it before any other
    output, and leaving the ``with`` block calls it too (also on Ctrl-C and on errors)."""

    CLEAR_LINE = "\r\033[K"
    HIDE_CURSOR = "\033[?25l"
    SHOW_CURSOR = "\033[?25h"

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self._drawn = ""  # what the line shows now
        self._cursor_hidden = False

    def __enter__(self) -> StderrProgress:
        return self

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled or (total is None and done % 64):
            return
        text = f"{stage}: {done}" if total is None else self._bar(stage, done, total)
        if text != self._drawn:
            self._write(("" if self._cursor_hidden else self.HIDE_CURSOR) + self.CLEAR_LINE + text)
            self._cursor_hidden = True
            self._drawn = text

    def _bar(self, stage: str, done: int, total: int) -> str:
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        width = min(40, self._columns() - len(stage) - 9)  # "STAGE [BAR] 100%" stays shorter than the line
        if width < 10:
            return f"{stage} {fraction:4.0%}"
        filled = int(width * fraction)
        return f"{stage} [{'#' * filled}{' ' * (width - filled)}] {fraction:4.0%}"

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            return 80

    def close(self) -> None:
        """Clear the progress line and show the cursor again; nothing when nothing was drawn."""
        text = (self.CLEAR_LINE if self._drawn else "") + (self.SHOW_CURSOR if self._cursor_hidden else "")
        self._drawn, self._cursor_hidden = "", False
        if text:
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr went away: progress is not worth an error
            self.enabled = False

    def __exit__(self, *exc: object) -> None:
        self.close()


scan_command.name = "scan"


@main.command(epilog=EXPLAIN_EXIT_CODES_HELP)
@click.argument("symbol")
@click.option("--alpine", metavar="X.Y", help="Also answer for this Alpine release.")
@click.option("--musl", metavar="X.Y.Z", help="Also answer for this musl version.")
def explain(symbol: str, alpine: str | None, musl: str | None) -> None:
    """Where SYMBOL comes from (glibc version, musl versions, gcompat; or libstdc++, libgcc_s, the host
    process for C++, compiler runtime and CPython/JVM/Node names) and what to do about it. SYMBOL may carry
    its version as a report prints it (_ZdlPvm@CXXABI_1.3.9)."""
    from muslcheck.explain import explain as explain_symbol  # here: it loads the loader model, a scan may not
    from muslcheck.explain import render_explanation

    catalog = Catalog()
    try:
        target_musl, target_alpine = resolve_version(catalog, alpine, musl) if alpine or musl else (None, None)
        explanation = explain_symbol(symbol, catalog, target_musl=target_musl, target_alpine=target_alpine)
        click.echo(render_explanation(explanation), nl=False)
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except MuslcheckError as e:
        _fail(str(e), EXIT_INPUT)


@main.command(epilog=SYMBOLS_EXIT_CODES_HELP)
@click.option("--alpine", metavar="X.Y", help="Target Alpine release (default: the newest known).")
@click.option("--musl", metavar="X.Y.Z", help="Target musl version instead of an Alpine release.")
@click.option("--arch", type=click.Choice(SUPPORTED_ARCHES), default="x86_64", show_default=True)
def symbols(alpine: str | None, musl: str | None, arch: str) -> None:
    """List musl's exported symbols for a target: NAME TYPE BINDING SIZE, one per line."""
    from muslcheck.explain import render_symbol_table, symbol_table  # here: they load the loader model

    catalog = Catalog()
    try:
        version, _ = resolve_version(catalog, alpine, musl)
        click.echo(render_symbol_table(symbol_table(catalog, version, arch)), nl=False)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except MuslcheckError as e:
        _fail(str(e), EXIT_INPUT)


@main.command()
def versions() -> None:
    """List the Alpine releases and musl versions muslcheck knows, with sources."""
    catalog = Catalog()
    try:
        for r in catalog.alpine_releases:
            click.echo(f"alpine {r.alpine:6} musl {r.musl:7} {r.source}")
        edge = catalog.alpine_release("edge")
        click.echo(f"alpine {edge.alpine:6} musl {edge.musl:7} {edge.source}")
        for alpine, why in catalog.unverified_alpine.items():
            click.echo(f"alpine {alpine:6} musl ?       not mapped: {why}")
        click.echo("musl versions: " + ", ".join(catalog.musl_versions))
    except MuslcheckError as e:
        _fail(str(e), EXIT_INPUT)


def _write_atomically(path: Path, output: str | bytes | list[bytes]) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written report.

    Only a regular file or a new name is replaced. A symbolic link is refused (the rename would replace the link,
    not what it names); a device or FIFO gets a plain, non-blocking write (``/dev/null``), never a rename over the
    node; a directory or socket is refused."""
    data = output.encode("utf-8") if isinstance(output, str) else output
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    if mode is not None and stat.S_ISLNK(mode):
        raise InputError(f"{path}: a symbolic link: refused as an output (name the file it points to)")
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
        _write_plainly(path, data if isinstance(data, bytes) else b"".join(data))
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{path}: {'a directory' if stat.S_ISDIR(mode) else _special_kind(mode)}: refused as an "
                         "output")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", dir=path.parent)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a shell redirect would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                f.writelines(data)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_plainly(path: Path, data: bytes) -> None:
    """A device or FIFO: opened without creating, truncating or following a link, never blocking."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        reason = "a FIFO with no reader" if e.errno == errno.ENXIO else e.strerror
        raise InputError(f"{path}: cannot write: {reason}") from e
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BlockingIOError as e:
        raise InputError(f"{path}: cannot write: the reader does not keep up") from e
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    finally:
        os.close(fd)


def _fail(message: str, code: int) -> None:
    click.echo(f"muslcheck: error: {message}", err=True)
    sys.exit(code)
