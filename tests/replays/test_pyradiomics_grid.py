"""``radiomx.features.replays.pyradiomics_grid`` computes the grid PyRadiomics' ``resampleImage`` resamples a lesion
onto, and resamples onto it with the same filter settings: both must be PyRadiomics' own, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import imageoperations

from radiomx.features.replays.pyradiomics_grid import interpolator_of, resample, resample_grid, resampling_enabled

from ..test_crop_equivalence import scan  # noqa: F401 - the fixture: a scanner's grid, lesions at the border


@pytest.mark.parametrize("spacing", [[2, 2, 2], [2.5, 3, 0], [5, 5, 5]])
@pytest.mark.parametrize("interpolator", ["sitkLinear", "sitkNearestNeighbor", "sitkLanczosWindowedSinc",
                                          "sitkNoSuchThing"])  # the last: resampleImage's fallback to B-spline
def test_grid_and_resample_equal_resample_image(scan, spacing, interpolator) -> None:  # noqa: F811
    """The target grid is bit-identical to the one ``resampleImage`` builds from the full image and mask, and the
    image resampled onto it equals ``resampleImage``'s output voxel for voxel (B-spline on the full image here: the
    prefilter replay is ``test_itk_bspline``'s)."""
    image, labels, lesions = scan
    settings = {"resampledPixelSpacing": spacing, "interpolator": interpolator, "padDistance": 5}
    for lesion in lesions[:3]:
        grid = resample_grid(labels, lesion, settings)
        ref, ref_mask = imageoperations.resampleImage(image, labels, label=lesion.lesion_id, **settings)
        assert grid is not None
        assert (grid.origin, grid.spacing, grid.size, grid.direction) == (
            ref.GetOrigin(), ref.GetSpacing(), ref.GetSize(), ref.GetDirection())
        ours = resample(image, grid, interpolator_of(settings), image.GetPixelID())
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(ref))
        mask = resample(labels, grid, sitk.sitkNearestNeighbor, labels.GetPixelID())
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(ref_mask))


def test_the_image_spacing_means_no_resampling(scan) -> None:  # noqa: F811
    """``resampleImage`` only crops when the requested spacing is the image's: no grid."""
    image, labels, lesions = scan
    assert resample_grid(labels, lesions[0], {"resampledPixelSpacing": list(image.GetSpacing())}) is None


def test_resampling_and_interpolator_follow_load_image() -> None:
    """PyRadiomics' ``loadImage`` resamples only when both settings are given (the grid it returns says whether it
    did), and ``resampleImage`` takes an interpolator by name or by value."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    image = sitk.GetImageFromArray(np.random.default_rng(0).random((12, 14, 16)).astype(np.float32))
    labels = sitk.GetImageFromArray(np.pad(np.ones((4, 4, 4), np.uint8), 5))
    for im in (image, labels):
        im.SetSpacing((3.0, 3.0, 3.0))
    for settings in ({"interpolator": "sitkLinear", "resampledPixelSpacing": [2, 2, 2]},
                     {"interpolator": "sitkLinear"}, {"interpolator": None, "resampledPixelSpacing": [2, 2, 2]}):
        loaded, _ = RadiomicsFeatureExtractor.loadImage(image, labels, None, **settings)
        assert resampling_enabled(settings) == (loaded.GetSpacing() == (2.0, 2.0, 2.0)), settings
    assert interpolator_of({"interpolator": "sitkLinear"}) == interpolator_of({"interpolator": sitk.sitkLinear})
    assert interpolator_of({}) == sitk.sitkBSpline
