"""When a scan was acquired, read from its inputs at compare time: only to compute days between two scans.

Why here and never stored: a date is PHI (DICOM PS3.15 lists it); OUT holds only the integer day difference.
Sources, first found wins: DICOM Study Date (0008,0020), else Series Date (0008,0021), else Acquisition Date
(0008,0022) of the first file of a DICOM series (headers only, ``stop_before_pixels``); for NIfTI/NRRD images the
BIDS-style sidecar beside the image (``AcquisitionDateTime``, ``AcquisitionDate``, ``StudyDate``, ``SeriesDate``,
``ScanDate``; ISO 8601 or DICOM ``YYYYMMDD``). None when nothing says.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from radiomx.inputs.paths import is_dicom_file, sidecar_path

DICOM_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate")
SIDECAR_DATE_KEYS = ("AcquisitionDateTime", "AcquisitionDate", "StudyDate", "SeriesDate", "ScanDate")
_DATE = re.compile(r"^\s*(\d{4})-?(\d{2})-?(\d{2})")


def parse_date(text: object) -> date | None:
    """``2024-03-05``, ``2024-03-05T10:11:12``, ``20240305``, ``20240305101112`` -> date; None otherwise."""
    match = _DATE.match(str(text)) if text is not None else None
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _first_dicom(path: Path) -> Path | None:
    if path.is_file():
        return path if is_dicom_file(path) else None
    for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
        if is_dicom_file(candidate):
            return candidate
    return None


def _dicom_date(path: Path) -> date | None:
    import pydicom

    first = _first_dicom(path)
    if first is None:
        return None
    try:
        header = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=list(DICOM_DATE_KEYWORDS))
    except Exception:  # noqa: BLE001 - an unreadable header means "date unknown", which the table says
        return None
    from radiomx.inputs.suv import header_text  # raw: a malformed date is never echoed by pydicom's warnings

    for keyword in DICOM_DATE_KEYWORDS:
        found = parse_date(header_text(header, keyword))
        if found is not None:
            return found
    return None


def _sidecar_date(image: Path) -> date | None:
    try:
        data = json.loads(sidecar_path(image).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    for key in SIDECAR_DATE_KEYS:
        found = parse_date(data.get(key))
        if found is not None:
            return found
    return None


def acquisition_date(image: Path) -> date | None:
    """The acquisition date of a scan's image (file or DICOM series folder); None when unknown."""
    image = Path(image)
    if image.is_dir() or image.name.lower().endswith(".dcm") or is_dicom_file(image):
        return _dicom_date(image)
    return _sidecar_date(image)
