"""Scores per scan from stored statistics: Deauville (1-5), qPET and Krenning (0-4). Pure functions.

Why pure functions of (lesion statistics, reference statistics, settings): the scores are read-outs of numbers
radiomx already stores (the hottest lesion's SUVmax/SUVpeak, the reference regions' SUVmean/SUVmax), so they are
derived from rows, never from images, and each boundary can be tested on both sides with synthetic values. Every
result is a ``Score``: a value, or null with the reason, and when a missing reference still narrows the answer
(Deauville 2 or 3 without a blood pool), the bounds. Definitions and sources: docs/readouts.md.

What the functions cannot judge, and say so: a visual read (score 1 "no uptake above background" needs the
background; Deauville's X "new uptake unlikely to be lymphoma"), whether the hottest lesion is disease at all, and
diffuse marrow or splenic uptake. A negative scan (no lesion in the mask) is scored as what the segmentation says:
no lesional uptake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from radiomx.params.readouts import DeauvilleSetting, KrenningSetting

#: Hasenclever et al. 2014 (Eur J Nucl Med Mol Imaging 41:1301): "Deauville categories 3, 4, 5 correspond to qPET
#: values of 0.95, 1.3 and 2.0" (the lower border of each category on the qPET scale).
QPET_DEAUVILLE_BORDERS = ((0.95, 3), (1.3, 4), (2.0, 5))
QPET_DEFINITION = "hottest lesion suv_peak / liver suv_mean (Hasenclever et al. 2014)"
NEGATIVE = "negative scan: no lesion in the mask"


@dataclass(frozen=True)
class RegionStats:
    """One reference region of one scan, in the scan's SUV (SUVbw); None where not stored."""

    mean: float | None = None
    sd: float | None = None
    max: float | None = None

    def statistic(self, name: str) -> float | None:
        value = {"suv_mean": self.mean, "suv_max": self.max}[name]
        return value if value is not None and math.isfinite(value) and value > 0 else None


@dataclass(frozen=True)
class ScanStatistics:
    """What a score reads of one scan: its lesion count (0: negative), the hottest lesion's statistics (burden's
    ``suv_max_hottest`` and ``suv_peak_hottest``; they may come from different lesions) and its reference regions
    (region -> ``RegionStats``; ``liver``, ``bloodpool``, ``spleen``, ...)."""

    lesion_count: int
    suv_max: float | None = None
    suv_peak: float | None = None
    references: Mapping[str, RegionStats] = field(default_factory=dict)

    def hottest(self, statistic: str) -> float | None:
        value = {"suv_max": self.suv_max, "suv_peak": self.suv_peak}[statistic]
        return value if value is not None and math.isfinite(value) else None

    def reference(self, region: str, statistic: str) -> float | None:
        """The region's statistic when it is stored and positive; None when the region is absent or unusable."""
        found = self.references.get(region)
        return found.statistic(statistic) if found is not None else None


@dataclass(frozen=True)
class Score:
    """A score, or None with ``note`` saying why; ``low``/``high`` bound it when it is known only in part."""

    value: int | None
    note: str = ""
    low: int | None = None
    high: int | None = None
    definition: str = ""

    @classmethod
    def known(cls, value: int, note: str, definition: str) -> Score:
        return cls(value, note, value, value, definition)

    @classmethod
    def between(cls, low: int, high: int, note: str, definition: str) -> Score:
        return cls(None, note, low, high, definition)

    @classmethod
    def unknown(cls, note: str, definition: str) -> Score:
        return cls(None, note, None, None, definition)


def _lesion_and_liver(scan: ScanStatistics, setting: DeauvilleSetting | KrenningSetting, scale: str,
                      negative: int, meaning: str) -> Score | tuple[float, float]:
    """What both scales start from: a negative scan's score, else the hottest lesion's and the liver's statistic
    (as the setting names them), else null with the reason."""
    definition = setting.definition()
    if scan.lesion_count == 0:
        return Score.known(negative, f"{NEGATIVE} ({negative}: {meaning}, as segmented)", definition)
    lesion = scan.hottest(setting.lesion_statistic)
    if lesion is None:
        return Score.unknown(f"hottest lesion {setting.lesion_statistic} not stored", definition)
    liver = scan.reference("liver", setting.reference_statistic)
    if liver is None:
        return Score.unknown(f"no usable liver reference ({setting.reference_statistic}); {scale} compares with "
                             "the liver", definition)
    return lesion, liver


def deauville(scan: ScanStatistics, setting: DeauvilleSetting) -> Score:
    """Deauville five-point scale (Barrington et al., J Clin Oncol 2014;32:3048; Cheson et al., J Clin Oncol
    2014;32:3059; Meignan et al. 2009), from the hottest lesion's ``lesion_statistic`` L, the mediastinal blood
    pool's M and the liver's V (``reference_statistic``), k = ``markedly_higher_than_liver``:

    * 5: L > k V ("markedly higher than liver": 2-3 times the liver's maximum SUV, Barrington et al. 2010);
    * 4: V < L <= k V ("moderately higher than liver");
    * 3: M < L <= V; 2: L <= M;
    * when M >= V, the lesion is compared with the liver only: L < V is 2, L = V is 3 (Barrington et al. 2010);
    * 1 ("no uptake above background") for a negative scan only: a lesion in the mask is uptake, and the background
      is not measured.

    No liver: null. No blood pool: 4 and 5 still known; at or below the liver, "2 or 3" (bounds 2-3)."""
    definition = setting.definition()
    start = _lesion_and_liver(scan, setting, "Deauville", 1, "no uptake above background")
    if isinstance(start, Score):
        return start
    lesion, liver = start
    k = setting.markedly_higher_than_liver
    if lesion > k * liver:
        return Score.known(5, f"lesion {lesion:.3g} > {k:g} x liver {liver:.3g}", definition)
    if lesion > liver:
        return Score.known(4, f"liver {liver:.3g} < lesion {lesion:.3g} <= {k:g} x liver", definition)
    blood = scan.reference("bloodpool", setting.reference_statistic)
    if blood is None:
        return Score.between(2, 3, f"2 or 3: lesion {lesion:.3g} <= liver {liver:.3g}, no usable blood-pool "
                                   "reference", definition)
    if blood >= liver:
        note = (f"blood pool {blood:.3g} >= liver {liver:.3g}: lesion compared with the liver only (Barrington et al. "
                "2010)")
        return Score.known(2 if lesion < liver else 3, note, definition)
    if lesion > blood:
        return Score.known(3, f"blood pool {blood:.3g} < lesion {lesion:.3g} <= liver {liver:.3g}", definition)
    return Score.known(2, f"lesion {lesion:.3g} <= blood pool {blood:.3g}", definition)


def qpet(scan: ScanStatistics) -> tuple[float | None, str]:
    """qPET (Hasenclever et al., Eur J Nucl Med Mol Imaging 2014;41:1301): the hottest lesion's SUVpeak over the
    liver's SUVmean. radiomx's SUVpeak is the parameter file's IBSI peak, not qPET's own (the hottest voxel with its
    hottest neighbours), so this is the qPET ratio with radiomx's peak. None with the reason for a negative scan
    (no residual lesion to measure) or without a liver SUVmean."""
    if scan.lesion_count == 0:
        return None, f"{NEGATIVE}: no lesion to measure"
    peak = scan.hottest("suv_peak")
    if peak is None:
        return None, "hottest lesion suv_peak not stored"
    liver = scan.reference("liver", "suv_mean")
    if liver is None:
        return None, "no usable liver reference (suv_mean)"
    return peak / liver, ""


def qpet_deauville(value: float) -> int:
    """The Deauville category a qPET value falls in, by Hasenclever et al. 2014's borders (0.95, 1.3, 2.0): below
    0.95 is 2 (a measured lesion is never 1), [0.95, 1.3) is 3, [1.3, 2.0) is 4, 2.0 and above is 5."""
    category = 2
    for border, score in QPET_DEAUVILLE_BORDERS:
        if value >= border:
            category = score
    return category


def krenning(scan: ScanStatistics, setting: KrenningSetting) -> Score:
    """Krenning scale for somatostatin-receptor imaging (Krenning et al. 1993; Kwekkeboom & Krenning, Semin Nucl Med
    2002;32:84), from the hottest lesion's ``lesion_statistic`` L, the liver's V and the spleen's S
    (``reference_statistic``), with [a, b] = ``equal_to_liver``:

    * 0 ("no uptake") for a negative scan; 1: L < a V ("lower than liver"); 2: a V <= L <= b V ("equal to
      liver"); 3: L > b V and L <= S ("higher than liver"); 4: L > b V and L > S ("higher than spleen").

    No liver: null. Above the liver without a spleen reference: "3 or 4" (bounds 3-4); the kidneys, the scale's
    stand-in after splenectomy, are not a radiomx reference region."""
    definition = setting.definition()
    start = _lesion_and_liver(scan, setting, "Krenning", 0, "no uptake")
    if isinstance(start, Score):
        return start
    lesion, liver = start
    ratio = lesion / liver
    low, high = setting.equal_to_liver
    if lesion < low * liver:  # products, not the ratio: the boundary is the same float however it is reached
        return Score.known(1, f"lesion/liver {ratio:.3g} < {low:g}", definition)
    if lesion <= high * liver:
        return Score.known(2, f"lesion/liver {ratio:.3g} in [{low:g}, {high:g}]", definition)
    spleen = scan.reference("spleen", setting.reference_statistic)
    if spleen is None:
        return Score.between(3, 4, f"3 or 4: lesion/liver {ratio:.3g} > {high:g}, no usable spleen reference",
                             definition)
    odd = f"; spleen {spleen:.3g} <= liver {liver:.3g}, unusual for SSTR imaging" if spleen <= liver else ""
    if lesion > spleen:
        return Score.known(4, f"lesion {lesion:.3g} > spleen {spleen:.3g}{odd}", definition)
    return Score.known(3, f"lesion/liver {ratio:.3g} > {high:g}, lesion {lesion:.3g} <= spleen {spleen:.3g}{odd}",
                       definition)
