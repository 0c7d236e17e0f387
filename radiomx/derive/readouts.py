"""The read-outs of one scan's burden row: SUL figures and the scores its own parameter file asks for (issue 25).

Why here and not in the worker: the scores read numbers already stored (the hottest lesion's SUVmax/SUVpeak, the
reference regions' SUVmean/SUVmax, the SUL factor), so a changed cut-off in a new parameter file version needs no
image read, and every burden row can be checked against its own lesion and state rows. The settings are those of
the parameter file version the scan was extracted with (``params_version`` of its state row, checked by sha256):
a tracer whose file asks for no Deauville gets a null Deauville with a note saying so, never another file's cut-off.
Definitions and sources: docs/readouts.md; the arithmetic is ``radiomx.derive.scores``.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from radiomx.columns import REFERENCE_REGIONS
from radiomx.derive.scores import QPET_DEFINITION, RegionStats, ScanStatistics, Score, deauville, krenning, qpet
from radiomx.errors import ConfigError
from radiomx.params.paramset import default_params_root, resolve_params
from radiomx.params.readouts import ReadoutSettings
from radiomx.tracers import find_tracer

FAILED = "scan failed: no score"
CT = "CT scan (HU): scores read PET uptake"


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


@cache
def _settings(root: str, tracer: str, version: str, sha256: str) -> tuple[ReadoutSettings | None, str]:
    known = find_tracer(tracer)
    if known is None or not version:
        return None, f"no parameter file recorded for {tracer}: no score"
    try:
        params = resolve_params(Path(root), known, version, validate=False)
    except ConfigError:
        return None, f"parameter file {tracer}/{version} not found under the run's params folder: no score"
    if sha256 and params.sha256 != sha256:
        return None, f"parameter file {tracer}/{version} differs from the one the scan used (sha256): no score"
    return params.readouts, ""


def params_root_of(out: Path) -> Path | None:
    """The parameter folder the last run of OUT used (``--params-dir``, recorded relative to OUT), else None (the
    shipped files)."""
    from radiomx.store.runlog import last_run

    run = last_run(out)
    folder = (run.options.get("params_dir") or "") if run is not None else ""
    return (Path(out) / folder).resolve() if folder else None


def readout_settings_of(params_root: Path | None, tracer: str, version: str, sha256: str
                        ) -> tuple[ReadoutSettings | None, str]:
    """The read-out settings of the parameter file a scan was extracted with, or None with the reason."""
    return _settings(str(params_root or default_params_root()), tracer, version, sha256)


def scan_statistics(state: dict, burden: dict) -> ScanStatistics:
    """What the scores and the response read of one scan: its burden row's lesion count and hottest lesion, and
    every reference region of its state row (SUVbw)."""
    references = {}
    for region in REFERENCE_REGIONS:
        found = RegionStats(_value(state, f"ref_{region}_suv_mean"), _value(state, f"ref_{region}_suv_sd"),
                            _value(state, f"ref_{region}_suv_max"))
        if any(v is not None for v in (found.mean, found.sd, found.max)):
            references[region] = found
    return ScanStatistics(int(burden.get("lesion_count") or 0), _value(burden, "suv_max_hottest"),
                          _value(burden, "suv_peak_hottest"), references)


def _times(value: float | None, factor: float | None) -> float | None:
    return value * factor if value is not None and factor is not None else None


def sul_columns(state: dict, row: dict) -> dict:
    """The burden row's SUL figures: the state's factor and what it used, the hottest lesion's SULmax/SULpeak and
    each region's SULmean (the liver's SD too: PERCIST's measurability threshold)."""
    factor = _value(state, "sul_factor")
    out = {"sul_factor": factor, "lbm_kg": _value(state, "lbm_kg"), "lbm_formula": str(state.get("lbm_formula") or ""),
           "sul_note": str(state.get("sul_note") or ""),
           "sul_peak_hottest": _times(_value(row, "suv_peak_hottest"), factor),
           "sul_max_hottest": _times(_value(row, "suv_max_hottest"), factor),
           "ref_liver_sul_sd": _times(_value(state, "ref_liver_suv_sd"), factor)}
    for region in REFERENCE_REGIONS:
        out[f"ref_{region}_suv_max"] = _value(state, f"ref_{region}_suv_max")
        out[f"ref_{region}_sul_mean"] = _times(_value(state, f"ref_{region}_suv_mean"), factor)
    return out


def _score_columns(name: str, score: Score | None, why_not: str) -> dict:
    if score is None:
        return {name: None, f"{name}_low": None, f"{name}_high": None, f"{name}_note": why_not,
                f"{name}_definition": ""}
    return {name: score.value, f"{name}_low": score.low, f"{name}_high": score.high, f"{name}_note": score.note,
            f"{name}_definition": score.definition}


def score_columns(state: dict, row: dict, settings: ReadoutSettings | None, why_not: str, ct: bool) -> dict:
    """``deauville``, ``qpet`` and ``krenning`` of one scan (with bounds, note and definition), each null with the
    reason when the scan failed, is CT, or its parameter file does not ask for it."""
    status = str(row.get("status") or "")
    reason = FAILED if status == "failed" else CT if ct else why_not
    if reason or settings is None:
        reason = reason or "no parameter file settings: no score"
        return {**_score_columns("deauville", None, reason), **_score_columns("krenning", None, reason),
                "qpet": None, "qpet_note": reason, "qpet_definition": ""}
    stats = scan_statistics(state, row)
    version = f"{row.get('tracer')} {state.get('params_version')}"
    out = {**_score_columns("deauville", deauville(stats, settings.deauville) if settings.deauville else None,
                            f"not asked by the parameter file ({version})"),
           **_score_columns("krenning", krenning(stats, settings.krenning) if settings.krenning else None,
                            f"not asked by the parameter file ({version})")}
    if settings.qpet:
        value, note = qpet(stats)
        out.update(qpet=value, qpet_note=note, qpet_definition=QPET_DEFINITION)
    else:
        out.update(qpet=None, qpet_note=f"not asked by the parameter file ({version})", qpet_definition="")
    return out
