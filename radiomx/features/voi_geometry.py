"""Geometry for placing reference VOIs on a PET grid: clearances in mm, voxel balls and cylinders, deterministic
placement, masks near lesions. Used by ``radiomx.features.organ_references``.

Conventions (docs/organs.md):

* a VOI is a set of PET voxels chosen by their *centres*, as IBSI's peak sphere is: a sphere of radius r around a
  voxel centre c holds every voxel whose centre lies within r of c (distances in mm through the voxel spacing);
* a VOI fits a region when every one of its voxels belongs to the region; the region's *clearance* at a voxel is
  the distance from its centre to the nearest voxel centre outside the region (the image's border counts as
  outside). A sphere of radius r centred at c fits exactly when the clearance at c is greater than r; clearances
  come from SimpleITK's exact Euclidean distance transform (``SignedMaurerDistanceMap``, Maurer et al. 2003) in
  float32, so every placement is checked once more voxel by voxel in float64 before it is used;
* placement is deterministic: the centre with the largest clearance, ties broken by the distance to the region's
  centroid, then by raster order (z, y, x).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from radiomx.inputs.organs import Box, BoxMask

#: Float tolerance when comparing a voxel centre's distance with a radius (mm).
RADIUS_TOL = 1e-9
#: A spacing standing in for "infinitely far" along z: distances within each slice (blood-pool cylinder).
IN_PLANE_ONLY = 1.0e6


def clearance_mm(region: np.ndarray, spacing_zyx: Sequence[float]) -> np.ndarray:
    """For every voxel of ``region`` (boolean z, y, x), the distance (mm) from its centre to the nearest voxel centre
    outside it, the array's border counting as outside; 0 outside the region."""
    padded = np.pad(region, 1)
    outside = sitk.GetImageFromArray((~padded).astype(np.uint8))
    outside.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        outside, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))[1:-1, 1:-1, 1:-1]
    return np.where(region, distance, 0.0).astype(np.float32)


def offsets_within(spacing_zyx: Sequence[float], radius_zyx: Sequence[float]) -> np.ndarray:
    """Integer (dz, dy, dx) offsets of the voxel centres inside the ellipsoid of semi-axes ``radius_zyx`` mm around a
    voxel centre (a sphere when all three are equal; an infinite radius is given as ``inf`` and not used)."""
    spacing = np.asarray(spacing_zyx, dtype=np.float64)
    radius = np.asarray(radius_zyx, dtype=np.float64)
    reach = [int(np.floor(r / s + RADIUS_TOL)) if np.isfinite(r) else 0 for r, s in zip(radius, spacing, strict=True)]
    grid = np.stack(np.meshgrid(*(np.arange(-n, n + 1) for n in reach), indexing="ij"), axis=-1).reshape(-1, 3)
    scaled = np.where(np.isfinite(radius), grid * spacing / np.where(np.isfinite(radius), radius, 1.0), 0.0)
    return grid[(scaled**2).sum(axis=1) <= 1.0 + RADIUS_TOL]


def ball_offsets(spacing_zyx: Sequence[float], radius_mm: float) -> np.ndarray:
    """Offsets of the voxel centres within ``radius_mm`` of a voxel centre."""
    return offsets_within(spacing_zyx, (radius_mm, radius_mm, radius_mm))


def cylinder_offsets(spacing_zyx: Sequence[float], radius_mm: float, half_length_mm: float) -> np.ndarray:
    """Offsets of a cylinder along z: voxel centres within ``radius_mm`` of the axis in plane and within
    ``half_length_mm`` of the centre along z."""
    disc = offsets_within(spacing_zyx, (np.inf, radius_mm, radius_mm))
    reach = int(np.floor(half_length_mm / float(spacing_zyx[0]) + RADIUS_TOL))
    return np.concatenate([disc + np.array([dz, 0, 0]) for dz in range(-reach, reach + 1)])


def fits(region: np.ndarray, centre: Sequence[int], offsets: np.ndarray) -> bool:
    """Does every voxel of ``centre + offsets`` lie inside ``region`` (and inside the array)?"""
    points = np.asarray(centre) + offsets
    if (points < 0).any() or (points >= np.array(region.shape)).any():
        return False
    return bool(region[tuple(points.T)].all())


def index_mm(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """Patient (LPS, mm) coordinates (x, y, z) of voxel centres given as rows of (z, y, x) indices on ``image``."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    xyz = np.asarray(index_zyx, dtype=np.float64)[:, ::-1] * spacing
    return xyz @ direction.T + np.asarray(image.GetOrigin(), dtype=np.float64)


def place_of(image: sitk.Image, index_zyx: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """Volume (mL: voxels x voxel volume) and centre (mean of the voxel centres, LPS mm) of a region given as rows
    of (z, y, x) indices on ``image``; the centre is NaN for an empty region."""
    volume = len(index_zyx) * float(np.prod(image.GetSpacing())) / 1000.0
    if len(index_zyx) == 0:
        return volume, (math.nan, math.nan, math.nan)
    centre = index_mm(image, index_zyx).mean(axis=0)
    return volume, (float(centre[0]), float(centre[1]), float(centre[2]))


def box_points_mm(image: sitk.Image, box: Box) -> np.ndarray:
    """Patient coordinates (x, y, z) of every voxel centre of ``box``, shaped (z, y, x, 3)."""
    grid = np.stack(np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij"), axis=-1)
    return index_mm(image, grid.reshape(-1, 3)).reshape(*grid.shape[:3], 3)


def best_centre(region: np.ndarray, clearance: np.ndarray, offsets: np.ndarray, need_mm: float,
                spacing_zyx: Sequence[float], prefer: np.ndarray | None = None) -> tuple[int, int, int] | None:
    """The deterministic centre (module docstring) of a VOI with ``offsets`` inside ``region``: among voxels whose
    ``clearance`` exceeds ``need_mm``, the largest clearance, then the smallest ``prefer`` value (default: distance
    to the region's centroid, mm), then raster order; each candidate is checked voxel by voxel. None if none fits."""
    candidates = np.argwhere(clearance > need_mm + RADIUS_TOL)
    if candidates.size == 0:
        return None
    if prefer is None:
        centroid = np.argwhere(region).mean(axis=0)
        prefer_values = np.sqrt((((candidates - centroid) * np.asarray(spacing_zyx)) ** 2).sum(axis=1))
    else:
        prefer_values = prefer[tuple(candidates.T)]
    raster = np.ravel_multi_index(tuple(candidates.T), region.shape)
    order = np.lexsort((raster, np.round(prefer_values, 6), -np.round(clearance[tuple(candidates.T)], 4)))
    for row in order:
        centre = tuple(int(v) for v in candidates[row])
        if fits(region, centre, offsets):
            return centre  # type: ignore[return-value]
    return None


def grown(box: Box, by: Sequence[int], shape: Sequence[int]) -> Box:
    """``box`` grown by ``by`` (z, y, x) voxels on every side, clipped to ``shape``."""
    return tuple(slice(max(0, s.start - n), min(size, s.stop + n))  # type: ignore[return-value]
                 for s, n, size in zip(box, by, shape, strict=True))


def near_lesions(box: Box, lesions: Sequence[BoxMask], margin_mm: float, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Voxels of ``box`` whose centre lies within ``margin_mm`` of a lesion voxel centre (lesion voxels included).

    Lesions outside the box but within the margin count: their voxels are gathered on the box grown by the margin."""
    reach = [int(np.ceil(margin_mm / s)) + 1 for s in spacing_zyx]
    outer = tuple(slice(s.start - n, s.stop + n) for s, n in zip(box, reach, strict=True))
    lesion = np.zeros(tuple(s.stop - s.start for s in outer), dtype=bool)
    for mask in lesions:
        lesion |= mask.within(outer)  # type: ignore[arg-type]
    inner = tuple(slice(n, n + s.stop - s.start) for s, n in zip(box, reach, strict=True))
    if not lesion.any():
        return np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    image = sitk.GetImageFromArray(lesion.astype(np.uint8))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    return (distance <= margin_mm + RADIUS_TOL)[inner] | lesion[inner]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean (z, y, x) mask (ties: the one ITK numbers first, by
    raster order of its first voxel)."""
    if not mask.any():
        return mask
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True),
                                   sortByObjectSize=True)
    return sitk.GetArrayFromImage(labels) == 1  # a copy: a view would outlive the temporary image
