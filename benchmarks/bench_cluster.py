"""Benchmark: ``radiomx extract`` on a 2-worker Dask cluster of separate processes vs the local pool (``--jobs 2``).

The cluster is a real ``dask scheduler`` and two ``dask worker --nworkers 1 --nthreads 1`` processes on 127.0.0.1
(what a SLURM job array of one-core workers looks like, minus the network), driven through ``--dask-scheduler``.
Same cohort as ``bench_extract.py`` (``synth.py``, whole-body FDG PET), Original-only parameters, runs alternating
pool, cluster (fresh workers: they import radiomx on their first task, as pool workers do), cluster again on the
same workers (warm), so that each leg gets the same draws of this shared VM's speed. Reports lesions/s, the
cluster/pool ratio (target >= 0.9x), and the peak RSS of one worker process (for sizing ``--memory`` per worker
in docs/cluster.md). ``python benchmarks/bench_cluster.py --help``; ~3-5 min at the defaults; ``--smoke``: two tiny
patients, one round without the warm leg, in a scratch folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from bench_extract import (  # noqa: E402
    HUGE_PAGES,
    PeakRss,
    fmt_mib,
    measured,
    smoke_argument,
    timed,
    write_inputs,
)

#: As on a user's scheduler (docs/cluster.md): one retry of a task whose worker died, one task per worker thread.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
                 "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}


class Cluster:
    """A scheduler and ``n`` single-threaded workers, each in its own process group."""

    def __init__(self, work: Path, n: int) -> None:
        self.work = work
        self.file = work / "scheduler.json"
        self.file.unlink(missing_ok=True)
        self.scheduler = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.file)], "scheduler", SCHEDULER_ENV)
        self._wait(lambda: self.file.is_file() and self.file.read_text().strip(), "scheduler file")
        self.address = json.loads(self.file.read_text())["address"]
        self.n = n
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], name: str, env: dict[str, str]) -> subprocess.Popen:
        log = open(self.work / f"cluster-{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=log, start_new_session=True,
                                env={**os.environ, **env}, cwd=self.work)

    @staticmethod
    def _wait(condition, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up waiting for the {what}")
            time.sleep(0.2)

    def start_workers(self) -> None:
        """Fresh worker processes (the allocator setting radiomx gives its own pool workers, see warmup.py)."""
        self.stop_workers()
        for i in range(self.n):
            scratch = self.work / f"cluster-scratch-{i}"
            scratch.mkdir(exist_ok=True)
            self.workers.append(self._spawn(["worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1",
                                             "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                             "--local-directory", str(scratch)], f"worker-{i}", HUGE_PAGES))
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(self.n, timeout=120)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        self.workers = []

    def close(self) -> None:
        self.stop_workers()
        if self.scheduler.poll() is None:
            os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait(timeout=30)


def run(work: Path, cohort: Path, leg: str, rep: int, flags: list[str], cluster: Cluster | None = None) -> dict:
    out = work / f"cluster-bench-{leg}-{rep}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(BIN / "radiomx"), "extract", str(cohort), "-o", str(out), "--params-dir",
           str(work / "params" / "original"), *flags]
    watchers = [PeakRss(w.pid) for w in cluster.workers] if cluster else []
    result = timed(cmd, work / f"cluster-bench-{leg}-{rep}.log", warm=cohort, tool="radiomx")
    for w in watchers:
        w.stop()
    if cluster:  # the pool's workers are the radiomx process's children; a cluster's are the nannies' children
        result["worker_rss"] = max(w.worker for w in watchers)
    from radiomx.api import read_table

    lesions = len(read_table(out))
    result.update(lesions=lesions, rate=lesions / result["seconds"], out=out)
    print(f"rep {rep} {leg}: {lesions} lesions in {result['seconds']:.2f} s = {result['rate']:.2f} lesions/s, "
          f"worker peak RSS {fmt_mib(result['worker_rss'])}, main {fmt_mib(result['main_rss'])}, "
          f"I/O wait {result['iowait']:.1f} s", flush=True)
    return result


def same_values(a: Path, b: Path) -> None:
    import pandas as pd

    from radiomx.api import read_table

    key = ["patient_id", "session", "tracer", "lesion_id"]
    left, right = (read_table(p).drop(columns=["extracted_at"]).sort_values(key).reset_index(drop=True)
                   for p in (a, b))
    pd.testing.assert_frame_equal(left, right)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="scratch folder (shared with bench_extract)")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--reps", type=int, default=2)
    smoke_argument(parser)
    args = parser.parse_args(argv)
    return measured(args, "cluster", measure, patients=2, reps=1)


def measure(args: argparse.Namespace) -> int:
    args.work.mkdir(parents=True, exist_ok=True)
    cohort, scans = write_inputs(args.work, args.patients, args.seed, args.smoke)
    cluster = Cluster(args.work, 2)
    runs: dict[str, list[dict]] = {"pool": [], "cluster": []} if args.smoke else {
        "pool": [], "cluster": [], "cluster-warm": []}
    try:
        for rep in range(args.reps):
            runs["pool"].append(run(args.work, cohort, "pool", rep, ["--jobs", "2"]))
            cluster.start_workers()
            for leg in [leg for leg in runs if leg != "pool"]:
                runs[leg].append(run(args.work, cohort, leg, rep, ["--dask-scheduler", cluster.address], cluster))
    finally:
        cluster.close()
    same_values(runs["pool"][0]["out"], runs["cluster"][0]["out"])
    pool = statistics.median(r["rate"] for r in runs["pool"])
    print(f"\n{args.patients} patients, {runs['pool'][0]['lesions']} lesions, Original-only, 2 workers; "
          "cluster table == pool table (values)")
    for leg, rs in runs.items():
        rate = statistics.median(r["rate"] for r in rs)
        print(f"{leg:>12}: median {rate:.2f} lesions/s ({rate / pool:.2f}x pool), worker peak RSS "
              f"{fmt_mib(max(r['worker_rss'] for r in rs))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
