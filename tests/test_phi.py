"""No PHI in any output: DICOM PHI fields filled with marker strings never reach a table, a CSV or a log.

Copies of a DRO's slices get marker patient name, IDs, birth date, accession number, institution and UIDs; the
real ``radiomx extract`` (one good scan, one failing on a bad weight) writes its tables and log, and every output
file (Parquet bytes, CSV from ``radiomx table``, the log file, both streams) is searched for the markers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import shared_data

UID_ROOT = "1.2.826.0.1.3680043.10.543.777"
MARKERS = {
    "PatientName": "ZZPHINAME^ZZPHIGIVEN", "PatientID": "ZZPHIPID", "OtherPatientIDs": "ZZPHIOTHERID",
    "PatientBirthDate": "19010203", "AccessionNumber": "ZZPHIACC", "InstitutionName": "ZZPHIINSTITUTE",
    "InstitutionAddress": "ZZPHIADDRESS", "ReferringPhysicianName": "ZZPHIDOCTOR", "StudyID": "ZZPHISTUDY",
    "StudyInstanceUID": f"{UID_ROOT}.1", "SeriesInstanceUID": f"{UID_ROOT}.2", "FrameOfReferenceUID": f"{UID_ROOT}.3",
}
NEEDLES = ["ZZPHI", "19010203", "1901-02-03", UID_ROOT]


def marked_series(dst: Path, weight: float) -> None:
    dst.mkdir(parents=True)
    for i, src in enumerate(sorted(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "PT").glob("*.dcm"))):
        ds = pydicom.dcmread(src)
        for keyword, value in MARKERS.items():
            setattr(ds, keyword, value)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.4.{i}"
        ds.PatientWeight = weight
        ds.save_as(dst / f"{ds.SOPInstanceUID}.dcm")  # exports often name files by UID: must not leak either


def test_no_phi_reaches_any_output(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    for patient, weight in (("P001", 70.0), ("P002", 0.0)):
        marked_series(cohort / patient / "FDG" / "pet", weight)
        os.symlink(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "mask", "DRO_mask.nii.gz"),
                   cohort / patient / "FDG" / "mask.nii.gz")
    params = tmp_path / "params" / "18F-FDG"
    params.mkdir(parents=True)
    (params / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: 0.1\n  minimumROIDimensions: 1\n"
                                    "imageType:\n  Original: {}\nfeatureClass:\n  firstorder: [Maximum]\n")
    out, log = tmp_path / "out", tmp_path / "run.log"
    runner = CliRunner()
    result = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir", str(params.parent),
                                 "--jobs", "2", "--log-file", str(log), "--qc"])
    assert result.exit_code == 1, result.output + result.stderr
    report = runner.invoke(cli, ["report", str(out)])  # the QC pictures (PNG text chunks) and the page too
    assert report.exit_code == 0 and (out / "qc" / "P001" / "18F-FDG.png").is_file(), report.stderr
    texts = [result.stdout, result.stderr, report.stderr, (out / "report.html").read_text()]
    for which in ("features", "failures", "scans", "runs"):
        table = runner.invoke(cli, ["table", str(out), "--which", which])
        assert table.exit_code == 0, table.stderr
        texts.append(table.stdout)
    assert "P001" in texts[4] and "suv_weight_kg" in texts[4] and "Patient Weight (0010,1030) is 0" in texts[5]
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()] + [log.read_bytes()]
    assert len(blobs) >= 4
    for needle in NEEDLES:
        assert not any(needle in t for t in texts), needle
        assert not any(needle.encode() in b for b in blobs), needle


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "PatientName", "InstitutionName"])
def test_markers_are_really_in_the_input(tmp_path: Path, keyword: str) -> None:
    """Guard against a vacuous pass: the marker strings are in the DICOM files the extract read."""
    marked_series(tmp_path / "pet", 70.0)
    ds = pydicom.dcmread(next((tmp_path / "pet").glob("*.dcm")))
    assert str(getattr(ds, keyword)) == MARKERS[keyword]
