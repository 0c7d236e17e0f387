"""Run scan tasks: in this process, in a local process pool, or on a Dask cluster.

Why no scheduler of our own: a process pool covers one machine, and dask.distributed covers clusters (and
SLURM/PBS through dask-jobqueue, whose scheduler address or file is all we need). Either way results stream
back to the one writer process as they complete, so memory holds one commit batch, not the cohort.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .records import Failure, ScanOutcome
from .worker import ScanTask, pin_threads, run_scan


def _crashed(task: ScanTask, exc: BaseException) -> ScanOutcome:
    """A worker that died (OOM kill, segfault) or raised: the scan fails, the run goes on, the next run retries."""
    outcome = ScanOutcome(task.scan.key)
    outcome.failures.append(Failure(task.scan.key, "worker", str(task.scan.folder),
                                    f"worker failed ({type(exc).__name__}: {exc}); rerun to retry this scan"))
    outcome.state = {}
    return outcome


def run_serial(tasks: Iterable[ScanTask]) -> Iterator[ScanOutcome]:
    for task in tasks:
        try:
            yield run_scan(task)
        except Exception as exc:  # noqa: BLE001
            yield _crashed(task, exc)


def run_pool(tasks: list[ScanTask], jobs: int) -> Iterator[ScanOutcome]:
    """Process pool with at most ``2 * jobs`` tasks in flight so results stream and memory stays flat."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["radiomx.worker", "radiomics.featureextractor"])
    pending = list(reversed(tasks))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=pin_threads) as pool:
        in_flight: dict[Future, ScanTask] = {}
        while pending or in_flight:
            while pending and len(in_flight) < 2 * jobs:
                task = pending.pop()
                in_flight[pool.submit(run_scan, task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                task = in_flight.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - BrokenProcessPool etc.
                    yield _crashed(task, exc)


def run_dask(tasks: list[ScanTask], scheduler: str | None, jobs: int) -> Iterator[ScanOutcome]:
    """On a Dask cluster (``scheduler`` address or scheduler-file path) or, without one, a LocalCluster."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    elif scheduler.startswith(("tcp://", "tls://", "ws://", "inproc://")):
        client = Client(scheduler)
    else:
        client = Client(scheduler_file=scheduler)
    try:
        futures = {client.submit(run_scan, task, pure=False): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001
                yield _crashed(task, exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(tasks: list[ScanTask], jobs: int, engine: str = "local", scheduler: str | None = None
              ) -> Iterator[ScanOutcome]:
    if not tasks:
        return iter(())
    if engine == "dask" or scheduler:
        return run_dask(tasks, scheduler, jobs)
    if jobs <= 1 or len(tasks) == 1:
        return run_serial(tasks)
    return run_pool(tasks, min(jobs, len(tasks)))
