"""Per-lesion inputs that make PyRadiomics cost what the lesion costs, not what the whole body costs.

``RadiomicsFeatureExtractor.execute`` on a whole-body volume re-reads, casts, scans and (without resampling) filters
the entire body for every lesion. This module hands it, per lesion, a small image and mask on which it computes the
*same* numbers. Three ways, picked from the settings (``plan_for``):

``resample`` (``resampledPixelSpacing`` set)
    PyRadiomics resamples onto a grid aligned to the lesion's bounding box in the index space of the image it is
    given, so cropping first would shift it: the grid is computed as PyRadiomics does from the full mask
    (``replays.pyradiomics_grid``), the lesion is resampled onto it here and the extractor runs with resampling off.
    Interpolators without a prefilter (linear, nearest, Gaussian, windowed sinc) read the full image directly: an
    ITK resample costs only the output voxels, and identical inputs give bit-identical outputs. B-spline
    interpolators prefilter their whole input with a recursive (IIR) filter; ``replays.itk_bspline`` computes those
    coefficients on the samples' footprint only (plus the distance the filter needs to converge) and ITK evaluates
    them. The mask is always resampled (nearest neighbour) from the full label map.
``crop`` (no resampling; image types Original, LoG, Wavelet, or ``preCrop``)
    The filters run on our crop instead of the body, so the crop carries a margin, per axis, wide enough that every
    voxel inside the lesion's box gets the same filtered value (``replays.filter_reach``); the margin is clipped at
    the image border, where both paths see the same border (ITK's recursive filters extend the border value) except
    for the wavelet, whose periodic extension wraps to the opposite side: there the crop keeps the whole axis.
``full`` (no resampling and a filter with whole-image state: Square, SquareRoot, Logarithm, Exponential scale by the
    whole image's maximum; Gradient, LBP are not derived here)
    The full image, as before: exact, slow, and rare.

Everything that reproduces a library's internals lives in ``radiomx.features.replays``, with its version bounds and
equivalence tests; this module only decides and cuts. ``tests/test_crop_equivalence.py`` proves the values equal a
full-volume PyRadiomics call.

``normalize`` uses whole-image statistics, so it is applied once per scan on the full image (PyRadiomics' own
``normalizeImage``, before anything else, as ``loadImage`` does) and switched off for the per-lesion call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from radiomx.features.lesions import Lesion
from radiomx.features.replays import itk_bspline
from radiomx.features.replays.filter_reach import log_reach, wavelet_reach
from radiomx.features.replays.pyradiomics_grid import interpolator_of, resample, resample_grid, resampling_enabled

#: Image types whose value at a voxel depends only on a bounded neighbourhood (Original: none; LoG: an IIR filter
#: whose reach we bound; Wavelet: an FIR filter bank). Anything else without resampling takes the ``full`` path.
LOCAL_IMAGE_TYPES = frozenset({"Original", "LoG", "Wavelet"})


@dataclass(frozen=True)
class CropPlan:
    """How the lesions of one parameter file are cut out (see the module docstring)."""

    mode: str  # "resample", "crop" or "full"
    #: The extractor's effective settings (PyRadiomics defaults + the parameter file).
    settings: dict[str, Any]
    image_types: dict[str, dict[str, Any]]

    def margins(self, spacing: tuple[float, ...]) -> tuple[int, ...]:
        """The per-axis margin around the lesion's bounding box, derived from the enabled filters.

        With ``preCrop`` PyRadiomics itself filters only the box plus ``padDistance``, so that is all we need.
        Otherwise: the largest reach over the enabled image types (Original needs none: features read only the box).
        """
        if self.settings.get("preCrop", False):
            return (int(self.settings.get("padDistance", 5)),) * len(spacing)
        out = []
        for sp in spacing:
            reach = 0
            for name, custom in self.image_types.items():
                args = {**self.settings, **(custom or {})}
                if name == "LoG":
                    reach = max([reach] + [log_reach(float(s), sp) for s in args.get("sigma", []) if s > 0])
                elif name == "Wavelet":
                    reach = max(reach, wavelet_reach(args))
            out.append(reach)
        return tuple(out)

    @property
    def wraps(self) -> bool:
        """True when a filter extends the image periodically (wavelet), so a margin that crosses the border must
        keep the whole axis instead of clipping."""
        return "Wavelet" in self.image_types and not self.settings.get("preCrop", False)


def plan_for(settings: dict[str, Any], image_types: dict[str, dict[str, Any]]) -> CropPlan:
    """Pick the per-lesion strategy for the extractor's effective settings and enabled image types."""
    if resampling_enabled(settings):
        mode = "resample"
    elif settings.get("preCrop", False) or set(image_types) <= LOCAL_IMAGE_TYPES:
        mode = "crop"
    else:
        mode = "full"
    return CropPlan(mode, dict(settings), {k: dict(v or {}) for k, v in image_types.items()})


def _region(image: sitk.Image, lower: np.ndarray, upper: np.ndarray) -> sitk.Image:
    """``image[lower:upper+1]`` per axis (x, y, z), bounds already clipped to the image."""
    lo = [int(v) for v in lower]
    size = [int(u) - int(v) + 1 for u, v in zip(upper, lower, strict=True)]
    if lo == [0] * len(lo) and tuple(size) == image.GetSize():
        return image
    return sitk.RegionOfInterest(image, size, lo)


@dataclass
class LesionInput:
    """What one lesion's PyRadiomics call receives (small, picklable): image and mask, and which extractor
    variant reads them (``resample``: resampling already done; ``crop``/``full``: resampling never enabled)."""

    lesion_id: int
    image: sitk.Image
    mask: sitk.Image
    mode: str
    #: True when resampling left no voxel of this label: PyRadiomics' full path raises in checkMask.
    label_lost: bool = False


def normalized(image: sitk.Image, settings: dict[str, Any]) -> sitk.Image:
    """Whole-image normalization, once per scan, with PyRadiomics' own function (identical to ``loadImage``)."""
    if not settings.get("normalize", False):
        return image
    from radiomics import imageoperations

    return imageoperations.normalizeImage(image, **settings)


def lesion_input(plan: CropPlan, image: sitk.Image, labels: sitk.Image, lesion: Lesion) -> LesionInput:
    """Cut one lesion out of an already-normalized full image and its full label map (unsigned
    integers, image geometry)."""
    size = np.array(image.GetSize())
    bb_lo = np.array(lesion.bbox_index)
    bb_hi = bb_lo + np.array(lesion.bbox_size) - 1
    if plan.mode == "full":
        return LesionInput(lesion.lesion_id, image, labels, "full")
    if plan.mode == "resample":
        grid = resample_grid(labels, lesion, plan.settings)
        if grid is None:  # same spacing: resampleImage only crops to the box + padDistance
            pad = int(plan.settings.get("padDistance", 5))
            lo, hi = np.maximum(bb_lo - pad, 0), np.minimum(bb_hi + pad, size - 1)
            return LesionInput(lesion.lesion_id, _region(image, lo, hi), _region(labels, lo, hi), "resample")
        interpolator = interpolator_of(plan.settings)
        order = itk_bspline.ORDER.get(interpolator)
        if order is None:
            resampled = resample(image, grid, interpolator, image.GetPixelID())
        else:
            # The B-spline prefilter would run over the whole body for each lesion: compute the coefficients of the
            # samples' footprint only (plus the prefilter's convergence distance) and let ITK evaluate them.
            coefficients = itk_bspline.coefficient_image(image, order, itk_bspline.bspline_decay(order),
                                                         np.array(grid.first_index), np.array(grid.last_index))
            resampled = resample(coefficients, grid, itk_bspline.RESAMPLER[order], image.GetPixelID())
        mask = resample(labels, grid, sitk.sitkNearestNeighbor, labels.GetPixelID())
        lost = lesion.lesion_id not in np.unique(sitk.GetArrayViewFromImage(mask))
        return LesionInput(lesion.lesion_id, resampled, mask, "resample", lost)
    margin = np.array(plan.margins(image.GetSpacing()))
    lo, hi = bb_lo - margin, bb_hi + margin
    if plan.wraps:
        crosses = (lo < 0) | (hi > size - 1)
        lo, hi = np.where(crosses, 0, lo), np.where(crosses, size - 1, hi)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, size - 1)
    return LesionInput(lesion.lesion_id, _region(image, lo, hi), _region(labels, lo, hi), "crop")
