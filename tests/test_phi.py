"""No PHI in any output: DICOM PHI fields filled with marker strings never reach a table, a CSV or a log.

Copies of a DRO's slices get marker patient name, IDs, birth date, accession number, institution and UIDs; the
real ``radiomx extract`` (one good scan, failures whose messages name files: a bad weight, a missing slice, a mask
on another grid, a truncated slice) writes its tables and log, and every output file (Parquet bytes, CSV from
``radiomx table``, the log file, both streams) is searched for the markers. The cohort itself lives under a
folder named like a patient (``Smith_John_1957``, as ``/data/Smith_John_1957/`` would on a site's disk): paths in
outputs are relative to the cohort, so that name must not appear either. The run log keeps the command line as
typed, so the subprocess variant types a relative cohort path and every byte can be searched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import shared_data
from .corpus import dicom_missing_slice, dicom_truncated_slice, mask_origin_mismatch

UID_ROOT = "1.2.826.0.1.3680043.10.543.777"
MARKERS = {
    "PatientName": "ZZPHINAME^ZZPHIGIVEN", "PatientID": "ZZPHIPID", "OtherPatientIDs": "ZZPHIOTHERID",
    "PatientBirthDate": "19010203", "AccessionNumber": "ZZPHIACC", "InstitutionName": "ZZPHIINSTITUTE",
    "InstitutionAddress": "ZZPHIADDRESS", "ReferringPhysicianName": "ZZPHIDOCTOR", "StudyID": "ZZPHISTUDY",
    "StudyInstanceUID": f"{UID_ROOT}.1", "SeriesInstanceUID": f"{UID_ROOT}.2", "FrameOfReferenceUID": f"{UID_ROOT}.3",
}
#: The folder above the cohort, named like a patient.
PHI_FOLDER = "Smith_John_1957"
NEEDLES = ["ZZPHI", "19010203", "1901-02-03", UID_ROOT, PHI_FOLDER, "Smith"]
#: The folder's year alone, as a token of its own: four digits turn up by chance inside SHA-256 digests, run ids and
#: microsecond timestamps (a CI run failed on ``...1957...`` inside an ``image_sha256``), and in compressed bytes, so
#: it is looked for only in text, bounded by non-alphanumerics. The full folder name and "Smith" cover the bytes.
YEAR_TOKEN = re.compile(r"(?<![0-9A-Za-z.])1957(?![0-9A-Za-z.])")  # not inside 3.1957 or 1957.0 either


def marked_series(dst: Path, weight: float) -> None:
    dst.mkdir(parents=True)
    for i, src in enumerate(sorted(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "PT").glob("*.dcm"))):
        ds = pydicom.dcmread(src)
        for keyword, value in MARKERS.items():
            setattr(ds, keyword, value)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.4.{i}"
        ds.PatientWeight = weight
        ds.save_as(dst / f"{ds.SOPInstanceUID}.dcm")  # exports often name files by UID: must not leak either


def phi_cohort(tmp_path: Path) -> Path:
    """A cohort under ``tmp_path/Smith_John_1957/cohort``: DRO copies with PHI markers (one good, one with weight
    0) and broken scans whose messages name files."""
    cohort = tmp_path / PHI_FOLDER / "cohort"
    for patient, weight in (("P001", 70.0), ("P002", 0.0)):
        marked_series(cohort / patient / "FDG" / "pet", weight)
        os.symlink(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "mask", "DRO_mask.nii.gz"),
                   cohort / patient / "FDG" / "mask.nii.gz")
    for name, build in (("P003", dicom_missing_slice), ("P004", mask_origin_mismatch),
                        ("P005", dicom_truncated_slice)):
        build(cohort / name)
    return cohort


def phi_params(tmp_path: Path) -> Path:
    params = tmp_path / "params" / "18F-FDG"
    params.mkdir(parents=True)
    (params / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: 0.1\n  minimumROIDimensions: 1\n"
                                    "imageType:\n  Original: {}\nfeatureClass:\n  firstorder: [Maximum]\n")
    return params.parent


def assert_no_needle(texts: list[str], blobs: list[bytes]) -> None:
    for needle in NEEDLES:
        assert not any(needle in t for t in texts), (needle, [t for t in texts if needle in t][0][:2000])
        assert not any(needle.encode() in b for b in blobs), needle
    leaked = [t for t in texts if YEAR_TOKEN.search(t)]
    assert not leaked, leaked[0][:2000]


def test_no_phi_reaches_any_output(tmp_path: Path) -> None:
    cohort = phi_cohort(tmp_path)
    out, log = tmp_path / "out", tmp_path / "run.log"
    runner = CliRunner()
    result = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir", str(phi_params(tmp_path)),
                                 "--jobs", "2", "--log-file", str(log), "--qc"])
    assert result.exit_code == 1, result.output + result.stderr
    report = runner.invoke(cli, ["report", str(out)])  # the QC pictures (PNG text chunks) and the page too
    assert report.exit_code == 0 and (out / "qc" / "P001" / "18F-FDG.png").is_file(), report.stderr
    texts = [result.stdout, result.stderr, report.stderr, (out / "report.html").read_text()]
    for which in ("features", "failures", "scans", "runs"):
        table = runner.invoke(cli, ["table", str(out), "--which", which])
        assert table.exit_code == 0, table.stderr
        texts.append(table.stdout)
    listing = runner.invoke(cli, ["scan", str(cohort)])
    texts.append(listing.stdout)
    assert "P001" in texts[4] and "suv_weight_kg" in texts[4] and "Patient Weight (0010,1030) is 0" in texts[5]
    assert "P003/FDG/pet/slice0011.dcm" in texts[5] and "P004/FDG/mask.nii.gz" in texts[5]  # relative paths kept
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()] + [log.read_bytes()]
    assert len(blobs) >= 4
    assert_no_needle([*texts, log.read_text()], blobs)


def test_no_phi_in_a_real_subprocess_run_given_a_relative_cohort(tmp_path: Path) -> None:
    """A real process (C-level stderr of GDCM/ITK included), cohort typed relative to the working folder: a path made
    absolute anywhere in radiomx would carry the PHI folder into an output."""
    phi_cohort(tmp_path)
    params = phi_params(tmp_path)
    command = [sys.executable, "-m", "radiomx", "extract", "cohort", "-o", "../out", "--params-dir", str(params),
               "--jobs", "2", "--log-file", "../run.log"]
    proc = subprocess.run(command, cwd=tmp_path / PHI_FOLDER, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "FAILED P003/18F-FDG [geometry] P003/FDG/pet/slice0011.dcm: slice gap" in proc.stderr
    blobs = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()] + [
        (tmp_path / "run.log").read_bytes()]
    assert_no_needle([proc.stdout, proc.stderr, (tmp_path / "run.log").read_text()], blobs)


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "PatientName", "InstitutionName"])
def test_markers_are_really_in_the_input(tmp_path: Path, keyword: str) -> None:
    """Guard against a vacuous pass: the marker strings are in the DICOM files the extract read."""
    marked_series(tmp_path / "pet", 70.0)
    ds = pydicom.dcmread(next((tmp_path / "pet").glob("*.dcm")))
    assert str(getattr(ds, keyword)) == MARKERS[keyword]
