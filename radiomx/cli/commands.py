"""Click commands only: parse options, call one library function, print, exit with the documented code.

Exit codes: 0 every scan written; 1 some scans or lesions failed (each a failures-table row, the rest written);
2 usage, configuration or lock error, before any work starts. Data goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import NoReturn

import click

from radiomx import __version__
from radiomx.errors import RadiomxError

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")


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


def cohort_options(func):
    """Options shared by every command that reads a cohort, declared once."""

    @click.option("--image-pattern", "image_patterns", multiple=True, help="Image name pattern (repeatable).")
    @click.option("--mask-pattern", "mask_patterns", multiple=True, help="Mask name pattern (repeatable).")
    @click.option("--pet-units", type=click.Choice(["SUVbw"]), default=None,
                  help="Declare NIfTI/NRRD/MHA PET images without sidecar as already SUVbw.")
    @click.option("--params-dir", type=click.Path(path_type=Path), default=None,
                  help="Your own params tree (<tracer>/v<N>.yaml). Default: radiomx's params/.")
    @click.option("--params-version", default=None, help="Pin a parameter file version (e.g. v1). Default: latest.")
    @click.option("--lesions", type=click.Choice(["labels", "components"]), default="labels", show_default=True,
                  help="labels: one lesion per label value; components: 26-connected components of each label.")
    @click.option("--label", "labels", type=int, multiple=True, help="Only these label values (repeatable).")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def _options(**flags):
    from radiomx.options import ExtractOptions

    flags["labels"] = tuple(flags.get("labels") or ()) or None
    return ExtractOptions.from_flags(flags)


def _read_scan_keys(stream) -> list:
    """Keys from ``radiomx scan`` lines (patient, session, tracer are the first three tab-separated fields)."""
    from radiomx.records import ScanKey

    keys = []
    for line in stream:
        fields = line.rstrip("\n").split("\t")
        if len(fields) >= 3 and line.strip():
            keys.append(ScanKey(fields[0], fields[1], fields[2]))
    return keys


@cli.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@cohort_options
@click.option("--scans", "scans_file", type=click.File("r"), default=None,
              help="Only the scans listed (lines of `radiomx scan`; - for stdin).")
@click.option("-j", "--jobs", type=int, default=0, help="Worker processes (default: usable cores).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--dask-scheduler", default=None, help="Dask scheduler address (tcp://...) or scheduler file.")
@click.option("--force", is_flag=True, help="Recompute every scan.")
@click.option("--dry-run", is_flag=True, help="Print the plan (new/changed/retry/unchanged) and write nothing.")
@click.option("--prune", is_flag=True, help="Drop rows of scans that vanished from the cohort.")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Scans per commit.")
@click.option("--batch-seconds", type=float, default=60.0, show_default=True, help="Commit at least this often.")
@click.option("--log-file", type=click.Path(path_type=Path), default=None, help="Append failures and tracebacks here.")
@click.option("--qc", is_flag=True, help="Also draw each computed scan's QC picture (OUT/qc/), in the same worker.")
@click.pass_context
def extract(ctx: click.Context, cohort: Path, out: Path, scans_file, log_file: Path | None, **flags) -> None:
    """Extract features of every new, changed or failed scan of COHORT into OUT."""
    options = _options(**flags)
    if options.uses_local_pool:
        from radiomx.run.warmup import start_local_workers

        start_local_workers()  # before the imports below: the workers load theirs meanwhile
    from radiomx import api
    from radiomx.cli.output import print_plan, print_summary, progress_printer

    only = _read_scan_keys(scans_file) if scans_file is not None else None
    with progress_printer() as progress:
        summary = api.extract(cohort, out, options, only=only, progress=progress)
    if options.dry_run:
        print_plan(summary)
        raise SystemExit(0)
    print_summary(summary, log_file, verbose=bool(ctx.meta.get("radiomx.verbose")))
    raise SystemExit(summary.exit_code)


@cli.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@cohort_options
def scan(cohort: Path, **flags) -> None:
    """List discovered scans, one tab-separated line each: patient, session, tracer, image, mask, status."""
    from radiomx import api

    for s in api.scan(cohort, _options(**flags)):
        status = "ok" if s.problem is None else "error: " + s.problem[2]
        fields = [s.key.patient_id, s.key.session, s.key.tracer, str(s.image or ""), str(s.mask or ""), status]
        click.echo("\t".join(f.replace("\t", " ") for f in fields))


@cli.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path))
@cohort_options
def status(cohort: Path, out: Path, **flags) -> None:
    """Per tracer: scans done, pending, changed, failed; then the failures' messages."""
    from radiomx import api

    frame = api.status(cohort, out, _options(**flags))
    click.echo(frame.to_string(index=False) if len(frame) else "no scans found")
    if (out / "failures.parquet").exists():
        failures = api.read_failures(out)
        for row in failures.itertuples():
            lesion = "" if row.lesion_id is None or row.lesion_id != row.lesion_id else f" lesion {int(row.lesion_id)}"
            click.echo(f"FAILED {row.patient_id}/{row.session}/{row.tracer}{lesion} [{row.stage}] {row.message}")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tracer", default=None, help="One tracer's table (default: all, columns unioned).")
@click.option("--which", type=click.Choice(["features", "failures", "scans", "runs"]), default="features",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="csv", show_default=True)
def table(out: Path, tracer: str | None, which: str, fmt: str) -> None:
    """Print a table of OUT to stdout (csv, tsv, jsonl or parquet bytes) for shell pipelines."""
    from radiomx.api import load_table
    from radiomx.cli.output import write_frame

    write_frame(load_table(out, which, tracer), fmt, sys.stdout)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--patients", type=int, default=3, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory: Path, patients: int, seed: int) -> None:
    """Write the small deterministic synthetic PET demo cohort to DIRECTORY."""
    from radiomx.cli.demo_cohort import write_demo_cohort

    scans = write_demo_cohort(directory, patients=patients, seed=seed)
    click.echo(f"demo cohort: {len(scans)} scans in {directory}", err=True)


def _exit_status(code: object) -> int:
    """``SystemExit.code`` as a process status, the way the interpreter maps it (a message means status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_without_teardown(code: object) -> NoReturn:
    """End the process once the command is done, skipping only the interpreter's teardown.

    Why: with pandas, pyarrow, SimpleITK and PyRadiomics loaded, freeing every module and running ITK's static
    destructors takes ~0.15 s after the last table is written, about 5% of extracting the benchmark cohort (the
    same reasoning as clang's ``-disable-free``; multiprocessing ends its own children the same way). Nothing is
    skipped that can lose output: every table was written to a temporary file, fsynced and renamed before the
    command returned; what the interpreter does at exit before freeing memory still runs here, in its order
    (``threading._shutdown``: wait for non-daemon threads and run threading's exit hooks, as CPython's
    ``wait_for_thread_shutdown`` does; then the atexit handlers of multiprocessing, logging, distributed, ...);
    stdout/stderr are flushed. A stdout reader that went away gets the same quiet 141 as ``RadiomxGroup``.
    """
    status = _exit_status(code)
    threading._shutdown()  # CPython-private, called by the interpreter itself first at exit
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = 141
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)


def main() -> None:  # console script entry; tests run it as ``python -m radiomx`` in real subprocesses
    logging.captureWarnings(True)
    try:
        cli(prog_name="radiomx")
    except SystemExit as exc:
        exit_without_teardown(exc.code)


from radiomx.cli.qc import qc as qc_command  # noqa: E402 - registered last: each command module is one line here

cli.add_command(qc_command)
from radiomx.cli.report import report as report_command  # noqa: E402

cli.add_command(report_command)
