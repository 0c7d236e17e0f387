"""``radiomx.features.replays.itk_bspline`` replays ITK's B-spline prefilter on part of a volume; the values must be
ITK's.

Three checks: the convergence distance follows its derivation; the coefficients equal ``sitk.BSplineDecomposition``
of the same block bit for bit, for every order and for lines shorter than ITK's initialisation horizon; and a
resample through ``coefficient_image`` equals ITK's own ``sitkBSplineN`` resample of the *full* volume, for grids
anywhere (interior, touching or crossing the border), any direction, orders 2-5 (float32 images exactly; float64
ones to 1e-12, see the test).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from radiomx.features.replays import itk_bspline as bspline
from radiomx.features.replays.itk_bspline import bspline_decay

INTERPOLATOR = {1: sitk.sitkBSpline1, 2: sitk.sitkBSpline2, 3: sitk.sitkBSpline3, 4: sitk.sitkBSpline4,
                5: sitk.sitkBSpline5}


def test_the_prefilter_decay_follows_the_derivation() -> None:
    """The cubic prefilter needs 34 voxels to converge (|z| = 2 - sqrt(3) per voxel, to 2**-64); higher orders
    need more, linear (no prefilter) none."""
    import math

    assert bspline_decay(3) == math.ceil(64 * math.log(2) / -math.log(2 - math.sqrt(3))) == 34
    assert bspline_decay(5) > bspline_decay(3) > bspline_decay(2) > bspline_decay(1) == 0


def test_every_bspline_interpolator_has_its_order_and_resampler() -> None:
    assert bspline.ORDER == {getattr(sitk, f"sitkBSpline{n}"): n for n in range(1, 6)}
    assert set(bspline.RESAMPLER) == set(bspline.ORDER.values())


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(9, 12, 10), (1, 12, 25), (30, 2, 17), (40, 33, 21)])
def test_coefficients_equal_itk_decomposition(order, shape):
    values = np.random.default_rng(order).gamma(2.0, 2.0, shape).astype(np.float32)
    itk = sitk.GetArrayFromImage(sitk.BSplineDecomposition(sitk.Cast(sitk.GetImageFromArray(values),
                                                                       sitk.sitkFloat64), order))
    np.testing.assert_array_equal(bspline.decompose(values, order, (slice(None),) * 3), itk)


def _resample(source: sitk.Image, reference: sitk.Image, origin, size, interpolator) -> np.ndarray:
    """Like ``pyradiomics_grid.resample``: the output has the reference image's pixel type."""
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing((2.0, 2.0, 2.0))
    rif.SetOutputDirection(reference.GetDirection())
    rif.SetSize(size)
    rif.SetOutputOrigin(origin)
    rif.SetOutputPixelType(reference.GetPixelID())
    rif.SetInterpolator(interpolator)
    return sitk.GetArrayFromImage(rif.Execute(source))


@settings(max_examples=25, deadline=None)
@given(order=st.integers(2, 5), seed=st.integers(0, 2**16), flip=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]),
       start=st.tuples(st.floats(-20, 70), st.floats(-4, 70), st.floats(-4, 60)),
       size=st.tuples(st.integers(1, 14), st.integers(1, 14), st.integers(1, 14)))
def test_resampling_the_coefficients_equals_itk_on_the_full_volume(order, seed, flip, dtype, start, size):
    """float32 (what radiomx's SUV images are): exactly equal. float64: the sample positions are computed from the
    coefficient block's origin instead of the volume's, one rounding apart, so values agree to ~1e-15 of the image's
    range (tolerance: 1e-12 of the value or of the image maximum); a prefilter stopped short of its convergence
    distance shows up far above that."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.gamma(2.0, 3.0, (56, 64, 60)).astype(dtype))
    image.SetSpacing((4.07283, 4.07283, 3.27))
    image.SetOrigin((-120.5, 33.0, -400.25))
    if flip:
        image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    first = np.array(start)
    last = first + (np.array(size) - 1) * 2.0 / np.array(image.GetSpacing())
    origin = image.TransformContinuousIndexToPhysicalPoint(first.tolist())
    full = _resample(image, image, origin, list(size), INTERPOLATOR[order])
    coefficients = bspline.coefficient_image(image, order, bspline_decay(order), first, last)
    assert coefficients.GetNumberOfPixels() < image.GetNumberOfPixels()
    ours = _resample(coefficients, image, origin, list(size), bspline.RESAMPLER[order])
    if dtype == np.float32:
        np.testing.assert_array_equal(ours, full)
    else:
        scale = float(np.abs(sitk.GetArrayViewFromImage(image)).max())  # near-zero samples: relative to the image
        np.testing.assert_allclose(ours, full, rtol=1e-12, atol=1e-12 * scale)
