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
    restamp(datasets, PatientID=patient, StudyInstanceUID=study, SeriesInstanceUID=series, FrameOfReferenceUID=frame,
            StudyDate=study_date, SeriesDate=study_date, AcquisitionDate=study_date, **extra)
    if series_description is not None:
        restamp(datasets, SeriesDescription=series_description)
    image = export.add(datasets, "pet")
    mask = None
    if rtstruct:
        rs_ds = pydicom.dcmread(rs)
        rs_ds.PatientID, rs_ds.StudyInstanceUID, rs_ds.StudyDate = patient, study, study_date
        rs_ds.SOPInstanceUID = rs_ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        rs_ds.SeriesInstanceUID = generate_uid()
        for ref in rs_ds.ReferencedFrameOfReferenceSequence:
            ref.FrameOfReferenceUID = frame
            for st in ref.RTReferencedStudySequence:
                st.ReferencedSOPInstanceUID = study
                for se in st.RTReferencedSeriesSequence:
                    se.SeriesInstanceUID = series
                    for item in se.get("ContourImageSequence") or []:
                        item.ReferencedSOPInstanceUID = sop_map.get(item.ReferencedSOPInstanceUID, generate_uid())
        for roi in rs_ds.StructureSetROISequence:
            roi.ReferencedFrameOfReferenceUID = frame
        for roi in rs_ds.ROIContourSequence:
            for contour in roi.get("ContourSequence") or []:
                for item in contour.get("ContourImageSequence") or []:
                    item.ReferencedSOPInstanceUID = sop_map.get(item.ReferencedSOPInstanceUID, generate_uid())
        mask = export.add([rs_ds], "rtstruct")
    return image, mask, datasets


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
