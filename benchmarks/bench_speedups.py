"""Benchmark: what ``radiomx/features/speedups.py`` buys, per lesion, on the benchmark's Original-only settings.

Short (about a minute), in this process, one thread: the lesions of the first ``--patients`` patients of the
benchmark cohort (``synth.py``, seed 2024) are cut once (``crop.lesion_input``), then every lesion's PyRadiomics
call is timed with and without the two replacements, alternating A B A B, ``--reps`` pairs. Prints the median
per-lesion time of each and the ratio. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import synth  # noqa: E402
from bench_extract import CONFIGS  # noqa: E402

from radiomx.features import extractor  # noqa: E402
from radiomx.features.lesions import split_lesions  # noqa: E402
from radiomx.params.paramset import ParamSet  # noqa: E402
from radiomx.run.worker import init_worker_process  # noqa: E402


def lesion_jobs(patients: int, params: ParamSet) -> list:
    items = []
    for patient in range(1, patients + 1):
        image_arr, labels_arr = synth.patient_volume(2024, patient)
        image, labels = synth.to_image(image_arr), synth.to_image(labels_arr.astype(np.uint32))
        prepared = extractor.prepare_image(params, image)
        for lesion in split_lesions(labels).lesions:
            items.append(extractor.lesion_inputs(params, prepared, labels, lesion))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3, help="A B pairs")
    parser.add_argument("--config", default="original", choices=sorted(CONFIGS))
    args = parser.parse_args(argv)
    init_worker_process()  # this benchmark process is a worker: one thread, as the pool's
    config = CONFIGS[args.config]
    params = ParamSet("18F-FDG", "bench", Path("bench.yaml"), f"bench-{args.config}", "SUVbw", config)
    items = lesion_jobs(args.patients, params)
    with_speedups = extractor.pyradiomics_speedups
    for item in items:  # warm every cache (extractor per mode, feature names) before timing
        extractor.extract_input(params, item)
    times: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.reps):
        for name in ("with", "without"):
            extractor.pyradiomics_speedups = with_speedups if name == "with" else contextlib.nullcontext
            try:
                for item in items:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    extractor.extract_input(params, item)
                    times[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
            finally:
                extractor.pyradiomics_speedups = with_speedups
    a, b = statistics.median(times["with"]), statistics.median(times["without"])
    ca, cb = statistics.median(cpu["with"]), statistics.median(cpu["without"])
    print(f"{len(items)} lesions x {args.reps} reps, config {args.config}, load average {os.getloadavg()[0]:.2f}")
    print(f"median s/lesion with speedups {a:.4f}, without {b:.4f}, without/with {b / a:.3f}")
    print(f"median CPU s/lesion with speedups {ca:.4f}, without {cb:.4f}, without/with {cb / ca:.3f}")
    print(f"total s with {sum(times['with']):.2f}, without {sum(times['without']):.2f}; total CPU s with "
          f"{sum(cpu['with']):.2f}, without {sum(cpu['without']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
