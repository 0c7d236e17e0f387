"""Messy DICOM exports built from real files: the IBSI-SUV DROs (real-style PET series with RTSTRUCTs), the dcmqi CT
with its SEG, and the synthetic series of ``tests/corpus/dicom_pet.py``, copied under random file names without
suffixes into nested folders, with junk files and a DICOMDIR, as a PACS or CD export delivers them.

``Export.add_series`` keeps, for every series it writes, where its files went, so that a test can also sort the same
files by hand into the default layout (``sort_by_hand``) and compare the two runs' tables.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from .conftest import shared_data

DICOMDIR = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests" / "DICOMDIR"


def dro_files(name: str) -> tuple[list[Path], Path]:
    """The PET slices and the RTSTRUCT of one IBSI-SUV DRO."""
    folder = shared_data("ibsi_suv_dro", "DRO", name)
    return sorted((folder / "PT").glob("*.dcm")), next((folder / "RS").glob("*.dcm"))


@dataclass
class Written:
    """One series (or mask) as written into the export: its files there, for sorting by hand."""

    files: list[Path]
    patient: str
    study_date: str
    kind: str  # "pet", "ct", "seg" or "rtstruct"


@dataclass
class Export:
    root: Path
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    written: list[Written] = field(default_factory=list)

    def _name(self) -> str:
        """A random name without suffix (exports name files by number or UID)."""
        return "".join(self.rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), size=8))

    def _folder(self) -> Path:
        depth = int(self.rng.integers(1, 4))
        folder = self.root.joinpath(*(f"D{self.rng.integers(0, 99):02d}" for _ in range(depth)))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def add(self, datasets: list[pydicom.Dataset], kind: str, one_folder: bool = True) -> Written:
        """Write ``datasets`` under random names, in one random folder (or each in its own)."""
        folder = self._folder()
        files = []
        for ds in datasets:
            path = (folder if one_folder else self._folder()) / self._name()
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
        written = Written(files, str(datasets[0].PatientID), str(datasets[0].get("StudyDate", "")), kind)
        self.written.append(written)
        return written

    def junk(self) -> None:
        """What exports carry besides DICOM: a README, macOS droppings, an empty file, a DICOMDIR."""
        (self.root / "README.TXT").write_text("Exported by PACS\n")
        (self.root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(200))
        (self._folder() / "EMPTY").write_bytes(b"")
        (self._folder() / "notes.pdf").write_bytes(b"%PDF-1.4\n" + bytes(300))
        shutil.copy(DICOMDIR, self.root / "DICOMDIR")


def restamp(datasets: list[pydicom.Dataset], **values) -> list[pydicom.Dataset]:
    for ds in datasets:
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return datasets


def dro_study(export: Export, dro: str, patient: str, study_date: str = "20250101", *, rtstruct: bool = True,
              series_description: str | None = None, **extra) -> tuple[Written, Written | None, list]:
    """A DRO's PET series as a study of ``patient`` (new study, series, frame and SOP UIDs, so that one DRO can make
    several studies), with its RTSTRUCT re-pointed at the new series."""
    slices, rs = dro_files(dro)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    datasets = [pydicom.dcmread(f) for f in slices]
    sop_map = {}
    for ds in datasets:
        old = ds.SOPInstanceUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        sop_map[old] = ds.SOPInstanceUID
    # Only the Study Date moves (it orders a patient's studies): the series' own times keep the DRO's SUV inputs.
    restamp(datasets, PatientID=patient, StudyInstanceUID=study, SeriesInstanceUID=series, FrameOfReferenceUID=frame,
            StudyDate=study_date, **extra)
    if series_description is not None:
        restamp(datasets, SeriesDescription=series_description)
    image = export.add(datasets, "pet")
    mask = None
    if rtstruct:
        rs_ds = pydicom.dcmread(rs)
        rs_ds.PatientID, rs_ds.StudyInstanceUID, rs_ds.StudyDate = patient, study, study_date
        rs_ds.SOPInstanceUID = rs_ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        rs_ds.SeriesInstanceUID = generate_uid()
        repoint_rtstruct(rs_ds, study, series, frame, sop_map)
        mask = export.add([rs_ds], "rtstruct")
    return image, mask, datasets


def repoint_rtstruct(ds: pydicom.Dataset, study: str, series: str, frame: str, sop_map: dict | None = None) -> None:
    """Make an RTSTRUCT reference another study, series and frame (and, with ``sop_map``, the new SOP Instance UIDs
    of its contours' images)."""
    sop_map = sop_map or {}
    for ref in ds.ReferencedFrameOfReferenceSequence:
        ref.FrameOfReferenceUID = frame
        for st in ref.RTReferencedStudySequence:
            st.ReferencedSOPInstanceUID = study
            for se in st.RTReferencedSeriesSequence:
                se.SeriesInstanceUID = series
                for item in se.get("ContourImageSequence") or []:
                    item.ReferencedSOPInstanceUID = sop_map.get(item.ReferencedSOPInstanceUID, generate_uid())
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = frame
    for roi in ds.ROIContourSequence:
        for contour in roi.get("ContourSequence") or []:
            for item in contour.get("ContourImageSequence") or []:
                item.ReferencedSOPInstanceUID = sop_map.get(item.ReferencedSOPInstanceUID, generate_uid())


def sort_by_hand(export: Export, cohort: Path, keys: dict[int, tuple[str, str, str]]) -> Path:
    """The default layout a person would sort the export into: ``keys`` maps the index of an image in
    ``export.written`` to its (patient, session, tracer folder); its mask is the written entry right after it."""
    for index, (patient, session, tracer) in keys.items():
        image, mask = export.written[index], export.written[index + 1]
        folder = cohort / patient / session / tracer
        (folder / "pet").mkdir(parents=True)
        for k, f in enumerate(image.files):
            os.link(f, folder / "pet" / f"{k:04d}.dcm")
        os.link(mask.files[0], folder / ("rtstruct.dcm" if mask.kind == "rtstruct" else "seg.dcm"))
    return cohort


def shift_date(text: str, days: int) -> str:
    d = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    return date.fromordinal(d.toordinal() + days).strftime("%Y%m%d")


# --- synthetic series (tests/corpus/dicom_pet.py) placed in an export ------------------------------------------------

SPACING = (4.0, 4.0, 4.0)
ORIGIN = (-46.0, -46.0, 12.0)


def box_volume(shape=(16, 24, 24), seed=0, box=(slice(6, 10), slice(9, 14), slice(9, 14))):
    """A PET-like volume (SUV) with one hot box: a lesion whose RTSTRUCT contours are exact (``rectangle_contours``)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(1.0, 0.1, shape)
    mask = np.zeros(shape, np.uint8)
    mask[box] = 1
    image[mask > 0] += 5.0 + rng.normal(0, 0.3, int(mask.sum()))
    return image, mask


def synthetic_pet(export: Export, patient: str, study: str, frame: str, *, study_date: str = "20240301",
                  radiopharmaceutical: str | None = "Fluorodeoxyglucose F^18^", code: tuple | None = None,
                  volume: np.ndarray | None = None, **series) -> Written:
    """A PET series of ``patient`` (``write_pet_series``, any keyword of it), under random names in one random
    folder; ``radiopharmaceutical`` None drops the radiopharmaceutical's name, ``code`` adds a code sequence."""
    from .corpus.dicom_pet import write_pet_series

    image = volume if volume is not None else box_volume()[0]
    names = [export._name() for _ in range(len(image))]
    files = write_pet_series(export._folder(), image, SPACING, origin=ORIGIN, names=names, study_uid=study,
                             frame_of_reference_uid=frame, **series)
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.StudyDate, ds.SeriesDate, ds.AcquisitionDate = patient, study_date, study_date, study_date
        rp = ds.RadiopharmaceuticalInformationSequence[0]
        rp.RadiopharmaceuticalStartDateTime = study_date + rp.RadiopharmaceuticalStartDateTime[8:]
        if radiopharmaceutical is None:
            del rp.Radiopharmaceutical
        else:
            rp.Radiopharmaceutical = radiopharmaceutical
        if code is not None:
            item = pydicom.Dataset()
            item.CodingSchemeDesignator, item.CodeValue, item.CodeMeaning = code
            rp.RadiopharmaceuticalCodeSequence = pydicom.Sequence([item])
        ds.save_as(path, enforce_file_format=True)
    written = Written(files, patient, study_date, "pet")
    export.written.append(written)
    return written


def synthetic_ct(export: Export, patient: str, study: str, frame: str, *, spacing_z: float = 2.0,
                 study_date: str = "20240301") -> Written:
    """A CT of the same extent as ``synthetic_pet`` (thinner slices), in the same frame of reference."""
    from .corpus.dicom_pet import write_ct_series

    n = int(16 * SPACING[2] / spacing_z)
    folder = export._folder() / export._name()
    files = write_ct_series(folder, np.zeros((n, 24, 24)), (SPACING[0], SPACING[1], spacing_z), origin=ORIGIN,
                            frame_of_reference_uid=frame, file_prefix="ct")
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.StudyInstanceUID, ds.StudyDate = patient, study, study_date
        ds.save_as(path, enforce_file_format=True)
    written = Written(files, patient, study_date, "ct")
    export.written.append(written)
    return written


def rtstruct_on(export: Export, image: Written, mask: np.ndarray, *, frame_only: bool = False,
                patient: str | None = None, spacing_z: float | None = None) -> Written:
    """An RTSTRUCT of ``mask`` drawn on ``image``: with its RT Referenced Series Sequence, or naming only the frame
    of reference (``frame_only``), as CT planning systems often write them."""
    from .corpus.dicom_pet import rectangle_contours, write_rtstruct

    first = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    spacing = (SPACING[0], SPACING[1], spacing_z or SPACING[2])
    zs = [ORIGIN[2] + k * spacing[2] for k in range(len(mask))]
    path = export._folder() / export._name()
    write_rtstruct(path, rectangle_contours(mask, spacing, ORIGIN, zs))
    ds = pydicom.dcmread(path)
    ds.PatientID, ds.StudyInstanceUID = patient or str(first.PatientID), first.StudyInstanceUID
    ref = pydicom.Dataset()
    ref.FrameOfReferenceUID = first.FrameOfReferenceUID
    if not frame_only:
        series, study = pydicom.Dataset(), pydicom.Dataset()
        series.SeriesInstanceUID = first.SeriesInstanceUID
        study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        study.ReferencedSOPInstanceUID = first.StudyInstanceUID
        study.RTReferencedSeriesSequence = pydicom.Sequence([series])
        ref.RTReferencedStudySequence = pydicom.Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = pydicom.Sequence([ref])
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
    ds.save_as(path, enforce_file_format=True)
    written = Written([path], ds.PatientID, "", "rtstruct")
    export.written.append(written)
    return written


def seg_on(export: Export, image: Written, mask: np.ndarray, patient: str | None = None) -> Written:
    """A DICOM SEG (highdicom) of ``mask`` on ``image``'s slices, referencing its series."""
    from .corpus.dicom_pet import write_seg

    path = export._folder() / export._name()
    write_seg(path, image.files, mask)
    if patient is not None:
        ds = pydicom.dcmread(path)
        ds.PatientID = patient
        ds.save_as(path)
    written = Written([path], patient or "", "", "seg")
    export.written.append(written)
    return written
