"""What a local pool's worker process sets up for itself before its numeric libraries load.

Why a module of its own: it must import nothing heavy. The pool's initializer (``init_pool_worker``) is pickled by
reference, so a spawned worker imports only this module to run it; it sets one thread per numeric library (OpenBLAS
and OpenMP read the variables when they load), then imports SimpleITK, PyRadiomics and radiomx's readers itself.

Workers are spawned: each is a fresh interpreter owned by its pool alone, so nothing process-wide (a start method, a
forkserver and its preload, an environment variable) is set in the caller's process. A preloaded forkserver saved
~0.45 s of imports per worker; measured on real runs it was not worth its process-wide state (docs/parallel.md).
"""

from __future__ import annotations

import os

#: Thread-count variables a worker sets for itself before its numeric libraries load (one thread per worker: the
#: workers already use every core; a multi-threaded BLAS inside N workers oversubscribes the machine).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


def init_pool_worker() -> None:
    """Initializer of a local pool worker (its own process): one thread per library, then the heavy imports."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    from radiomx.run.worker import init_worker_process

    init_worker_process()
