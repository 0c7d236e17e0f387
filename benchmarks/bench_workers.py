"""How radiomx's workers start, on three realistic runs: one new scan (the nightly case), 20 scans, 200 scans.

Why: every mechanism around the worker processes (how they start, what they import, the allocator they get) must
pay for its complexity on a run a user makes, not on a micro-benchmark. ``docs/parallel.md`` quotes the figures.

The runs, on ``benchmarks/synth.py``'s whole-body FDG PETs (200 x 200 x 300 voxels, 1-15 lesions each), with the
shipped 18F-FDG parameter file, ``radiomx extract`` as a user types it (``--jobs`` default: every usable core):

* ``nightly``: OUT already holds 20 computed scans (a copy of one made beforehand, untimed) and the cohort has one
  new scan: the run stats 21 scans, computes one, commits it and refreshes the derived tables;
* ``20``: 20 scans into a fresh OUT;
* ``200``: 200 scans into a fresh OUT (the 20 scans' files hard-linked under 200 patient IDs: every scan is read,
  hashed and computed as its own, only the bytes repeat, so the page cache holds 0.8 GB, not 8 GB).

Legs are given on the command line, each ``--leg NAME 'ENV=VALUE ...' 'extract flags'`` (default: radiomx as
shipped, and with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` exported). ``--executable`` runs another radiomx (an
earlier version's venv) for a leg named ``before``. The legs alternate within each round (``--reps`` rounds per
run); the cohort is read and the modules imported once, untimed, before every run (``bench_extract.timed``).
Prints, per run and leg, the median and best wall time, the median CPU time of the whole process tree (user +
system, every descendant counted: what a loaded machine disturbs least) and the median peak RSS of the process tree
(the sum of its processes' RSS, so pages a fork shares are counted in each), with the load average. ``--smoke``:
tiny scans (2 + 1 and 2 of them), the first leg, one round, in seconds.

    .venv/bin/python benchmarks/bench_workers.py --runs nightly,20,200 --reps 5
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from bench_extract import BIN, byte_compile, fmt_mib, timed  # noqa: E402

HUGE_PAGES = "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
DEFAULT_LEGS = [["radiomx", "", ""], ["huge pages", HUGE_PAGES, ""]]


def cohorts(work: Path, smoke: bool) -> dict[str, tuple[Path, Path | None]]:
    """Per run: (the cohort to extract, the folder of its one new scan, or None: every scan is new)."""
    shape = synth.SMOKE_SHAPE_ZYX if smoke else synth.SHAPE_ZYX
    few, many = (2, 4) if smoke else (20, 200)
    distinct = synth.cached_cohort(work / "distinct", few + 1, 2024, shape)  # the nightly's new scan is the last
    base = synth.linked_cohort(work / f"cohort-{few}", distinct, few)
    nightly = work / "cohort-nightly"
    if not nightly.exists():
        shutil.copytree(base, nightly, copy_function=os.link)
    return {"nightly": (nightly, distinct / f"P{few + 1:03d}"), str(few): (base, None),
            str(many): (synth.linked_cohort(work / f"cohort-{many}", base, many), None)}


def nightly_start(executable: Path, cohort: Path, new_scan: Path, out: Path, env: dict[str, str]) -> None:
    """OUT as last night left it: every scan of ``cohort`` but the new one computed (by the leg's radiomx, untimed);
    then the new scan arrives in the cohort."""
    arrived = cohort / new_scan.name
    shutil.rmtree(arrived, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    timed([str(executable), "extract", str(cohort), "-o", str(out)], out.parent / "start.log", env)
    shutil.copytree(new_scan, arrived, copy_function=os.link)


def slug(name: str) -> str:
    return name.replace(" ", "_")


def environment(assignments: str) -> dict[str, str]:
    """``'A=1 B=2'`` -> {"A": "1", "B": "2"}: what a leg adds to the environment."""
    return dict(item.split("=", 1) for item in shlex.split(assignments))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leg", nargs=3, action="append", metavar=("NAME", "ENV", "FLAGS"),
                        help="a leg: its name, 'VAR=VALUE ...' for its environment, extra extract flags")
    parser.add_argument("--executable", type=Path, default=BIN / "radiomx",
                        help="the radiomx a leg named 'before' runs (an earlier version's venv)")
    parser.add_argument("--runs", default="nightly,20,200", help="which runs: nightly, 20, 200")
    parser.add_argument("--reps", type=int, default=5, help="alternated rounds per run")
    parser.add_argument("--work", type=Path, default=HERE / ".work-workers")
    parser.add_argument("--smoke", action="store_true", help="tiny scans, one round: the same code in seconds")
    args = parser.parse_args(argv)
    legs = args.leg or (DEFAULT_LEGS[:1] if args.smoke else DEFAULT_LEGS)
    reps = 1 if args.smoke else args.reps
    work = (Path(tempfile.mkdtemp(prefix="radiomx-workers-")) if args.smoke else args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / ".gitignore").write_text("*\n")
    runs = cohorts(work, args.smoke)

    def executable(leg: str) -> Path:
        return args.executable if leg == "before" else BIN / "radiomx"

    for radiomx in {executable(name) for name, _, _ in legs}:
        byte_compile(radiomx)
    wanted = [name for name in runs if name in args.runs.split(",")] if not args.smoke else list(runs)[:2]
    table = ["| run | leg | wall s (median) | wall s (best) | CPU s, process tree (median) "
             "| peak RSS, process tree (median) | exit |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for run in wanted:
        cohort, new_scan = runs[run]
        times: dict[str, list[dict]] = {name: [] for name, _, _ in legs}
        starts: dict[Path, Path] = {}
        for name, _, _ in legs:  # one starting OUT per radiomx (the legs of one radiomx compute the same rows)
            if new_scan is not None and executable(name) not in starts:
                starts[executable(name)] = work / f"start-{len(starts)}"
                nightly_start(executable(name), cohort, new_scan, starts[executable(name)], {})
        for rep in range(reps):
            for name, env, flags in legs:
                out = work / f"out-{slug(name)}"
                shutil.rmtree(out, ignore_errors=True)
                if new_scan is not None:
                    shutil.copytree(starts[executable(name)], out)
                command = [str(executable(name)), "extract", str(cohort), "-o", str(out), *shlex.split(flags)]
                result = timed(command, work / f"{run}-{slug(name)}.log", environment(env), warm=cohort,
                               tool="radiomx", cwd=work, poll=0.01)
                times[name].append(result)
                print(f"{run} {name} round {rep}: {result['seconds']:.2f} s, CPU {result['cpu']:.2f} s, tree peak "
                      f"{fmt_mib(result['tree_rss'])}", flush=True)
        for name, _, _ in legs:
            rs = times[name]
            table.append(f"| {run} | {name} | {statistics.median(r['seconds'] for r in rs):.2f} | "
                         f"{min(r['seconds'] for r in rs):.2f} | {statistics.median(r['cpu'] for r in rs):.2f} | "
                         f"{fmt_mib(statistics.median(r['tree_rss'] for r in rs))} | "
                         f"{max(r['exit'] for r in rs)} |")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {len(os.sched_getaffinity(0))} usable cores, {reps} alternated "
          f"rounds; load average at the end {load}\n")
    print("\n".join(table))
    if args.smoke:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
