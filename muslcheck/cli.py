"""The command line: parse, call the library, render, choose the exit code. Nothing else."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from muslcheck import __version__
from muslcheck.errors import InputError, MuslcheckError, UsageError
from muslcheck.loader import Context
from muslcheck.render import RENDERERS
from muslcheck.report import Report, Verdict
from muslcheck.scan import scan
from muslcheck.tables import SUPPORTED_ARCHES, Catalog

EXIT_OK = 0
EXIT_INCOMPATIBLE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3

FAIL_LEVELS = (Verdict.NEEDS_PACKAGES, Verdict.NEEDS_GCOMPAT, Verdict.BLOCKED)

EXIT_CODES_HELP = """\b
Exit codes:
  0  compatible: no file reaches the --fail-on level
  1  incompatible: at least one file reaches it
  2  usage error (unknown option, version, format)
  3  input error (missing path, unreadable input, internal error)"""


def exit_code(report: Report, fail_on: Verdict) -> int:
    """1 when any counted component (not "not-applicable") reaches ``fail_on``, else 0."""
    counted = [c.verdict for c in report.components if c.verdict is not Verdict.NOT_APPLICABLE]
    return EXIT_INCOMPATIBLE if any(v.severity >= fail_on.severity for v in counted) else EXIT_OK


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="muslcheck")
def main() -> None:
    """Can this application move to Alpine (musl libc)? And if not, what breaks and what fixes it."""


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--alpine", metavar="X.Y", help="Target Alpine release (default: the newest known).")
@click.option("--musl", metavar="X.Y.Z", help="Target musl version instead of an Alpine release.")
@click.option("--arch", type=click.Choice(SUPPORTED_ARCHES), help="Judge only files of this architecture.")
@click.option("--gcompat/--no-gcompat", default=False, show_default=True,
              help="Whether gcompat is installed on the target.")
@click.option("--context", "load_context", type=click.Choice([c.value for c in Context]),
              help="Load context for every dynamic file (default: from what the file is).")
@click.option("--library-path", metavar="DIRS", help="LD_LIBRARY_PATH for the model (paths inside the root).")
@click.option("--preload", metavar="LIB", multiple=True, help="LD_PRELOAD entry for the model (repeatable).")
@click.option("-o", "--output", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True,
              help="Output format.")
@click.option("--file", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the output here instead of stdout.")
@click.option("--fail-on", type=click.Choice([v.value for v in FAIL_LEVELS]), default=Verdict.BLOCKED.value,
              show_default=True, help="Exit 1 when any file reaches this verdict.")
def scan_command(
    path: Path,
    alpine: str | None,
    musl: str | None,
    arch: str | None,
    gcompat: bool,
    load_context: str | None,
    library_path: str | None,
    preload: tuple[str, ...],
    fmt: str,
    out_file: Path | None,
    fail_on: str,
) -> None:
    """Judge every ELF file under PATH (a directory is the target's root filesystem) or PATH itself."""
    try:
        report = scan(
            path, alpine=alpine, musl=musl, arch=arch, gcompat=gcompat, context=load_context,
            library_path=library_path, preload=preload,
        )
        text = RENDERERS[fmt](report)
        if out_file is None:
            click.echo(text, nl=False)
        else:
            _write_atomically(out_file, text)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and no traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except (InputError, MuslcheckError, OSError) as e:
        _fail(str(e), EXIT_INPUT)
    except Exception as e:  # the CLI boundary: a bug still ends in one line and exit 3
        _fail(f"internal error: {e!r}", EXIT_INPUT)
    if report.verdict is Verdict.NOTHING_TO_CHECK:
        click.echo(f"muslcheck: nothing to check: no ELF file under {path}", err=True)
    sys.exit(exit_code(report, Verdict(fail_on)))


scan_command.name = "scan"


@main.command()
def versions() -> None:
    """List the Alpine releases and musl versions muslcheck knows, with sources."""
    catalog = Catalog()
    try:
        for r in catalog.alpine_releases:
            click.echo(f"alpine {r.alpine:6} musl {r.musl:7} {r.source}")
        click.echo("musl versions: " + ", ".join(catalog.musl_versions))
    except MuslcheckError as e:
        _fail(str(e), EXIT_INPUT)


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written report."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a shell redirect would create it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {e.strerror}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fail(message: str, code: int) -> None:
    click.echo(f"muslcheck: error: {message}", err=True)
    sys.exit(code)
