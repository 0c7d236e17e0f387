"""PET (and CT) lesion indices on the image grid as read: SUVmax/mean/SD/peak, MTV, TLG, centroids; per scan TMTV,
TTLG and Dmax over the union of lesion voxels.

Why here and not from PyRadiomics: PyRadiomics computes first-order values on its *resampled* grid (4 mm
isotropic in our parameter files), which changes SUVmax and the voxel count; trial papers report SUVmax and MTV on
the reconstructed grid. So every index is computed on the SUV (or HU) image exactly as loaded, on the lesion's
bounding box (a view of the full array, no copy of the volume). Definitions and sources: docs/lesions-and-indices.md.

* ``suv_max``, ``suv_mean``, ``suv_sd``: maximum, mean and population SD (ddof 0, as IBSI 1 "intensity-based
  statistical features" define the variance, tag ECT3) of the lesion's voxels.
* ``mtv_ml``: voxel count x voxel volume / 1000 (metabolic tumour volume; Boellaard et al. 2015 EANM guideline).
* ``tlg``: suv_mean x mtv_ml (total lesion glycolysis, Larson et al. 1999; "total lesion uptake" for CXCR4/SSTR
  tracers). NOT IBSI's "integrated intensity" (tag 99N0), which multiplies the mean by the *mesh* volume.
* ``suv_peak``: IBSI 1 local (VJGA) or global (0F91) intensity peak (``radiomx.features.peak``), both recorded.
* ``centroid_[xyz]_mm``: mean of the lesion's voxel centres in patient coordinates (LPS, mm), through the image's
  origin, spacing and direction.

Each lesion is read from its own layer (``radiomx.features.lesions``): its indices come from its own mask, whatever
overlaps it. The scan's burden counts a voxel once (``scan_indices``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radiomx.features.lesions import Lesion, layers_of
from radiomx.features.peak import IBSI_PEAK_RADIUS_MM, intensity_peaks

NAN = float("nan")


def voxel_ml(image: sitk.Image) -> float:
    """Volume of one voxel in mL (mm^3 / 1000)."""
    return float(np.prod(image.GetSpacing())) / 1000.0


def _box(lesion: Lesion, grow: tuple[int, int, int] = (0, 0, 0),
         shape: tuple[int, int, int] | None = None) -> tuple[slice, slice, slice]:
    """The lesion's bounding box as (z, y, x) slices, grown by ``grow`` (z, y, x) voxels and clipped to ``shape``."""
    (x0, y0, z0), (nx, ny, nz) = lesion.bbox_index, lesion.bbox_size
    lo, hi = np.array([z0, y0, x0]) - grow, np.array([z0 + nz, y0 + ny, x0 + nx]) + grow
    if shape is not None:
        lo, hi = np.maximum(lo, 0), np.minimum(hi, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def centroid_mm(image: sitk.Image, index_zyx: np.ndarray) -> tuple[float, float, float]:
    """Mean of voxel centres (rows of (z, y, x) indices) in patient LPS mm: the map index -> point is affine, so
    the mean of the points is the point of the mean index."""
    mean = index_zyx.mean(axis=0)
    return tuple(float(v) for v in image.TransformContinuousIndexToPhysicalPoint(
        (float(mean[2]), float(mean[1]), float(mean[0]))))  # type: ignore[return-value]


def peak_extent(image: sitk.Image) -> tuple[int, int, int]:
    """Voxels (z, y, x) the IBSI 1 cm^3 sphere reaches from its centre: how far a crop must extend for the peak."""
    return tuple(int(math.floor(IBSI_PEAK_RADIUS_MM / s)) for s in reversed(image.GetSpacing()))  # type: ignore


def lesion_indices(image: sitk.Image, labels: sitk.Image, lesion: Lesion, unit: str,
                   peak_definition: str = "ibsi-local") -> dict[str, float | int | str]:
    """The index columns of one lesion (PET: ``suv_*``, ``mtv_ml``, ``tlg``; CT: ``hu_*``, ``volume_ml``)."""
    values = sitk.GetArrayViewFromImage(image)
    label_values = sitk.GetArrayViewFromImage(labels)
    box = _box(lesion)
    inside = label_values[box] == lesion.lesion_id
    voxels = values[box][inside].astype(np.float64)
    if voxels.size == 0:
        raise ValueError(f"lesion {lesion.lesion_id} has no voxel on the image grid")
    index = np.argwhere(inside) + np.array([b.start for b in box])
    cx, cy, cz = centroid_mm(image, index)
    volume = voxels.size * voxel_ml(image)
    mean, sd, top = float(voxels.mean()), float(voxels.std()), float(voxels.max())
    position = {"centroid_x_mm": cx, "centroid_y_mm": cy, "centroid_z_mm": cz}
    if unit != "SUVbw":
        return {"hu_max": top, "hu_mean": mean, "hu_sd": sd, "volume_ml": volume, **position}
    # The peak's sphere draws on voxels outside the lesion (IBSI 1, 9ST6): crop the box grown by the sphere's reach;
    # clipping at the image border equals leaving outside-image voxels out, as the IBSI phantom requires.
    grown = _box(lesion, peak_extent(image), values.shape)
    peaks = intensity_peaks(values[grown], label_values[grown] == lesion.lesion_id, tuple(reversed(image.GetSpacing())))
    chosen = peaks.local_peak if peak_definition == "ibsi-local" else peaks.global_peak
    return {"suv_max": top, "suv_mean": mean, "suv_sd": sd, "suv_peak": chosen,
            "suv_peak_definition": peak_definition, "suv_peak_sphere_voxels": peaks.sphere_voxels,
            "suv_peak_local": peaks.local_peak, "suv_peak_global": peaks.global_peak,
            "mtv_ml": volume, "tlg": mean * volume, **position}


def lesion_points_mm(image: sitk.Image, labels: sitk.Image | Sequence[sitk.Image],
                     lesions: Iterable[Lesion]) -> np.ndarray:
    """Patient coordinates (mm) of the voxel centres of all lesions that can be farthest apart: per lesion only
    voxels that end a run along every axis (a voxel inside a run along some axis lies between two others on a
    line, so it is never a vertex of the convex hull and never an end of a diameter). ``labels``: the label map, or
    the layers lesions are read from. Every vertex of the union's hull is a vertex of some lesion's hull, so the
    points of overlapping lesions give the diameter of their union."""
    layers = [sitk.GetArrayViewFromImage(layer) for layer in layers_of(labels)]
    chunks = []
    for lesion in lesions:
        box = _box(lesion)
        # padding: np.roll must not wrap lesion voxels
        inside = np.pad(layers[lesion.layer][box] == lesion.lesion_id, 1)
        between = np.zeros_like(inside)
        for axis in range(3):
            between |= np.roll(inside, 1, axis) & np.roll(inside, -1, axis)
        keep = inside & ~between
        chunks.append(np.argwhere(keep[1:-1, 1:-1, 1:-1]) + np.array([b.start for b in box]))
    if not chunks:
        return np.zeros((0, 3))
    index = np.concatenate(chunks).astype(np.float64)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    xyz = index[:, ::-1] * np.array(image.GetSpacing())
    return xyz @ direction.T + np.array(image.GetOrigin())


def diameter_mm(points: np.ndarray, pairs_per_chunk: int = 1 << 20) -> float:
    """Largest Euclidean distance between two of ``points`` ((n, 3) mm), exact.

    Pruned brute force: any pair gives a lower bound d0; a point whose distance to the farthest corner of the
    points' bounding box is below d0 cannot end a longer pair and is dropped; the rest are compared all-pairs in
    chunks of about ``pairs_per_chunk`` pairs (~24 MB of differences, whatever the lesion burden; no Python loop
    over points)."""
    if len(points) < 2:
        return NAN
    lo, hi = points.min(axis=0), points.max(axis=0)
    # Lower bound: the farthest point from each extreme point along the three axes.
    seeds = points[np.concatenate([points.argmin(axis=0), points.argmax(axis=0)])]
    d0 = float(np.sqrt(((points[:, None, :] - seeds[None, :, :]) ** 2).sum(-1)).max())
    reach = np.sqrt((np.maximum(np.abs(points - lo), np.abs(points - hi)) ** 2).sum(axis=1))
    candidates = points[reach >= d0]
    best = d0 * d0
    chunk = max(1, pairs_per_chunk // len(candidates))
    for start in range(0, len(candidates), chunk):
        block = candidates[start:start + chunk]
        others = candidates[start:]  # pairs with earlier points were compared in earlier chunks
        d2 = ((block[:, None, :] - others[None, :, :]) ** 2).sum(-1)
        best = max(best, float(d2.max()))
    return math.sqrt(best)


def _union_totals(image: sitk.Image, layers: tuple[sitk.Image, ...], lesions: tuple[Lesion, ...]
                  ) -> tuple[int, float]:
    """(voxel count, sum of image values) over the union of the lesions' voxels, each voxel once. One layer: the
    lesions are disjoint, so per-lesion sums over their bounding boxes; several: a union mask is built."""
    values = sitk.GetArrayViewFromImage(image)
    arrays = [sitk.GetArrayViewFromImage(layer) for layer in layers]
    if len(layers) == 1:
        total = sum(float(values[_box(lesion)][arrays[0][_box(lesion)] == lesion.lesion_id].sum(dtype=np.float64))
                    for lesion in lesions)
        return sum(lesion.voxel_count for lesion in lesions), total
    union = np.zeros(values.shape, dtype=bool)
    for lesion in lesions:
        box = _box(lesion)
        union[box] |= arrays[lesion.layer][box] == lesion.lesion_id
    return int(union.sum()), float(values[union].sum(dtype=np.float64))


def scan_indices(image: sitk.Image, labels: sitk.Image | Sequence[sitk.Image], lesions: tuple[Lesion, ...],
                 unit: str = "SUVbw") -> dict[str, float]:
    """Over the union of lesion voxels (each voxel counted once, however many lesions overlap it):
    ``tmtv_ml`` (voxel count x voxel volume), ``ttlg`` (PET: sum of SUV over the union's voxels x voxel volume in
    mL, the union's total uptake; equal to the sum of the lesions' TLG when no lesions overlap; null on CT) and
    ``dmax_voxel_mm`` (largest distance between any two lesion voxel centres; null with fewer than 2 lesions)."""
    layers = layers_of(labels)
    count, total = _union_totals(image, layers, lesions)
    dmax = diameter_mm(lesion_points_mm(image, layers, lesions)) if len(lesions) >= 2 else NAN
    return {"tmtv_ml": float(count * voxel_ml(image)),
            "ttlg": float(total * voxel_ml(image)) if unit == "SUVbw" else NAN, "dmax_voxel_mm": dmax}


@dataclass(frozen=True)
class LesionValues:
    """A lesion's maximum (SUVmax, or HU max on CT) and volume (MTV in mL), as the QC picture labels it."""

    lesion_id: int
    suv_max: float
    mtv_ml: float


def lesion_values(image: np.ndarray, labels: np.ndarray, spacing_xyz: tuple[float, float, float]
                  ) -> list[LesionValues]:
    """Per non-zero label of ``labels`` (value = lesion_id): the max of ``image`` and voxels x voxel volume in mL,
    by the same definitions as ``lesion_indices``' ``suv_max`` and ``mtv_ml`` (on the grid as read; Boellaard et al.,
    EANM guideline 2015), for every label at once: the QC picture labels each outline with these, including lesions
    the guards refused (which get no row). ``tests/test_indices.py`` checks that both agree.

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
