"""PET/CT lesion indices, reference regions and per-scan indices through the real ``radiomx extract`` CLI, on
synthetic images whose answers are known exactly (docs/lesions-and-indices.md has the definitions)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.features.peak import IBSI_PEAK_RADIUS_MM
from radiomx.features.references import REGIONS
from radiomx.store.tables import REFERENCE_REGIONS

from .conftest import write_volume

SPACING = (2.0, 3.0, 4.0)  # x, y, z mm: anisotropic, so axis mix-ups show
ORIGIN = (-10.0, 20.0, 5.0)
VOXEL_ML = 2.0 * 3.0 * 4.0 / 1000.0
SHAPE = (16, 20, 24)  # z, y, x


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SUV image, lesion labels, liver mask): background 1; lesion 1 a 3x4x5 cube holding 2..12 SUV (x and y
    ramps); lesion 2 a 'sphere' of value 6 with a single hot voxel 9; liver of 2 and 3 in equal parts (mean 2.5,
    SD 0.5)."""
    image = np.ones(SHAPE, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    image[2:5, 3:7, 4:9] = np.arange(2, 7, dtype=np.float32)[None, None, :] + np.arange(4)[None, :, None] * 2
    labels[2:5, 3:7, 4:9] = 1
    z, y, x = np.indices(SHAPE)
    ball = (z - 10) ** 2 + (y - 12) ** 2 + (x - 16) ** 2 <= 4
    image[ball] = 6.0
    image[10, 12, 16] = 9.0
    labels[ball] = 2
    liver = np.zeros(SHAPE, dtype=np.uint8)
    liver[12:14, 2:6, 2:6] = 1
    image[12, 2:6, 2:6] = 2.0
    image[13, 2:6, 2:6] = 3.0
    return image, labels, liver


def write(array: np.ndarray, path: Path) -> Path:
    return write_volume(array, path, spacing=SPACING, origin=ORIGIN)


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    image, labels, liver = phantom()
    folder = tmp_path / "cohort" / "P001" / "FDG"
    write(image, folder / "pet.nii.gz")
    write(labels, folder / "mask.nii.gz")
    write(liver, folder / "ref-liver.nii.gz")
    (tmp_path / "cohort" / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    (tmp_path / "cohort" / "participants.tsv").write_text("participant_id\theight\tbody_weight\nP001\t175\t70\n")
    return tmp_path / "cohort"


def brute_peak(image: np.ndarray, mask: np.ndarray, centres: np.ndarray) -> float:
    """Highest mean over in-image voxels within r of each centre (IBSI 1 9ST6), from physical coordinates."""
    spacing_zyx = np.array(SPACING[::-1])
    grid = np.indices(image.shape).reshape(3, -1).T * spacing_zyx
    flat = image.reshape(-1).astype(np.float64)
    best = -math.inf
    for centre in centres:
        near = np.sqrt(((grid - centre * spacing_zyx) ** 2).sum(axis=1)) <= IBSI_PEAK_RADIUS_MM
        best = max(best, flat[near].mean())
    return best


def test_lesion_indices_are_exact(cohort, tmp_path):
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet").set_index("lesion_id")
    image, labels, _ = phantom()
    for lesion_id in (1, 2):
        inside = labels == lesion_id
        values = image[inside].astype(np.float64)
        row = rows.loc[lesion_id]
        assert row["suv_max"] == values.max()
        assert row["suv_mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert row["suv_sd"] == pytest.approx(values.std(ddof=0), rel=1e-12)
        assert row["voxel_count"] == inside.sum()
        assert row["mtv_ml"] == pytest.approx(inside.sum() * VOXEL_ML, rel=1e-12)
        assert row["tlg"] == pytest.approx(values.mean() * inside.sum() * VOXEL_ML, rel=1e-12)
        centre = np.argwhere(inside).mean(axis=0)  # z, y, x
        expected = np.array(ORIGIN) + centre[::-1] * np.array(SPACING)
        assert (row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]) == pytest.approx(tuple(expected))
        hottest = np.argwhere(inside & (image == values.max()))
        assert row["suv_peak_local"] == pytest.approx(brute_peak(image, inside, hottest), rel=1e-12)
        assert row["suv_peak_global"] == pytest.approx(brute_peak(image, inside, np.argwhere(inside)), rel=1e-12)
        # The shipped FDG v2 file chooses the IBSI global peak.
        assert row["suv_peak_definition"] == "ibsi-global" and row["suv_peak"] == row["suv_peak_global"]
        # 2 x 3 x 4 mm grid: 41 offsets (2i, 3j, 4k) with length <= 6.2035 mm (counted by hand-written loops).
        assert row["suv_peak_sphere_voxels"] == 41
        assert row["voi_method"] == "none" and math.isnan(row["voi_threshold_suv"])
    assert rows.loc[1, "suv_max"] == 12.0 and rows.loc[2, "suv_max"] == 9.0
    assert rows.loc[1, "mtv_ml"] == pytest.approx(60 * VOXEL_ML)


def test_reference_ratios_and_state_are_exact(cohort, tmp_path):
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet").set_index("lesion_id")
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["ref_liver_suv_mean"] == 2.5 and state["ref_liver_suv_sd"] == 0.5
    assert state["ref_liver_voxels"] == 32 and state["ref_liver_file"] == "P001/FDG/ref-liver.nii.gz"
    assert state["ref_bloodpool_file"] == "" and pd.isna(state["ref_bloodpool_suv_mean"])
    assert pd.isna(state["ref_marrow_voxels"])
    assert rows.loc[1, "suv_max_to_liver"] == 12.0 / 2.5
    assert rows.loc[2, "suv_peak_to_liver"] == pytest.approx(rows.loc[2, "suv_peak"] / 2.5, rel=1e-15)
    assert rows["suv_max_to_bloodpool"].isna().all() and rows["suv_max_to_marrow"].isna().all()
    assert set(rows["ref_missing"]) == {"bloodpool,adrenal_contralateral,marrow,spleen"}
    # Height from participants.tsv in cm (no participants.json unit: 175 can only be cm); weight likewise.
    assert state["height_m"] == 1.75 and state["weight_kg"] == 70.0
    assert state["status"] == "ok"
    # TMTV: lesion voxels counted once; Dmax over lesion voxel centres, by brute force.
    image, labels, _ = phantom()
    assert state["tmtv_ml"] == pytest.approx((labels > 0).sum() * VOXEL_ML)
    points = np.argwhere(labels > 0)[:, ::-1] * np.array(SPACING)
    assert state["dmax_voxel_mm"] == pytest.approx(
        np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).max(), rel=1e-12)


def test_implausible_liver_is_a_warning_row_not_a_failure(cohort, tmp_path):
    image, _, liver = phantom()
    image[liver > 0] = 4.5  # above the FDG v2 range 1.3-3.0 (EANM)
    write(image, cohort / "P001" / "FDG" / "pet.nii.gz")
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert ("radiomx: WARNING P001/18F-FDG [reference] P001/FDG/ref-liver.nii.gz: reference region liver: SUVmean 4.5"
            in result.stderr)
    assert "0 with failures" in result.stderr
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert list(failures["stage"]) == ["reference"]
    assert failures.iloc[0]["file"] == "P001/FDG/ref-liver.nii.gz"
    assert "SUVmean 4.5 is outside the plausible 1.3-3 for 18F-FDG" in failures.iloc[0]["message"]
    assert list(failures["severity"]) == ["warning"]  # a reader of the table can tell it from a failure
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["status"] == "ok" and state["n_failed"] == 0
    assert len(pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")) == 2
    status = run("status", cohort, "-o", tmp_path / "out")
    assert ("WARNING P001/18F-FDG [reference] P001/FDG/ref-liver.nii.gz: reference region liver: SUVmean 4.5"
            in status.stdout) and "FAILED" not in status.stdout
    # An OUT written before the severity column: read (null severity), and rewritten with it by the next commit.
    import pyarrow.parquet as pq

    path = tmp_path / "out" / "failures.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["severity"]), path)
    assert run("status", cohort, "-o", tmp_path / "out").exit_code == 0
    assert run("extract", cohort, "-o", tmp_path / "out", "-j", "1", "--force").exit_code == 0
    assert list(pd.read_parquet(path)["severity"]) == ["warning"]
    rerun = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")  # a warning does not make the scan a retry
    assert "0 scans computed, 1 unchanged" in rerun.stderr


def test_unknown_and_empty_regions_warn_and_a_misaligned_one_fails(cohort, tmp_path):
    folder = cohort / "P001" / "FDG"
    write(np.ones(SHAPE, np.uint8), folder / "ref-kidney.nii.gz")
    write(np.zeros(SHAPE, np.uint8), folder / "ref-marrow.nii.gz")
    write_volume(np.ones((4, 4, 4), np.uint8), folder / "ref-bloodpool.nii.gz")
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1  # the misaligned region is a real failure: the user's input is wrong
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet").set_index("file")
    assert failures.loc["P001/FDG/ref-kidney.nii.gz", "stage"] == "reference"
    assert "unknown reference region 'kidney'" in failures.loc["P001/FDG/ref-kidney.nii.gz", "message"]
    assert "has no voxel" in failures.loc["P001/FDG/ref-marrow.nii.gz", "message"]
    bad = failures.loc["P001/FDG/ref-bloodpool.nii.gz"]
    assert bad["stage"] == "geometry" and "reference region bloodpool: mask size" in bad["message"]
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert len(rows) == 2 and set(rows["ref_missing"]) == {"bloodpool,adrenal_contralateral,marrow,spleen"}


def test_editing_a_reference_mask_recomputes_exactly_that_scan(cohort, tmp_path):
    other = cohort / "P002" / "FDG"
    shutil.copytree(cohort / "P001" / "FDG", other)
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    before = pd.read_parquet(out / "scans.parquet").set_index("patient_id")
    _, _, liver = phantom()
    liver[13] = 0  # keep only the slice of 2.0
    write(liver, other / "ref-liver.nii.gz")
    plan = run("extract", cohort, "-o", out, "--dry-run")
    assert [ln.split("\t")[0] for ln in plan.stdout.splitlines()] == ["unchanged", "changed"]
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert "1 scans computed, 1 unchanged" in result.stderr
    after = pd.read_parquet(out / "scans.parquet").set_index("patient_id")
    assert after.loc["P002", "ref_liver_suv_mean"] == 2.0 and after.loc["P002", "ref_liver_voxels"] == 16
    assert after.loc["P001", "work_key"] == before.loc["P001", "work_key"]
    rows = pd.read_parquet(out / "features" / "18F-FDG.parquet").set_index(["patient_id", "lesion_id"])
    assert rows.loc[("P002", 1), "suv_max_to_liver"] == 12.0 / 2.0
    assert rows.loc[("P001", 1), "suv_max_to_liver"] == 12.0 / 2.5
    (other / "ref-liver.nii.gz").unlink()  # removing a region recomputes too
    assert "1 scans computed, 1 unchanged" in run("extract", cohort, "-o", out, "-j", "1").stderr
    assert pd.read_parquet(out / "scans.parquet").set_index("patient_id").loc["P002", "ref_liver_file"] == ""


def test_ct_rows_have_hu_columns_and_no_suv_columns(tmp_path):
    image, labels, _ = phantom()
    hu = (image * 100 - 1000).astype(np.float32)
    folder = tmp_path / "cohort" / "P001" / "CT"
    write(hu, folder / "ct.nii.gz")
    write(labels, folder / "mask.nii.gz")
    result = run("extract", tmp_path / "cohort", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "CT.parquet").set_index("lesion_id")
    assert not [c for c in rows.columns if c.startswith(("suv_", "voi_", "ref_"))]
    inside = labels == 1
    assert rows.loc[1, "hu_max"] == 200.0
    assert rows.loc[1, "hu_mean"] == pytest.approx(hu[inside].astype(np.float64).mean(), rel=1e-12)
    assert rows.loc[1, "hu_sd"] == pytest.approx(hu[inside].astype(np.float64).std(), rel=1e-12)
    assert rows.loc[1, "volume_ml"] == pytest.approx(60 * VOXEL_ML)
    assert rows.loc[2, "centroid_z_mm"] == pytest.approx(ORIGIN[2] + 10 * SPACING[2])


def test_parquet_round_trip_keeps_types(cohort, tmp_path):
    assert run("extract", cohort, "-o", tmp_path / "out", "-j", "1").exit_code == 0
    table = pq.read_table(tmp_path / "out" / "features" / "18F-FDG.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["suv_peak_sphere_voxels"] == "int64" and types["suv_peak"] == "double"
    assert types["ref_missing"] in ("string", "large_string") and types["voi_threshold_suv"] == "double"
    state = pq.read_table(tmp_path / "out" / "scans.parquet").schema
    assert str(state.field("ref_liver_voxels").type) == "int64" and str(state.field("dmax_voxel_mm").type) == "double"
    frame = table.to_pandas()
    again = tmp_path / "again.parquet"
    frame.to_parquet(again)
    pd.testing.assert_frame_equal(pd.read_parquet(again), frame)


def test_region_lists_agree():
    assert REGIONS == REFERENCE_REGIONS


def test_sphere_voxel_table_in_the_docs_is_what_the_code_counts():
    from radiomx.features.peak import sphere_offsets

    doc = (Path(__file__).resolve().parents[1] / "docs" / "lesions-and-indices.md").read_text()
    table = [line for line in doc.splitlines() if line.startswith("| ") and " × " in line.split("|")[1]]
    assert len(table) >= 10
    for line in table:
        grid, count, volume = (cell.strip() for cell in line.strip("|").split("|"))
        spacing = [float(v) for v in grid.split(" (")[0].split(" × ")]
        assert len(sphere_offsets(spacing[::-1])) == int(count), grid
        assert float(volume) == pytest.approx(int(count) * np.prod(spacing) / 1000, abs=0.006), grid


def test_qc_labels_use_the_table_definitions_of_suv_max_and_mtv():
    """The QC picture labels every outline with ``lesion_values`` (all labels at once); its numbers must be the
    lesion rows' ``suv_max`` and ``mtv_ml`` (``lesion_indices``), on an anisotropic grid with touching lesions."""
    import SimpleITK as sitk

    from radiomx.features.indices import lesion_indices, lesion_values
    from radiomx.features.lesions import split_lesions

    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 1.5, size=(20, 24, 28)).astype(np.float32)
    labels = np.zeros(values.shape, np.uint8)
    labels[2:6, 3:9, 4:7] = 1
    labels[6:9, 3:9, 4:10] = 2  # touches lesion 1
    labels[12:19, 15:22, 18:27] = 3
    labels[labels == 3] *= (rng.random((labels == 3).sum()) > 0.3).astype(np.uint8)  # ragged
    spacing = (4.07, 4.07, 3.27)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    lesion_map = split_lesions(mask)
    rows = {le.lesion_id: lesion_indices(image, lesion_map.labels, le, "SUVbw") for le in lesion_map.lesions}
    drawn = {v.lesion_id: v for v in lesion_values(values, sitk.GetArrayFromImage(lesion_map.labels), spacing)}
    assert set(drawn) == set(rows) == {1, 2, 3}
    for lesion_id, row in rows.items():
        assert drawn[lesion_id].suv_max == row["suv_max"]
        assert drawn[lesion_id].mtv_ml == pytest.approx(row["mtv_ml"], rel=1e-12)
