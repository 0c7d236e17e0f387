"""A small, deterministic, synthetic PET cohort in the default layout (used by ``make demo`` and tests).

Why synthetic: real PET is patient data. These volumes look like whole-body PET to the pipeline (a 4 mm grid over
a 40 x 40 x 72 cm field of view, SUV-scaled values, liver, spleen, kidneys and bladder uptake, lesions of
1-4 cm), so every stage (loading, lesion split, binning in SUV, Parquet) runs on realistic sizes and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE_ZYX = (180, 100, 100)
SPACING_MM = (4.0, 4.0, 4.0)

#: Organ uptake (SUVbw) per tracer: FDG liver ~2, brain/bladder hot; pentixafor (CXCR4) spleen and marrow hot,
#: liver low; both renally excreted into the bladder.
UPTAKE = {
    "18F-FDG": {"body": 0.6, "liver": 2.2, "spleen": 1.8, "kidney": 2.5, "bladder": 18.0, "lesion": (5.0, 14.0)},
    "68Ga-pentixafor": {"body": 0.4, "liver": 1.4, "spleen": 5.5, "kidney": 4.0, "bladder": 25.0,
                        "lesion": (4.0, 12.0)},
}


@dataclass(frozen=True)
class DemoScan:
    patient_id: str
    tracer: str
    image: Path
    mask: Path
    n_lesions: int


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) * s for n, s in zip(SHAPE_ZYX, SPACING_MM, strict=False)),
                          indexing="ij")
    return z, y, x


def _ellipsoid(z, y, x, centre_mm, radii_mm) -> np.ndarray:
    cz, cy, cx = centre_mm
    rz, ry, rx = radii_mm
    return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _lesion_sites(rng: np.random.Generator, body, z, y, x, count: int) -> list[tuple[tuple, float]]:
    """Lesion centres (mm) inside the body, away from the bladder, with radii of 5-20 mm."""
    sites = []
    while len(sites) < count:
        centre = (rng.uniform(150, 620), rng.uniform(120, 280), rng.uniform(100, 300))
        radius = float(rng.uniform(5.0, 20.0))
        idx = tuple(int(c / s) for c, s in zip(centre, SPACING_MM, strict=False))
        if body[idx] and all(np.linalg.norm(np.subtract(centre, c)) > r + radius + 8 for c, r in sites):
            sites.append((centre, radius))
    return sites


def _volume(tracer: str, sites, rng: np.random.Generator, z, y, x, body) -> tuple[np.ndarray, np.ndarray]:
    u = UPTAKE[tracer]
    suv = np.where(body, u["body"], 0.0).astype(np.float32)
    organs = {
        "liver": ((470, 170, 140), (70, 60, 80)),
        "spleen": ((480, 190, 270), (45, 35, 30)),
        "kidney": ((400, 230, 150), (45, 25, 22)),
        "bladder": ((90, 190, 200), (25, 30, 35)),
    }
    for organ, (centre, radii) in organs.items():
        suv[_ellipsoid(z, y, x, centre, radii)] = u[organ]
    mask = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    lo, hi = u["lesion"]
    for label, (centre, radius) in enumerate(sites, start=1):
        inside = _ellipsoid(z, y, x, centre, (radius, radius * 0.9, radius * 1.1))
        dist = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) / radius
        peak = rng.uniform(lo, hi)
        suv = np.where(inside, np.maximum(suv, peak * (1.0 - 0.6 * np.clip(dist, 0, 1) ** 2)), suv)
        mask[inside] = label
    image = sitk.GetImageFromArray(suv)
    image.SetSpacing(SPACING_MM)
    image = sitk.SmoothingRecursiveGaussian(image, 3.0)  # ~7 mm FWHM scanner resolution
    values = sitk.GetArrayFromImage(image)
    values *= rng.normal(1.0, 0.08, size=values.shape).astype(np.float32)
    return np.clip(values, 0.0, None).astype(np.float32), mask


def _write(array: np.ndarray, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin((-200.0, -200.0, -700.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def write_demo_cohort(directory: Path | str, patients: int = 3, seed: int = 7) -> list[DemoScan]:
    """Write ``patients`` patients x (68Ga-pentixafor, 18F-FDG) scans; the same seed gives the same bytes."""
    directory = Path(directory)
    z, y, x = _grid()
    body = _ellipsoid(z, y, x, (360, 200, 200), (340, 110, 170))
    scans = []
    for p in range(1, patients + 1):
        rng = np.random.default_rng([seed, p])
        sites = _lesion_sites(rng, body, z, y, x, int(rng.integers(2, 5)))
        for tracer in ("68Ga-pentixafor", "18F-FDG"):
            image, mask = _volume(tracer, sites, rng, z, y, x, body)
            folder = directory / f"P{p:03d}" / tracer
            _write(image, folder / "pet.nii.gz")
            _write(mask, folder / "mask.nii.gz")
            scans.append(DemoScan(f"P{p:03d}", tracer, folder / "pet.nii.gz", folder / "mask.nii.gz", len(sites)))
    (directory / "radiomx.toml").write_text(
        "# Demo images are written directly in SUVbw (no DICOM headers to convert from).\n"
        "[layout]\npet_units = \"SUVbw\"\n")
    return scans
