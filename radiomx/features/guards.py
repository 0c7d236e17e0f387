"""Checks on a lesion's intensities before PyRadiomics sees them.

Why before: PyRadiomics allocates grey-level matrices of (levels x levels) per angle, so a bin width applied to the
wrong unit (an SUV bin width on Bq/mL, PyRadiomics issue #444) exhausts memory or runs for hours instead of
failing; and a negative SUV inside a lesion means the image is not what the parameter file assumes. Both become a
one-line lesion failure, computed from one pass of label statistics over the scan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import SimpleITK as sitk

from radiomx.features.lesions import Lesion, layers_of
from radiomx.params.paramset import MAX_GREY_LEVELS, ParamSet
from radiomx.vocabulary import Stage


def grey_levels(low: float, high: float, bin_width: float) -> int:
    """Number of fixed-width bins PyRadiomics uses for values in [low, high] (edges start at floor(low / width))."""
    return int(math.floor(high / bin_width) - math.floor(low / bin_width)) + 1


def lesion_problems(image: sitk.Image, labels: sitk.Image | Sequence[sitk.Image], lesions: tuple[Lesion, ...],
                    params: ParamSet, unit: str) -> dict[int, tuple[str, str]]:
    """``{lesion_id: (stage, message)}`` for lesions that must not reach PyRadiomics. ``labels``: the label map, or
    the layers the lesions are read from (``radiomx.features.lesions``)."""
    if not lesions:
        return {}
    values = sitk.GetArrayViewFromImage(image)  # (z, y, x) views: no copy of the volume
    layers = [sitk.GetArrayViewFromImage(layer) for layer in layers_of(labels)]
    settings = params.settings
    bin_width = settings.get("binWidth") if "binCount" not in settings else None
    reseg = settings.get("resegmentRange")
    problems: dict[int, tuple[str, str]] = {}
    for lesion in lesions:
        (x0, y0, z0), (nx, ny, nz) = lesion.bbox_index, lesion.bbox_size
        box = (slice(z0, z0 + nz), slice(y0, y0 + ny), slice(x0, x0 + nx))
        inside = values[box][layers[lesion.layer][box] == lesion.lesion_id]
        if inside.size == 0:
            continue
        low, high = float(inside.min()), float(inside.max())
        if unit == "SUVbw" and low < 0:
            problems[lesion.lesion_id] = (Stage.SUV, f"lesion {lesion.lesion_id} holds negative SUV (min {low:.3g}); "
                                                     "SUV cannot be negative: check the image units and reconstruction")
            continue
        if bin_width and not settings.get("normalize"):
            if reseg:
                low = max(low, float(reseg[0])) if len(reseg) > 0 else low
                high = min(high, float(reseg[1])) if len(reseg) > 1 else high
            if high >= low:
                levels = grey_levels(low, high, float(bin_width))
                if levels > MAX_GREY_LEVELS:
                    problems[lesion.lesion_id] = (Stage.FEATURES, (
                        f"lesion {lesion.lesion_id} spans {low:.6g}..{high:.6g} {unit}: binWidth {bin_width} would "
                        f"give {levels} grey levels (limit {MAX_GREY_LEVELS}); are the voxels really {unit}?"))
    return problems
