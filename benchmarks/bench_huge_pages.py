"""Benchmark: ``ExtractOptions(huge_pages=True)`` (CLI ``--huge-pages``) against the default, on the bench cohort.

Small (a few minutes): the first ``--patients`` patients of the benchmark cohort (``synth.py``, seed 2024), the
Original-only settings, ``--jobs`` pool workers, runs alternating off / on, ``--reps`` pairs, each a fresh
interpreter calling ``radiomx.api.extract`` into a fresh output folder. Prints each run's wall time and the best of
each. Huge pages only change how glibc gets memory from the kernel (``radiomx/run/warmup.py``); the tables are
compared for equality too. Not a test.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_extract import cohort_arguments, write_inputs  # noqa: E402

RUN = """
import sys
from radiomx.api import extract
from radiomx.options import ExtractOptions
summary = extract(sys.argv[1], sys.argv[2], ExtractOptions(params_dir=sys.argv[3], jobs=int(sys.argv[4]),
                                                          huge_pages=sys.argv[5] == "on"))
raise SystemExit(summary.exit_code)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cohort_arguments(parser, HERE / ".work-huge-pages", patients=4, reps=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / ".gitignore").write_text("*\n")
    cohort, scans = write_inputs(args.work, args.patients, args.seed)
    print(f"{len(scans)} scans, {sum(len(s[3]) for s in scans)} lesions, {args.jobs} workers", flush=True)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for rep in range(args.reps):
        for mode in times:
            out = args.work / f"out-{mode}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", RUN, str(cohort), str(out), str(args.work / "params" / "original"),
                            str(args.jobs), mode], check=True)
            times[mode].append(time.perf_counter() - start)
            print(f"rep {rep} huge pages {mode}: {times[mode][-1]:.2f} s", flush=True)
    import pandas as pd

    a, b = (pd.read_parquet(args.work / f"out-{m}" / "features" / "18F-FDG.parquet").drop(columns="extracted_at")
            for m in ("off", "on"))
    pd.testing.assert_frame_equal(a, b)
    print(f"best off {min(times['off']):.2f} s, best on {min(times['on']):.2f} s, "
          f"off/on {min(times['off']) / min(times['on']):.3f}; tables identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
