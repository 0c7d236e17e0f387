"""The patient burden table ``OUT/burden.parquet``: one row per scan (patient_id, session, tracer), from the stored
lesion rows and scan state only.

Definitions (sources in docs/burden-and-compare.md):

* ``lesion_count``: lesions found in the mask (the state's ``n_lesions``); 0 for a negative scan (status
  "negative": the mask exists and holds no lesion voxel). ``lesions_measured``: lesions with a row.
* ``tmtv_ml``: total metabolic tumour volume, the union of lesion voxels counted once (the worker's ``tmtv_ml``); for
  an OUT without it, the sum of ``mtv_ml`` (equal, since lesions of one label map never share a voxel).
* ``ttlg``: sum of the lesions' ``tlg`` (SUVmean x MTV; "total lesion uptake" for CXCR4/SSTR tracers).
* ``suv_max_hottest``: highest ``suv_max`` of the scan's lesions (``hottest_lesion_id``: that lesion);
  ``suv_peak_hottest``: highest ``suv_peak`` (PERCIST's hottest lesion is the one with the highest SUVpeak, Wahl et
  al., J Nucl Med 2009;50:122S); the two may come from different lesions.
* ``mtv_largest_ml`` / ``largest_lesion_id``: the largest lesion's MTV.
* ``ref_<R>_suv_mean``: the scan's reference-region means (state), R in liver, bloodpool, adrenal_contralateral,
  marrow.
* ``dmax_centroid_mm`` (REMARC, Cottereau 2020), ``dmax_voxel_mm`` (worker: any two lesion voxel centres),
  ``dmax_bulk_mm`` (Cottereau 2021): see ``distances.py``; null with ``dmax_note`` = "fewer than 2 lesions".
* ``bsa_m2`` by ``bsa_formula`` (a cohort setting, ``bsa.py``) from the state's ``height_m`` and ``weight_kg``;
  ``sdmax_per_m2`` = ``dmax_centroid_mm`` / 1000 / ``bsa_m2`` (m / m^2 = m^-1, as SDmax is reported: Dmax
  standardised by BSA, Cottereau et al. 2020/2021); null with ``sdmax_note`` when Dmax or the BSA is unknown.
* A failed scan keeps its row (status "failed", figures null, ``burden_note`` saying so): never a silent gap.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from radiomx.derive.bsa import body_surface_area
from radiomx.derive.distances import dmax_bulk, dmax_centroid
from radiomx.derive.files import schema, typed, write_if_changed
from radiomx.derive.settings import DeriveSettings
from radiomx.derive.stored import read_lesions, read_state
from radiomx.store.tables import SCAN_KEY

REGIONS = ("liver", "bloodpool", "adrenal_contralateral", "marrow")
CENTROID = ["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
LESION_COLUMNS = ["suv_max", "suv_peak", "mtv_ml", "tlg", *CENTROID]
FEWER_THAN_TWO = "fewer than 2 lesions"

BURDEN_SCHEMA = schema(
    "patient_id:str session:str tracer:str status:str lesion_count:int lesions_measured:int tmtv_ml:float "
    "ttlg:float suv_max_hottest:float hottest_lesion_id:int suv_peak_hottest:float mtv_largest_ml:float "
    "largest_lesion_id:int " + " ".join(f"ref_{r}_suv_mean:float" for r in REGIONS) + " dmax_centroid_mm:float "
    "dmax_voxel_mm:float dmax_bulk_mm:float dmax_note:str height_m:float weight_kg:float bsa_m2:float "
    "bsa_formula:str sdmax_per_m2:float sdmax_note:str burden_note:str")
#: Burden fields that are figures (compared across tracers, copied into the patient table).
NUMERIC_FIELDS = [f.name for f in BURDEN_SCHEMA if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)]


def burden_path(out: Path) -> Path:
    return Path(out) / "burden.parquet"


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _arg_max(values: pd.Series, ids: pd.Series) -> tuple[float | None, int | None]:
    """Maximum of ``values`` and the lesion id holding it (lowest id on ties); (None, None) when all are null."""
    valid = values.notna()
    if not valid.any():
        return None, None
    best = values[valid].max()
    return float(best), int(ids[valid][values[valid] == best].min())


def scan_burden(state: dict, lesions: pd.DataFrame, settings: DeriveSettings, missing: set[str]) -> dict:
    """One burden row from one scan's state row and its lesion rows (sorted by lesion_id)."""
    row: dict = {k: state[k] for k in SCAN_KEY}
    status = str(state.get("status", ""))
    row.update(status=status, bsa_formula=settings.bsa_formula, dmax_note="", sdmax_note="", burden_note="",
               height_m=_value(state, "height_m"), weight_kg=_value(state, "weight_kg"))
    for region in REGIONS:
        row[f"ref_{region}_suv_mean"] = _value(state, f"ref_{region}_suv_mean")
    if status == "failed":
        row.update(dmax_note="scan failed", sdmax_note="scan failed",
                   burden_note="scan failed: no burden (see the failures table)")
        return row
    count = int(state.get("n_lesions") or 0)
    measured = len(lesions)
    row.update(lesion_count=count, lesions_measured=measured)
    notes = []
    if measured < count:
        notes.append(f"{count - measured} of {count} lesions failed: sums and maxima cover the measured lesions")
    if count and missing & set(LESION_COLUMNS):
        notes.append("lesion table lacks " + ", ".join(sorted(missing & set(LESION_COLUMNS)))
                     + " (extracted before the PET indices): rerun extract --force")
    ids = lesions["lesion_id"]
    if count == 0:
        row.update(tmtv_ml=0.0, ttlg=0.0)
    else:
        stored_tmtv = _value(state, "tmtv_ml")
        summed_mtv = lesions["mtv_ml"].sum(min_count=1)
        row["tmtv_ml"] = stored_tmtv if stored_tmtv is not None else (
            None if pd.isna(summed_mtv) else float(summed_mtv))
        total_tlg = lesions["tlg"].sum(min_count=1)
        row["ttlg"] = None if pd.isna(total_tlg) else float(total_tlg)
        row["suv_max_hottest"], row["hottest_lesion_id"] = _arg_max(lesions["suv_max"], ids)
        row["suv_peak_hottest"] = _arg_max(lesions["suv_peak"], ids)[0]
        row["mtv_largest_ml"], row["largest_lesion_id"] = _arg_max(lesions["mtv_ml"], ids)
    row["dmax_voxel_mm"] = _value(state, "dmax_voxel_mm")
    centroids = lesions[CENTROID].to_numpy(dtype=np.float64)
    if count < 2 or measured < 2:
        row["dmax_note"] = FEWER_THAN_TWO if count < 2 else f"fewer than 2 measured lesions ({count} in the mask)"
    elif np.isnan(centroids).any():
        row["dmax_note"] = "lesion centroids not stored (extracted before the PET indices): rerun extract --force"
    else:
        volumes = lesions["mtv_ml"].fillna(-1.0).to_numpy()
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
    row["burden_note"] = "; ".join(notes)
    return row


def build_burden(out: Path, settings: DeriveSettings) -> pd.DataFrame:
    """The burden table of OUT from its stored rows, sorted by scan key."""
    state = read_state(out)
    rows = []
    for tracer, scans in state.groupby("tracer", sort=True) if len(state) else []:
        lesions, missing = read_lesions(out, str(tracer), LESION_COLUMNS)
        by_scan = {k: g.sort_values("lesion_id") for k, g in lesions.groupby(["patient_id", "session"], sort=False)}
        empty = lesions.iloc[0:0]
        for record in scans.to_dict("records"):
            mine = by_scan.get((record["patient_id"], record["session"]), empty)
            rows.append(scan_burden(record, mine, settings, missing))
    frame = pd.DataFrame(rows, columns=BURDEN_SCHEMA.names)
    return typed(frame.sort_values(SCAN_KEY, kind="stable").reset_index(drop=True), BURDEN_SCHEMA)


def write_burden(out: Path, settings: DeriveSettings) -> bool:
    """Rebuild OUT/burden.parquet; True when its bytes changed (and so the file was replaced)."""
    return write_if_changed(burden_path(out), build_burden(out, settings), BURDEN_SCHEMA)
