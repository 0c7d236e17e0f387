"""Sex and height for lean body mass, from every place a cohort states them: DICOM Patient's Sex (0010,0040) and
Patient Size (0010,1020), a BIDS-PET sidecar's PatientSex/PatientSize (dcm2niix), participants.tsv/sessions.tsv
``sex``; and sessions.tsv ``acq_time``, read only to order sessions (issue 25)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radiomx.discover import bids
from radiomx.discover.cohort import discover
from radiomx.inputs.loader import load_scan
from radiomx.records import Layout, Scan, ScanKey, sex_code

from .conftest import shared_data
from .test_bids import bids_cohort


@pytest.mark.parametrize("text, code", [("M", "M"), ("male", "M"), ("Male", "M"), ("m", "M"), ("F", "F"),
                                        ("female", "F"), (" f ", "F"), ("O", "O"), ("other", "O"), ("n/a", ""),
                                        ("", ""), (None, ""), ("unknown", ""), ("X", "")])
def test_sex_code_reads_dicom_and_bids_spellings(text, code):
    assert sex_code(text) == code


def test_sex_comes_from_sessions_tsv_then_participants_tsv(tmp_path: Path):
    root = bids_cohort(tmp_path / "bids")
    (root / "participants.tsv").write_text("participant_id\tbody_weight\tsex\theight\nsub-01\t70\tfemale\t162\n"
                                           "sub-02\t82.5\tn/a\t180\n")
    (root / "sub-01" / "sub-01_sessions.tsv").write_text("session_id\tbody_weight\tsex\nses-1\t75\tM\nses-2\tn/a\t\n")
    scans = {(s.key.patient_id, s.key.session): s for s in discover(root)}
    assert scans[("01", "1")].sex == "M"          # the session's row wins
    assert scans[("01", "2")].sex == "F"          # empty there: participants.tsv
    assert scans[("02", "")].sex == ""            # n/a: unknown, never guessed
    assert scans[("01", "2")].height_m == pytest.approx(1.62)


def test_acq_time_is_read_per_session_for_ordering_only(tmp_path: Path):
    root = tmp_path / "bids"
    (root / "sub-01").mkdir(parents=True)
    (root / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-base\t2021-03-01T09:00:00\nses-fu\t2021-06-01T10:30:00\nses-x\tn/a\n")
    assert bids.session_acq_times(root, "01") == {"base": "2021-03-01T09:00:00", "fu": "2021-06-01T10:30:00"}
    assert bids.session_acq_times(root, "02") == {}


@pytest.mark.parametrize("dro, sex", [("DRO_2_1", "M"), ("DRO_0_0", "O")])
def test_dicom_patient_sex_and_size_are_read_with_the_image(dro, sex):
    """A real DICOM PET series (IBSI-SUV DROs: 70 kg, 1.75 m)."""
    folder = shared_data("ibsi_suv_dro", "DRO", dro)
    scan = Scan(ScanKey("P", "", "18F-FDG"), folder, folder / "PT", folder / "mask" / "DRO_mask.nii.gz")
    loaded = load_scan(scan, Layout())
    assert (loaded.sex, loaded.height_m, loaded.weight_kg) == (sex, pytest.approx(1.75), pytest.approx(70.0))


def test_a_sidecar_states_sex_and_height_as_dcm2niix_writes_them(tmp_path: Path):
    root = bids_cohort(tmp_path / "bids")
    scan = next(s for s in discover(root) if s.key.patient_id == "02")
    sidecar = scan.image.with_name(scan.image.name.replace(".nii.gz", ".json"))
    content = json.loads(sidecar.read_text())
    assert load_scan(scan, Layout()).sex == ""
    sidecar.write_text(json.dumps({**content, "PatientSex": "F", "PatientSize": 1.64}))
    loaded = load_scan(scan, Layout())
    assert (loaded.sex, loaded.height_m) == ("F", pytest.approx(1.64))
    sidecar.write_text(json.dumps({**content, "PatientSex": "F", "PatientSize": 164}))  # cm: implausible as m
    assert load_scan(scan, Layout()).height_m is None
