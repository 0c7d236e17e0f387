"""The engines give the same outcomes: serial (reference), local process pool, and a real Dask LocalCluster.

Each scan is prepared once and its lesions run as separate tasks (so one big patient spreads over all workers); the
engine must still yield exactly one ScanOutcome per scan with rows in lesion order, and turn crashes into failures.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radiomx.discover.cohort import discover, layout_for
from radiomx.options import LesionOptions
from radiomx.params.paramset import default_params_root, resolve_params
from radiomx.run.engine import Submitter, run_dask, run_pool, run_serial, schedule
from radiomx.run.worker import ScanTask, run_lesion
from radiomx.tracers import get_tracer

from .conftest import make_cohort


def tasks_for(cohort: Path) -> list[ScanTask]:
    layout = layout_for(cohort)
    scans = discover(cohort, layout)
    params = {s.key.tracer: resolve_params(default_params_root(), get_tracer(s.key.tracer)) for s in scans}
    return [ScanTask(s, cohort, layout, params[s.key.tracer], LesionOptions()) for s in scans]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Three scans: one with 6 lesions (the big patient), one with 2, one with an empty mask (a negative scan)."""
    root = make_cohort(tmp_path_factory.mktemp("engine") / "cohort", {"P001": {"FDG": 6}, "P002": {"FDG": 2},
                                                                      "P003": {"FDG": 1}})
    mask_path = root / "P003" / "FDG" / "mask.nii.gz"
    mask = sitk.ReadImage(str(mask_path))
    empty = sitk.GetImageFromArray(np.zeros(sitk.GetArrayViewFromImage(mask).shape, dtype=np.uint8))
    empty.CopyInformation(mask)
    sitk.WriteImage(empty, str(mask_path))
    return root


def comparable(outcomes) -> dict:
    """Outcomes by scan key, without the extraction timestamp (the only field that may differ); NaN made equal to
    itself (a value that crossed a process boundary is a different NaN object, and NaN != NaN)."""
    out = {}
    for o in outcomes:
        assert o.key not in out, f"{o.key} yielded twice"
        rows = [{k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()
                 if k != "extracted_at"} for row in o.rows]
        state = {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in o.state.items()}
        out[o.key] = (rows, [f.as_row() for f in o.failures], state)
    return out


@pytest.fixture(scope="module")
def serial(cohort) -> dict:
    result = comparable(run_serial(tasks_for(cohort)))
    by_patient = {k.patient_id: v for k, v in result.items()}
    assert [r["lesion_id"] for r in by_patient["P001"][0]] == [1, 2, 3, 4, 5, 6]
    assert len(by_patient["P002"][0]) == 2 and not by_patient["P002"][1]
    assert by_patient["P003"][0] == [] and by_patient["P003"][1] == []  # negative: no rows, no failure
    assert by_patient["P003"][2]["n_lesions"] == 0 and by_patient["P003"][2]["work_key"]
    return result


def test_pool_equals_serial(cohort, serial) -> None:
    assert comparable(run_pool(tasks_for(cohort), 2)) == serial


def test_pool_workers_are_spawned_children_of_this_process() -> None:
    """Spawned, not forked from a server: each worker is this process's own child, a fresh interpreter."""
    from radiomx.run.engine import local_pool

    with local_pool(2) as pool:
        parents = {pool.submit(os.getppid).result() for _ in range(4)}
    assert parents == {os.getpid()}


def _children_while(proc) -> set[str]:
    """The command lines of ``proc``'s children, polled until it ends."""
    import psutil

    seen = set()
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            seen.update(" ".join(c.cmdline()) for c in parent.children())
        except psutil.Error:
            pass
    return seen


@pytest.mark.parametrize("scans, pool", [(1, False), (3, True)], ids=["one-scan-in-process", "three-scans-pool"])
def test_the_command_starts_a_pool_only_for_more_than_one_scan(tmp_path, scans, pool) -> None:
    """The ``radiomx`` console script with ``-j 2``: one new scan (the nightly case) is computed in the command's
    own process, whose start would cost more than the scan (issue 23); several scans get spawned workers, and no
    forkserver."""
    import shutil
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {f"P00{i}": {"FDG": 2} for i in range(1, scans + 1)})
    script = shutil.which("radiomx", path=str(Path(sys.executable).parent))
    proc = subprocess.Popen([script, "extract", str(cohort), "-o", str(tmp_path / "out"), "-j", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        children = _children_while(proc)
    finally:
        stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, stderr
    assert f"{scans} scans computed" in stderr
    assert any("spawn_main" in line for line in children) is pool, children
    assert not any("forkserver" in line for line in children), children


def test_workers_import_this_radiomx_not_one_in_the_working_folder(tmp_path) -> None:
    """The ``radiomx`` command run from a folder holding another radiomx checkout: the workers must import the
    worker code this command runs, not the decoy, whose worker module kills the process that imports it (a spawned
    worker takes the parent's import path before it unpickles its first task)."""
    import shutil
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {f"P00{i}": {"FDG": 1} for i in range(1, 4)})
    decoy = tmp_path / "checkout" / "radiomx"
    (decoy / "run").mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "run" / "__init__.py").write_text("")
    (decoy / "run" / "worker.py").write_text("import os\nos._exit(7)  # a checkout's different worker code\n")
    (decoy / "run" / "warmup.py").write_text("import os\nos._exit(7)  # a checkout's different worker code\n")
    script = shutil.which("radiomx", path=str(Path(sys.executable).parent))
    done = subprocess.run([script, "extract", str(cohort), "-o", str(tmp_path / "out"), "-j", "2"],
                          cwd=decoy.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 scans computed" in done.stderr and "FAILED" not in done.stderr


def test_no_worker_outlives_the_extract_that_started_it(tmp_path) -> None:
    import psutil

    from radiomx.api import extract
    from radiomx.options import ExtractOptions

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}})
    earlier = {p.pid for p in psutil.Process().children()}  # e.g. the resource tracker of an earlier test's pool
    started: set[int] = set()

    def progress(done, total, outcome) -> None:
        started.update(p.pid for p in psutil.Process().children() if p.pid not in earlier)

    assert extract(cohort, tmp_path / "out", ExtractOptions(jobs=2), progress=progress).exit_code == 0
    assert started, "two scans with -j 2 run on a pool"
    alive = [p for p in psutil.Process().children() if p.pid in started and "resource_tracker" not in p.cmdline()[-1]]
    assert not alive, alive


def test_dask_local_cluster_equals_serial(cohort, serial) -> None:
    pytest.importorskip("distributed")
    assert comparable(run_dask(tasks_for(cohort), None, 2)) == serial


def _inline_submitter(log: list, fail_lesion: int | None = None) -> Submitter:
    """A synchronous executor that records what was submitted (and can make one lesion task crash)."""

    def submit(fn, arg):
        future: Future = Future()
        log.append((fn.__name__, getattr(getattr(arg, "lesion", None), "lesion_id", None),
                    getattr(arg, "cost", None)))
        if fn is run_lesion and arg.lesion.lesion_id == fail_lesion:
            future.set_exception(RuntimeError("worker killed"))
        else:
            future.set_result(fn(arg))
        return future

    return Submitter(submit, lambda futures: set(futures), slots=4)


def test_lesions_of_a_scan_are_separate_tasks_biggest_first(cohort, serial) -> None:
    log: list = []
    tasks = [t for t in tasks_for(cohort) if t.scan.key.patient_id == "P001"]
    outcomes = comparable(schedule(tasks, _inline_submitter(log)))
    assert outcomes == {k: v for k, v in serial.items() if k.patient_id == "P001"}
    lesion_calls = [entry for entry in log if entry[0] == "run_lesion"]
    assert [name for name, *_ in log].count("prepare_scan") == 1
    assert sorted(lid for _, lid, _ in lesion_calls) == [1, 2, 3, 4, 5, 6]
    costs = [cost for *_, cost in lesion_calls]
    assert costs == sorted(costs, reverse=True)


def test_crashed_lesion_task_is_a_failure_and_other_scans_survive(cohort, serial) -> None:
    log: list = []
    outcomes = comparable(schedule(tasks_for(cohort), _inline_submitter(log, fail_lesion=5)))
    by_patient = {k.patient_id: v for k, v in outcomes.items()}
    rows, failures, _ = by_patient["P001"]
    assert [r["lesion_id"] for r in rows] == [1, 2, 3, 4, 6]
    assert any(f["stage"] == "worker" and f["lesion_id"] == 5 for f in failures)
    assert by_patient["P003"][:2] == ([], [])  # the negative scan stays negative
    assert by_patient["P002"] == {k.patient_id: v for k, v in serial.items()}["P002"]


def test_many_scans_run_whole_largest_first_and_only_the_tail_is_split(cohort, serial) -> None:
    """With more scans pending than slots, a scan runs whole in one task (no lesion inputs through the writer);
    the last ``slots`` scans are prepared and split into lesion tasks, so the tail still spreads over workers, and
    all of them are prepared (the indivisible load) before the small lesion tasks."""
    tasks = tasks_for(cohort) * 3  # 9 scans (the same three thrice) for 4 slots
    log: list = []
    outcomes = list(schedule(tasks, _inline_submitter(log)))
    assert len(outcomes) == 9
    calls = [name for name, *_ in log]
    assert calls.count("run_scan") == 5 and calls.count("prepare_scan") == 4 and "run_lesion" in calls
    # every tail scan is loaded before any lesion task, so no worker waits on a last load at the end of the run
    assert max(i for i, c in enumerate(calls) if c == "prepare_scan") < calls.index("run_lesion")
    by_key = {}
    for outcome in outcomes:  # each copy equals the serial result for its scan
        by_key.setdefault(outcome.key, []).append(outcome)
    for key, copies in by_key.items():
        assert len(copies) == 3
        for copy in copies:
            assert comparable([copy])[key] == serial[key]


def test_largest_scan_starts_first(cohort) -> None:
    started: list[str] = []

    def submit(fn, arg):
        future: Future = Future()
        if hasattr(arg, "scan"):
            started.append(arg.scan.key.patient_id)
        future.set_result(fn(arg))
        return future

    tasks = tasks_for(cohort) * 2
    list(schedule(tasks, Submitter(submit, lambda futures: set(futures), slots=2)))
    by_size = sorted(tasks, key=lambda t: t.scan.mask.stat().st_size, reverse=True)
    assert started == [t.scan.key.patient_id for t in by_size]
    assert started[0] == "P001"  # 6 lesions: the biggest mask file


def test_cli_on_an_existing_dask_cluster_by_address_equals_local_pool(tmp_path) -> None:
    """The dask-jobqueue path: a cluster started elsewhere, handed to `radiomx extract --dask-scheduler ADDRESS`."""
    import pandas as pd
    from click.testing import CliRunner
    from distributed import LocalCluster

    from radiomx.cli import cli

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 3}, "P002": {"FDG": 1}})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "dask"),
                                           "--dask-scheduler", cluster.scheduler_address])
    local = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "local"), "-j", "2"])
    assert on_dask.exit_code == local.exit_code == 0, on_dask.stderr
    a = pd.read_parquet(tmp_path / "dask" / "features" / "18F-FDG.parquet").drop(columns="extracted_at")
    b = pd.read_parquet(tmp_path / "local" / "features" / "18F-FDG.parquet").drop(columns="extracted_at")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 4


def _huge_page_probe() -> tuple[str | None, int]:
    """In a worker: its GLIBC_TUNABLES, and how much of a fresh 48 MB ITK image (glibc malloc) sits on huge pages."""
    import os

    image = sitk.Image(200, 200, 300, sitk.sitkFloat32)
    with open("/proc/self/smaps_rollup") as fh:
        huge_kib = next(int(line.split()[1]) for line in fh if line.startswith("AnonHugePages:"))
    del image
    return os.environ.get("GLIBC_TUNABLES"), huge_kib


def _thp_allowed() -> bool:
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return thp.exists() and "[never]" not in thp.read_text()


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux only: glibc tunables and THP")
def test_pool_workers_get_the_huge_pages_the_caller_exported(monkeypatch):
    """docs/parallel.md: ``export GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` before radiomx gives its pool workers
    transparent huge pages for their whole-body buffers (glibc reads the variable when a process starts, and a
    spawned worker starts with the caller's environment). radiomx itself never writes the variable."""
    import os

    from radiomx.run.engine import local_pool

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    before = dict(os.environ)
    with local_pool(1) as pool:
        tunables, huge_kib = pool.submit(_huge_page_probe).result()
    assert dict(os.environ) == before
    assert tunables == "glibc.malloc.hugetlb=1"
    if _thp_allowed():
        assert huge_kib >= 32 * 1024, "the 48 MB image should sit mostly on 2 MiB pages"


def test_planning_a_fresh_output_folder_loads_no_table_library(tmp_path):
    """Before the first scan reaches a worker, the writer process must not spend ~0.45 s importing pandas/pyarrow:
    a fresh OUT has no state to read (``radiomx.run.extraction.stored_state``), and the store is imported in the
    background once the scans are handed out. A dry run stops right after planning, so it shows what planning loaded."""
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    probe = ("import sys; from radiomx.api import extract; from radiomx.options import ExtractOptions; "
             "s = extract(sys.argv[1], sys.argv[2], ExtractOptions(dry_run=True)); "
             "print(s.plan_counts['new'], ' '.join(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, str(cohort), str(tmp_path / "out")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["1"], out.stdout


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux only: glibc tunables and THP")
def test_dask_local_cluster_workers_get_the_huge_pages_the_caller_exported(monkeypatch):
    """``--engine dask`` without a scheduler starts a LocalCluster whose workers inherit the exported tunable as
    pool workers do. Dask's nanny writes its own pre-spawn variables into this process's ``os.environ``; radiomx
    puts them back."""
    import os

    from distributed import Client

    from radiomx.run.cluster import local_cluster

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    before = dict(os.environ)
    with local_cluster(1) as cluster, Client(cluster) as client:
        tunables, huge_kib = client.submit(_huge_page_probe, pure=False).result()
        assert dict(os.environ) == before
    assert dict(os.environ) == before
    assert tunables == "glibc.malloc.hugetlb=1"
    if _thp_allowed():
        assert huge_kib >= 32 * 1024
