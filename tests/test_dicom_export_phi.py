"""No PHI from a DICOM export reaches any output: markers in every identifying header field (names, IDs, birth and
study dates, institution, UIDs), files and folders named by UID, the PatientIDs mapped with ``--patient-ids``, the
export under a folder named like a patient. ``scan``, ``extract`` (with a failure that names a file), ``status`` and
``table`` run for real; their streams, the log file and every file in OUT (the header index included) are searched."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from click.testing import CliRunner

from radiomx.cli import cli

from .export_builders import dro_files, repoint_rtstruct
from .test_dicom_export import minimal_params
from .test_phi import MARKERS, PHI_FOLDER, UID_ROOT, DateMarkers, Haystack, mark_dates

#: Fields the export reads besides those of test_phi (the study date, which orders sessions, and every other DA/DT
#: attribute get a marker date from ``mark_dates``).
EXPORT_MARKERS = {**MARKERS, "StudyTime": "235959",
                  "StudyDescription": "ZZPHISTUDYDESC", "OperatorsName": "ZZPHIOPERATOR",
                  "PerformingPhysicianName": "ZZPHIPERFORMER", "StationName": "ZZPHISTATION",
                  "DeviceSerialNumber": "ZZPHIDEVICE", "ProtocolName": "ZZPHIPROTOCOL"}
#: Free text a message may show (a series' description) gets a marker date and a UID, as sites write them
#: (QA2 D3: "PET WB AC ZQXSERDESC 2024-01-10" was kept whole in the index).
DESCRIBED = ("SeriesDescription",)


def marked_export(root: Path, patient: int, drop_slice: bool = False, markers: DateMarkers | None = None) -> None:
    """DRO_0_0 with every marker (a marker date in every DA/DT attribute), UIDs under UID_ROOT, files named by their
    SOP Instance UID in folders named by study and series UID (as some PACS export them)."""
    markers = markers or DateMarkers()
    slices, rs = dro_files("DRO_0_0")
    study, series, frame = (f"{UID_ROOT}.{kind}.{patient}" for kind in (1, 2, 3))
    folder = root / study / series
    folder.mkdir(parents=True)
    for i, src in enumerate(slices):
        if drop_slice and i == 10:
            continue
        ds = pydicom.dcmread(src)
        for keyword, value in EXPORT_MARKERS.items():
            setattr(ds, keyword, value)
        ds.PatientID = f"ZZPHIPID{patient}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.4.{patient}.{i}"
        for keyword in DESCRIBED:
            setattr(ds, keyword, f"PET WB AC {markers.marker(keyword):%Y-%m-%d} {UID_ROOT}.8")
        name = f"IMG_{ds.SOPInstanceUID}" if i % 2 else ds.SOPInstanceUID  # a UID after a prefix, too
        ds.save_as(folder / name)
        mark_dates(folder / name, markers, identifiers=False)
    ds = pydicom.dcmread(rs)
    for keyword, value in EXPORT_MARKERS.items():
        if keyword not in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            setattr(ds, keyword, value)
    ds.PatientID, ds.StudyInstanceUID = f"ZZPHIPID{patient}", study
    ds.SeriesInstanceUID = f"{UID_ROOT}.6.{patient}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.5.{patient}"
    repoint_rtstruct(ds, study, series, frame)
    ds.save_as(root / study / ds.SOPInstanceUID)
    mark_dates(root / study / ds.SOPInstanceUID, markers, identifiers=False)


def test_no_phi_from_an_export_reaches_any_output(tmp_path):
    export = tmp_path / PHI_FOLDER / "export"
    markers = DateMarkers()
    marked_export(export, 1, markers=markers)
    marked_export(export, 2, drop_slice=True, markers=markers)
    ids = tmp_path / "ids.csv"
    ids.write_text("PatientID,patient_id\nZZPHIPID1,P001\nZZPHIPID2,P002\n")
    out, log = tmp_path / "out", tmp_path / "run.log"
    common = ["--patient-ids", str(ids), "--params-dir", str(minimal_params(tmp_path / "params"))]
    runner = CliRunner()
    listing = runner.invoke(cli, ["scan", str(export), *common])
    extract = runner.invoke(cli, ["extract", str(export), "-o", str(out), "-j", "1", "--log-file", str(log), *common])
    status = runner.invoke(cli, ["status", str(export), "-o", str(out), *common])
    assert listing.exit_code == 0 and status.exit_code == 0, listing.stderr + status.stderr
    assert extract.exit_code == 1, extract.stderr
    assert "FAILED P002/ses-1/18F-FDG [geometry] <UID>/<UID>/IMG_<UID>: slice gap" in extract.stderr  # names it
    haystack = Haystack()
    for where, result in (("scan", listing), ("extract", extract), ("status", status)):
        haystack.text(f"{where} stdout", result.stdout)
        haystack.text(f"{where} stderr", result.stderr)
    for which in ("features", "failures", "scans", "runs"):
        table = runner.invoke(cli, ["table", str(out), "--which", which])
        assert table.exit_code == 0, table.stderr
        haystack.text(f"table {which}", table.stdout)
    assert "P001,ses-1,18F-FDG" in haystack.texts[-4][1]
    assert any(p.name == ".dicom-index.sqlite" for p in out.iterdir())
    haystack.file(log)
    haystack.folder(out)
    assert len(markers.written) > 5  # study, birth, content, creation dates and the SUV-linked scan day
    haystack.assert_clean(markers.written)


def test_the_markers_are_in_the_export(tmp_path):
    markers = DateMarkers()
    marked_export(tmp_path, 1, markers=markers)
    first = next(p for p in tmp_path.rglob("*") if p.is_file() and p.parent.name.endswith(".2.1"))
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    for keyword in ("StudyDate", "PatientBirthDate", "ContentDate"):
        assert ds.data_element(keyword).value == markers.by_field[keyword].strftime("%Y%m%d"), keyword
    assert str(ds.PatientName) == MARKERS["PatientName"]
    assert ds.InstitutionName == MARKERS["InstitutionName"] and first.name.startswith(UID_ROOT)
    assert f"{markers.by_field['SeriesDescription']:%Y-%m-%d} {UID_ROOT}" in ds.SeriesDescription
    assert any(p.name.startswith(f"IMG_{UID_ROOT}") for p in first.parent.iterdir())


def test_an_export_in_dated_folders_leaks_no_date_yet_compare_counts_days_between(tmp_path):
    """QA #2 and #4: PACS exports name folders by study date (``DICOM/20240110/...``). No such date reaches a table,
    a stream, the index or a compare row; ``compare`` reads each scan's Study Date from the export itself (paths are
    stored redacted) and fills days_between, storing no date."""
    from pydicom.uid import generate_uid

    from .export_builders import Export, box_volume, seg_on, synthetic_pet
    from .test_phi import _date_of

    days = {"18F-FDG": "19990301", "68Ga-pentixafor": "19990305"}
    image, mask = box_volume()
    for tracer, day in days.items():
        export = Export(tmp_path / "export" / "DICOM" / day / f"{day}083000")  # the folders a PACS names by date
        name = "Fluorodeoxyglucose F^18^" if tracer == "18F-FDG" else "[68Ga]Ga-Pentixafor"
        pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), study_date=day, radiopharmaceutical=name,
                            volume=image)
        if tracer != "18F-FDG":  # a Ga-68 series: no F-18 code, Ga-68's half-life
            for path in pet.files:
                ds = pydicom.dcmread(path)
                item = ds.RadiopharmaceuticalInformationSequence[0]
                del item.RadionuclideCodeSequence
                item.RadionuclideHalfLife = "4062.6"
                ds.save_as(path)
        seg_on(export, pet, mask)
    out = tmp_path / "out"
    runner = CliRunner()
    params = ["--params-dir", str(minimal_params(tmp_path / "params"))]
    extract = runner.invoke(cli, ["extract", str(tmp_path / "export"), "-o", str(out), "-j", "1", *params])
    assert extract.exit_code == 0, extract.stderr
    compare = runner.invoke(cli, ["compare", str(out), "--tracers", "pentixafor,fdg"])
    assert compare.exit_code == 0, compare.stderr
    shown = runner.invoke(cli, ["table", str(out), "--which", "compare", "--tracer", "pentixafor,fdg",
                                "--format", "jsonl"])
    row = json.loads(shown.stdout.splitlines()[0])
    assert row["days_between"] == -4, row["days_between_note"]  # B (FDG) was 4 days before A (pentixafor)
    haystack = Haystack()
    for where, result in (("extract", extract), ("compare", compare), ("table compare", shown)):
        haystack.text(f"{where} stdout", result.stdout)
        haystack.text(f"{where} stderr", result.stderr)
    for which in ("features", "failures", "scans", "runs", "burden", "patients"):
        table = runner.invoke(cli, ["table", str(out), "--which", which, "--format", "jsonl"])
        assert table.exit_code == 0, table.stderr
        haystack.text(f"table {which}", table.stdout)
    haystack.folder(out)
    haystack.assert_clean({_date_of(day) for day in days.values()})
