"""A PACS export is a cohort: ``radiomx scan|extract|status EXPORT`` on exports built from real and synthetic DICOM
files under random names, nested folders, with junk files and a DICOMDIR (``tests/export_builders.py``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

from radiomx import api
from radiomx.cli import cli
from radiomx.discover import dicom_index
from radiomx.options import ExtractOptions

from .export_builders import (
    Export,
    Written,
    box_volume,
    dro_study,
    repoint_rtstruct,
    rtstruct_on,
    seg_on,
    sort_by_hand,
    synthetic_ct,
    synthetic_pet,
)


def minimal_params(root: Path) -> Path:
    """First-order features only, for every tracer the tests use (fast, and PyRadiomics' own values)."""
    for tracer, units in (("18F-FDG", "SUVbw"), ("68Ga-DOTATATE", "SUVbw"), ("68Ga-pentixafor", "SUVbw"),
                          ("CT", "HU")):
        folder = root / tracer
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "v1.yaml").write_text(f"radiomx:\n  units: {units}\nsetting:\n  binWidth: 0.25\n"
                                        "  minimumROIDimensions: 1\nimageType:\n  Original: {}\n"
                                        "featureClass:\n  firstorder: [Maximum, Mean, Minimum, Median]\n")
    return root


def run(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def dro_export(tmp_path_factory):
    """Four DROs as four patients (one waiting for its mask, one of a tracer radiomx does not know), junk files and
    a DICOMDIR."""
    root = tmp_path_factory.mktemp("dro")
    export = Export(root / "export")
    dro_study(export, "DRO_0_0", "P001")
    dro_study(export, "DRO_1_0", "P002")
    dro_study(export, "DRO_2_0", "P003", rtstruct=False)
    dro_study(export, "DRO_5_0", "P004")
    export.junk()
    return export, minimal_params(root / "params")


def test_scan_reads_an_export_by_content_and_says_so_in_one_line(dro_export):
    export, _ = dro_export
    result = run("scan", export.root, "--format", "tsv")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[:3] for r in rows] == [["P001", "ses-1", "18F-FDG"], ["P002", "ses-1", "18F-FDG"],
                                     ["P003", "ses-1", "18F-FDG"], ["P004", "ses-1", "Ga68-PSMA"]]
    assert rows[0][5] == "ok" and rows[2][5].startswith("waiting") and rows[2][4] == ""
    assert "names radiopharmaceutical 'Ga68-PSMA'" in rows[3][5]
    for row in rows:  # paths relative to the export, never absolute
        assert not row[3].startswith("/") and (Path(export.root) / row[3]).is_file()
    notes = [line for line in result.stderr.splitlines() if "DICOM export" in line]
    assert len(notes) == 1, result.stderr
    assert "4 non-DICOM skipped" in result.stderr and "1 PET series waiting for a mask" in result.stderr


def test_layout_dicom_says_nothing_about_detection(dro_export):
    export, _ = dro_export
    result = run("scan", export.root, "--layout", "dicom")
    assert result.exit_code == 0 and "reading it as a DICOM export" not in result.stderr


def test_extract_from_an_export_equals_extract_from_the_same_files_sorted_by_hand(tmp_path):
    """Keys and every value equal (the mask's hash too: one file, the same bytes); the SUV of the DROs is the
    IBSI-SUV reference (4.00 and 0.20 inside the ROI)."""
    export = Export(tmp_path / "export")
    dro_study(export, "DRO_0_0", "P001", "20240105")
    dro_study(export, "DRO_3_4", "P001", "20240901")  # the same patient's follow-up: ses-2
    dro_study(export, "DRO_1_0", "P002", "20230101")
    export.junk()
    cohort = sort_by_hand(export, tmp_path / "cohort", {0: ("P001", "ses-1", "FDG"), 2: ("P001", "ses-2", "FDG"),
                                                        4: ("P002", "ses-1", "FDG")})
    params = minimal_params(tmp_path / "params")
    tables = []
    for source, out in ((export.root, tmp_path / "out-export"), (cohort, tmp_path / "out-sorted")):
        result = run("extract", source, "-o", out, "--params-dir", params, "-j", "1")
        assert result.exit_code == 0, result.stderr
        # Provenance that names the files differs by design: their paths, and the series hash (names + contents).
        tables.append(api.read_table(out).drop(columns=["image_file", "mask_file", "image_sha256", "extracted_at"]))
    from_export, by_hand = tables
    assert list(from_export[["patient_id", "session", "tracer"]].itertuples(index=False)) == [
        ("P001", "ses-1", "18F-FDG"), ("P001", "ses-2", "18F-FDG"), ("P002", "ses-1", "18F-FDG")]
    pd.testing.assert_frame_equal(from_export, by_hand)
    assert np.allclose(from_export["suv_max"], 4.0, atol=1e-3)
    assert np.allclose(from_export["original_firstorder_Minimum"], 0.2, atol=1e-3)


def test_nightly_rerun_reads_only_what_changed_and_a_mask_that_arrives_is_extracted(tmp_path, monkeypatch):
    export = Export(tmp_path / "export")
    dro_study(export, "DRO_0_0", "P001")
    waiting, _, _ = dro_study(export, "DRO_1_0", "P002", rtstruct=False)
    export.junk()
    out, params = tmp_path / "out", minimal_params(tmp_path / "params")
    options = ExtractOptions(params_dir=params, jobs=1)
    first = api.extract(export.root, out, options)
    assert first.computed == 1 and [str(w.key) for w in first.waiting] == ["P002/ses-1/18F-FDG"]
    assert first.exit_code == 0  # waiting is not failing
    assert (out / dicom_index.INDEX_NAME).is_file()

    reads: list[Path] = []
    real = dicom_index.summarize
    monkeypatch.setattr(dicom_index, "summarize", lambda path, digest: reads.append(path) or real(path, digest))
    again = api.extract(export.root, out, options)
    assert reads == [] and again.computed == 0 and again.skipped == 1
    assert "0 read (new or changed)" in again.index_line

    # The mask arrives (an RTSTRUCT of the waiting series, copied from its DRO with the new series' UIDs).
    later = Export(export.root, rng=np.random.default_rng(99))
    mask_of = dro_study(later, "DRO_1_0", "P002")[1]
    for f in later.written[0].files:  # keep only the RTSTRUCT: the image is the one already there
        f.unlink()
    _point_rtstruct_at(mask_of.files[0], waiting.files[0])
    third = api.extract(export.root, out, options)
    assert [Path(p) for p in reads] == [mask_of.files[0]], reads
    assert third.computed == 1 and third.waiting == [] and third.exit_code == 0
    assert set(api.read_table(out)["patient_id"]) == {"P001", "P002"}

    waiting.files[3].unlink()  # a deleted file drops out of the index; the series now misses a slice
    fourth = api.extract(export.root, out, options)
    assert "1 gone" in fourth.index_line and fourth.failed_scans == 1
    assert "slice" in fourth.failures[0].message and not fourth.failures[0].file.startswith("/")


def _point_rtstruct_at(rtstruct: Path, image_file: Path) -> None:
    image = pydicom.dcmread(image_file, stop_before_pixels=True)
    ds = pydicom.dcmread(rtstruct)
    ds.StudyInstanceUID = image.StudyInstanceUID
    repoint_rtstruct(ds, image.StudyInstanceUID, image.SeriesInstanceUID, image.FrameOfReferenceUID)
    ds.save_as(rtstruct)


def test_status_counts_waiting_series_apart_from_failures(dro_export, tmp_path):
    export, params = dro_export
    out = tmp_path / "out"
    assert run("extract", export.root, "-o", out, "--params-dir", params, "-j", "1").exit_code == 1
    result = run("status", export.root, "-o", out, "--params-dir", params)
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["tracer", "done", "negative", "pending", "changed", "failed", "vanished", "waiting"]
    fdg = next(line for line in lines if line[0] == "18F-FDG")
    assert fdg[1:] == ["2", "0", "0", "0", "0", "0", "1"]
    assert any(line.startswith("FAILED P004/ses-1/Ga68-PSMA [discover]") for line in result.stdout.splitlines())
    assert "reading it as a DICOM export" in result.stderr
    listing = run("scan", export.root, "-o", out, "--params-dir", params, "--format", "jsonl")
    states = {json.loads(line)["patient_id"]: json.loads(line)["state"] for line in listing.stdout.splitlines()}
    assert states == {"P001": "done", "P002": "done", "P003": "waiting", "P004": "failed"}


# --- linking ------------------------------------------------------------------------------------------------------


def _scans(root: Path, **options) -> dict[str, object]:
    listing = api.scan_listing(root, ExtractOptions(layout="dicom", **options))
    found = {str(s.key): s for s, _ in listing.scans}
    found.update({f"waiting {w.key}": w for w in listing.waiting})
    return found


def test_the_attenuation_corrected_pet_is_the_image_never_the_mip_nac_or_secondary_capture(tmp_path):
    export = Export(tmp_path / "export")
    study, frame = generate_uid(), generate_uid()
    image, mask = box_volume()
    ac = synthetic_pet(export, "P1", study, frame, series_number=3, series_description="PET AC", volume=image)
    synthetic_pet(export, "P1", study, frame, series_number=4, series_description="PET NAC",
                  corrected_image=("DECY", "SCAT"), volume=image)
    synthetic_pet(export, "P1", study, frame, series_number=5, series_description="PET MIP",
                  image_type=("DERIVED", "SECONDARY", "MIP"), volume=image)
    rtstruct_on(export, ac, mask)
    scans = _scans(export.root)
    assert list(scans) == ["P1/ses-1/18F-FDG"]
    scan = scans["P1/ses-1/18F-FDG"]
    assert scan.problem is None and set(scan.image_files) == set(ac.files)


def test_a_mask_drawn_on_the_mip_is_refused_naming_the_series(tmp_path):
    export = Export(tmp_path / "export")
    study, frame = generate_uid(), generate_uid()
    image, mask = box_volume()
    synthetic_pet(export, "P1", study, frame, series_number=3, series_description="PET AC", volume=image)
    mip = synthetic_pet(export, "P1", study, frame, series_number=5, series_description="PET MIP",
                        image_type=("DERIVED", "SECONDARY", "MIP"), volume=image)
    rtstruct_on(export, mip, mask)
    scan = _scans(export.root)["P1/ses-1/18F-FDG"]
    assert "references Series Number 5 'PET MIP', a MIP or projection" in scan.problem[2]


def test_a_frame_only_rtstruct_belongs_to_the_series_whose_grid_it_fits(tmp_path):
    """PET (4 mm slices) and CT (2 mm) share a frame; contours drawn on the CT's 2 mm planes fit only the CT."""
    export = Export(tmp_path / "export")
    study, frame = generate_uid(), generate_uid()
    image, _ = box_volume()
    synthetic_pet(export, "P1", study, frame, volume=image)
    ct = synthetic_ct(export, "P1", study, frame, spacing_z=2.0)
    mask = np.zeros((32, 24, 24), np.uint8)
    mask[13:18, 9:14, 9:14] = 1  # 13 x 2 mm = 26 mm: between PET planes (24, 28 mm off the origin) at 26 and 34
    rtstruct_on(export, ct, mask, frame_only=True, spacing_z=2.0)
    scans = _scans(export.root)
    assert scans["P1/ses-1/CT"].problem is None and set(scans["P1/ses-1/CT"].image_files) == set(ct.files)
    assert "waiting P1/ses-1/18F-FDG" in scans  # the PET has no mask of its own


def test_a_frame_only_rtstruct_that_fits_two_series_is_refused_listing_them(tmp_path):
    export = Export(tmp_path / "export")
    study, frame = generate_uid(), generate_uid()
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", study, frame, volume=image, series_description="PET AC")
    synthetic_ct(export, "P1", study, frame, spacing_z=4.0)  # the CT on the PET's very planes
    rtstruct_on(export, pet, mask, frame_only=True)
    problems = [s.problem[2] for s in _scans(export.root).values() if getattr(s, "problem", None)]
    assert len(problems) == 1
    assert "could belong to 2 series (Series Number 1 'PET AC', Series Number 2 'CT')" in problems[0]


def test_a_pet_whose_only_mask_is_refused_as_ambiguous_fails_naming_the_mask_rather_than_waiting(tmp_path):
    """QA2 D5: two PET reconstructions on one frame and grid; the frame-only RTSTRUCT fits both, is refused, and
    the PET was listed as "waiting: no mask references this series yet". It is the scan's failure, naming it."""
    export = Export(tmp_path / "export")
    study, frame = generate_uid(), generate_uid()
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", study, frame, volume=image, series_number=3, series_description="PET AC")
    synthetic_pet(export, "P1", study, frame, volume=image, series_number=6, series_description="PET AC 2")
    rtstruct = rtstruct_on(export, pet, mask, frame_only=True).files[0]
    scans = _scans(export.root)
    assert list(scans) == ["P1/ses-1/18F-FDG"], list(scans)  # not waiting, not "P1/unknown"
    stage, file, message = scans["P1/ses-1/18F-FDG"].problem
    assert Path(file) == rtstruct and "RTSTRUCT could belong to 2 series (Series Number 3 'PET AC', " in message


def test_a_seg_references_its_series_and_another_patients_seg_is_refused(tmp_path):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image)
    seg_on(export, pet, mask)
    pet2 = synthetic_pet(export, "P2", generate_uid(), generate_uid(), volume=image)
    seg_on(export, pet2, mask, patient="OTHER")
    scans = _scans(export.root)
    assert scans["P1/ses-1/18F-FDG"].problem is None and scans["P1/ses-1/18F-FDG"].mask.is_file()
    problem = scans["P2/ses-1/18F-FDG"].problem
    assert "belongs to another patient than its referenced series" in problem[2]
    assert Path(problem[1]) == export.written[-1].files[0]  # the SEG is named


def test_a_mask_without_its_image_and_two_masks_on_one_series_are_failures_naming_files(tmp_path):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image)
    first, second = rtstruct_on(export, pet, mask), rtstruct_on(export, pet, mask)
    gone = synthetic_pet(export, "P2", generate_uid(), generate_uid(), volume=image)
    orphan = rtstruct_on(export, gone, mask)
    for f in gone.files:
        f.unlink()
    scans = _scans(export.root)
    assert "2 masks reference Series Number 1" in scans["P1/ses-1/18F-FDG"].problem[2]
    assert Path(scans["P1/ses-1/18F-FDG"].problem[1]) in (first.files[0], second.files[0])
    problem = scans["P2/unknown"].problem
    assert Path(problem[1]) == orphan.files[0] and "not in the export" in problem[2]


@pytest.mark.parametrize("radiopharmaceutical, code, default, tracer", [
    ("FDG -- fluorodeoxyglucose", None, None, "18F-FDG"),                      # GE's free text
    (None, ("SCT", "35321007", "Fluorodeoxyglucose F^18^"), None, "18F-FDG"),  # CID 4021, SNOMED CT
    (None, ("SRT", "C-B1031", "Fluorodeoxyglucose F^18^"), None, "18F-FDG"),   # the retired SNOMED RT code
    (None, ("SCT", "724025002", "Dotatate Ga^68^"), None, "68Ga-DOTATATE"),
    ("68Ga-DOTA-TATE", None, None, "68Ga-DOTATATE"),
    ("[68Ga]Ga-Pentixafor", None, None, "68Ga-pentixafor"),
    (None, None, "pentixafor", "68Ga-pentixafor"),                            # anonymised: --default-tracer
    (None, None, None, "unknown"),
])
def test_the_tracer_comes_from_the_radiopharmaceutical_sequence(tmp_path, radiopharmaceutical, code, default, tracer):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image,
                        radiopharmaceutical=radiopharmaceutical, code=code)
    rtstruct_on(export, pet, mask)
    scans = _scans(export.root, default_tracer=default)
    assert list(scans) == [f"P1/ses-1/{tracer}"]
    if tracer == "unknown":
        assert "names no radiopharmaceutical" in scans["P1/ses-1/unknown"].problem[2]
        assert "--default-tracer" in scans["P1/ses-1/unknown"].problem[2]


def test_patient_ids_are_mapped_and_sessions_named_in_date_order(tmp_path):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    for patient, when in (("MRN1", "20240510"), ("MRN1", "20231224"), ("MRN2", "20240101")):
        rtstruct_on(export, synthetic_pet(export, patient, generate_uid(), generate_uid(), volume=image,
                                          study_date=when), mask)
    ids = tmp_path / "ids.csv"
    ids.write_text("PatientID,patient_id\nMRN1,S-01\n")
    (export.root / "radiomx.toml").write_text('[sessions]\norder = ["baseline", "followup"]\n')
    scans = _scans(export.root, patient_ids=ids)
    assert sorted(scans) == ["S-01/baseline/18F-FDG", "S-01/followup/18F-FDG",
                             next(k for k in scans if k.startswith("unmapped-"))]
    assert set(scans["S-01/baseline/18F-FDG"].image_files) == set(export.written[2].files)  # 2023 comes first
    unmapped = next(s for k, s in scans.items() if k.startswith("unmapped-"))
    assert "not in --patient-ids ids.csv" in unmapped.problem[2] and "MRN2" not in unmapped.problem[2]


def test_bad_patient_ids_file_is_a_usage_error(tmp_path, dro_export):
    export, _ = dro_export
    ids = tmp_path / "ids.csv"
    ids.write_text("a,b\n1,2\n")
    result = run("scan", export.root, "--patient-ids", ids)
    assert result.exit_code == 2 and "PatientID and patient_id" in result.stderr


def test_tracer_codes_are_dicom_cid_4021s():
    """The registry's codes are those of PS3.16 CID 4021 as pydicom ships them (an independent copy)."""
    from pydicom.sr._cid_dict import cid_concepts
    from pydicom.sr._concepts_dict import concepts
    from pydicom.sr._snomed_dict import mapping

    from radiomx.tracers import TRACERS

    for tracer in TRACERS:
        for scheme, value in tracer.codes:
            sct = value if scheme == "SCT" else mapping["SRT"][value]
            names = [name for name, codes in concepts["SCT"].items() if sct in codes]
            assert names and names[0] in cid_concepts[4021]["SCT"], (tracer.name, scheme, value)


def test_the_fit_tolerance_is_the_mask_readers():
    from radiomx.discover import dicom_links
    from radiomx.inputs import masks

    assert dicom_links.FIT_TOL == masks.PLANE_TOL and dicom_links.ORIENTATION_ATOL == masks.ORIENTATION_ATOL


def test_the_index_keeps_no_path_uid_or_patient_id_in_clear(dro_export, tmp_path):
    export, _ = dro_export
    out = tmp_path / "out"
    out.mkdir()
    api.scan(export.root, ExtractOptions(layout="dicom"), out=out)
    blob = (out / dicom_index.INDEX_NAME).read_bytes()
    first = pydicom.dcmread(export.written[0].files[0], stop_before_pixels=True)
    for needle in (first.SeriesInstanceUID, first.StudyInstanceUID, first.FrameOfReferenceUID, "P001",
                   export.written[0].files[0].name, "20250101"):
        assert needle.encode() not in blob, needle
    rows = sqlite3.connect(out / dicom_index.INDEX_NAME).execute("SELECT count(*) FROM files").fetchone()[0]
    assert rows == sum(1 for p in export.root.rglob("*") if p.is_file())


# --- bad input: one line and a failure row naming the file, the rest of the export runs -----------------------------


def _good_and(export: Export, break_it) -> Path:
    """A good scan (P0) and a broken one (P1); returns the file the failure must name."""
    image, mask = box_volume()
    rtstruct_on(export, synthetic_pet(export, "P0", generate_uid(), generate_uid(), volume=image), mask)
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image)
    return break_it(export, pet, mask)


def truncated_file(export, pet, mask):
    rtstruct_on(export, pet, mask)
    path = pet.files[5]
    path.write_bytes(path.read_bytes()[:-300])
    return path


def corrupt_header(export, pet, mask):
    rtstruct_on(export, pet, mask)
    path = pet.files[0]
    path.write_bytes(path.read_bytes()[:132] + b"\x08\x00\x16\x00UI\xff\xff" + bytes(range(256)) * 3)
    return path


def missing_slice(export, pet, mask):
    rtstruct_on(export, pet, mask)
    pet.files[7].unlink()
    return pet.files[8]


def two_slices_at_one_position(export, pet, mask):
    rtstruct_on(export, pet, mask)
    ds = pydicom.dcmread(pet.files[6])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    copy = pet.files[6].with_name("DUPLICATE")
    ds.save_as(copy, enforce_file_format=True)
    return pet.files[6].parent


def seg_of_another_patient(export, pet, mask):
    return seg_on(export, pet, mask, patient="SOMEONE_ELSE").files[0]


def no_image_position(export, pet, mask):
    rtstruct_on(export, pet, mask)
    ds = pydicom.dcmread(pet.files[4])
    del ds.ImagePositionPatient
    ds.save_as(pet.files[4], enforce_file_format=True)
    return pet.files[4]


def unsupported_transfer_syntax(export, pet, mask):
    rtstruct_on(export, pet, mask)
    for path in pet.files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.HTJ2K  # no pydicom plugin decodes it here
        ds.PixelData = encapsulate([ds.PixelData])
        ds.save_as(path, enforce_file_format=True)
    return min(pet.files)  # the series' first file by path is named


def _without(written, *keywords: str) -> Path:
    path = written.files[0]
    ds = pydicom.dcmread(path)
    for keyword in keywords:
        delattr(ds, keyword)
    ds.save_as(path)
    return path


def seg_without_segment_sequence(export, pet, mask):
    """QA2 D2: read as a SEG naming no segment, the scan was "negative" (TMTV 0, exit 0)."""
    return _without(seg_on(export, pet, mask), "SegmentSequence")


def rtstruct_without_roi_names(export, pet, mask):
    """QA2 D2: ROIs were read unnamed (a ref-liver ROI became a lesion)."""
    return _without(rtstruct_on(export, pet, mask), "StructureSetROISequence")


def rtstruct_without_contours(export, pet, mask):
    return _without(rtstruct_on(export, pet, mask), "ROIContourSequence")


def slice_without(keyword: str):
    """QA2 D6: a slice that lost what groups it was left out, and the gap named its neighbour."""
    def damaged(export, pet, mask):
        rtstruct_on(export, pet, mask)
        return _without(Written([pet.files[7]], "", "", "pet"), keyword)
    damaged.__name__ = f"slice_without_{keyword}"
    return damaged


def seg_without_frame_of_reference(export, pet, mask):
    """QA2 D7: highdicom said "None is not a valid CoordinateSystemNames"."""
    return _without(seg_on(export, pet, mask), "FrameOfReferenceUID")


BAD_INPUTS = [
    (slice_without("SeriesInstanceUID"), "discover", "Series Instance UID (0020,000E) is missing: a damaged slice"),
    (slice_without("Modality"), "discover", "Modality (0008,0060) is missing in a PET image: a damaged file"),
    (slice_without("StudyInstanceUID"), "discover", "Study Instance UID (0020,000D) is missing: a damaged header"),
    (seg_without_frame_of_reference, "load", "SEG has no Frame of Reference UID (0020,0052)"),
    (seg_without_segment_sequence, "load", "SEG has no Segment Sequence (0062,0002) (Type 1); the file is damaged"),
    (rtstruct_without_roi_names, "load", "RTSTRUCT has no Structure Set ROI Sequence (3006,0020)"),
    (rtstruct_without_contours, "load", "RTSTRUCT has no ROI Contour Sequence (3006,0039)"),
    (truncated_file, "discover", "pixel data is cut short"),
    (corrupt_header, "discover", "not a readable DICOM file"),
    (missing_slice, "geometry", "a slice is missing"),
    (two_slices_at_one_position, "geometry", "holds a slice twice"),
    (seg_of_another_patient, "discover", "belongs to another patient"),
    (no_image_position, "geometry", "Image Position/Orientation (Patient) (0020,0032/0037) is missing"),
    (unsupported_transfer_syntax, "discover", "High-Throughput JPEG 2000"),
]


@pytest.mark.parametrize("break_it, stage, message", BAD_INPUTS, ids=[b.__name__ for b, _, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_a_failure_row_naming_the_file(tmp_path, break_it, stage, message):
    export = Export(tmp_path / "export")
    named = _good_and(export, break_it)
    out = tmp_path / "out"
    result = run("extract", export.root, "-o", out, "--params-dir", minimal_params(tmp_path / "params"), "-j", "1")
    assert result.exit_code == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("radiomx: FAILED")]
    relative = str(named.relative_to(export.root))
    assert len(failed) == 1 and failed[0].startswith(f"radiomx: FAILED P1/ses-1/18F-FDG [{stage}] "), result.stderr
    assert message in failed[0] and relative in failed[0], failed
    assert "Traceback" not in result.stderr and str(tmp_path) not in failed[0]
    failures = api.read_failures(out)
    assert list(failures["patient_id"]) == ["P1"] and relative in failures["file"].iloc[0] + failures["message"].iloc[0]
    assert list(api.read_table(out)["patient_id"]) == ["P0"]  # the rest of the export ran


def test_a_garbled_seg_is_a_failure_naming_it_not_a_patient_unnamed(tmp_path):
    """QA2 D7: a SEG whose header bytes were garbled became patient "unnamed-"; it is an unreadable file, named."""
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    seg = seg_on(export, synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image), mask).files[0]
    data = bytearray(seg.read_bytes())
    data[200:600] = np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8).tobytes()
    seg.write_bytes(bytes(data))
    result = run("extract", export.root, "-o", tmp_path / "out", "--params-dir", minimal_params(tmp_path / "params"))
    assert result.exit_code == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("radiomx: FAILED")]
    assert failed == [f"radiomx: FAILED unreadable [discover] {seg.relative_to(export.root)}: Study Instance UID "
                      "(0020,000D) is missing: a damaged header; re-export it"], result.stderr
    assert "unnamed" not in result.stderr


def test_a_well_formed_seg_whose_segments_are_empty_is_a_negative_scan(tmp_path):
    """The other side of QA2 D2: a negative scan is a well-formed mask with no lesion voxel, not a damaged file."""
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    path = seg_on(export, synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image), mask).files[0]
    ds = pydicom.dcmread(path)
    ds.PixelData = bytes(len(ds.PixelData))
    ds.save_as(path)
    out = tmp_path / "out"
    result = run("extract", export.root, "-o", out, "--params-dir", minimal_params(tmp_path / "params"), "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert "1 negative (no lesion in mask)" in result.stderr and not (out / "failures.parquet").exists()
    burden = api.read_table(out, which="burden")
    assert list(burden["lesion_count"]) == [0], burden


def test_export_flags_and_python_arguments_build_equal_options(dro_export, tmp_path, extract_options):
    seen = extract_options
    ids = tmp_path / "ids.csv"
    run("extract", dro_export[0].root, "-o", tmp_path / "out", "--layout", "dicom", "--patient-ids", ids,
        "--default-tracer", "fdg", "-j", "1")
    assert seen["options"] == ExtractOptions(layout="dicom", patient_ids=ids, default_tracer="18F-FDG", jobs=1)
    bad = run("scan", dro_export[0].root, "--default-tracer", "ct")
    assert bad.exit_code == 2 and "not a known PET tracer" in bad.stderr


def test_scan_of_an_export_imports_no_image_feature_or_table_library(dro_export):
    from .test_light_commands import _imported

    assert _imported("scan", str(dro_export[0].root)) == set()


def test_radiomx_qc_finds_an_exports_scans_again(tmp_path):
    """``radiomx qc OUT`` rediscovers the scans from the run log: the export's layout and options are recorded."""
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    rtstruct_on(export, synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image,
                                      radiopharmaceutical=None), mask)
    out = tmp_path / "out"
    extract = run("extract", export.root, "-o", out, "--layout", "dicom", "--default-tracer", "fdg", "-j", "1",
                  "--params-dir", minimal_params(tmp_path / "params"))
    assert extract.exit_code == 0, extract.stderr
    qc = run("qc", out)
    assert qc.exit_code == 0, qc.stderr
    assert (out / "qc" / "P1" / "ses-1" / "18F-FDG.png").is_file()


def test_a_configuration_error_on_an_export_stops_before_out_exists(dro_export, tmp_path):
    """The first run's index is built in memory and saved only once OUT is created for real."""
    result = run("extract", dro_export[0].root, "-o", tmp_path / "out", "--params-dir", tmp_path / "nowhere")
    assert result.exit_code == 2 and not (tmp_path / "out").exists(), result.stderr
