"""Commands that read and print without computing: ``scan``, ``status``, ``table``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from radiomx.cli.flags import cohort_options, extract_options_from, format_option
from radiomx.cli.scanlist import COLUMNS, FORMATS, STATE_COLUMN
from radiomx.vocabulary import Severity

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
#: A DICOM export's PET series that no mask references yet: listed, never failed (``radiomx.discover.dicom_export``).
WAITING = "waiting"
WAITING_STATUS = "waiting: no mask references this series yet"


@click.command(short_help="List the discovered scans (tsv, csv or jsonl).", epilog="""\b
Examples:
  radiomx scan cohort/                          # aligned table on a terminal, TSV in a pipe
  radiomx scan cohort/ -o out/ | grep -v 'done$' | radiomx extract cohort/ -o out/ --scans -
  radiomx scan cohort/ --format jsonl | jq -c 'select(.tracer == "18F-FDG")'""")
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Add each scan's state against OUT: new, changed, done, failed or negative.")
@format_option(FORMATS, default=None, help="tsv (default; no header), csv (header row) or jsonl. "
               "Default on a terminal: an aligned table.")
@cohort_options
def scan(cohort: Path, out: Path | None, fmt: str | None, **flags) -> None:
    """List the discovered scans: patient, session, tracer, image, mask, status [, state]."""
    from radiomx import api
    from radiomx.cli.output import say_layout
    from radiomx.cli.scanlist import aligned, write_rows
    from radiomx.records import CohortPaths

    options = extract_options_from(**flags)
    paths = CohortPaths(cohort)
    listing = api.scan_listing(cohort, options, out)
    say_layout(listing.layout_note, listing.index_line)
    columns = (*COLUMNS, STATE_COLUMN) if out else COLUMNS
    pairs = sorted([*listing.scans, *((w, WAITING if out else "") for w in listing.waiting)], key=lambda p: p[0].key)
    rows = [{"patient_id": s.key.patient_id, "session": s.key.session, "tracer": s.key.tracer,
             "image": paths.relative(s.image), "mask": paths.relative(s.mask),
             "status": ("ok" if s.problem is None else "error: " + paths.text(s.problem[2])) if s.mask or s.problem
             else WAITING_STATUS, STATE_COLUMN: state}
            for s, state in pairs]
    if fmt is None and sys.stdout.isatty():
        click.echo(aligned(rows, columns), nl=False)
    else:
        write_rows(rows, fmt or "tsv", sys.stdout, columns)


@click.command(short_help="Per tracer: scans done, negative, pending, changed, failed.", epilog="""\b
Example:
  radiomx status cohort/ -o out/""")
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@cohort_options
def status(cohort: Path, out: Path, **flags) -> None:
    """Per tracer: scans done, negative (no lesion in mask), pending, changed, failed; then the failures' messages."""
    from radiomx import api
    from radiomx.cli.output import say_layout

    frame = api.status(cohort, out, extract_options_from(**flags))
    say_layout(frame.attrs.get("layout_note", ""), frame.attrs.get("index_line", ""))
    click.echo(frame.to_string(index=False) if len(frame) else "no scans found")
    for problem in frame.attrs.get("params_problems") or []:
        click.echo(f"NOTE {problem}")
    vanished = frame.attrs.get("vanished") or []
    if vanished:
        click.echo(f"{len(vanished)} scans vanished from the cohort; their rows are kept in OUT (radiomx extract "
                   f"--prune drops them): {', '.join(str(k) for k in vanished)}")
    if (out / "failures.parquet").exists():
        from radiomx.cli.output import failure_line
        from radiomx.records import Failure, ScanKey

        failures = api.read_failures(out)
        for row in failures.itertuples():  # the lines extract printed
            lesion = None if row.lesion_id is None or row.lesion_id != row.lesion_id else int(row.lesion_id)
            failure = Failure(ScanKey(row.patient_id, row.session, row.tracer), row.stage, row.file or "",
                              row.message, lesion_id=lesion)
            severity = Severity.WARNING if row.severity == Severity.WARNING else Severity.FAILURE
            click.echo(failure_line(failure, severity, row.acknowledged))
        from radiomx.store.acknowledged import read_acknowledgements

        for entry in read_acknowledgements(out).unmatched(failures):
            click.echo(f"NOTE acknowledged.tsv line {entry.line} ({entry.key} [{entry.stage}]) matches no failure "
                       "now: remove it once the scan is fixed (or correct its key if mistyped)")


@click.command(short_help="Print a table of OUT to stdout, sorted by key.", epilog="""\b
Examples:
  radiomx table out/ | head -3
  radiomx table out/ --patient P001 --columns 'original_firstorder_*' --format tsv
  radiomx table out/ --long > features-long.csv      # keys, feature, value (tidy)
  radiomx table out/ --format parquet | duckdb -c "SELECT count(*) FROM read_parquet('/dev/stdin')"
""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tracer", default=None,
              help="One tracer's rows (features, response: its table; patients: its column block); for --which "
                   "compare: A,B.")
@click.option("--which", type=click.Choice(["features", "failures", "scans", "runs", "burden", "patients", "compare",
                                              "response"]),
              default="features", show_default=True)
@click.option("--patient", "patients", multiple=True, help="Only this patient (repeatable).")
@click.option("--columns", "columns", multiple=True,
              help="Only columns matching these globs (comma-separated or repeated); the keys are always kept.")
@click.option("--long", "long_form", is_flag=True, help="Long form: keys, feature, value (numeric columns).")
@format_option(TABLE_FORMATS, default="csv",
               help="csv, tsv, jsonl, or parquet (binary: to a file or a pipe, refused on a terminal).")
def table(out: Path, tracer: str | None, which: str, patients: tuple[str, ...], columns: tuple[str, ...],
          long_form: bool, fmt: str) -> None:
    """Print a table of OUT to stdout, sorted by key, for shell pipelines."""
    from radiomx.api import canonical_tracer, load_table, stale_tracers
    from radiomx.cli.logs import emit
    from radiomx.cli.output import write_frame
    from radiomx.store.views import select

    if which == "features":
        tracer = canonical_tracer(tracer) if tracer else None
        lagging = [t for t in stale_tracers(out) if tracer in (None, t)]
        if lagging:
            emit("table_stale", f"note: {out}/features/ is older than the last commit for {', '.join(lagging)} (a "
                 "run ended early); reading the committed parts instead; `radiomx publish OUT` refreshes it",
                 tracers=lagging)
    globs = [g.strip() for item in columns for g in item.split(",") if g.strip()]
    frame = select(load_table(out, which, tracer, nullable_integers=True), which, patients, globs, long_form)
    for missing in sorted(set(patients) - set(frame.get("patient_id", ()))):
        emit("patient_missing", f"--patient {missing}: no rows in this table", Severity.WARNING, patient_id=missing)
    write_frame(frame, fmt, sys.stdout)
