"""The response tables ``OUT/response/<tracer>.parquet``: one per PET tracer of a cohort with sessions, from the
burden rows, the scan state and the session order declared for each patient (``radiomx.derive.sessions``).

Why rebuilt whole and written only when the bytes change: one patient's rows depend on that patient's scans only
(``response.patient_response``), so a changed follow-up scan changes its patient's rows and no other, and a
no-change rerun writes nothing. The order comes from ``[sessions]`` of radiomx.toml, else each patient's
``sessions.tsv`` ``acq_time`` read now (never written), else, for a DICOM export, the export's own session names
(``ses-1``, ``ses-2``, ...: the studies' date order per tracer, ``radiomx.discover.dicom_export``). The file's
metadata keeps a sha256 of what ordered the sessions, never a date, so that an edited declaration or ``acq_time``
refreshes the table on the next extract although no scan changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.columns import RESPONSE
from radiomx.derive.burden import burden_path
from radiomx.derive.files import write_if_changed
from radiomx.derive.readouts import params_root_of, readout_settings_of, scan_statistics
from radiomx.derive.response import SessionScan, patient_response
from radiomx.derive.sessions import SessionDeclaration, SessionOrder, order_sessions, session_declaration
from radiomx.derive.settings import DeriveSettings
from radiomx.derive.stored import read_lesions, read_state
from radiomx.discover.bids import session_acq_times
from radiomx.params.readouts import ReadoutSettings
from radiomx.store.schema import arrow_rows, sort_rows
from radiomx.tracers import find_tracer

ORDER_KEY = b"radiomx.session_order_sha256"
EXPORT = "DICOM export session names (ses-1, ses-2, ...: study date order)"
_EXPORT_NAME = re.compile(r"^ses-(\d+)$")


def response_path(out: Path, tracer: str) -> Path:
    return Path(out) / "response" / f"{tracer}.parquet"


def response_tracers(out: Path) -> list[str]:
    """The tracers OUT has a response table of."""
    folder = Path(out) / "response"
    return sorted(p.name[: -len(".parquet")] for p in folder.glob("*.parquet")) if folder.is_dir() else []


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _export_order(present: list[str]) -> SessionOrder:
    """A DICOM export's sessions in the order the export numbered them (its studies' date order)."""
    numbered = {s: int(m.group(1)) for s in present if (m := _EXPORT_NAME.match(s))}
    unplaced = tuple((s, "not a DICOM export session name (ses-<n>): not placed in time") for s in sorted(present)
                     if s not in numbered)
    ordered = tuple(sorted(numbered, key=numbered.__getitem__))
    return SessionOrder(ordered, ordered[0] if ordered else None, EXPORT, unplaced)


def _order(cohort: Path | None, patient: str, present: list[str], declaration: SessionDeclaration,
           export: bool) -> SessionOrder:
    if declaration.order or not export:
        return order_sessions(present, declaration, session_acq_times(cohort, patient) if cohort else None)
    return _export_order(present)


def order_signature(cohort: Path | None, patients: list[str], declaration: SessionDeclaration, export: bool) -> str:
    """sha256 of what orders every patient's sessions: the declaration, the export flag and each patient's
    ``acq_time`` cells (hashed, never stored)."""
    times = {p: session_acq_times(cohort, p) for p in patients} if cohort is not None else {}
    text = json.dumps([list(declaration.order), declaration.baseline, export, times], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _session_scan(state: dict, burden: dict, uptake: float | None) -> SessionScan:
    return SessionScan(str(state["session"]), str(burden.get("status") or state.get("status") or ""),
                       scan_statistics(state, burden), _value(burden, "tmtv_ml"), _value(state, "sul_factor"),
                       str(state.get("sul_note") or ""), uptake, str(state.get("params_version") or ""))


def _patient_settings(states: list[dict], root: Path | None, tracer: str) -> ReadoutSettings:
    """The read-outs of the patient's first scan whose parameter file is found (sessions usually share one; mixed
    files are named in ``response_note``); the defaults (deltas only) when none is."""
    for state in states:
        settings, _ = readout_settings_of(root, tracer, str(state.get("params_version") or ""),
                                          str(state.get("params_sha256") or ""))
        if settings is not None:
            return settings
    return ReadoutSettings()


def _uptakes(out: Path, tracer: str) -> dict[tuple[str, str], float]:
    """Each scan's uptake time (``suv_uptake_s`` of its lesion rows; a negative scan has none stored)."""
    lesions, missing = read_lesions(out, tracer, ["suv_uptake_s"])
    if "suv_uptake_s" in missing:
        return {}
    found: dict[tuple[str, str], float] = {}
    for p, s, u in zip(*(lesions[c].to_pylist() for c in ("patient_id", "session", "suv_uptake_s")), strict=True):
        if u is not None and not math.isnan(u):
            found.setdefault((p, s), float(u))
    return found


def build_responses(out: Path, cohort: Path | None, settings: DeriveSettings) -> dict[str, pa.Table]:
    """Every PET tracer's response table (tracers whose scans have sessions), from the stored rows."""
    out = Path(out)
    if not burden_path(out).is_file():
        return {}
    burden = {(r["patient_id"], r["session"], r["tracer"]): r for r in pq.read_table(burden_path(out)).to_pylist()}
    states = [s for s in read_state(out) if s["session"]]  # a cohort without sessions has no response
    declaration = session_declaration(cohort)
    root = params_root_of(out)
    signature = order_signature(cohort, sorted({s["patient_id"] for s in states}), declaration,
                                settings.export_sessions)
    tables = {}
    for tracer in sorted({s["tracer"] for s in states}):
        known = find_tracer(tracer)
        if known is not None and known.unit == "HU":
            continue
        uptakes = _uptakes(out, tracer)
        by_patient: dict[str, list[dict]] = {}
        for state in states:
            if state["tracer"] == tracer:
                by_patient.setdefault(state["patient_id"], []).append(state)
        rows = []
        for patient, mine in sorted(by_patient.items()):
            scans = {s["session"]: _session_scan(s, burden.get((patient, s["session"], tracer), {}),
                                                 uptakes.get((patient, s["session"])))
                     for s in mine}
            order = _order(cohort, patient, sorted(scans), declaration, settings.export_sessions)
            rows += patient_response(patient, scans, order, _patient_settings(mine, root, tracer), tracer)
        table = sort_rows(arrow_rows(rows, RESPONSE), RESPONSE)
        tables[tracer] = table.replace_schema_metadata({ORDER_KEY: signature.encode()})
    return tables


def write_responses(out: Path, cohort: Path | None, settings: DeriveSettings) -> list[str]:
    """Write each tracer's response table when its bytes changed; the tracers written."""
    return [t for t, table in build_responses(out, cohort, settings).items()
            if write_if_changed(response_path(out, t), table)]


def responses_stale(out: Path, cohort: Path | None, settings: DeriveSettings) -> bool:
    """True when a response table would be ordered differently now: the session declaration or a patient's
    ``acq_time`` changed since it was written (its recorded sha256 differs)."""
    tracers = response_tracers(out)
    if not tracers or cohort is None:
        return False
    recorded = (pq.read_schema(response_path(out, tracers[0])).metadata or {}).get(ORDER_KEY, b"").decode()
    patients = sorted({s["patient_id"] for s in read_state(out) if s["session"]})
    return recorded != order_signature(cohort, patients, session_declaration(cohort), settings.export_sessions)
