"""Dask specifics: connect to a cluster within a bounded time, check that every worker sees the cohort, run a task
on a worker, and say why a task was lost.

Why a module of its own: a cluster fails in ways a local pool cannot, and each must end as one line, not a hang.
A scheduler that is down or a scheduler file that was never written must stop the run at once (exit 2): Dask
itself waits forever for a missing scheduler file. Workers that do not mount the cohort (no shared file system)
must stop the run on the first check, not fail every scan one by one. A scan that kills every worker it lands on
(OOM, a segfault in native code) is retried only ``distributed.scheduler.allowed-failures`` times by the
scheduler, then Dask raises ``KilledWorker`` and the scan becomes a failures row.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radiomx.errors import ClusterError, one_line

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

#: Scheduler settings of radiomx's own LocalCluster (a remote scheduler takes them from its own Dask config; see
#: docs/cluster.md). One retry for a task whose worker died, so a scan that kills workers costs two worker
#: restarts, not four; one task per single-threaded worker, so an innocent scan queued behind it is not counted
#: as a suspect when that worker dies.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
ADDRESS_PREFIXES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")


@contextlib.contextmanager
def restored_environ() -> Iterator[None]:
    """Put ``os.environ`` back exactly as it was on exit, whatever the enclosed code (or a library it calls, such
    as Dask's nanny) set or removed."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def local_cluster(jobs: int) -> LocalCluster:
    """A Dask LocalCluster of ``jobs`` single-threaded worker processes, with radiomx's scheduler settings.

    Dask's nanny applies its pre-spawn variables (such as ``OMP_NUM_THREADS``) by updating ``os.environ`` of the
    process that holds the nannies, which for a LocalCluster is this one: ``restored_environ`` puts the caller's
    environment back once the workers are up."""
    import dask
    from distributed import LocalCluster

    with restored_environ(), dask.config.set(SCHEDULER_CONFIG):
        return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)


def connect(scheduler: str, timeout: float) -> Client:
    """A client of the scheduler at ``scheduler`` (an address, or the path of a scheduler file), or ClusterError
    within ``timeout`` seconds."""
    from distributed import Client

    address, what = scheduler, scheduler
    if not scheduler.startswith(ADDRESS_PREFIXES):
        address = _address_in(Path(scheduler))
        what = f"{address} (from {scheduler})"
    try:
        return Client(address, timeout=timeout)
    except OSError as exc:  # refused, no route, or timed out
        reason = one_line(exc)
        raise ClusterError(f"{what}: cannot reach the Dask scheduler within {timeout:g} s ({reason}); start it, "
                           "or fix --dask-scheduler (or raise --dask-timeout)") from None
    except Exception as exc:  # noqa: BLE001 - a torn scheduler file, or another service on that port (a web
        # server's reply read as a Dask frame length once asked numpy for 3 EiB here)
        reason = f"{type(exc).__name__}: {one_line(exc)}"
        raise ClusterError(f"{what}: did not answer as a Dask scheduler ({reason}); check the address and port, "
                           "or restart the scheduler") from None


def _address_in(scheduler_file: Path) -> str:
    """The address a ``dask scheduler --scheduler-file`` wrote. Read here, because Dask's own reader waits for
    a missing file forever and reports a torn one as a bare AssertionError."""
    try:
        address = json.loads(scheduler_file.read_text()).get("address")
    except FileNotFoundError:
        raise ClusterError(f"{scheduler_file}: Dask scheduler file does not exist; start the scheduler with "
                           f"--scheduler-file {scheduler_file}, or pass its address (tcp://host:port)") from None
    except OSError as exc:
        raise ClusterError(f"{scheduler_file}: cannot read the Dask scheduler file ({exc.strerror})") from None
    except (ValueError, AttributeError):
        address = None
    if not isinstance(address, str) or not address:
        raise ClusterError(f"{scheduler_file}: not a Dask scheduler file (no address in it); restart the "
                           "scheduler to rewrite it")
    return address


def cohort_problem(cohort: str) -> str:
    """Why this process cannot read the cohort folder ("" if it can). Run on each worker: cheap (one stat, one
    directory read), so it also runs before every scan task."""
    try:
        mode = os.stat(cohort).st_mode
        if not stat.S_ISDIR(mode):
            return "is not a folder"
        with os.scandir(cohort) as entries:
            if next(entries, None) is None:
                return "is empty (shared file system not mounted?)"
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return ""


def _not_visible(cohort: str, reason: str, worker: str, others: int = 0) -> ClusterError:
    also = f" (and {others} other worker{'s' if others > 1 else ''})" if others else ""
    return ClusterError(f"{cohort}: cohort folder {reason} on Dask worker {worker}{also}; every worker must see "
                        "the cohort at the same path as this process (shared file system: docs/cluster.md)")


def check_workers_see(client: Client, cohorts: set[str]) -> None:
    """Ask every connected worker whether it can read each cohort folder; ClusterError naming the first that
    cannot. Workers that join later are checked by ``on_worker`` before their first scan."""
    for cohort in sorted(cohorts):
        problems = {w: p for w, p in client.run(cohort_problem, cohort).items() if p}
        if problems:
            worker, reason = sorted(problems.items())[0]
            raise _not_visible(cohort, reason, worker, len(problems) - 1)


def on_worker(fn: Callable[[Any], Any], arg: Any, caller_pid: int) -> Any:
    """Run ``fn(arg)`` on a Dask worker; a scan task first checks that this worker sees the cohort, so that a
    worker without the shared file system stops the run (ClusterError) instead of failing its scans one by one."""
    cohort = getattr(arg, "cohort", None)
    if cohort is not None:
        reason = cohort_problem(str(cohort))
        if reason:
            from distributed import get_worker

            raise _not_visible(str(cohort), reason, get_worker().address)
    from radiomx.run.worker import call_in_worker

    return call_in_worker(fn, arg, caller_pid)


def describe_lost(exc: BaseException) -> str | None:
    """The failures-table message for a task Dask gave up on because its workers died (``KilledWorker``)."""
    if type(exc).__name__ != "KilledWorker":
        return None
    tries = getattr(exc, "allowed_failures", None)
    attempts = f"{tries + 1} workers" if isinstance(tries, int) else "every worker that tried it"
    return (f"worker process died while computing this scan ({attempts}: out of memory, a crash in native code, "
            "or a lost node?); see the Dask worker logs, then rerun to retry this scan")
