"""Benchmark: what ``--qc`` adds per scan, and how large ``report.html`` is, on the synthetic whole-body cohort.

Run with ``make bench`` (after bench_extract.py) or ``python benchmarks/bench_qc.py --help``; about 2 minutes for
the default 4 patients. Measures, on ``benchmarks/synth.py``'s cohort (200 x 200 x 300 grid, 1-15 lesions each):

* ``radiomx extract`` without and with ``--qc`` (fresh OUT each time, runs alternating A B A B, best of each): the
  wall-clock difference per scan, which is what a user waits for (drawing overlaps other workers' scans);
* the drawing alone, in this process, per scan (``radiomx.qc.draw.draw_loaded`` on the loaded scan): the CPU cost;
* ``radiomx report`` (time, size) and a no-change ``radiomx qc`` + ``radiomx report`` rerun (time, files written);
* ``radiomx report`` on the same output replicated to 600 scans (300 patients x 2 tracers): time and size.
Writes ``benchmarks/RESULTS-qc.md``. ``--smoke``: two tiny patients, one round, the report replicated to 8 scans,
in a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import synth
from bench_extract import measured, smoke_argument

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).returncode
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    return time.perf_counter() - start


def draw_seconds(cohort: Path, out: Path) -> list[float]:
    """Per scan: load once (not timed), then time only the drawing, as the worker does it after the features."""
    from radiomx.api import scan
    from radiomx.features.lesions import split_masks
    from radiomx.inputs.loader import load_scan
    from radiomx.options import ExtractOptions
    from radiomx.params.paramset import default_params_root, resolve_params
    from radiomx.qc.draw import draw_loaded
    from radiomx.records import Layout
    from radiomx.tracers import get_tracer

    layout = Layout(pet_units="SUVbw")
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"))
    seconds = []
    for s in scan(cohort, ExtractOptions()):
        loaded = load_scan(s, layout)
        labels = split_masks(loaded.mask).layers
        start = time.perf_counter()
        draw_loaded(s, loaded, labels, params, cohort, "bench")
        seconds.append(time.perf_counter() - start)
    return seconds


def scaled_out(src: Path, dst: Path, copies: int) -> int:
    """``src`` as if the cohort had ``copies`` times its patients (IDs ``P001-007``): table rows, pictures and
    thumbnails replicated, so the report's time and size are measured at trial scale, not extrapolated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.rmtree(dst, ignore_errors=True)
    for name in ("scans.parquet", "failures.parquet", "runs.parquet", *(
            str(p.relative_to(src)) for p in (src / "features").glob("*.parquet"))):
        if not (src / name).is_file():
            continue
        table = pq.read_table(src / name)
        if "patient_id" in table.column_names:
            column = table.schema.get_field_index("patient_id")
            table = pa.concat_tables([table.set_column(column, "patient_id", pa.array(
                [f"{p}-{c:03d}" for p in table["patient_id"].to_pylist()], pa.string())) for c in range(copies)])
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, dst / name)
    for picture in (src / "qc").rglob("*.*"):
        for c in range(copies):
            target = dst / "qc" / f"{picture.parent.name}-{c:03d}" / picture.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picture, target)
    return copies * len(list((src / "qc").rglob("*.png")))


def runs(seconds: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in seconds)


def files_and_mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()
            and p.name != ".radiomx.store.lock" and p.name != "runs.parquet"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "qc")
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-qc.md")
    smoke_argument(parser)
    args = parser.parse_args(argv)
    return measured(args, "qc", measure, patients=2, reps=1)


def measure(args: argparse.Namespace) -> int:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    cohort = synth.cached_cohort(work / "cohort", args.patients, args.seed,
                                 synth.SMOKE_SHAPE_ZYX if args.smoke else synth.SHAPE_ZYX)
    scans = args.patients
    radiomx = str(BIN / "radiomx")
    times: dict[str, list[float]] = {"plain": [], "qc": []}
    for rep in range(args.reps):
        for name in times:
            out = work / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [radiomx, "extract", str(cohort), "-o", str(out), "--jobs", str(args.jobs)]
            times[name].append(timed(cmd + (["--qc"] if name == "qc" else [])))
            print(f"extract {name} rep {rep}: {times[name][-1]:.2f} s", flush=True)
    out = work / "out-qc"
    drawing = draw_seconds(cohort, out)
    report_s = timed([radiomx, "report", str(out)])
    report = out / "report.html"
    size = report.stat().st_size
    before = files_and_mtimes(out)
    rerun_qc_s = timed([radiomx, "qc", str(out)])
    rerun_report_s = timed([radiomx, "report", str(out)])
    after = files_and_mtimes(out)
    rewritten = sorted(k for k in after if before.get(k) != after[k])
    thumbs = sorted((out / "qc").rglob("*.thumb.jpg"))
    pngs = sorted((out / "qc").rglob("*.png"))
    thumb_mean = statistics.mean(p.stat().st_size for p in thumbs)
    png_mean = statistics.mean(p.stat().st_size for p in pngs)
    big = work / "out-600"
    big_scans = scaled_out(out, big, (8 if args.smoke else 600) // len(pngs))
    big_s = timed([radiomx, "report", str(big)])
    big_size = (big / "report.html").stat().st_size
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    shape = synth.SMOKE_SHAPE_ZYX if args.smoke else synth.SHAPE_ZYX
    added = (min(times["qc"]) - min(times["plain"])) / scans
    cpu = os.cpu_count()
    text = f"""# radiomx --qc and report: cost on the synthetic whole-body cohort

`python benchmarks/bench_qc.py --patients {args.patients} --jobs {args.jobs} --reps {args.reps}` ({cpu} CPUs visible;
shared machine, so wall-clock numbers drift between runs; the in-process drawing time is the steadier one).
Cohort: benchmarks/synth.py, {scans} FDG scans, {' x '.join(map(str, reversed(shape)))} voxels each.

| measure | value |
| --- | --- |
| extract without --qc (best of {args.reps}) | {min(times['plain']):.2f} s ({runs(times['plain'])}) |
| extract with --qc (best of {args.reps}) | {min(times['qc']):.2f} s ({runs(times['qc'])}) |
| **added wall-clock time per scan with --qc** | **{added:.2f} s** |
| drawing alone per scan, in process (mean, max) | {statistics.mean(drawing):.2f} s, {max(drawing):.2f} s |
| QC picture (PNG) / thumbnail (JPEG), mean size | {png_mean / 1024:.0f} KiB / {thumb_mean / 1024:.1f} KiB |
| `radiomx report` time / size | {report_s:.2f} s / {size / 1024:.0f} KiB |
| no-change rerun: `radiomx qc` + `radiomx report` | {rerun_qc_s:.2f} s + {rerun_report_s:.2f} s, \
files rewritten: {len(rewritten)} |
| `radiomx report` at trial scale: {big_scans} scans (the cohort's rows and pictures replicated) | \
{big_s:.2f} s / {big_size / 1024 / 1024:.1f} MiB |

Load average at the end (1, 5, 15 min): {load}. The wall-clock difference includes matplotlib's import in each
worker (once per worker, ~0.3 s), which a 4-scan cohort cannot amortize.
"""
    args.results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
