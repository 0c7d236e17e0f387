"""``radiomx demo``: write the small synthetic demo cohort that ``make demo`` extracts."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--patients", type=int, default=3, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory: Path, patients: int, seed: int) -> None:
    """Write the small deterministic synthetic PET demo cohort to DIRECTORY."""
    from radiomx.cli.demo_cohort import write_demo_cohort

    scans = write_demo_cohort(directory, patients=patients, seed=seed)
    click.echo(f"demo cohort: {len(scans)} scans in {directory}", err=True)


