"""Shared fixtures: where ../shared/data is, and small builders of real cohorts on disk.

Tests that need ../shared/data skip with a reason on a user's clone, but fail under CI (CI=true): the reference
data must be there when it counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data; skip (or fail under CI) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found: the reference data in ../shared/data is not beside this clone"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: must not skip)")
        pytest.skip(message)
    return path


def write_volume(array: np.ndarray, path: Path, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)) -> Path:
    """Write a (z, y, x) numpy array as a real image file (format from the suffix)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def sphere_scan(shape=(24, 32, 32), centres=((12, 12, 12), (12, 20, 22)), radius=4, seed=0):
    """A small synthetic SUV-like image with one labelled sphere per centre (labels 1..n)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    image = rng.normal(1.0, 0.1, size=shape).astype(np.float32)
    mask = np.zeros(shape, dtype=np.uint8)
    for label, (cz, cy, cx) in enumerate(centres, start=1):
        inside = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
        image[inside] += rng.uniform(3.0, 8.0) + rng.normal(0, 0.5, size=int(inside.sum())).astype(np.float32)
        mask[inside] = label
    return image, mask


def make_cohort(root: Path, spec: dict[str, dict[str, int]], pet_units: bool = True, seed: int = 0) -> Path:
    """``make_cohort(tmp, {"P001": {"FDG": 2, "pentixafor": 1}})``: real NIfTI image + mask per scan, with the
    given number of spherical lesions, in the default layout; a radiomx.toml declares the images SUVbw."""
    root.mkdir(parents=True, exist_ok=True)
    for p_index, (patient, scans) in enumerate(sorted(spec.items())):
        for t_index, (tracer_folder, n_lesions) in enumerate(sorted(scans.items())):
            centres = [(12, 8 + 8 * (i % 3), 8 + 8 * (i // 3)) for i in range(n_lesions)]
            image, mask = sphere_scan(centres=centres, seed=seed + 31 * p_index + t_index)
            write_volume(image, root / patient / tracer_folder / "pet.nii.gz")
            write_volume(mask, root / patient / tracer_folder / "mask.nii.gz")
    if pet_units:
        (root / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    return root


def next_version_file(tree: Path, tracer: str) -> Path:
    """The file a new version of ``tracer`` goes in (``v<latest + 1>.yaml``): never a released file, whatever the
    shipped tree holds now."""
    from radiomx.params.paramset import available_versions

    return tree / tracer / f"v{int(available_versions(tree, tracer)[-1][1:]) + 1}.yaml"


@pytest.fixture
def small_cohort(tmp_path: Path) -> Path:
    return make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 1}})


def as_read_parquet(frame):
    """``radiomx.read_table``'s frame with its nullable ``Int64`` columns as ``pd.read_parquet`` gives them (int64;
    float64 when a null is in it), to compare it with a published file read the documented way."""
    plain = {c: "float64" if frame[c].isna().any() else "int64" for c in frame.columns
             if str(frame[c].dtype) == "Int64"}
    return frame.astype(plain)


@pytest.fixture
def extract_options(monkeypatch) -> dict:
    """What ``radiomx extract`` hands the library: ``radiomx.api.extract`` replaced by a recorder that stops the
    command once its ``ExtractOptions`` are built (``["options"]``), to compare CLI flags with Python arguments."""
    import radiomx.api

    seen: dict = {}

    def capture(cohort, out, options, only=None, progress=None):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr(radiomx.api, "extract", capture)
    return seen
