"""A minimal but valid synthetic PET DICOM series, written from scratch with pydicom (no reference data needed).

``write_pet_series`` stores a (z, y, x) volume of SUV values as one PET Image Storage file per slice: int16 stored
values with a per-slice RescaleSlope, in Bq/mL (Units BQML, DecayCorrection START to the Series Time), with the
patient weight, dose, injection time and F-18 half-life radiomx needs to turn them back into the same SUVbw:

    Bq/mL = SUV x dose decayed to the series time / weight [g]

Geometry: identity orientation, slice k at z = origin_z + k x spacing_z, so the volume is on the grid of a NIfTI
written with the same spacing, origin and identity direction (``radiomx.inputs.dicom`` takes the origin from the first
slice's ImagePositionPatient). Keyword arguments break one thing at a time for the corpus.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
F18_HALF_LIFE_S = 6586.2
#: Default scan: series (= acquisition) at 10:00, injection one hour earlier.
SERIES_TIME = datetime(2024, 3, 1, 10, 0, 0)
UPTAKE_S = 3600.0
#: Keep a margin below int16's 32767 so rounding never overflows.
INT16_TOP = 32000


def bqml_per_suv(weight_kg: float, dose_bq: float, uptake_s: float, half_life_s: float = F18_HALF_LIFE_S) -> float:
    """Activity concentration (Bq/mL) of SUVbw 1: dose decayed to the reference time / weight in g."""
    return dose_bq * math.exp(-math.log(2.0) * uptake_s / half_life_s) / (weight_kg * 1000.0)


def _ds(value: float) -> str:
    """A decimal string within DICOM's 16 characters."""
    return f"{value:.9g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.8e}"


def _slice_values(values: np.ndarray) -> tuple[np.ndarray, str]:
    """int16 stored values and the RescaleSlope (as written) that map them back to ``values``."""
    top = float(np.max(np.abs(values)))
    slope_text = _ds(top / INT16_TOP if top > 0 else 1.0)
    stored = np.round(values / float(slope_text)).astype(np.int16)
    return stored, slope_text


def write_pet_series(
    folder: Path,
    volume_zyx: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    weight_kg: float | None = 70.0,
    dose_bq: float | None = 3.7e8,
    units: str = "BQML",
    series_time: datetime = SERIES_TIME,
    injection_time: datetime | None = None,
    series_number: int = 1,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    file_prefix: str = "slice",
) -> list[Path]:
    """Write ``volume_zyx`` (SUVbw values) as a PET DICOM series into ``folder``; returns the files in z order.

    ``spacing`` and ``origin`` are (x, y, z) in mm, as SimpleITK gives them. ``weight_kg``/``dose_bq`` None leave
    Patient Weight / Radionuclide Total Dose out; ``injection_time`` defaults to one hour before ``series_time``.
    The Bq/mL values always use weight 70 kg and dose 3.7e8 Bq when those are left out, so only the header changes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume_zyx, dtype=np.float64)
    injection = injection_time if injection_time is not None else series_time - timedelta(seconds=UPTAKE_S)
    uptake = (series_time - injection).total_seconds()
    scale = bqml_per_suv(weight_kg or 70.0, dose_bq or 3.7e8, uptake)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    date_text, time_text = series_time.strftime("%Y%m%d"), series_time.strftime("%H%M%S")
    files = []
    for k, plane in enumerate(volume):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / f"{file_prefix}{k:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = PET_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "PT"
        ds.PatientName = "Corpus^Synthetic"
        ds.PatientID = "CORPUS"
        ds.PatientSex = "O"
        if weight_kg is not None:
            ds.PatientWeight = _ds(weight_kg)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date_text
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time_text
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.ImageIndex = k + 1
        ds.NumberOfSlices = len(volume)
        ds.Units = units
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM"]
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.ActualFrameDuration = 300000
        ds.FrameReferenceTime = 0
        rp = Dataset()
        rp.Radiopharmaceutical = "Fluorodeoxyglucose F^18^"
        rp.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
        rp.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
        if dose_bq is not None:
            rp.RadionuclideTotalDose = _ds(dose_bq)
        rp.RadionuclideHalfLife = _ds(F18_HALF_LIFE_S)
        code = Dataset()
        code.CodeValue = "C-111A1"
        code.CodingSchemeDesignator = "SRT"
        code.CodeMeaning = "^18^Fluorine"
        rp.RadionuclideCodeSequence = Sequence([code])
        ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(origin[2] + k * spacing[2])]
        ds.SliceLocation = _ds(origin[2] + k * spacing[2])
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
        ds.SliceThickness = _ds(spacing[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        stored, slope = _slice_values(plane * scale)
        ds.RescaleSlope = slope
        ds.RescaleIntercept = "0"
        ds.RescaleType = "BQML"
        ds.PixelData = stored.tobytes()
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files
