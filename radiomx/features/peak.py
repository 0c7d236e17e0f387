"""IBSI 1 local intensity features: local intensity peak (VJGA) and global intensity peak (0F91).

Reference: Zwanenburg A. et al., "The Image Biomarker Standardization Initiative", Radiology 2020;
IBSI 1 reference manual (arXiv:1612.07003, ibsi.readthedocs.io), chapter "Image features",
section "Local intensity features" (family tag 9ST6), features

* "Local intensity peak"  (VJGA, MIRP/IBSI table name ``loc_peak_loc``)
* "Global intensity peak" (0F91, MIRP/IBSI table name ``loc_peak_glob``)

Definitions implemented here (see NOTES.md for the exact manual wording):

* The neighbourhood is a 1 cm^3 sphere in world coordinates, radius
  r = (3 / (4 pi))^(1/3) cm ~= 6.2035 mm. A voxel belongs to the sphere of a centre voxel when the
  Euclidean world distance between the two voxel *centres* is within r. The manual says "within"
  (it gives neither "<" nor "<="); we use ``<=`` like MIRP. Because r is irrational, the choice only
  matters for spacings constructed to hit r exactly (e.g. spacing == r); see NOTES.md.
* Every sphere voxel has weight 1 and the centre voxel is included. The sphere draws on the
  intensity image regardless of the ROI ("the local neighbourhood draws upon all voxels regardless of
  being in an ROI"); only centre voxels must lie in the ROI intensity mask.
* Voxels outside the image are left out of the mean (the denominator is the number of in-image
  sphere voxels; no zero / edge padding). The manual does not discuss this case explicitly; it only
  states that the entire image volume should be available when computing local intensity features.
* Local peak (VJGA): centre = voxel with the maximum intensity in the ROI intensity mask. "In case the
  maximum intensity is found in multiple voxels within the ROI, local intensity peak is calculated for
  each of these voxels, and the highest local intensity peak is chosen."
* Global peak (0F91): the sphere mean for every voxel of the ROI intensity mask; the highest is
  selected.

Speed: the computation is restricted to the ROI bounding box grown by the sphere's half-extent per
axis (nothing farther than that can enter any sphere), and the spherical mean is a shift-and-add over
the k sphere offsets (numpy slicing, no per-voxel Python loop; no scipy needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: IBSI 1 sphere radius for a 1 cm^3 sphere, in mm: 10 * (3 / (4 pi))^(1/3) = 6.2035049...
IBSI_PEAK_RADIUS_MM: float = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


@dataclass(frozen=True)
class IntensityPeaks:
    """Result of :func:`intensity_peaks`.

    Attributes:
        local_peak: IBSI 1 "local intensity peak" (VJGA).
        global_peak: IBSI 1 "global intensity peak" (0F91).
        sphere_voxels: number of voxels in the full (not image-clipped) sphere, i.e. ``N_s`` of the
            IBSI 0F91 text = ``len(sphere_offsets(spacing, radius))``.
        local_centre: (z, y, x) index of the centre voxel that gave ``local_peak`` (among the ROI
            voxels sharing the maximum ROI intensity; first in C order if several give the same mean).
        global_centre: (z, y, x) index of the ROI voxel whose sphere mean is ``global_peak`` (first in
            C order among equal means).
        n_max_voxels: number of ROI voxels sharing the maximum ROI intensity (tie candidates).
        local_sphere_voxels_in_image: number of in-image voxels averaged for ``local_peak``
            (< sphere_voxels when the sphere is clipped by the image border).
        global_sphere_voxels_in_image: same for ``global_peak``.
        max_intensity: maximum intensity in the ROI.
        radius_mm: radius used.
    """

    local_peak: float
    global_peak: float
    sphere_voxels: int
    local_centre: tuple[int, int, int]
    global_centre: tuple[int, int, int]
    n_max_voxels: int
    local_sphere_voxels_in_image: int
    global_sphere_voxels_in_image: int
    max_intensity: float
    radius_mm: float


def _check_spacing(spacing_zyx_mm) -> np.ndarray:
    s = np.asarray(spacing_zyx_mm, dtype=np.float64).reshape(-1)
    if s.shape != (3,):
        raise ValueError(f"spacing_zyx_mm must have 3 values (z, y, x), got {spacing_zyx_mm!r}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing_zyx_mm must be finite and > 0, got {spacing_zyx_mm!r}")
    return s


def sphere_offsets(spacing_zyx_mm, radius_mm: float = IBSI_PEAK_RADIUS_MM) -> np.ndarray:
    """Integer (dz, dy, dx) offsets of the voxels in the IBSI 1 local-intensity sphere.

    IBSI 1, "Local intensity features" (9ST6), 0F91 text: "Euclidean distances in world spacing
    between the central voxel of the filter and every remaining voxel are computed. If this distance
    lies within radius r ... the corresponding voxel receives a label 1, and 0 otherwise. Subsequent
    summation of the voxel labels yields N_s, the number of voxels within the 1 cm^3 sphere."

    An offset o is included when ``sqrt(sum((o * spacing)**2)) <= radius_mm`` (centre-to-centre
    distance; ``<=`` as in MIRP, the manual says "within"). The centre (0, 0, 0) is always included.

    Args:
        spacing_zyx_mm: voxel spacing in mm in array axis order (z, y, x) -- i.e. the reverse of
            SimpleITK's ``GetSpacing()`` when the array comes from ``GetArrayFromImage``.
        radius_mm: sphere radius in mm (default: the IBSI 1 cm^3 radius, ~6.2035 mm).

    Returns:
        ``(k, 3)`` int64 array of offsets, sorted lexicographically; ``k = N_s``.
    """
    s = _check_spacing(spacing_zyx_mm)
    if not (radius_mm >= 0 and math.isfinite(radius_mm)):
        raise ValueError(f"radius_mm must be finite and >= 0, got {radius_mm!r}")
    ext = np.floor(radius_mm / s).astype(np.int64)
    axes = [np.arange(-e, e + 1, dtype=np.int64) for e in ext]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist = np.sqrt(np.sum((g * s) ** 2, axis=1))
    return g[dist <= radius_mm]


def _bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROI bounding box [lo, hi) per axis (staged ``any``: much faster than ``np.nonzero``)."""
    z = np.flatnonzero(mask.any(axis=(1, 2)))
    sub = mask[z[0]:z[-1] + 1]
    y = np.flatnonzero(sub.any(axis=(0, 2)))
    x = np.flatnonzero(sub.any(axis=(0, 1)))
    lo = np.array([z[0], y[0], x[0]], dtype=np.int64)
    hi = np.array([z[-1] + 1, y[-1] + 1, x[-1] + 1], dtype=np.int64)
    return lo, hi


def _sphere_sum(padded: np.ndarray, offsets: np.ndarray, ext: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum of ``padded`` over the sphere for every centre of a ``shape`` box.

    ``padded`` holds the centre box plus ``ext`` voxels on each side of each axis.
    """
    acc = np.zeros(shape, dtype=np.float64)
    nz, ny, nx = shape
    for dz, dy, dx in offsets:  # loop over the k offsets only (k ~ 19 .. a few hundred)
        z0, y0, x0 = ext[0] + dz, ext[1] + dy, ext[2] + dx
        acc += padded[z0:z0 + nz, y0:y0 + ny, x0:x0 + nx]
    return acc


def sphere_means(image: np.ndarray, mask: np.ndarray, spacing_zyx_mm,
                 radius_mm: float = IBSI_PEAK_RADIUS_MM):
    """Sphere mean and in-image voxel count for every voxel of the ROI bounding box.

    Returns ``(means, counts, bbox_lo, offsets)`` where ``means``/``counts`` have the shape of the
    ROI bounding box starting at index ``bbox_lo``; values outside the mask are computed too but are
    not meaningful as IBSI centres. Voxels outside the image are left out (``counts`` < ``k``).
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape != mask.shape:
        raise ValueError(f"image and mask must be 3-D with the same shape, got {image.shape} and {mask.shape}")
    if not mask.any():
        raise ValueError("mask is empty")
    s = _check_spacing(spacing_zyx_mm)
    offsets = sphere_offsets(s, radius_mm)
    ext = np.floor(radius_mm / s).astype(np.int64)

    lo, hi = _bbox(mask)
    shape = tuple(int(v) for v in hi - lo)
    shp = np.array(image.shape, dtype=np.int64)

    # Crop = ROI bounding box grown by ext, clipped to the image.
    c_lo = np.maximum(lo - ext, 0)
    c_hi = np.minimum(hi + ext, shp)
    crop = image[c_lo[0]:c_hi[0], c_lo[1]:c_hi[1], c_lo[2]:c_hi[2]].astype(np.float64, copy=False)
    if not np.all(np.isfinite(crop)):
        raise ValueError("image has non-finite values within the sphere radius of the ROI")

    pad_before = c_lo - (lo - ext)   # > 0 where the grown box leaves the image
    pad_after = (hi + ext) - c_hi
    touches_border = bool(np.any(pad_before) or np.any(pad_after))
    pad = tuple((int(b), int(a)) for b, a in zip(pad_before, pad_after, strict=True))
    padded = np.pad(crop, pad, mode="constant", constant_values=0.0) if touches_border else crop

    sums = _sphere_sum(padded, offsets, ext, shape)
    if touches_border:
        valid = np.pad(np.ones(crop.shape, dtype=np.float64), pad, mode="constant", constant_values=0.0)
        counts = np.rint(_sphere_sum(valid, offsets, ext, shape)).astype(np.int64)
    else:
        counts = np.full(shape, len(offsets), dtype=np.int64)
    return sums / counts, counts, lo, offsets


def intensity_peaks(image: np.ndarray, mask: np.ndarray, spacing_zyx_mm,
                    radius_mm: float = IBSI_PEAK_RADIUS_MM) -> IntensityPeaks:
    """IBSI 1 local intensity peak (VJGA) and global intensity peak (0F91).

    IBSI 1 "Local intensity features" (9ST6): "While only voxels within the ROI intensity map can be
    used as a center voxel, the local neighbourhood draws upon all voxels regardless of being in an
    ROI."  VJGA: mean intensity in a 1 cm^3 sphere centred on the voxel with the maximum intensity in
    the ROI intensity mask; with several maximum voxels, the highest of their peaks. 0F91: the highest
    sphere mean over all voxels of the ROI intensity mask.

    Args:
        image: 3-D intensity array, axes (z, y, x). The whole image should be passed (not a crop
            around the ROI), because sphere voxels outside the ROI are used.
        mask: boolean ROI intensity mask, same shape.
        spacing_zyx_mm: voxel spacing in mm, axis order (z, y, x). Direction cosines do not matter
            (distances are invariant under rotation) as long as the grid is orthogonal.
        radius_mm: sphere radius (default IBSI 1 cm^3 radius).

    Returns:
        :class:`IntensityPeaks`.

    Raises:
        ValueError: empty mask, shape mismatch, bad spacing, or non-finite intensities near the ROI.
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    means, counts, lo, offsets = sphere_means(image, mask, spacing_zyx_mm, radius_mm)
    sub_mask = mask[lo[0]:lo[0] + means.shape[0], lo[1]:lo[1] + means.shape[1], lo[2]:lo[2] + means.shape[2]]
    sub_img = image[lo[0]:lo[0] + means.shape[0], lo[1]:lo[1] + means.shape[1], lo[2]:lo[2] + means.shape[2]]

    roi_vals = sub_img[sub_mask]
    max_val = roi_vals.max()
    # local peak: all ROI voxels with the maximum ROI intensity (exact equality), take highest mean
    cand = sub_mask & (sub_img == max_val)
    cand_means = np.where(cand, means, -np.inf)
    li = np.unravel_index(int(np.argmax(cand_means)), means.shape)
    # global peak: all ROI voxels
    roi_means = np.where(sub_mask, means, -np.inf)
    gi = np.unravel_index(int(np.argmax(roi_means)), means.shape)

    return IntensityPeaks(
        local_peak=float(means[li]),
        global_peak=float(means[gi]),
        sphere_voxels=int(len(offsets)),
        local_centre=tuple(int(a + b) for a, b in zip(li, lo, strict=True)),
        global_centre=tuple(int(a + b) for a, b in zip(gi, lo, strict=True)),
        n_max_voxels=int(cand.sum()),
        local_sphere_voxels_in_image=int(counts[li]),
        global_sphere_voxels_in_image=int(counts[gi]),
        max_intensity=float(max_val),
        radius_mm=float(radius_mm),
    )


if __name__ == "__main__":  # pragma: no cover
    for sp in [(2.0, 2.0, 2.0), (4.0, 4.0, 4.0), (3.27, 4.0, 4.0), (4.0, 4.0, 3.27)]:
        print(sp, len(sphere_offsets(sp)))
