"""Human-facing output of the CLI: progress bar (TTY only), plan, summary, table writers. Messages go through the
``radiomx.cli`` logger (text or JSON lines on stderr, see logs.py); only data goes to stdout, so pipes stay clean."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click

from radiomx.api import RunSummary
from radiomx.cli.logs import log

if TYPE_CHECKING:  # pandas is imported by the commands that print tables, not before every run's pool starts
    import pandas as pd


@contextlib.contextmanager
def progress_printer(enabled: bool = True) -> Iterator:
    """A rich progress bar on an interactive stderr; nothing (no control characters) in cron, pipes, --quiet or
    JSON logs. rich honours NO_COLOR (a bar without colours)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("extract"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, outcome) -> None:
            bar.update(task, completed=done, total=total, description=str(outcome.key))

        yield update


def say_layout(note: str, index_line: str) -> None:
    """The auto-detection line and a DICOM export's index summary (``scan``, ``status``, ``extract``), on stderr."""
    for text in (note, index_line):
        if text:
            log.info(text)


def print_plan(summary: RunSummary) -> None:
    say_layout(summary.layout_note, summary.index_line)
    for item in summary.plan.items:  # type: ignore[union-attr]
        reason = f"\t{item.reason}" if item.reason else ""
        click.echo(f"{item.status}\t{item.scan.key.patient_id}\t{item.scan.key.session}\t{item.scan.key.tracer}{reason}")
    counts = ", ".join(f"{n} {s}" for s, n in summary.plan_counts.items())
    log.info(f"plan: {counts} (dry run, nothing written)", extra={"fields": {"plan": summary.plan_counts}})


def failure_line(f, label: str = "FAILED") -> str:
    """One line: FAILED or WARNING, scan, stage, the file (relative to the cohort) and the problem (``extract``
    prints it, ``status`` prints it again from the failures table)."""
    lesion = f" lesion {f.lesion_id}" if f.lesion_id is not None else ""
    where = f"{f.file}: " if f.file else ""
    return f"{label} {f.key}{lesion} [{f.stage}] {where}{f.message}"


def print_summary(summary: RunSummary, log_file: Path | None = None, verbose: bool = False,
                  as_json: bool = False) -> None:
    """A warning per failure and a summary line on stderr (tracebacks only with --verbose or into the log file);
    with ``as_json`` the machine-readable summary on stdout as well."""
    for failure in summary.failures:
        log.warning(failure_line(failure), extra={"fields": failure.as_row(),
                                                   "traceback": failure.traceback if verbose else ""})
    for warning in summary.warnings:
        log.warning(failure_line(warning, "WARNING"), extra={"fields": warning.as_row()})
    say_layout(summary.layout_note, summary.index_line)
    if summary.waiting:
        log.info(f"{len(summary.waiting)} PET series wait for a mask (not failures; extracted by the run after their "
                 "mask arrives): " + ", ".join(str(w.key) for w in summary.waiting[:5])
                 + (" ..." if len(summary.waiting) > 5 else ""), extra={"fields": {"waiting": len(summary.waiting)}})
    line = (f"{summary.computed} scans computed, {summary.skipped} unchanged, "
            f"{summary.negative_scans} negative (no lesion in mask), {summary.failed_scans} with failures; "
            f"{summary.rows_written} lesion rows written; tables in {summary.out}")
    counts = {k: getattr(summary, k) for k in ("computed", "skipped", "negative_scans", "failed_scans", "rows_written")}
    log.info(line, extra={"fields": counts})
    if summary.qc_missing:
        log.info(f"{summary.qc_missing} unchanged scans have no QC picture; draw them with `radiomx qc {summary.out}`")
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True, default=str))
    if log_file is not None:
        with open(log_file, "a", encoding="utf-8") as fh:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for warning in summary.warnings:
                fh.write(f"{stamp} radiomx: {failure_line(warning, 'WARNING')}\n")
            for failure in summary.failures:
                fh.write(f"{stamp} radiomx: {failure_line(failure)}\n")
                if failure.traceback:
                    fh.write(failure.traceback.rstrip() + "\n")
            fh.write(f"{stamp} radiomx: {line}\n")


def write_frame(frame: pd.DataFrame, fmt: str, stream: TextIO) -> None:
    """csv, tsv, jsonl text, or Parquet bytes (refused on a terminal: binary would garble it)."""
    if fmt == "parquet":
        if stream.isatty():
            raise click.UsageError("Parquet is binary: redirect it (> table.parquet) or pipe it, or use --format csv")
        buffer: BinaryIO = stream.buffer if hasattr(stream, "buffer") else stream  # type: ignore[assignment]
        frame.to_parquet(buffer, index=False)
        buffer.flush()
    elif fmt == "jsonl":
        frame.to_json(stream, orient="records", lines=True, date_format="iso", double_precision=15)
    else:
        frame.to_csv(stream, index=False, sep="," if fmt == "csv" else "\t", lineterminator="\n")
    stream.flush()
