"""Property: for random organ shapes, random lesions and random pairs of grids (CT-like organ grid: spacing, origin,
flips and a rotation about z; PET grid: spacing and origin), every reference VOI radiomx places lies inside its
organ's PET mask and more than the lesion margin from every lesion voxel, and a region it cannot place says why."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiomx.features import organ_references as refs
from radiomx.features.voi_geometry import index_mm
from radiomx.inputs.organs import BoxMask, box_of, organs_from_images

from . import organ_phantom as ph

EXTENT = np.array([130.0, 130.0, 170.0])  # x, y, z mm, centred on the origin
#: The organ classes each region needs, and what the region must lie in.
INSIDE = {"liver": ("liver",), "bloodpool": ("aorta",), "spleen": ("spleen",),
          "marrow": ("vertebrae_L1", "vertebrae_L2"), "adrenal_contralateral": ("adrenal_gland_left",
                                                                                "adrenal_gland_right")}


def grid(spacing, origin_shift, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), pixel=sitk.sitkUInt8) -> sitk.Image:
    size = np.ceil(EXTENT / np.asarray(spacing)).astype(int) + 1
    d = np.asarray(direction, float).reshape(3, 3)
    centre_index = (size - 1) / 2 * np.asarray(spacing)
    origin = -(d @ centre_index) + np.asarray(origin_shift)
    return ph.grid_image(size, spacing, origin, direction, pixel)


@st.composite
def scenes(draw):
    pet_xy = draw(st.floats(2.5, 5.0))
    pet = grid((pet_xy, pet_xy, draw(st.floats(2.0, 4.5))), [draw(st.floats(-2.0, 2.0)) for _ in range(3)],
               pixel=sitk.sitkFloat32)
    # No denormal angles: ITK's matrix inverse (VNL's SVD) does not converge on denormal direction cosines.
    angle = draw(st.one_of(st.just(0.0), st.floats(0.01, 0.25), st.floats(-0.25, -0.01)))
    flip = draw(st.sampled_from([1.0, -1.0]))
    c, s = math.cos(angle), math.sin(angle)
    direction = (flip * c, -s, 0.0, flip * s, c, 0.0, 0.0, 0.0, 1.0)
    ct = grid((draw(st.floats(1.5, 3.0)), draw(st.floats(1.5, 3.0)), draw(st.floats(1.5, 4.0))),
              [draw(st.floats(-3.0, 3.0)) for _ in range(3)], direction)
    radius = lambda low, high: draw(st.floats(low, high))  # noqa: E731
    aorta_r = radius(5.0, 11.0)
    shapes = {
        "liver": lambda p, r=(radius(20, 50), radius(20, 45), radius(20, 40)): ph.ellipsoid(p, (-30, -10, -30), r),
        "spleen": lambda p, r=(radius(6, 20), radius(8, 30), radius(8, 30)): ph.ellipsoid(p, (40, 20, -40), r),
        "aorta": lambda p: (np.hypot(p[..., 0] - 22, p[..., 1] - 20) <= aorta_r)
        | ((np.hypot(p[..., 0] + 5, p[..., 1] + 25) <= aorta_r) & (p[..., 2] > 20)),
        "adrenal_gland_left": lambda p: ph.box(p, (28, 45, -5), (36, 60, 15)),
        "adrenal_gland_right": lambda p: ph.box(p, (-36, 45, -5), (-28, 60, 15)),
    }
    for level, zc in (("T9", 55.0), ("T10", 30.0), ("L1", -45.0), ("L2", -70.0)):
        height = radius(6.0, 15.0)
        shapes[f"vertebrae_{level}"] = lambda p, zc=zc, h=height: ph.box(p, (-18, 36, zc - h), (18, 60, zc + h))
    organs = {name: ph.as_image(fn(ph.centres(ct)).astype(np.uint8), ct) for name, fn in shapes.items()}
    lesions = {}
    adenoma = draw(st.sampled_from([None, (32.0, 52.0, 5.0), (-32.0, 52.0, 5.0)]))  # in the left or right adrenal
    for lesion_id in range(1, draw(st.integers(0, 4)) + 2):
        if lesion_id == 1 and adenoma is None:
            continue
        centre = adenoma if lesion_id == 1 else [draw(st.floats(-50.0, 50.0)), draw(st.floats(-40.0, 60.0)),
                                                 draw(st.floats(-70.0, 60.0))]
        r = draw(st.floats(3.0, 5.0)) if lesion_id == 1 else draw(st.floats(3.0, 14.0))
        inside = ph.ellipsoid(ph.centres(pet), centre, (r, r, r))
        if inside.any():
            box = box_of(inside)
            lesions[lesion_id] = BoxMask(tuple(b.start for b in box), inside[box])
    return pet, organs, lesions


def points_of(pet: sitk.Image, mask: BoxMask) -> np.ndarray:
    return index_mm(pet, np.argwhere(mask.voxels) + np.asarray(mask.origin))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenes())
def test_every_voi_lies_inside_its_organ_and_clear_of_every_lesion(scene):
    pet, images, lesions = scene
    organs = organs_from_images(images, pet)
    regions, _ = refs.derived_regions(pet, organs, lesions)
    shape = pet.GetSize()[::-1]
    lesion_points = np.concatenate([points_of(pet, m) for m in lesions.values()]) if lesions else np.zeros((0, 3))
    for name, region in regions.items():
        if region.mask is None:
            assert region.reason and region.stats is None
            continue
        organ = np.zeros(shape, dtype=bool)
        for cls in INSIDE[name]:
            if cls in organs.masks:
                organ |= organs.masks[cls].full(shape)
        voxels = region.mask.full(shape)
        assert voxels.any() and not (voxels & ~organ).any(), name
        if len(lesion_points):
            voi = points_of(pet, region.mask)
            nearest = min(np.sqrt(((voi[i: i + 256, None] - lesion_points[None]) ** 2).sum(-1)).min()
                          for i in range(0, len(voi), 256))
            assert nearest > refs.LESION_MARGIN_MM, name
        if name in ("liver", "spleen"):  # a whole sphere, never a clipped one
            diameter = refs.LIVER_SPHERE_DIAMETER_MM if name == "liver" else refs.SPLEEN_SPHERE_DIAMETER_MM
            centre = np.asarray(region.centre_mm)
            assert np.sqrt(((points_of(pet, region.mask) - centre) ** 2).sum(-1)).max() <= diameter / 2 + 1e-6
