"""Which radionuclide a DICOM code or a free-text field names: ``Ga-68``, ``F-18``, ``Tc-94m``.

Why pydicom's tables and not our own: the Radionuclide Code Sequence (0054,0300) takes its codes from DICOM PS3.16
CID 4020 "PET Radionuclide", in SNOMED CT (``SCT``, what current exports write) or the retired SNOMED RT (``SRT``,
what older scanners still write; PS3.16 Annex O maps one to the other). A hand-typed table read ``C-131A3``
(^68^Gallium) as Ge-68 and ``C-131A1`` (^66^Gallium) as Ga-68. pydicom ships CID 4020 (``codes.cid4020``) and the
SRT <-> SCT map behind ``pydicom.sr.coding.Code``'s equality, so we only name the elements its Code Meanings use
(``^68^Gallium``). pydicom is imported on the first lookup: NIfTI cohorts whose sidecars name the nuclide in words
never load it.
"""

from __future__ import annotations

import re
from functools import cache

#: Element names of every nuclide in CID 4020 (and of the words sidecars use), lower case -> chemical symbol.
ELEMENTS = {"fluorine": "F", "gallium": "Ga", "carbon": "C", "nitrogen": "N", "oxygen": "O", "copper": "Cu",
            "zirconium": "Zr", "rubidium": "Rb", "iodine": "I", "germanium": "Ge", "scandium": "Sc",
            "yttrium": "Y", "sodium": "Na", "selenium": "Se", "bromine": "Br", "titanium": "Ti", "zinc": "Zn",
            "technetium": "Tc", "potassium": "K", "iron": "Fe", "manganese": "Mn", "arsenic": "As",
            "niobium": "Nb", "terbium": "Tb"}
#: Scheme designators that carry SNOMED RT code values: ``SRT``, and ``SNM3`` written by pre-2005 exports.
_SNOMED_RT_SCHEMES = ("SRT", "SNM3", "99SDM")
#: A SNOMED RT code value (``C-131A3``) and a SNOMED CT concept id (``35337001``), for codes without a scheme.
_SNOMED_RT_VALUE = re.compile(r"[A-Z]-[0-9A-Z]{4,6}")
_SNOMED_CT_VALUE = re.compile(r"\d{6,18}")
#: CID 4020's Code Meaning: ``^68^Gallium``, ``^94m^Technetium``.
_MEANING = re.compile(r"\^(\d+m?)\^\s*([a-z]+)")


def nuclide_of_meaning(meaning: str) -> str:
    """``^68^Gallium`` -> ``Ga-68``, ``^52m^Manganese`` -> ``Mn-52m``; "" for anything else."""
    match = _MEANING.fullmatch(meaning.strip().lower())
    if not match or match.group(2) not in ELEMENTS:
        return ""
    return f"{ELEMENTS[match.group(2)]}-{match.group(1)}"


@cache
def _cid4020() -> tuple:
    """(pydicom Code, radionuclide) for every concept of CID 4020."""
    from pydicom.sr.codedict import codes

    return tuple((code, nuclide_of_meaning(code.meaning)) for code in codes.cid4020.concepts.values())


def looks_like_code(text: str) -> bool:
    """Whether ``text`` is shaped like a SNOMED RT code value or a SNOMED CT concept id (not a nuclide's name)."""
    return bool(_SNOMED_RT_VALUE.fullmatch(text.strip()) or _SNOMED_CT_VALUE.fullmatch(text.strip()))


def radionuclide_of_code(scheme: str, value: str) -> tuple[str, str]:
    """(radionuclide, CID 4020 Code Meaning) of a Radionuclide Code Sequence item, or ("", "") when the code is not
    in CID 4020. ``scheme`` may be empty (some exports omit it): the value's shape then says SNOMED RT, or SNOMED
    CT or DICOM (``DCM``, 6-digit codes such as ^44^Scandium's 126600, which no SNOMED CT concept of CID 4020 uses)."""
    from pydicom.sr.coding import Code

    value, scheme = value.strip(), scheme.strip().upper()
    if scheme in _SNOMED_RT_SCHEMES or (not scheme and _SNOMED_RT_VALUE.fullmatch(value)):
        schemes: tuple[str, ...] = ("SRT",)
    else:
        schemes = (scheme,) if scheme else ("SCT", "DCM")
    for probe in (Code(value, s, "") for s in schemes):
        for code, nuclide in _cid4020():
            if probe == code:  # Code equality maps SRT values onto their SCT concepts (PS3.16 Annex O)
                return nuclide, code.meaning
    return "", ""
