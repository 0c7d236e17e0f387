"""Human-facing output of the CLI: progress bar (TTY only), plan, summary line, table writers. All to stderr
except table data, so that stdout stays clean for pipes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from radiomx.api import RunSummary

if TYPE_CHECKING:  # pandas is imported by the commands that print tables, not before every run's pool starts
    import pandas as pd


@contextlib.contextmanager
def progress_printer() -> Iterator:
    """A rich progress bar on an interactive stderr; nothing (no control characters) in cron or pipes."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("extract"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, outcome) -> None:
            bar.update(task, completed=done, total=total, description=str(outcome.key))

        yield update


def print_plan(summary: RunSummary) -> None:
    for item in summary.plan.items:  # type: ignore[union-attr]
        reason = f"\t{item.reason}" if item.reason else ""
        click.echo(f"{item.status}\t{item.scan.key.patient_id}\t{item.scan.key.session}\t{item.scan.key.tracer}{reason}")
    counts = ", ".join(f"{n} {s}" for s, n in summary.plan_counts.items())
    click.echo(f"radiomx: plan: {counts} (dry run, nothing written)", err=True)


def _failure_line(f) -> str:
    """One line: scan, stage, the file (relative to the cohort) and the problem."""
    lesion = f" lesion {f.lesion_id}" if f.lesion_id is not None else ""
    where = f"{f.file}: " if f.file else ""
    return f"radiomx: FAILED {f.key}{lesion} [{f.stage}] {where}{f.message}"


def print_summary(summary: RunSummary, log_file: Path | None = None, verbose: bool = False) -> None:
    """One line per failure and a summary line on stderr; tracebacks only with --verbose or into the log file."""
    for failure in summary.failures:
        click.echo(_failure_line(failure), err=True)
        if verbose and failure.traceback:
            click.echo(failure.traceback.rstrip(), err=True)
    for warning in summary.warnings:
        click.echo(_failure_line(warning).replace(": FAILED ", ": WARNING ", 1), err=True)
    line = (f"radiomx: {summary.computed} scans computed, {summary.skipped} unchanged, "
            f"{summary.negative_scans} negative (no lesion in mask), {summary.failed_scans} with failures; "
            f"{summary.rows_written} lesion rows written; tables in "
            f"{summary.out}")
    click.echo(line, err=True)
    if log_file is not None:
        with open(log_file, "a", encoding="utf-8") as fh:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for failure in summary.failures:
                fh.write(f"{stamp} {_failure_line(failure)}\n")
                if failure.traceback:
                    fh.write(failure.traceback.rstrip() + "\n")
            fh.write(f"{stamp} {line}\n")


def write_frame(frame: pd.DataFrame, fmt: str, stream: TextIO) -> None:
    if fmt == "parquet":
        buffer = stream.buffer if hasattr(stream, "buffer") else stream
        frame.to_parquet(buffer, index=False)
    elif fmt == "jsonl":
        frame.to_json(stream, orient="records", lines=True, date_format="iso", double_precision=15)
    else:
        frame.to_csv(stream, index=False, sep="," if fmt == "csv" else "\t")
    stream.flush()
