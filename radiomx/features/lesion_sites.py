"""Where each lesion is: the organ holding most of its voxels, its site group, and the scan's burden by site group.

Definitions (docs/organs.md, "Lesion sites"):

* **site** (``lesion_site``): among the organ masks read for the scan (every class of a site kind: bone, spleen,
  liver, lung, other organs, muscles; ``radiomx.inputs.organ_names``) and "outside every organ", the one holding
  the most of the lesion's voxels (PET grid as read). Ties go to an organ before "outside", then to the class name
  in alphabetical order. ``"other"`` means outside every organ read; ``""`` means there were no organ masks at
  all, so the lesion's site is unknown ("other" is never "none").
* **fraction** (``lesion_site_fraction``): the share of the lesion's voxels in its site.
* Vessels (aorta, venae cavae, iliac and other vessels) and tissues (body outline, fat) are not sites: a lesion's
  voxels inside them count as outside every organ. Lymph nodes lie next to vessels, and a node that spills into a
  vessel mask is still a node.
* **site group** (``lesion_site_group``): ``bone`` (vertebrae, sacrum, ribs, sternum, costal cartilages, pelvis/hips,
  femurs, humeri, scapulae, clavicles, skull and the appendicular bones: marrow involvement), ``spleen``, ``liver``,
  ``lung``, ``other_extranodal`` (every other organ and the muscles: kidneys, adrenals, pancreas, stomach, bowel,
  thyroid, brain, heart, ...) and ``outside_organs``: not in a segmented organ. TotalSegmentator and MOOSE do not
  segment lymph nodes, so nodal disease, soft-tissue and subcutaneous lesions all fall in ``outside_organs``: it is
  "not in an organ", not "nodal".
* **burden by site group**: lesion count and volume (and TLG on PET) per group. Each voxel of the union of the
  lesions counts once, for the group of the lowest-numbered lesion that covers it, so the volumes add up to the
  TMTV and the TLGs to the TTLG exactly; the counts add up to the number of lesions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radiomx.columns import SITE_GROUPS
from radiomx.inputs.organ_names import BONE, CLASS_KINDS, LIVER, LUNG, MUSCLE, ORGAN, SPLEEN, kind_of
from radiomx.inputs.organs import BoxMask, OrganSet

OUTSIDE = "other"
#: Organ kind -> site group; kinds not listed (vessel, tissue) are not sites.
GROUP_OF_KIND = {BONE: "bone", SPLEEN: "spleen", LIVER: "liver", LUNG: "lung", ORGAN: "other_extranodal",
                 MUSCLE: "other_extranodal"}


def site_group(site: str) -> str:
    """The group of a site (an organ class, ``other``, or "" when unknown)."""
    if site == OUTSIDE:
        return "outside_organs"
    return GROUP_OF_KIND.get(kind_of(site), "") if site else ""


def is_site_class(name: str) -> bool:
    return kind_of(name) in GROUP_OF_KIND


#: Every organ class that can be a lesion's site (vessels and tissues are not): what a scan's organs are read for,
#: with the classes of the reference regions still to place.
SITE_CLASSES = frozenset(name for name in CLASS_KINDS if is_site_class(name))


@dataclass(frozen=True)
class LesionSite:
    lesion_id: int
    #: The organ class holding most of the lesion's voxels, ``other``, or "" without organ masks.
    site: str
    #: Share of the lesion's voxels in ``site`` (NaN when the site is unknown).
    fraction: float
    group: str


def _overlap(a, b) -> bool:
    """Do two boxes of one grid share a voxel?"""
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b, strict=True))


def lesion_masks(layers: Sequence[sitk.Image], lesions) -> dict[int, BoxMask]:
    """Each lesion (``radiomx.features.lesions.Lesion``) as a BoxMask of its own voxels, from its layer."""
    out = {}
    for lesion in lesions:
        (x0, y0, z0), (nx, ny, nz) = lesion.bbox_index, lesion.bbox_size
        layer = sitk.GetArrayViewFromImage(layers[lesion.layer])
        out[lesion.lesion_id] = BoxMask((z0, y0, x0), layer[z0: z0 + nz, y0: y0 + ny, x0: x0 + nx] == lesion.lesion_id)
    return out


def lesion_sites(organs: OrganSet | None, lesions: Mapping[int, BoxMask]) -> dict[int, LesionSite]:
    """The site of every lesion (module docstring)."""
    sites = {name: mask for name, mask in sorted(organs.masks.items()) if is_site_class(name)} if organs else {}
    boxes = {name: organ.box for name, organ in sites.items()}
    known = organs is not None and any(is_site_class(name) for name in organs.available)
    out = {}
    for lesion_id, lesion in sorted(lesions.items()):
        total = int(lesion.voxels.sum())
        if not known or total == 0:
            out[lesion_id] = LesionSite(lesion_id, "", float("nan"), "")
            continue
        in_any = np.zeros(lesion.voxels.shape, dtype=bool)
        counts = []
        box = lesion.box
        for name, organ in sites.items():
            if not _overlap(boxes[name], box):  # holds none of its voxels: a count of 0 never wins
                continue
            inside = lesion.voxels & organ.within(box)
            in_any |= inside
            counts.append((name, int(inside.sum())))
        counts.append((OUTSIDE, total - int(in_any.sum())))
        best = max(counts, key=lambda item: (item[1], item[0] != OUTSIDE))  # max keeps the first of equal keys
        out[lesion_id] = LesionSite(lesion_id, best[0], best[1] / total, site_group(best[0]))
    return out


def site_burden(image: sitk.Image, lesions: Mapping[int, BoxMask], sites: Mapping[int, LesionSite]
                ) -> dict[str, dict[str, float | int]]:
    """Per site group: ``count`` (lesions), ``volume_ml`` and ``tlg`` (sum of image values x voxel volume) over the
    union of lesion voxels, each voxel for the lowest-numbered lesion covering it (module docstring). Groups without
    a lesion are 0; a lesion of unknown site counts in no group."""
    voxel = float(np.prod(image.GetSpacing())) / 1000.0
    values = sitk.GetArrayViewFromImage(image)
    out: dict[str, dict[str, float | int]] = {g: {"count": 0, "volume_ml": 0.0, "tlg": 0.0} for g in SITE_GROUPS}
    if not lesions:
        return out
    boxes = [m.box for m in lesions.values()]
    union = tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3))
    claimed = np.zeros(tuple(s.stop - s.start for s in union), dtype=bool)
    for lesion_id, mask in sorted(lesions.items()):
        group = sites[lesion_id].group if lesion_id in sites else ""
        # In the lesion's own box: the same voxels, in the same raster order, as over the whole union's box.
        local = tuple(slice(s.start - u.start, s.stop - u.start) for s, u in zip(mask.box, union, strict=True))
        mine = mask.voxels & ~claimed[local]
        claimed[local] |= mine
        if not group:
            continue
        out[group]["count"] = int(out[group]["count"]) + 1
        out[group]["volume_ml"] = float(out[group]["volume_ml"]) + int(mine.sum()) * voxel
        out[group]["tlg"] = float(out[group]["tlg"]) + float(values[mask.box][mine].astype(np.float64).sum()) * voxel
    return out
