"""A scan's organ segmentations in the worker: the reference regions no hand-drawn ``ref-*`` file gives, placed in
the organs (``radiomx.features.organ_references``), and every lesion's site (``radiomx.features.lesion_sites``),
with a row for every problem (docs/organs.md).

Why in ``run``: reading organs is ``radiomx.inputs``, the VOIs and sites are ``radiomx.features``, and the problems
are rows of the scan's outcome; this is the one place that joins the three, as ``run.references`` does for drawn
regions.

Rows: an organ source that cannot be read (a ScanError, stage ``organs``) is a failure: the scan is partial and
retried next run, its lesion rows still written (their sites unknown). A derived region that is null because its
organ lies outside the PET's field of view, or its VOI does not fit, or the adrenal lesions lie on both sides, is a
warning (stage ``organs``) with the reason, also kept in ``ref_<R>_reason``. A region whose organ classes the
source does not hold at all (no vertebrae segmented, no adrenal lesion) is not warned about: its reason is kept in
the state row only. Organ masks outside the field of view that no region needs are named in one warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

from radiomx.columns import SITE_GROUPS
from radiomx.errors import ScanError
from radiomx.features.lesion_sites import SITE_CLASSES, lesion_masks, lesion_sites, site_burden
from radiomx.features.lesions import LesionMap
from radiomx.features.organ_references import (
    ADRENALS,
    DERIVED_REGIONS,
    REGION_CLASSES,
    REGION_NEEDS,
    lesion_side,
    scan_regions,
)
from radiomx.features.references import RegionStats
from radiomx.inputs.organs import BoxMask, OrganSet
from radiomx.records import CohortPaths, Failure, ScanOutcome
from radiomx.run.tasks import ScanTask
from radiomx.vocabulary import Stage


@dataclass
class OrganReading:
    """What a scan's organs gave: the masks on the PET grid (None without a source, or when it could not be read),
    the derived regions' statistics and the reasons of the null ones."""

    organs: OrganSet | None = None
    stats: dict[str, RegionStats] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    #: The derived VOIs on the PET grid, for the QC picture.
    masks: dict[str, BoxMask] = field(default_factory=dict)


def read_scan_organs(task: ScanTask, image: sitk.Image, pet: bool, drawn: Mapping[str, RegionStats],
                     lesions: LesionMap, outcome: ScanOutcome) -> OrganReading:
    """The scan's organs on ``image``'s grid and (PET) the regions no drawn file gives, placed clear of
    ``lesions`` (the masks as drawn, before any threshold VOI, so that a percist threshold can use a derived
    liver). Records ``organs_*`` in the state row and every problem as a row (module docstring)."""
    scan, key = task.scan, task.scan.key
    if scan.organs is None:
        return OrganReading()
    paths = CohortPaths(task.cohort)
    outcome.state.update(organs_file=paths.relative(scan.organs.path), organs_form=scan.organs.form)
    missing = tuple(region for region in DERIVED_REGIONS if region not in drawn) if pet else ()
    try:
        organs, regions = scan_regions(scan.organs, image, missing, lesions, SITE_CLASSES)
    except ScanError as exc:
        outcome.failures.append(Failure(key, exc.stage, exc.path or str(scan.organs.path), exc.detail))
        return _unread(missing)
    except OSError as exc:
        outcome.failures.append(Failure(key, Stage.ORGANS, str(exc.filename or scan.organs.path),
                                        f"organ segmentation cannot be read ({exc.strerror}); check permissions"))
        return _unread(missing)
    outcome.state["organs_classes"] = ",".join(sorted(organs.masks))
    if not organs.available:
        outcome.warnings.append(Failure(key, Stage.ORGANS, str(scan.organs.path), (
            "organ segmentation names no organ class (TotalSegmentator/MOOSE names, docs/organs.md#class-names): "
            "no region derived, lesion sites unknown")))
        return OrganReading(reasons={region: "the organ segmentation names no organ class" for region in missing})
    reading = OrganReading(organs)
    needed = set().union(*(REGION_CLASSES[region] for region in missing))
    for region, placed in regions.items():
        if placed.stats is not None and placed.mask is not None:
            reading.stats[region] = placed.stats
            reading.masks[region] = placed.mask
            continue
        reading.reasons[region] = placed.reason
        if _worth_a_warning(region, placed.reason, organs):
            outcome.warnings.append(Failure(key, Stage.ORGANS, str(scan.organs.path),
                                            f"reference region {region} not derived: {placed.reason}"))
    outside = sorted(name for name, problem in organs.problems.items()
                     if name in organs.available and name not in needed and "field of view" in problem)
    if outside:
        outcome.warnings.append(Failure(key, Stage.ORGANS, str(scan.organs.path), (
            f"organ masks outside the PET's field of view (no PET voxel centre inside them; lesions there cannot be "
            f"given these sites): {', '.join(outside)}")))
    return reading


def _unread(missing: tuple[str, ...]) -> OrganReading:
    """No organs: the source could not be read (its failure row says why); each region asked for says so."""
    return OrganReading(reasons={region: "the organ segmentation could not be read (see this scan's failure row)"
                                 for region in missing})


def _worth_a_warning(region: str, reason: str, organs: OrganSet) -> bool:
    """A null region is worth a warning when the source holds its organ (so something went wrong: outside the
    field of view, the VOI does not fit, bilateral adrenal lesions), not when the classes it cannot do without are
    simply absent (no aorta, no lumbar vertebra) or no lesion lies in an adrenal (the usual case)."""
    if not any(name in organs.available for name in REGION_NEEDS[region]):
        return False
    if region == "adrenal_contralateral":
        return "both sides" in reason or "field of view" in reason
    return True


#: A lesion's site columns when its scan has no organ masks (docs/organs.md: "" is "no organs", never "other").
NO_SITE: dict[str, Any] = {"lesion_site": "", "lesion_site_fraction": math.nan, "lesion_site_group": "",
                           "adrenal_side": ""}


def site_columns(reading: OrganReading, image: sitk.Image, lesions: LesionMap, pet: bool
                 ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The state's ``site_<group>_count/_volume_ml/_tlg`` (TLG on PET only; null without organs) and each lesion's
    ``lesion_site``, ``lesion_site_fraction``, ``lesion_site_group`` and ``adrenal_side`` (the adrenal gland it
    lies in or next to, "" for other lesions)."""
    masks = lesion_masks(lesions.layers, lesions.lesions)
    organs = reading.organs
    sites = lesion_sites(organs, masks)
    per_lesion: dict[int, dict[str, Any]] = {}
    for lesion_id, site in sites.items():
        side = lesion_side(image, masks[lesion_id], organs) if organs is not None and _has_adrenal(organs) else ""
        per_lesion[lesion_id] = {"lesion_site": site.site, "lesion_site_fraction": site.fraction,
                                 "lesion_site_group": site.group, "adrenal_side": side}
    if organs is None:
        return {}, per_lesion
    burden = site_burden(image, masks, sites)
    state: dict[str, Any] = {}
    for group in SITE_GROUPS:
        figures = burden[group]
        state.update({f"site_{group}_count": int(figures["count"]), f"site_{group}_volume_ml": figures["volume_ml"],
                      f"site_{group}_tlg": figures["tlg"] if pet else math.nan})
    return state, per_lesion


def _has_adrenal(organs: OrganSet) -> bool:
    return any(name in organs.masks for name in ADRENALS.values())

