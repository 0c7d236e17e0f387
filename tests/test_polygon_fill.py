"""The RTSTRUCT polygon fill (``inputs.masks.polygon_mask``): voxel centres inside, by the half-open even-odd
crossing rule, so that two contours sharing an edge through voxel centres never both claim a voxel.

Why not scikit-image's ``skimage.draw.polygon2mask``: it gives the same pixels when no edge passes exactly through
a voxel centre (checked below when scikit-image is installed), but it counts centres on the boundary as inside
(a 4 x 4 voxel square with its corners on centres gives 25 voxels, ours 16), so adjacent contours overlap."""

from __future__ import annotations

import numpy as np
import pytest

from radiomx.inputs.masks import polygon_mask


def test_contours_sharing_an_edge_through_voxel_centres_split_the_voxels():
    left = np.array([[2.0, 2.0], [5.0, 2.0], [5.0, 6.0], [2.0, 6.0]])  # corners on voxel centres
    right = np.array([[5.0, 2.0], [8.0, 2.0], [8.0, 6.0], [5.0, 6.0]])  # shares the edge x = 5
    both = np.array([[2.0, 2.0], [8.0, 2.0], [8.0, 6.0], [2.0, 6.0]])
    a, b, union = (polygon_mask((10, 10), p) for p in (left, right, both))
    assert not (a & b).any()
    assert np.array_equal(a | b, union)
    assert a.sum() == 3 * 4 and union.sum() == 6 * 4  # half-open: x in [2, 5), y in [2, 6)


def test_agrees_with_scikit_image_off_voxel_centres_and_differs_on_them():
    draw = pytest.importorskip("skimage.draw")
    rng = np.random.default_rng(0)
    for _ in range(500):
        polygon = rng.uniform(1, 18, size=(int(rng.integers(3, 8)), 2))  # (x, y); skimage takes (row, col)
        assert np.array_equal(polygon_mask((20, 20), polygon), draw.polygon2mask((20, 20), polygon[:, ::-1]))
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]])
    assert polygon_mask((10, 10), square).sum() == 16
    assert draw.polygon2mask((10, 10), square[:, ::-1]).sum() == 25
