"""Run scan tasks: in this process, in a local process pool, or on a Dask cluster.

Why no scheduler of our own beyond a small loop: a process pool covers one machine, and dask.distributed covers
clusters (and SLURM/PBS through dask-jobqueue, whose scheduler address or file is all we need). Either way results
stream back to the one writer process as they complete, so memory holds one commit batch, not the cohort.

Why three kinds of task: while more scans are pending than there are task slots, a scan runs whole in one task
(``run_scan``), so its lesion inputs never travel through the writer process and every worker is busy with its
own scan. For the last scans (the tail) a scan is prepared once (load, split, cut each lesion's small input:
``prepare_scan``) and its lesions run as separate tasks (``run_lesion``), biggest first, on any free worker, so
one patient with 40 lesions does not serialize the end of a run. Scans start largest first (mask size on disk).
The loop yields exactly one ``ScanOutcome`` per scan (the store upserts per scan key). Only the last ``slots``
scans are split, so the lesion inputs held in this process stay bounded (~0.15 MB per lesion, ``slots`` scans).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radiomx.errors import ClusterError, ConfigError
from radiomx.records import CohortPaths, Failure, ScanOutcome
from radiomx.run.warmup import init_pool_worker
from radiomx.vocabulary import Stage

if TYPE_CHECKING:  # the worker module (readers, feature code) is imported only when there is work
    from radiomx.run.worker import LesionJob, LesionResult, PreparedScan, ScanTask


def _crashed(task: ScanTask, exc: BaseException, message: str | None = None) -> ScanOutcome:
    """A worker that died (OOM kill, segfault) or raised: the scan fails, the run goes on, the next run retries."""
    outcome = ScanOutcome(task.scan.key)
    message = message or f"worker failed ({type(exc).__name__}: {exc}); rerun to retry this scan"
    folder = CohortPaths(task.cohort).relative(task.scan.folder)  # no PHI in tables
    outcome.failures.append(Failure(task.scan.key, Stage.WORKER, folder, message))
    outcome.state = {}
    return outcome


def _size_on_disk(task: ScanTask) -> int:
    mask = task.scan.mask
    try:
        if mask is None:
            return 0
        return sum(p.stat().st_size for p in mask.rglob("*")) if mask.is_dir() else mask.stat().st_size
    except OSError:
        return 0


def run_serial(tasks: Iterable[ScanTask]) -> Iterator[ScanOutcome]:
    """Every scan in this process, each inside ``caller_scope`` (threads and PyRadiomics' messages as the caller
    had them once the scan is done; the caller's own code between scans runs unconstrained)."""
    from radiomx.run.worker import caller_scope, run_scan

    for task in tasks:
        try:
            with caller_scope():
                outcome = run_scan(task)
        except Exception as exc:  # noqa: BLE001
            outcome = _crashed(task, exc)
        yield outcome


@dataclass
class _OpenScan:
    prepared: PreparedScan
    waiting: int
    results: dict[int, LesionResult] = field(default_factory=dict)
    crash: BaseException | None = None


@dataclass
class Submitter:
    """What the scheduling loop needs from an executor: submit a call, wait for any of some futures.

    The pool's and Dask's ``submit`` wrap each call in ``worker.call_in_worker``, which sets a worker process up
    (threads, PyRadiomics' messages) for good, or only for the call when the executor runs in this very process."""

    submit: Callable[..., Any]
    wait_any: Callable[[set], set]
    slots: int
    #: The failures-table message for an executor-specific loss (Dask's KilledWorker), or None for the default.
    describe: Callable[[BaseException], str | None] = lambda exc: None
    #: An error that ends the run instead of failing each scan, for a loss (the exception, and whether any task
    #: had finished) that no rerun can cure: the local pool's workers re-running an unguarded script.
    fatal: Callable[[BaseException, bool], Exception | None] = lambda exc, finished: None


def schedule(tasks: list[ScanTask], executor: Submitter) -> Iterator[ScanOutcome]:
    """Two-phase scheduling over any executor; yields one ScanOutcome per task, in completion order."""
    from radiomx.run.worker import PreparedScan, finish_scan, prepare_scan, run_lesion, run_scan

    # Largest first (longest-processing-time rule), by the mask's size on disk: a cheap proxy for lesion count and
    # volume known before loading, so a 40-lesion patient starts early instead of finishing last.
    pending = sorted(tasks, key=_size_on_disk)
    open_scans: dict[int, _OpenScan] = {}
    lesions: list[tuple[int, int, int, LesionJob]] = []  # heap: (-cost, order, scan id, job)
    order = itertools.count()
    in_flight: dict[Any, tuple[str, int, Any]] = {}
    task_of: dict[int, ScanTask] = {}
    broken: BaseException | None = None
    finished = False  # whether any task has returned a result

    def lost(exc: BaseException) -> None:
        """Raise instead of failing each scan when the executor says no rerun can cure this loss."""
        fatal = executor.fatal(exc, finished)
        if fatal is not None:
            raise fatal from exc

    def submit(kind: str, scan_id: int, fn, arg) -> None:
        nonlocal broken
        try:
            in_flight[executor.submit(fn, arg)] = (kind, scan_id, arg)
        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool: everything left fails, the run goes on
            lost(exc)
            broken = exc

    def close(scan_id: int) -> ScanOutcome:
        entry = open_scans.pop(scan_id)
        if entry.crash is not None and not entry.results:
            return _crashed(entry.prepared.task, entry.crash)
        return finish_scan(entry.prepared, entry.results)

    while (pending or in_flight or lesions) and broken is None:
        while len(in_flight) < executor.slots and broken is None:
            if pending:
                # Plenty of scans left: a scan runs whole in one task, so its lesion inputs never travel through
                # this process. The last ``slots`` scans (the tail) are prepared, all of them before any lesion
                # task: loading is the indivisible part of a scan (~0.2 s for a whole-body PET), so it goes
                # first and the small lesion tasks fill every worker up to the end.
                task = pending.pop()
                scan_id = next(order)
                task_of[scan_id] = task
                open_scans[scan_id] = _OpenScan(PreparedScan(task, ScanOutcome(task.scan.key)), waiting=-1)
                if len(pending) >= executor.slots:
                    submit("whole", scan_id, run_scan, task)
                else:
                    submit("prepare", scan_id, prepare_scan, task)
            elif lesions:
                _, _, scan_id, job = heapq.heappop(lesions)
                submit("lesion", scan_id, run_lesion, job)
            else:
                break
        if not in_flight:
            break
        for future in executor.wait_any(set(in_flight)):
            kind, scan_id, arg = in_flight.pop(future)
            entry = open_scans[scan_id]
            try:
                result = future.result()
            except ClusterError:  # a worker that cannot see the cohort: every scan would fail, stop the run
                raise
            except Exception as exc:  # noqa: BLE001 - a worker died or raised
                lost(exc)
                if kind in ("prepare", "whole"):
                    open_scans.pop(scan_id)
                    yield _crashed(arg, exc, executor.describe(exc))
                    continue
                entry.crash = exc
                entry.waiting -= 1
            else:
                finished = True
                if kind == "whole":
                    open_scans.pop(scan_id)
                    yield result
                    continue
                if kind == "prepare":
                    entry.prepared = result
                    entry.waiting = len(result.jobs)
                    for job in result.jobs:
                        heapq.heappush(lesions, (-job.cost, next(order), scan_id, job))
                    result.jobs = []
                else:
                    entry.results[result.lesion_id] = result
                    entry.waiting -= 1
            if entry.waiting == 0:
                yield close(scan_id)
    if broken is not None:
        for scan_id in list(open_scans):
            yield _crashed(task_of[scan_id], broken)
        for task in reversed(pending):
            yield _crashed(task, broken)


class LocalPool:
    """A process pool of radiomx's own, and how it ends: ``close_soon`` (after the last result) lets the workers end
    on a thread of this process while the writer commits the last batch; leaving ``local_pool`` joins them, so no
    worker outlives the call that owns the pool. One pool serves one extraction."""

    def __init__(self, executor: ProcessPoolExecutor) -> None:
        self.executor = executor
        self._closer: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.executor.submit(fn, *args)

    def close_soon(self) -> None:
        if self._closer is None:
            self._closer = threading.Thread(target=self.executor.shutdown, name="radiomx-pool-close")
            self._closer.start()

    def close(self) -> None:
        """Shut the pool down and wait for every worker to have ended."""
        if self._closer is None:
            self.executor.shutdown(wait=True)
        else:
            self._closer.join()


@contextlib.contextmanager
def local_pool(jobs: int) -> Iterator[LocalPool]:
    """A process pool of up to ``jobs`` spawned workers (``warmup.py``; started as tasks arrive), closed and joined
    on exit. A spawn context object of its own, so radiomx sets no start method; nothing is left running."""
    context = multiprocessing.get_context("spawn")
    unset = multiprocessing.get_start_method(allow_none=True) is None
    pool = LocalPool(ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=init_pool_worker))
    try:
        yield pool
    finally:
        pool.close()
        if unset:
            leave_start_method_unset()


def leave_start_method_unset() -> None:
    """Undo what starting a spawn worker does to the caller's default start method, once the workers are joined.

    CPython's ``multiprocessing.spawn.get_preparation_data`` (run for every spawned process, whatever context
    object started it) calls ``multiprocessing.get_start_method()`` without ``allow_none``, which fixes the
    process-wide default at the platform's default ('fork' on Linux, up to Python 3.13): after ``jobs > 1`` a
    caller's ``get_start_method(allow_none=True)`` said 'fork' instead of None, and its own
    ``set_start_method('spawn')`` would raise "context has already been set". No public call starts a spawn
    process without that, so the call that fixed it is undone with the documented public one:
    ``set_start_method(None, force=True)`` sets the start method back to None (Python docs, multiprocessing,
    "If method is None and force is True then the start method is set to None"). Only when the method is the
    platform default that spawning fixed (the first of ``get_all_start_methods()``, documented as the default): a
    method the caller set meanwhile, on another thread, is left alone."""
    if multiprocessing.get_start_method(allow_none=True) == multiprocessing.get_all_start_methods()[0]:
        multiprocessing.set_start_method(None, force=True)


def unguarded_script(exc: BaseException, finished: bool) -> Exception | None:
    """The error for a pool that broke before any task finished while the caller's main module is a script: the
    likely cause is a script that calls radiomx at its top level, which every spawned worker imports again (its
    second ``extract`` finds OUT locked, or Python refuses to start processes while bootstrapping) and dies of.
    Whether the script has the guard cannot be known from here, so the message says what to do if it lacks it.
    radiomx's own command line (``radiomx``, ``python -m radiomx``) is guarded and gets the per-scan failures."""
    if finished or not isinstance(exc, BrokenProcessPool):
        return None
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if not script or Path(script).stem == "radiomx" or (spec is not None and spec.name.startswith("radiomx")):
        return None
    return ConfigError(f"the worker processes ended before any scan ran: each spawned worker imports your main "
                       f"module ({Path(script).name}); if you run this from a script, put the radiomx call under "
                       "if __name__ == \"__main__\": (README, Library)")


def run_pool(tasks: list[ScanTask], jobs: int) -> Iterator[ScanOutcome]:
    """Local process pool of ``jobs`` workers for this call alone, two tasks in flight per worker. Once the last
    result is in, the pool starts closing (``LocalPool.close_soon``), so its workers end while the writer commits."""
    from radiomx.run.worker import call_in_worker

    caller_pid = os.getpid()
    with local_pool(jobs) as workers:

        def submit(fn, arg):
            return workers.submit(call_in_worker, fn, arg, caller_pid)

        def wait_any(futures: set) -> set:
            return wait(futures, return_when=FIRST_COMPLETED).done

        yield from schedule(tasks, Submitter(submit, wait_any, 2 * jobs, fatal=unguarded_script))
        workers.close_soon()


def run_dask(tasks: list[ScanTask], scheduler: str | None, jobs: int, timeout: float = 30.0
             ) -> Iterator[ScanOutcome]:
    """On a Dask cluster (``scheduler`` address or scheduler-file path) or, without one, a LocalCluster.

    Before any scan is submitted: the scheduler must answer within ``timeout`` seconds and every connected worker
    must see the cohort folder (ClusterError otherwise, see ``cluster.py``)."""
    from distributed import Client
    from distributed import wait as dask_wait

    from radiomx.run.cluster import check_workers_see, connect, describe_lost, local_cluster, on_worker

    caller_pid = os.getpid()
    cluster = local_cluster(jobs) if scheduler is None else None
    client = Client(cluster) if cluster is not None else connect(scheduler, timeout)  # type: ignore[arg-type]
    try:
        cohorts = {str(t.cohort) for t in tasks}
        relative = sorted(c for c in cohorts if not Path(c).is_absolute())
        if scheduler is not None and relative:
            raise ClusterError(f"{relative[0]}: give the cohort as an absolute path; Dask workers do not run in "
                               "this folder")
        check_workers_see(client, cohorts)
        slots = 2 * max(jobs, sum(client.nthreads().values()) or 1)

        def submit(fn, arg):
            return client.submit(on_worker, fn, arg, caller_pid, pure=False)

        def wait_any(futures: set) -> set:
            return set(dask_wait(list(futures), return_when="FIRST_COMPLETED").done)

        yield from schedule(tasks, Submitter(submit, wait_any, slots, describe_lost))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(tasks: list[ScanTask], jobs: int, engine: str = "local", scheduler: str | None = None,
              dask_timeout: float = 30.0) -> Iterator[ScanOutcome]:
    """Where the scans run: a Dask cluster when asked; otherwise this process for ``-j 1`` or a single scan (a
    pool's start, ~0.5 s and one interpreter per worker, costs more than it saves on one scan: issue 23,
    ``benchmarks/bench_one_scan.py``), else a local pool of ``jobs`` workers."""
    if not tasks:
        return iter(())
    if engine == "dask" or scheduler:
        return run_dask(tasks, scheduler, jobs, dask_timeout)
    if jobs <= 1 or len(tasks) == 1:
        return run_serial(tasks)
    return run_pool(tasks, jobs)
