"""The ``radiomx`` group: error mapping, global flags, and the registry of commands (one module each).

Exit codes: 0 every scan written; 1 some scans or lesions failed (each a failures-table row, the rest written);
2 usage, configuration or lock error, before any work starts. Data goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from radiomx import __version__
from radiomx.cli.compare import compare
from radiomx.cli.demo import demo
from radiomx.cli.extract import extract
from radiomx.cli.inspect import scan, status, table
from radiomx.cli.publish import publish
from radiomx.cli.qc import qc
from radiomx.cli.report import report
from radiomx.errors import RadiomxError


class RadiomxGroup(click.Group):
    """The one place where library errors become exit codes and one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RadiomxError as exc:
            if ctx.meta.get("radiomx.verbose"):
                traceback.print_exc(file=sys.stderr)
            err = click.ClickException(str(exc))
            err.exit_code = exc.exit_code
            raise err from exc
        except BrokenPipeError:
            # stdout reader went away (``radiomx table OUT | head -1``): quiet exit like DVC (128 + SIGPIPE).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)


@click.group(cls=RadiomxGroup)
@click.version_option(__version__, prog_name="radiomx")
@click.option("--verbose", is_flag=True, help="Show tracebacks of unexpected errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """PET/CT cohort folders -> keyed PyRadiomics feature tables (Parquet).

    Exit codes: 0 all scans ok, 1 some scans/lesions failed (rest written), 2 usage/configuration error.
    """
    ctx.meta["radiomx.verbose"] = verbose


def main() -> None:
    """Console-script entry. Warnings of libraries go through logging (to stderr), never onto stdout."""
    logging.captureWarnings(True)
    cli(prog_name="radiomx")


cli.add_command(extract)
cli.add_command(scan)
cli.add_command(status)
cli.add_command(table)
cli.add_command(demo)
cli.add_command(publish)
cli.add_command(compare)
cli.add_command(qc)
cli.add_command(report)
