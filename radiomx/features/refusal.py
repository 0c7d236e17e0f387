"""Why PyRadiomics refused a lesion, in words that say what would change it.

PyRadiomics refuses an ROI in ``imageoperations.checkMask`` (3.1), on the grid it computes features on (after
``resampledPixelSpacing`` when the parameter file resamples): a label with no voxel left, a single voxel, fewer
dimensions of extent > 1 voxel than ``minimumROIDimensions`` (default 2 in ``checkMask``), or no more voxels than
``minimumROISize``. A hint that names a setting must be true: lowering ``minimumROIDimensions`` cannot rescue a
lesion that resampling shrank to one voxel, and a finer spacing cannot rescue one that is a single voxel as read.
So this module measures the lesion on both grids (the one PyRadiomics saw, and the image as read) and names only
the settings that would let it through.

The lesion keeps its row either way: its PET indices are computed on the image as read (``features.indices``) and do
not need PyRadiomics; only its PyRadiomics columns are null, and the message becomes a warning row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

#: ``checkMask``'s own default for ``minimumROIDimensions`` (its docstring says 1; the code reads 2).
DEFAULT_MIN_DIMENSIONS = 2


@dataclass(frozen=True)
class RoiSize:
    """A lesion's size on one grid: voxel count, bounding-box extent in voxels (x, y, z) and the grid spacing."""

    voxels: int
    extent: tuple[int, ...]
    spacing: tuple[float, ...]

    @property
    def dimensions(self) -> int:
        """Axes along which the lesion spans more than one voxel (``checkMask``'s ``ndims``)."""
        return sum(1 for e in self.extent if e > 1)

    def describe(self) -> str:
        if self.voxels == 0:
            return "no voxel"
        voxels = "1 voxel" if self.voxels == 1 else f"{self.voxels} voxels"
        mm = _by(e * s for e, s in zip(self.extent, self.spacing, strict=True))
        return f"{voxels}, extent {_by(self.extent)} voxels = {mm} mm"


def _by(values) -> str:
    return "x".join(f"{v:g}" for v in values)


def roi_size(mask: sitk.Image, label: int) -> RoiSize:
    """Voxels and bounding box of ``label`` in ``mask`` (a small per-lesion mask: one numpy pass)."""
    inside = np.argwhere(sitk.GetArrayViewFromImage(mask) == label)  # (z, y, x)
    spacing = tuple(float(s) for s in mask.GetSpacing())
    if not len(inside):
        return RoiSize(0, (0,) * len(spacing), spacing)
    extent = tuple(int(v) for v in (inside.max(axis=0) - inside.min(axis=0) + 1)[::-1])
    return RoiSize(len(inside), extent, spacing)


def _blocking(size: RoiSize, settings: dict[str, Any]) -> list[str]:
    """The ``checkMask`` tests this size fails, as the names of the settings that set them ("" = no setting)."""
    if size.voxels == 0 or size.dimensions == 0:
        return [""]  # no voxel, or a single voxel: PyRadiomics refuses whatever the settings
    failing = []
    if size.dimensions < int(settings.get("minimumROIDimensions") or DEFAULT_MIN_DIMENSIONS):
        failing.append("minimumROIDimensions")
    minimum = settings.get("minimumROISize")
    if minimum is not None and size.voxels <= int(minimum):
        failing.append("minimumROISize")
    return failing


def _relaxed(size: RoiSize, failing: list[str], settings: dict[str, Any]) -> str:
    """The smallest relaxation of the failing size settings that lets ``size`` through."""
    parts = []
    if "minimumROIDimensions" in failing:
        parts.append(f"minimumROIDimensions {size.dimensions} (now "
                     f"{settings.get('minimumROIDimensions') or DEFAULT_MIN_DIMENSIONS})")
    if "minimumROISize" in failing:  # a size that fails only this has 2 or more voxels (one voxel has no setting)
        parts.append(f"minimumROISize {size.voxels - 1} (now {settings.get('minimumROISize')}; PyRadiomics needs "
                     "more voxels than it)")
    return " and ".join(parts)


def refusal_hint(lesion_id: int, reason: str, seen: RoiSize | None, as_read: RoiSize,
                 settings: dict[str, Any], resampled: bool) -> str:
    """One line: the lesion's size where PyRadiomics saw it (and as read), PyRadiomics' reason, and the settings
    that would really change the outcome (or that none would).

    ``seen``: its size on the grid PyRadiomics checked (None when it was never cut); ``resampled``: that grid is
    ``resampledPixelSpacing``'s, not the image's."""
    seen = seen or as_read
    where = (f"after resampling to {_by(seen.spacing)} mm it has {seen.describe()}" if resampled
             else f"on the image grid ({_by(seen.spacing)} mm) it has {seen.describe()}")
    head = f"lesion {lesion_id}: PyRadiomics features null, PET indices kept ({where}"
    if resampled:
        head += f"; as read: {as_read.describe()}"
    head += f"); PyRadiomics: {reason.rstrip('. ')}"
    options = []
    failing_seen = _blocking(seen, settings)
    if resampled:
        failing_read = _blocking(as_read, settings)
        finer = f"a finer resampledPixelSpacing (now {_by(settings.get('resampledPixelSpacing') or ())} mm"
        if not failing_read:
            options.append(finer + ")")
        elif "" not in failing_read:
            options.append(f"{finer}) together with {_relaxed(as_read, failing_read, settings)}")
    if failing_seen and "" not in failing_seen:
        options.append(_relaxed(seen, failing_seen, settings))
    if options:
        return f"{head}. Would change it, in a new parameter file version: {'; or '.join(options)}"
    if not failing_seen:  # refused for another reason than its size (resegmentation, geometry): PyRadiomics says
        return head
    return f"{head}. No parameter setting gives it PyRadiomics features (a single voxel as read)"
