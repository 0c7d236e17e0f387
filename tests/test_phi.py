"""No PHI in any output: identifiers and dates from the inputs never reach a table, a part, a log, a picture or the
report.

The cohort mixes what sites send: IBSI-SUV DRO copies and series written by the corpus builders (NIfTI, RTSTRUCT and
SEG masks, an uptake across midnight), a NIfTI PET with a BIDS sidecar in Bq/mL, one whose sidecar declares SUV,
and a participants.tsv. Every DICOM DA/DT attribute of every file (sequences and masks included) gets a marker date
of its own. The attributes that SUV arithmetic relates (series, acquisition, injection) are shifted together by one
offset, so that the uptake stays as built and the SUV is computed; the dates they end on are markers too. The
sidecars and the TSV carry marker dates in every date key that BIDS (or a converter) writes. Identifiers (names,
IDs, UIDs, institution) carry ZZPHI markers. The cohort also holds failures whose messages name files and times (a
bad weight, a missing or truncated slice, a mask on another grid, an injection after the scan, a malformed
injection date-time).

Every command a user runs writes its outputs: a dry run, extract with --qc, --json, --log-file and JSON log lines,
compare, report, status, scan -o, and every table. Everything is searched. The streams and the log are searched,
and every file of OUT as bytes (each date's long spellings). Every text is searched for every spelling as a whole
token, so that a digest or a timestamp cannot match by chance. Every Parquet file (.parts included) is decoded to
its values and metadata, and the PNG text chunks and the report's data URIs are decoded too. The cohort lives
under a folder named like a patient (``Smith_John_1957``): paths in outputs are relative to the cohort.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image

from radiomx.cli import cli
from radiomx.records import DEFAULT_IMAGE_PATTERNS, DEFAULT_MASK_PATTERNS

from .conftest import shared_data
from .corpus import (
    DICOM_ORIGIN,
    SPACING,
    _dicom_scan,
    good_scan,
    lesion_volume,
    mask_origin_mismatch,
    write,
    write_sidecar,
)
from .corpus.dicom_pet import rectangle_contours, write_pet_series, write_rtstruct, write_seg

#: The malformed injection date-time this test writes on purpose makes pydicom warn when the test itself reads it.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DT:UserWarning")

UID_ROOT = "1.2.826.0.1.3680043.10.543.777"
MARKERS = {
    "PatientName": "ZZPHINAME^ZZPHIGIVEN", "PatientID": "ZZPHIPID", "OtherPatientIDs": "ZZPHIOTHERID",
    "AccessionNumber": "ZZPHIACC", "InstitutionName": "ZZPHIINSTITUTE", "InstitutionAddress": "ZZPHIADDRESS",
    "ReferringPhysicianName": "ZZPHIDOCTOR", "StudyID": "ZZPHISTUDY", "StudyInstanceUID": f"{UID_ROOT}.1",
    "SeriesInstanceUID": f"{UID_ROOT}.2", "FrameOfReferenceUID": f"{UID_ROOT}.3",
}
#: The folder above the cohort, named like a patient.
PHI_FOLDER = "Smith_John_1957"
NEEDLES = ["ZZPHI", UID_ROOT, PHI_FOLDER, "Smith"]

#: DA/DT attributes that SUV arithmetic relates: shifted together onto SCAN_DAY, so the uptake is kept.
SUV_LINKED = frozenset({"SeriesDate", "AcquisitionDate", "AcquisitionDateTime", "RadiopharmaceuticalStartDateTime"})
SCAN_DAY = date(1905, 6, 14)
#: DA/DT attributes added to every DICOM file when a builder leaves them out (then marked like the rest).
EXTRA_DATES = ("PatientBirthDate", "StudyDate", "ContentDate", "InstanceCreationDate")
#: Date keys of the BIDS sidecars (and converters' extras) and of participants.tsv, each with its own marker.
SIDECAR_DATES = ("AcquisitionDateTime", "AcquisitionDate", "StudyDate", "SeriesDate", "ScanDate", "PatientBirthDate")
TSV_DATES = ("birth_date", "acq_time")


class DateMarkers:
    """A distinct marker date per field (DICOM keyword, sidecar key, TSV column), and every date written."""

    def __init__(self) -> None:
        self.by_field: dict[str, date] = {}
        self.written: set[date] = {SCAN_DAY}

    def marker(self, name: str) -> date:
        if name not in self.by_field:
            day = date(1903, 1, 7) + timedelta(days=37 * len(self.by_field))
            while day in self.written or day - timedelta(days=1) in self.written:
                day += timedelta(days=3)
            self.by_field[name] = day
            self.written.add(day)
        return self.by_field[name]

    def linked(self, original: date, offset: timedelta) -> date:
        self.written.add(original + offset)
        return original + offset


def _date_of(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def mark_dates(path: Path, markers: DateMarkers, identifiers: bool = True) -> None:
    """Every DA/DT attribute of one DICOM file (sequences and private tags included) set to a marker date; the SUV
    linked ones shifted together so that the file's series falls on SCAN_DAY (times of day kept); with
    ``identifiers`` the MARKERS too (names, IDs, UIDs: a caller that links series keeps its own UIDs)."""
    ds = pydicom.dcmread(path)
    for keyword in EXTRA_DATES:
        if keyword not in ds:
            setattr(ds, keyword, "20000101")
    series = str(ds.get("SeriesDate") or ds.get("AcquisitionDate") or "")
    offset = SCAN_DAY - _date_of(series) if len(series) >= 8 else timedelta(0)

    def mark(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.VR not in ("DA", "DT") or not element.value:
            return
        text = str(element.value)
        if element.keyword in SUV_LINKED:
            day = markers.linked(_date_of(text), offset)
        else:
            day = markers.marker(element.keyword or str(element.tag))
        element.value = day.strftime("%Y%m%d") + text[8:]

    ds.walk(mark)
    for keyword, value in MARKERS.items() if identifiers else ():
        setattr(ds, keyword, value)
    ds.save_as(path)


def dated_elements(ds: pydicom.Dataset) -> list[pydicom.DataElement]:
    """Every non-empty DA/DT element of a dataset, in its sequences too."""
    found: list[pydicom.DataElement] = []
    ds.walk(lambda _, element: found.append(element) if element.VR in ("DA", "DT") and element.value else None)
    return found


def dro_series(dst: Path, weight: float, index: int) -> None:
    """IBSI-SUV DRO_0_0 copies named by their (marker) SOP Instance UID, as exports often name files."""
    dst.mkdir(parents=True)
    for i, src in enumerate(sorted(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "PT").glob("*.dcm"))):
        ds = pydicom.dcmread(src)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.4.{index}.{i}"
        ds.PatientWeight = weight
        ds.save_as(dst / f"{ds.SOPInstanceUID}.dcm")


def _dicom_with_mask_file(case: Path, kind: str) -> None:
    """A builder series with a DICOM mask: an RTSTRUCT of one box lesion, or a highdicom SEG of the sphere."""
    image, sphere = lesion_volume(seed=11)
    files = write_pet_series(case / "FDG" / "pet", image, SPACING, origin=DICOM_ORIGIN)
    if kind == "seg":
        write_seg(case / "FDG" / "seg.dcm", files, sphere)
        return
    box = np.zeros_like(sphere)
    box[8:13, 10:15, 10:15] = 1
    zs = [DICOM_ORIGIN[2] + k * SPACING[2] for k in range(len(image))]
    path = write_rtstruct(case / "FDG" / "rtstruct.dcm", rectangle_contours(box, SPACING, DICOM_ORIGIN, zs))
    ds = pydicom.dcmread(path)
    ds.StructureSetDate, ds.StructureSetTime, ds.SeriesDate = "20240301", "101500", "20240301"
    ds.save_as(path)


def _bids_pet(case: Path, markers: DateMarkers) -> None:
    """68Ga-pentixafor NIfTI in Bq/mL with a BIDS sidecar holding dates everywhere a converter puts them (TimeZero
    too: BIDS says hh:mm:ss, some converters write a full date-time)."""
    image, mask = lesion_volume(seed=5)
    path = write(image * 5000.0, case / "pentixafor" / "pet.nii.gz", sidecar=False)
    write(mask, case / "pentixafor" / "mask.nii.gz")
    sidecar = {"Units": "Bq/mL", "TracerRadionuclide": "Ga68", "InjectedRadioactivity": 150,
               "InjectedRadioactivityUnits": "MBq", "InjectionStart": 0, "ScanStart": 3600,
               "ImageDecayCorrected": True, "RadionuclideHalfLife": 4057.7,
               "TimeZero": f"{markers.marker('TimeZero'):%Y-%m-%d}T09:00:00"}
    for key in SIDECAR_DATES:
        day = markers.marker(f"sidecar {key}")
        sidecar[key] = f"{day:%Y-%m-%d}T10:00:00" if key.endswith("DateTime") else f"{day:%Y-%m-%d}"
    write_sidecar(path, sidecar)


def _dated_names(cohort: Path, markers: DateMarkers) -> None:
    """Files named by date, as converters and people name them: P012's image by dcm2niix's ``%t``
    (YYYYMMDDhhmmss), its mask ``mask_YYYY-MM-DD`` with a label table naming the lesion with a date; P013's image
    ``pet_DD.MM.YYYY`` and its mask ``mask_YYYYMMDD`` on another grid (a failure whose message names the file)."""
    image, mask = lesion_volume(seed=12)
    stamp = datetime.combine(markers.marker("file name %t"), datetime.min.time()).replace(hour=10, minute=5, second=7)
    write(image, cohort / "P012" / "FDG" / f"PET_WB_{stamp:%Y%m%d%H%M%S}_3.nii.gz", sidecar=False)
    write_sidecar(cohort / "P012" / "FDG" / f"PET_WB_{stamp:%Y%m%d%H%M%S}_3.nii.gz", {"Units": "g/ml"})
    mask_name = f"mask_{markers.marker('mask file name'):%Y-%m-%d}"
    write(mask, cohort / "P012" / "FDG" / f"{mask_name}.nii.gz")
    (cohort / "P012" / "FDG" / f"{mask_name}.tsv").write_text(
        f"index\tname\n1\tGTV {markers.marker('lesion name'):%d.%m.%Y}\n")
    image, mask = lesion_volume(seed=13)
    pet = cohort / "P013" / "FDG" / f"pet_{markers.marker('image file name'):%d.%m.%Y}.nii.gz"
    write(image, pet, sidecar=False)
    pet.with_name(pet.name.removesuffix(".nii.gz") + ".json").write_text(json.dumps({"Units": "g/ml"}))
    write(mask, cohort / "P013" / "FDG" / f"mask_{markers.marker('other mask file name'):%Y%m%d}.nii.gz",
          origin=(0.0, 0.0, 8.0))
    (cohort / "radiomx.toml").write_text(
        f"[layout]\nimage = {json.dumps([*DEFAULT_IMAGE_PATTERNS, 'pet_*.nii.gz', 'PET_*.nii.gz'])}\n"
        f"mask = {json.dumps([*DEFAULT_MASK_PATTERNS, 'mask_*.nii.gz'])}\n")


def phi_cohort(tmp_path: Path) -> tuple[Path, DateMarkers]:
    """The cohort under ``tmp_path/Smith_John_1957/cohort`` (see the module docstring) and its markers."""
    cohort = tmp_path / PHI_FOLDER / "cohort"
    markers = DateMarkers()
    for index, (patient, weight) in enumerate((("P001", 70.0), ("P002", 0.0))):
        dro_series(cohort / patient / "FDG" / "pet", weight, index)
        os.symlink(shared_data("ibsi_suv_dro", "DRO", "DRO_0_0", "mask", "DRO_mask.nii.gz"),
                   cohort / patient / "FDG" / "mask.nii.gz")
    for patient in ("P003", "P005", "P009"):
        _dicom_scan(cohort / patient)
    mask_origin_mismatch(cohort / "P004")
    _dicom_with_mask_file(cohort / "P006", "rtstruct")
    _dicom_with_mask_file(cohort / "P007", "seg")
    series = datetime(2024, 3, 1, 10, 0, 0)
    _dicom_scan(cohort / "P008", injection_time=series + timedelta(minutes=30))  # injected after the scan
    _dicom_scan(cohort / "P010", series_time=datetime(2024, 3, 1, 0, 30))  # injected 23:30 the day before
    _bids_pet(cohort / "P001", markers)
    good_scan(cohort / "P011" / "FDG")
    write_sidecar(cohort / "P011" / "FDG" / "pet.nii.gz",
                  {"Units": "g/ml", **{k: f"{markers.marker('declared ' + k):%Y%m%d}" for k in SIDECAR_DATES}})
    _dated_names(cohort, markers)
    rows = ["participant_id\tbody_weight\theight\t" + "\t".join(TSV_DATES)]
    rows.append("P001\t70\t1.75\t" + "\t".join(f"{markers.marker('tsv ' + c):%Y-%m-%d}" for c in TSV_DATES))
    (cohort / "participants.tsv").write_text("\n".join(rows) + "\n")
    for path in sorted(cohort.rglob("*.dcm")):
        mark_dates(path, markers)
    # Broken after marking, as exports arrive broken.
    (cohort / "P003" / "FDG" / "pet" / "slice0010.dcm").unlink()
    truncated = cohort / "P005" / "FDG" / "pet" / "slice0010.dcm"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    for path in sorted((cohort / "P009" / "FDG" / "pet").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = f"{SCAN_DAY:%Y-%m-%d}T09:00"
        ds.save_as(path)
    return cohort, markers


def phi_params(tmp_path: Path) -> Path:
    for tracer in ("18F-FDG", "68Ga-pentixafor"):
        folder = tmp_path / "params" / tracer
        folder.mkdir(parents=True)
        (folder / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: 0.1\n"
                                        "  minimumROIDimensions: 1\nimageType:\n  Original: {}\n"
                                        "featureClass:\n  firstorder: [Maximum]\n")
    return tmp_path / "params"


# --- how a date may be spelled, and the search ----------------------------------------------------------------------

def spellings(day: date) -> list[str]:
    """Every way a tool or a person writes ``day``: ISO with and without separators (DICOM DA), European, US, with
    month names."""
    y, m, d = day.year, day.month, day.day
    mon, month = day.strftime("%b"), day.strftime("%B")
    return sorted({
        f"{y}{m:02d}{d:02d}", f"{y}-{m:02d}-{d:02d}", f"{y}/{m:02d}/{d:02d}", f"{y}.{m:02d}.{d:02d}",
        f"{y}-{m}-{d}", f"{d:02d}.{m:02d}.{y}", f"{d}.{m}.{y}", f"{d:02d}/{m:02d}/{y}", f"{m:02d}/{d:02d}/{y}",
        f"{m}/{d}/{y}", f"{d:02d}-{m:02d}-{y}", f"{d:02d}{m:02d}{y}", f"{m:02d}{d:02d}{y}",
        f"{d} {mon} {y}", f"{d:02d} {mon} {y}", f"{d:02d}-{mon}-{y}", f"{mon} {d}, {y}", f"{mon} {d:02d} {y}",
        f"{d} {month} {y}", f"{month} {d}, {y}",
    })


def _token(text: str) -> str:
    """A whole token: not inside a word, a hex digest, a number or a decimal fraction; a date may be followed by a
    time (``T09:00``, DICOM DT's ``090000``)."""
    return rf"(?<![0-9A-Za-z.]){re.escape(text)}(?![A-SU-Za-su-z]|\.\d)"


class Haystack:
    """Everything the outputs hold, as text (decoded) and as raw bytes."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.blobs: list[tuple[str, bytes]] = []

    def text(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def file(self, path: Path) -> None:
        data = path.read_bytes()
        self.blobs.append((str(path), data))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            values = [str(v) for column in table.columns for v in column.to_pylist()]
            meta = {k.decode(errors="replace"): v.decode(errors="replace")
                    for k, v in (table.schema.metadata or {}).items()}
            self.text(f"{path} (values)", "\n".join([*table.column_names, *values, json.dumps(meta)]))
        elif path.suffix == ".sqlite":  # the DICOM export's header index: every text cell
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                cells = [str(v) for t in tables for row in db.execute(f"SELECT * FROM {t}")
                         for v in row if isinstance(v, str)]
            self.text(f"{path} (text cells)", "\n".join(cells))
        elif path.suffix == ".png":
            with Image.open(path) as picture:
                self.text(f"{path} (text chunks)", json.dumps(picture.info, default=str))
        elif b"\0" not in data:  # text (logs, HTML, TSV, the lock); a JPEG thumbnail is searched as bytes only
            text = data.decode("utf-8", errors="replace")
            self.text(str(path), text)
            for mime, payload in re.findall(r"data:([\w/+.-]+);base64,([A-Za-z0-9+/=]+)", text):
                decoded = base64.b64decode(payload)
                self.blobs.append((f"{path} ({mime} data URI)", decoded))
                if mime == "image/png":
                    with Image.open(io.BytesIO(decoded)) as picture:
                        self.text(f"{path} (data URI text chunks)", json.dumps(picture.info, default=str))

    def folder(self, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.file(path)

    def assert_clean(self, dates: set[date]) -> None:
        for needle in NEEDLES:
            hits = [w for w, t in self.texts if needle in t] + [w for w, b in self.blobs if needle.encode() in b]
            assert not hits, (needle, hits)
        for day in sorted(dates):
            words = spellings(day)
            pattern = re.compile("|".join(_token(w) for w in words), re.IGNORECASE)
            for where, text in self.texts:
                found = pattern.search(text)
                assert found is None, (day, where, text[max(0, found.start() - 200):found.end() + 200])
            for where, blob in self.blobs:
                long = [w for w in words if len(w) >= 8 and w[0].isdigit() and w.replace("-", "").isdigit()]
                assert not any(w.encode() in blob for w in long), (day, where)
        years = {day.year for day in dates} | {1957}
        year = re.compile("|".join(rf"(?<![0-9A-Za-z.\-]){y}(?![0-9A-Za-z.])" for y in years))
        leaked = [(w, t[max(0, m.start() - 100):m.end() + 100]) for w, t in self.texts if (m := year.search(t))]
        assert not leaked, leaked[0]


def test_no_date_or_identifier_reaches_any_output(tmp_path: Path) -> None:
    cohort, markers = phi_cohort(tmp_path)
    out, log = tmp_path / "out", tmp_path / "run.log"
    params = str(phi_params(tmp_path))
    runner = CliRunner()
    hay = Haystack()

    def run(*args: str, code: int = 0) -> None:
        result = runner.invoke(cli, [*args])
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        hay.text(" ".join(args[:3]) + " stdout", result.stdout)
        hay.text(" ".join(args[:3]) + " stderr", result.stderr)

    run("--log-format", "json", "extract", str(cohort), "-o", str(out), "--params-dir", params, "--dry-run",
        "--json")
    run("--log-format", "json", "extract", str(cohort), "-o", str(out), "--params-dir", params, "--jobs", "2",
        "--log-file", str(log), "--qc", "--json", code=1)
    run("extract", str(cohort), "-o", str(out), "--params-dir", params, "--jobs", "1", code=1)  # text lines
    run("compare", str(out), "--tracers", "pentixafor,fdg", "--cohort", str(cohort))
    run("report", str(out))
    run("status", str(cohort), "-o", str(out), "--params-dir", params)
    run("scan", str(cohort), "-o", str(out), "--params-dir", params, "--format", "jsonl")
    for which in ("features", "failures", "scans", "runs", "burden", "patients", "compare"):
        run("table", str(out), "--which", which, *(["--format", "jsonl"] if which == "features" else []))
    hay.folder(out)
    hay.file(log)

    # Not vacuous: the scans were read and computed, the dates were read (days_between), the failures happened.
    features = pq.read_table(out / "features" / "18F-FDG.parquet").to_pandas().set_index("patient_id")
    assert {"P001", "P006", "P007", "P010", "P011", "P012"} <= set(features.index)
    assert features.loc["P010", "suv_injection_time"] == "23:30:00"
    assert features.loc["P010", "suv_reference_time"] == "00:30:00 (+1 day)"
    assert features.loc["P001", "suv_injection_time"] == "10:00:00"
    compare = pq.read_table(out / "compare" / "68Ga-pentixafor_vs_18F-FDG.parquet").to_pandas()
    expected = (markers.by_field["StudyDate"] - markers.by_field["sidecar AcquisitionDateTime"]).days
    assert compare.set_index("patient_id").loc["P001", "days_between"] == expected
    failures = pq.read_table(out / "failures.parquet").to_pandas().set_index("patient_id")
    assert "10:30:00 is after the reference time 10:00:00" in failures.loc["P008", "message"]
    assert "'9999-99-99T99:99' (digits masked)" in failures.loc["P009", "message"]
    assert "Patient Weight (0010,1030) is 0" in failures.loc["P002", "message"]
    assert "P003/FDG/pet/slice0011.dcm" in failures.loc["P003", "file"]  # relative paths kept
    # Dated file names: read and computed, shown with <DATE>; the lesion named with a date too.
    assert features.loc["P012", "image_file"] == "P012/FDG/PET_WB_<DATE>_3.nii.gz"
    assert features.loc["P012", "lesion_name"] == "GTV <DATE>"
    assert failures.loc["P013", "file"] == "P013/FDG/mask_<DATE>.nii.gz"
    assert len(markers.by_field) >= 14 and len(markers.written) >= 16
    from radiomx.qc.draw import suv_source

    for row in features.reset_index().to_dict("records"):  # the QC caption's SUV part, from the stored inputs
        hay.text(f"QC caption source of {row['patient_id']}", suv_source("SUVbw", row))
    hay.assert_clean(markers.written)


def test_no_phi_in_a_real_subprocess_run_given_a_relative_cohort(tmp_path: Path) -> None:
    """A real process (C-level stderr of GDCM/ITK, pydicom's warnings included), cohort typed relative to the
    working folder: a path made absolute anywhere in radiomx would carry the PHI folder into an output."""
    _, markers = phi_cohort(tmp_path)
    params = phi_params(tmp_path)
    command = [sys.executable, "-m", "radiomx", "--log-format", "json", "extract", "cohort", "-o", "../out",
               "--params-dir", str(params), "--jobs", "2", "--log-file", "../run.log"]
    proc = subprocess.run(command, cwd=tmp_path / PHI_FOLDER, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "FAILED P003/18F-FDG [geometry] P003/FDG/pet/slice0011.dcm: slice gap" in proc.stderr
    hay = Haystack()
    hay.text("stdout", proc.stdout)
    hay.text("stderr", proc.stderr)
    hay.folder(tmp_path / "out")
    hay.file(tmp_path / "run.log")
    hay.assert_clean(markers.written)


def test_the_markers_are_really_in_the_input(tmp_path: Path) -> None:
    """Guard against a vacuous pass: every DA/DT attribute of every DICOM file holds a marker date, the identifiers
    hold their markers, and the sidecars and the TSV hold theirs."""
    cohort, markers = phi_cohort(tmp_path)
    seen: set[str] = set()
    for path in sorted(cohort.rglob("*.dcm")):
        if path.stat().st_size < 1000:
            continue
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # noqa: BLE001 - the truncated slice
            continue
        assert str(ds.PatientName) == MARKERS["PatientName"] and ds.StudyInstanceUID == MARKERS["StudyInstanceUID"]

        for element in dated_elements(ds):
            seen.add(element.keyword)
            text = str(element.value)
            assert _date_of(text.replace("-", "")) in markers.written, (path, element.keyword, text)
    assert {"StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "PatientBirthDate",
            "RadiopharmaceuticalStartDateTime", "InstanceCreationDate", "StructureSetDate"} <= seen
    sidecar = json.loads((cohort / "P001" / "pentixafor" / "pet.json").read_text())
    assert sidecar["AcquisitionDate"] == f"{markers.by_field['sidecar AcquisitionDate']:%Y-%m-%d}"
    assert f"{markers.by_field['tsv birth_date']:%Y-%m-%d}" in (cohort / "participants.tsv").read_text()
    assert len({d for d in markers.written}) == len(markers.written)


@pytest.mark.parametrize("day", [date(1905, 6, 14), date(1911, 12, 3)])
def test_every_spelling_is_found_as_a_token_but_not_inside_a_digest_or_a_number(day: date) -> None:
    """The search itself: each spelling in a sentence is found; the digits inside a digest, a decimal fraction or
    a longer number are not (a CI run once failed on a year inside an ``image_sha256``)."""
    hay = Haystack()
    for spelling in spellings(day):
        hay.texts = [("t", f"injected {spelling} at 09:00")]
        with pytest.raises(AssertionError):
            hay.assert_clean({day})
    compact = day.strftime("%Y%m%d")
    for noise in (f"sha256 ab{compact}cd", f"value 0.{compact}7", f"count 9{compact}", f"x{compact}y"):
        hay.texts = [("t", noise)]
        hay.assert_clean({day})
