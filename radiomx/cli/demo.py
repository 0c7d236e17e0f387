"""``radiomx demo``: write the small synthetic demo cohort that ``make demo`` extracts."""

from __future__ import annotations

from pathlib import Path

import click

from radiomx.cli.logs import emit


@click.command(short_help="Write the small synthetic PET demo cohort to DIRECTORY.", epilog="""\b
Example:
  radiomx demo demo-cohort/ && radiomx extract demo-cohort/ -o demo-out/""")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--patients", type=int, default=3, show_default=True, help="Patients (a pentixafor + an FDG scan each).")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed gives the same bytes.")
def demo(directory: Path, patients: int, seed: int) -> None:
    """Write the small deterministic synthetic PET demo cohort to DIRECTORY."""
    from radiomx.cli.demo_cohort import write_demo_cohort

    scans = write_demo_cohort(directory, patients=patients, seed=seed)
    emit("demo_written", f"demo cohort: {len(scans)} scans in {directory}", scans=len(scans))


