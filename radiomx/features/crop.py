"""Per-lesion inputs that make PyRadiomics cost what the lesion costs, not what the whole body costs.

``RadiomicsFeatureExtractor.execute`` on a whole-body volume re-reads, casts, scans and (without resampling) filters
the entire body for every lesion. This module hands it, per lesion, a small image and mask on which it computes the
*same* numbers. Three ways, picked from the settings (``plan_for``):

``resample`` (``resampledPixelSpacing`` set)
    PyRadiomics resamples onto a grid aligned to the lesion's bounding box *in the index space of the image it is
    given*, cropped to that box plus ``padDistance``, and runs every filter on that small grid. Cropping the input
    first would shift that grid (values off by >10 %). So ``resample_grid`` computes the grid exactly as
    ``radiomics.imageoperations.resampleImage`` does from the full mask (same numpy expressions, same order), we
    resample onto it ourselves and call the extractor with resampling off. Interpolators without a prefilter (linear,
    nearest, Gaussian, windowed sinc) read the full image directly: an ITK resample costs only the output voxels,
    and identical inputs give bit-identical outputs. B-spline interpolators prefilter their whole input with a
    recursive (IIR) filter; ``bspline`` computes those coefficients on the samples' footprint only (plus
    the distance the filter needs to converge, ``bspline_decay``) and ITK evaluates them.
    The mask is always resampled (nearest neighbour) from the full label map.
``crop`` (no resampling; image types Original, LoG, Wavelet, or ``preCrop``)
    The filters run on our crop instead of the body, so the crop carries a margin, per axis, wide enough that every
    voxel inside the lesion's box gets the same filtered value (``filter_margin``); the margin is clipped at the
    image border, where both paths see the same border (ITK's recursive filters extend the border value) except for
    the wavelet, whose periodic extension wraps to the opposite side: there the crop keeps the whole axis.
``full`` (no resampling and a filter with whole-image state: Square, SquareRoot, Logarithm, Exponential scale by the
    whole image's maximum; Gradient, LBP are not derived here)
    The full image, as before: exact, slow, and rare.

``resample_grid`` replays PyRadiomics 3.1's arithmetic and ``wavelet_reach`` pywt 1.9's ``swtn`` filter lengths,
so both libraries are bounded in pyproject.toml (``tests/test_library_versions.py``); the value tests
(``tests/test_crop_equivalence.py``) fail if a new version computes differently.

``normalize`` uses whole-image statistics, so it is applied once per scan on the full image (PyRadiomics' own
``normalizeImage``, before anything else, as ``loadImage`` does) and switched off for the per-lesion call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from radiomx.features import bspline
from radiomx.features.lesions import Lesion

#: Bits a boundary disturbance must decay by before it can no longer change a float64 result: the 53-bit mantissa
#: plus 11 bits (x2048) of headroom because the disturbance is as large as the intensities at the crop border,
#: which may exceed the values near the lesion (body vs lesion rim, or a LoG response near zero).
EXACT_BITS = 53 + 11

#: ITK's recursive Gaussian (``RecursiveGaussianImageFilter``, used by ``LaplacianRecursiveGaussianImageFilter``) is
#: a 4th-order IIR filter run forwards and backwards along each axis. Its poles are exp((L +- iW) / sigma_voxels)
#: with (L, W) = (-1.3932, 0.6681) and (-1.3732, 2.0787) (Farnebaeck & Westin's fit of Deriche's filter), so an input
#: sample ``d`` voxels away is weighted at most ~exp(-1.3732 d / sigma_voxels).
LOG_DECAY_PER_SIGMA = 1.3732

#: Image types whose value at a voxel depends only on a bounded neighbourhood (Original: none; LoG: an IIR filter
#: whose reach we bound; Wavelet: an FIR filter bank). Anything else without resampling takes the ``full`` path.
LOCAL_IMAGE_TYPES = frozenset({"Original", "LoG", "Wavelet"})

_BSPLINE_ORDER = {sitk.sitkBSpline1: 1, sitk.sitkBSpline2: 2, sitk.sitkBSpline3: 3, sitk.sitkBSpline4: 4,
                  sitk.sitkBSpline5: 5}


def bspline_decay(order: int) -> int:
    """Voxels a B-spline prefilter must run before the samples' support so a crop's coefficients equal the full
    volume's.

    The prefilter's causal and anti-causal recursions c[k] = s[k] + z c[k-1] start at the crop border with a wrong
    state; the error shrinks by |z| per voxel (|z| = 0.268 for cubic), so after ceil(EXACT_BITS ln 2 / -ln|z|)
    voxels (34 for cubic) it is below the last bit of a float64 and the recursion carries the full volume's
    coefficients. The samples' support (order // 2 + 1 coefficients on each side) is added by
    ``bspline.coefficient_image``.
    """
    return max((math.ceil(EXACT_BITS * math.log(2) / -math.log(abs(z))) for z in bspline.poles(order)), default=0)


def log_reach(sigma_mm: float, spacing_mm: float) -> int:
    """Voxels along one axis that a LoG crop needs so that the lesion's voxels equal the full-volume LoG.

    With decay exp(-LOG_DECAY_PER_SIGMA d / s) (s = sigma / spacing in voxels), the boundary disturbance falls below
    2**-EXACT_BITS after d = EXACT_BITS ln 2 s / LOG_DECAY_PER_SIGMA (~32 s). Plus one voxel for the rounding, and at
    least ceil(sigma/spacing) + 1 so PyRadiomics' own size check (``size >= ceil(sigma/spacing) + 1``) passes on the
    crop whenever it passes on the full image.
    """
    s = sigma_mm / spacing_mm
    return max(math.ceil(EXACT_BITS * math.log(2) * s / LOG_DECAY_PER_SIGMA) + 1, math.ceil(s) + 1)


def wavelet_reach(settings: dict[str, Any]) -> int:
    """Voxels a wavelet crop needs: each level is one undecimated pass of filters ``dec_len`` taps long (PyRadiomics
    calls ``pywt.swtn(level=1)`` once per level), which reads at most ``dec_len - 1`` neighbours on either side;
    levels chain, so the reach adds up over ``start_level + level`` passes. One more pass-width keeps the lesion's
    voxels inside pywt's interior loop (the same summation order as in the full volume)."""
    import pywt

    wavelet = pywt.Wavelet(settings.get("wavelet", "coif1"))
    passes = int(settings.get("start_level", 0)) + int(settings.get("level", 1))
    return (passes + 1) * (wavelet.dec_len - 1)


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


def resampling_enabled(settings: dict[str, Any]) -> bool:
    """PyRadiomics resamples iff both are set (``loadImage``)."""
    return settings.get("interpolator") is not None and settings.get("resampledPixelSpacing") is not None


def plan_for(settings: dict[str, Any], image_types: dict[str, dict[str, Any]]) -> CropPlan:
    """Pick the per-lesion strategy for the extractor's effective settings and enabled image types."""
    if resampling_enabled(settings):
        mode = "resample"
    elif settings.get("preCrop", False) or set(image_types) <= LOCAL_IMAGE_TYPES:
        mode = "crop"
    else:
        mode = "full"
    return CropPlan(mode, dict(settings), {k: dict(v or {}) for k, v in image_types.items()})


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


def _resample(image: sitk.Image, grid: Grid, interpolator: int, pixel_type: int) -> sitk.Image:
    """The same ResampleImageFilter calls as ``resampleImage`` (identity transform, default value 0)."""
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(grid.spacing)
    rif.SetOutputDirection(grid.direction)
    rif.SetSize(list(grid.size))
    rif.SetOutputOrigin(grid.origin)
    rif.SetOutputPixelType(pixel_type)
    rif.SetInterpolator(interpolator)
    return rif.Execute(image)


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
        order = _BSPLINE_ORDER.get(interpolator)
        if order is None:
            resampled = _resample(image, grid, interpolator, image.GetPixelID())
        else:
            # The B-spline prefilter would run over the whole body for each lesion: compute the coefficients of the
            # samples' footprint only (plus the prefilter's convergence distance) and let ITK evaluate them.
            coefficients = bspline.coefficient_image(image, order, bspline_decay(order),
                                                     np.array(grid.first_index), np.array(grid.last_index))
            resampled = _resample(coefficients, grid, bspline.RESAMPLER[order], image.GetPixelID())
        mask = _resample(labels, grid, sitk.sitkNearestNeighbor, labels.GetPixelID())
        lost = lesion.lesion_id not in np.unique(sitk.GetArrayViewFromImage(mask))
        return LesionInput(lesion.lesion_id, resampled, mask, "resample", lost)
    margin = np.array(plan.margins(image.GetSpacing()))
    lo, hi = bb_lo - margin, bb_hi + margin
    if plan.wraps:
        crosses = (lo < 0) | (hi > size - 1)
        lo, hi = np.where(crosses, 0, lo), np.where(crosses, size - 1, hi)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, size - 1)
    return LesionInput(lesion.lesion_id, _region(image, lo, hi), _region(labels, lo, hi), "crop")
