"""A label map sampled on the PET grid slab by slab (``radiomx.inputs.organ_grid``) equals ITK's resample of the
whole volume, voxel for voxel, for random grid pairs: finer and coarser, shifted, mirrored and oblique. A PET centre
exactly halfway between two CT centres (or on the CT's outer face) is a tie that float rounding may settle either
way (the module docstring); those voxels are left out of the comparison and counted."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiomx.inputs.organ_grid import LabelGrid, Sampled, pet_box, sample_on_pet_grid


def _rotation(angle_deg: float, axis: int, mirror: tuple[int, int, int]) -> tuple[float, ...]:
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(3)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return tuple((rot @ np.diag(mirror)).ravel())


def _image(values: np.ndarray, spacing, origin, direction) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def ties(labels: sitk.Image, pet: sitk.Image) -> np.ndarray:
    """PET voxels (z, y, x) whose centre lies within 1e-9 of halfway between two label-map voxel centres on some
    axis (the map's continuous index, computed here in float64 without ITK)."""
    nx, ny, nz = pet.GetSize()
    index = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"), -1).reshape(-1, 3)
    direction = np.asarray(pet.GetDirection()).reshape(3, 3)
    points = np.asarray(pet.GetOrigin()) + (index * np.asarray(pet.GetSpacing())) @ direction.T
    inverse = np.linalg.inv(np.asarray(labels.GetDirection()).reshape(3, 3))
    continuous = ((points - np.asarray(labels.GetOrigin())) @ inverse.T) / np.asarray(labels.GetSpacing())
    tie = (np.abs(continuous - np.floor(continuous) - 0.5) < 1e-9).any(axis=1)
    return tie.reshape(nx, ny, nz).transpose(2, 1, 0)


def _whole_volume(labels: sitk.Image, pet: sitk.Image, sampled: Sampled) -> tuple[np.ndarray, np.ndarray]:
    """ITK's nearest-neighbour resample of the whole label map onto the whole PET grid, cut to the sampled box, and
    the box's tie voxels."""
    whole = sitk.GetArrayFromImage(sitk.Resample(labels, pet, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                 labels.GetPixelID()))
    tied = ties(labels, pet)
    assert sampled.labels is not None
    box = tuple(slice(o, o + n) for o, n in zip(sampled.origin, sampled.labels.shape, strict=True))
    outside = whole.copy()
    outside[box] = 0
    assert not outside[~tied].any()  # nothing of the map lies outside the box
    return whole[box], tied[box]


grids = st.fixed_dictionaries({
    "size": st.tuples(st.integers(3, 40), st.integers(3, 40), st.integers(2, 70)),
    "spacing": st.tuples(*[st.sampled_from([0.7, 0.977, 1.5, 2.0, 3.0, 4.07, 5.0])] * 3),
    "shift": st.tuples(*[st.floats(-20, 20, allow_nan=False)] * 3),
    "angle": st.sampled_from([0.0, 0.0, 7.5, 30.0, 90.0]),
    "axis": st.integers(0, 2),
    "mirror": st.tuples(*[st.sampled_from([1, -1])] * 3),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ct=grids, pet_spacing=st.tuples(*[st.sampled_from([2.0, 3.27, 4.07])] * 3),
       dtype=st.sampled_from([np.uint8, np.uint16, np.int16]), labelled=st.booleans(), seed=st.integers(0, 2**16))
def test_slab_sampling_equals_whole_volume_resample(ct, pet_spacing, dtype, labelled, seed):
    rng = np.random.default_rng(seed)
    nx, ny, nz = ct["size"]
    values = np.zeros((nz, ny, nx), dtype=dtype)
    for _ in range(3):  # a few blocks of labels, the rest zero as in a segmentation
        lo = [int(rng.integers(0, n)) for n in (nz, ny, nx)]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, (nz, ny, nx), strict=True)]
        values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = rng.integers(1, 9)
    direction = _rotation(ct["angle"], ct["axis"], ct["mirror"])
    labels = _image(values, ct["spacing"], ct["shift"], direction)
    pet = _image(np.zeros((24, 20, 20), dtype=np.float32), pet_spacing, (-30.0, -30.0, -40.0),
                 (1.0, 0, 0, 0, 1, 0, 0, 0, 1))
    sampled = sample_on_pet_grid(iter(values), LabelGrid.of(labels), pet, labelled)
    nonzero = set(np.unique(values).tolist()) - {0}
    assert sampled.present == (nonzero if labelled else {1} if nonzero else set())
    lo, hi = pet_box(LabelGrid.of(labels), pet)
    if not (hi > lo).all():
        assert sampled.labels is None
        assert not sitk.GetArrayFromImage(sitk.Resample(labels, pet, sitk.Transform(), sitk.sitkNearestNeighbor)).any()
        return
    expected, tied = _whole_volume(labels, pet, sampled)
    expected = expected if labelled else (expected != 0).astype(np.uint8)
    assert np.array_equal(sampled.labels[~tied], expected[~tied])
    assert sampled.labels.dtype == (values.dtype if labelled else np.uint8)


def test_a_whole_body_map_is_resampled_in_slabs_not_whole():
    """A CT-sized map on a PET grid of the same z extent: the slabs, not one volume, carry it, and the result is
    ITK's whole-volume resample."""
    values = np.zeros((120, 64, 64), dtype=np.uint8)
    values[10:110, 20:40, 20:44] = 3
    values[50:60, 5:15, 5:15] = 7
    labels = _image(values, (1.5, 1.5, 1.0), (0.0, 0.0, 0.0), (1.0, 0, 0, 0, 1, 0, 0, 0, 1))
    pet = _image(np.zeros((30, 24, 24), dtype=np.float32), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0),
                 (1.0, 0, 0, 0, 1, 0, 0, 0, 1))
    seen: list[int] = []

    def stream():
        for k, plane in enumerate(values):
            seen.append(k)
            yield plane

    sampled = sample_on_pet_grid(stream(), LabelGrid.of(labels), pet, True)
    expected, tied = _whole_volume(labels, pet, sampled)
    assert seen == list(range(120)) and sampled.present == {3, 7} and not tied.any()
    assert np.array_equal(sampled.labels, expected)
