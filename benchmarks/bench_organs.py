"""Benchmark: what reading organ segmentations onto the PET grid, placing the reference VOIs and finding the lesion
sites costs, against the same scan's ``radiomx extract`` (Original features, shipped 18F-FDG parameter file).

The scan: a synthetic whole-body FDG PET (``benchmarks/synth.py``: 200 x 200 x 300 voxels of 4.07 x 4.07 x 3.27 mm,
its lesions), with organ masks on a CT grid as a PET/CT's CT and TotalSegmentator give them: 512 x 512 x 327 voxels
of 0.977 x 0.977 x 3 mm, one uint8 file per class, 117 classes (the organs of ``tests/organ_phantom.py`` plus
small boxes for the other TotalSegmentator v2 classes), or one multilabel file with TotalSegmentator's NIfTI label
extension (``--ml``), whose table, as TotalSegmentator's, also names classes the patient lacks (5 here).

Timed, alternately, ``--repeats`` times (median kept):

* extract: ``radiomx extract COHORT -o OUT -j 1`` as a subprocess on a fresh OUT (the scan as a user extracts it;
  its CPU time from ``os.wait4``, its peak resident memory polled),
  without organs, then the same scan with its organs beside the image in each form (``organs.nii.gz``, ``organs/``):
  what the organs add to a user's extraction (regions, sites, their columns), end to end;
* in this process with threads pinned to 1 as in a worker, the organ step alone: regions:
  ``read_organs`` of the classes the five reference regions need + ``derived_regions``; regions + sites: the
  worker's own call (``scan_regions``: the site classes and the regions' classes) + ``lesion_sites`` +
  ``site_burden``.

The PET is in memory already when a worker would do this, so its reading is not part of the organ step. The
machine's load average is printed beside the figures. ``--smoke`` runs the same code on a small grid and few
classes in seconds (``tests/test_benchmarks_organs.py``). Results: ``benchmarks/RESULTS-organs.md``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import synth  # noqa: E402
from bench_extract import PeakRss  # noqa: E402

from radiomx.features.lesion_sites import (  # noqa: E402
    SITE_CLASSES,  # noqa: E402
    lesion_masks,
    lesion_sites,
    site_burden,
)
from radiomx.features.lesions import split_lesions  # noqa: E402
from radiomx.features.organ_references import (  # noqa: E402
    DERIVED_REGIONS,
    REGION_CLASSES,
    derived_regions,
    scan_regions,
)
from radiomx.inputs.organ_names import CLASS_KINDS  # noqa: E402
from radiomx.inputs.organs import read_organs  # noqa: E402
from radiomx.records import OrganSource  # noqa: E402
from radiomx.run.worker import init_worker_process  # noqa: E402
from tests import organ_phantom as ph  # noqa: E402

#: TotalSegmentator v2 ``total`` has 117 classes; the phantom draws 22, the rest are small boxes.
TOTAL_V2_CLASSES = 117
FULL = {"pet_shape": (300, 200, 200), "ct_size": (512, 512, 327), "ct_spacing": (0.977, 0.977, 3.0), "classes": 117}
SMOKE = {"pet_shape": (130, 80, 80), "ct_size": (200, 200, 90), "ct_spacing": (1.8, 1.8, 5.0), "classes": 30}


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def organ_masks(ct: sitk.Image, classes: int) -> dict[str, np.ndarray]:
    """The phantom's organs plus small boxes for other classes, up to ``classes`` masks on ``ct``'s grid."""
    masks = ph.organ_masks(ct)
    fillers = [name for name in sorted(CLASS_KINDS) if name not in masks and CLASS_KINDS[name] not in ("tissue",)]
    shape = ct.GetSize()[::-1]
    for k, name in enumerate(fillers[: max(0, classes - len(masks))]):
        centre = np.array([-120.0 + 30.0 * (k % 9), -90.0 + 30.0 * ((k // 9) % 7), -220.0 + 25.0 * (k // 63)])
        found = ph.rasterize(ct, (centre - 10, centre + 10), lambda p, c=centre: ph.box(p, c - 9, c + 9))
        mask = np.zeros(shape, dtype=bool)
        if found is not None:
            mask[found[0]] = found[1]
        masks[name] = mask
    return masks


def build(root: Path, settings: dict, seed: int) -> tuple[Path, sitk.Image, dict[str, OrganSource]]:
    """The cohort (one FDG scan), its PET in memory, and its organs in both forms."""
    values, labels = synth.patient_volume(seed, 1, shape_zyx=settings["pet_shape"],
                                          n_lesions=None if settings is FULL else 3)
    origin = (-(settings["pet_shape"][2] - 1) * synth.SPACING_XYZ[0] / 2,
              -(settings["pet_shape"][1] - 1) * synth.SPACING_XYZ[1] / 2, ph.PET_ORIGIN[2])
    pet, mask = synth.to_image(values), synth.to_image(labels)
    for image in (pet, mask):
        image.SetOrigin(origin)
    folder = root / "cohort" / "P001" / "FDG"
    folder.mkdir(parents=True)
    sitk.WriteImage(pet, str(folder / "pet.nii.gz"), True)
    sitk.WriteImage(mask, str(folder / "mask.nii.gz"), True)
    (root / "cohort" / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    size, spacing = settings["ct_size"], settings["ct_spacing"]
    ct_origin = (-(size[0] - 1) * spacing[0] / 2, -(size[1] - 1) * spacing[1] / 2, ph.PET_ORIGIN[2] - 20.0)
    ct = ph.grid_image(size, spacing, ct_origin)
    phantom = ph.Phantom(pet, {}, ct, organ_masks(ct, settings["classes"]))
    labels_of = {name: k for k, name in enumerate(sorted(phantom.organs), start=1)}
    organs_dir = ph.write_folder(phantom, root / "organs")
    multilabel = root / "organs.nii.gz"
    plain = root / "plain.nii"
    sitk.WriteImage(ph.as_image(ph.label_map(phantom, labels_of), ct), str(plain), False)
    # TotalSegmentator's --ml table lists every class of its task, also those the patient lacks: name 5 such classes
    absent = [name for name in sorted(CLASS_KINDS) if name not in labels_of][:5]
    table = {**labels_of, **{name: len(labels_of) + k for k, name in enumerate(absent, start=1)}}
    raw = ph.with_nifti_extension(plain.read_bytes(), ph.caret_xml(table))
    plain.unlink()
    with gzip.open(multilabel, "wb", compresslevel=6) as out:  # as nibabel writes .nii.gz (TotalSegmentator saves so)
        out.write(raw)
    return root / "cohort", pet, {"per-class folder": OrganSource("folder", organs_dir),
                                  "multilabel (--ml)": OrganSource("labels", multilabel)}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def extract_once(cohort: Path, out: Path, cpu: list[float] | None = None, rss: list[float] | None = None) -> float:
    """Wall seconds of one ``radiomx extract``; its CPU seconds (user + system, which the machine's load disturbs
    far less than the wall time, from the kernel's account of that one process, ``os.wait4``) appended to ``cpu``
    and its peak resident memory (MiB, polled every 20 ms as ``bench_extract.py`` polls; ``ru_maxrss`` would count
    this process's own ~1 GB of organ masks, which the child holds between fork and exec) to ``rss``."""
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "radiomx", "extract", str(cohort), "-o", str(out), "-j", "1"],
                                   stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peak = PeakRss(process.pid, 0.02)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        peak.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"radiomx extract failed ({process.returncode}): {errors.read()[-2000:]}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    if rss is not None:
        rss.append(peak.main / 2**20)
    return elapsed


def organ_step(source: OrganSource, pet: sitk.Image, split, sites: bool) -> dict:
    lesions = lesion_masks(split.layers, split.lesions)
    if not sites:
        organs = read_organs(source, pet, sorted({name for names in REGION_CLASSES.values() for name in names}))
        return derived_regions(pet, organs, lesions)[0]
    organs, regions = scan_regions(source, pet, DERIVED_REGIONS, split, SITE_CLASSES)
    site_burden(pet, lesions, lesion_sites(organs, lesions))
    return regions


def with_organs(cohort: Path, source: OrganSource, name: str) -> Path:
    """A copy of the cohort (hard links) whose scan has ``source`` beside its image as ``name``."""
    copy = cohort.with_name(f"{cohort.name}-{name.replace('.', '-')}")
    shutil.copytree(cohort, copy, copy_function=os.link)
    target = copy / "P001" / "FDG" / name
    if source.path.is_dir():
        shutil.copytree(source.path, target, copy_function=os.link)
    else:
        os.link(source.path, target)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small grids, few classes, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    settings = SMOKE if args.smoke else FULL
    repeats = 1 if args.smoke else args.repeats
    work = Path(tempfile.mkdtemp(dir=args.workdir, prefix="bench-organs-"))
    try:
        print(f"building the scan and its organs ({load()}) ...", file=sys.stderr)
        cohort, pet, sources = build(work, settings, args.seed)
        init_worker_process()
        split = split_lesions(sitk.Cast(sitk.ReadImage(str(cohort / "P001" / "FDG" / "mask.nii.gz")), sitk.sitkUInt8))
        placed = organ_step(sources["per-class folder"], pet, split, sites=False)  # warm-up, and a check
        missing = [name for name, region in placed.items() if region.mask is None]
        cohorts = {"extract": cohort,
                   "extract with organs: multilabel (--ml)": with_organs(cohort, sources["multilabel (--ml)"],
                                                                        "organs.nii.gz"),
                   "extract with organs: per-class folder": with_organs(cohort, sources["per-class folder"],
                                                                       "organs")}
        for leg in cohorts.values():
            extract_once(leg, work / "out")  # warm-up: page cache, byte-compiled modules
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        rss: dict[str, list[float]] = {}
        before = load()
        for _ in range(repeats):
            for label, leg in cohorts.items():
                times.setdefault(label, []).append(extract_once(leg, work / "out", cpu.setdefault(label, []),
                                                                rss.setdefault(label, [])))
            for form, source in sources.items():
                for sites in (False, True):
                    label = f"organs: {form}, {'regions + sites' if sites else 'regions'}"
                    times.setdefault(label, []).append(timed(lambda s=source, w=sites: organ_step(s, pet, split, w)))
        after = load()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times["extract"])
    size = settings["ct_size"]
    print(f"PET {settings['pet_shape'][::-1]} voxels, {len(split.lesions)} lesions; organs on a CT grid {size} of "
          f"{settings['ct_spacing']} mm, {settings['classes']} classes; median of {repeats}; {before} (before), "
          f"{after} (after); regions not placed: {missing or 'none'}\n")
    base_cpu = statistics.median(cpu["extract"])
    print("| step | seconds | vs extract | CPU seconds | CPU vs extract | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| radiomx extract (one scan, -j 1, Original features, 18F-FDG) | {base:.2f} | 1.00 | {base_cpu:.2f} "
          f"| 1.00 | {statistics.median(rss['extract']):.0f} |")
    for label, values in times.items():
        if label == "extract":
            continue
        seconds = statistics.median(values)
        if label.startswith("extract"):
            used = statistics.median(cpu[label])
            print(f"| {label} | {seconds:.2f} | {(seconds - base) / base:+.1%} | {used:.2f} | "
                  f"{(used - base_cpu) / base_cpu:+.1%} | {statistics.median(rss[label]):.0f} |")
        else:
            print(f"| {label} | {seconds:.2f} | +{seconds / base:.1%} | | | |")


if __name__ == "__main__":
    main()
