"""Storage orientation (issue 21, point 16): the same scan stored LPS and stored with x and y flipped (RAS, with a
matching direction matrix) is the same image in patient space. Its PET indices are identical either way; its
PyRadiomics features differ under the released v2 files (stock PyRadiomics' behaviour, kept: the 2 x 2 x 3 mm scan is
resampled to 4 mm onto a grid PyRadiomics anchors in index space), and are equal under v3 (``radiomx: reorient:
LPS``). Each row and the scan state record the storage orientation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import ConfigError
from radiomx.features.lesions import split_lesions
from radiomx.features.orientation import lesion_on, orientation_code, reoriented
from radiomx.params.paramset import default_params_root, load_param_file
from radiomx.store.schema import is_feature_column

SPACING = (2.0, 2.0, 3.0)
ORIGIN = (-41.0, -37.5, 12.0)
#: Same values on the same patient-space grid: the features of a reoriented file equal the original's to the last
#: bits of the origin arithmetic (DICOMOrient recomputes the origin: ~1e-14 mm), far below any feature's meaning.
FEATURE_RTOL = 1e-9
INDEX_COLUMNS = ["voxel_count", "suv_max", "suv_mean", "suv_sd", "suv_peak", "suv_peak_local", "mtv_ml", "tlg"]
CENTROIDS = ["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]


def _volume() -> tuple[np.ndarray, np.ndarray]:
    """Three textured lesions of different shapes (an ellipsoid, an L-shaped block, a small blob) in noise."""
    rng = np.random.default_rng(11)
    shape = (30, 40, 44)
    z, y, x = np.indices(shape)
    image = np.clip(rng.normal(1.0, 0.25, shape), 0, None).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    ellipsoid = ((z - 12) / 5.0) ** 2 + ((y - 14) / 7.0) ** 2 + ((x - 12) / 5.0) ** 2 <= 1
    mask[ellipsoid] = 1
    mask[18:24, 22:34, 28:32] = 2
    mask[18:24, 30:34, 32:40] = 2
    blob = ((z - 8) ** 2 + (y - 30) ** 2 + (x - 34) ** 2) <= 12
    mask[blob] = 3
    for label, level in ((1, 6.0), (2, 4.0), (3, 9.0)):
        inside = mask == label
        image[inside] += level + rng.gamma(2.0, 1.0, int(inside.sum())).astype(np.float32) + 0.3 * x[inside]
    return image, mask


def _image(array: np.ndarray, flipped: bool) -> sitk.Image:
    """As stored LPS (identity direction), or with x and y reversed in storage and direction diag(-1, -1, 1)."""
    reference = sitk.GetImageFromArray(array)
    reference.SetSpacing(SPACING)
    reference.SetOrigin(ORIGIN)
    if not flipped:
        return reference
    image = sitk.GetImageFromArray(np.ascontiguousarray(array[:, ::-1, ::-1]))
    image.SetSpacing(SPACING)
    image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    nx, ny = array.shape[2], array.shape[1]
    image.SetOrigin(reference.TransformIndexToPhysicalPoint((nx - 1, ny - 1, 0)))
    return image


def _cohort(root: Path) -> Path:
    image, mask = _volume()
    for patient, flipped in (("P001", False), ("P002", True)):
        folder = root / patient / "FDG"
        folder.mkdir(parents=True)
        sitk.WriteImage(_image(image, flipped), str(folder / "pet.nii.gz"))
        sitk.WriteImage(_image(mask, flipped), str(folder / "mask.nii.gz"))
    (root / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("orientation")
    cohort = _cohort(root / "cohort")
    tables = {}
    for version in ("v2", "v3"):
        out = root / f"out-{version}"
        result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1", "--params-version",
                                          version])
        assert result.exit_code == 0, result.stderr
        rows = pd.read_parquet(out / "features" / "18F-FDG.parquet")
        tables[version] = ({p: g.set_index("lesion_id") for p, g in rows.groupby("patient_id")},
                           pd.read_parquet(out / "scans.parquet").set_index("patient_id"))
    return tables


def test_the_flipped_file_is_stored_ras_and_the_rows_and_state_say_so(runs):
    for version in ("v2", "v3"):
        rows, state = runs[version]
        assert set(rows["P001"]["image_orientation"]) == {"LPS"}
        assert set(rows["P002"]["image_orientation"]) == {"RAS"}
        assert dict(state["image_orientation"]) == {"P001": "LPS", "P002": "RAS"}


def _features(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[[c for c in rows.columns if is_feature_column(c)]].astype(float)


def test_v2_keeps_stock_pyradiomics_so_texture_depends_on_storage(runs):
    rows, _ = runs["v2"]
    original, flipped = _features(rows["P001"]), _features(rows["P002"])
    relative = ((flipped - original).abs() / original.abs().where(original != 0, 1.0)).to_numpy()
    changed = (relative > 0.01).any(axis=0)
    assert changed.sum() >= 0.3 * original.shape[1], f"only {changed.sum()} of {original.shape[1]} features changed"


def test_v3_reorients_so_the_flipped_file_gives_the_original_features(runs):
    rows, _ = runs["v3"]
    original, flipped = _features(rows["P001"]), _features(rows["P002"])
    assert original.shape[1] > 100 and original.notna().all().all()
    np.testing.assert_allclose(flipped.to_numpy(), original.to_numpy(), rtol=FEATURE_RTOL, atol=0)
    # an image already stored LPS is not touched: v3 gives v2's values bit for bit
    pd.testing.assert_frame_equal(original, _features(runs["v2"][0]["P001"]))


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_pet_indices_are_identical_either_way(runs, version):
    rows, _ = runs[version]
    original, flipped = rows["P001"], rows["P002"]
    pd.testing.assert_frame_equal(flipped[INDEX_COLUMNS], original[INDEX_COLUMNS], check_exact=True)
    np.testing.assert_allclose(flipped[CENTROIDS], original[CENTROIDS], rtol=0, atol=1e-9)  # mm
    pd.testing.assert_frame_equal(original[INDEX_COLUMNS], runs["v2"][0]["P001"][INDEX_COLUMNS], check_exact=True)


def test_lesion_boxes_map_onto_the_reoriented_grid():
    """Each lesion's bounding box on the reoriented label map is the box LabelShapeStatistics finds there."""
    _, mask = _volume()
    labels = _image(mask, flipped=True)
    target = reoriented(labels, "LPS")
    assert orientation_code(labels) == "RAS" and orientation_code(target) == "LPS"
    truth = {lesion.lesion_id: lesion for lesion in split_lesions(target).lesions}
    for lesion in split_lesions(labels).lesions:
        assert lesion_on(labels, target, lesion) == truth[lesion.lesion_id]


def test_released_files_keep_the_grid_as_stored_and_v3_reorients():
    root = default_params_root()
    for tracer in ("18F-FDG", "68Ga-DOTATATE", "68Ga-pentixafor"):
        assert load_param_file(root / tracer / "v1.yaml").reorient is None
        assert load_param_file(root / tracer / "v2.yaml").reorient is None
        assert load_param_file(root / tracer / "v3.yaml").reorient == "LPS"
    assert load_param_file(root / "CT" / "v1.yaml").reorient is None
    assert load_param_file(root / "CT" / "v2.yaml").reorient == "LPS"


def test_params_diff_names_the_setting():
    result = CliRunner().invoke(cli, ["params", "diff", "fdg@v2", "fdg@v3"])
    assert result.exit_code == 0, result.stderr
    assert "radiomx.reorient" in result.stdout and "LPS" in result.stdout


@pytest.mark.parametrize("code", ["LPR", "XYZ", "LP", 3, "LPSS"])
def test_a_bad_orientation_code_is_refused_naming_the_file(tmp_path, code):
    path = tmp_path / "v1.yaml"
    path.write_text(f"radiomx:\n  units: SUVbw\n  reorient: {code}\nsetting:\n  binWidth: 0.25\n")
    with pytest.raises(ConfigError, match=r"v1\.yaml: radiomx\.reorient is .*one of each pair L/R, P/A, S/I"):
        load_param_file(path)


def test_reoriented_layers_keep_each_overlapping_lesions_layer_and_voxels():
    """Nested lesions live in two layers (issue 22); reorienting them for PyRadiomics keeps every lesion in its own
    layer, with the same voxels (a lesion put back in layer 0 would be cut from the wrong label map)."""
    from radiomx.features.extractor import prepare_layers
    from radiomx.features.lesions import Lesion
    from radiomx.params.paramset import resolve_params
    from radiomx.tracers import get_tracer

    _, mask = _volume()
    outer = np.where(mask > 0, 1, 0).astype(np.uint8)
    outer[5:25, 5:35, 5:40] = 1
    layers = (_image(outer, flipped=True), _image((mask == 1).astype(np.uint8) * 2, flipped=True))
    lesions = (split_lesions(layers[0]).lesions[0],
               Lesion(*dataclasses.astuple(split_lesions(layers[1]).lesions[0])[:5], layer=1))
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"), "v3")
    assert params.reorient == "LPS"
    on_grid = prepare_layers(params, layers, lesions)
    for lesion in lesions:
        target, moved = on_grid[lesion.lesion_id]
        assert moved.layer == lesion.layer and orientation_code(target) == "LPS"
        values = sitk.GetArrayViewFromImage(target)
        assert int((values == lesion.lesion_id).sum()) == lesion.voxel_count == moved.voxel_count
        low, size = moved.bbox_index, moved.bbox_size
        box = values[low[2]:low[2] + size[2], low[1]:low[1] + size[1], low[0]:low[0] + size[0]]
        assert int((box == lesion.lesion_id).sum()) == lesion.voxel_count  # the box moved with the voxels
