"""The ``radiomx`` group: the one return path of every command, global flags, and the registry of commands (one
module each).

Every command returns what it did (a summary, an ``ExitCode``, or nothing) or raises; ``RadiomxGroup.invoke``
turns either into the exit code through ``radiomx.errors.exit_code``, the one table (docs: README.md, "Exit
codes"). Data goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback

import click

from radiomx import __version__
from radiomx.cli.compare import compare
from radiomx.cli.demo import demo
from radiomx.cli.extract import extract
from radiomx.cli.inspect import scan, status, table
from radiomx.cli.logs import LOG_FORMATS, cli_logging, emit
from radiomx.cli.params import params, tracers
from radiomx.cli.publish import publish
from radiomx.cli.qc import qc
from radiomx.cli.report import report
from radiomx.errors import RadiomxError, exit_code, exit_code_summary
from radiomx.vocabulary import Severity


class RadiomxGroup(click.Group):
    """The one place where what a command returned or raised becomes an exit code (``radiomx.errors.exit_code``)
    and, for an error, one line."""

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
        except RadiomxError as exc:
            if ctx.meta.get("radiomx.verbose"):
                traceback.print_exc(file=sys.stderr)
            err = click.ClickException(str(exc))
            err.exit_code = exit_code(exc)
            self._as_json(ctx, err)
            raise err from exc
        except click.ClickException as err:  # usage errors of a subcommand (bad option, missing argument)
            self._as_json(ctx, err)
            raise
        except BrokenPipeError as exc:
            # stdout reader went away (``radiomx table OUT | head -1``): quiet exit like DVC (128 + SIGPIPE).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(exit_code(exc)) from None
        code = exit_code(result)
        if code:
            ctx.exit(int(code))
        return result

    @staticmethod
    def _as_json(ctx: click.Context, err: click.ClickException) -> None:
        """With --log-format json the error line is a JSON object too (one format per stream)."""
        if ctx.meta.get("radiomx.log_format") == "json":
            emit("error", err.format_message(), Severity.FAILURE, exit_code=err.exit_code)
            raise SystemExit(err.exit_code)


HELP = f"""PET/CT cohort folders -> keyed PyRadiomics feature tables (Parquet).

Exit codes: {exit_code_summary()}.
Global options (--quiet, --log-format, --verbose) go before the command.
"""


@click.group(cls=RadiomxGroup, help=HELP, epilog="""\b
Example:
  radiomx scan cohort/ | grep FDG | radiomx extract cohort/ -o out/ --scans -
  radiomx -q --log-format json extract cohort/ -o out/ --json   # cron: JSON logs, summary on stdout

\b
Shell completion (bash; zsh and fish alike):
  eval "$(_RADIOMX_COMPLETE=bash_source radiomx)"
""")
@click.version_option(__version__, prog_name="radiomx")
@click.option("--verbose", is_flag=True, help="Show tracebacks of unexpected errors on stderr.")
@click.option("-q", "--quiet", is_flag=True, envvar="RADIOMX_QUIET",
              help="Only warnings and errors on stderr (failures, not the summary or progress).")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
              envvar="RADIOMX_LOG_FORMAT", help="stderr as text lines, or one JSON object a line (log shippers).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool, log_format: str) -> None:
    """The group: global flags, stderr's format for the command's length (``HELP`` is its --help text)."""
    ctx.meta.update({"radiomx.verbose": verbose, "radiomx.quiet": quiet, "radiomx.log_format": log_format})
    ctx.with_resource(cli_logging(quiet, log_format))


def main() -> None:
    """Console-script entry.

    Why ``gc.freeze()`` on the way out: the process ends right after, and the interpreter's shutdown would otherwise
    run the cyclic garbage collector over every object pandas, pyarrow, SimpleITK and PyRadiomics created at
    import (~0.2 s; docs/speed.md gives the measurement). Frozen objects are still freed by
    reference counting as modules are torn down; atexit handlers, thread joins and the flushing of stdout/stderr
    all run as usual. Only the command's own process does this (``cli`` itself, as CliRunner and programs call it,
    does not)."""
    try:
        cli(prog_name="radiomx")
    finally:
        gc.freeze()


cli.add_command(extract)
cli.add_command(scan)
cli.add_command(status)
cli.add_command(table)
cli.add_command(demo)
cli.add_command(publish)
cli.add_command(compare)
cli.add_command(qc)
cli.add_command(report)
cli.add_command(params)
cli.add_command(tracers)
