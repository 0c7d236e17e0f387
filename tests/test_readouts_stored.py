"""The read-out core on rows a real ``radiomx extract`` stored (issue 25; derive now does this itself,
tests/test_readouts_cli.py checks the written tables): a BIDS
cohort with two sessions whose sessions.tsv ``acq_time`` puts ``ses-2`` first, participants.tsv ``sex`` and
``height``, and a liver region. The adapter below is what the next phase's derive step does with the stored
columns; every figure is checked against the feature table and a hand-computed lean body mass."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.derive.response import SessionScan, patient_response
from radiomx.derive.scores import RegionStats, ScanStatistics
from radiomx.derive.sessions import ACQ_TIME, order_sessions, session_declaration
from radiomx.discover import bids
from radiomx.discover.cohort import discover
from radiomx.inputs.lbm import sul_normalisation
from radiomx.params.paramset import default_params_root, resolve_params
from radiomx.params.readouts import DeauvilleSetting
from radiomx.tracers import get_tracer

from .conftest import write_volume
from .test_bids import bids_cohort, params_dir

FDG = resolve_params(default_params_root(), get_tracer("18F-FDG"), "v3", validate=False).readouts


def cohort_with_sessions(root: Path) -> Path:
    root = bids_cohort(root)
    (root / "participants.tsv").write_text("participant_id\tbody_weight\tsex\theight\nsub-01\t70\tmale\t175\n"
                                           "sub-02\t82.5\tF\t168\n")
    (root / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tbody_weight\tacq_time\nses-1\t75\t2022-05-03T10:00:00\nses-2\tn/a\t2022-01-10T09:00:00\n")
    liver = np.zeros((24, 32, 32), dtype=np.uint8)
    liver[2:8, 2:8, 2:8] = 1
    for ses in ("1", "2"):
        stem = f"sub-01_ses-{ses}_trc-FDG_rec-acstat"
        write_volume(liver, root / f"derivatives/lesions/sub-01/ses-{ses}/pet/{stem}_desc-refliver_mask.nii.gz")
    return root


def session_scans(out: Path, cohort: Path, patient: str) -> dict[str, SessionScan]:
    """What derive will do per scan: burden + state + the SUV inputs of its lesion rows -> SessionScan."""
    burden = pd.read_parquet(out / "burden.parquet").set_index(["patient_id", "session", "tracer"])
    state = pd.read_parquet(out / "scans.parquet").set_index(["patient_id", "session", "tracer"])
    lesions = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    sex = {(s.key.patient_id, s.key.session): s.sex for s in discover(cohort)}
    found = {}
    for (p, session, _), row in burden.loc[[patient]].iterrows():
        scan_state = state.loc[(p, session, "18F-FDG")]
        suv = lesions[(lesions.patient_id == p) & (lesions.session == session)].iloc[0]
        sul = sul_normalisation(FDG.sul.lbm_formula, scan_state["weight_kg"], scan_state["height_m"],
                                sex[(p, session)], suv["suv_units"], suv["suv_suv_type"], suv["suv_factor"])
        liver = RegionStats(scan_state["ref_liver_suv_mean"], scan_state["ref_liver_suv_sd"])
        stats = ScanStatistics(int(row["lesion_count"]), row["suv_max_hottest"], row["suv_peak_hottest"],
                               {"liver": liver})
        found[session] = SessionScan(session, row["status"], stats, row["tmtv_ml"], sul.factor, sul.note,
                                     suv["suv_uptake_s"], scan_state["params_version"])
    return found


def test_response_from_stored_rows_of_a_real_extract(tmp_path: Path):
    cohort = cohort_with_sessions(tmp_path / "bids")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir",
                                      str(params_dir(tmp_path / "params")), "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    scans = session_scans(out, cohort, "01")
    order = order_sessions(scans, session_declaration(cohort), bids.session_acq_times(cohort, "01"))
    assert (order.sessions, order.baseline, order.source) == (("2", "1"), "2", ACQ_TIME), "by acq_time, not name"

    # Deauville against the stored liver SUVmean (the shipped v3 file asks for SUVmax, now ref_liver_suv_max)
    settings = replace(FDG, deauville=DeauvilleSetting("suv_max", "suv_mean", 2.0))
    rows = {r["session"]: r for r in patient_response("01", scans, order, settings)}
    assert rows["2"]["response_note"] == "baseline" and rows["1"]["baseline_session"] == "2"

    lesions = pd.read_parquet(out / "features" / "18F-FDG.parquet").query("patient_id == '01'")
    hottest = lesions.groupby("session")[["suv_max", "suv_peak"]].max()
    assert rows["1"]["delta_suv_max_pct"] == pytest.approx(
        (hottest.loc["1", "suv_max"] - hottest.loc["2", "suv_max"]) / hottest.loc["2", "suv_max"] * 100, rel=1e-12)
    # SUL: Janmahasatian for a 175 cm man, 75 kg at session 1 and 70 kg at session 2 (sessions.tsv, participants.tsv)
    for session, weight in (("1", 75.0), ("2", 70.0)):
        lbm = 9270 * weight / (6680 + 216 * weight / 1.75**2)
        assert scans[session].sul_factor == pytest.approx(lbm / weight, rel=1e-12)
    assert rows["1"]["sul_peak"] == pytest.approx(hottest.loc["1", "suv_peak"] * scans["1"].sul_factor, rel=1e-12)
    assert rows["1"]["percist"] in ("CMR", "PMR", "SMD", "PMD") and rows["1"]["percist_note"]
    assert rows["1"]["deauville"] in (4, 5) and rows["1"]["lugano"] in ("PMR", "NMR", "PMD")
    text = " ".join(str(v) for r in rows.values() for v in r.values())
    assert "2022" not in text, "no acq_time date in any response row"
