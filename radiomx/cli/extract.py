"""``radiomx extract``: the one command that computes."""

from __future__ import annotations

from pathlib import Path

import click

from radiomx.cli.flags import cohort_options, extract_options_from, read_scan_keys


@click.command()
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@cohort_options
@click.option("--scans", "scans_file", type=click.File("r"), default=None,
              help="Only the scans listed (lines of `radiomx scan`; - for stdin).")
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
@click.option("--huge-pages", is_flag=True,
              help="Pool workers back their large buffers with transparent huge pages (glibc.malloc.hugetlb=1).")
@click.pass_context
def extract(ctx: click.Context, cohort: Path, out: Path, scans_file, log_file: Path | None, **flags) -> None:
    """Extract features of every new, changed or failed scan of COHORT into OUT."""
    options = extract_options_from(**flags)
    from radiomx import api
    from radiomx.cli.output import print_plan, print_summary, progress_printer

    only = read_scan_keys(scans_file) if scans_file is not None else None
    with progress_printer() as progress:
        summary = api.extract(cohort, out, options, only=only, progress=progress)
    if options.dry_run:
        print_plan(summary)
        raise SystemExit(0)
    print_summary(summary, log_file, verbose=bool(ctx.meta.get("radiomx.verbose")))
    raise SystemExit(summary.exit_code)


