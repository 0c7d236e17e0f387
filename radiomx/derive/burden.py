"""The patient burden table ``OUT/burden.parquet``: one row per scan (patient_id, session, tracer), from the stored
lesion rows and scan state only.

Definitions (sources in docs/burden-and-compare.md):

* ``lesion_count``: lesions found in the mask (the state's ``n_lesions``); 0 for a negative scan (status
  "negative": the mask exists and holds no lesion voxel). ``lesions_measured``: lesions with a row.
* ``tmtv_ml``: total metabolic tumour volume, the union of lesion voxels counted once (the worker's ``tmtv_ml``): a
  voxel inside both a mass and its oedema counts once. For an OUT without it, the sum of ``mtv_ml``.
* ``ttlg``: total lesion glycolysis of the union: the sum of SUV over the union's voxels x voxel volume (the
  worker's ``ttlg``), so an overlapping voxel's uptake counts once; equal to the sum of the lesions' ``tlg``
  (SUVmean x MTV) when no lesions overlap ("total lesion uptake" for CXCR4/SSTR tracers). For an OUT without it,
  the sum of ``tlg``. ``tmtv_definition`` and ``ttlg_definition`` say which definition each row used.
* ``suv_max_hottest``: highest ``suv_max`` of the scan's lesions (``hottest_lesion_id``: that lesion);
  ``suv_peak_hottest``: highest ``suv_peak`` (PERCIST's hottest lesion is the one with the highest SUVpeak, Wahl et
  al., J Nucl Med 2009;50:122S); the two may come from different lesions.
* ``mtv_largest_ml`` / ``largest_lesion_id``: the largest lesion's MTV.
* A CT scan (unit HU) has no SUV or TLG fields; its ``tmtv_ml``, ``mtv_largest_ml`` and Dmax_bulk's "largest lesion"
  use the lesions' ``volume_ml`` (the same voxel count x voxel volume), and ``burden_note`` says so.
* ``ref_<R>_suv_mean``, ``_suv_sd``, ``_voxels``, ``_source``, ``_reason``, ``_volume_ml``, ``_centre_<x|y|z>_mm``:
  the scan's reference regions (state), R in liver, bloodpool, adrenal_contralateral, marrow, spleen; hand-drawn or
  derived from organ segmentations (docs/organs.md).
* ``site_<G>_count``, ``_volume_ml``, ``_tlg``: lesions by site group (state; docs/organs.md): each voxel of the
  union of lesions counts once, for the lowest-numbered lesion covering it, so the volumes add up to ``tmtv_ml``.
* ``dmax_centroid_mm`` (REMARC, Cottereau 2020), ``dmax_voxel_mm`` (worker: any two lesion voxel centres),
  ``dmax_bulk_mm`` (Cottereau 2021): see ``distances.py``; null with ``dmax_note`` = "fewer than 2 lesions".
* ``bsa_m2`` by ``bsa_formula`` (a cohort setting, ``bsa.py``) from the state's ``height_m`` and ``weight_kg``;
  ``sdmax_per_m2`` = ``dmax_centroid_mm`` / 1000 / ``bsa_m2`` (m / m^2 = m^-1, as SDmax is reported: Dmax
  standardised by BSA, Cottereau et al. 2020/2021); null with ``sdmax_note`` when Dmax or the BSA is unknown.
* A failed scan keeps its row (status "failed", figures null, ``burden_note`` saying so): never a silent gap. A
  failed rerun that kept the scan's last good rows (``rows_kept_from``, ``radiomx.run.last_good``) keeps their
  figures, status "failed", and ``burden_note`` names the inputs they came from.
* Read-outs (``radiomx.derive.readouts``, docs/readouts.md): the SUL figures (``sul_factor``, ``lbm_kg``,
  ``sul_peak_hottest``, ``ref_<R>_sul_mean``, ...) and the scores the scan's own parameter file asks for
  (``deauville``, ``qpet``, ``krenning``, each with its note and definition; null with the reason otherwise).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from radiomx.columns import BURDEN, BURDEN_FIGURES, REFERENCE_REGIONS, SCAN_KEY
from radiomx.derive.bsa import body_surface_area
from radiomx.derive.distances import dmax_bulk, dmax_centroid
from radiomx.derive.files import write_if_changed
from radiomx.derive.readouts import params_root_of, readout_settings_of, score_columns, sul_columns
from radiomx.derive.settings import DeriveSettings
from radiomx.derive.stored import Arrays, by_scan, no_lesions, read_lesions, read_state
from radiomx.store.schema import arrow_rows, arrow_schema, sort_rows
from radiomx.tracers import find_tracer

REGIONS = REFERENCE_REGIONS
CENTROID = ["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
LESION_COLUMNS = ["suv_max", "suv_peak", "mtv_ml", "tlg", *CENTROID]
#: What a CT (HU) scan's burden needs: its lesions have ``volume_ml`` (the same voxel count x voxel volume as
#: ``mtv_ml``) and no SUV columns.
CT_COLUMNS = ["volume_ml", *CENTROID]
READ_COLUMNS = [*LESION_COLUMNS, "volume_ml"]
CT_NOTE = "CT scan (HU): SUV and TLG fields are PET-only; tmtv_ml and mtv_largest_ml are lesion volumes (volume_ml)"
FEWER_THAN_TWO = "fewer than 2 lesions"
#: What ``tmtv_ml`` and ``ttlg`` mean in a row (``tmtv_definition``, ``ttlg_definition``).
TMTV_UNION = "union of lesion voxels x voxel volume; a voxel in overlapping lesions counts once"
TTLG_UNION = "sum of SUV over the union of lesion voxels x voxel volume; a voxel in overlapping lesions counts once"
TMTV_SUM = "sum of lesion mtv_ml (OUT extracted before radiomx counted the union: rerun extract)"
TTLG_SUM = "sum of lesion tlg (OUT extracted before radiomx counted the union: rerun extract)"

BURDEN_SCHEMA = arrow_schema(BURDEN)
#: Burden fields that are figures (compared across tracers, copied into the patient table).
NUMERIC_FIELDS = list(BURDEN_FIGURES)


def burden_path(out: Path) -> Path:
    return Path(out) / "burden.parquet"


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _arg_max(values: np.ndarray, ids: np.ndarray) -> tuple[float | None, int | None]:
    """Maximum of ``values`` and the lesion id holding it (lowest id on ties); (None, None) when all are null."""
    valid = ~np.isnan(values)
    if not valid.any():
        return None, None
    best = values[valid].max()
    return float(best), int(ids[valid & (values == best)].min())


def _total(values: np.ndarray) -> float | None:
    """Sum of the non-null values; None when all are null (not 0: unknown is not zero)."""
    valid = ~np.isnan(values)
    return float(values[valid].sum()) if valid.any() else None


def is_ct(tracer: str, missing: set[str]) -> bool:
    """Whether ``tracer``'s scans are CT (HU): by the tracer's own unit, so that a cohort whose CT scans are all
    negative (no lesion table at all) reads the same as one with lesions; for a name radiomx does not know, by its
    lesion table (``volume_ml`` and no ``mtv_ml``)."""
    known = find_tracer(tracer)
    return known.unit == "HU" if known else "mtv_ml" in missing and "volume_ml" not in missing


#: What a burden row copies from the scan's state: each reference region (statistics, source, reason, volume,
#: centre) and the lesions by site group (radiomx.features.lesion_sites).
COPIED = tuple(c for c in BURDEN.names if c.startswith(("ref_", "site_")))


def _copied(state: dict) -> dict:
    out: dict = {}
    for column in COPIED:
        kind = BURDEN.column(column).type
        if kind == "string":
            out[column] = str(state.get(column) or "")
        elif kind == "int64":
            value = _value(state, column)
            out[column] = None if value is None else int(value)
        else:
            out[column] = _value(state, column)
    return out


def scan_burden(state: dict, lesions: Arrays, settings: DeriveSettings, missing: set[str], ct: bool = False,
                params_root: Path | None = None) -> dict:
    """One burden row from one scan's state row and its lesion rows (arrays in lesion_id order), with its read-outs
    (SUL figures, scores: ``radiomx.derive.readouts``); ``ct``: the scan is CT (HU), whose lesions have
    ``volume_ml`` and no SUV columns; ``params_root``: the parameter folder the run used (None: the shipped one)."""
    row = _burden(state, lesions, settings, missing, ct)
    row["params_version"] = str(state.get("params_version") or "")
    row.update(sul_columns(state, row))
    readouts, why_not = readout_settings_of(params_root, str(row["tracer"]), row["params_version"],
                                            str(state.get("params_sha256") or ""))
    row.update(score_columns(state, row, readouts, why_not, ct))
    return row


def _burden(state: dict, lesions: Arrays, settings: DeriveSettings, missing: set[str], ct: bool) -> dict:
    row: dict = {k: state[k] for k in SCAN_KEY}
    status = str(state.get("status", ""))
    row.update(status=status, bsa_formula=settings.bsa_formula, dmax_note="", sdmax_note="", burden_note="",
               height_m=_value(state, "height_m"), weight_kg=_value(state, "weight_kg"), tmtv_definition="",
               ttlg_definition="")
    row.update(_copied(state))
    kept_from = str(state.get("rows_kept_from") or "")
    if status == "failed" and not kept_from:
        row.update(dmax_note="scan failed", sdmax_note="scan failed",
                   burden_note="scan failed: no burden (see the failures table)")
        return row
    count = int(state.get("n_lesions") or 0)
    ids = lesions["lesion_id"]
    measured = len(ids)
    row.update(lesion_count=count, lesions_measured=measured)
    volumes_ml = lesions["volume_ml" if ct else "mtv_ml"]
    notes = [CT_NOTE] if ct else []
    if measured < count:
        notes.append(f"{count - measured} of {count} lesions failed: tmtv_ml, ttlg and dmax_voxel_mm cover every "
                     "lesion of the mask; the hottest and largest lesion and dmax_centroid/bulk the measured ones")
    lacking = missing & set(CT_COLUMNS if ct else LESION_COLUMNS)
    if count and lacking:
        notes.append("lesion table lacks " + ", ".join(sorted(lacking))
                     + " (extracted before the lesion indices): rerun extract --force")
    stored_tmtv, stored_ttlg = _value(state, "tmtv_ml"), _value(state, "ttlg")
    row["tmtv_definition"] = TMTV_UNION if stored_tmtv is not None or count == 0 else TMTV_SUM
    if not ct:
        row["ttlg_definition"] = TTLG_UNION if stored_ttlg is not None or count == 0 else TTLG_SUM
    if count == 0:
        row.update(tmtv_ml=0.0, ttlg=None if ct else 0.0)
    else:
        row["tmtv_ml"] = stored_tmtv if stored_tmtv is not None else _total(volumes_ml)
        if not ct:
            row["ttlg"] = stored_ttlg if stored_ttlg is not None else _total(lesions["tlg"])
            row["suv_max_hottest"], row["hottest_lesion_id"] = _arg_max(lesions["suv_max"], ids)
            row["suv_peak_hottest"] = _arg_max(lesions["suv_peak"], ids)[0]
        row["mtv_largest_ml"], row["largest_lesion_id"] = _arg_max(volumes_ml, ids)
    row["dmax_voxel_mm"] = _value(state, "dmax_voxel_mm")
    centroids = np.stack([lesions[c] for c in CENTROID], axis=1)
    if count < 2 or measured < 2:
        row["dmax_note"] = FEWER_THAN_TWO if count < 2 else f"fewer than 2 measured lesions ({count} in the mask)"
    elif np.isnan(centroids).any():
        row["dmax_note"] = "lesion centroids not stored (extracted before the PET indices): rerun extract --force"
    else:
        volumes = np.nan_to_num(volumes_ml, nan=-1.0)
        row["dmax_centroid_mm"] = dmax_centroid(centroids)
        row["dmax_bulk_mm"] = dmax_bulk(centroids, volumes) if (volumes >= 0).any() else None
    bsa = body_surface_area(settings.bsa_formula, row["weight_kg"], row["height_m"])
    row["bsa_m2"] = bsa
    if row.get("dmax_centroid_mm") is None:
        row["sdmax_note"] = "no Dmax: " + row["dmax_note"]
    elif bsa is None:
        unknown = [n for n, v in (("height", row["height_m"]), ("weight", row["weight_kg"])) if v is None]
        row["sdmax_note"] = " and ".join(unknown or ["a valid height and weight"]) + " unknown: no BSA"
    else:
        row["sdmax_per_m2"] = row["dmax_centroid_mm"] / 1000.0 / bsa
    if status == "failed":  # a failed rerun that kept the last good rows (radiomx.run.last_good)
        notes.insert(0, f"the last run failed (see the failures table): figures from the last good extraction "
                        f"(inputs image_sha256 {kept_from})")
    row["burden_note"] = "; ".join(notes)
    return row


def build_burden(out: Path, settings: DeriveSettings) -> pa.Table:
    """The burden table of OUT from its stored rows, sorted by scan key."""
    rows = []
    params_root = params_root_of(out)
    by_tracer = sorted(read_state(out), key=lambda r: str(r["tracer"]))  # stable: by scan key within a tracer
    for tracer, scans in itertools.groupby(by_tracer, key=lambda r: str(r["tracer"])):
        lesions, missing = read_lesions(out, tracer, READ_COLUMNS)
        grouped, empty = by_scan(lesions, READ_COLUMNS), no_lesions(READ_COLUMNS)
        for record in scans:
            mine = grouped.get((str(record["patient_id"]), str(record["session"])), empty)
            rows.append(scan_burden(record, mine, settings, missing, is_ct(tracer, missing), params_root))
    return sort_rows(arrow_rows(rows, BURDEN), BURDEN)


def write_burden(out: Path, settings: DeriveSettings) -> bool:
    """Rebuild OUT/burden.parquet; True when its bytes changed (and so the file was replaced)."""
    return write_if_changed(burden_path(out), build_burden(out, settings))
