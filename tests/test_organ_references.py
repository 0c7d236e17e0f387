"""Guideline reference VOIs placed in organ masks (``radiomx.features.organ_references``), on the synthetic patient
of ``tests/organ_phantom.py``: organs on a CT grid of other spacing, origin and extent than the PET's, every organ
part of one known SUV. A VOI placed as its definition says reads its part's value exactly; one that strays reads
another value.

Expected voxel counts are counted here independently (lattice points of the sphere or cylinder on the PET's
spacing), and every geometric promise (inside the organ, clear of lesions, in the right part of the liver, between
T5 and T10) is checked voxel by voxel.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import SimpleITK as sitk

from radiomx.features import organ_references as refs
from radiomx.features.voi_geometry import ball_offsets, best_centre, clearance_mm, index_mm, near_lesions
from radiomx.inputs.organs import BoxMask, OrganMask, OrganSet, box_of, read_organs
from radiomx.records import OrganSource

from . import organ_phantom as ph


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    built = ph.build()
    folder = ph.write_folder(built, tmp_path_factory.mktemp("organs") / "organs")
    built.files["folder"] = folder
    return built


@pytest.fixture(scope="module")
def organs(phantom):
    return read_organs(OrganSource("folder", phantom.files["folder"]), phantom.pet)


def as_box_masks(masks: dict[str, np.ndarray]) -> dict[int, BoxMask]:
    out = {}
    for lesion_id, mask in enumerate(masks.values(), start=1):
        box = box_of(mask)
        out[lesion_id] = BoxMask(tuple(s.start for s in box), mask[box])
    return out


@pytest.fixture(scope="module")
def placed(phantom, organs):
    lesions = as_box_masks(phantom.lesions)
    regions, sides = refs.derived_regions(phantom.pet, organs, lesions)
    return regions, sides, lesions


def lesion_mask(pet: sitk.Image, centre, radius: float) -> BoxMask:
    """A spherical lesion on the PET grid (voxel centres within ``radius`` mm of ``centre``)."""
    world_box = (np.asarray(centre) - radius - 1, np.asarray(centre) + radius + 1)
    sub, inside = ph.rasterize(pet, world_box, lambda p: ph.ellipsoid(p, centre, (radius,) * 3))
    box = box_of(inside)
    return BoxMask(tuple(s.start + b.start for s, b in zip(sub, box, strict=True)), inside[box])


def lattice_count(spacing_zyx, inside) -> int:
    """Voxel-centre offsets of the PET lattice for which ``inside(dz, dy, dx)`` (mm) holds, counted by brute force."""
    reach = [int(60 / s) + 1 for s in spacing_zyx]
    return sum(1 for k, j, i in itertools.product(*(range(-n, n + 1) for n in reach))
               if inside(k * spacing_zyx[0], j * spacing_zyx[1], i * spacing_zyx[2]))


SPACING_ZYX = ph.PET_SPACING[::-1]
VOXEL_ML = float(np.prod(ph.PET_SPACING)) / 1000


def voxels_of(region) -> np.ndarray:
    return np.argwhere(region.mask.voxels) + np.asarray(region.mask.origin)


def lesion_points(phantom) -> np.ndarray:
    union = np.zeros(phantom.pet.GetSize()[::-1], dtype=bool)
    for mask in phantom.lesions.values():
        union |= mask
    return index_mm(phantom.pet, np.argwhere(union))


def min_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(min(np.sqrt(((a[i: i + 512, None] - b[None]) ** 2).sum(-1)).min() for i in range(0, len(a), 512)))


def test_liver_sphere_reads_the_right_lobe_exactly_and_holds_the_lattice_sphere(phantom, organs, placed):
    liver = placed[0]["liver"]
    assert liver.reason == ""
    assert liver.stats.suv_mean == ph.VALUES["liver_right"] and liver.stats.suv_sd == 0.0
    expected = lattice_count(SPACING_ZYX, lambda z, y, x: z * z + y * y + x * x <= 15.0**2)
    assert liver.voxels == expected
    assert liver.volume_ml == pytest.approx(expected * VOXEL_ML, rel=1e-12)
    # 14.1 mL within voxelisation: every voxel of a centre within r lies within r + d of the centre, and every
    # point within r - d has its voxel's centre within r (d: half the voxel diagonal).
    sphere = 4 / 3 * math.pi * 1.5**3
    d = math.dist((0, 0, 0), ph.PET_SPACING) / 2
    assert sphere * (1 - d / 15) ** 3 <= liver.volume_ml <= sphere * (1 + d / 15) ** 3
    assert abs(liver.volume_ml - sphere) < 0.05 * sphere  # measured: 13.72 mL on this 4.07 x 4.07 x 3.27 mm grid
    points = index_mm(phantom.pet, voxels_of(liver))
    liver_full = organs.masks["liver"].full(phantom.pet.GetSize()[::-1])
    assert liver_full[tuple(voxels_of(liver).T)].all()
    median_x = float(np.median(index_mm(phantom.pet, np.argwhere(liver_full))[:, 0]))
    assert (points[:, 0] <= median_x + 1e-9).all() and "median x" in liver.definition
    assert min_distance(points, lesion_points(phantom)) > refs.LESION_MARGIN_MM
    assert liver.centre_mm == pytest.approx(tuple(points.mean(axis=0)))
    assert liver.source.startswith(str(phantom.files["folder"] / "liver.nii.gz")) and "PERCIST" in liver.source


def test_the_phantom_punishes_a_liver_sphere_that_strays(phantom, organs):
    """The two shortcuts the definition avoids read the wrong value here: the deepest point of the whole liver
    is on the lesion, and the deepest point clear of lesions is in the left lobe."""
    values = sitk.GetArrayViewFromImage(phantom.pet)
    liver = organs.masks["liver"]
    box = liver.box
    region = liver.voxels
    offsets = ball_offsets(SPACING_ZYX, 15.0)
    lesions = list(as_box_masks(phantom.lesions).values())
    for allowed in (region, region & ~near_lesions(box, lesions, refs.LESION_MARGIN_MM, SPACING_ZYX)):
        centre = best_centre(allowed, clearance_mm(allowed, SPACING_ZYX), offsets, 15.0, SPACING_ZYX)
        inside = np.asarray(centre) + offsets + np.asarray(liver.origin)
        assert values[tuple(inside.T)].mean() != ph.VALUES["liver_right"]


def test_bloodpool_cylinder_reads_the_descending_thoracic_aorta_between_t5_and_t10(phantom, placed):
    blood = placed[0]["bloodpool"]
    assert blood.reason == ""
    assert blood.stats.suv_mean == pytest.approx(float(np.float32(ph.VALUES["aorta_descending"])), abs=0)
    assert blood.stats.suv_sd == 0.0
    disc = lattice_count(SPACING_ZYX, lambda z, y, x: z == 0 and y * y + x * x <= 5.0**2)
    slab = lattice_count(SPACING_ZYX, lambda z, y, x: y == 0 and x == 0 and abs(z) <= 10.0)
    assert blood.voxels == disc * slab == 35
    points = index_mm(phantom.pet, voxels_of(blood))
    low = ph.LEVEL_Z["T10"] - ph.BODY_HALF_Z
    high = ph.LEVEL_Z["T5"] + ph.BODY_HALF_Z
    assert low <= points[:, 2].min() and points[:, 2].max() <= high
    assert np.hypot(points[:, 0] - ph.DESCENDING_TOP[0], points[:, 1] - ph.DESCENDING_TOP[1]).max() <= \
        ph.AORTA_RADIUS
    assert blood.centre_mm[2] == pytest.approx((low + high) / 2, abs=ph.PET_SPACING[2])  # the middle of the range
    assert "T5-T10" in blood.definition


def test_bloodpool_without_vertebrae_uses_the_slices_where_the_aorta_is_cut_twice(phantom):
    organs = read_organs(OrganSource("folder", phantom.files["folder"]), phantom.pet, ["aorta"])
    blood = refs.bloodpool_voi(phantom.pet, organs, [])
    assert blood.stats.suv_mean == pytest.approx(float(np.float32(ph.VALUES["aorta_descending"])), abs=0)
    assert "2 or more components" in blood.definition


def test_bloodpool_cut_short_by_the_field_of_view_says_how_many_slices_it_has(phantom):
    """Only the lowest of T5-T10 in a short field of view: the reason counts the slices, not a lesion."""
    z0 = ph.LEVEL_Z["T10"] - 4.0
    short = ph.grid_image((80, 64, 5), ph.PET_SPACING, (ph.PET_ORIGIN[0], ph.PET_ORIGIN[1], z0), pixel=sitk.sitkFloat32)
    organs = read_organs(OrganSource("folder", phantom.files["folder"]), short, ["aorta", *refs.BLOODPOOL_LEVELS])
    assert "vertebrae_T10" in organs.masks and "vertebrae_T9" not in organs.masks
    blood = refs.bloodpool_voi(short, organs, [])
    assert blood.stats is None
    assert "spans 5 consecutive PET slices (16.4 mm)" in blood.reason and "7 slices" in blood.reason, blood.reason


def test_spleen_sphere_reads_the_spleen_clear_of_its_lesion(phantom, placed):
    spleen = placed[0]["spleen"]
    assert spleen.stats.suv_mean == ph.VALUES["spleen"] and spleen.stats.suv_sd == 0.0
    assert spleen.voxels == lattice_count(SPACING_ZYX, lambda z, y, x: z * z + y * y + x * x <= 10.0**2)
    assert min_distance(index_mm(phantom.pet, voxels_of(spleen)), lesion_points(phantom)) > refs.LESION_MARGIN_MM


def test_marrow_reads_the_eroded_lumbar_bodies_without_the_lesion(phantom, organs, placed):
    marrow = placed[0]["marrow"]
    assert marrow.stats.suv_mean == pytest.approx(float(np.float32(ph.VALUES["vertebral_body"])), abs=0)
    assert marrow.stats.suv_sd == 0.0
    assert "L1, L2, L3, L4, L5" in marrow.definition
    points = index_mm(phantom.pet, voxels_of(marrow))
    in_body = ph.box(points, (ph.BODY_X[0], ph.BODY_Y[0], -1e9), (ph.BODY_X[1], ph.BODY_Y[1], 1e9))
    assert in_body.all()  # never the spinous process
    assert min_distance(points, lesion_points(phantom)) > refs.LESION_MARGIN_MM
    levels = {min(ph.LEVELS, key=lambda lv: abs(ph.LEVEL_Z[lv] - z)) for z in points[:, 2]}
    assert levels <= {"L1", "L2", "L3", "L4", "L5"} and len(levels) >= 4


def test_contralateral_adrenal_is_the_gland_opposite_the_adenoma(placed):
    adrenal = placed[0]["adrenal_contralateral"]
    sides = placed[1]
    assert sides == {5: "left"}  # lesion 5 is the adenoma in the left adrenal
    assert adrenal.stats.suv_mean == pytest.approx(float(np.float32(ph.VALUES["adrenal_gland_right"])), abs=0)
    assert "adrenal_gland_right" in adrenal.definition and adrenal.stats.suv_sd == 0.0


def test_adrenal_lesions_on_both_sides_leave_no_contralateral_gland(phantom, organs):
    lesions = as_box_masks(phantom.lesions)
    lesions[7] = lesion_mask(phantom.pet, (-40.0, 56.0, -72.0), 5.0)
    region, sides = refs.adrenal_voi(phantom.pet, organs, lesions)
    assert sides == {5: "left", 7: "right"}
    assert region.mask is None and "both sides" in region.reason and "lesion 5 (left)" in region.reason


def test_no_adrenal_lesion_no_contralateral_gland(phantom, organs):
    lesions = {k: v for k, v in as_box_masks(phantom.lesions).items() if k != 5}
    region, sides = refs.adrenal_voi(phantom.pet, organs, lesions)
    assert sides == {} and region.mask is None and "no lesion lies in or next to an adrenal" in region.reason


def test_an_adenoma_next_to_the_gland_decides_the_side(phantom, organs):
    """An adenoma the segmenter left out of the gland, 6 mm from it, still has the gland's side."""
    lesion = lesion_mask(phantom.pet, (40.0, 56.0, -62.0 + 6.0 + 4.0), 4.0)
    assert refs.lesion_side(phantom.pet, lesion, organs) == "left"


def _organ_on_pet(pet: sitk.Image, centre, radii, name: str) -> OrganSet:
    points = ph.centres(pet)
    inside = ph.ellipsoid(points, centre, radii)
    box = box_of(inside)
    return OrganSet("test", (name,), {name: OrganMask(tuple(s.start for s in box), inside[box], name, f"{name}.nii")})


def test_a_liver_too_thin_for_the_sphere_gives_null_with_a_reason(phantom):
    organs = _organ_on_pet(phantom.pet, (-60.0, 0.0, -60.0), (40.0, 40.0, 14.0), "liver")
    liver = refs.liver_voi(phantom.pet, organs, [])
    assert liver.mask is None and liver.stats is None
    assert "does not fit" in liver.reason and "liver.nii" in liver.reason and math.isnan(liver.volume_ml)


def test_missing_organs_say_why(phantom, tmp_path):
    (tmp_path / "liver.nii.gz").write_bytes((phantom.files["folder"] / "liver.nii.gz").read_bytes())
    wanted = {name for names in refs.REGION_CLASSES.values() for name in names}
    organs = read_organs(OrganSource("folder", tmp_path), phantom.pet, wanted)
    regions, _ = refs.derived_regions(phantom.pet, organs, {})
    assert regions["liver"].reason == ""
    assert "no aorta in" in regions["bloodpool"].reason
    assert "no spleen in" in regions["spleen"].reason
    assert "no adrenal_gland_left in" in regions["adrenal_contralateral"].reason


def test_organ_outside_the_pet_field_of_view_is_a_reason_not_a_mask(organs):
    assert "brain" not in organs.masks
    assert "outside the PET's field of view" in organs.problems["brain"]


def test_region_classes_cover_what_each_region_reads(phantom):
    """Reading only ``REGION_CLASSES`` gives the same regions as reading every class."""
    wanted = sorted({name for names in refs.REGION_CLASSES.values() for name in names})
    few = read_organs(OrganSource("folder", phantom.files["folder"]), phantom.pet, wanted)
    every = read_organs(OrganSource("folder", phantom.files["folder"]), phantom.pet)
    lesions = as_box_masks(phantom.lesions)
    a, _ = refs.derived_regions(phantom.pet, few, lesions)
    b, _ = refs.derived_regions(phantom.pet, every, lesions)
    assert {r: (v.stats.suv_mean, v.voxels) for r, v in a.items()} == {r: (v.stats.suv_mean, v.voxels)
                                                                      for r, v in b.items()}
    assert "lung_upper_lobe_right" not in few.masks and "lung_upper_lobe_right" in every.masks


def test_couinaud_segments_v_to_viii_are_the_right_lobe_when_given(phantom, organs):
    """TotalSegmentator's ``liver_segments`` output: the sphere goes in segments V-VIII (here the right lobe cut in
    four), without the median-x proxy."""
    shape = phantom.pet.GetSize()[::-1]
    liver = organs.masks["liver"].full(shape)
    points = ph.centres(phantom.pet)
    right = liver & (points[..., 0] < ph.LOBE_SPLIT_X)
    upper, front = points[..., 2] > -70.0, points[..., 1] < -20.0
    parts = {5: right & upper & front, 6: right & ~upper & front, 7: right & ~upper & ~front, 8: right & upper & ~front}
    masks = {}
    for number, part in parts.items():
        box = box_of(part)
        masks[f"liver_segment_{number}"] = OrganMask(tuple(s.start for s in box), part[box], f"liver_segment_{number}",
                                                      f"liver_segment_{number}.nii.gz")
    segments = OrganSet("segments", tuple(masks), masks)
    liver_region = refs.liver_voi(phantom.pet, segments, list(as_box_masks(phantom.lesions).values()))
    assert liver_region.stats.suv_mean == ph.VALUES["liver_right"] and liver_region.stats.suv_sd == 0.0
    assert "Couinaud segments 5, 6, 7, 8" in liver_region.definition
    assert right[tuple(voxels_of(liver_region).T)].all()
