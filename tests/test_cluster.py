"""A real Dask cluster, end to end: a ``dask scheduler`` and ``dask worker`` processes started from the venv's
``dask`` CLI (127.0.0.1 only), and the real ``radiomx extract`` CLI as a subprocess driving them.

Proved here: the cluster's table equals the local pool's; a worker SIGKILLed mid-run (nanny and all: a lost node)
loses no scan and duplicates none; a scan that kills every worker it lands on ends as a failures row, bounded by
the scheduler's ``allowed-failures``; an unreachable scheduler or a missing scheduler file is exit 2 with one line;
workers that cannot see the cohort stop the run with one line naming the path and the worker; a driver SIGKILLed
halfway keeps every committed batch. Worker misbehaviour comes from the test hooks in ``radiomx/run/faults.py``,
set only in the environment of the worker processes started here.

Every wait is bounded, and every process started here is killed (by process group) when the module ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from radiomx.api import load_table, read_table
from radiomx.store.outdir import state_path

from .conftest import make_cohort

pytest.importorskip("distributed")
pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent
EXTRACT = [sys.executable, "-m", "radiomx", "extract"]
KEY = ["patient_id", "session", "tracer", "lesion_id"]
KILLER = "P900"  # the scan that makes every worker process it lands on SIGKILL itself
#: The scheduler's own bound on retries of a task whose worker died, and one task per single-threaded worker (so a
#: scan queued behind the killer is not a suspect): what docs/cluster.md tells users to set on their scheduler.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
                 "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
WAIT = 120.0  # upper bound for any start-up or run on this shared 2-core machine; never reached when all is well


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADIOMX_", "DASK_"))}
    return {**env, **extra}


def _wait_until(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")


class Cluster:
    """A scheduler and worker processes, each in its own process group (a worker's nanny and its worker process
    die together, like a lost node)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.file)], "scheduler", SCHEDULER_ENV)
        _wait_until(lambda: self.file.is_file() and json.loads(self.file.read_text() or "{}").get("address"),
                    "the scheduler file")
        self.address = json.loads(self.file.read_text())["address"]

    def _spawn(self, args: list[str], name: str, env: dict[str, str], prefix: list[str] | None = None
               ) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*(prefix or []), str(BIN / "dask"), *args], stdout=log, stderr=log,
                                env=_clean_env(**env), cwd=self.root, start_new_session=True)
        proc.log = self.root / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def add_worker(self, name: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
                   ) -> subprocess.Popen:
        scratch = self.root / f"scratch-{name}"
        scratch.mkdir(exist_ok=True)
        return self._spawn(["worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1", "--nworkers", "1",
                            "--nthreads", "1", "--no-dashboard", "--local-directory", str(scratch), "--name", name],
                           name, env or {}, prefix)

    def workers(self) -> dict[str, str]:
        """Connected workers: name -> address, asked of the scheduler by a short-lived client."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            info = client.scheduler_info(n_workers=-1)["workers"]
        return {w["name"]: address for address, w in info.items()}

    def wait_for(self, names: set[str]) -> dict[str, str]:
        _wait_until(lambda: names <= set(self.workers()), f"workers {sorted(names)}")
        return self.workers()

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                self.kill(proc)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and two workers A and B; every worker carries the killer hook (inert for other patients)."""
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        for name in ("A", "B"):
            cluster.add_worker(name, {"RADIOMX_FAULT_KILL_SCAN": KILLER})
        cluster.wait_for({"A", "B"})
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Four tiny scans of 1-3 lesions."""
    return make_cohort(tmp_path_factory.mktemp("cluster") / "cohort",
                       {"P001": {"FDG": 3}, "P002": {"FDG": 1}, "P003": {"FDG": 2}, "P004": {"FDG": 2}})


def _extract(cohort: Path, out: Path, *flags: str, timeout: float = WAIT) -> subprocess.CompletedProcess:
    return subprocess.run([*EXTRACT, str(cohort), "-o", str(out), *flags], capture_output=True, text=True,
                          env=_clean_env(), timeout=timeout)


def _values(out: Path) -> pd.DataFrame:
    return read_table(out).drop(columns=["extracted_at"]).sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_table(cohort, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("local") / "out"
    proc = _extract(cohort, out, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    return _values(out)


def _assert_each_scan_once(out: Path, patients: set[str]) -> None:
    table = read_table(out)
    assert not table.duplicated(KEY).any()
    scans = load_table(out, "scans")
    assert sorted(scans["patient_id"]) == sorted(patients)


def test_cluster_table_equals_local_pool(cluster, cohort, local_table, tmp_path) -> None:
    proc = _extract(cohort, tmp_path / "out", "--dask-scheduler", cluster.address)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(_values(tmp_path / "out"), local_table)


def test_scan_that_kills_every_worker_ends_as_a_failure_row(cluster, tmp_path) -> None:
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, KILLER: {"FDG": 1}, "P002": {"FDG": 2}})
    out = tmp_path / "out"
    proc = _extract(cohort, out, "--dask-scheduler", str(cluster.file))  # the scheduler-file form
    assert proc.returncode == 1, proc.stderr
    failures = load_table(out, "failures")
    assert failures["patient_id"].tolist() == [KILLER]
    assert failures["stage"].tolist() == ["worker"]
    assert "worker process died while computing this scan (2 workers" in failures["message"].iloc[0]
    assert not Path(failures["file"].iloc[0]).is_absolute()
    assert sorted(read_table(out)["patient_id"].unique()) == ["P001", "P002"]
    _assert_each_scan_once(out, {"P001", "P002"})  # a lost scan has no state row: the next run retries it
    cluster.wait_for({"A", "B"})  # their nannies restarted the killed worker processes


def _announced(worker: subprocess.Popen) -> bool:
    return "radiomx-fault-stall" in Path(worker.log).read_text()  # type: ignore[attr-defined]


def test_worker_sigkilled_mid_run_loses_and_duplicates_nothing(cluster, cohort, local_table, tmp_path) -> None:
    # A third worker stalls in the first scan it gets; it is killed (nanny and worker) while that scan is in
    # flight, and the scheduler hands the scan to A or B.
    victim = cluster.add_worker("victim", {"RADIOMX_FAULT_STALL_SCAN": "*"})
    try:
        cluster.wait_for({"A", "B", "victim"})
        out = tmp_path / "out"
        driver = subprocess.Popen([*EXTRACT, str(cohort), "-o", str(out), "--dask-scheduler", cluster.address],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_clean_env())
        try:
            _wait_until(lambda: _announced(victim), "the victim worker to take a scan")
            cluster.kill(victim)
            _, stderr = driver.communicate(timeout=WAIT)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode == 0, stderr
    finally:
        cluster.kill(victim)
    _assert_each_scan_once(out, {"P001", "P002", "P003", "P004"})
    pd.testing.assert_frame_equal(_values(out), local_table)


def test_driver_sigkilled_halfway_keeps_committed_batches(cluster, cohort, local_table, tmp_path) -> None:
    staller = cluster.add_worker("staller", {"RADIOMX_FAULT_STALL_SCAN": "*"})
    out = tmp_path / "out"
    try:
        cluster.wait_for({"A", "B", "staller"})
        driver = subprocess.Popen([*EXTRACT, str(cohort), "-o", str(out), "--dask-scheduler", cluster.address,
                                   "--batch-size", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=_clean_env())
        try:
            _wait_until(lambda: _announced(staller) and state_path(out).is_file(),  # the scans table: written last
                        "a committed scan and a stalled one")
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
        committed = set(load_table(out, "scans")["patient_id"])
        assert 1 <= len(committed) < 4, committed  # the stalled scan cannot be among them
        _assert_each_scan_once(out, committed)
        kept = _values(out)
        # The state is written last (docs/storage.md, "between-files"): a kill inside a later commit may leave that
        # one scan's rows ahead of its state (with --batch-size 1, at most one scan). The next run recomputes it.
        ahead = set(kept["patient_id"]) - committed
        assert len(ahead) <= 1, ahead
        for scans in (committed, committed | ahead):  # what is committed, and every row there is, are right
            pd.testing.assert_frame_equal(
                kept[kept["patient_id"].isin(scans)].reset_index(drop=True),
                local_table[local_table["patient_id"].isin(scans)].reset_index(drop=True))
    finally:
        cluster.kill(staller)
    rerun = _extract(cohort, out, "--dask-scheduler", cluster.address)
    assert rerun.returncode == 0, rerun.stderr
    _assert_each_scan_once(out, {"P001", "P002", "P003", "P004"})
    pd.testing.assert_frame_equal(_values(out), local_table)
    runs = load_table(out, "runs")
    assert runs["computed"].tolist() == [4 - len(committed)]  # the killed run never recorded itself


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_and_missing_scheduler_file_are_exit_2_with_one_line(cohort, tmp_path) -> None:
    port = _free_port()  # nothing listens there once the socket is closed
    proc = _extract(cohort, tmp_path / "a", "--dask-scheduler", f"tcp://127.0.0.1:{port}", "--dask-timeout", "3")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"tcp://127.0.0.1:{port}: cannot reach the Dask scheduler within 3 s" in proc.stderr

    missing = tmp_path / "no-such-scheduler.json"  # Dask alone would wait for it forever
    proc = _extract(cohort, tmp_path / "b", "--dask-scheduler", str(missing))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"{missing}: Dask scheduler file does not exist" in proc.stderr
    assert not any((tmp_path / "b").rglob("*.parquet"))


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


def test_worker_without_the_cohort_stops_the_run_with_one_line(cluster, tmp_path, tmp_path_factory) -> None:
    """A worker in its own mount namespace, where the cohort's parent folder is an empty tmpfs: the path exists
    for the driver and the other workers, not for this worker (a node without the shared file system)."""
    if not _can_unshare():
        pytest.skip("needs `unshare --mount` (root or user namespaces) to give one worker a different file system")
    hidden = tmp_path / "shared"
    cohort = make_cohort(hidden / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}})
    script = f'mount -t tmpfs none "{hidden}" && exec "$0" "$@"'
    blind = cluster.add_worker("blind", prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                                script])
    out = tmp_path_factory.mktemp("blind") / "out"
    try:
        address = cluster.wait_for({"A", "B", "blind"})["blind"]
        proc = _extract(cohort, out, "--dask-scheduler", cluster.address)
    finally:
        cluster.kill(blind)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"{cohort}: cohort folder does not exist on Dask worker {address};" in proc.stderr
    assert not any(out.rglob("*.parquet"))


def test_a_scan_task_on_a_worker_without_the_cohort_raises_the_cluster_error(cluster) -> None:
    """The check for workers that join after the start-up probe: ``on_worker`` runs it before each scan task."""
    from types import SimpleNamespace

    from distributed import Client

    from radiomx.errors import ClusterError
    from radiomx.run.cluster import on_worker

    with Client(cluster.address, timeout=30) as client:
        future = client.submit(on_worker, str, SimpleNamespace(cohort="/nonexistent/cohort"), 0, pure=False)
        with pytest.raises(ClusterError, match=r"^/nonexistent/cohort: cohort folder does not exist on Dask "
                                               r"worker tcp://127\.0\.0\.1:\d+;"):
            future.result(timeout=WAIT)
        assert client.submit(on_worker, str, SimpleNamespace(cohort=str(cluster.root)), 0, pure=False
                             ).result(timeout=WAIT) == "namespace(cohort=" + repr(str(cluster.root)) + ")"
