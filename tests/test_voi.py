"""Threshold VOIs (parameter file ``radiomx: voi:``): exact voxel counts per method through the real CLI, the
thresholded mask is what every index and PyRadiomics see, components split after thresholding, and the failure
and warning rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.params.paramset import default_params_root, load_param_file

from .conftest import next_version_file, write_volume
from .reference import extract_lesion_reference

SPACING = (2.0, 3.0, 4.0)
SHAPE = (20, 20, 20)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def painted(lesion: tuple[slice, ...], *blocks: tuple[tuple[slice, ...], float]) -> tuple[np.ndarray, np.ndarray]:
    """Background SUV 1, label 1 on ``lesion``, each block painted with its SUV in order."""
    image = np.ones(SHAPE, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[lesion] = 1
    for where, value in blocks:
        image[where] = value
    return image, labels


def voi_scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lesion 1: a 6x6x6 VOI with 72 voxels of SUV 10, 36 of 6 and 108 of 3 (background 1). Liver: 2 and 4 in
    equal parts (mean 3, SD 1, so PERCIST's 1.5 x 3 + 2 x 1 = 6.5)."""
    image, labels = painted(np.s_[2:8, 2:8, 2:8], (np.s_[2:5, 2:8, 2:8], 6.0), (np.s_[2:5, 2:6, 2:8], 10.0),
                            (np.s_[5:8, 2:8, 2:8], 3.0))
    liver = np.zeros(SHAPE, dtype=np.uint8)
    liver[12:14, 12:16, 12:16] = 1
    image[12, 12:16, 12:16] = 2.0
    image[13, 12:16, 12:16] = 4.0
    return image, labels, liver


def as_image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    return image


def params_with(tmp_path: Path, voi: str) -> tuple[Path, Path]:
    """The shipped tree plus a new FDG version = v2 with another ``voi`` block (a new version, never an edit):
    the tree and the new file."""
    tree = shutil.copytree(default_params_root(), tmp_path / "params")
    v2 = (tree / "18F-FDG" / "v2.yaml").read_text()
    newest = next_version_file(tree, "18F-FDG")
    newest.write_text(v2.replace("  voi:\n    method: none\n", voi))
    return tree, newest


def cohort_with(tmp_path: Path, image: np.ndarray, labels: np.ndarray, liver: np.ndarray | None) -> Path:
    folder = tmp_path / "cohort" / "P001" / "FDG"
    write_volume(image, folder / "pet.nii.gz", spacing=SPACING)
    write_volume(labels, folder / "mask.nii.gz", spacing=SPACING)
    if liver is not None:
        write_volume(liver, folder / "ref-liver.nii.gz", spacing=SPACING)
    (tmp_path / "cohort" / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    return tmp_path / "cohort"


CASES = {
    "relative-0.8": ("  voi:\n    method: relative\n    fraction: 0.8\n", 72, 8.0, 0.8),
    "relative-0.5": ("  voi:\n    method: relative\n    fraction: 0.5\n", 108, 5.0, 0.5),
    "absolute-3": ("  voi:\n    method: absolute\n    threshold: 3.0\n", 216, 3.0, None),  # >= keeps the 3s
    "absolute-6": ("  voi:\n    method: absolute\n    threshold: 6\n", 108, 6.0, None),
    "percist": ("  voi:\n    method: percist\n", 72, 6.5, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_threshold_keeps_exactly_the_voxels_above_it(tmp_path, case):
    block, voxels, threshold, fraction = CASES[case]
    image, labels, liver = voi_scan()
    cohort = cohort_with(tmp_path, image, labels, liver)
    tree, newest = params_with(tmp_path, block)
    result = run("extract", cohort, "-o", tmp_path / "out", "--params-dir", tree, "-j", "1")
    assert result.exit_code == 0, result.stderr
    row = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet").iloc[0]
    kept = image[(labels == 1) & (image >= threshold)].astype(np.float64)
    assert row["voxel_count"] == voxels == kept.size
    assert row["voi_method"] == case.split("-")[0]
    assert row["voi_threshold_suv"] == threshold
    assert (pd.isna(row["voi_fraction"]) if fraction is None else row["voi_fraction"] == fraction)
    assert row["suv_mean"] == pytest.approx(kept.mean(), rel=1e-12)
    assert row["mtv_ml"] == pytest.approx(voxels * 0.024, rel=1e-12)
    # PyRadiomics got the thresholded mask: its values equal a plain PyRadiomics call on that mask.
    mask = ((labels == 1) & (image >= threshold)).astype(np.uint8)
    reference = extract_lesion_reference(load_param_file(newest, "18F-FDG", newest.stem),
                                         as_image(image), as_image(mask), 1)
    for name in ("original_shape_VoxelVolume", "original_firstorder_Mean", "original_glcm_Contrast"):
        assert row[name] == pytest.approx(reference[name], rel=1e-9), name


def test_percist_without_liver_fails_the_scan_with_a_clear_message(tmp_path):
    image, labels, _ = voi_scan()
    cohort = cohort_with(tmp_path, image, labels, None)
    result = run("extract", cohort, "-o", tmp_path / "out", "--params-dir",
                 params_with(tmp_path, "  voi:\n    method: percist\n")[0], "-j", "1")
    assert result.exit_code == 1
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert list(failures["stage"]) == ["voi"]
    assert "percist VOI threshold (1.5 x liver SUVmean + 2 x SD) needs the liver reference region" in (
        failures.iloc[0]["message"])
    assert pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]["status"] == "failed"


def test_a_voi_below_an_absolute_threshold_is_a_warning(tmp_path):
    image, labels, liver = voi_scan()
    labels[12:16, 2:6, 2:6] = 2  # a second VOI of background (SUV 1)
    cohort = cohort_with(tmp_path, image, labels, liver)
    result = run("extract", cohort, "-o", tmp_path / "out", "--params-dir",
                 params_with(tmp_path, "  voi:\n    method: absolute\n    threshold: 2.5\n")[0], "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(rows["lesion_id"]) == [1]
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert list(failures["stage"]) == ["voi"]
    assert "source label 2: no voxel >= 2.5 SUV (absolute threshold)" in failures.iloc[0]["message"]


@pytest.mark.parametrize("mode, expected", [("labels", {1: 2 * 64}), ("components", {1: 64, 2: 64})])
def test_components_split_after_thresholding(tmp_path, mode, expected):
    """One VOI holding two hot blocks joined by a cold bridge: one lesion by label, two after the cut by
    components, each with its VOI's threshold."""
    image, labels = painted(np.s_[10:14, 2:6, 2:16], (np.s_[10:14, 2:6, 2:16], 2.0), (np.s_[10:14, 2:6, 2:6], 10.0),
                            (np.s_[10:14, 2:6, 12:16], 8.0))
    cohort = cohort_with(tmp_path, image, labels, None)
    result = run("extract", cohort, "-o", tmp_path / "out", "--params-dir",
                 params_with(tmp_path, "  voi:\n    method: relative\n    fraction: 0.5\n")[0], "-j", "1",
                 "--lesions", mode)
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet").set_index("lesion_id")
    assert rows["voxel_count"].to_dict() == expected
    assert set(rows["voi_threshold_suv"]) == {5.0} and set(rows["source_label"]) == {1}


BAD_BLOCKS = {
    "unknown-method": ("  voi:\n    method: otsu\n", "radiomx.voi must be a mapping with method one of"),
    "relative-without-fraction": ("  voi:\n    method: relative\n", "missing fraction"),
    "fraction-above-1": ("  voi:\n    method: relative\n    fraction: 41\n", "radiomx.voi.fraction is 41"),
    "absolute-with-fraction": ("  voi:\n    method: absolute\n    threshold: 2.5\n    fraction: 0.4\n",
                               "unknown key(s) fraction"),
    "bad-peak": ("  suv_peak: percist\n", "radiomx.suv_peak is 'percist'"),
}


@pytest.mark.parametrize("name", list(BAD_BLOCKS))
def test_bad_index_settings_are_exit_2_naming_file_and_key(tmp_path, name):
    block, fragment = BAD_BLOCKS[name]
    image, labels, liver = voi_scan()
    cohort = cohort_with(tmp_path, image, labels, liver)
    tree, newest = params_with(tmp_path, block)
    result = run("extract", cohort, "-o", tmp_path / "out", "--params-dir", tree)
    assert result.exit_code == 2, result.output
    assert str(newest) in result.stderr and fragment in result.stderr


@pytest.mark.parametrize("block, fragment", [
    ("  units: HU\n  suv_peak: ibsi-local\n", "applies to SUVbw"),
    ("  units: SUVbw\n  reference_suv_mean:\n    liver: [3.0, 1.3]\n", "needs low < high"),
    ("  units: SUVbw\n  reference_suv_mean:\n    kidney: [1, 2]\n", "must map regions"),
])
def test_bad_index_settings_in_one_file(tmp_path, block, fragment):
    from radiomx.errors import ConfigError
    from radiomx.params.paramset import load_param_file

    path = tmp_path / "v9.yaml"
    path.write_text(f"radiomx:\n{block}setting:\n  binWidth: 25\n")
    with pytest.raises(ConfigError, match=fragment):
        load_param_file(path)


@pytest.mark.parametrize("case", ["relative-0.8", "percist"])
def test_radiomx_qc_redraws_the_thresholded_lesions_the_extraction_drew(tmp_path, case):
    """`radiomx qc --force` draws again what `extract --qc` drew: the thresholded lesions (outline, SUVmax and MTV
    in the legend), not the VOIs as drawn; percist is cut at the liver statistics stored in the state row."""
    from PIL import Image

    from radiomx.qc.files import picture_path
    from radiomx.qc.picture import read_panels
    from radiomx.records import ScanKey

    image, labels, liver = voi_scan()
    cohort = cohort_with(tmp_path, image, labels, liver)
    out = tmp_path / "out"
    tree, newest = params_with(tmp_path, CASES[case][0])
    assert run("extract", cohort, "-o", out, "--params-dir", tree, "-j", "1", "--qc").exit_code == 0
    picture = picture_path(out, ScanKey("P001", "", "18F-FDG"))
    drawn_by_extract = picture.read_bytes()
    assert read_panels(Image.open(picture).info)  # a real picture with its panel maps
    picture.unlink()
    redraw = run("qc", out, "--force", "--params-dir", tree)
    assert redraw.exit_code == 0 and "1 pictures drawn" in redraw.stderr, redraw.stderr
    assert picture.read_bytes() == drawn_by_extract


def test_reference_statistics_round_trip_through_the_state_row():
    """``stats_from_state`` inverts ``state_columns`` exactly, and reads absent regions in every null spelling."""
    from radiomx.features.references import RegionStats, state_columns, stats_from_state

    stats = {"liver": RegionStats("liver", "P001/FDG/ref-liver.nii.gz", 2.0 / 3.0, 0.1 + 0.2, 32)}
    row = state_columns(stats)
    assert stats_from_state(row) == stats
    for null in (None, float("nan"), pd.NA):
        assert stats_from_state({**row, "ref_liver_voxels": null}) == {}
