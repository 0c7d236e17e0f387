"""Tracer folder aliases resolve to canonical names; masks within the documented geometry tolerance are accepted
and take the image's geometry, beyond it they fail naming the property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import ScanError
from radiomx.inputs.imaging import align_mask
from radiomx.tracers import known_names, resolve_tracer

from .conftest import make_cohort


@pytest.mark.parametrize("folder, canonical", [
    ("pentixafor", "68Ga-pentixafor"), ("Ga68-Pentixafor", "68Ga-pentixafor"), ("CXCR4", "68Ga-pentixafor"),
    ("68Ga_pentixafor", "68Ga-pentixafor"), ("FDG", "18F-FDG"), ("18F-FDG", "18F-FDG"), ("18ffdg", "18F-FDG"),
    ("f18_fdg", "18F-FDG"), ("dotatate", "68Ga-DOTATATE"), ("Ga68-DOTATATE", "68Ga-DOTATATE"), ("ct", "CT"),
])
def test_aliases_resolve_to_the_canonical_tracer(folder, canonical):
    assert resolve_tracer(folder).name == canonical


def test_unknown_tracer_lists_the_known_names():
    with pytest.raises(ScanError) as info:
        resolve_tracer("FDG-2nd-try", "/c/P1/FDG-2nd-try")
    assert info.value.stage == "discover"
    for name in known_names():
        assert name in str(info.value)


def test_alias_folders_land_in_the_canonical_table(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"cxcr4": 1}, "P002": {"Ga68-Pentixafor": 1}})
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == 0, result.stderr
    table = pd.read_parquet(tmp_path / "out" / "features" / "68Ga-pentixafor.parquet")
    assert list(table["patient_id"]) == ["P001", "P002"] and set(table["tracer"]) == {"68Ga-pentixafor"}


def _pair(**mask_geometry):
    image = sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32))
    image.SetSpacing((4.0, 4.0, 3.27))
    image.SetOrigin((-100.0, -50.0, 20.0))
    mask = sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint32))
    mask.SetSpacing(mask_geometry.get("spacing", image.GetSpacing()))
    mask.SetOrigin(mask_geometry.get("origin", image.GetOrigin()))
    return image, mask


def test_float32_header_rounding_is_within_tolerance_and_mask_takes_image_geometry(tmp_path):
    image, mask = _pair(spacing=(4.0000001, 4.0, 3.2700002), origin=(-100.00001, -50.0, 20.000003))
    aligned = align_mask(image, mask, tmp_path / "pet.nii.gz", tmp_path / "mask.nii.gz")
    assert aligned.GetOrigin() == image.GetOrigin() and aligned.GetSpacing() == image.GetSpacing()


@pytest.mark.parametrize("geometry, fragment", [
    ({"origin": (-100.0, -50.0, 20.01)}, "mask origin"),  # 0.003 voxel: beyond 1e-3 of a voxel
    ({"spacing": (4.0, 4.0, 3.28)}, "mask spacing"),
])
def test_beyond_tolerance_fails_naming_the_property(tmp_path, geometry, fragment):
    image, mask = _pair(**geometry)
    with pytest.raises(ScanError, match=fragment) as info:
        align_mask(image, mask, tmp_path / "pet.nii.gz", tmp_path / "mask.nii.gz")
    assert info.value.stage == "geometry" and str(tmp_path / "mask.nii.gz") in str(info.value)
