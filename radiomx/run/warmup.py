"""Start the local pool's workers' imports early, before this process has even loaded its own.

Why a module of its own: it must import nothing heavy. A worker of the local pool is forked from a forkserver that
first imports SimpleITK, PyRadiomics and radiomx's readers (~0.5 s). Started as the first thing ``radiomx
extract`` does, those imports run on another core while this process imports the rest of radiomx, discovers the
cohort, validates parameter files and plans, instead of after all that. Measured on the benchmark cohort (10
scans, Original only, 2 workers), together with loading pydicom/highdicom only for DICOM inputs and pandas only
with the store: 4.6 s -> 4.0 s.

Why the forkserver gets ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``: a worker allocates several whole-body buffers
per scan (the inflated file, ITK's image, a mask), each 12-48 MB, and glibc serves each with a fresh ``mmap`` whose
4 KiB pages the kernel faults in and zeroes one by one (~12,000 faults per 48 MB, ~25 ms). With the tunable
(glibc >= 2.35; ``man 8 ld.so``, "glibc.malloc.hugetlb") glibc asks for transparent huge pages on those
mappings (``madvise(MADV_HUGEPAGE)``, honoured when ``/sys/kernel/mm/transparent_hugepage/enabled`` is
``madvise`` or ``always``): 512x fewer faults. Measured on the benchmark PET (200x200x300 float32): reading one
volume 213 ms -> 147 ms. Allocation strategy only, no value can change; numpy already does the same for its own
large arrays. glibc reads the variable when a process starts, so it is set for the forkserver (and so for every
worker forked from it) and this process's own environment is restored right after. Other C libraries ignore it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

#: What the forkserver imports once, so that each worker starts as a cheap fork of it.
WORKER_PRELOAD = ["radiomx.run.worker", "radiomics.featureextractor", "threadpoolctl"]

#: glibc tunable given to the workers (see the module docstring).
HUGE_PAGE_TUNABLE = "glibc.malloc.hugetlb=1"


def worker_preload() -> list[str]:
    """``WORKER_PRELOAD``, plus the CLI when it is what runs here.

    Why: each new worker first re-runs the caller's main script (multiprocessing's ``spawn.prepare``; the
    ``radiomx`` console script or ``radiomx.__main__``), which imports the CLI and Click: ~20 ms per worker before
    its first scan. Imported once in the forkserver, that costs the workers nothing. (multiprocessing's own
    ``"__main__"`` preload entry does not do this on Python 3.11: it looks for a preparation key that is never
    set.)"""
    return WORKER_PRELOAD + (["radiomx.cli"] if "radiomx.cli" in sys.modules else [])


def worker_tunables(current: str | None) -> str:
    """``GLIBC_TUNABLES`` for the workers: the user's own tunables kept, huge pages added unless they chose."""
    if not current:
        return HUGE_PAGE_TUNABLE
    if "glibc.malloc.hugetlb=" in current:
        return current
    return f"{current}:{HUGE_PAGE_TUNABLE}"


def start_local_workers() -> None:
    """Start the forkserver now, without waiting for it. Idempotent; on a run with nothing to compute it only costs
    an otherwise idle core's time."""
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(worker_preload())
    if not sys.platform.startswith("linux"):
        forkserver.ensure_running()
        return
    previous = os.environ.get("GLIBC_TUNABLES")
    os.environ["GLIBC_TUNABLES"] = worker_tunables(previous)
    try:
        forkserver.ensure_running()  # spawns the forkserver now, with this environment
    finally:
        if previous is None:
            del os.environ["GLIBC_TUNABLES"]
        else:
            os.environ["GLIBC_TUNABLES"] = previous
