"""The cross-tracer table ``OUT/compare/<a>_vs_<b>.parquet``: one row per (patient_id, session) that has a scan of
tracer A or B, from the burden table; a patient with one of the two scans is listed with ``missing_reason``.

Columns (documented in docs/burden-and-compare.md):

* ``<field>_a`` / ``<field>_b``: every burden figure of each tracer side by side (``tracer_a``/``tracer_b`` name
  them); ``<field>_diff`` = A - B and ``<field>_ratio`` = A / B (null when B is 0 or either is null) for the main
  burden figures.
* ``positive_on``: "both" | "only_a" | "only_b" | "neither" (a scan is positive with at least one lesion; a negative
  scan counts as not positive); null when a scan is missing or failed.
* ``days_between``: date(B) - date(A) in days, read at compare time from the inputs (``radiomx.inputs.dates``);
  never a date in OUT. ``days_between_note`` says why it is null. ``image_sha256_a``/``_b`` name the images it was
  read from: when a refresh cannot read the inputs (no cohort known, an image not found from here), the value of
  the last build is kept for the same two images, so that no value is lost because of where a refresh ran.
* ``lesion_pairing``: how lesions were paired, or "not declared: ..." when the cohort does not declare a shared
  frame of reference (``[compare] same_frame`` in radiomx.toml); with the declaration, ``lesions_paired``,
  ``lesions_only_a``, ``lesions_only_b``, ``dice_mean`` (over pairs) and ``dice_union`` (all lesions), and the
  pairs in ``OUT/compare/<a>_vs_<b>.lesions.parquet`` (``pairing.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import BURDEN, BURDEN_FIGURES, COMPARE, CONTRASTED, INT, LESION_PAIRS, PATIENT_KEY
from radiomx.derive.burden import CENTROID, burden_path
from radiomx.derive.files import pairs_path, write_if_changed
from radiomx.derive.pairing import PairingUnavailable, lesion_map, pair_lesions
from radiomx.derive.settings import DeriveSettings
from radiomx.derive.stored import read_lesions, read_state
from radiomx.discover.layouts import survey
from radiomx.errors import ConfigError, RadiomxError
from radiomx.inputs.dates import acquisition_date
from radiomx.options import ExtractOptions
from radiomx.records import CohortPaths, Scan, ScanKey
from radiomx.store.outdir import compare_path, existing_pairs
from radiomx.store.runlog import last_run
from radiomx.store.schema import arrow_rows, arrow_schema

__all__ = ["CONTRASTED", "CompareSummary", "build_compare", "compare_path", "existing_pairs", "pairs_path",
           "write_compare"]

NOT_DECLARED = ("not declared: the cohort does not declare that both scans share one frame of reference "
                "([compare] same_frame in radiomx.toml), so lesions are not paired")

COMPARE_SCHEMA = arrow_schema(COMPARE)
PAIRS_SCHEMA = arrow_schema(LESION_PAIRS)


@dataclass
class CompareSummary:
    path: Path
    tracer_a: str
    tracer_b: str
    rows: int = 0
    with_both: int = 0
    one_only: int = 0
    dated: int = 0
    written: bool = False


def _number(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _positive_on(a: dict | None, b: dict | None) -> str | None:
    if a is None or b is None or a["status"] == "failed" or b["status"] == "failed":
        return None
    pos_a, pos_b = (_number(a["lesion_count"]) or 0) > 0, (_number(b["lesion_count"]) or 0) > 0
    return {(True, True): "both", (True, False): "only_a", (False, True): "only_b"}.get((pos_a, pos_b), "neither")


def _missing_reason(a: dict | None, b: dict | None, tracer_a: str, tracer_b: str) -> str:
    reasons = []
    for scan, tracer in ((a, tracer_a), (b, tracer_b)):
        if scan is None:
            reasons.append(f"no {tracer} scan")
        elif scan["status"] == "failed":
            reasons.append(f"{tracer} scan failed (see the failures table)")
    return "; ".join(reasons)


class _CohortScans:
    """The cohort's scans found again as the last run found them (the run log's options), surveyed once, and only
    when a date or a mask must be read: the stored ``image_file``/``mask_file`` are for people (dates and UIDs in
    them redacted) and cannot lead back to a file."""

    def __init__(self, out: Path, cohort: Path | None) -> None:
        self.out, self.cohort = out, cohort
        self._scans: dict[ScanKey, Scan] | None = None

    def get(self, key: ScanKey) -> Scan | None:
        if self.cohort is None:
            return None
        if self._scans is None:
            run = last_run(self.out)
            options = run.extract_options(self.out) if run is not None else ExtractOptions(jobs=1)
            try:
                found = survey(self.cohort, options, self.out).scans
            except RadiomxError:  # the cohort can no longer be read as the run read it: nothing found from here
                found = []
            self._scans = {s.key: s for s in found if s.problem is None}
        return self._scans.get(key)


def _days_between(scans: _CohortScans, keys: tuple[ScanKey, ScanKey]) -> tuple[int | None, str]:
    if scans.cohort is None:
        return None, (f"{UNREADABLE[0]} (pass --cohort, or keep it beside OUT): dates are read from the inputs at "
                      "compare time")
    dates = []
    for key in keys:
        scan = scans.get(key)
        if scan is None or scan.image is None or not scan.image.exists():
            return None, f"{UNREADABLE[1]}: the {key.tracer} scan is not in the cohort as the last run found it"
        found = acquisition_date(scan.image)
        if found is None:
            return None, f"no acquisition date in the {key.tracer} image headers or sidecar"
        dates.append(found)
    return (dates[1] - dates[0]).days, ""


#: Notes of a ``days_between`` the inputs could not give from where the refresh ran (the last value is kept).
UNREADABLE = ("cohort not known", "image not found")


class _DateCache:
    """``days_between`` of the last build, by (patient, session, image sha256 A, image sha256 B): what a refresh
    that cannot read the inputs keeps for unchanged images."""

    def __init__(self, path: Path) -> None:
        self.days: dict[tuple, int] = {}
        names = set(pq.read_schema(path).names) if path.is_file() else set()
        if {"image_sha256_a", "image_sha256_b", "days_between"} <= names:
            columns = ["patient_id", "session", "image_sha256_a", "image_sha256_b", "days_between"]
            for r in pq.read_table(path, columns=columns).to_pylist():
                if r["days_between"] is not None and r["image_sha256_a"] and r["image_sha256_b"]:
                    self.days[(r["patient_id"], r["session"], r["image_sha256_a"], r["image_sha256_b"])] = \
                        r["days_between"]

    def kept(self, key: tuple[str, str], shas: tuple[str, str], found: tuple[int | None, str]
             ) -> tuple[int | None, str]:
        """``found``, or the last build's value when the inputs could not be read (a note, no value) from here."""
        if found[0] is not None or not found[1].startswith(UNREADABLE):
            return found
        days = self.days.get((*key, *shas))
        return (days, "") if days is not None else found


def _mask_of(found: _CohortScans, key: ScanKey) -> tuple[Path | None, str]:
    """The scan's mask file as discovery finds it now, and how messages name it (relative to the cohort)."""
    scan = found.get(key)
    mask = scan.mask if scan is not None else None
    return mask, CohortPaths(found.cohort).relative(mask) if mask is not None else ""  # type: ignore[arg-type]


#: Contrasted figures that are counts or ids (INT in ``BURDEN``): their difference stays an integer.
INTEGER_FIGURES = frozenset(f for f in CONTRASTED if BURDEN.column(f).type == INT)


def _contrast(row: dict) -> None:
    for f in CONTRASTED:
        a, b = _number(row.get(f"{f}_a")), _number(row.get(f"{f}_b"))
        diff = a - b if a is not None and b is not None else None
        # A count's difference is a count (the declared type, radiomx.columns.COMPARE): -1, not -1.0.
        row[f"{f}_diff"] = int(diff) if diff is not None and f in INTEGER_FIGURES else diff
        row[f"{f}_ratio"] = a / b if a is not None and b not in (None, 0.0) else None


class _PairCache:
    """Stored lesion pairs keyed by (patient, session, mask sha A, mask sha B): reused while both masks are unchanged,
    so a rerun re-reads no mask."""

    def __init__(self, path: Path) -> None:
        self.rows: dict[tuple, list[dict]] = {}
        if path.is_file():
            for r in pq.read_table(path).to_pylist():
                key = (r["patient_id"], r["session"], r["mask_sha256_a"], r["mask_sha256_b"])
                self.rows.setdefault(key, []).append(r)

    def get(self, key: tuple) -> list[dict] | None:
        return self.rows.get(key)


def _pair(found: _CohortScans, keys: tuple[ScanKey, ScanKey], states: tuple[dict, dict],
          lesions: tuple[list[dict], ...], cache: _PairCache) -> tuple[list[dict], str]:
    state_a, state_b = states
    key = (keys[0].patient_id, keys[0].session)
    shas = (str(state_a.get("mask_sha256", "")), str(state_b.get("mask_sha256", "")))
    cached = cache.get((*key, *shas))
    if cached is not None:
        return cached, "declared same frame: lesions paired by mask overlap (Dice)"
    if found.cohort is None:
        raise PairingUnavailable("cohort not known (pass --cohort): pairing reads the masks")
    map_a, map_b = (lesion_map(_mask_of(found, k), state, side)
                    for k, state, side in zip(keys, states, lesions, strict=True))
    result = pair_lesions(map_a, map_b)
    centre = [{r["lesion_id"]: np.array([r[c] for c in CENTROID], dtype=float) for r in les} for les in lesions]
    rows = []
    for id_a, id_b, dice in result.pairs:
        distance = None
        if id_a is not None and id_b is not None:
            gap = centre[0][id_a] - centre[1][id_b]
            distance = None if np.isnan(gap).any() else float(np.sqrt((gap**2).sum()))
        rows.append({"patient_id": key[0], "session": key[1], "lesion_id_a": id_a, "lesion_id_b": id_b,
                     "dice": dice, "centroid_distance_mm": distance, "mask_sha256_a": shas[0],
                     "mask_sha256_b": shas[1], "dice_union": result.dice_union})
    return rows, "declared same frame: lesions paired by mask overlap (Dice)"


def _pairing_columns(row: dict, pairs: list[dict], text: str) -> None:
    matched = [p for p in pairs if p["lesion_id_a"] is not None and p["lesion_id_b"] is not None]
    row.update(lesion_pairing=text, lesions_paired=len(matched),
               lesions_only_a=sum(1 for p in pairs if p["lesion_id_b"] is None and p["lesion_id_a"] is not None),
               lesions_only_b=sum(1 for p in pairs if p["lesion_id_a"] is None and p["lesion_id_b"] is not None),
               dice_mean=float(np.mean([p["dice"] for p in matched])) if matched else None)


class _LesionsOnDemand:
    """The lesion rows pairing needs, read and grouped only when a patient is declared to share a frame."""

    def __init__(self, out: Path, tracers: tuple[str, str]) -> None:
        self.out, self.tracers = out, tracers
        self.groups: dict[str, dict[tuple[str, str], list[dict]]] = {}

    def of(self, tracer: str, patient: str, session: str) -> list[dict]:
        """The scan's lesion rows in lesion_id order (NaN for a null figure, as pairing computes with them)."""
        if tracer not in self.groups:
            table = read_lesions(self.out, tracer, [*CENTROID, "source_label", "voxel_count"])[0]
            table = table.sort_by([(c, "ascending") for c in (*PATIENT_KEY, "lesion_id")])
            groups: dict[tuple[str, str], list[dict]] = {}
            for row in table.to_pylist():
                row.update({c: math.nan if row[c] is None else row[c] for c in CENTROID})
                groups.setdefault((row["patient_id"], row["session"]), []).append(row)
            self.groups[tracer] = groups
        return self.groups[tracer].get((patient, session), [])


def build_compare(out: Path, tracer_a: str, tracer_b: str, cohort: Path | None, settings: DeriveSettings
                  ) -> tuple[pa.Table, pa.Table]:
    """The compare table and the lesion pairs of OUT for tracers A and B (both from stored rows; see module doc)."""
    if tracer_a == tracer_b:
        raise ConfigError(f"--tracers needs two different tracers (got {tracer_a} twice)")
    if not burden_path(out).is_file():
        raise ConfigError(f"{burden_path(out)}: no burden table (run radiomx extract first)")
    burden = pq.read_table(burden_path(out)).to_pylist()
    state = {(r["patient_id"], r["session"], r["tracer"]): r for r in read_state(out)}
    cache = _PairCache(pairs_path(out, tracer_a, tracer_b))
    dates = _DateCache(compare_path(out, tracer_a, tracer_b))
    lesions = _LesionsOnDemand(out, (tracer_a, tracer_b))
    found = _CohortScans(out, cohort)
    patients: dict[tuple[str, str], dict[str, dict]] = {}
    for record in (r for r in burden if r["tracer"] in (tracer_a, tracer_b)):
        patients.setdefault((record["patient_id"], record["session"]), {})[record["tracer"]] = record
    rows, pair_rows = [], []
    for (patient, session), records in sorted(patients.items()):
        a, b = records.get(tracer_a), records.get(tracer_b)
        row = {"patient_id": patient, "session": session, "tracer_a": tracer_a, "tracer_b": tracer_b,
               "missing_reason": _missing_reason(a, b, tracer_a, tracer_b), "status_a": a and a["status"],
               "status_b": b and b["status"], "positive_on": _positive_on(a, b), "days_between_note": ""}
        for side, scan in (("a", a), ("b", b)):
            for f in BURDEN_FIGURES:
                value = _number(scan.get(f)) if scan is not None else None
                is_int = BURDEN.column(f).type == INT
                row[f"{f}_{side}"] = int(value) if is_int and value is not None else value
        _contrast(row)
        if a is None or b is None:
            row.update(days_between_note="only one of the two scans", lesion_pairing="only one of the two scans")
            rows.append(row)
            continue
        scan_a, scan_b = state[(patient, session, tracer_a)], state[(patient, session, tracer_b)]
        keys = (ScanKey(patient, session, tracer_a), ScanKey(patient, session, tracer_b))
        shas = (str(scan_a.get("image_sha256") or ""), str(scan_b.get("image_sha256") or ""))
        row["image_sha256_a"], row["image_sha256_b"] = shas
        row["days_between"], row["days_between_note"] = dates.kept(
            (patient, session), shas, _days_between(found, keys))
        if not settings.shares_frame(patient):
            row["lesion_pairing"] = NOT_DECLARED
        elif row["positive_on"] is None:
            row["lesion_pairing"] = "unavailable: a scan failed"
        elif row["positive_on"] == "neither":
            _pairing_columns(row, [], "declared same frame: no lesion on either scan")
        else:
            scan_lesions = (lesions.of(tracer_a, patient, session), lesions.of(tracer_b, patient, session))
            try:
                pairs, text = _pair(found, keys, (scan_a, scan_b), scan_lesions, cache)
            except PairingUnavailable as exc:
                row["lesion_pairing"] = f"unavailable: {exc}"
            else:
                _pairing_columns(row, pairs, text)
                row["dice_union"] = pairs[0]["dice_union"] if pairs else None
                pair_rows += pairs
        rows.append(row)
    return arrow_rows(rows, COMPARE), arrow_rows(pair_rows, LESION_PAIRS)


def write_compare(out: Path, tracer_a: str, tracer_b: str, cohort: Path | None, settings: DeriveSettings
                  ) -> CompareSummary:
    table, pairs = build_compare(out, tracer_a, tracer_b, cohort, settings)
    path = compare_path(out, tracer_a, tracer_b)
    both = pc.sum(pc.equal(table["missing_reason"], "")).as_py() or 0
    summary = CompareSummary(path, tracer_a, tracer_b, rows=table.num_rows, with_both=both,
                             one_only=table.num_rows - both,
                             dated=table.num_rows - table["days_between"].null_count)
    summary.written = write_if_changed(path, table)
    if pairs.num_rows or pairs_path(out, tracer_a, tracer_b).is_file():
        write_if_changed(pairs_path(out, tracer_a, tracer_b), pairs)
    return summary
