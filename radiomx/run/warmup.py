"""How the local pool's worker processes start, and what they set up for themselves, without touching the caller.

Why a module of its own: it must import nothing heavy. The pool's initializer (``init_pool_worker``) is pickled by
reference, so the process that starts the pool imports only this module; the worker imports SimpleITK, PyRadiomics
and radiomx's readers itself, after it has set its own thread variables (OpenMP and OpenBLAS read them when they
load).

Why ``spawn`` by default and not a forkserver: ``multiprocessing``'s forkserver is one per process, shared by
every caller, and its preload list and environment are process-wide (``set_forkserver_preload`` has no per-context
form). A library call that started it with radiomx's preload would leave both behind for the user's own pools. A
spawn context starts each worker from a fresh interpreter, owned by this pool alone, and leaves nothing behind once
the pool is shut down.

Why the ``radiomx`` command uses the forkserver all the same (``ExtractOptions(start_method="forkserver")``): its
process is radiomx's own and ends with the command, so there is no one else's pool to leave anything to (as with
the logging set-up in ``radiomx.cli.logs``). The server imports the worker modules once (``FORKSERVER_PRELOAD``)
and every worker is a fork of it, where spawn pays a fresh interpreter and ~0.45 s of imports per worker (the
whole run, measured side by side with the last wave's: ``benchmarks/RESULTS-before-after.md``). The
server is started with one thread per numeric library (``THREAD_VARIABLES``: OpenBLAS and OpenMP read them when
they load, which is in the server, not in the worker) and, with huge pages asked for, the tunable below. The
server and its environment are those of its first start in the process, so the environment (huge pages, the test
hooks of ``faults.py``) is fixed per process: right for a command, which runs one extraction; a program that calls
the CLI in-process several times with different ``--huge-pages`` gets the first one's.

Huge pages (opt-in, ``ExtractOptions(huge_pages=True)``): a worker allocates several whole-body buffers per scan
(the inflated file, ITK's image, a mask), each 12-48 MB, and glibc serves each with a fresh ``mmap`` whose 4 KiB
pages the kernel faults in and zeroes one by one. ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (glibc >= 2.35;
``man 8 ld.so``) makes glibc ask for transparent huge pages on those mappings. It is an allocation strategy only (no
value can change), but it depends on glibc and on the kernel's THP setting, so it is not a default:
``benchmarks/bench_huge_pages.py`` measures it. glibc reads the variable when a process starts, so the only way to
give it to a spawned worker is the environment at spawn time: with the option on, ``launch_environment`` sets it
while the pool launches its workers (all of them at once, under a lock) and restores the caller's value right
after. With the option off (the default) nothing here writes ``os.environ``.

Why the forkserver may get ``PYTHONSAFEPATH=1`` (Python >= 3.11, ``man python``): the server is ``python -c ...``,
so its ``sys.path`` starts with the working folder, and Python 3.11's ``forkserver.main`` accepts the parent's
``sys_path`` but never sets it. Each forked worker gets the parent's path back, but only after the server has
imported its preload (``FORKSERVER_PRELOAD``) with the working folder first. Run from a folder that holds another
radiomx checkout, the server would import that checkout's worker code while this process runs its own (seen: the
last wave's ``radiomx`` run from this repository lost every worker). So the variable is set unless this process's
radiomx is the working folder's own (``python -m radiomx`` in a checkout: then the server imports that one too).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import threading
from collections.abc import Iterator
from pathlib import Path

#: glibc tunable given to the workers when huge pages are asked for (see the module docstring).
HUGE_PAGE_TUNABLE = "glibc.malloc.hugetlb=1"

#: Thread-count variables a worker sets for itself before its numeric libraries load (one thread per worker: the
#: workers already use every core; a multi-threaded BLAS inside N workers oversubscribes the machine).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")

#: What the forkserver imports once, before it forks any worker.
FORKSERVER_PRELOAD = ["radiomx.run.worker"]

_LAUNCH_LOCK = threading.Lock()


def worker_tunables(current: str | None) -> str:
    """``GLIBC_TUNABLES`` for the workers: the user's own tunables kept, huge pages added unless they chose."""
    if not current:
        return HUGE_PAGE_TUNABLE
    if "glibc.malloc.hugetlb=" in current:
        return current
    return f"{current}:{HUGE_PAGE_TUNABLE}"


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


@contextlib.contextmanager
def launch_environment(huge_pages: bool, forkserver: bool = False) -> Iterator[None]:
    """The environment worker processes (or the forkserver) launched inside this block start with: the caller's
    own, plus the huge-page tunable when asked for and, for a ``forkserver``, one thread per numeric library and
    this process's import path (then restored on exit). Does nothing at all when both are false (the spawn
    default)."""
    if not huge_pages and not forkserver:
        yield
        return
    with _LAUNCH_LOCK, restored_environ():
        if huge_pages:
            os.environ["GLIBC_TUNABLES"] = worker_tunables(os.environ.get("GLIBC_TUNABLES"))
        if forkserver:
            os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
            if not radiomx_from_working_folder():
                os.environ["PYTHONSAFEPATH"] = "1"  # the forkserver imports what this process imports
        yield


def radiomx_from_working_folder() -> bool:
    """Whether this process's radiomx is the one in its working folder (``python -m radiomx`` from a checkout),
    which a ``python -c`` forkserver would import too; otherwise the server must not look there (module
    docstring). Decided by where radiomx was imported from, not by the path's entries: the working folder may be on
    ``sys.path`` behind the installed copy, and the server would still try it first."""
    package_root = Path(__file__).resolve().parents[2]  # radiomx/run/warmup.py -> the folder holding radiomx/
    return package_root == Path.cwd().resolve()


def pool_context(start_method: str) -> multiprocessing.context.BaseContext:
    """The multiprocessing context of a local pool; for ``forkserver``, with radiomx's preload (process-wide:
    only for a process radiomx owns, see the module docstring)."""
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


def start_forkserver() -> None:
    """Start this process's forkserver now (with the current environment) without waiting for its imports; a
    no-op when it runs already.

    ``ensure_running`` is a public name of ``multiprocessing.forkserver`` (no underscore) that the manual does not
    describe; the documented way, forking the first worker at once, makes this process wait for the server's
    imports (0.26-0.39 s measured) instead of going on with its own."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def init_pool_worker() -> None:
    """Initializer of a local pool worker (its own process): one thread per library, then the heavy imports."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    from radiomx.run.worker import init_worker_process

    init_worker_process()


def ready() -> int:
    """A no-op task: submitting one per worker makes the pool launch every worker at once."""
    return os.getpid()
