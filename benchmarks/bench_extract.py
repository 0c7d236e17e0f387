"""Benchmark: stock ``pyradiomics`` CLI vs ``radiomx extract`` on a synthetic whole-body PET cohort.

Run with ``make bench`` (or ``python benchmarks/bench_extract.py --help``). Not a test: it measures and writes
``benchmarks/RESULTS.md`` (``--smoke``: the same code on two tiny patients, in a scratch folder). Both tools get the
same PyRadiomics settings (radiomx's parameter file; the stock CLI a copy without the ``radiomx:`` block it cannot
read), 2 workers each, runs alternating A B A B; then radiomx with 1 and 2 workers alternated (scaling), how cost
grows with lesion and volume size (in-process, one worker, threads pinned), and a profile of one large lesion.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import math
import os
import pstats
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))  # tests.reference: the full-volume reference call

import synth  # noqa: E402

CLASSES = {c: None for c in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")}
SETTING = {"binWidth": 0.25, "resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline", "padDistance": 5,
           "minimumROIDimensions": 3, "minimumROISize": 8}
CONFIGS = {
    "filters": {"setting": SETTING, "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}},
                "featureClass": CLASSES},
    "original": {"setting": SETTING, "imageType": {"Original": {}}, "featureClass": CLASSES},
}
FEATURE_PREFIXES = ("original_", "log-", "wavelet")
HEADER = ("| configuration | stock lesions/s | radiomx lesions/s | ratio | stock peak RSS (largest worker) "
          "| radiomx peak RSS worker / main | max rel. difference of all feature values |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")


class PeakRss:
    """Polls a process tree every ``interval`` s: peak RSS of the launched process, of its largest descendant (a
    worker) and of the whole tree (the sum over the process and every descendant at one poll)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.root = psutil.Process(pid)
        self.main = 0
        self.worker = 0
        self.tree = 0
        #: How many processes the tree held at its largest (the command and the workers it started).
        self.processes = 1
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.root.memory_info().rss
                self.main = max(self.main, rss)
                children = self.root.children(recursive=True)
                self.processes = max(self.processes, 1 + len(children))
                for child in children:
                    try:
                        child_rss = child.memory_info().rss
                    except psutil.Error:
                        continue
                    self.worker = max(self.worker, child_rss)
                    rss += child_rss
                self.tree = max(self.tree, rss)
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def warm_page_cache(folder: Path) -> None:
    """Read every input file once before a timed run. This VM pages out idle page cache (a DAMON "pageout" scheme
    in /sys/kernel/mm/damon), and a cold cohort turned a 3 s radiomx run into 25 s of I/O wait; the stock CLI, which
    re-reads each file per lesion, hides that after its first read while radiomx (one read per file) pays it in
    full. Both tools start warm."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass


#: What each tool's processes import: loaded once, untimed, before each of its timed runs, so that its code is in
#: the page cache as its data is (the same reclaim pages out libraries a long run of the other tool did not touch,
#: e.g. radiomx's pandas/pyarrow during a 100 s stock run: ~1 s of I/O wait in radiomx's next run).
TOOL_MODULES = {
    "stock": ["radiomics.scripts", "radiomics.featureextractor", "SimpleITK", "pywt"],
    "radiomx": ["radiomx.cli", "radiomx.api", "radiomx.cli.output", "radiomx.run.worker", "radiomx.store.tables",
                "radiomics.featureextractor", "threadpoolctl"],
}


def byte_compile(radiomx: Path) -> None:
    """Byte-compile the radiomx package that the ``radiomx`` executable runs, as a wheel install would be. The stock
    CLI's package was byte-compiled by pip; an editable radiomx is compiled on first import, which
    PYTHONDONTWRITEBYTECODE (set on some machines) turns into every import: ~0.2 s and ~40 MiB more per process."""
    code = ("import compileall, pathlib, radiomx; "
            "compileall.compile_dir(pathlib.Path(radiomx.__file__).parent, quiet=1)")
    # -P: the working folder is not on the path, so a checkout there cannot stand in for the installed radiomx
    subprocess.run([str(Path(radiomx).absolute().parent / "python"), "-P", "-c", code], check=True)


def warm_code(tool: str) -> None:
    subprocess.run([sys.executable, "-c", "import " + ", ".join(TOOL_MODULES[tool])], check=True)


def _iowait_seconds() -> float:
    """Cumulative I/O wait of all CPUs (``/proc/stat``), to show a timed run was not waiting for the disk."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[5]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``): a process a timed
    command leaves behind (a forkserver, a resource tracker, each reaping its own children) is reparented here
    instead of to init, so ``timed`` can wait for it and count its CPU time. False where unavailable."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], log: Path, extra_env: dict[str, str] | None = None, warm: Path | None = None,
          tool: str | None = None, cwd: Path | None = None, poll: float = 0.05) -> dict:
    """Run ``cmd`` once: wall seconds, peak RSS (polled: main, largest descendant, whole tree; ``max_rss``: the
    kernel's exact peak of the largest single process, the command or a worker it waited for), exit code, I/O wait
    and, where ``adopt_orphans`` works, ``cpu``: user + system seconds of the whole process tree (every descendant
    reaped here; the figure a loaded machine disturbs least)."""
    env = {**os.environ, **(extra_env or {})}
    if warm is not None:
        warm_page_cache(warm)
    if tool is not None:
        warm_code(tool)
    adopted = adopt_orphans()
    before = {child.pid for child in psutil.Process().children()}
    cpu = _children_cpu()
    iowait = _iowait_seconds()
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        rss = PeakRss(proc.pid, poll)
        _, status, usage = os.wait4(proc.pid, 0)  # the kernel's peak RSS of the largest process it reaped
        code = proc.returncode = os.waitstatus_to_exitcode(status)
        rss.stop()
    seconds = time.perf_counter() - start
    if adopted:  # the command's orphans (its forkserver, its resource tracker) end once it has: count them too
        psutil.wait_procs([c for c in psutil.Process().children() if c.pid not in before], timeout=30)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code}; see {log}")
    return {"seconds": seconds, "main_rss": rss.main, "worker_rss": rss.worker, "tree_rss": rss.tree, "exit": code,
            "iowait": _iowait_seconds() - iowait, "cpu": _children_cpu() - cpu if adopted else float("nan"),
            "max_rss": usage.ru_maxrss * 1024, "processes": rss.processes}


def cohort_arguments(parser: argparse.ArgumentParser, work: Path, patients: int, reps: int) -> None:
    """The options every benchmark of the synthetic cohort takes: scratch folder, cohort size and seed, rounds, and
    ``--smoke``."""
    parser.add_argument("--work", type=Path, default=work, help="scratch folder (cohort, outputs, logs)")
    parser.add_argument("--patients", type=int, default=patients)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--reps", type=int, default=reps, help="alternated rounds")
    smoke_argument(parser)


def smoke_argument(parser: argparse.ArgumentParser) -> None:
    """``--smoke``, the same for every benchmark: its whole code path on a tiny input, in seconds, with the results
    written to a scratch folder (never to the RESULTS files the docs quote). ``tests/test_benchmarks_smoke.py`` runs
    every ``benchmarks/bench_*.py`` so, so that a refactor that breaks a benchmark fails the tests."""
    parser.add_argument("--smoke", action="store_true",
                        help="the same code on a tiny input, in seconds (tests/test_benchmarks_smoke.py)")


def smoke_work(prefix: str) -> Path:
    """A fresh scratch folder for a ``--smoke`` run (the caller removes it)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"radiomx-{prefix}-smoke-"))


def measured(args: argparse.Namespace, name: str, measure, **tiny) -> int:
    """``measure(args)``; with ``--smoke``, on ``tiny`` (the arguments that make the input small and the rounds few)
    in a scratch ``work`` folder that holds the results file too and is removed afterwards."""
    if not args.smoke:
        return measure(args)
    args.work = smoke_work(name)
    for key, value in tiny.items():
        setattr(args, key, value)
    if getattr(args, "results", None) is not None:  # never the RESULTS file the docs quote
        args.results = args.work / Path(args.results).name
    try:
        return measure(args)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)


def write_inputs(work: Path, patients: int, seed: int, smoke: bool = False) -> tuple[Path, list]:
    """The cohort (cached), both configurations' parameter trees and stock files, and the stock CLI's batch CSV."""
    cohort = synth.cached_cohort(work / "cohort", patients, seed, synth.SMOKE_SHAPE_ZYX if smoke else synth.SHAPE_ZYX)
    import SimpleITK as sitk

    scans = []
    for folder in sorted(p for p in cohort.glob("P*/FDG") if p.is_dir()):
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz")))
        scans.append((folder.parent.name, folder / "pet.nii.gz", folder / "mask.nii.gz",
                      sorted(int(v) for v in np.unique(mask) if v)))
    for name, config in CONFIGS.items():
        tree = work / "params" / name / "18F-FDG"
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "v1.yaml").write_text(yaml.safe_dump({"radiomx": {"units": "SUVbw"}, **config}, sort_keys=False))
        (work / f"stock-{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with open(work / "batch.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Image", "Mask", "Label"])
        for _, image, mask, labels in scans:
            for label in labels:
                writer.writerow([image, mask, label])
    return cohort, scans


#: The allocator setting a user may export (docs/parallel.md, "Huge pages"). The scaling runs set it in the
#: environment of both legs, so that the 1-worker and the N-worker runs differ only in their worker count.
HUGE_PAGES = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


def run_stock(work: Path, name: str, jobs: int, rep: int | str, extra_env: dict[str, str] | None = None) -> dict:
    out = work / f"stock-{name}-{rep}.csv"
    out.unlink(missing_ok=True)
    cmd = [str(BIN / "pyradiomics"), str(work / "batch.csv"), "-p", str(work / f"stock-{name}.yaml"), "-o", str(out),
           "-f", "csv", "--jobs", str(jobs)]
    return {**timed(cmd, work / f"stock-{name}-{rep}.log", extra_env, warm=work / "cohort", tool="stock"),
            "out": out}


def run_radiomx(work: Path, cohort: Path, name: str, jobs: int, rep: int | str,
                extra_env: dict[str, str] | None = None) -> dict:
    out = work / f"radiomx-{name}-j{jobs}-{rep}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(BIN / "radiomx"), "extract", str(cohort), "-o", str(out), "--params-dir", str(work / "params" / name),
           "--jobs", str(jobs)]
    return {**timed(cmd, work / f"radiomx-{name}-j{jobs}-{rep}.log", extra_env, warm=cohort, tool="radiomx"),
            "out": out}


def alternate(work: Path, cohort: Path, name: str, jobs: int, reps: int) -> dict[str, list[dict]]:
    """stock, radiomx, stock, radiomx, ... in one time window: each tool gets the same number of draws from this
    VM's drifting speed."""
    runs: dict[str, list[dict]] = {"stock": [], "radiomx": []}
    for rep in range(reps):
        for tool in runs:
            r = run_stock(work, name, jobs, rep) if tool == "stock" else run_radiomx(work, cohort, name, jobs, rep)
            runs[tool].append(r)
            print(f"{name} {tool} rep {rep}: {r['seconds']:.2f} s, worker peak {fmt_mib(r['worker_rss'])}, "
                  f"I/O wait {r['iowait']:.1f} s", flush=True)
    return runs


def compared_difference(stock_csv: Path, radiomx_out: Path, lesions: int, label: str,
                        work: Path) -> tuple[float, str, int, int]:
    """``max_relative_difference``, refusing a comparison that did not cover every lesion: the stock CLI exits 0
    even when every case failed, and a tool that computed nothing must never be timed."""
    diff = max_relative_difference(stock_csv, radiomx_out)
    if diff[3] != lesions or diff[2] == 0:
        raise SystemExit(f"{label}: {diff[3]} of {lesions} lesions compared ({diff[2]} values); see the logs in {work}")
    return diff


def max_relative_difference(stock_csv: Path, radiomx_out: Path) -> tuple[float, str, int, int]:
    """Max relative difference over every feature of every lesion (0 baseline: absolute difference)."""
    import pandas as pd

    from radiomx.api import read_table

    stock = pd.read_csv(stock_csv)
    ours = read_table(radiomx_out)
    ours = ours.set_index([ours["patient_id"], ours["lesion_id"].astype(int)])
    worst, where, compared, lesions = 0.0, "", 0, 0
    for _, row in stock.iterrows():
        key = (Path(row["Image"]).parent.parent.name, int(row["Label"]))
        mine = ours.loc[key]
        lesions += 1
        for col in stock.columns:
            if not col.startswith(FEATURE_PREFIXES):
                continue
            a, b = float(row[col]), float(mine[col])
            if math.isnan(a) and math.isnan(b):
                continue
            diff = abs(a - b) / abs(a) if a != 0 else abs(b)
            compared += 1
            if not diff <= worst:
                worst, where = diff, f"{key} {col}"
    return worst, where, compared, lesions


def lesion_count(scans) -> int:
    return sum(len(labels) for *_, labels in scans)


def size_scaling(work: Path, smoke: bool = False) -> list[str]:
    """In this process, one worker, threads pinned: fast path vs full-volume PyRadiomics per lesion."""
    from radiomx.features.lesions import split_lesions
    from radiomx.params.paramset import load_param_file
    from radiomx.run.worker import init_worker_process
    from tests.reference import extract_lesion, extract_lesion_reference

    init_worker_process()  # this benchmark process is a worker: one thread, as the pool's
    params = load_param_file(work / "params" / "filters" / "18F-FDG" / "v1.yaml", "18F-FDG", "v1")
    lines = ["| case | volume voxels | lesion voxels | radiomx s/lesion | full-volume PyRadiomics s/lesion |",
             "| --- | ---: | ---: | ---: | ---: |"]

    def measure(label: str, shape, radius: float, reference: bool) -> None:
        image_arr, labels_arr = synth.patient_volume(7, 1, shape_zyx=shape, n_lesions=1, radii_mm=(radius,))
        image, labels = synth.to_image(image_arr), synth.to_image(labels_arr.astype(np.uint32))
        lesion = split_lesions(labels).lesions[0]
        extract_lesion(params, image, labels, lesion)  # warm caches
        start = time.perf_counter()
        for _ in range(2):
            extract_lesion(params, image, labels, lesion)
        fast = (time.perf_counter() - start) / 2
        ref = ""
        if reference:
            start = time.perf_counter()
            extract_lesion_reference(params, image, labels, lesion.lesion_id)
            ref = f"{time.perf_counter() - start:.2f}"
        nvox = int(np.prod(shape))
        lines.append(f"| {label} | {nvox:,} | {lesion.voxel_count:,} | {fast:.3f} | {ref} |")
        print(lines[-1], flush=True)

    big = synth.SMOKE_SHAPE_ZYX if smoke else synth.SHAPE_ZYX
    for radius in (5.0,) if smoke else (5.0, 10.0, 15.0, 20.0, 25.0):
        measure(f"lesion r={radius:.0f} mm, {big[2]}x{big[1]}x{big[0]}", big, radius, radius in (5.0, 25.0))
    for shape in (big,) if smoke else ((150, 100, 100), (300, 200, 200), (400, 256, 256)):
        measure(f"lesion r={8 if smoke else 15} mm, {shape[2]}x{shape[1]}x{shape[0]}", shape, 8.0 if smoke else 15.0,
                not smoke)
    return lines


def profile_large_lesion(work: Path, smoke: bool = False) -> list[str]:
    """Where one large lesion's time goes (filters configuration): per stage and per feature class."""
    from radiomics import featureextractor, imageoperations

    from radiomx.features import extractor as features
    from radiomx.features.lesions import split_lesions
    from radiomx.params.paramset import load_param_file
    from radiomx.run.worker import init_worker_process
    from tests.reference import extract_lesion

    init_worker_process()  # this benchmark process is a worker: one thread, as the pool's
    params = load_param_file(work / "params" / "filters" / "18F-FDG" / "v1.yaml", "18F-FDG", "v1")
    radius = 9.0 if smoke else 25.0
    image_arr, labels_arr = synth.patient_volume(7, 1, shape_zyx=synth.SMOKE_SHAPE_ZYX if smoke else synth.SHAPE_ZYX,
                                                 n_lesions=1, radii_mm=(radius,))
    image, labels = synth.to_image(image_arr), synth.to_image(labels_arr.astype(np.uint32))
    lesion = split_lesions(labels).lesions[0]
    extract_lesion(params, image, labels, lesion)  # warm
    spent: dict[str, float] = defaultdict(float)

    def timed_generator(name, fn):
        def wrapper(*args, **kwargs):
            gen = fn(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    item = next(gen)
                except StopIteration:
                    spent[f"filter: {name}"] += time.perf_counter() - start
                    return
                spent[f"filter: {name}"] += time.perf_counter() - start
                yield item
        return wrapper

    originals = {n: getattr(imageoperations, n) for n in ("getLoGImage", "getWaveletImage")}
    imageoperations.getLoGImage = timed_generator("LoG (3 sigmas)", originals["getLoGImage"])
    imageoperations.getWaveletImage = timed_generator("Wavelet (8 sub-bands)", originals["getWaveletImage"])
    classes = featureextractor.getFeatureClasses()
    saved = {}
    for cname, cls in classes.items():
        saved[cname] = cls.execute

        def execute(self, _orig=cls.execute, _name=cname):
            start = time.perf_counter()
            try:
                return _orig(self)
            finally:
                spent[f"features: {_name}"] += time.perf_counter() - start
        cls.execute = execute
    try:
        start = time.perf_counter()
        item = features.lesion_inputs(params, features.prepare_image(params, image), labels, lesion)
        spent["cut + B-spline resample onto PyRadiomics' grid"] += time.perf_counter() - start
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        features.extract_input(params, item)
        profiler.disable()
        total = time.perf_counter() - start
    finally:
        for n, fn in originals.items():
            setattr(imageoperations, n, fn)
        for cname, cls in classes.items():
            cls.execute = saved[cname]
    accounted = sum(v for k, v in spent.items() if not k.startswith("cut"))
    spent["other (binning, matrices setup, checks)"] = total - accounted
    lines = [f"Lesion of {lesion.voxel_count:,} voxels (r = {radius:.0f} mm), resampled grid "
             f"{item.image.GetSize()} at 2 mm; PyRadiomics call {total:.2f} s.", "",
             "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in sorted(spent.items(), key=lambda kv: -kv[1])]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    (work / "profile.txt").write_text(text.getvalue())
    return lines


def stock_huge_pages_line(runs: dict, configs: list[str], jobs: int) -> str:
    """The stock CLI timed once with radiomx's allocator setting: how much of the ratio that knob is not."""
    parts = []
    for name in configs:
        with_knob = runs.get((name, "stock with glibc.malloc.hugetlb=1", jobs))
        if with_knob:
            plain = min(r["seconds"] for r in runs[(name, "stock", jobs)])
            parts.append(f"{name} {with_knob[0]['seconds']:.0f} s (plain best {plain:.0f} s)")
    if not parts:
        return ""
    return ("\n\nThe stock CLI given the same allocator setting (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, one run "
            "each, after the pairs): " + "; ".join(parts) + ".")


def fmt_mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="scratch folder (cohort, outputs, logs)")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--reps", type=int, default=2, help="A B pairs per configuration")
    parser.add_argument("--scaling-reps", type=int, default=3, help="1-worker / N-worker pairs for the scaling")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--stock-huge-pages", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the stock CLI once with glibc.malloc.hugetlb=1 (what a user may export)")
    smoke_argument(parser)
    args = parser.parse_args(argv)
    return measured(args, "extract", run, patients=2, reps=1, scaling_reps=1, configs="original",
                    stock_huge_pages=False)


def run(args: argparse.Namespace) -> int:
    args.work = args.work.resolve()  # the stock CLI resolves batch-CSV paths relative to the CSV's own folder
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / ".gitignore").write_text("*\n")  # scratch: cohort, outputs, logs never go into git
    cohort, scans = write_inputs(args.work, args.patients, args.seed, args.smoke)
    n = lesion_count(scans)
    print(f"cohort: {len(scans)} scans, {n} lesions", flush=True)

    byte_compile(BIN / "radiomx")
    configs = [c for c in CONFIGS if c in args.configs.split(",")]
    rows, diffs, runs = [], {}, defaultdict(list)
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())  # other work on the machine slows both tools
    for name in configs:
        for tool, tool_runs in alternate(args.work, cohort, name, args.jobs, args.reps).items():
            runs[(name, tool, args.jobs)] = tool_runs
        diffs[name] = compared_difference(runs[(name, "stock", args.jobs)][-1]["out"],
                                          runs[(name, "radiomx", args.jobs)][-1]["out"], n, name, args.work)
        print(f"{name}: max relative difference {diffs[name]}", flush=True)
        if args.stock_huge_pages:
            # Transparency: the stock CLI with radiomx's allocator setting, so the ratio is not read as that knob.
            r = run_stock(args.work, name, args.jobs, "hugetlb", HUGE_PAGES)
            runs[(name, "stock with glibc.malloc.hugetlb=1", args.jobs)].append(r)
            print(f"{name} stock with huge pages: {r['seconds']:.1f} s", flush=True)
    # Scaling: 1 and N workers alternated in the same time window (this VM's speed drifts by up to 2x between
    # minutes), best of each; kept apart from the A B comparison so both tools get the same number of draws.
    scaled = "filters" if "filters" in configs else configs[0]
    for rep in range(args.scaling_reps):
        for jobs in (1, args.jobs):
            r = run_radiomx(args.work, cohort, scaled, jobs, f"s{rep}", HUGE_PAGES)
            runs[(scaled, "radiomx scaling", jobs)].append(r)
            print(f"{scaled} radiomx {jobs} job(s) scaling rep {rep}: {r['seconds']:.1f} s", flush=True)

    def best(key) -> dict:
        return min(runs[key], key=lambda r: r["seconds"])

    for name in configs:
        stock, ours = best((name, "stock", args.jobs)), best((name, "radiomx", args.jobs))
        worst, where, compared, lesions = diffs[name]
        ratio = stock["seconds"] / ours["seconds"]
        rows.append(f"| {name} | {n / stock['seconds']:.2f} ({stock['seconds']:.0f} s) | "
                    f"{n / ours['seconds']:.2f} ({ours['seconds']:.1f} s) | **{ratio:.1f}x**"
                    f" | {fmt_mib(stock['worker_rss'])} | {fmt_mib(ours['worker_rss'])} / {fmt_mib(ours['main_rss'])} "
                    f"| {worst:.2g} ({compared:,} values, {lesions} lesions) |")
    one, two = best((scaled, "radiomx scaling", 1)), best((scaled, "radiomx scaling", args.jobs))
    all_times = {f"{k[0]} {k[1]} j{k[2]}": [f"{r['seconds']:.1f}" for r in v] for k, v in runs.items()}

    print("size scaling ...", flush=True)
    scaling = size_scaling(args.work, args.smoke)
    print("profile ...", flush=True)
    profile = profile_large_lesion(args.work, args.smoke)

    import radiomics

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    text = f"""# radiomx extract vs stock PyRadiomics CLI

Produced by `make bench` (`.venv/bin/python benchmarks/bench_extract.py`), {time.strftime('%Y-%m-%d')}, on
{len(os.sched_getaffinity(0))} usable cores ({cpu}), PyRadiomics {radiomics.__version__}; load average
{load_before} (before), {" ".join(f"{v:.2f}" for v in os.getloadavg())} (after).

Cohort: `benchmarks/synth.py`, {len(scans)} synthetic whole-body FDG PET patients (seed {args.seed}), grid
{synth.SHAPE_ZYX[2]}x{synth.SHAPE_ZYX[1]}x{synth.SHAPE_ZYX[0]} at {synth.SPACING_XYZ[0]} x {synth.SPACING_XYZ[1]} x
{synth.SPACING_XYZ[2]} mm, SUV values, {n} lesions of 1-5 cm (1-15 per patient). Settings (same for both tools):
`{yaml.safe_dump(SETTING, default_flow_style=True).strip()}`, all 7 feature classes; "filters" adds LoG sigma 1/2/3 mm
and Wavelet (coif1, 8 sub-bands). Stock: `pyradiomics batch.csv -p params.yaml -f csv --jobs {args.jobs}` (one row
per lesion label, diagnostics on as by default). radiomx: `radiomx extract COHORT -o OUT --params-dir ... --jobs
{args.jobs}` (fresh OUT: writing Parquet included; radiomx byte-compiled like the pip-installed stock package;
default allocator for both; huge pages are the user's to export, `benchmarks/bench_workers.py`). Before every timed
run the cohort is read and the tool's modules imported once, untimed: this VM pages out idle page cache, which otherwise
cost the first short radiomx run after a long stock run ~1 s of I/O wait. Runs alternate stock, radiomx, stock,
radiomx; best of {args.reps} shown.{stock_huge_pages_line(runs, configs, args.jobs)}

{HEADER}
{chr(10).join(rows)}

Scaling, radiomx "{scaled}", 1 -> {args.jobs} workers: {one['seconds']:.1f} s -> {two['seconds']:.1f} s =
**{one['seconds'] / two['seconds']:.2f}x** (best of {args.scaling_reps} alternated pairs; BLAS/OpenMP/SimpleITK pinned
to one thread per worker; both legs with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, since 1 worker runs in-process).

All wall times (s): `{all_times}`

## Cost vs lesion size and volume size

One process, one thread, "filters" configuration; radiomx = cut + resample + PyRadiomics on the lesion's grid,
full-volume = `RadiomicsFeatureExtractor.execute` on the whole image (diagnostics off), one lesion per volume.

{chr(10).join(scaling)}

## Profile of one large lesion ("filters")

{chr(10).join(profile)}

cProfile top functions: `benchmarks/.work/profile.txt`.
"""
    args.results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
