"""What the DICOM-export index keeps of one file: its kind and the header values linking needs, never a pixel.

Why a summary and not the header: the index lives in OUT, and OUT holds no PHI. So identifiers are kept only as
keyed digests (``Digest``: HMAC-SHA256 with a secret of this OUT's index; enough to group patient -> study -> series
and to follow references; never shown). A plain SHA-256 of a PatientID or UID would be reversible by anyone
holding the hospital's list of IDs (hash each, compare); without the secret, a digest names nothing. Dates and
names are not kept at all, and what is kept in clear is what a message may show (Series Number and Description,
the latter with dates and UIDs redacted) or what is no identifier (modality, image type, geometry, the
radiopharmaceutical, its free text redacted likewise).
The patient's own PatientID and the study's date are read again from one file per study when the export is
linked (``dicom_export``), and never leave memory.

Kinds: ``image`` (PET or CT image storage), ``seg`` (DICOM SEG), ``rtstruct``, ``dicomdir``, ``other`` (any other
DICOM object: secondary capture, SR, dose, ...), ``nondicom`` (no ``DICM`` after the 128-byte preamble: README.TXT,
.DS_Store, empty files) and ``unreadable`` (says ``DICM`` but its header cannot be parsed). A file of a known kind
may still carry a ``problem`` (pixel data shorter than its header says: a truncated copy).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from radiomx.inputs.organ_names import class_of_code, is_organ_class
from radiomx.inputs.paths import ENDS_EARLY, is_dicom_file, truncated_pixels
from radiomx.quiet import pydicom_quiet
from radiomx.records import redact

IMAGE, SEG, RTSTRUCT, DICOMDIR, OTHER, NONDICOM, UNREADABLE = (
    "image", "seg", "rtstruct", "dicomdir", "other", "nondicom", "unreadable")
#: PET and CT image storage: the only images a scan is measured on (PS3.4 Annex B). Secondary captures
#: (1.2.840.10008.5.1.4.1.1.7.*) of a PET are never one, whatever their Modality says.
IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.128": "PET", "1.2.840.10008.5.1.4.1.1.130": "enhanced PET",
    "1.2.840.10008.5.1.4.1.1.128.1": "enhanced PET", "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "enhanced CT", "1.2.840.10008.5.1.4.1.1.2.2": "enhanced CT",
}
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
MEDIA_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Text values kept: what messages name a series by, and what chooses the series to measure
#: (``radiomx.inputs.series_choice``). Free text (``FREE_TEXT``) is kept redacted (``records.redact``: dates and
#: UIDs hidden), since sites write dates into it ("PET WB AC 2024-01-10").
TEXT_KEYWORDS = ("Modality", "SeriesDescription")
FREE_TEXT = ("SeriesDescription",)
LIST_KEYWORDS = ("ImageType", "CorrectedImage")
#: Type 1 attributes of the Image Pixel module (PS3.3 C.7.6.3) without which no slice can be decoded.
PIXEL_MODULE = {"Rows": "(0028,0010)", "Columns": "(0028,0011)", "BitsAllocated": "(0028,0100)",
                "BitsStored": "(0028,0101)", "PixelRepresentation": "(0028,0103)", "SamplesPerPixel": "(0028,0002)",
                "PhotometricInterpretation": "(0028,0004)"}
#: A UID as PS3.5 9.1 allows it: digits and dots, at most 64 characters.
_UID = re.compile(r"[0-9][0-9.]{0,63}")
#: Contour points kept per RTSTRUCT (one per contour): enough to tell which grid the contours were drawn on.
MAX_CONTOUR_POINTS = 5000


class Digest:
    """A stable stand-in for an identifier (UID, PatientID, a path naming UIDs): the first ``length`` hex digits of
    its HMAC-SHA256 under ``secret`` (RFC 2104), "" for none. One secret per index (``dicom_index``): digests are
    stable between runs on one OUT, and cannot be matched against a list of IDs without the secret."""

    def __init__(self, secret: bytes, length: int = 20) -> None:
        self._secret, self._length = secret, length

    def __call__(self, value: Any) -> str:
        text = str(value or "").strip()
        if not text:
            return ""
        code = hmac.new(self._secret, text.encode("utf-8", "surrogateescape"), hashlib.sha256)
        return code.hexdigest()[:self._length]


def summarize(path: Path, digest: Digest) -> tuple[str, dict[str, Any], str]:
    """(kind, values, problem) of one file, from its header only (``stop_before_pixels``); identifiers as
    ``digest`` gives them."""
    if not is_dicom_file(path):
        return NONDICOM, {}, ""
    with pydicom_quiet():  # values are converted (and complained about) when read: keep the whole summary inside
        try:
            with open(path, "rb") as fh:
                ds = pydicom.dcmread(fh, stop_before_pixels=True)
                truncated = truncated_pixels(fh, ds, path.stat().st_size, fh.tell())
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for a broken header
            return UNREADABLE, {}, f"not a readable DICOM file ({type(exc).__name__}); re-export it"
        sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
        if not _UID.fullmatch(sop_class):
            return UNREADABLE, {}, "not a readable DICOM file (no valid SOP Class UID: a damaged header); re-export it"
        try:
            return _summary(ds, truncated, digest)
        except Exception as exc:  # noqa: BLE001 - a garbled value (a position that is not a number, ...)
            return UNREADABLE, _identity(ds, digest), (f"DICOM header has an unreadable value ({type(exc).__name__}); "
                                               "re-export it")


def _identity(ds: Dataset, digest: Digest) -> dict[str, str]:
    """The series a damaged file says it belongs to, when that much can still be read (its series is refused)."""
    try:
        return {"series": digest(ds.get("SeriesInstanceUID"))}
    except Exception:  # noqa: BLE001 - the UID itself is what is garbled
        return {}


def _floats(value: Any, n: int) -> list[float] | None:
    if value is None:
        return None
    items = [float(v) for v in (value if not isinstance(value, str | bytes | float | int) else [value])]
    return items if len(items) == n else None


def _series_refs(items, digest: Digest) -> list[str]:
    return [digest(i.get("SeriesInstanceUID")) for i in items or () if i.get("SeriesInstanceUID")]


def _summary(ds: Dataset, problem: str, digest: Digest) -> tuple[str, dict[str, Any], str]:
    sop_class = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
    modality = str(ds.get("Modality", "") or "").upper()
    if sop_class == MEDIA_DIRECTORY_SOP_CLASS or "DirectoryRecordSequence" in ds:
        return DICOMDIR, {}, ""
    values: dict[str, Any] = {
        "patient": digest(ds.get("PatientID")), "study": digest(ds.get("StudyInstanceUID")),
        "series": digest(ds.get("SeriesInstanceUID")), "sop": digest(ds.get("SOPInstanceUID")),
        "frame": digest(ds.get("FrameOfReferenceUID")), "SeriesNumber": _number(ds.get("SeriesNumber")),
        **{k: _text(ds, k) for k in TEXT_KEYWORDS},
        **{k: [str(v) for v in _as_list(ds.get(k))] for k in LIST_KEYWORDS},
    }
    if not values["study"]:  # Type 1 (General Study): without it the file belongs to no study (a garbled header)
        lost = "Study Instance UID (0020,000D) is missing: a damaged header; re-export it"
        if sop_class in IMAGE_SOP_CLASSES:
            return UNREADABLE, _identity(ds, digest), lost
        problem = lost  # a mask stays a mask: refused as one, naming it
    if sop_class in SEG_SOP_CLASSES or modality == "SEG":
        return SEG, {**values, **_seg(ds, digest)}, problem or _pixel_module(ds)
    if sop_class == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":  # no pixel data: ending there is no problem
        return RTSTRUCT, {**values, **_rtstruct(ds, digest)}, "" if problem == ENDS_EARLY else problem
    if sop_class in IMAGE_SOP_CLASSES:
        expected = "CT" if IMAGE_SOP_CLASSES[sop_class].endswith("CT") else "PT"
        if modality != expected:  # a slice that lost its Modality: its series is refused naming it, not left short
            values["Modality"] = expected
            problem = problem or (f"Modality (0008,0060) is {modality or 'missing'} in a "
                                  f"{IMAGE_SOP_CLASSES[sop_class]} image: a damaged file; re-export it")
        return IMAGE, {**values, **_image(ds), "sop_class": IMAGE_SOP_CLASSES[sop_class]}, problem or _pixel_module(ds)
    return OTHER, {"patient": values["patient"], "study": values["study"], "series": values["series"]}, ""


def _text(ds: Dataset, keyword: str) -> str:
    text = " ".join(str(ds.get(keyword, "") or "").split())
    return redact(text) if keyword in FREE_TEXT else text


def _pixel_module(ds: Dataset) -> str:
    """A problem text when an attribute without which pixel data cannot be decoded is missing, else ""."""
    missing = [f"{k} {t}" for k, t in PIXEL_MODULE.items() if ds.get(k) in (None, "")]
    return f"Image Pixel attribute {', '.join(missing)} is missing: a damaged file; re-export it" if missing else ""


def _number(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _geometry(ds: Dataset) -> dict[str, Any]:
    return {"rows": _number(ds.get("Rows")), "columns": _number(ds.get("Columns")),
            "spacing": _floats(ds.get("PixelSpacing"), 2), "orientation": _floats(ds.get("ImageOrientationPatient"), 6)}


def _image(ds: Dataset) -> dict[str, Any]:
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
    info = (ds.get("RadiopharmaceuticalInformationSequence") or [None])[0]
    codes = [[str(c.get("CodingSchemeDesignator", "") or ""), str(c.get("CodeValue", "") or ""),
              redact(str(c.get("CodeMeaning", "") or ""))]
             for c in (info.get("RadiopharmaceuticalCodeSequence") or [] if info is not None else [])]
    return {**_geometry(ds), "position": _floats(ds.get("ImagePositionPatient"), 3),
            "frames": _number(ds.get("NumberOfFrames")) or 1,
            # A standard transfer syntax UID names a codec, not a patient; anything else is not kept.
            "syntax": syntax if syntax in UID_dictionary else ("private" if syntax else ""),
            "rp_codes": codes,
            "rp_text": redact(str(info.get("Radiopharmaceutical", "") or "")) if info is not None else ""}


def _seg(ds: Dataset, digest: Digest) -> dict[str, Any]:
    """References and grid of a SEG: the series it names, and where its frames are (for a frame-only SEG)."""
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    measures = (shared.get("PixelMeasuresSequence") or [Dataset()])[0]
    orientation = (shared.get("PlaneOrientationSequence") or [Dataset()])[0]
    positions = []
    for item in ds.get("PerFrameFunctionalGroupsSequence") or []:
        plane = (item.get("PlanePositionSequence") or [Dataset()])[0]
        point = _floats(plane.get("ImagePositionPatient"), 3)
        if point is not None and point not in positions:
            positions.append(point)
    sops = [digest(i.get("ReferencedSOPInstanceUID")) for s in ds.get("ReferencedSeriesSequence") or []
            for i in s.get("ReferencedInstanceSequence") or []]
    return {"rows": _number(ds.get("Rows")), "columns": _number(ds.get("Columns")),
            "spacing": _floats(measures.get("PixelSpacing"), 2),
            "orientation": _floats(orientation.get("ImageOrientationPatient"), 6),
            "frame_positions": positions, "frames_of_reference": [digest(ds.get("FrameOfReferenceUID"))],
            "ref_series": _series_refs(ds.get("ReferencedSeriesSequence"), digest), "ref_sops": sops,
            "organ_seg": _names_organs(ds)}


def _names_organs(ds: Dataset) -> bool:
    """Is every segment an organ class (TotalSegmentator/MOOSE output: ``radiomx.inputs.organ_names``), by Segment
    Label or Segmented Property Type code? Such a SEG is a scan's organ segmentation, never its lesion mask."""
    segments = [s for s in ds.get("SegmentSequence") or [] if int(s.get("SegmentNumber", 0) or 0) > 0]

    def organ(item: Dataset) -> bool:
        if is_organ_class(str(item.get("SegmentLabel", "") or "")):
            return True
        types = item.get("SegmentedPropertyTypeCodeSequence") or []
        modifiers = (types[0].get("SegmentedPropertyTypeModifierCodeSequence") or []) if types else []
        return bool(types) and bool(class_of_code(str(types[0].get("CodeValue", "")),
                                                  str(modifiers[0].get("CodeValue", "")) if modifiers else ""))

    return bool(segments) and all(organ(item) for item in segments)


def _rtstruct(ds: Dataset, digest: Digest) -> dict[str, Any]:
    """References of an RTSTRUCT: RTReferencedSeriesSequence, its contours' images, its frames of reference, and
    one point per contour (for a frame-only RTSTRUCT: which grid were they drawn on?)."""
    frames, series, sops = [], [], []
    for frame in ds.get("ReferencedFrameOfReferenceSequence") or []:
        frames.append(digest(frame.get("FrameOfReferenceUID")))
        for study in frame.get("RTReferencedStudySequence") or []:
            for item in study.get("RTReferencedSeriesSequence") or []:
                series.extend(_series_refs([item], digest))
                sops.extend(digest(i.get("ReferencedSOPInstanceUID")) for i in item.get("ContourImageSequence") or [])
    frames += [digest(r.get("ReferencedFrameOfReferenceUID")) for r in ds.get("StructureSetROISequence") or []]
    points: list[list[float]] = []
    seen = set()
    for roi in ds.get("ROIContourSequence") or []:
        for contour in roi.get("ContourSequence") or []:
            sops.extend(digest(i.get("ReferencedSOPInstanceUID")) for i in contour.get("ContourImageSequence") or [])
            data = contour.get("ContourData")
            if data is None or len(data) < 3 or len(points) >= MAX_CONTOUR_POINTS:
                continue
            point = [float(v) for v in data[:3]]
            rounded = tuple(round(v, 2) for v in point)
            if rounded not in seen:
                seen.add(rounded)
                points.append(point)
    return {"frames_of_reference": sorted({f for f in frames if f}), "ref_series": sorted(set(series)),
            "ref_sops": sorted({s for s in sops if s}), "contour_points": points}
