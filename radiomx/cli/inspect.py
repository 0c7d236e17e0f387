"""Commands that read and print without computing: ``scan``, ``status``, ``table``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from radiomx.cli.flags import cohort_options, extract_options_from

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")


@click.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@cohort_options
def scan(cohort: Path, **flags) -> None:
    """List discovered scans, one tab-separated line each: patient, session, tracer, image, mask, status."""
    from radiomx import api
    from radiomx.records import CohortPaths

    paths = CohortPaths(cohort)
    for s in api.scan(cohort, extract_options_from(**flags)):
        status = "ok" if s.problem is None else "error: " + paths.text(s.problem[2])
        fields = [s.key.patient_id, s.key.session, s.key.tracer, paths.relative(s.image) if s.image else "",
                  paths.relative(s.mask) if s.mask else "", status]
        click.echo("\t".join(f.replace("\t", " ") for f in fields))


@click.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path))
@cohort_options
def status(cohort: Path, out: Path, **flags) -> None:
    """Per tracer: scans done, negative (no lesion in mask), pending, changed, failed; then the failures' messages."""
    from radiomx import api

    frame = api.status(cohort, out, extract_options_from(**flags))
    click.echo(frame.to_string(index=False) if len(frame) else "no scans found")
    if (out / "failures.parquet").exists():
        failures = api.read_failures(out)
        for row in failures.itertuples():
            lesion = "" if row.lesion_id is None or row.lesion_id != row.lesion_id else f" lesion {int(row.lesion_id)}"
            click.echo(f"FAILED {row.patient_id}/{row.session}/{row.tracer}{lesion} [{row.stage}] {row.message}")


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tracer", default=None,
              help="One tracer's table (default: all, columns unioned); for --which compare: A,B.")
@click.option("--which", type=click.Choice(["features", "failures", "scans", "runs", "burden", "patients", "compare"]),
              default="features", show_default=True)
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="csv", show_default=True)
def table(out: Path, tracer: str | None, which: str, fmt: str) -> None:
    """Print a table of OUT to stdout (csv, tsv, jsonl or parquet bytes) for shell pipelines."""
    from radiomx.api import load_table, stale_tracers
    from radiomx.cli.output import write_frame

    if which == "features":
        lagging = [t for t in stale_tracers(out) if tracer in (None, t)]
        if lagging:
            click.echo(f"note: {out}/features/ is older than the last commit for {', '.join(lagging)} (a run "
                       "ended early); reading the committed parts instead; `radiomx publish OUT` refreshes it",
                       err=True)
    write_frame(load_table(out, which, tracer), fmt, sys.stdout)


