"""Which of several series of one modality is the one to measure: the attenuation-corrected PET, never a MIP.

Why apart from dicom.py: the same rule picks the series in a scan folder (``radiomx.inputs.dicom``, when the folder
is read) and in a PACS export (``radiomx.discover.dicom_export``, when the export is linked, without SimpleITK or
pixels). A "header" here is anything with ``.get(keyword)``: a pydicom Dataset, or the dict of header values the
export's index keeps.

The rule, in two steps (each applied only when several series are left):

1. PET: the series whose Corrected Image (0028,0051) says ATTN, when any does. With ``strict_attenuation`` (an
   export, where nobody chose the series by hand) a PET that says what it was corrected for without ATTN is
   never the image, even when it is the only one: it is a non-attenuation-corrected (NAC) reconstruction.
2. No MIP, projection or localizer (Image Type (0008,0008), or a Series Description with the word MIP).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

#: Image Type (0008,0008) values of series that are pictures of a scan, not the scan.
PROJECTION_TYPES = {"MIP", "PROJECTION IMAGE", "PROJECTION", "LOCALIZER", "SCREEN SAVE"}

K = TypeVar("K")


def describe(header: Any) -> str:
    """A series as a user finds it in the viewer: Series Number and Description (never a UID)."""
    description = " ".join(str(header.get("SeriesDescription", "") or "").split())[:40]
    return f"Series Number {header.get('SeriesNumber', '?')}" + (f" '{description}'" if description else "")


def values(header: Any, keyword: str) -> set[str]:
    """A (possibly multi-valued) text attribute as a set of upper-case values."""
    value = header.get(keyword)
    if value is None:
        return set()
    items = [value] if isinstance(value, str) else list(value)
    return {str(v).strip().upper() for v in items if str(v).strip()}


def is_projection(header: Any) -> bool:
    """A MIP, projection or localizer: a picture of a scan, not a volume to measure."""
    return bool(values(header, "ImageType") & PROJECTION_TYPES) or "MIP" in str(
        header.get("SeriesDescription", "")).upper().split()


def is_non_attenuation_corrected(header: Any) -> bool:
    """A PET whose Corrected Image (0028,0051) lists corrections but not ATTN (an empty or absent value says
    nothing, and is not taken as NAC)."""
    corrected = values(header, "CorrectedImage")
    return bool(corrected) and "ATTN" not in corrected


def measurable(candidates: Mapping[K, Any], modality: str, strict_attenuation: bool = False) -> dict[K, Any]:
    """The candidates left after the module's two steps (several when they cannot be told apart)."""
    left = dict(candidates)
    if modality == "PT" and strict_attenuation:
        left = {k: h for k, h in left.items() if not is_non_attenuation_corrected(h)}
    if modality == "PT" and len(left) > 1:
        left = {k: h for k, h in left.items() if "ATTN" in values(h, "CorrectedImage")} or left
    if len(left) > 1 or strict_attenuation:
        kept = {k: h for k, h in left.items() if not is_projection(h)}
        left = kept if kept or strict_attenuation else left
    return left
