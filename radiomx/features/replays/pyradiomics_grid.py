"""Replay of PyRadiomics 3.1's resampling: the grid ``imageoperations.resampleImage`` resamples a lesion onto, and
the ``ResampleImageFilter`` call it makes.

Why: with ``resampledPixelSpacing`` set, PyRadiomics resamples onto a grid aligned to the lesion's bounding box *in
the index space of the image it is given*, cropped to that box plus ``padDistance``. Cropping the input first would
shift that grid (values off by >10 %). So ``resample_grid`` computes the grid exactly as ``resampleImage`` does from
the full mask (same numpy expressions, same order), radiomx resamples onto it itself (``resample``) and calls the
extractor with resampling off. ``tests/replays/test_pyradiomics_grid.py`` checks the grid against
``resampleImage``'s own output; ``tests/test_crop_equivalence.py`` the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from radiomx.features.lesions import Lesion


def resampling_enabled(settings: dict[str, Any]) -> bool:
    """PyRadiomics resamples iff both are set (``loadImage``)."""
    return settings.get("interpolator") is not None and settings.get("resampledPixelSpacing") is not None


def interpolator_of(settings: dict[str, Any]) -> int:
    """The SimpleITK interpolator ``resampleImage`` would use (same fallback to B-spline on an unknown name)."""
    interpolator = settings.get("interpolator", sitk.sitkBSpline)
    try:
        if isinstance(interpolator, str):
            interpolator = getattr(sitk, interpolator)
    except Exception:  # noqa: BLE001 - resampleImage logs a warning and falls back the same way
        interpolator = sitk.sitkBSpline
    return int(interpolator)


@dataclass(frozen=True)
class Grid:
    """A resampling target: exactly the ``ResampleImageFilter`` settings of ``resampleImage``."""

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    size: tuple[int, ...]
    direction: tuple[float, ...]
    #: Continuous index (in the full image) of the first and last output voxel centres, per axis.
    first_index: tuple[float, ...]
    last_index: tuple[float, ...]


def resample_grid(mask: sitk.Image, lesion: Lesion, settings: dict[str, Any]) -> Grid | None:
    """The grid ``resampleImage(image, mask, label=lesion)`` resamples onto, or None when it would only crop (the
    requested spacing equals the image's). Line-for-line the arithmetic of PyRadiomics 3.1's ``resampleImage``, fed
    the bounding box ``_checkROI`` would compute (LabelShapeStatistics of the same label map, as ``split_lesions``)."""
    mask_spacing = np.array(mask.GetSpacing())
    image_spacing = mask_spacing  # the loader gives the mask the image's exact geometry
    nd = len(mask_spacing)
    spacing = np.array(settings["resampledPixelSpacing"])
    assert len(spacing) == nd, f"resampledPixelSpacing must have {nd} values"
    spacing = np.where(spacing == 0, mask_spacing, spacing)
    bb = np.array(tuple(lesion.bbox_index) + tuple(lesion.bbox_size))
    spacing = np.where(bb[nd:] != 1, spacing, mask_spacing)
    if np.allclose(image_spacing, spacing):
        return None
    pad = settings.get("padDistance", 5)
    mask_size = np.array(mask.GetSize())
    ratio = mask_spacing / spacing
    lower = np.floor((bb[:nd] - 0.5) * ratio - pad)
    upper = np.ceil((bb[:nd] + bb[nd:] - 0.5) * ratio + pad)
    max_upper = np.ceil(mask_size * ratio) - 1
    lower = np.where(lower < 0, 0, lower)
    upper = np.where(upper > max_upper, max_upper, upper)
    size = np.array(upper - lower + 1, dtype="int").tolist()
    original_lower = lower / ratio
    origin_index = np.array(0.5 * (spacing - mask_spacing) / mask_spacing)
    cropped_origin_index = origin_index + original_lower
    origin = mask.TransformContinuousIndexToPhysicalPoint(cropped_origin_index)
    first = cropped_origin_index
    last = cropped_origin_index + (np.array(size) - 1) / ratio
    return Grid(tuple(origin), tuple(float(s) for s in spacing), tuple(int(s) for s in size),
                tuple(mask.GetDirection()), tuple(float(v) for v in first), tuple(float(v) for v in last))


def resample(image: sitk.Image, grid: Grid, interpolator: int, pixel_type: int) -> sitk.Image:
    """The same ``ResampleImageFilter`` calls as ``resampleImage`` (identity transform, default value 0)."""
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(grid.spacing)
    rif.SetOutputDirection(grid.direction)
    rif.SetSize(list(grid.size))
    rif.SetOutputOrigin(grid.origin)
    rif.SetOutputPixelType(pixel_type)
    rif.SetInterpolator(interpolator)
    return rif.Execute(image)
