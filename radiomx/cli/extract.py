"""``radiomx extract``: the one command that computes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from radiomx.cli.flags import cohort_options, extract_options_from
from radiomx.errors import ExitCode

if TYPE_CHECKING:
    from radiomx.run.summary import RunSummary


@click.command(short_help="Extract features of new, changed or failed scans.", epilog="""\b
Examples:
  radiomx extract cohort/ -o out/
  radiomx scan cohort/ --format jsonl | grep '"P00[12]"' | radiomx extract cohort/ -o out/ --scans -
  radiomx -q extract cohort/ -o out/ --json | jq .failed_scans     # cron: a JSON summary on stdout""")
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@cohort_options
@click.option("--scans", "scans_file", type=click.File("r"), default=None,
              help="Only the scans listed: `radiomx scan` output in tsv, csv or jsonl (detected); - for stdin.")
@click.option("-j", "--jobs", type=int, default=0, help="Worker processes (default: usable cores).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--dask-scheduler", default=None, help="Dask scheduler address (tcp://...) or scheduler file.")
@click.option("--dask-timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the Dask scheduler to answer.")
@click.option("--force", is_flag=True, help="Recompute every scan.")
@click.option("--dry-run", is_flag=True, help="Print the plan (new/changed/retry/unchanged) and write nothing.")
@click.option("--prune", is_flag=True, help="Drop rows of scans that vanished from the cohort.")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another run's lock.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Scans per commit.")
@click.option("--batch-seconds", type=float, default=60.0, show_default=True, help="Commit at least this often.")
@click.option("--log-file", type=click.Path(path_type=Path), default=None, help="Append failures and tracebacks here.")
@click.option("--qc", is_flag=True, help="Also draw each computed scan's QC picture (OUT/qc/), in the same worker.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON run summary on stdout (counts, tables, failures).")
@click.pass_context
def extract(ctx: click.Context, cohort: Path, out: Path, scans_file, log_file: Path | None, as_json: bool,
            **flags) -> RunSummary | ExitCode:
    """Extract features of every new, changed or failed scan of COHORT into OUT."""
    options = extract_options_from(**flags)
    from radiomx import api
    from radiomx.cli.logs import adopt
    from radiomx.cli.output import print_plan, print_summary, progress_printer
    from radiomx.cli.scanlist import read_from

    only = read_from(scans_file) if scans_file is not None else None
    adopt("radiomics", *(("distributed",) if options.engine == "dask" or options.dask_scheduler else ()))
    quiet = ctx.meta.get("radiomx.quiet") or ctx.meta.get("radiomx.log_format") == "json"
    with progress_printer(enabled=not quiet) as progress:
        summary = api.extract(cohort, out, options, only=only, progress=progress)
    if options.dry_run:
        if as_json:
            import json

            click.echo(json.dumps(summary.as_dict(), sort_keys=True, default=str))
        else:
            print_plan(summary)
        return ExitCode.OK
    print_summary(summary, log_file, verbose=bool(ctx.meta.get("radiomx.verbose")), as_json=as_json)
    return summary
