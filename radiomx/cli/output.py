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

from radiomx.cli.logs import emit
from radiomx.errors import exit_code
from radiomx.run.summary import RunSummary
from radiomx.vocabulary import Severity

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
    if note:
        emit("layout_detected", note)
    if index_line:
        emit("dicom_index", index_line)


def print_plan(summary: RunSummary) -> None:
    say_layout(summary.layout_note, summary.index_line)
    for item in summary.plan.items:  # type: ignore[union-attr]
        reason = f"\t{item.reason}" if item.reason else ""
        click.echo(f"{item.status}\t{item.scan.key.patient_id}\t{item.scan.key.session}\t{item.scan.key.tracer}{reason}")
    for key in summary.vanished:
        click.echo(f"vanished\t{key.patient_id}\t{key.session}\t{key.tracer}\t{summary.vanished_reason}")
    counts = ", ".join(f"{n} {s}" for s, n in summary.plan_counts.items())
    emit("plan", f"plan: {counts} (dry run, nothing written)", plan=summary.plan_counts)
    say_drafts(summary)
    _say_vanished(summary)


def say_drafts(summary: RunSummary) -> str:
    """One line when the run uses unreleased parameter files: their values cannot be cited by version alone."""
    if not summary.drafts:
        return ""
    line = (f"note: this run uses draft parameter files (not in their tree's LOCK.json): {', '.join(summary.drafts)}; "
            "rows record each file's sha256; release a draft before citing its values")
    emit("params_draft", line, Severity.WARNING, drafts=summary.drafts)
    return line


def _keys(keys: list) -> str:
    """``P001/18F-FDG, P002/18F-FDG`` (the first ten, then how many more)."""
    shown = ", ".join(str(k) for k in keys[:10])
    return shown + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


def _say_vanished(summary: RunSummary) -> str:
    """Scans stored in OUT that the cohort no longer has: kept (a warning: OUT and the cohort disagree until
    --prune), or pruned (what was removed). Returns the line ("" when none)."""
    keys = [str(k) for k in summary.vanished]
    if summary.pruned:
        verb = "--prune would drop (dry run)" if summary.dry_run else "pruned"
        line = (f"{verb} {len(summary.pruned)} scans no longer in the cohort (rows, state, failures, QC pictures): "
                f"{_keys(summary.pruned)}")
        emit("scans_pruned", line, scans=[str(k) for k in summary.pruned], dry_run=summary.dry_run)
        return line
    if keys:
        line = (f"{len(keys)} scans vanished from the cohort; their rows are kept in OUT (radiomx extract --prune "
                f"drops them): {_keys(summary.vanished)}")
        emit("scans_vanished", line, Severity.WARNING, scans=keys)
        return line
    return ""


def failure_line(f, severity: Severity | str = Severity.FAILURE, acknowledged: str | None = None) -> str:
    """One line: FAILED or WARNING, scan, stage, the file (relative to the cohort) and the problem (``extract``
    prints it, ``status`` prints it again from the failures table); ACKNOWLEDGED with the team's reason for a
    failure listed in ``OUT/acknowledged.tsv``."""
    lesion = f" lesion {f.lesion_id}" if f.lesion_id is not None else ""
    where = f"{f.file}: " if f.file else ""
    if acknowledged is not None:
        return f"ACKNOWLEDGED {f.key}{lesion} [{f.stage}] {where}{f.message} (acknowledged: {acknowledged})"
    return f"{Severity(severity).label} {f.key}{lesion} [{f.stage}] {where}{f.message}"


def failure_fields(f) -> dict:
    """A failures-table row as JSON log fields: its keys, stage and file, its message as ``detail``."""
    row = f.as_row()
    return {**{k: v for k, v in row.items() if k != "message"}, "detail": row["message"]}


def print_summary(summary: RunSummary, log_file: Path | None = None, verbose: bool = False,
                  as_json: bool = False) -> None:
    """A warning per failure and a summary line on stderr (tracebacks only with --verbose or into the log file);
    with ``as_json`` the machine-readable summary on stdout as well."""
    reasons = {id(f): summary.acknowledgements.of(f) for f in summary.failures}
    for failure in summary.failures:
        reason, detail = reasons[id(failure)], failure.traceback if verbose else ""
        if reason is None:
            emit("scan_failed", failure_line(failure), Severity.FAILURE, detail, **failure_fields(failure))
        else:  # known and accepted: shown, but it is not what a cron alert is for
            emit("failure_acknowledged", failure_line(failure, acknowledged=reason), Severity.INFO, detail,
                 **failure_fields(failure), reason=reason)
    for warning in summary.warnings:
        emit("scan_warning", failure_line(warning, Severity.WARNING), Severity.WARNING, **failure_fields(warning))
    counting = {f.key for f in summary.failures if reasons[id(f)] is None}
    accepted = len({f.key for f in summary.failures if reasons[id(f)] is not None} - counting)
    say_layout(summary.layout_note, summary.index_line)
    if summary.waiting:
        emit("series_waiting", f"{len(summary.waiting)} PET series wait for a mask (not failures; extracted by the run "
             "after their mask arrives): " + ", ".join(str(w.key) for w in summary.waiting[:5])
             + (" ..." if len(summary.waiting) > 5 else ""), waiting=len(summary.waiting))
    line = (f"{summary.computed} scans computed, {summary.skipped} unchanged, "
            f"{summary.negative_scans} negative (no lesion in mask), {summary.failed_scans} with failures"
            f"{f' ({accepted} acknowledged)' if accepted else ''}; "
            f"{summary.rows_written} lesion rows written; tables in {summary.out}")
    counts = {k: getattr(summary, k) for k in ("computed", "skipped", "negative_scans", "failed_scans", "rows_written")}
    notes = [note for note in (say_drafts(summary), _say_vanished(summary)) if note]
    emit("run_summary", line, exit_code=int(exit_code(summary)), acknowledged_scans=accepted, **counts)
    if summary.qc_missing:
        emit("qc_missing", f"{summary.qc_missing} unchanged scans have no QC picture; draw them with `radiomx qc "
             f"{summary.out}`", scans=summary.qc_missing)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True, default=str))
    if log_file is not None:
        with open(log_file, "a", encoding="utf-8") as fh:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for warning in summary.warnings:
                fh.write(f"{stamp} radiomx: {failure_line(warning, Severity.WARNING)}\n")
            for failure in summary.failures:
                fh.write(f"{stamp} radiomx: {failure_line(failure, acknowledged=reasons[id(failure)])}\n")
                if failure.traceback:
                    fh.write(failure.traceback.rstrip() + "\n")
            for note in notes:
                fh.write(f"{stamp} radiomx: {note}\n")
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
