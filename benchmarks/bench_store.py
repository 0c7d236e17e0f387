"""Does a commit's cost depend on the batch or on the table? The store alone, before (one file per tracer,
rewritten per commit) and after (bounded parts + one publish per run), issue 16.

Workload: one tracer, 1,130 float64 feature columns + 20 provenance columns, 5 lesions a scan, 16-scan commits
through ``Store.commit`` (features, failures, then scans.parquet: the whole commit, not the features file alone).
"append" commits add 16 new scans; "upsert" commits recompute 4 existing scans at random places + 12 new ones.
Each table size is built once as an OUT written by today's store (one sorted features file + scans.parquet); the
"after" store starts from it by migrating it in place, as a user's OUT would. Every phase runs in a fresh
subprocess; peak memory is a 5 ms psutil poll minus the RSS just before the operation.

"before" is the store at commit 380ad42 (``git show 380ad42:radiomx/store/tables.py``, loaded as a module).

Usage: ``python benchmarks/bench_store.py [--quick | --smoke] [--sizes ...] [--commits 3] [--row-groups 32 128 512]
[--results raw.jsonl] [--report raw.jsonl]``.
Prints a markdown table and ends with ``commit ratio 20000/1000: N.Nx`` (the "after" upsert+append median).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.columns import FAILURES, SCANS
from radiomx.records import ScanKey, ScanOutcome
from radiomx.store import publish as publishing
from radiomx.store.parts import TracerParts
from radiomx.store.publish import features_path
from radiomx.store.schema import FEATURE_FIXED_SCHEMA, arrow_rows, sort_lesions
from radiomx.store.tables import Store

REPO = Path(__file__).resolve().parents[1]
BEFORE_REF = "380ad42"
TRACER = "18F-FDG"
LESIONS = 5
BATCH = 16
CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape")
EXTRA = [("suv_body_weight_kg", pa.float64()), ("suv_dose_bq", pa.float64()), ("suv_units", pa.string()),
         ("suv_vendor_path", pa.string())]


def feature_names(n: int) -> list[str]:
    return [f"wavelet-LLH_{CLASSES[i % len(CLASSES)]}_F{i:04d}" for i in range(n)]


def patient(scan: int) -> str:
    return f"P{scan:06d}"


def lesion_table(scans: list[int], n_features: int, seed: int) -> pa.Table:
    """All lesion rows of the given scans, typed as the store writes them."""
    rng = np.random.default_rng(seed)
    n = len(scans) * LESIONS
    pid = [patient(s) for s in scans for _ in range(LESIONS)]
    lesion = [i for _ in scans for i in range(1, LESIONS + 1)]
    now = datetime.now(UTC)
    fixed = {
        "patient_id": pid, "session": ["baseline"] * n, "tracer": [TRACER] * n, "lesion_id": lesion,
        "source_label": lesion, "voxel_count": rng.integers(10, 50_000, n), "params_version": ["v1"] * n,
        "params_sha256": ["ab" * 32] * n, "radiomx_version": ["0.9.0"] * n, "pyradiomics_version": ["3.1.0"] * n,
        "image_sha256": [f"{seed:064x}"] * n, "mask_sha256": [f"{seed + 1:064x}"] * n,
        "image_file": [f"{p}/baseline/FDG/pet.nii.gz" for p in pid], "mask_file": [f"{p}/baseline/FDG/mask.nii.gz"
                                                                                  for p in pid],
        "unit": ["SUVbw"] * n, "extracted_at": [now] * n,
    }
    extra = {"suv_body_weight_kg": rng.uniform(50, 110, n), "suv_dose_bq": rng.uniform(2e8, 4e8, n),
             "suv_units": ["BQML"] * n, "suv_vendor_path": ["siemens"] * n}
    # Every fixed column the store declares, by name (nulls where this workload has no value: a label map's lesions
    # have no segment or ROI number), so that a column added to the schema later does not break the benchmark.
    columns = [pa.array(fixed.get(f.name, [None] * n), type=f.type) for f in FEATURE_FIXED_SCHEMA]
    columns += [pa.array(v, type=t) for v, (_, t) in zip(extra.values(), EXTRA, strict=True)]
    columns += [pa.array(block) for block in rng.standard_normal((n_features, n))]
    names = [*FEATURE_FIXED_SCHEMA.names, *(n for n, _ in EXTRA), *feature_names(n_features)]
    return pa.Table.from_arrays(columns, names=names)


def state_rows(scans: list[int]) -> list[dict]:
    now = datetime.now(UTC)
    return [{"patient_id": patient(s), "session": "baseline", "tracer": TRACER, "image_file": "pet.nii.gz",
             "mask_file": "mask.nii.gz", "image_stat": "1:2", "mask_stat": "3:4", "image_sha256": "a" * 64,
             "mask_sha256": "b" * 64, "params_version": "v1", "params_sha256": "c" * 64, "work_key": "d" * 64,
             "status": "ok", "n_lesions": LESIONS, "n_failed": 0, "updated_at": now} for s in scans]


def outcomes(scans: list[int], n_features: int, seed: int) -> list[ScanOutcome]:
    rows = lesion_table(scans, n_features, seed).to_pylist()
    result = []
    for i, (scan, state) in enumerate(zip(scans, state_rows(scans), strict=True)):
        state = {k: v for k, v in state.items() if k not in ("status", "updated_at")}
        result.append(ScanOutcome(ScanKey(patient(scan), "baseline", TRACER),
                                  rows=rows[i * LESIONS:(i + 1) * LESIONS], state=state))
    return result


def batches(size: int, commits: int, seed: int = 7) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(seed)
    plan, next_id = [], size
    for _ in range(commits):
        plan.append(("append", list(range(next_id, next_id + BATCH))))
        next_id += BATCH
    for _ in range(commits):
        old = sorted(rng.choice(size, BATCH // 4, replace=False).tolist())
        plan.append(("upsert", old + list(range(next_id, next_id + BATCH - len(old)))))
        next_id += BATCH - len(old)
    return plan


def before_store_class() -> type:
    """``Store`` as it was at BEFORE_REF: its source from git, its imports (atomic, outdir, records) from here."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE_REF}:radiomx/store/tables.py"],
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("radiomx_store_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{BEFORE_REF}:radiomx/store/tables.py", "exec"), module.__dict__)  # noqa: S102
    return module.Store


class Peak:
    """Peak RSS above the level at ``reset``, polled every 5 ms on a thread."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def reset(self) -> None:
        self.base = self.peak = self.process.memory_info().rss

    def delta_mib(self) -> float:
        time.sleep(0.01)
        return (max(self.peak, self.process.memory_info().rss) - self.base) / 2**20


def timed(peak: Peak, action) -> tuple[float, float]:
    peak.reset()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start, peak.delta_mib()


# ------------------------------------------------------------------------------------------------- phases (child)
def phase_build(root: Path, size: int, n_features: int) -> dict:
    """An OUT exactly as the store at BEFORE_REF leaves it: one sorted features file, scans.parquet."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "features").mkdir(parents=True)
    step = 1000
    tables = [lesion_table(list(range(s, min(s + step, size))), n_features, s) for s in range(0, size, step)]
    pq.write_table(sort_lesions(pa.concat_tables(tables)), features_path(root, TRACER))
    pq.write_table(arrow_rows(state_rows(list(range(size))), SCANS), root / "scans.parquet")
    os.sync()  # the commit phase's fsyncs must not wait for this build's writeback
    return {}


def phase_commits(root: Path, size: int, n_features: int, commits: int, which: str) -> dict:
    store_class = before_store_class() if which == "before" else Store
    plan = batches(size, commits)
    work = [(kind, outcomes(ids, n_features, 1000 + i)) for i, (kind, ids) in enumerate(plan)]
    peak = Peak()
    result: dict = {"append": [], "upsert": [], "append_mib": 0.0, "upsert_mib": 0.0}
    for kind, batch in work:
        seconds, mib = timed(peak, lambda b=batch: store_class(root).commit(b, "bench", datetime.now(UTC)))
        result[kind].append(seconds)
        result[f"{kind}_mib"] = max(result[f"{kind}_mib"], mib)
    if which == "after":
        result["publish"], result["publish_mib"] = timed(peak, lambda: Store(root).publish_stale())
    os.sync()
    return result


def phase_migrate(root: Path) -> dict:
    """The one-time split of the old file (the commits' run then publishes once, at its end, as extract does)."""
    peak = Peak()
    migrate, migrate_mib = timed(peak, lambda: TracerParts(root, TRACER).migrate_from(features_path(root, TRACER)))
    os.sync()
    return {"migrate": migrate, "migrate_mib": migrate_mib, "parts": len(TracerParts(root, TRACER).part_files())}


def phase_read(root: Path) -> dict:
    import pandas as pd

    peak = Peak()
    path = features_path(root, TRACER)
    seconds, mib = timed(peak, lambda: pd.read_parquet(path))
    return {"read": seconds, "read_mib": mib, "row_groups": pq.ParquetFile(path).num_row_groups}


def phase_row_groups(root: Path, budget_mib: int) -> dict:
    import pandas as pd

    peak = Peak()
    seconds, mib = timed(peak, lambda: publishing.publish(root, TRACER, row_group_bytes=budget_mib * 2**20))
    os.sync()
    path = features_path(root, TRACER)
    read, read_mib = timed(peak, lambda: pd.read_parquet(path))
    return {"publish": seconds, "publish_mib": mib, "read": read, "read_mib": read_mib,
            "row_groups": pq.ParquetFile(path).num_row_groups}


def child(args: argparse.Namespace) -> None:
    root = Path(args.root)
    if args.phase == "build":
        result = phase_build(root, args.size, args.features)
    elif args.phase in ("before", "after"):
        result = phase_commits(root, args.size, args.features, args.commits, args.phase)
    elif args.phase == "migrate":
        result = phase_migrate(root)
    elif args.phase == "read":
        result = phase_read(root)
    else:
        result = phase_row_groups(root, int(args.phase.split("=")[1]))
    print("RESULT " + json.dumps(result), flush=True)


def small_tables(size: int, commits: int = 5) -> float:
    """Median ``Store.commit`` of 16 scans whose outcomes carry state only (no lesion rows, so no feature part): the
    rewrite of scans.parquet and failures.parquet (1 failure per 20 scans) that every commit pays, the part of a
    commit that still grows with the table. Through the store's public ``commit``, so that a change to its
    internals cannot break this measurement unnoticed."""
    from radiomx.records import Failure

    root = Path(tempfile.mkdtemp(prefix="radiomx-bench-small-"))
    try:
        pq.write_table(arrow_rows(state_rows(list(range(size))), SCANS), root / "scans.parquet")
        failures = [{"patient_id": patient(i), "session": "baseline", "tracer": TRACER,
                     "lesion_id": None, "stage": "suv", "file": "P/FDG/pet.nii.gz",
                     "message": "Patient Weight (0010,1030) is 0", "run_id": "r",
                     "failed_at": datetime.now(UTC)} for i in range(0, size, 20)]
        pq.write_table(arrow_rows(failures, FAILURES), root / "failures.parquet")
        times = []
        for _, ids in batches(size, commits)[commits:]:
            batch = []
            for i, state in zip(ids, state_rows(ids), strict=True):
                key = ScanKey(patient(i), "baseline", TRACER)
                failed = [Failure(key, "suv", "P/FDG/pet.nii.gz", "Patient Weight (0010,1030) is 0")] if i % 20 == 0 \
                    else []
                batch.append(ScanOutcome(key, failures=failed, state={k: v for k, v in state.items()
                                                                      if k not in ("status", "updated_at")}))
            start = time.perf_counter()
            Store(root).commit(batch, "bench", datetime.now(UTC))
            times.append(time.perf_counter() - start)
        return median(times)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------- driver
def run_phase(phase: str, root: Path, size: int, args: argparse.Namespace, commits: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--root", str(root), "--size", str(size),
           "--features", str(args.features), "--commits", str(commits or args.commits)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{phase} at {size} scans failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure(size: int, args: argparse.Namespace, work: Path) -> dict:
    base, before, after = work / f"base-{size}", work / f"before-{size}", work / f"after-{size}"
    run_phase("build", base, size, args)
    for copy in (before, after):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(base, copy)
    shutil.rmtree(base)
    result: dict = {"size": size}
    if not args.skip_before:
        # today's commits are ~37 s each at 20,000 scans: fewer of them there keeps the run under ~10 min
        result["before"] = run_phase("before", before, size, args,
                                     commits=min(args.commits, args.before_commits) if size >= 4000 else None)
        result["before"].update(run_phase("read", before, size, args))
    shutil.rmtree(before)
    result["migrate"] = run_phase("migrate", after, size, args)
    result["after"] = run_phase("after", after, size, args)
    result["after"].update(run_phase("read", after, size, args))
    if size == args.row_groups_at and args.row_groups:
        result["row_groups"] = {mib: run_phase(f"rows={mib}", after, size, args) for mib in args.row_groups}
    shutil.rmtree(after)
    print(json.dumps(result), file=sys.stderr, flush=True)
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return result


def report(results: list[dict], args: argparse.Namespace) -> None:
    sizes = [r["size"] for r in results]
    print(f"{args.features} float feature columns, {LESIONS} lesions a scan, {BATCH}-scan commits through "
          f"Store.commit (features, failures, scans.parquet); medians of {args.commits} commits of each kind "
          f"({args.before_commits} for 'before' at >= 4,000 scans)\n")
    print("| scans already in the table | " + " | ".join(f"{s:,}" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    rows = [
        ("before: append commit", lambda r: f"{median(r['before']['append']):.2f} s"),
        ("before: upsert commit", lambda r: f"{median(r['before']['upsert']):.2f} s"),
        ("before: writer peak (append / upsert)",
         lambda r: f"{r['before']['append_mib']:.0f} / {r['before']['upsert_mib']:.0f} MiB"),
        ("before: full read (pd.read_parquet)", lambda r: f"{r['before']['read']:.2f} s"),
        ("after: append commit", lambda r: f"{median(r['after']['append']):.2f} s"),
        ("after: upsert commit", lambda r: f"{median(r['after']['upsert']):.2f} s"),
        ("after: writer peak (append / upsert)",
         lambda r: f"{r['after']['append_mib']:.0f} / {r['after']['upsert_mib']:.0f} MiB"),
        ("after: publish (end of run: migrated parts + the commits)", lambda r: f"{r['after']['publish']:.1f} s"),
        ("after: publish peak", lambda r: f"{r['after']['publish_mib']:.0f} MiB"),
        ("after: full read of the published file", lambda r: f"{r['after']['read']:.2f} s"),
        ("after: parts after migration / row groups published",
         lambda r: f"{r['migrate']['parts']} / {r['after']['row_groups']}"),
        ("migration of the old file (once)",
         lambda r: f"{r['migrate']['migrate']:.1f} s, {r['migrate']['migrate_mib']:.0f} MiB"),
    ]
    for label, cell in rows:
        if label.startswith("before") and not all("before" in r for r in results):
            continue
        print(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")
    for r in results:
        if "row_groups" in r:
            print(f"\nPublished row-group budget at {r['size']:,} scans:\n")
            print("| budget | row groups | publish | publish peak | full read | read peak |")
            print("|---:|---:|---:|---:|---:|---:|")
            for mib, g in r["row_groups"].items():
                print(f"| {mib} MiB | {g['row_groups']} | {g['publish']:.1f} s | {g['publish_mib']:.0f} MiB | "
                      f"{g['read']:.2f} s | {g['read_mib']:.0f} MiB |")
    by_size = {r["size"]: r for r in results}
    if 1000 in by_size and 20000 in by_size:
        def commit(r: dict) -> float:
            return median(r["after"]["append"] + r["after"]["upsert"])

        print(f"\ncommit ratio 20000/1000: {commit(by_size[20000]) / commit(by_size[1000]):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 800, 1000, 2000, 4000, 20000])
    parser.add_argument("--quick", action="store_true", help="sizes 160 800 1000 2000, 2 commits of each kind")
    parser.add_argument("--smoke", action="store_true",
                        help="the same code on a tiny table (40 scans, 30 features, 1 commit), in seconds")
    parser.add_argument("--commits", type=int, default=3, help="commits of each kind (append, upsert)")
    parser.add_argument("--features", type=int, default=1130)
    parser.add_argument("--skip-before", action="store_true", help="measure only the store of this version")
    parser.add_argument("--before-commits", type=int, default=2,
                        help="commits of each kind for 'before' at >= 4,000 scans (each ~37 s at 20,000)")
    parser.add_argument("--row-groups", type=int, nargs="*", default=[32, 128, 512],
                        help="publish budgets (MiB) to compare at --row-groups-at scans")
    parser.add_argument("--row-groups-at", type=int, default=4000)
    parser.add_argument("--results", type=Path, default=None, help="append each size's raw JSON here")
    parser.add_argument("--report", type=Path, default=None,
                        help="only print the table from a --results file (runs merged, by size)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--phase")
    parser.add_argument("--root")
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.phase:
        return child(args)
    if args.report:
        by_size = {r["size"]: r for r in map(json.loads, args.report.read_text().splitlines())}
        return report([by_size[s] for s in sorted(by_size)], args)
    if args.quick:
        args.sizes, args.commits = [160, 800, 1000, 2000], 2
    if args.smoke:
        args.sizes, args.commits, args.features, args.before_commits = [40], 1, 30, 1
        args.row_groups, args.row_groups_at = [1], 40
    work = Path(args.workdir or tempfile.mkdtemp(prefix="radiomx-bench-store-"))
    started = time.perf_counter()
    try:
        results = [measure(size, args, work) for size in args.sizes]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    small = {size: small_tables(size) for size in sorted({min(args.sizes), max(args.sizes)})}
    print("\nscans.parquet + failures.parquet rewrite inside one 16-scan commit (state only, whole files): "
          + ", ".join(f"{size:,} scans {t:.3f} s" for size, t in small.items()))
    print(f"\n(bench_store.py ran {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
