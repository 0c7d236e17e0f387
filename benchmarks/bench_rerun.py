"""How long does the nightly no-change rerun take on a 300-patient, two-tracer cohort?

The point is the discover + plan cost (stat every input, compare with scans.parquet, hash nothing), so volumes are
small. Usage: ``python benchmarks/bench_rerun.py [--patients 300] [--workdir DIR]``. Prints one markdown table.
``--smoke``: 3 patients, in a scratch folder.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_cohort(root: Path, patients: int) -> None:
    rng = np.random.default_rng(0)
    z, y, x = np.indices((24, 32, 32))
    for p in range(patients):
        for tracer in ("FDG", "pentixafor"):
            folder = root / f"P{p:04d}" / tracer
            folder.mkdir(parents=True, exist_ok=True)
            image = rng.normal(1.0, 0.1, (24, 32, 32)).astype(np.float32)
            mask = (((z - 12) ** 2 + (y - 16) ** 2 + (x - 16) ** 2) <= 16).astype(np.uint8)
            image[mask > 0] += 4.0
            for array, name in ((image, "pet.nii.gz"), (mask, "mask.nii.gz")):
                img = sitk.GetImageFromArray(array)
                img.SetSpacing((4.0, 4.0, 4.0))
                sitk.WriteImage(img, str(folder / name))
    (root / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="3 patients: the same code in seconds")
    args = parser.parse_args()
    if args.smoke:
        args.patients, args.workdir = 3, None
    work = args.workdir or Path(tempfile.mkdtemp(prefix="radiomx-rerun-"))
    try:
        measure(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    cohort, out = work / "cohort", work / "out"
    if not cohort.exists():
        write_cohort(cohort, args.patients)
    radiomx = [sys.executable, "-m", "radiomx", "extract", str(cohort), "-o", str(out), "--jobs", "2"]
    first = timed(radiomx) if not (out / "scans.parquet").exists() else float("nan")
    reruns = [timed(radiomx) for _ in range(1 if args.smoke else 3)]
    dry = timed([*radiomx, "--dry-run"])
    scans = args.patients * 2
    print(f"| cohort | first run (s) | no-change rerun (s), best of {len(reruns)} | dry-run plan (s) |")
    print("| --- | --- | --- | --- |")
    print(f"| {args.patients} patients x 2 tracers = {scans} scans | {first:.1f} | {min(reruns):.2f} | {dry:.2f} |")


if __name__ == "__main__":
    main()
