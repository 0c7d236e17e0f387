"""Per-scan indices and inputs: Dmax over lesion voxels (exact against brute force), height from TSV files,
reference regions found in BIDS derivatives and inside DICOM RTSTRUCTs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from radiomx.cli import cli
from radiomx.discover.bids import height_m
from radiomx.discover.cohort import discover
from radiomx.features.indices import diameter_mm, lesion_points_mm, scan_indices
from radiomx.features.lesions import split_lesions

from .conftest import shared_data, write_volume
from .test_dicom_inputs import firstorder_params, rtstruct_with_squares, seg_on_dro


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def brute_dmax(labels: np.ndarray, image: sitk.Image) -> float:
    index = np.argwhere(labels > 0)
    points = np.array([image.TransformIndexToPhysicalPoint([int(i) for i in idx[::-1]]) for idx in index])
    # Every pair, a block of rows at a time: the whole pair matrix of a 14,000-voxel sphere is 4.7 GB.
    blocks = (((points[i:i + 256, None] - points[None]) ** 2).sum(-1).max() for i in range(0, len(points), 256))
    return float(np.sqrt(max(blocks)))


@st.composite
def label_maps(draw):
    shape = tuple(draw(st.integers(2, 7)) for _ in range(3))
    n = int(np.prod(shape))
    labels = np.asarray(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.uint8).reshape(shape)
    spacing = tuple(draw(st.floats(0.5, 5.0)) for _ in range(3))
    rotate = draw(st.booleans())
    return labels, spacing, rotate


@settings(max_examples=120, deadline=None)
@given(label_maps())
def test_dmax_voxel_is_exact_against_brute_force(case):
    labels, spacing, rotate = case
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing)
    image.SetOrigin((3.0, -7.0, 11.0))
    if rotate:  # an oblique grid: distances go through the direction cosines
        c, s = math.cos(0.3), math.sin(0.3)
        image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    lesion_map = split_lesions(image, "labels")
    found = scan_indices(image, lesion_map.labels, lesion_map.lesions)
    if len(lesion_map.lesions) < 2:
        assert math.isnan(found["dmax_voxel_mm"])
        return
    assert found["dmax_voxel_mm"] == pytest.approx(brute_dmax(labels, image), rel=1e-12)
    assert found["tmtv_ml"] == pytest.approx((labels > 0).sum() * np.prod(spacing) / 1000, rel=1e-12)


def test_hull_candidates_are_far_fewer_than_voxels():
    z, y, x = np.indices((32, 32, 32))
    labels = (((z - 16) ** 2 + (y - 16) ** 2 + (x - 16) ** 2) <= 12**2).astype(np.uint8)
    labels[2:5, 2:5, 2:5] = 2
    image = sitk.GetImageFromArray(labels)
    lesion_map = split_lesions(image, "labels")
    points = lesion_points_mm(image, lesion_map.labels, lesion_map.lesions)
    assert len(points) < 0.25 * (labels > 0).sum()
    assert diameter_mm(points) == pytest.approx(brute_dmax(labels, image), rel=1e-12)


@pytest.mark.parametrize("value, unit, expected", [
    ("175", "", 1.75), ("1.75", "", 1.75), ("175", "cm", 1.75), ("1.8", "m", 1.8), ("1750", "mm", 1.75),
    ("n/a", "", None), ("400", "", None), ("0.1", "", None), ("1.75", "cm", None),
])
def test_height_units(value, unit, expected):
    assert height_m(value, unit) == (pytest.approx(expected) if expected else None)


def _sphere_scan(folder: Path, stem: str, mask_name: str, liver_name: str) -> None:
    image = np.ones((16, 18, 20), dtype=np.float32)
    labels = np.zeros(image.shape, dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 1
    image[2:8, 2:8, 2:8] = 8.0
    liver = np.zeros(image.shape, dtype=np.uint8)
    liver[11:14, 11:15, 11:15] = 1
    image[11:14, 11:15, 11:15] = 2.0
    write_volume(image, folder / f"{stem}_pet.nii.gz")
    write_volume(labels, Path(mask_name))
    write_volume(liver, Path(liver_name))


def test_bids_reference_regions_and_height(tmp_path):
    root = tmp_path / "bids"
    pet = root / "sub-01" / "pet"
    derived = root / "derivatives" / "seg" / "sub-01" / "pet"
    _sphere_scan(pet, "sub-01_trc-FDG", str(derived / "sub-01_trc-FDG_desc-lesions_mask.nii.gz"),
                 str(derived / "sub-01_trc-FDG_desc-refliver_mask.nii.gz"))
    (pet / "sub-01_trc-FDG_pet.json").write_text('{"Units": "SUV"}')
    (root / "participants.tsv").write_text("participant_id\theight\nsub-01\t1.62\n")
    (root / "participants.json").write_text('{"height": {"Units": "m"}}')
    (scan,) = discover(root)
    assert scan.problem is None and scan.mask.name == "sub-01_trc-FDG_desc-lesions_mask.nii.gz"
    assert [r for r, _ in scan.references] == ["liver"] and scan.height_m == 1.62
    result = run("extract", root, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["ref_liver_suv_mean"] == 2.0 and state["height_m"] == 1.62
    assert state["ref_liver_file"] == "derivatives/seg/sub-01/pet/sub-01_trc-FDG_desc-refliver_mask.nii.gz"
    row = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet").iloc[0]
    assert row["suv_max_to_liver"] == 4.0


def test_two_files_for_one_region_are_a_discovery_problem(tmp_path):
    folder = tmp_path / "cohort" / "P001" / "FDG"
    _sphere_scan(folder, "x", str(folder / "mask.nii.gz"), str(folder / "ref-liver.nii.gz"))
    (folder / "x_pet.nii.gz").rename(folder / "pet.nii.gz")
    shutil.copy(folder / "ref-liver.nii.gz", folder / "ref-Liver.nrrd")
    (scan,) = discover(tmp_path / "cohort")
    assert scan.problem is not None and "several files for reference region liver" in scan.problem[2]


def test_rtstruct_ref_roi_is_a_reference_region_not_a_lesion(tmp_path):
    """A DICOM PET (IBSI SUV DRO) with an RTSTRUCT holding lesion ROI 4 and ROI 9 named ref-liver."""
    dro = shared_data("ibsi_suv_dro", "DRO", "DRO_0_0")
    folder = tmp_path / "cohort" / "P001" / "FDG"
    folder.mkdir(parents=True)
    shutil.copytree(dro / "PT", folder / "pet")
    rs = rtstruct_with_squares(dro / "RS" / "RS_dro_0_0.dcm", folder / "rs.dcm",
                               {4: [(298.0, 298.0, 338.0, 338.0)], 9: [(498.0, 498.0, 518.0, 518.0)]}, z_mm=40.0)
    ds = pydicom.dcmread(rs)
    next(r for r in ds.StructureSetROISequence if int(r.ROINumber) == 9).ROIName = "ref-liver"
    ds.save_as(rs)
    result = run("extract", tmp_path / "cohort", "-o", tmp_path / "out", "-j", "1", "--params-dir",
                 firstorder_params(tmp_path / "params"))  # one contoured slice: 2D ROIs allowed
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(rows["lesion_id"]) == [4]
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["ref_liver_voxels"] == 25 and state["ref_liver_file"] == "P001/FDG/rs.dcm [ref-liver]"
    assert state["ref_liver_suv_mean"] > 0
    assert rows.iloc[0]["suv_max_to_liver"] == pytest.approx(rows.iloc[0]["suv_max"] / state["ref_liver_suv_mean"])
    header = pydicom.dcmread(next((folder / "pet").glob("*.dcm")), stop_before_pixels=True)
    assert state["weight_kg"] == pytest.approx(float(header.PatientWeight))


def test_seg_ref_segment_is_a_reference_region_not_a_lesion(tmp_path):
    """A highdicom SEG on the DRO: segment 1 a lesion, segment 2 labelled ref-bloodpool."""
    dro = shared_data("ibsi_suv_dro", "DRO", "DRO_0_0")
    folder = tmp_path / "cohort" / "P001" / "FDG"
    folder.mkdir(parents=True)
    shutil.copytree(dro / "PT", folder / "pet")
    nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(dro / "mask" / "DRO_mask.nii.gz"))).astype(np.uint8)
    two = nifti.copy()
    two[:10][nifti[:10] > 0] = 2
    seg = seg_on_dro(folder / "seg.dcm", folder / "pet", two)
    ds = pydicom.dcmread(seg)
    ds.SegmentSequence[1].SegmentLabel = "ref-bloodpool"
    ds.save_as(seg)
    result = run("extract", tmp_path / "cohort", "-o", tmp_path / "out", "-j", "1", "--params-dir",
                 firstorder_params(tmp_path / "params"))
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(rows["lesion_id"]) == [1] and rows.iloc[0]["voxel_count"] == int((two == 1).sum())
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["ref_bloodpool_voxels"] == int((two == 2).sum())
    assert state["ref_bloodpool_file"] == "P001/FDG/seg.dcm [ref-bloodpool]"


def test_a_state_table_from_before_the_index_columns_still_reads(small_cohort, tmp_path):
    """OUT folders written by radiomx before these columns existed: read with nulls, then recomputed (the logic
    version changed), never refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from radiomx.columns import SCANS

    SCANS_ADDED = set(SCANS.added)

    out = tmp_path / "out"
    assert run("extract", small_cohort, "-o", out, "-j", "1").exit_code == 0
    old = pq.read_table(out / "scans.parquet").drop_columns(sorted(SCANS_ADDED))
    old = old.set_column(old.schema.get_field_index("work_key"), "work_key",
                         pa.array(["older logic"] * len(old)))  # as written by the previous logic version
    pq.write_table(old, out / "scans.parquet")
    assert "changed" in run("extract", small_cohort, "-o", out, "--dry-run").stdout  # read, not refused
    result = run("extract", small_cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert "3 scans computed" in result.stderr
    assert set(SCANS_ADDED) <= set(pd.read_parquet(out / "scans.parquet").columns)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_diameter_in_small_chunks_is_the_brute_force(n, pairs_per_chunk, seed):
    points = np.random.default_rng(seed).normal(size=(n, 3)) * 50
    brute = float(np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).max())
    assert diameter_mm(points, pairs_per_chunk) == pytest.approx(brute, rel=1e-12)
