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
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
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
    z_positions: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
    decay_correction: str = "START",
    corrected_image: Sequence[str] = ("DECY", "ATTN", "SCAT", "DTIM"),
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY"),
    series_description: str = "PET WB",
) -> list[Path]:
    """Write ``volume_zyx`` (SUVbw values) as a PET DICOM series into ``folder``; returns the files in z order.

    ``spacing`` and ``origin`` are (x, y, z) in mm, as SimpleITK gives them. ``weight_kg``/``dose_bq`` None leave
    Patient Weight / Radionuclide Total Dose out; ``injection_time`` defaults to one hour before ``series_time``.
    The Bq/mL values always use weight 70 kg and dose 3.7e8 Bq when those are left out, so only the header changes.

    Real-export variants: ``z_positions`` (mm, one per slice) replace ``origin_z + k x spacing_z`` (jitter, gaps);
    ``names`` replace the file names (no ``.dcm``, reverse or random order against z); ``units="GML"`` stores the
    SUVbw values themselves (SUV Type BW); ``decay_correction``, ``corrected_image`` (NAC: no ATTN),
    ``image_type`` (a MIP) and ``series_description`` go to their tags as given.
    """
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume_zyx, dtype=np.float64)
    injection = injection_time if injection_time is not None else series_time - timedelta(seconds=UPTAKE_S)
    uptake = (series_time - injection).total_seconds()
    scale = bqml_per_suv(weight_kg or 70.0, dose_bq or 3.7e8, uptake) if units == "BQML" else 1.0
    if decay_correction == "ADMIN" and units == "BQML":  # Bq/mL decay-corrected to the injection: no decay
        scale = bqml_per_suv(weight_kg or 70.0, dose_bq or 3.7e8, 0.0)
    zs = list(z_positions) if z_positions is not None else [origin[2] + k * spacing[2] for k in range(len(volume))]
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
        path = folder / (names[k] if names is not None else f"{file_prefix}{k:04d}.dcm")
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
        ds.DecayCorrection = decay_correction
        ds.CorrectedImage = list(corrected_image)
        ds.ImageType = list(image_type)
        ds.SeriesDescription = series_description
        if units == "GML":
            ds.SUVType = "BW"
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
        rp.RadionuclideCodeSequence = DicomSequence([code])
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(zs[k])]
        ds.SliceLocation = _ds(zs[k])
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
        ds.RescaleType = units
        ds.PixelData = stored.tobytes()
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


# --- real-export variants: jittered positions, CT, RTSTRUCT and SEG masks -------------------------------------------

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def jittered_positions(n: int, spacing: float, z0: float, rng: np.random.Generator,
                       odd_gaps: Sequence[float]) -> list[float]:
    """``n`` slice positions whose gaps are ``spacing`` except ``odd_gaps`` (mm) at random places, as a scanner's
    position rounding leaves them (GE: 3.27 mm with four 3.29 and one 3.19 mm gap)."""
    gaps = np.full(n - 1, spacing)
    gaps[rng.choice(n - 1, size=len(odd_gaps), replace=False)] = odd_gaps
    return [z0, *(z0 + np.cumsum(gaps)).tolist()]


def write_ct_series(folder: Path, hu_zyx: np.ndarray, spacing: tuple[float, float, float], *,
                    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
                    z_positions: Sequence[float] | None = None, series_number: int = 2,
                    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"), series_description: str = "CT",
                    frame_of_reference_uid: str | None = None, file_prefix: str = "ct") -> list[Path]:
    """A CT series (HU = stored - 1024, int16) in the geometry conventions of ``write_pet_series``."""
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(hu_zyx, dtype=np.float64)
    zs = list(z_positions) if z_positions is not None else [origin[2] + k * spacing[2] for k in range(len(volume))]
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), frame_of_reference_uid or generate_uid()
    files = []
    for k, plane in enumerate(volume):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop_uid = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / f"{file_prefix}{k:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CT_IMAGE_STORAGE, sop_uid, "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientSex = "Corpus^Synthetic", "CORPUS", "O"
        ds.StudyDate = ds.SeriesDate = SERIES_TIME.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = SERIES_TIME.strftime("%H%M%S")
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.ImageType, ds.SeriesDescription = list(image_type), series_description
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(zs[k])]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.SliceThickness = _ds(spacing[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "-1024", "HU"
        ds.PixelData = np.round(plane + 1024).astype(np.int16).tobytes()
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _significant(value: float, digits: int | None) -> str:
    return _ds(value) if digits is None else f"{value:.{digits}g}"


def rectangle_contours(labels_zyx: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float],
                       z_positions: Sequence[float], *, z_shift_mm: float = 0.0) -> dict[int, list[np.ndarray]]:
    """Per label, one closed square contour per slice around its voxels (each label must be a box per slice),
    drawn on the voxel edges in mm at the slice's position (+ ``z_shift_mm``): rasterized by voxel centres it gives
    back exactly those voxels."""
    out: dict[int, list[np.ndarray]] = {}
    for label in (int(v) for v in np.unique(labels_zyx) if v):
        for k in sorted(set(np.nonzero(labels_zyx == label)[0].tolist())):
            ys, xs = np.nonzero(labels_zyx[k] == label)
            assert (labels_zyx[k, ys.min():ys.max() + 1, xs.min():xs.max() + 1] == label).all(), "not a box"
            x0, x1 = origin[0] + (xs.min() - 0.5) * spacing[0], origin[0] + (xs.max() + 0.5) * spacing[0]
            y0, y1 = origin[1] + (ys.min() - 0.5) * spacing[1], origin[1] + (ys.max() + 0.5) * spacing[1]
            z = z_positions[k] + z_shift_mm
            out.setdefault(label, []).append(np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]))
    return out


def write_rtstruct(path: Path, rois: dict[int, list[np.ndarray]], *, digits: int | None = None,
                   roi_names: dict[int, str] | None = None, roi_types: dict[int, str] | None = None) -> Path:
    """An RTSTRUCT from scratch: ROI number -> CLOSED_PLANAR contours ((n, 3) points, mm); ``digits`` writes the
    coordinates with that many significant digits, as DS strings of real exports are. ``roi_names`` (default
    "lesion N") and ``roi_types`` (RT ROI Interpreted Type, in an RT ROI Observations Sequence as planning systems
    write it) name the ROIs."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_STORAGE, sop_uid, "RTSTRUCT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.StructureSetLabel = "Corpus^Synthetic", "CORPUS", "lesions"
    rois_seq, contours_seq = [], []
    for number, contours in rois.items():
        roi = Dataset()
        roi.ROINumber, roi.ROIGenerationAlgorithm = number, "MANUAL"
        roi.ROIName = (roi_names or {}).get(number, f"lesion {number}")
        rois_seq.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        sequence = []
        for points in contours:
            contour = Dataset()
            contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
            contour.ContourData = [_significant(float(v), digits) for v in np.asarray(points).ravel()]
            sequence.append(contour)
        item.ContourSequence = DicomSequence(sequence)
        contours_seq.append(item)
    ds.StructureSetROISequence, ds.ROIContourSequence = DicomSequence(rois_seq), DicomSequence(contours_seq)
    if roi_types:
        observations = []
        for index, (number, kind) in enumerate(sorted(roi_types.items()), start=1):
            item = Dataset()
            item.ObservationNumber, item.ReferencedROINumber = index, number
            item.RTROIInterpretedType, item.ROIInterpreter = kind, ""
            observations.append(item)
        ds.RTROIObservationsSequence = DicomSequence(observations)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_seg(path: Path, source_files: Sequence[Path], labels_zyx: np.ndarray, *, digits: int | None = None,
              frame_z: Sequence[float] | None = None, names: dict[int, str] | None = None) -> Path:
    """A BINARY DICOM SEG (segment k = label k) written by highdicom on the source series, then edited as real
    writers leave it: ``digits`` rounds every position and spacing to that many significant digits (dcmqi/DCMTK
    write 7); ``frame_z`` moves the frames of source slice k to z = ``frame_z[k]`` (dcmqi writes frames on ITK's
    uniform grid of the source, not at its jittered positions); ``names``: Segment Label per label (default
    ``lesion <k>``; ``ref-liver`` makes a reference region)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f) for f in source_files]
    for ds in sources:  # type-2 attributes highdicom copies from the sources
        for keyword in ("PatientBirthDate", "AccessionNumber", "ReferringPhysicianName", "StudyID"):
            if keyword not in ds:
                setattr(ds, keyword, "")
    source_z = np.array([float(ds.ImagePositionPatient[2]) for ds in sources])
    n = int(labels_zyx.max())
    descriptions = [hd.seg.SegmentDescription(
        segment_number=k, segment_label=(names or {}).get(k, f"lesion {k}"),
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for k in range(1, n + 1)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack([labels_zyx == k for k in range(1, n + 1)], axis=-1),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=100, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="radiomx tests", manufacturer_model_name="t", software_versions="0", device_serial_number="0")
    for item in seg.PerFrameFunctionalGroupsSequence:
        position = item.PlanePositionSequence[0]
        xyz = [float(v) for v in position.ImagePositionPatient]
        if frame_z is not None:
            xyz[2] = float(frame_z[int(np.argmin(np.abs(source_z - xyz[2])))])
        position.ImagePositionPatient = [_significant(v, digits) for v in xyz]
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.PixelSpacing = [_significant(float(v), digits) for v in measures.PixelSpacing]
    for keyword in ("SliceThickness", "SpacingBetweenSlices"):
        if keyword in measures:
            setattr(measures, keyword, _significant(float(getattr(measures, keyword)), digits))
    seg.save_as(path)
    return path


def write_named_seg(path: Path, source_files: Sequence[Path], segments: dict[int, tuple[str, np.ndarray]], *,
                    categories: dict[int, object] | None = None) -> Path:
    """A BINARY DICOM SEG written by highdicom whose segments may overlap: Segment Number -> (Segment Label,
    boolean (z, y, x) mask on the source series). ``categories``: Segmented Property Category codes (highdicom
    ``codes``) per segment, default SCT Tissue; the property type is Tissue."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f) for f in source_files]
    for ds in sources:  # type-2 attributes highdicom copies from the sources
        for keyword in ("PatientBirthDate", "AccessionNumber", "ReferringPhysicianName", "StudyID"):
            if keyword not in ds:
                setattr(ds, keyword, "")
    numbers = sorted(segments)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=k, segment_label=segments[k][0],
        segmented_property_category=(categories or {}).get(k, codes.SCT.Tissue),
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for k in numbers]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack([segments[k][1] for k in numbers], axis=-1).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=100, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="radiomx tests", manufacturer_model_name="t", software_versions="0", device_serial_number="0")
    seg.save_as(path)
    return path
