"""``radiomx compare OUT --tracers A,B``: the cross-tracer table, a thin layer over ``radiomx.api.compare``.

The cohort (for dates, the same-frame declaration and lesion pairing) is ``--cohort``, else the COHORT argument of
the last ``radiomx extract`` recorded in ``OUT/runs.parquet`` (its ``command`` column) when that folder still exists
from here; otherwise those columns are null with a reason.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click


def cohort_from_runs(out: Path) -> Path | None:
    """The COHORT of the most recent ``extract`` in the run log, parsed with the extract command's own options."""
    runs = Path(out) / "runs.parquet"
    if not runs.is_file():
        return None
    import pandas as pd

    from radiomx.cli.commands import extract

    for command in reversed(pd.read_parquet(runs, columns=["command"])["command"].tolist()):
        words = shlex.split(command)
        if "extract" not in words:
            continue
        args = words[words.index("extract") + 1:]
        try:
            ctx = extract.make_context("extract", args, resilient_parsing=True)
        except click.ClickException:
            continue
        cohort = ctx.params.get("cohort")
        if cohort is not None and Path(cohort).is_dir():
            return Path(cohort)
        return None
    return None


@click.command(short_help="Write the A-vs-B cross-tracer table of OUT.", epilog="""\b
Examples:
  radiomx compare out/ --tracers pentixafor,fdg
  radiomx table out/ --which compare --tracer 68Ga-pentixafor,18F-FDG | head -3""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tracers", required=True, help="Two tracers, A,B (canonical names or folder aliases).")
@click.option("--cohort", type=click.Path(path_type=Path), default=None,
              help="Cohort folder (dates, [compare] same_frame, masks). Default: the last extract's COHORT.")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
def compare(out: Path, tracers: str, cohort: Path | None, wait: float) -> None:
    """Write OUT/compare/<A>_vs_<B>.parquet: one row per patient (and session), tracer A against tracer B."""
    from radiomx import api

    names = [t for t in tracers.split(",") if t.strip()]
    if len(names) != 2:
        raise click.UsageError(f"--tracers takes two tracers separated by a comma (got {tracers!r})")
    summary = api.compare(out, (names[0], names[1]), cohort or cohort_from_runs(out), wait)
    state = "written" if summary.written else "unchanged"
    click.echo(f"radiomx: compare {summary.tracer_a} vs {summary.tracer_b}: {summary.with_both} with both scans, "
               f"{summary.one_only} with one only, {summary.dated} dated; {summary.path} ({state})", err=True)
