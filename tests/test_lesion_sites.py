"""Lesion sites from organ masks (``radiomx.features.lesion_sites``): lesions placed in known organs of the synthetic
patient get those organs, and the burden by site group adds up to the scan's TMTV and TTLG as
``radiomx.features.indices.scan_indices`` computes them (a voxel in overlapping lesions counted once)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radiomx.features.indices import scan_indices
from radiomx.features.lesion_sites import (
    SITE_GROUPS,
    is_site_class,
    lesion_masks,
    lesion_sites,
    site_burden,
    site_group,
)
from radiomx.features.lesions import split_masks
from radiomx.inputs.named_masks import MaskSet, NamedMask, pack_layers
from radiomx.inputs.organs import OrganSet, read_organs
from radiomx.records import OrganSource

from . import organ_phantom as ph


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    built = ph.build()
    built.files["folder"] = ph.write_folder(built, tmp_path_factory.mktemp("organs") / "organs")
    return built


@pytest.fixture(scope="module")
def organs(phantom):
    return read_organs(OrganSource("folder", phantom.files["folder"]), phantom.pet)


def lesion_map(phantom, masks: dict[str, np.ndarray]):
    """The lesions as extraction sees them: named masks packed in layers (they may overlap), split by label."""
    numbered = list(enumerate(masks.values(), start=1))
    layers, layer_of = pack_layers(phantom.pet, numbered, len(numbered))
    named = MaskSet(layers, tuple(NamedMask(n, name) for n, name in enumerate(masks, start=1)), layer_of)
    return split_masks(named)


EXPECTED = {"liver": ("liver", "liver"), "bone": ("vertebrae_L3", "bone"), "spleen": ("spleen", "spleen"),
            "node": ("other", "outside_organs"), "adrenal": ("adrenal_gland_left", "other_extranodal"),
            "lung": ("lung_upper_lobe_right", "lung")}


def test_lesions_in_known_organs_get_those_sites(phantom, organs):
    split = lesion_map(phantom, phantom.lesions)
    sites = lesion_sites(organs, lesion_masks(split.layers, split.lesions))
    names = list(phantom.lesions)
    found = {names[lesion_id - 1]: (site.site, site.group) for lesion_id, site in sites.items()}
    assert found == EXPECTED
    assert all(site.fraction > 0.9 for site in sites.values())


def test_site_fraction_is_the_share_inside_the_winning_organ(phantom, organs):
    """A sphere straddling the liver's edge: its fraction is the liver's share of its voxels, counted here."""
    points = ph.centres(phantom.pet)
    straddle = ph.ellipsoid(points, (-75.0, -20.0, -70.0 - 62.0), (10.0,) * 3)  # centred on the liver's bottom
    split = lesion_map(phantom, {"edge": straddle})
    (site,) = lesion_sites(organs, lesion_masks(split.layers, split.lesions)).values()
    liver = organs.masks["liver"].full(straddle.shape)
    share = (straddle & liver).sum() / straddle.sum()
    expected = "liver" if share >= 0.5 else "other"
    assert site.site == expected
    assert site.fraction == pytest.approx(share if expected == "liver" else 1 - share, abs=1e-12)


def test_a_lesion_inside_a_vessel_is_not_in_an_organ(phantom, organs):
    points = ph.centres(phantom.pet)
    in_aorta = ph.ellipsoid(points, (25.0, 28.0, 0.0), (6.0,) * 3)
    split = lesion_map(phantom, {"aortic": in_aorta})
    (site,) = lesion_sites(organs, lesion_masks(split.layers, split.lesions)).values()
    assert (site.site, site.group, site.fraction) == ("other", "outside_organs", 1.0)


def test_without_organ_masks_the_site_is_unknown_not_other(phantom, organs):
    split = lesion_map(phantom, phantom.lesions)
    masks = lesion_masks(split.layers, split.lesions)
    for no_sites in (None, OrganSet("x", ("aorta",), {"aorta": organs.masks["aorta"]})):
        for site in lesion_sites(no_sites, masks).values():
            assert site.site == "" and site.group == "" and math.isnan(site.fraction)


def test_site_groups_map_organ_classes():
    assert site_group("vertebrae_T7") == site_group("rib_left_3") == site_group("hip_right") == "bone"
    assert site_group("femur_left") == site_group("sternum") == site_group("skull") == site_group("sacrum") == "bone"
    assert site_group("clavicle_left") == site_group("humerus_right") == site_group("scapula_left") == "bone"
    assert site_group("lung_lower_lobe_left") == "lung" and site_group("liver_segment_6") == "liver"
    assert site_group("kidney_left") == site_group("iliopsoas_right") == site_group("thyroid_gland") == \
        "other_extranodal"
    assert site_group("other") == "outside_organs" and site_group("aorta") == "" and site_group("") == ""


def test_burden_by_site_adds_up_to_tmtv_and_ttlg_with_overlapping_lesions(phantom, organs):
    """Six lesions in six groups, plus one overlapping the liver lesion and the node's neighbourhood: the union is
    counted once, and the group volumes and TLGs add up to the scan's TMTV and TTLG."""
    points = ph.centres(phantom.pet)
    masks = dict(phantom.lesions)
    masks["overlap"] = ph.ellipsoid(points, (-75.0, -20.0, -58.0), (9.0,) * 3)  # half inside the liver lesion
    split = lesion_map(phantom, masks)
    assert len(split.layers) == 2  # the overlap needs its own layer
    boxes = lesion_masks(split.layers, split.lesions)
    sites = lesion_sites(organs, boxes)
    burden = site_burden(phantom.pet, boxes, sites)
    totals = scan_indices(phantom.pet, split.layers, split.lesions, "SUVbw")
    assert set(burden) == set(SITE_GROUPS)
    assert sum(g["count"] for g in burden.values()) == len(split.lesions) == 7
    assert sum(g["volume_ml"] for g in burden.values()) == pytest.approx(totals["tmtv_ml"], rel=1e-12)
    assert sum(g["tlg"] for g in burden.values()) == pytest.approx(totals["ttlg"], rel=1e-9)
    overlap_alone = masks["overlap"].sum() * float(np.prod(ph.PET_SPACING)) / 1000
    assert burden["liver"]["count"] == 2
    assert burden["liver"]["volume_ml"] < masks["liver"].sum() * float(np.prod(ph.PET_SPACING)) / 1000 + \
        overlap_alone  # shared voxels counted once


def _union_box_burden(image, lesions, sites):
    """site_burden as first written (every lesion on the whole union's box): the shortcuts must equal it exactly."""
    import SimpleITK as sitk

    voxel = float(np.prod(image.GetSpacing())) / 1000.0
    values = sitk.GetArrayViewFromImage(image)
    out = {g: {"count": 0, "volume_ml": 0.0, "tlg": 0.0} for g in SITE_GROUPS}
    boxes = [m.box for m in lesions.values()]
    union = tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3))
    claimed = np.zeros(tuple(s.stop - s.start for s in union), dtype=bool)
    for lesion_id, mask in sorted(lesions.items()):
        group = sites[lesion_id].group
        mine = mask.within(union) & ~claimed
        claimed |= mine
        out[group]["count"] += 1
        out[group]["volume_ml"] += int(mine.sum()) * voxel
        out[group]["tlg"] += float(values[union][mine].astype(np.float64).sum()) * voxel
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_lesion_box_shortcuts_change_no_value(phantom, organs, seed):
    """Random overlapping lesions on the phantom: site_burden in each lesion's own box equals the whole-union
    computation bit for bit, lesion_sites skipping organs whose box misses the lesion equals counting every organ,
    and the adrenal side with the box-gap bound equals the brute-force distance."""
    from radiomx.features import organ_references as refs
    from radiomx.features.lesion_sites import LesionSite
    from radiomx.inputs.organs import BoxMask

    rng = np.random.default_rng(seed)
    shape = phantom.pet.GetSize()[::-1]
    lesions = {}
    for lesion_id in range(1, 9):
        centre = rng.integers((10, 10, 10), np.asarray(shape) - 10)
        radius = rng.integers(1, 5, size=3)
        z, y, x = np.ogrid[-radius[0]:radius[0] + 1, -radius[1]:radius[1] + 1, -radius[2]:radius[2] + 1]
        voxels = (z / radius[0]) ** 2 + (y / radius[1]) ** 2 + (x / radius[2]) ** 2 <= 1.0
        lesions[lesion_id] = BoxMask(tuple(int(c - r) for c, r in zip(centre, radius, strict=True)), voxels)
    sites = lesion_sites(organs, lesions)
    every = {}
    for lesion_id, lesion in lesions.items():  # every organ counted, zero or not
        counts = [(name, int((lesion.voxels & organ.within(lesion.box)).sum()))
                  for name, organ in sorted(organs.masks.items()) if is_site_class(name)]
        in_any = np.zeros(lesion.voxels.shape, dtype=bool)
        for name, organ in sorted(organs.masks.items()):
            if is_site_class(name):
                in_any |= lesion.voxels & organ.within(lesion.box)
        counts.append(("other", int(lesion.voxels.sum()) - int(in_any.sum())))
        best = max(counts, key=lambda item: (item[1], item[0] != "other"))
        every[lesion_id] = LesionSite(lesion_id, best[0], best[1] / int(lesion.voxels.sum()), site_group(best[0]))
    assert sites == every
    assert site_burden(phantom.pet, lesions, sites) == _union_box_burden(phantom.pet, lesions, sites)
    for lesion in lesions.values():
        for name in refs.ADRENALS.values():
            brute = refs._min_distance_mm(phantom.pet, lesion, organs.masks[name])
            bounded = refs._min_distance_mm(phantom.pet, lesion, organs.masks[name], beyond=refs.ADRENAL_NEAR_MM)
            assert bounded == brute or (bounded == math.inf and brute > refs.ADRENAL_NEAR_MM)
