"""``radiomx publish``: refresh the published feature files after a run was killed before its end."""

from __future__ import annotations

from pathlib import Path

import click

from radiomx.cli.logs import emit


@click.command(short_help="Refresh OUT's published feature files after a killed run.", epilog="""\b
Example:
  radiomx publish out/      # after a run was killed; needs no cohort""")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
def publish(out: Path, wait: float) -> None:
    """Rewrite OUT/features/<tracer>.parquet from the committed parts where they are newer.

    extract does this at the end of every run; a run killed before its end leaves it to the next run or to this
    command."""
    from radiomx import api

    done = api.publish(out, wait)
    emit("published", f"published: {', '.join(done)}" if done else "every published table is current",
         tracers=done)
