"""Lesion dissemination from lesion centroids (patient coordinates, LPS mm).

* ``dmax_centroid``: the largest Euclidean distance between the centroids of any two lesions, the definition of the
  REMARC analysis (Cottereau et al., J Nucl Med 2020;61:40-45, "18F-FDG PET dissemination features in diffuse large
  B-cell lymphoma are predictive of outcome"; reviewed by Albano et al., Cancers 2023;15:2494).
* ``dmax_bulk``: the largest distance from the centroid of the largest lesion (largest MTV, ties: lowest lesion id)
  to any other lesion's centroid (Cottereau et al. 2021, Dmax_bulk).
The voxel-based Dmax (any two lesion voxels) needs the voxels and is computed in the worker (``dmax_voxel_mm`` in
the scan state). All three are None with fewer than two lesions.
"""

from __future__ import annotations

import numpy as np


def dmax_centroid(centroids: np.ndarray) -> float | None:
    """Largest pairwise distance between the rows of an (n, 3) array, in its unit; None when n < 2."""
    points = np.asarray(centroids, dtype=np.float64)
    if len(points) < 2:
        return None
    difference = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((difference**2).sum(axis=-1)).max())


def dmax_bulk(centroids: np.ndarray, volumes: np.ndarray) -> float | None:
    """Distance from the largest lesion's centroid to the farthest other centroid; None when n < 2."""
    points = np.asarray(centroids, dtype=np.float64)
    if len(points) < 2:
        return None
    bulk = int(np.argmax(np.asarray(volumes, dtype=np.float64)))  # first maximum: the lowest lesion id on ties
    return float(np.sqrt(((points - points[bulk]) ** 2).sum(axis=1)).max())
