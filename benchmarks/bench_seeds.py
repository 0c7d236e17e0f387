"""Benchmark across cohort draws: stock ``pyradiomics`` CLI vs ``radiomx extract``, Original only, several seeds.

Why: the ratio depends on the cohort's lesions per scan. The stock CLI pays ~1.4 s per lesion; radiomx pays most
of its cost once per scan (reading and inflating a whole-body PET) and ~0.4 s per run. ``make bench`` measures one
draw of the generator (seed 2024: 54 lesions, 5.4 per patient, below the generator's mean of 8); this script
measures consecutive draws, chosen by rule before running (``--first-seed`` and the ``--seeds`` that follow it; no
seed is skipped), and reports each draw and the pooled ratio (total stock time / total radiomx time over the same
lesions, i.e. the ratio of pooled lesions/s).

Same protocol as ``bench_extract.py`` (whose functions it uses): same settings and parameter files, 2 workers each,
runs alternating stock, radiomx, stock, radiomx per seed, best of ``--reps``, page cache and code warmed untimed
before each run, and the max relative difference of every feature value. Writes ``benchmarks/RESULTS-seeds.md``.

    .venv/bin/python benchmarks/bench_seeds.py --first-seed 2024 --seeds 5

``--smoke``: one seed of two tiny patients, one round, in a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import bench_extract as bench

HERE = Path(__file__).resolve().parent


def measure_seed(work: Path, patients: int, seed: int, reps: int, jobs: int, smoke: bool = False) -> dict:
    cohort, scans = bench.write_inputs(work, patients, seed, smoke)
    lesions = bench.lesion_count(scans)
    runs = bench.alternate(work, cohort, "original", jobs, reps)
    times = {tool: [r["seconds"] for r in tool_runs] for tool, tool_runs in runs.items()}
    worst, _, compared, _ = bench.compared_difference(runs["stock"][-1]["out"], runs["radiomx"][-1]["out"], lesions,
                                                      f"seed {seed}", work)
    return {"seed": seed, "scans": len(scans), "lesions": lesions, "stock": min(times["stock"]),
            "radiomx": min(times["radiomx"]), "all": times, "worst": worst, "compared": compared}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-seed", type=int, default=2024)
    parser.add_argument("--seeds", type=int, default=5, help="consecutive seeds from --first-seed")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--reps", type=int, default=2, help="A B pairs per seed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=HERE / ".work-seeds", help="scratch folder, a subfolder per seed")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-seeds.md")
    bench.smoke_argument(parser)
    args = parser.parse_args(argv)
    return bench.measured(args, "seeds", measure, seeds=1, patients=2, reps=1)


def measure(args: argparse.Namespace) -> int:
    bench.byte_compile(bench.BIN / "radiomx")  # as bench_extract.py: compiled like a wheel
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        work = (args.work / f"seed-{seed}").resolve()
        work.mkdir(parents=True, exist_ok=True)
        (work / ".gitignore").write_text("*\n")
        rows.append(measure_seed(work, args.patients, seed, args.reps, args.jobs, args.smoke))
    stock_total = sum(r["stock"] for r in rows)
    ours_total = sum(r["radiomx"] for r in rows)
    lesions = sum(r["lesions"] for r in rows)
    table = ["| seed | scans | lesions | lesions per scan | stock (best) | radiomx (best) | ratio "
             "| max rel. difference |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        table.append(f"| {r['seed']} | {r['scans']} | {r['lesions']} | {r['lesions'] / r['scans']:.1f} | "
                     f"{r['stock']:.1f} s | {r['radiomx']:.2f} s | **{r['stock'] / r['radiomx']:.1f}x** | "
                     f"{r['worst']:.2g} ({r['compared']:,} values) |")
    table.append(f"| pooled | {sum(r['scans'] for r in rows)} | {lesions} | "
                 f"{lesions / sum(r['scans'] for r in rows):.1f} | {stock_total:.1f} s | {ours_total:.2f} s | "
                 f"**{stock_total / ours_total:.1f}x** | |")
    all_times = {r["seed"]: {k: [round(t, 2) for t in v] for k, v in r["all"].items()} for r in rows}
    text = f"""# Original only, across cohort draws

Produced by `.venv/bin/python benchmarks/bench_seeds.py --first-seed {args.first_seed} --seeds {args.seeds}`,
{time.strftime('%Y-%m-%d')}, on {len(os.sched_getaffinity(0))} usable cores. {args.patients} patients per cohort
(`benchmarks/synth.py`), Original image type, all 7 classes, the settings of `make bench`; both tools `--jobs
{args.jobs}`, alternating stock, radiomx per seed, best of {args.reps}. Seeds are consecutive from the first, fixed
before running. Pooled ratio = total stock time / total radiomx time over all lesions.

{chr(10).join(table)}

All wall times (s): `{all_times}`
"""
    args.results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
