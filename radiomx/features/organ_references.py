"""Reference regions placed in organ segmentations as the guidelines say: liver, blood pool, spleen, marrow and the
contralateral adrenal, each a deterministic VOI on the PET grid with its definition recorded.

Every VOI keeps clear of lesions: each of its voxels lies more than ``LESION_MARGIN_MM`` (10 mm, about 1.5 times
the 6-7 mm FWHM of a clinical PET, so a lesion's spill-in is negligible) from every lesion voxel. Geometry
conventions (voxels by their centres, clearance, tie-breaks): ``radiomx.features.voi_geometry``. Definitions and
sources, also in docs/organs.md:

* **liver** (PERCIST 1.0, Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S: "a 3-cm-diameter spherical ROI in the
  normal right lobe of the liver"): a sphere of 30 mm diameter. The right lobe is taken as the *right part* of the
  liver mask: voxels at or to the patient's right of the median x (LPS) of the liver's voxels, i.e. the right half
  of the liver by volume. Anatomically the right lobe (Couinaud V-VIII) holds about 60 % of the liver, so its
  right half lies inside it; with TotalSegmentator's ``liver_segments`` output (``liver_segment_5`` ... ``_8``)
  the right lobe is those segments exactly. The sphere is centred at the deepest point of that part (the largest
  clearance from its boundary, the sagittal cut included, and from lesions plus the margin). A right part too
  thin for the sphere gives no liver region and a reason; PERCIST's own fallback is the blood pool, which is
  always computed alongside. radiomx does not move the sphere into the left lobe.
* **bloodpool** (PERCIST 1.0: "a 1-cm-diameter ROI in the descending thoracic aorta over 2 cm z-axis"): a cylinder
  of 10 mm diameter and 20 mm length along the slice axis, wholly inside the descending thoracic aorta. The
  descending part: on each PET slice between the levels of vertebrae T5 and T10 (their masks' z extent), the aorta
  mask's posterior-most 2D connected component. TotalSegmentator's ``aorta`` holds the ascending aorta, the arch
  and the abdominal aorta too; between T5 and T10 the arch is above, the abdominal aorta below, and the ascending
  aorta is the anterior component. Without vertebra masks T5-T10, the slices where the aorta has two or more
  components (ascending and descending both cut) are used. The cylinder's axis is the one with the largest
  in-plane clearance over its 20 mm, ties broken by the nearest slice to the middle of the level range.
* **spleen** (radiomx's definition; no guideline fixes one): a sphere of 20 mm diameter at the deepest point of the
  spleen, placed as the liver's (the PERCIST method at the size a normal spleen, about 4 cm thick, holds).
* **marrow** (radiomx's definition; no guideline fixes the levels): the vertebral bodies of L1-L5 (those
  segmented), each eroded to the voxels more than ``MARROW_EROSION_MM`` (7 mm) inside its vertebra mask, keeping
  the largest 26-connected part (the body: the thin posterior elements vanish in the erosion), without the lesion
  margin.
* **adrenal_contralateral** (the lesion-to-contralateral-adrenal ratio of adrenal CXCR4 imaging, e.g. Heinze et
  al., Hypertension 2018;71:317-325): the whole adrenal gland on the other side from the scan's adrenal lesion(s),
  without the lesion margin. A lesion's side: the adrenal mask that holds more of its voxels; a lesion touching
  neither lies on the side of the adrenal within ``ADRENAL_NEAR_MM`` (10 mm) of it (an adenoma the segmenter left
  out of the gland); other lesions have no side. Lesions on both sides (bilateral disease) leave no
  contralateral gland: the region is null with the lesions named; so is a scan without an adrenal lesion.

Each region's mean and SD come from ``radiomx.features.references.region_stats``, the statistics of hand-drawn
``ref-*`` regions, on the SUV image as read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from radiomx.features.lesion_sites import lesion_masks
from radiomx.features.lesions import LesionMap
from radiomx.features.references import RegionStats, region_stats
from radiomx.features.voi_geometry import (
    IN_PLANE_ONLY,
    ball_offsets,
    best_centre,
    box_points_mm,
    clearance_mm,
    cylinder_offsets,
    grown,
    index_mm,
    largest_component,
    near_lesions,
    place_of,
)
from radiomx.inputs.organs import Box, BoxMask, OrganMask, OrganSet, read_organs
from radiomx.records import OrganSource

#: Regions derived from organs, in the order of their columns.
DERIVED_REGIONS = ("liver", "bloodpool", "spleen", "marrow", "adrenal_contralateral")
LESION_MARGIN_MM = 10.0
LIVER_SPHERE_DIAMETER_MM = 30.0
SPLEEN_SPHERE_DIAMETER_MM = 20.0
BLOODPOOL_DIAMETER_MM = 10.0
BLOODPOOL_LENGTH_MM = 20.0
BLOODPOOL_LEVELS = tuple(f"vertebrae_T{k}" for k in range(5, 11))
MARROW_LEVELS = tuple(f"vertebrae_L{k}" for k in range(1, 6))
MARROW_EROSION_MM = 7.0
ADRENAL_NEAR_MM = 10.0
ADRENALS = {"left": "adrenal_gland_left", "right": "adrenal_gland_right"}
RIGHT_LOBE_SEGMENTS = tuple(f"liver_segment_{k}" for k in range(5, 9))

#: The organ classes each region reads (``radiomx.inputs.organs.read_organs`` reads only these).
REGION_CLASSES: dict[str, tuple[str, ...]] = {
    "liver": ("liver", *RIGHT_LOBE_SEGMENTS), "bloodpool": ("aorta", *BLOODPOOL_LEVELS), "spleen": ("spleen",),
    "marrow": MARROW_LEVELS, "adrenal_contralateral": tuple(ADRENALS.values()),
}
#: The classes without which a region cannot be placed at all (any one of them suffices): a source that holds none
#: of them simply lacks the region, which is worth no warning row (docs/organs.md). The blood pool's vertebrae only
#: bound its slices, so the aorta alone decides.
REGION_NEEDS: dict[str, tuple[str, ...]] = {**REGION_CLASSES, "bloodpool": ("aorta",)}


@dataclass(frozen=True)
class DerivedRegion:
    """One reference region placed in organ masks, or why it could not be (``reason``; then no mask)."""

    region: str
    #: How the VOI was placed (recorded with the statistics).
    definition: str
    #: The organ file(s) it was placed in, then the definition: the row's ``ref_<R>_source``.
    source: str = ""
    mask: BoxMask | None = None
    stats: RegionStats | None = None
    volume_ml: float = math.nan
    #: Mean of its voxel centres, patient LPS mm (x, y, z).
    centre_mm: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    reason: str = ""

    @property
    def voxels(self) -> int:
        return self.stats.voxels if self.stats is not None else 0


def _spacing_zyx(image: sitk.Image) -> tuple[float, float, float]:
    sx, sy, sz = image.GetSpacing()
    return float(sz), float(sy), float(sx)


def _measured(image: sitk.Image, region: str, definition: str, files: str, mask: BoxMask) -> DerivedRegion:
    """Statistics, volume and centre of a placed VOI (the hand-drawn regions' statistics code path)."""
    source = f"{files}: {definition}"
    values = sitk.GetArrayViewFromImage(image)[mask.box]
    volume, centre = place_of(image, np.argwhere(mask.voxels) + np.asarray(mask.origin))
    stats = replace(region_stats(region, files, values, mask.voxels), source=source, volume_ml=volume,
                    centre_mm=centre)
    return DerivedRegion(region, definition, source, mask, stats, volume, centre)


def _null(region: str, definition: str, reason: str) -> DerivedRegion:
    return DerivedRegion(region, definition, reason=reason)


def _organ_box(image: sitk.Image, organ: OrganMask) -> Box:
    return grown(organ.box, (1, 1, 1), image.GetSize()[::-1])


def _missing(organs: OrganSet, names: Sequence[str]) -> str:
    reasons = [organs.problems.get(name, f"no {name} mask (not read)") for name in names if name not in organs.masks]
    return "; ".join(reasons)


def _sphere(image: sitk.Image, region: str, definition: str, organ: OrganMask, part: np.ndarray, box: Box,
            diameter_mm: float, lesions: Sequence[BoxMask], what: str) -> DerivedRegion:
    """A sphere of ``diameter_mm`` at the deepest point of ``part`` (on ``box``) clear of lesions."""
    spacing = _spacing_zyx(image)
    allowed = part & ~near_lesions(box, lesions, LESION_MARGIN_MM, spacing)
    radius = diameter_mm / 2
    clearance = clearance_mm(allowed, spacing)
    centre = best_centre(allowed, clearance, ball_offsets(spacing, radius), radius, spacing)
    if centre is None:
        deepest = float(clearance.max()) if clearance.size else 0.0
        return _null(region, definition, (
            f"{organ.file}: no point of {what} lies more than {radius:g} mm inside it and more than "
            f"{LESION_MARGIN_MM:g} mm from every lesion (deepest: {deepest:.1f} mm), so a {diameter_mm:g} mm sphere "
            "does not fit; the region is null"))
    voxels = np.zeros(allowed.shape, dtype=bool)
    voxels[tuple((np.asarray(centre) + ball_offsets(spacing, radius)).T)] = True
    return _measured(image, region, definition, organ.file, BoxMask(tuple(s.start for s in box), voxels))


LIVER_DEFINITION = (f"PERCIST liver (Wahl 2009): {LIVER_SPHERE_DIAMETER_MM:g} mm sphere at the deepest point of the "
                    "right liver ({part}), voxels > {margin:g} mm from lesions")


def liver_voi(image: sitk.Image, organs: OrganSet, lesions: Sequence[BoxMask]) -> DerivedRegion:
    """PERCIST's liver sphere (module docstring)."""
    segments = [organs.masks[name] for name in RIGHT_LOBE_SEGMENTS if name in organs.masks]
    if "liver" not in organs.masks and not segments:
        return _null("liver", LIVER_DEFINITION.format(part="-", margin=LESION_MARGIN_MM),
                     _missing(organs, ("liver",)))
    if segments:  # Couinaud V-VIII: the right lobe itself
        part_name = "Couinaud segments " + ", ".join(s.name.removeprefix("liver_segment_") for s in segments)
        boxes = [s.box for s in segments]
        box = grown(tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes))  # type: ignore[arg-type]
                          for i in range(3)), (1, 1, 1), image.GetSize()[::-1])
        part = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        for segment in segments:
            part |= segment.within(box)
        organ = OrganMask(segments[0].origin, segments[0].voxels, "liver", ", ".join(s.file for s in segments))
    else:
        organ = organs.masks["liver"]
        box = _organ_box(image, organ)
        liver = organ.within(box)
        x = box_points_mm(image, box)[..., 0]
        median_x = float(np.median(x[liver]))
        part = liver & (x <= median_x)
        part_name = f"x <= {median_x:.1f} mm, the liver's median x"
    definition = LIVER_DEFINITION.format(part=part_name, margin=LESION_MARGIN_MM)
    return _sphere(image, "liver", definition, organ, part, box, LIVER_SPHERE_DIAMETER_MM, lesions,
                   "the right liver")


SPLEEN_DEFINITION = (f"radiomx spleen: {SPLEEN_SPHERE_DIAMETER_MM:g} mm sphere at the deepest point of the spleen "
                     f"(PERCIST's liver method), voxels > {LESION_MARGIN_MM:g} mm from lesions")


def spleen_voi(image: sitk.Image, organs: OrganSet, lesions: Sequence[BoxMask]) -> DerivedRegion:
    if "spleen" not in organs.masks:
        return _null("spleen", SPLEEN_DEFINITION, _missing(organs, ("spleen",)))
    organ = organs.masks["spleen"]
    box = _organ_box(image, organ)
    return _sphere(image, "spleen", SPLEEN_DEFINITION, organ, organ.within(box), box, SPLEEN_SPHERE_DIAMETER_MM,
                   lesions, "the spleen")


def _slab(image: sitk.Image, masks: Sequence[OrganMask]) -> tuple[float, float]:
    """World z range (mm) of the voxel centres of ``masks``."""
    zs = []
    for mask in masks:
        ks = np.flatnonzero(mask.voxels.reshape(mask.voxels.shape[0], -1).any(axis=1)) + mask.origin[0]
        points = index_mm(image, np.stack([ks, np.full_like(ks, mask.origin[1]), np.full_like(ks, mask.origin[2])], 1))
        zs.extend(points[:, 2])
    return float(min(zs)), float(max(zs))


def _slice_components(tube: np.ndarray) -> np.ndarray:
    """Labels of the 8-connected components of each z slice of ``tube`` (ids unique over the volume), in one
    ConnectedComponent call: the slices are spread apart by empty slices, which no 26-connected path crosses."""
    spread = np.zeros((2 * tube.shape[0] - 1, *tube.shape[1:]), dtype=np.uint8)
    spread[::2] = tube
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(spread), True))
    return labels[::2]


BLOODPOOL_DEFINITION = (f"PERCIST blood pool (Wahl 2009): {BLOODPOOL_DIAMETER_MM:g} mm diameter x "
                        f"{BLOODPOOL_LENGTH_MM:g} mm cylinder along z in the descending thoracic aorta ({{part}}), "
                        f"voxels > {LESION_MARGIN_MM:g} mm from lesions")


def bloodpool_voi(image: sitk.Image, organs: OrganSet, lesions: Sequence[BoxMask]) -> DerivedRegion:
    """PERCIST's blood-pool cylinder (module docstring)."""
    if "aorta" not in organs.masks:
        return _null("bloodpool", BLOODPOOL_DEFINITION.format(part="-"), _missing(organs, ("aorta",)))
    aorta = organs.masks["aorta"]
    box = _organ_box(image, aorta)
    tube = aorta.within(box)
    slice_z = index_mm(image, np.stack([np.arange(box[0].start, box[0].stop), np.full(tube.shape[0], box[1].start),
                                        np.full(tube.shape[0], box[2].start)], axis=1))[:, 2]
    levels = [organs.masks[name] for name in BLOODPOOL_LEVELS if name in organs.masks]
    labels = _slice_components(tube)
    ids_of = [np.unique(labels[k][labels[k] > 0]) for k in range(tube.shape[0])]
    if levels:
        low, high = _slab(image, levels)
        names = [name.removeprefix("vertebrae_") for name in BLOODPOOL_LEVELS if name in organs.masks]
        part = f"posterior aorta component on slices within vertebrae {names[0]}-{names[-1]}"
        chosen = [k for k in range(tube.shape[0]) if low - 1e-6 <= slice_z[k] <= high + 1e-6]
    else:
        low, high = float(slice_z.min()), float(slice_z.max())
        part = "posterior aorta component on slices where the aorta has 2 or more components (no T5-T10 masks)"
        chosen = [k for k in range(tube.shape[0]) if len(ids_of[k]) >= 2]
    definition = BLOODPOOL_DEFINITION.format(part=part)
    y_mm = box_points_mm(image, box)[..., 1]
    counts = np.bincount(labels.ravel())
    mean_y = np.bincount(labels.ravel(), weights=y_mm.ravel()) / np.maximum(counts, 1)
    posterior = np.zeros_like(tube)
    for k in chosen:
        if ids_of[k].size:
            back = max(ids_of[k], key=lambda i: (float(mean_y[i]), -int(i)))  # most posterior (LPS: +y)
            posterior[k] = labels[k] == back
    spacing = _spacing_zyx(image)
    allowed = posterior & ~near_lesions(box, lesions, LESION_MARGIN_MM, spacing)
    radius, half = BLOODPOOL_DIAMETER_MM / 2, BLOODPOOL_LENGTH_MM / 2
    in_plane = clearance_mm(allowed, (IN_PLANE_ONLY, spacing[1], spacing[2]))
    reach = int(np.floor(half / spacing[0] + 1e-9))
    padded = np.pad(in_plane, ((reach, reach), (0, 0), (0, 0)))
    window = np.min(np.stack([padded[d: d + in_plane.shape[0]] for d in range(2 * reach + 1)]), axis=0)
    middle = (low + high) / 2
    prefer = np.broadcast_to(np.abs(slice_z - middle)[:, None, None], window.shape)
    offsets = cylinder_offsets(spacing, radius, half)
    centre = best_centre(allowed, window, offsets, radius, spacing, prefer=np.array(prefer))
    longest = _longest_run(chosen)
    if centre is None and longest < 2 * reach + 1:
        return _null("bloodpool", definition, (
            f"{aorta.file}: the descending thoracic aorta ({part}) spans {longest} consecutive PET slices "
            f"({longest * spacing[0]:.1f} mm) in the field of view, too few for a {BLOODPOOL_LENGTH_MM:g} mm "
            f"cylinder ({2 * reach + 1} slices); the region is null"))
    if centre is None:
        return _null("bloodpool", definition, (
            f"{aorta.file}: the descending thoracic aorta ({part}) has no stretch of {BLOODPOOL_LENGTH_MM:g} mm whose "
            f"every slice holds a {BLOODPOOL_DIAMETER_MM:g} mm disc clear of lesions (widest: "
            f"{float(window.max()) if window.size else 0.0:.1f} mm from the wall); the region is null"))
    voxels = np.zeros(allowed.shape, dtype=bool)
    voxels[tuple((np.asarray(centre) + offsets).T)] = True
    files = ", ".join([aorta.file, *(m.file for m in levels)])  # every level bounds the slab
    return _measured(image, "bloodpool", definition, files, BoxMask(tuple(s.start for s in box), voxels))


def _longest_run(indices: Sequence[int]) -> int:
    """The most consecutive integers in an ascending sequence (slices a VOI along z can span)."""
    longest = run = 0
    for k, index in enumerate(indices):
        run = run + 1 if k and index == indices[k - 1] + 1 else 1
        longest = max(longest, run)
    return longest


MARROW_DEFINITION = (f"radiomx marrow: vertebral bodies {{levels}}, voxels > {MARROW_EROSION_MM:g} mm inside each "
                     f"vertebra (largest part), > {LESION_MARGIN_MM:g} mm from lesions")


def marrow_voi(image: sitk.Image, organs: OrganSet, lesions: Sequence[BoxMask]) -> DerivedRegion:
    """Eroded lumbar vertebral bodies (module docstring)."""
    present = [organs.masks[name] for name in MARROW_LEVELS if name in organs.masks]
    levels = ", ".join(m.name.removeprefix("vertebrae_") for m in present) or "L1-L5"
    definition = MARROW_DEFINITION.format(levels=levels)
    if not present:
        return _null("marrow", definition, _missing(organs, MARROW_LEVELS))
    spacing = _spacing_zyx(image)
    boxes = [_organ_box(image, m) for m in present]
    box = tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3))
    cores = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    for vertebra in present:
        mask = vertebra.within(box)  # type: ignore[arg-type]
        cores |= largest_component(clearance_mm(mask, spacing) > MARROW_EROSION_MM)
    allowed = cores & ~near_lesions(box, lesions, LESION_MARGIN_MM, spacing)  # type: ignore[arg-type]
    if not allowed.any():
        return _null("marrow", definition, (
            f"no voxel of vertebrae {levels} lies more than {MARROW_EROSION_MM:g} mm inside its vertebra and more "
            f"than {LESION_MARGIN_MM:g} mm from every lesion; the region is null"))
    return _measured(image, "marrow", definition, ", ".join(m.file for m in present),
                     BoxMask(tuple(s.start for s in box), allowed))  # type: ignore[arg-type]


def _box_gap_mm(image: sitk.Image, a: BoxMask, b: BoxMask) -> float:
    """A lower bound of the distance between a voxel centre of ``a`` and one of ``b`` (mm): the gap between the
    world-axis boxes around the corners of their index boxes (which hold every voxel centre, whatever the
    direction)."""
    def world_box(mask: BoxMask) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.asarray(mask.origin), np.asarray(mask.origin) + np.asarray(mask.voxels.shape) - 1
        corners = np.array([[z, y, x] for z in (lo[0], hi[0]) for y in (lo[1], hi[1]) for x in (lo[2], hi[2])])
        points = index_mm(image, corners)
        return points.min(axis=0), points.max(axis=0)

    (alo, ahi), (blo, bhi) = world_box(a), world_box(b)
    gap = np.maximum(0.0, np.maximum(alo - bhi, blo - ahi))
    return float(np.sqrt((gap**2).sum()))


def _min_distance_mm(image: sitk.Image, a: BoxMask, b: BoxMask, chunk: int = 4096,
                     beyond: float = math.inf) -> float:
    """Smallest distance between a voxel centre of ``a`` and one of ``b`` (mm); ``math.inf`` when their boxes lie
    more than ``beyond`` mm apart (the exact distance is then not needed, and not computed: it is larger)."""
    if _box_gap_mm(image, a, b) > beyond:
        return math.inf
    pa = index_mm(image, np.argwhere(a.voxels) + np.asarray(a.origin))
    pb = index_mm(image, np.argwhere(b.voxels) + np.asarray(b.origin))
    best = math.inf
    for start in range(0, len(pa), chunk):
        block = pa[start: start + chunk]
        best = min(best, float(np.sqrt(((block[:, None, :] - pb[None, :, :]) ** 2).sum(-1).min())))
    return best


def lesion_side(image: sitk.Image, lesion: BoxMask, organs: OrganSet) -> str:
    """``left``/``right``: the adrenal a lesion lies in or next to (module docstring); "" for other lesions."""
    inside = {side: int((lesion.voxels & organs.masks[name].within(lesion.box)).sum())
              for side, name in ADRENALS.items() if name in organs.masks}
    if inside and max(inside.values()) > 0:
        ranked = sorted(inside.items(), key=lambda item: -item[1])
        return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else ""
    near = {side: _min_distance_mm(image, lesion, organs.masks[name], beyond=ADRENAL_NEAR_MM)
            for side, name in ADRENALS.items() if name in organs.masks}
    near = {side: d for side, d in near.items() if d <= ADRENAL_NEAR_MM}
    if not near:
        return ""
    ranked = sorted(near.items(), key=lambda item: item[1])
    return ranked[0][0] if len(ranked) == 1 or ranked[0][1] < ranked[1][1] else ""


ADRENAL_DEFINITION = (f"contralateral adrenal: the whole {{gland}} (the other side from the adrenal lesion), voxels > "
                      f"{LESION_MARGIN_MM:g} mm from lesions")


def adrenal_voi(image: sitk.Image, organs: OrganSet, lesions: Mapping[int, BoxMask]
                ) -> tuple[DerivedRegion, dict[int, str]]:
    """The contralateral adrenal and every lesion's side (``lesion_id -> left/right``, adrenal lesions only)."""
    generic = ADRENAL_DEFINITION.format(gland="adrenal gland")
    if not any(name in organs.masks for name in ADRENALS.values()):
        return _null("adrenal_contralateral", generic, _missing(organs, tuple(ADRENALS.values()))), {}
    sides = {lesion_id: side for lesion_id, mask in sorted(lesions.items())
             if (side := lesion_side(image, mask, organs))}
    if not sides:
        return _null("adrenal_contralateral", generic, "no lesion lies in or next to an adrenal gland, so no side "
                                                       "is contralateral; the region is null"), sides
    if len(set(sides.values())) > 1:
        listed = ", ".join(f"lesion {i} ({s})" for i, s in sides.items())
        return _null("adrenal_contralateral", generic, f"adrenal lesions on both sides ({listed}): no contralateral "
                                                       "adrenal; the region is null"), sides
    other = "right" if next(iter(sides.values())) == "left" else "left"
    name = ADRENALS[other]
    definition = ADRENAL_DEFINITION.format(gland=name)
    if name not in organs.masks:
        return _null("adrenal_contralateral", definition, _missing(organs, (name,))), sides
    gland = organs.masks[name]
    box = _organ_box(image, gland)
    allowed = gland.within(box) & ~near_lesions(box, list(lesions.values()), LESION_MARGIN_MM,
                                                _spacing_zyx(image))
    if not allowed.any():
        return _null("adrenal_contralateral", definition, (
            f"{gland.file}: every voxel of the {name} lies within {LESION_MARGIN_MM:g} mm of a lesion; the region "
            "is null")), sides
    return _measured(image, "adrenal_contralateral", definition, gland.file,
                     BoxMask(tuple(s.start for s in box), allowed)), sides


def derived_regions(image: sitk.Image, organs: OrganSet, lesions: Mapping[int, BoxMask],
                    regions: Sequence[str] = DERIVED_REGIONS) -> tuple[dict[str, DerivedRegion], dict[int, str]]:
    """Every region of ``regions`` placed in ``organs`` on ``image`` (SUV, PET grid) clear of ``lesions``
    (lesion_id -> mask), and the adrenal side of each adrenal lesion."""
    listed = list(lesions.values())
    out: dict[str, DerivedRegion] = {}
    sides: dict[int, str] = {}
    for region in regions:
        if region == "liver":
            out[region] = liver_voi(image, organs, listed)
        elif region == "bloodpool":
            out[region] = bloodpool_voi(image, organs, listed)
        elif region == "spleen":
            out[region] = spleen_voi(image, organs, listed)
        elif region == "marrow":
            out[region] = marrow_voi(image, organs, listed)
        elif region == "adrenal_contralateral":
            out[region], sides = adrenal_voi(image, organs, lesions)
        else:
            raise ValueError(f"unknown derived region {region!r} (known: {', '.join(DERIVED_REGIONS)})")
    return out, sides


def scan_regions(source: OrganSource, image: sitk.Image, missing: Sequence[str], lesion_map: LesionMap,
                 site_classes: Iterable[str]) -> tuple[OrganSet, dict[str, DerivedRegion]]:
    """A scan's organs (``site_classes`` and the classes of the ``missing`` regions) on ``image``'s grid, and the
    ``missing`` regions placed clear of the lesions of ``lesion_map`` (the masks as drawn). The one path the
    extraction (``radiomx.run.organs``) and ``radiomx qc`` (its redrawn VOIs) both take, so both see the same VOIs.
    Raises ScanError (stage ``organs``) for a source that cannot be read."""
    wanted = set(site_classes).union(*(REGION_CLASSES[region] for region in missing))
    organs = read_organs(source, image, wanted)
    if not missing:
        return organs, {}
    regions, _ = derived_regions(image, organs, lesion_masks(lesion_map.layers, lesion_map.lesions), missing)
    return organs, regions
