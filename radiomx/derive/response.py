"""Response between sessions of one patient and tracer: deltas from the baseline, PERCIST 1.0, Lugano's metabolic
response, and Casasnovas's delta SUVmax. Pure functions over per-session summaries (``SessionScan``).

Why pure and per patient: the response is a read-out of numbers already stored (the burden row, the reference
regions, the SUL factor), so it is derived from rows, never from images; one patient's rows depend on that
patient's scans only, so a changed follow-up changes its own rows and no other. Sessions come in the order a
declaration gives (``radiomx.derive.sessions``); every later session is compared with the baseline. Definitions,
sources and what radiomx cannot judge: docs/readouts.md.

Every session the order names, or the patient has, gets one row (key patient_id, session): the baseline (its own
scores, no deltas), each later session (deltas and categories against the baseline), a declared session without
a scan (``status`` "missing"), one before the baseline, and one no declaration placed: never dropped silently,
each with the reason in ``response_note``. A category that cannot be given is null with the reason in
``percist_note``/``lugano_note``.

Boundaries "at least" are inclusive; the percent and SUL differences are compared with a relative tolerance of
1e-9 (``_reaches``), so a value on a boundary in decimal (a 30 % fall from 4.0 to 2.8) is on it in binary too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from radiomx.columns import RESPONSE
from radiomx.derive.scores import ScanStatistics, deauville
from radiomx.derive.sessions import SessionOrder
from radiomx.params.readouts import CasasnovasSetting, DeauvilleSetting, LuganoSetting, ReadoutSettings
from radiomx.store.schema import arrow_schema

#: PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S; O et al., Radiology 2016;280:576-584).
PERCIST_CHANGE_PCT = 30.0       # PMR / PMD: a change of the hottest lesion's SULpeak of at least 30 % ...
PERCIST_CHANGE_SUL = 0.8        # ... and at least 0.8 SUL units
PERCIST_LIVER_MULTIPLE = 1.5    # measurable: SULpeak >= 1.5 x liver SULmean + 2 x liver SD
PERCIST_BLOODPOOL_MULTIPLE = 2.0  # without a liver: >= 2.0 x blood-pool SULmean + 2 x blood-pool SD
PERCIST_SD_MULTIPLE = 2.0
PERCIST_AGREEMENT_PCT = 20.0    # the reference's SULmean within 20 % ...
PERCIST_AGREEMENT_SUL = 0.3     # ... and less than 0.3 SUL units apart between the two scans
PERCIST_UPTAKE_S = 15 * 60      # uptake times within 15 min of each other
CATEGORIES_PERCIST = ("CMR", "PMR", "SMD", "PMD")
CATEGORIES_LUGANO = ("CMR", "PMR", "NMR", "PMD")
_EPS = 1e-9
CANNOT_JUDGE_NEW = ("radiomx cannot tell a new cancer lesion from another new finding (infection, inflammation, "
                    "treatment effect)")

#: Declared with every other table (``radiomx.columns.RESPONSE``).
RESPONSE_SCHEMA = arrow_schema(RESPONSE)


@dataclass(frozen=True)
class SessionScan:
    """One session's scan as the response reads it: its burden figures and references (``statistics``, SUVbw),
    TMTV, the SUL factor (``radiomx.inputs.lbm.sul_normalisation``: SUL = SUVbw x ``sul_factor``, None with
    ``sul_note``), the uptake time (``suv_uptake_s``) and the parameter file version."""

    session: str
    status: str                      # ok, partial, negative, failed (a session without a scan has no SessionScan)
    statistics: ScanStatistics
    tmtv_ml: float | None = None
    sul_factor: float | None = None
    sul_note: str = ""
    uptake_s: float | None = None
    params_version: str = ""

    @property
    def sul_peak(self) -> float | None:
        """The hottest lesion's SULpeak (SUVpeak x the scan's SUL factor)."""
        peak = self.statistics.hottest("suv_peak")
        return peak * self.sul_factor if peak is not None and self.sul_factor is not None else None

    def reference_sul(self, region: str) -> tuple[float | None, float | None]:
        """(SULmean, SUL SD) of a reference region; None where unknown."""
        found = self.statistics.references.get(region)
        if found is None or self.sul_factor is None:
            return None, None
        mean = found.statistic("suv_mean")
        sd = found.sd if found.sd is not None and math.isfinite(found.sd) else None
        return (mean * self.sul_factor if mean is not None else None,
                sd * self.sul_factor if sd is not None else None)


@dataclass(frozen=True)
class Category:
    """A response category, or None with ``note`` saying why."""

    value: str | None
    note: str


def _reaches(value: float, limit: float) -> bool:
    """value >= limit, with a relative tolerance for the float rounding of a percent or a difference."""
    return value >= limit - _EPS * max(1.0, abs(limit))


def _pct(follow: float | None, base: float | None) -> float | None:
    if follow is None or base is None or not base > 0:
        return None
    return (follow - base) / base * 100.0


def percist(base: SessionScan, follow: SessionScan, new_lesions_are_progression: bool) -> tuple[Category, dict]:
    """PERCIST 1.0 (Wahl et al. 2009; O et al. 2016) from the hottest lesion's SULpeak at both scans (not
    necessarily the same lesion), in this order:

    1. SUL known at both scans (sex, height, weight);
    2. the reference: the liver (SULmean at both, SD at baseline), else the blood pool, at both scans; its SULmean
       within 20 % and less than 0.3 SUL apart between the scans, else not comparable (null);
    3. a rise in lesion count is PMD only when ``new_lesions_are_progression`` (flagged either way);
    4. the baseline's hottest SULpeak measurable: >= 1.5 x liver SULmean + 2 x liver SD (2.0 x blood pool + 2 SD);
    5. CMR: no lesion at follow-up, or its hottest SULpeak below the reference's SULmean;
    6. PMR: a fall of >= 30 % and >= 0.8 SUL; PMD: a rise of >= 30 % and >= 0.8 SUL; else SMD.

    Returns the category and the figures it used (``percist_reference``, ``reference_sul_mean[_baseline]``,
    ``percist_measurable_sul``)."""
    figures: dict = {}
    for scan, when in ((base, "baseline"), (follow, "follow-up")):
        if scan.sul_factor is None:
            return Category(None, f"SUL unknown at {when} session {scan.session!r}: {scan.sul_note}"), figures
    region = next((r for r in ("liver", "bloodpool")
                   if base.reference_sul(r)[0] is not None and follow.reference_sul(r)[0] is not None), None)
    if region is None:
        return Category(None, "no liver or blood-pool SUVmean at both sessions: PERCIST 1.0 measures against one"), \
            figures
    (ref_b, sd_b), (ref_f, _) = base.reference_sul(region), follow.reference_sul(region)
    assert ref_b is not None and ref_f is not None
    figures.update(percist_reference=region, reference_sul_mean_baseline=ref_b, reference_sul_mean=ref_f)
    notes = [] if region == "liver" else ["no liver at both sessions: blood pool used (PERCIST 1.0)"]
    apart, apart_pct = ref_f - ref_b, (ref_f - ref_b) / ref_b * 100.0
    if abs(apart_pct) > PERCIST_AGREEMENT_PCT + _EPS or _reaches(abs(apart), PERCIST_AGREEMENT_SUL):
        return Category(None, f"{region} SULmean {ref_b:.3g} at baseline, {ref_f:.3g} at follow-up ({apart:+.3g} SUL, "
                              f"{apart_pct:+.1f} %): PERCIST 1.0 asks for within {PERCIST_AGREEMENT_PCT:g} % and "
                              f"< {PERCIST_AGREEMENT_SUL:g} SUL; scans not comparable"), figures
    if follow.statistics.lesion_count > base.statistics.lesion_count and new_lesions_are_progression:
        return Category("PMD", "; ".join([*notes, f"lesion count rose from {base.statistics.lesion_count} to "
                                                  f"{follow.statistics.lesion_count} (new_lesions_are_progression); "
                                                  + CANNOT_JUDGE_NEW])), figures
    if sd_b is None:
        return Category(None, f"baseline {region} SD not stored: no measurability threshold"), figures
    multiple = PERCIST_LIVER_MULTIPLE if region == "liver" else PERCIST_BLOODPOOL_MULTIPLE
    threshold = multiple * ref_b + PERCIST_SD_MULTIPLE * sd_b
    figures["percist_measurable_sul"] = threshold
    peak_b, peak_f = base.sul_peak, follow.sul_peak
    rule = f"{multiple:g} x {region} SULmean + {PERCIST_SD_MULTIPLE:g} SD"
    if base.statistics.lesion_count == 0 or peak_b is None:
        return Category(None, "; ".join([*notes, "baseline has no lesion SULpeak: nothing measurable"])), figures
    if not _reaches(peak_b, threshold):
        return Category(None, "; ".join([*notes, f"baseline hottest SULpeak {peak_b:.3g} below the measurability "
                                                 f"threshold {threshold:.3g} ({rule}): not measurable"])), figures
    if follow.statistics.lesion_count == 0:
        return Category("CMR", "; ".join([*notes, "no lesion at follow-up"])), figures
    if peak_f is None:
        return Category(None, "follow-up hottest lesion suv_peak not stored"), figures
    if peak_f < ref_f:
        return Category("CMR", "; ".join([*notes, f"follow-up hottest SULpeak {peak_f:.3g} < {region} SULmean "
                                                  f"{ref_f:.3g}"])), figures
    change, change_pct = peak_f - peak_b, (peak_f - peak_b) / peak_b * 100.0
    said = f"SULpeak {peak_b:.3g} -> {peak_f:.3g} ({change:+.3g} SUL, {change_pct:+.1f} %)"
    if _reaches(-change_pct, PERCIST_CHANGE_PCT) and _reaches(-change, PERCIST_CHANGE_SUL):
        return Category("PMR", "; ".join([*notes, said])), figures
    if _reaches(change_pct, PERCIST_CHANGE_PCT) and _reaches(change, PERCIST_CHANGE_SUL):
        return Category("PMD", "; ".join([*notes, said])), figures
    return Category("SMD", "; ".join([*notes, said])), figures


def lugano(base: SessionScan, follow: SessionScan, setting: DeauvilleSetting, change: LuganoSetting,
           new_lesions_are_progression: bool) -> Category:
    """Lugano metabolic response (Cheson et al., J Clin Oncol 2014;32:3059) from the Deauville scores:

    * CMR: follow-up Deauville 1, 2 or 3 (also "2 or 3" without a blood pool);
    * Deauville 4 or 5 at follow-up: the hottest lesion's Deauville statistic (``lesion_statistic``) against the
      baseline's: "reduced" (PMR) when it fell by at least ``significant_change_pct`` %, "increased" (PMD) when it
      rose by at least that much or the baseline had no lesion, else "no change" (NMR);
    * a rise in lesion count is PMD only when ``new_lesions_are_progression``.

    Lugano gives no number for "reduced" or "no significant change"; the parameter file's is recorded."""
    score = deauville(follow.statistics, setting)
    counts = (base.statistics.lesion_count, follow.statistics.lesion_count)
    if counts[1] > counts[0] and new_lesions_are_progression:
        return Category("PMD", f"lesion count rose from {counts[0]} to {counts[1]} (new_lesions_are_progression); "
                               + CANNOT_JUDGE_NEW)
    if score.high is not None and score.high <= 3:
        shown = score.value if score.value is not None else f"{score.low}-{score.high}"
        return Category("CMR", f"follow-up Deauville {shown}")
    if score.low is None or score.low < 4:
        return Category(None, f"follow-up Deauville unknown: {score.note}")
    statistic, limit = setting.lesion_statistic, change.significant_change_pct
    if counts[0] == 0:
        return Category("PMD", f"follow-up Deauville {score.value} where the baseline had no lesion")
    before, after = base.statistics.hottest(statistic), follow.statistics.hottest(statistic)
    moved = _pct(after, before)
    if moved is None:
        return Category(None, f"hottest lesion {statistic} not stored at both sessions")
    said = f"follow-up Deauville {score.value}, hottest {statistic} {before:.3g} -> {after:.3g} ({moved:+.1f} %)"
    if _reaches(-moved, limit):
        return Category("PMR", f"{said}: reduced (>= {limit:g} %)")
    if _reaches(moved, limit):
        return Category("PMD", f"{said}: increased (>= {limit:g} %)")
    return Category("NMR", f"{said}: no significant change (< {limit:g} %)")


def casasnovas(base: SessionScan, follow: SessionScan, delta_suv_max_pct: float | None,
               setting: CasasnovasSetting) -> Category:
    """Casasnovas et al. (Blood 2011;118:37-43): "favourable" when SUVmax fell by more than ``reduction_pct`` %
    (66 % after two cycles, 70 % after four), else "unfavourable"; a follow-up without a lesion is favourable."""
    cut = setting.reduction_pct
    if follow.statistics.lesion_count == 0 and base.statistics.hottest("suv_max") is not None:
        return Category("favourable", "no lesion at follow-up (SUVmax reduction taken as 100 %)")
    if delta_suv_max_pct is None:
        return Category(None, "delta_suv_max_pct unknown")
    favourable = -delta_suv_max_pct > cut + _EPS * cut
    return Category("favourable" if favourable else "unfavourable",
                    f"delta SUVmax {delta_suv_max_pct:+.1f} % ({'more' if favourable else 'not more'} than a "
                    f"{cut:g} % fall)")


def _deauville_value(scan: SessionScan | None, settings: ReadoutSettings) -> int | None:
    if scan is None or settings.deauville is None or scan.status == "failed":
        return None
    return deauville(scan.statistics, settings.deauville).value


def _deltas(base: SessionScan, follow: SessionScan) -> tuple[dict, list[str]]:
    b, f = base.statistics, follow.statistics
    row: dict = {"delta_lesion_count": f.lesion_count - b.lesion_count, "new_lesions": f.lesion_count > b.lesion_count,
                 "delta_tmtv_pct": _pct(follow.tmtv_ml, base.tmtv_ml),
                 "delta_suv_max_pct": _pct(f.hottest("suv_max"), b.hottest("suv_max")),
                 "sul_peak": follow.sul_peak, "sul_peak_baseline": base.sul_peak}
    if row["sul_peak"] is not None and row["sul_peak_baseline"] is not None:
        row["delta_sul_peak"] = row["sul_peak"] - row["sul_peak_baseline"]
        row["delta_sul_peak_pct"] = _pct(row["sul_peak"], row["sul_peak_baseline"])
    notes = []
    if row["new_lesions"]:
        notes.append(f"lesion count rose from {b.lesion_count} to {f.lesion_count} (new_lesions); " + CANNOT_JUDGE_NEW)
    if f.lesion_count == 0:
        notes.append("negative follow-up (no lesion in the mask): no hottest lesion, so delta_suv_max_pct and "
                     "delta_sul_peak are null")
    if b.lesion_count == 0:
        notes.append("negative baseline (no lesion in the mask): no percent change from it")
    if base.tmtv_ml is not None and follow.tmtv_ml is not None and not base.tmtv_ml > 0 and b.lesion_count:
        notes.append("baseline TMTV 0: no percent change")
    return row, notes


def _quality_notes(base: SessionScan, follow: SessionScan) -> list[str]:
    notes = []
    for scan, when in ((base, "baseline"), (follow, "follow-up")):
        if scan.status == "partial":
            notes.append(f"{when} scan partial (some lesions failed): its hottest lesion may be among them")
    if base.params_version and follow.params_version and base.params_version != follow.params_version:
        notes.append(f"sessions extracted with different parameter files ({base.params_version}, "
                     f"{follow.params_version}): definitions may differ")
    if base.uptake_s is not None and follow.uptake_s is not None:
        apart = abs(follow.uptake_s - base.uptake_s)
        if apart > PERCIST_UPTAKE_S:
            notes.append(f"uptake times differ by {apart / 60:.0f} min (PERCIST 1.0 asks for <= "
                         f"{PERCIST_UPTAKE_S // 60} min)")
    return notes


def compare_sessions(base: SessionScan, follow: SessionScan, settings: ReadoutSettings, tracer: str = "") -> dict:
    """The response columns of one follow-up against its baseline (both scanned and not failed). A criterion the
    parameter file does not ask for is null with that reason, worded as the score columns word it."""
    row, notes = _deltas(base, follow)
    notes += _quality_notes(base, follow)
    not_asked = f"not asked by the parameter file ({' '.join(filter(None, (tracer, base.params_version)))})"
    if settings.percist:
        category, figures = percist(base, follow, settings.new_lesions_are_progression)
        row.update(figures, percist=category.value, percist_note=category.note)
    else:
        row["percist_note"] = not_asked
    if settings.lugano is not None and settings.deauville is not None:
        category = lugano(base, follow, settings.deauville, settings.lugano, settings.new_lesions_are_progression)
        row.update(lugano=category.value, lugano_note=category.note)
    elif settings.lugano is None:
        row["lugano_note"] = not_asked
    else:
        row["lugano_note"] = f"Lugano reads the Deauville score, which is {not_asked}"
    if settings.casasnovas is not None:
        row["delta_suv_max_class"] = casasnovas(base, follow, row["delta_suv_max_pct"], settings.casasnovas).value
    if "CMR" in (row.get("percist"), row.get("lugano")):
        notes.append("CMR from uptake values only: visual reads (uptake indistinguishable from background, diffuse "
                     "marrow or splenic uptake) are not judged")
    row["response_note"] = "; ".join(notes)
    return row


def _blank(patient_id: str, session: str) -> dict:
    row = {name: None for name in RESPONSE_SCHEMA.names}
    row.update(patient_id=patient_id, session=session, order_source="", baseline_session="", status="missing",
               percist_note="", lugano_note="", response_note="")
    return row


def patient_response(patient_id: str, scans: Mapping[str, SessionScan], order: SessionOrder,
                     settings: ReadoutSettings, tracer: str = "") -> list[dict]:
    """Every response row of one patient and tracer (``scans``: session -> its scan), in the order's sequence,
    then the unplaced sessions; keys (patient_id, session) are unique."""
    rows = []
    base = scans.get(order.baseline) if order.baseline is not None else None
    base_rank = order.sessions.index(order.baseline) if order.baseline in order.sessions else None
    for rank, session in enumerate(order.sessions):
        scan = scans.get(session)
        row = _blank(patient_id, session)
        row.update(session_rank=rank, order_source=order.source, baseline_session=order.baseline or "",
                   status=scan.status if scan is not None else "missing",
                   deauville=_deauville_value(scan, settings), deauville_baseline=_deauville_value(base, settings))
        if scan is None:
            row["response_note"] = f"no scan for this session (declared by {order.source})"
        elif scan.status == "failed":
            row["response_note"] = "scan failed (see the failures table): no response"
        elif session == order.baseline:
            row["response_note"] = ("baseline" if len(order.sessions) > 1 or scans.keys() - {session}
                                    else "baseline; one session: nothing to compare")
        elif base is None or base.status == "failed":
            why = "has no scan" if base is None else "failed (see the failures table)"
            row["response_note"] = f"baseline session {order.baseline!r} {why}: no response"
            row["percist_note"] = row["lugano_note"] = "no baseline scan"
        elif base_rank is None or rank < base_rank:
            row["response_note"] = f"before the baseline session {order.baseline!r}: not compared"
        else:
            row.update(compare_sessions(base, scan, settings, tracer))
        rows.append(row)
    for session, reason in order.unplaced:
        scan = scans.get(session)
        row = _blank(patient_id, session)
        row.update(status=scan.status if scan is not None else "missing", response_note=reason,
                   deauville=_deauville_value(scan, settings))
        rows.append(row)
    return rows
