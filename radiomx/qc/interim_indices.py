"""SUVmax and MTV per lesion for the QC labels, computed here from the image in memory.

INTERIM: the published definitions live in ``radiomx/features/indices.py`` (issue 14, branch h14a); when that is
merged, ``lesion_values`` must call it instead, so that a picture's label and the table's column are the same
number by construction. Both are simple enough to agree meanwhile: on the grid as read (not PyRadiomics' resampled
grid), SUVmax is the largest voxel value in the lesion (Boellaard et al., EANM guideline 2015), MTV is the voxel
count times the voxel volume (mm^3 / 1000 = mL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LesionValues:
    lesion_id: int
    suv_max: float
    mtv_ml: float


def lesion_values(image: np.ndarray, labels: np.ndarray, spacing_xyz: tuple[float, float, float]
                  ) -> list[LesionValues]:
    """Per non-zero label of ``labels`` (value = lesion_id): max of ``image`` and voxels x voxel volume in mL.

    One pass over the lesion voxels only (np.flatnonzero + a sort), not one full-volume mask per lesion."""
    flat = np.flatnonzero(labels)
    if flat.size == 0:
        return []
    ids = labels.reshape(-1)[flat]
    values = image.reshape(-1)[flat]
    order = np.argsort(ids, kind="stable")
    ids, values = ids[order], values[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    maxima = np.maximum.reduceat(values, starts)
    counts = np.diff(np.r_[starts, ids.size])
    voxel_ml = float(np.prod(spacing_xyz)) / 1000.0
    return [LesionValues(int(ids[s]), float(m), float(c) * voxel_ml) for s, m, c in zip(starts, maxima, counts,
                                                                                       strict=True)]
