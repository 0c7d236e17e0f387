"""Control for the 1 -> 2 worker figure: how well does *this machine* scale a perfectly parallel CPU-bound numpy
loop (GLCM's hot spot, ``numpy.linalg.eigvals``) from 1 to 2 processes, BLAS pinned to one thread each?

If the machine itself gives ~1.6x (shared physical cores behind the vCPUs, memory bandwidth, neighbours), no
scheduler can give radiomx 1.8x on it. Usage: ``python benchmarks/bench_machine_scaling.py [--reps 3]``
(``--smoke``: two small tasks, once).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

#: Eigenvalue problems per task (``--smoke``: 1).
LOOPS = 30


def unit_of_work(seed: int, loops: int | None = None) -> float:
    threadpool_limits(1)
    matrix = np.random.default_rng(seed).random((300, 300))
    start = time.perf_counter()
    for _ in range(loops or LOOPS):
        np.linalg.eigvals(matrix)
    return time.perf_counter() - start


def smoke_task(seed: int) -> float:
    return unit_of_work(seed, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="two one-loop tasks, once: the same code in seconds")
    args = parser.parse_args()
    task = smoke_task if args.smoke else unit_of_work
    if args.smoke:
        args.reps, args.tasks = 1, 2
    ratios = []
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(task, range(2))  # warm both workers
        for _ in range(args.reps):
            start = time.perf_counter()
            for i in range(args.tasks):
                task(i)
            serial = time.perf_counter() - start
            start = time.perf_counter()
            pool.map(task, range(args.tasks), chunksize=1)
            parallel = time.perf_counter() - start
            ratios.append(serial / parallel)
            print(f"1 process {serial:.2f} s, 2 processes {parallel:.2f} s: {serial / parallel:.2f}x")
    print(f"best 1 -> 2 process scaling of a perfectly parallel numpy loop on this machine: {max(ratios):.2f}x")


if __name__ == "__main__":
    main()
