"""A lesion that PyRadiomics refuses keeps its row: PET indices computed on the image as read, PyRadiomics columns
null, and a warning row (not a failure: exit 0) whose hint names the lesion's size where PyRadiomics checked it and
the settings that would really let it through. The hints are checked by applying them: PyRadiomics then accepts
the lesion (and refuses it when only the setting the old hint named is relaxed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.features.refusal import RoiSize, refusal_hint
from radiomx.params.paramset import default_params_root
from radiomx.store.schema import is_feature_column

from .corpus import write

SPACING = (2.0, 2.0, 2.0)
LINE = (30, 32, slice(44, 47))  # lesion 2: three voxels in a row along x (6 mm), one 4 mm voxel after resampling


def _scan(root: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    shape = (60, 64, 64)
    z, y, x = np.indices(shape)
    image = rng.normal(1.0, 0.1, shape).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    big = (z - 30) ** 2 + (y - 32) ** 2 + (x - 20) ** 2 <= 36
    image[big] += 6.0
    mask[big] = 1
    mask[LINE] = 2
    image[LINE] += np.float32([7.0, 8.0, 6.5])
    write(image, root / "P001" / "FDG" / "pet.nii.gz", spacing=SPACING)
    write(mask, root / "P001" / "FDG" / "mask.nii.gz", spacing=SPACING)
    return image, mask


def _params(root: Path, **settings) -> Path:
    """A params tree whose FDG v1 is the shipped FDG v2 with ``settings`` changed."""
    document = yaml.safe_load((default_params_root() / "18F-FDG" / "v2.yaml").read_text())
    document["setting"].update(settings)
    (root / "18F-FDG").mkdir(parents=True)
    (root / "18F-FDG" / "v1.yaml").write_text(yaml.safe_dump(document))
    return root


def _extract(cohort: Path, out: Path, *args: str):
    return CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1", *args])


def _pyradiomics_grid_size(image: np.ndarray, mask: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """Lesion 2's voxels and extent on PyRadiomics' own resampled grid (``resampleImage``, as v2 asks)."""
    from radiomics import imageoperations

    pair = []
    for array in (image, mask):
        item = sitk.GetImageFromArray(array)
        item.SetSpacing(SPACING)
        pair.append(item)
    _, resampled = imageoperations.resampleImage(*pair, resampledPixelSpacing=[4, 4, 4], interpolator="sitkLinear",
                                                 label=2, padDistance=5)
    inside = np.argwhere(sitk.GetArrayFromImage(resampled) == 2)
    return len(inside), tuple(int(v) for v in (inside.max(0) - inside.min(0) + 1)[::-1])


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("refused")
    image, mask = _scan(root / "cohort")
    return root, _extract(root / "cohort", root / "out"), image, mask


def test_refused_lesion_keeps_its_indices_and_gives_a_warning_not_a_failure(refused_run):
    root, result, image, mask = refused_run
    assert result.exit_code == 0, result.stderr
    assert "FAILED" not in result.stderr
    warning = [ln for ln in result.stderr.splitlines() if ln.startswith("radiomx: WARNING")]
    assert len(warning) == 1 and "lesion 2" in warning[0] and str(root) not in warning[0]

    rows = pd.read_parquet(root / "out" / "features" / "18F-FDG.parquet").set_index("lesion_id")
    assert list(rows.index) == [1, 2]
    voxels = image[mask == 2].astype(np.float64)
    assert rows.loc[2, "suv_max"] == voxels.max() and rows.loc[2, "voxel_count"] == 3
    assert rows.loc[2, "mtv_ml"] == pytest.approx(3 * 8 / 1000, rel=1e-12)
    assert rows.loc[2, "tlg"] == pytest.approx(voxels.mean() * 3 * 8 / 1000, rel=1e-12)
    assert rows.loc[2, "centroid_x_mm"] == pytest.approx(45 * 2.0)
    features = [c for c in rows.columns if is_feature_column(c)]
    assert len(features) > 100
    assert rows.loc[2, features].isna().all() and rows.loc[1, features].notna().all()

    failures = pd.read_parquet(root / "out" / "failures.parquet")
    assert len(failures) == 1
    row = failures.iloc[0]
    assert (row["severity"], row["stage"], row["lesion_id"], row["file"]) == (
        "warning", "features", 2, "P001/FDG/mask.nii.gz")
    state = pd.read_parquet(root / "out" / "scans.parquet").iloc[0]
    assert (state["status"], state["n_lesions"], state["n_failed"]) == ("ok", 2, 0)


def test_the_hint_names_the_size_after_resampling_and_the_settings_that_apply(refused_run):
    root, _, image, mask = refused_run
    message = pd.read_parquet(root / "out" / "failures.parquet").iloc[0]["message"]
    voxels, extent = _pyradiomics_grid_size(image, mask)
    assert voxels == 1  # the case of the issue: 3 voxels as read, one after 4 mm resampling
    # The extent along y and z is one voxel, where PyRadiomics keeps the image's own 2 mm (resampleImage).
    assert f"after resampling to 4x2x2 mm it has 1 voxel, extent {'x'.join(map(str, extent))} voxels" in message
    assert "as read: 3 voxels, extent 3x1x1 voxels = 6x2x2 mm" in message
    assert "resampledPixelSpacing" in message and "minimumROIDimensions 1 (now 3)" in message
    assert "minimumROISize 2 (now 8" in message


def test_burden_ttlg_and_tmtv_cover_the_refused_lesion(refused_run):
    root = refused_run[0]
    rows = pd.read_parquet(root / "out" / "features" / "18F-FDG.parquet")
    burden = pd.read_parquet(root / "out" / "burden.parquet").iloc[0]
    assert burden["lesion_count"] == burden["lesions_measured"] == 2
    assert burden["ttlg"] == pytest.approx(rows["tlg"].sum(), rel=1e-12)
    assert burden["tmtv_ml"] == pytest.approx(rows["mtv_ml"].sum(), rel=1e-12)
    assert "failed" not in burden["burden_note"]


def test_applying_the_hint_gives_features_and_the_old_hint_did_not(refused_run, tmp_path):
    """The old message said "relax minimumROIDimensions/minimumROISize": on the 4 mm grid the lesion is one voxel,
    which PyRadiomics refuses whatever they are. The new hint (a finer spacing with both relaxed) works."""
    root = refused_run[0]
    old_hint = _extract(root / "cohort", tmp_path / "old", "--params-dir",
                        str(_params(tmp_path / "old-params", minimumROIDimensions=1, minimumROISize=1)))
    assert old_hint.exit_code == 0
    still = pd.read_parquet(tmp_path / "old" / "failures.parquet")
    assert list(still["lesion_id"]) == [2] and "single voxel" in still.iloc[0]["message"]
    assert "No parameter setting" not in still.iloc[0]["message"]  # a finer grid would still help

    new_hint = _extract(root / "cohort", tmp_path / "new", "--params-dir",
                        str(_params(tmp_path / "new-params", resampledPixelSpacing=[2, 2, 2],
                                    minimumROIDimensions=1, minimumROISize=2)))
    assert new_hint.exit_code == 0 and "WARNING" not in new_hint.stderr
    rows = pd.read_parquet(tmp_path / "new" / "features" / "18F-FDG.parquet").set_index("lesion_id")
    assert np.isfinite(rows.loc[2, "original_firstorder_Mean"])


def _settings(**changes):
    return {"resampledPixelSpacing": [4, 4, 4], "minimumROIDimensions": 3, "minimumROISize": 8, **changes}


@pytest.mark.parametrize("as_read, seen, resampled, settings, wanted, unwanted", [
    # a single voxel as read: nothing helps, and no setting is named
    (RoiSize(1, (1, 1, 1), SPACING), None, False, _settings(), "No parameter setting",
     "minimumROIDimensions"),
    # a flat (one-slice) lesion without resampling: only minimumROIDimensions applies (its size passes)
    (RoiSize(40, (8, 6, 1), SPACING), None, False, _settings(resampledPixelSpacing=None), "minimumROIDimensions 2",
     "resampledPixelSpacing"),
    # enough dimensions, too few voxels after resampling, fine as read: a finer spacing, or a smaller minimum
    (RoiSize(60, (4, 4, 4), SPACING), RoiSize(8, (2, 2, 2), (4.0, 4.0, 4.0)), True, _settings(),
     "a finer resampledPixelSpacing (now 4x4x4 mm); or minimumROISize 7", "minimumROIDimensions"),
    # resampling lost the label: only the spacing helps
    (RoiSize(27, (3, 3, 3), SPACING), RoiSize(0, (0, 0, 0), (4.0, 4.0, 4.0)), True, _settings(),
     "it has no voxel", "minimumROI"),
])
def test_hint_names_only_the_settings_that_would_change_the_outcome(as_read, seen, resampled, settings, wanted,
                                                                   unwanted):
    hint = refusal_hint(7, "refused.", seen, as_read, settings, resampled)
    assert hint.startswith("lesion 7: PyRadiomics features null, PET indices kept")
    assert wanted in hint and unwanted not in hint.split("PyRadiomics: refused")[1]
