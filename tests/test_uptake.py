"""``suv_uptake_s`` is the time from injection to the scan's start whatever the images are decay-corrected to: a
BIDS sidecar corrected to the injection (ImageDecayCorrectionTime = InjectionStart) and a DICOM series with
DecayCorrection ADMIN have an uptake too. The SUV itself does not change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from radiomx import api
from radiomx.cli import cli
from radiomx.inputs import suv

from .conftest import sphere_scan, write_volume
from .corpus.dicom_pet import UPTAKE_S, write_pet_series
from .test_bids import params_dir

F18 = 6586.2
WEIGHT_KG, DOSE_MBQ, SCAN_AFTER_INJECTION_S = 70.0, 350.0, 3900.0


def sidecar(reference: str) -> dict:
    """TimeZero at the scan start, injection 3900 s earlier; images decay-corrected to ``reference``."""
    corrected_to = {"injection": -SCAN_AFTER_INJECTION_S, "scan start": 0.0}[reference]
    return {"Units": "Bq/mL", "TracerRadionuclide": "F18", "InjectedRadioactivity": DOSE_MBQ,
            "InjectedRadioactivityUnits": "MBq", "TimeZero": "10:05:00", "InjectionStart": -SCAN_AFTER_INJECTION_S,
            "ScanStart": 0, "ImageDecayCorrected": True, "ImageDecayCorrectionTime": corrected_to,
            "FrameTimesStart": [0], "FrameDuration": [600]}


def test_a_sidecar_corrected_to_the_injection_records_the_uptake_and_keeps_its_factor():
    at_injection = suv.sidecar_suv(sidecar("injection"), "pet.json", WEIGHT_KG, "participants.tsv", "F-18")
    at_start = suv.sidecar_suv(sidecar("scan start"), "pet.json", WEIGHT_KG, "participants.tsv", "F-18")
    assert at_injection.uptake_s == at_start.uptake_s == SCAN_AFTER_INJECTION_S
    assert at_injection.decay_factor == 1.0  # no decay between the injection and the values' reference
    assert at_injection.factor == pytest.approx(WEIGHT_KG * 1000 / (DOSE_MBQ * 1e6), rel=1e-12)
    # The same activity, stored decayed back to the injection, is the same SUV.
    decay = math.exp(-math.log(2) * SCAN_AFTER_INJECTION_S / F18)
    assert at_injection.factor / decay == pytest.approx(at_start.factor, rel=1e-12)


def test_a_sidecar_without_scan_start_records_no_uptake_rather_than_a_wrong_one():
    inputs = suv.sidecar_suv({**sidecar("injection"), "ScanStart": None}, "pet.json", WEIGHT_KG, "p", "F-18")
    assert math.isnan(inputs.uptake_s) and inputs.decay_factor == 1.0


def test_extract_records_the_uptake_of_both_sidecars_and_the_same_suv(tmp_path: Path):
    """From the command line: two scans of the same SUV image, one stored decay-corrected to the injection, one to
    the scan start. Same SUVmax (numpy's, of the true SUV), same uptake, different decay factors."""
    cohort = tmp_path / "cohort"
    true_suv, mask = sphere_scan(seed=3)
    decay = math.exp(-math.log(2) * SCAN_AFTER_INJECTION_S / F18)
    for patient, reference, stored_decay in (("P001", "injection", 1.0), ("P002", "scan start", decay)):
        folder = cohort / patient / "FDG"
        activity = true_suv.astype(np.float64) * DOSE_MBQ * 1e6 * stored_decay / (WEIGHT_KG * 1000)
        write_volume(activity.astype(np.float32), folder / "pet.nii.gz")
        write_volume(mask, folder / "mask.nii.gz")
        (folder / "pet.json").write_text(json.dumps(sidecar(reference)))
    (cohort / "participants.tsv").write_text(f"participant_id\tbody_weight\nP001\t{WEIGHT_KG}\nP002\t{WEIGHT_KG}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir",
                                      str(params_dir(tmp_path / "params")), "-j", "1"])
    assert result.exit_code == 0, result.stderr
    table = api.read_table(out)
    assert len(table) == 4 and set(table["suv_uptake_s"]) == {SCAN_AFTER_INJECTION_S}
    rows = table.groupby("patient_id").first()
    assert rows.loc["P001", "suv_decay_factor"] == 1.0
    assert rows.loc["P002", "suv_decay_factor"] == pytest.approx(decay)
    for row in table.itertuples():
        expected_max = float(true_suv[mask == int(row.label_value)].max())
        assert row.original_firstorder_Maximum == pytest.approx(expected_max, rel=1e-5), row.patient_id


def _dicom(tmp_path: Path, **kwargs):
    image, _mask = sphere_scan(shape=(8, 16, 16), centres=((4, 8, 8),), radius=3)
    files = write_pet_series(tmp_path / "pet", image, (4.0, 4.0, 4.0), **kwargs)
    return [pydicom.dcmread(f) for f in files], [str(f) for f in files], image


def test_a_dicom_admin_series_records_its_uptake_and_keeps_its_factor(tmp_path):
    headers, paths, image = _dicom(tmp_path, decay_correction="ADMIN")
    factors, inputs = suv.dicom_suv(headers, paths, "F-18")
    assert inputs.uptake_s == UPTAKE_S and inputs.decay_factor == 1.0
    assert inputs.factor == pytest.approx(70.0 * 1000 / 3.7e8, rel=1e-12)
    slope = np.array([float(ds.RescaleSlope) for ds in headers])
    stored = np.stack([ds.pixel_array for ds in headers]).astype(np.float64) * slope[:, None, None]
    assert np.allclose(stored * factors[:, None, None], image, atol=float(slope.max()) * factors[0])


def test_a_dicom_admin_series_without_scan_times_records_no_uptake_but_converts(tmp_path):
    headers, paths, _image = _dicom(tmp_path, decay_correction="ADMIN")
    for ds in headers:
        for keyword in ("SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime"):
            delattr(ds, keyword)
    _factors, inputs = suv.dicom_suv(headers, paths, "F-18")
    assert math.isnan(inputs.uptake_s) and inputs.factor == pytest.approx(70.0 * 1000 / 3.7e8)
