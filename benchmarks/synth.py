"""A deterministic synthetic whole-body FDG PET cohort for benchmarks (not the demo's: bigger grid, more lesions).

Realistic to the pipeline: a 200 x 200 x 300 grid of 4.07 x 4.07 x 3.27 mm (a common PET reconstruction,
81 x 81 x 98 cm), SUV-scaled values (body ~0.6, liver ~2.2, kidneys, bladder ~18, lesions peaking at 5-14 SUV),
~7 mm FWHM smoothing and multiplicative noise, 1-15 ellipsoidal lesions of 1-5 cm diameter per patient, some
near the body's edge. The same seed gives the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE_ZYX = (300, 200, 200)
SPACING_XYZ = (4.07283, 4.07283, 3.27)
ORIGIN_XYZ = (-407.28, -407.28, -980.0)


def _axes(shape_zyx, spacing_xyz):
    sz, sy, sx = spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]
    return (np.arange(shape_zyx[0], dtype=np.float32)[:, None, None] * sz,
            np.arange(shape_zyx[1], dtype=np.float32)[None, :, None] * sy,
            np.arange(shape_zyx[2], dtype=np.float32)[None, None, :] * sx)


def _ellipsoid(z, y, x, centre, radii) -> np.ndarray:
    dz, dy, dx = (z - centre[0]) / radii[0], (y - centre[1]) / radii[1], (x - centre[2]) / radii[2]
    return dz**2 + dy**2 + dx**2 <= 1


def patient_volume(seed: int, patient: int, shape_zyx=SHAPE_ZYX, spacing_xyz=SPACING_XYZ,
                   n_lesions: int | None = None, radii_mm: tuple[float, ...] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(SUV image, label map) as (z, y, x) arrays; lesion radii 5-25 mm unless ``radii_mm`` is given."""
    rng = np.random.default_rng([seed, patient])
    z, y, x = _axes(shape_zyx, spacing_xyz)
    extent = np.array(shape_zyx, dtype=float) * np.array(spacing_xyz[::-1])
    centre = extent / 2
    body_r = (extent[0] * 0.47, extent[1] * 0.30, extent[2] * 0.42)
    suv = np.where(_ellipsoid(z, y, x, centre, body_r), 0.6, 0.02).astype(np.float32)
    organs = [((0.60, 0.45, 0.38), (0.09, 0.15, 0.18), 2.2), ((0.62, 0.48, 0.66), (0.05, 0.09, 0.07), 1.8),
              ((0.52, 0.58, 0.40), (0.05, 0.06, 0.05), 2.5), ((0.52, 0.58, 0.60), (0.05, 0.06, 0.05), 2.5),
              ((0.12, 0.50, 0.50), (0.03, 0.07, 0.08), 18.0), ((0.93, 0.50, 0.50), (0.04, 0.09, 0.08), 7.0)]
    for rel_c, rel_r, uptake in organs:
        suv[_ellipsoid(z, y, x, extent * rel_c, extent * rel_r)] = uptake
    count = int(rng.integers(1, 16)) if n_lesions is None else n_lesions
    labels = np.zeros(shape_zyx, dtype=np.uint8)
    placed: list[tuple[np.ndarray, float]] = []
    attempts = 0
    while len(placed) < count and attempts < 10_000:
        attempts += 1
        radius = float(radii_mm[len(placed)] if radii_mm else rng.uniform(5.0, 25.0))
        c = centre + (rng.uniform(-1, 1, 3) * (np.array(body_r) - radius - 5))
        if not _ellipsoid(c[0], c[1], c[2], centre, body_r):
            continue
        if any(np.linalg.norm(c - other) < radius + r + 6 for other, r in placed):
            continue
        placed.append((c, radius))
    for label, (c, radius) in enumerate(placed, start=1):
        radii = (radius, radius * rng.uniform(0.8, 1.0), radius * rng.uniform(0.9, 1.15))
        inside = _ellipsoid(z, y, x, c, radii)
        dist = np.sqrt(((z - c[0]) / radii[0]) ** 2 + ((y - c[1]) / radii[1]) ** 2 + ((x - c[2]) / radii[2]) ** 2)
        peak = rng.uniform(5.0, 14.0)
        suv = np.where(inside, np.maximum(suv, peak * (1.0 - 0.6 * np.clip(dist, 0, 1) ** 2)), suv)
        labels[inside] = label
    image = sitk.GetImageFromArray(suv)
    image.SetSpacing(spacing_xyz)
    image = sitk.SmoothingRecursiveGaussian(image, 3.0)
    values = sitk.GetArrayFromImage(image)
    values *= rng.normal(1.0, 0.08, size=values.shape).astype(np.float32)
    return np.clip(values, 0.0, None).astype(np.float32), labels


def to_image(array: np.ndarray, spacing_xyz=SPACING_XYZ) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(ORIGIN_XYZ)
    return image


#: ``--smoke`` runs of the benchmarks: the same code on a grid small enough to run in seconds (lesions still fit).
SMOKE_SHAPE_ZYX = (60, 48, 48)


def write_cohort(directory: Path, patients: int = 10, seed: int = 2024, shape_zyx=SHAPE_ZYX
                 ) -> list[tuple[str, Path, Path, int]]:
    """``<dir>/P001/FDG/{pet,mask}.nii.gz`` ... plus radiomx.toml; returns (patient, image, mask, n_lesions)."""
    out = []
    small = shape_zyx != SHAPE_ZYX
    for p in range(1, patients + 1):
        folder = directory / f"P{p:03d}" / "FDG"
        folder.mkdir(parents=True, exist_ok=True)
        image, labels = patient_volume(seed, p, shape_zyx=shape_zyx, n_lesions=2 if small else None,
                                       radii_mm=(9.0, 7.0) if small else None)
        sitk.WriteImage(to_image(image), str(folder / "pet.nii.gz"), useCompression=True)
        sitk.WriteImage(to_image(labels), str(folder / "mask.nii.gz"), useCompression=True)
        out.append((f"P{p:03d}", folder / "pet.nii.gz", folder / "mask.nii.gz", int(labels.max())))
    (directory / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    return out


def cached_cohort(directory: Path, patients: int, seed: int, shape_zyx=SHAPE_ZYX) -> Path:
    """``write_cohort`` once per (patients, seed, grid): a marker file says the folder holds exactly that cohort."""
    marker = directory / f".done-{patients}-{seed}" if shape_zyx == SHAPE_ZYX else (
        directory / f".done-{patients}-{seed}-{'x'.join(map(str, shape_zyx))}")
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        write_cohort(directory, patients, seed, shape_zyx)
        marker.write_text("")
    return directory


def linked_cohort(directory: Path, source: Path, patients: int) -> Path:
    """A cohort of ``patients`` patients made of the ``source`` cohort's scans, hard-linked in turn under new patient
    IDs (``P001``..): a 200-scan cohort without 200 distinct 41 MB files to generate and hold in the page cache.
    Every scan is still read, hashed and computed as its own; only the bytes repeat."""
    scans = sorted(p for p in source.glob("P*/FDG") if p.is_dir())
    marker = directory / f".linked-{patients}-{len(scans)}"
    if marker.exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    for p in range(patients):
        folder = directory / f"P{p + 1:03d}" / "FDG"
        folder.mkdir(parents=True)
        for name in ("pet.nii.gz", "mask.nii.gz"):
            (folder / name).hardlink_to(scans[p % len(scans)] / name)
    shutil.copyfile(source / "radiomx.toml", directory / "radiomx.toml")
    marker.write_text("")
    return directory
