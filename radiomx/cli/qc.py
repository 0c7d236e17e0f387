"""``radiomx qc OUT``: draw the QC pictures of a past run (missing or stale ones only) without recomputing features."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from radiomx.qc.batch import QcSummary


@click.command("qc", short_help="Draw the missing or stale QC pictures of OUT.", epilog="""\b
Examples:
  radiomx qc out/
  radiomx qc out/ --patient P001 --tracer fdg --force
  radiomx qc out/ --cohort /data/cohort    # when the cohort's path was not recorded""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--patient", default=None, help="Only this patient's scans.")
@click.option("--tracer", default=None, help="Only this tracer (canonical name or alias, e.g. fdg).")
@click.option("--cohort", type=click.Path(path_type=Path), default=None,
              help="The cohort folder (default: the one the last run recorded, relative to OUT).")
@click.option("--params-dir", type=click.Path(path_type=Path), default=None,
              help="The params tree the run used (default: as recorded).")
@click.option("--force", is_flag=True, help="Draw every picture again, even unchanged ones.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, help="Drawing processes (default: usable cores).")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
def qc(out: Path, patient: str | None, tracer: str | None, cohort: Path | None, params_dir: Path | None, force: bool,
       jobs: int, wait: float) -> QcSummary:
    """Draw OUT/qc/<patient>/[<session>/]<tracer>.png for every scan of OUT whose picture is missing or stale."""
    from radiomx.cli.logs import emit
    from radiomx.cli.output import failure_fields, failure_line
    from radiomx.errors import ScanError
    from radiomx.options import usable_cores
    from radiomx.qc.batch import render_out
    from radiomx.tracers import resolve_tracer
    from radiomx.vocabulary import Severity

    try:
        canonical = resolve_tracer(tracer).name if tracer else None
    except ScanError as exc:
        raise click.UsageError(f"--tracer: {exc.detail}") from exc
    summary = render_out(out, patient=patient, tracer=canonical, force=force, wait=wait, jobs=jobs or usable_cores(),
                         cohort=cohort, params_dir=params_dir)
    for failure in summary.failures:
        reason = summary.reason(failure)
        if reason is None:
            emit("qc_failed", failure_line(failure), Severity.FAILURE, **failure_fields(failure))
        else:  # the scan's failure is known and accepted (OUT/acknowledged.tsv): shown, exit code 0 as for extract
            emit("failure_acknowledged", failure_line(failure, acknowledged=reason), Severity.INFO,
                 **failure_fields(failure), reason=reason)
    accepted = sum(summary.reason(f) is not None for f in summary.failures)
    emit("qc_summary", f"qc: {summary.drawn} pictures drawn, {summary.unchanged} unchanged, "
         f"{len(summary.failures)} problems{f' ({accepted} acknowledged)' if accepted else ''}; pictures in "
         f"{out / 'qc'}", drawn=summary.drawn, unchanged=summary.unchanged, problems=len(summary.failures),
         acknowledged=accepted)
    return summary
