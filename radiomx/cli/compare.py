"""``radiomx compare OUT --tracers A,B``: the cross-tracer table, a thin layer over ``radiomx.api.compare``.

The cohort (for dates, the same-frame declaration and lesion pairing) is ``--cohort``, else the one the last run of
OUT recorded (``radiomx.store.runlog``), wherever the command runs from; without either, what was computed for
unchanged scans is kept and the rest is null with a reason.
"""

from __future__ import annotations

from pathlib import Path

import click

from radiomx.cli.logs import emit


@click.command(short_help="Write the A-vs-B cross-tracer table of OUT.", epilog="""\b
Examples:
  radiomx compare out/ --tracers pentixafor,fdg
  radiomx table out/ --which compare --tracer 68Ga-pentixafor,18F-FDG | head -3""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tracers", required=True, help="Two tracers, A,B (canonical names or folder aliases).")
@click.option("--cohort", type=click.Path(path_type=Path), default=None,
              help="Cohort folder (dates, [compare] same_frame, masks). Default: the one the last run recorded.")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
def compare(out: Path, tracers: str, cohort: Path | None, wait: float) -> None:
    """Write OUT/compare/<A>_vs_<B>.parquet: one row per patient (and session) with a scan of A or B."""
    from radiomx import api

    names = [t for t in tracers.split(",") if t.strip()]
    if len(names) != 2:
        raise click.UsageError(f"--tracers takes two tracers separated by a comma (got {tracers!r})")
    summary = api.compare(out, names[0], names[1], cohort=cohort, wait=wait)
    state = "written" if summary.written else "unchanged"
    emit("compare_written", f"compare {summary.tracer_a} vs {summary.tracer_b}: {summary.with_both} with both "
         f"scans, {summary.one_only} with one only, {summary.dated} dated; {summary.path} ({state})",
         tracer_a=summary.tracer_a, tracer_b=summary.tracer_b, with_both=summary.with_both,
         one_only=summary.one_only, dated=summary.dated, written=summary.written, path=str(summary.path))
