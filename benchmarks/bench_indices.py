"""Benchmark: radiomx's lesion indices (SUV statistics, both IBSI peaks, MTV, TLG, centroid) and per-scan
indices (TMTV, Dmax over voxels) against the PyRadiomics call, per lesion, on the bench cohort (benchmarks/synth.py).

Why not ``make bench``: that runs ~15 minutes on a shared machine; the question here is only what the indices add
to a lesion's cost. In one process, threads pinned to 1 (as a worker), each lesion's indices and its PyRadiomics
call (radiomx's fast path, the FDG parameter file) are timed alternately, ``--repeats`` times, median kept.
Prints a Markdown table; ``python benchmarks/bench_indices.py --patients 3`` (``--smoke``: one tiny patient, once).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from bench_extract import smoke_argument  # noqa: E402

from radiomx.features.extractor import extract_input, lesion_inputs, prepare_image  # noqa: E402
from radiomx.features.indices import lesion_indices, scan_indices  # noqa: E402
from radiomx.features.lesions import split_lesions  # noqa: E402
from radiomx.params.paramset import default_params_root, resolve_params  # noqa: E402
from radiomx.run.worker import init_worker_process  # noqa: E402
from radiomx.tracers import get_tracer  # noqa: E402


def timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeats", type=int, default=3)
    smoke_argument(parser)
    args = parser.parse_args()
    if args.smoke:
        args.patients, args.repeats = 1, 1
    shape = synth.SMOKE_SHAPE_ZYX if args.smoke else synth.SHAPE_ZYX
    init_worker_process()  # one thread per library, as a pool worker
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"))
    rows, index_total, pyrad_total, scan_total = [], 0.0, 0.0, 0.0
    for patient in range(1, args.patients + 1):
        values, labels = synth.patient_volume(args.seed, patient, shape_zyx=shape, n_lesions=2 if args.smoke else None,
                                              radii_mm=(9.0, 7.0) if args.smoke else None)
        image, label_image = synth.to_image(values), synth.to_image(labels)
        label_image = sitk.Cast(label_image, sitk.sitkUInt8)
        lesion_map = split_lesions(label_image)
        prepared = prepare_image(params, image)
        scan_total += timed(lambda lm=lesion_map, im=image: scan_indices(im, lm.labels, lm.lesions), args.repeats)
        for lesion in lesion_map.lesions:
            item = lesion_inputs(params, prepared, lesion_map.labels, lesion)
            extract_input(params, item)  # warm the extractor once
            t_index = timed(lambda le=lesion, lm=lesion_map, im=image: lesion_indices(
                im, lm.labels, le, "SUVbw", params.indices.suv_peak), args.repeats)
            t_pyrad = timed(lambda le=lesion, lm=lesion_map, im=prepared: extract_input(
                params, lesion_inputs(params, im, lm.labels, le)), args.repeats)
            index_total, pyrad_total = index_total + t_index, pyrad_total + t_pyrad
            rows.append((f"P{patient:03d}", lesion.lesion_id, lesion.voxel_count, t_index, t_pyrad))
    print(f"params {params.tracer} {params.version}, grid {synth.SPACING_XYZ} mm, {len(rows)} lesions, "
          f"median of {args.repeats}\n")
    print("| patient | lesion | voxels | indices ms | PyRadiomics ms | indices / PyRadiomics |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for patient, lesion_id, voxels, t_index, t_pyrad in rows:
        print(f"| {patient} | {lesion_id} | {voxels} | {t_index * 1e3:.2f} | {t_pyrad * 1e3:.0f} | "
              f"{t_index / t_pyrad:.4f} |")
    print(f"\nall lesions: indices {index_total * 1e3:.1f} ms, PyRadiomics {pyrad_total * 1e3:.0f} ms, ratio "
          f"{index_total / pyrad_total:.4f}; per-scan TMTV + Dmax {scan_total * 1e3:.1f} ms over "
          f"{args.patients} scans")


if __name__ == "__main__":
    main()
