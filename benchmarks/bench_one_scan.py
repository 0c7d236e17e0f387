"""One small scan, one lesion: ``radiomx extract`` against the stock ``pyradiomics`` CLI, wall time and peak memory.

Why: the nightly run that finds one new scan, or a rerun of one scan while checking it, is what a user waits for
most often. It must cost at most what the stock CLI costs on that scan's one lesion (issue 23). Both tools get the
same PyRadiomics settings (radiomx's shipped parameter file for the tracer; the stock CLI a copy without the
``radiomx:`` block it cannot read) and the same two files:

* stock: ``pyradiomics pet.nii.gz mask.nii.gz -p params.yaml -o out.csv -f csv`` (single mode, label 1);
* radiomx: ``radiomx extract COHORT -o OUT`` into a fresh OUT (discovery, SUV, the lesion's features and PET
  indices, Parquet tables, the derived tables, the run log: everything a user's run does).

The runs alternate (stock, radiomx, stock, ...), ``--reps`` of each (default 5), each a fresh process; the cohort
is read and each tool's modules imported once, untimed, before every run (``bench_extract.warm_code``). Reported per
tool: median (and min) wall time, the median CPU time of the whole process tree (user + system, every descendant
counted) and the median of each run's peak RSS of its whole process tree (the sum over the process and every
descendant, polled every 5 ms), plus the load average. The values are compared too (max relative
difference over every feature). ``--smoke`` runs the same code on a tiny scan, one round.

    .venv/bin/python benchmarks/bench_one_scan.py            # medians of 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from bench_extract import BIN, byte_compile, fmt_mib, timed  # noqa: E402

#: The small scan: the demo cohort's grid (``radiomx demo``: 100 x 100 x 180 voxels of 4 mm), one 15 mm lesion.
SHAPE_ZYX, SPACING_XYZ = (180, 100, 100), (4.0, 4.0, 4.0)


def write_scan(work: Path, shape_zyx: tuple[int, int, int], tracer: str) -> tuple[Path, Path, Path]:
    """The cohort (one patient, one scan, one lesion), radiomx's parameter file and the stock CLI's copy of it."""
    import SimpleITK as sitk

    from radiomx.params.paramset import default_params_root, resolve_params
    from radiomx.tracers import get_tracer

    cohort = work / "cohort"
    folder = cohort / "P001" / "FDG"
    folder.mkdir(parents=True, exist_ok=True)
    image, labels = synth.patient_volume(2024, 1, shape_zyx=shape_zyx, spacing_xyz=SPACING_XYZ, n_lesions=1,
                                         radii_mm=(15.0,) if shape_zyx == SHAPE_ZYX else (8.0,))
    for array, name in ((image, "pet.nii.gz"), (labels, "mask.nii.gz")):
        sitk.WriteImage(synth.to_image(array, SPACING_XYZ), str(folder / name), useCompression=True)
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    params = resolve_params(default_params_root(), get_tracer(tracer))
    stock = work / "stock.yaml"
    stock.write_text(yaml.safe_dump(params.pyradiomics, sort_keys=False))
    return cohort, folder, stock


def max_relative_difference(stock_csv: Path, out: Path) -> tuple[float, int]:
    """Worst relative difference over every feature value the stock CLI wrote (0 baseline: absolute), and how many
    values were compared; refuses a comparison of nothing."""
    import csv
    import math

    import pyarrow.parquet as pq

    with open(stock_csv, newline="") as fh:
        stock = next(csv.DictReader(fh))
    ours = pq.read_table(out / "features" / "18F-FDG.parquet").to_pylist()
    assert len(ours) == 1, f"radiomx wrote {len(ours)} lesion rows, expected 1"
    worst, compared = 0.0, 0
    for name, text in stock.items():
        if not name.startswith("original_"):
            continue
        a, b = float(text), float(ours[0][name])
        if not (math.isnan(a) and math.isnan(b)):
            worst = max(worst, abs(a - b) / abs(a) if a else abs(b))
            compared += 1
    if compared < 100:
        raise SystemExit(f"only {compared} feature values compared")
    return worst, compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="runs of each tool, alternated")
    parser.add_argument("--tracer", default="18F-FDG", help="whose shipped parameter file both tools use")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--radiomx-flags", default="", help="extra flags for radiomx extract (e.g. -j 1)")
    parser.add_argument("--before", type=Path, default=None,
                        help="also run an earlier radiomx executable (its venv's bin/radiomx), as a third leg")
    parser.add_argument("--smoke", action="store_true", help="a tiny scan, one round: the same code in seconds")
    args = parser.parse_args(argv)
    reps = 1 if args.smoke else args.reps
    work = (args.work or Path(tempfile.mkdtemp(prefix="radiomx-one-scan-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cohort, folder, stock_params = write_scan(work, synth.SMOKE_SHAPE_ZYX if args.smoke else SHAPE_ZYX, args.tracer)
    legs = {
        "stock": lambda rep: [str(BIN / "pyradiomics"), str(folder / "pet.nii.gz"), str(folder / "mask.nii.gz"),
                              "-p", str(stock_params), "-o", str(work / f"stock-{rep}.csv"), "-f", "csv"],
        "radiomx": lambda rep: [str(BIN / "radiomx"), "extract", str(cohort), "-o", str(work / f"out-radiomx-{rep}"),
                                *args.radiomx_flags.split()],
    }
    if args.before is not None:
        legs["radiomx before"] = lambda rep: [str(args.before.absolute()), "extract", str(cohort), "-o",
                                              str(work / f"out-radiomx-before-{rep}"), *args.radiomx_flags.split()]
    for radiomx in {BIN / "radiomx", *([args.before] if args.before else [])}:
        byte_compile(radiomx)
    runs: dict[str, list[dict]] = {name: [] for name in legs}
    for rep in range(reps):
        for name, command in legs.items():
            if name == "stock":
                (work / f"stock-{rep}.csv").unlink(missing_ok=True)  # the CLI appends to an existing file
            else:
                shutil.rmtree(work / f"out-{name.replace(' ', '-')}-{rep}", ignore_errors=True)  # the scan is new
            result = timed(command(rep), work / f"{name}-{rep}.log", warm=cohort, tool=name.split()[0], cwd=work,
                           poll=0.005)
            runs[name].append(result)
            print(f"{name} run {rep}: {result['seconds']:.2f} s, CPU {result['cpu']:.2f} s, tree peak "
                  f"{fmt_mib(result['tree_rss'])}", flush=True)
    worst, compared = max_relative_difference(work / "stock-0.csv", work / "out-radiomx-0")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    medians = {name: (statistics.median(r["seconds"] for r in rs), statistics.median(r["tree_rss"] for r in rs),
                      statistics.median(r["max_rss"] for r in rs)) for name, rs in runs.items()}
    (stock_s, stock_rss, stock_max), (ours_s, ours_rss, ours_max) = medians["stock"], medians["radiomx"]
    cpu = {name: statistics.median(r["cpu"] for r in rs) for name, rs in runs.items()}
    print(f"\none scan ({'x'.join(map(str, reversed(synth.SMOKE_SHAPE_ZYX if args.smoke else SHAPE_ZYX)))} voxels, one "
          f"lesion), {args.tracer} parameter file, median of {reps} alternated runs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load average {load}\n")
    print("| leg | wall s (median) | wall s (min) | CPU s, process tree (median) | peak RSS, process tree (median) "
          "| peak RSS, largest process (kernel, median) | processes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rs in runs.items():
        print(f"| {name} | {medians[name][0]:.2f} | {min(r['seconds'] for r in rs):.2f} | "
              f"{statistics.median(r['cpu'] for r in rs):.2f} | {fmt_mib(medians[name][1])} | "
              f"{fmt_mib(medians[name][2])} | {max(r['processes'] for r in rs)} |")
    print(f"\nradiomx / stock: wall {ours_s / stock_s:.2f}, CPU {cpu['radiomx'] / cpu['stock']:.2f}, peak RSS "
          f"{ours_rss / stock_rss:.2f} (process tree), {ours_max / stock_max:.2f} (largest process); max relative "
          f"difference {worst:.2g} over {compared} feature values")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
