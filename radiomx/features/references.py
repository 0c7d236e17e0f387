"""Reference regions: which they are, their SUV statistics per scan, lesion-to-reference ratios, plausibility.

Convention (docs/lesions-and-indices.md): a scan folder may hold ``ref-<region>.<image suffix>`` masks
(``ref-liver.nii.gz``, ``ref-bloodpool.nrrd``, ``ref-adrenal-contralateral.nii.gz``, ``ref-marrow.nii.gz``; a
``.dcm`` SEG/RTSTRUCT too); BIDS derivatives name them ``..._desc-ref<region>_mask.nii.gz``
(``desc-refliver``); DICOM SEG segments and RTSTRUCT ROIs whose label/name starts with ``ref-`` are reference
regions, not lesions. Any non-zero voxel of a reference mask belongs to the region.

Why these four: the trials' papers report lesion-to-liver and lesion-to-blood-pool ratios (FDG, CXCR4),
lesion-to-contralateral-adrenal ratios (adrenal CXCR4/SSTR imaging in Cushing's syndrome) and bone marrow uptake
(myeloma, lymphoma). Region names (``region_of``) live in ``radiomx.records``: discovery needs them without numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from radiomx.records import REFERENCE_REGIONS

#: Regions with columns in the tables (radiomx.records.REFERENCE_REGIONS); naming lives with them in records.
REGIONS = REFERENCE_REGIONS


@dataclass(frozen=True)
class RegionStats:
    """SUV statistics of one reference region on the image grid as read, and where the region is: its ``source``
    (``drawn: <file>``, or the organ file(s) and the definition it was placed by), volume and centre (mean of its
    voxel centres, LPS mm)."""

    region: str
    file: str
    suv_mean: float
    suv_sd: float
    voxels: int
    #: The region's highest voxel (Deauville compares the liver's and blood pool's SUVmax: Barrington et al. 2014).
    suv_max: float = math.nan
    source: str = ""
    volume_ml: float = math.nan
    centre_mm: tuple[float, float, float] = field(default=(math.nan, math.nan, math.nan))


def region_stats(region: str, file: str, values: np.ndarray, mask: np.ndarray) -> RegionStats:
    """Mean, population SD (ddof 0) and maximum of the image over the region's voxels."""
    inside = values[mask].astype(np.float64)
    if inside.size == 0:
        return RegionStats(region, file, math.nan, math.nan, 0)
    return RegionStats(region, file, float(inside.mean()), float(inside.std()), int(inside.size), float(inside.max()))


def state_columns(stats: dict[str, RegionStats], reasons: dict[str, str] | None = None
                  ) -> dict[str, float | int | str | None]:
    """``ref_<R>_suv_mean/_suv_sd/_suv_max/_voxels/_file/_source/_volume_ml/_centre_<x|y|z>_mm`` for every region
    (null and "" when absent) and ``ref_<R>_reason``: why a region derived from organs is null (``reasons``)."""
    out: dict[str, float | int | str | None] = {}
    nan3 = (math.nan, math.nan, math.nan)
    for region in REGIONS:
        s = stats.get(region)
        centre = s.centre_mm if s else nan3
        out.update({f"ref_{region}_suv_mean": s.suv_mean if s else math.nan,
                    f"ref_{region}_suv_sd": s.suv_sd if s else math.nan,
                    f"ref_{region}_voxels": s.voxels if s else None, f"ref_{region}_file": s.file if s else "",
                    f"ref_{region}_suv_max": s.suv_max if s else math.nan,
                    f"ref_{region}_source": s.source if s else "",
                    f"ref_{region}_reason": "" if s else (reasons or {}).get(region, ""),
                    f"ref_{region}_volume_ml": s.volume_ml if s else math.nan,
                    f"ref_{region}_centre_x_mm": centre[0], f"ref_{region}_centre_y_mm": centre[1],
                    f"ref_{region}_centre_z_mm": centre[2]})
    return out


def stats_from_state(row: dict) -> dict[str, RegionStats]:
    """The regions as a stored state row holds them (the inverse of ``state_columns``; float64 round-trips
    exactly through Parquet), for a later step that must see what the extraction saw (``radiomx qc``)."""
    stats = {}
    for region in REGIONS:
        try:  # absent: None, NaN (an int column with nulls read by pandas) or pd.NA, none of which int() takes
            voxels = int(row.get(f"ref_{region}_voxels"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if voxels > 0:
            stats[region] = RegionStats(region, str(row.get(f"ref_{region}_file") or ""),
                                        _float(row.get(f"ref_{region}_suv_mean")),
                                        _float(row.get(f"ref_{region}_suv_sd")), voxels,
                                        _float(row.get(f"ref_{region}_suv_max")),
                                        source=str(row.get(f"ref_{region}_source") or ""))
    return stats


def _float(value: object) -> float:
    """A stored figure as float, NaN for a null in any spelling (None, NaN, pd.NA)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def lesion_ratios(suv_max: float, suv_peak: float, stats: dict[str, RegionStats]) -> dict[str, float | str]:
    """``suv_max_to_<R>`` = lesion SUVmax / region SUVmean; ``suv_peak_to_liver`` = SUVpeak / liver SUVmean (qPET,
    Hasenclever et al. 2014); ``ref_missing`` lists absent regions ("" when none)."""
    out: dict[str, float | str] = {}
    for region in REGIONS:
        s = stats.get(region)
        out[f"suv_max_to_{region}"] = suv_max / s.suv_mean if s and s.suv_mean > 0 else math.nan
    liver = stats.get("liver")
    out["suv_peak_to_liver"] = suv_peak / liver.suv_mean if liver and liver.suv_mean > 0 else math.nan
    out["ref_missing"] = ",".join(r for r in REGIONS if r not in stats)
    return out


def implausible(stats: dict[str, RegionStats], ranges: tuple[tuple[str, tuple[float, float]], ...],
                tracer: str, params_file: str) -> list[tuple[str, str]]:
    """(file, message) for every region whose SUVmean lies outside the parameter file's plausible range."""
    problems = []
    for region, (low, high) in ranges:
        s = stats.get(region)
        if s is not None and not low <= s.suv_mean <= high:
            problems.append((s.file, f"reference region {region}: SUVmean {s.suv_mean:.3g} is outside the plausible "
                                     f"{low:g}-{high:g} for {tracer} ({params_file}); check the region and the SUV "
                                     "inputs (a warning: ratios are still computed)"))
    return problems


def percist_threshold(stats: dict[str, RegionStats]) -> float | None:
    """PERCIST 1.0 threshold 1.5 x liver mean + 2 x liver SD (Wahl et al. 2009, J Nucl Med 50:122S), in SUVbw
    (PERCIST states it in SUL; radiomx uses the SUV the image is in). None without a liver region."""
    liver = stats.get("liver")
    if liver is None or liver.voxels == 0:
        return None
    return 1.5 * liver.suv_mean + 2.0 * liver.suv_sd
