"""``radiomx report OUT``: write OUT/report.html (rewritten only when what it shows changed)."""

from __future__ import annotations

from pathlib import Path

import click

from radiomx.cli.logs import emit


@click.command("report", short_help="Write OUT/report.html (counts, failures, QC).", epilog="""\b
Example:
  radiomx qc out/ && radiomx report out/ && xdg-open out/report.html""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
def report(out: Path, wait: float) -> None:
    """Write OUT/report.html: counts, failures, distributions, tracer pairs and every scan's QC thumbnail."""
    from radiomx.qc.report import write_report

    summary = write_report(out, wait=wait)
    state = "written" if summary.written else "unchanged"
    emit("report_written", f"report {state}: {summary.path} ({summary.size_bytes / 1024:.0f} KiB)",
         written=summary.written, path=str(summary.path), size_bytes=summary.size_bytes)
