"""This radiomx against an earlier one, side by side on the `make bench` cohort, and both against the stock CLI.

Why: a reshape or a new column must not cost speed unnoticed. The stock PyRadiomics CLI is the same code in both
legs, so "radiomx's ratio to stock stays within 5 %" is "radiomx's time stays within 5 %"; measuring the two
radiomx versions alternately (before, after, before, after, ...) in one time window gives each the same draws from
this VM's drifting speed. The stock CLI runs once per configuration, for the ratio.

    git worktree add ../rx-before <REV> && make -C ../rx-before .venv/bin/radiomx
    python benchmarks/bench_before_after.py --before ../rx-before/.venv/bin/radiomx --configs original,filters

Prints a Markdown table (best of ``--reps`` per leg) and writes it to ``--results``. ``--smoke``: this radiomx as
both legs (unless ``--before`` is given) on two tiny patients, one round, into a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_extract as bench  # noqa: E402 - the benchmark's own cohort, params and timing


def run(executable: Path, work: Path, cohort: Path, config: str, jobs: int, leg: str, rep: int,
        extra: tuple[str, ...] = ()) -> dict:
    out = work / f"{leg.replace(' ', '')}-{config}-{rep}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(executable), "extract", str(cohort), "-o", str(out), "--params-dir", str(work / "params" / config),
           "--jobs", str(jobs), *extra]
    # From the work folder, never from a checkout: a radiomx before issue 23 started its workers from a forkserver
    # that imported from its working folder, and run from this repository it would import this checkout's radiomx.
    return bench.timed(cmd, work / f"{leg}-{config}-{rep}.log", warm=cohort, cwd=work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=None, help="the earlier radiomx executable (required)")
    parser.add_argument("--after", type=Path, default=bench.BIN / "radiomx", help="this radiomx (default: this venv)")
    parser.add_argument("--configs", default="original", help="comma-separated subset of: " + ", ".join(bench.CONFIGS))
    parser.add_argument("--reps", type=int, default=3, help="before/after pairs per configuration")
    parser.add_argument("--after-flags", default="",
                        help="also time this radiomx with these extract flags, as a third leg (e.g. '-j 1')")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--work", type=Path, default=HERE / ".work")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-before-after.md")
    bench.smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.before is None and not args.smoke:
        parser.error("--before is required: the earlier radiomx executable")
    return bench.measured(args, "before-after", compare, before=args.before or args.after, patients=2, reps=1,
                          configs="original")


def compare(args: argparse.Namespace) -> int:
    # Absolute before the legs run from the work folder (a relative executable would be looked up there).
    args.before, args.after, args.work = (Path(p).absolute() for p in (args.before, args.after, args.work))
    args.work.mkdir(parents=True, exist_ok=True)
    cohort, scans = bench.write_inputs(args.work, args.patients, args.seed, args.smoke)
    for radiomx in {args.before, args.after}:  # both as a wheel install would be
        bench.byte_compile(radiomx)
    lesions = bench.lesion_count(scans)
    legs = [("before", args.before, ()), ("after", args.after, ())]
    if args.after_flags:
        legs.append((f"after {args.after_flags}", args.after, tuple(args.after_flags.split())))
    lines = [f"radiomx before ({args.before}) vs after ({args.after}); {args.patients} patients, {lesions} lesions, "
             f"--jobs {args.jobs}, best and median of {args.reps} alternated rounds; stock CLI once per "
             "configuration.", "",
             "| configuration | stock s | radiomx | best s | median s | / before (best) | / before (median) "
             "| CPU s, process tree (median) | stock/radiomx |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for config in args.configs.split(","):
        stock = bench.run_stock(args.work, config, args.jobs, "ba")["seconds"]
        times: dict[str, list[float]] = {leg: [] for leg, _, _ in legs}
        cpu: dict[str, list[float]] = {leg: [] for leg, _, _ in legs}
        for rep in range(args.reps):
            for leg, exe, extra in legs:
                result = run(exe, args.work, cohort, config, args.jobs, leg, rep, extra)
                times[leg].append(result["seconds"])
                cpu[leg].append(result["cpu"])
                print(f"{config} {leg} rep {rep}: {result['seconds']:.2f} s, CPU {result['cpu']:.2f} s", flush=True)
        base_best, base_median = min(times["before"]), statistics.median(times["before"])
        for leg, _, _ in legs:
            best, median = min(times[leg]), statistics.median(times[leg])
            lines.append(f"| {config} | {stock:.1f} | {leg} | {best:.2f} | {median:.2f} | {best / base_best:.3f} | "
                         f"{median / base_median:.3f} | {statistics.median(cpu[leg]):.2f} | {stock / best:.1f}x |")
        lines.append(f"<!-- {config} all runs (s): {times} -->")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines.append(f"\nLoad average at the end (1, 5, 15 min): {load}.")
    text = "\n".join(lines) + "\n"
    print(text)
    args.results.write_text("# radiomx before / after\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
