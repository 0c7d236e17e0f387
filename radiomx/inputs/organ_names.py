"""Organ class names as the field's segmenters write them: TotalSegmentator and MOOSE, one vocabulary.

Why one vocabulary: a scan's organs come as files named by class (TotalSegmentator's ``liver.nii.gz``), as labels
of a multilabel file (names from its label table), or as DICOM SEG segments (Segment Label, else the Segmented
Property Type code). Every later step (which classes a reference region needs, which organ holds a lesion, which
site group that organ belongs to) speaks of the *canonical* name: TotalSegmentator v2's class name
(``totalsegmentator/map_to_binary.py``, task ``total``; also ``total_mr``, ``liver_segments``,
``appendicular_bones``). MOOSE 3 (``moosez/mappings/moose_snomed_mapping.csv``) uses the same style with a few
other spellings, mapped here (``bladder`` -> ``urinary_bladder``, ``clavicle_left`` -> ``clavicula_left``,
``portal_splenic_vein`` -> ``portal_vein_and_splenic_vein``, ``spinal_chord`` -> ``spinal_cord``); the classes only
MOOSE has (``rib_left_13``, ``vertebrae_L6``, ``thyroid_left``, ``fingers_left``, ...) keep their own names.

Every known class has a *kind*, which is what lesion sites and reference regions need to know of it: ``bone``,
``spleen``, ``liver``, ``lung``, ``organ`` (other solid and hollow organs), ``muscle``, ``vessel`` (aorta, veins,
arteries: where lymph nodes lie next to, never a lesion's site) and ``tissue`` (body outline, fat, face: not an
organ). Names are matched ignoring case and with ``-`` and spaces read as ``_`` (``Adrenal-gland left``).

This module imports no imaging library: discovery uses it to tell an organ SEG from a lesion SEG.
"""

from __future__ import annotations

import re

BONE, SPLEEN, LIVER, LUNG, ORGAN, MUSCLE, VESSEL, TISSUE = (
    "bone", "spleen", "liver", "lung", "organ", "muscle", "vessel", "tissue")


def _sided(stem: str) -> list[str]:
    return [f"{stem}_left", f"{stem}_right"]


def _vocabulary() -> dict[str, str]:
    kinds: dict[str, str] = {}

    def add(kind: str, *names: str) -> None:
        for name in names:
            kinds[name] = kind

    add(BONE, *(f"vertebrae_C{k}" for k in range(1, 8)), *(f"vertebrae_T{k}" for k in range(1, 13)),
        *(f"vertebrae_L{k}" for k in range(1, 7)), "vertebrae_S1", "vertebrae", "vertebrae_body", "sacrum",
        *(f"rib_{side}_{k}" for side in ("left", "right") for k in range(1, 14)), "sternum", "costal_cartilages",
        "skull", *(n for stem in ("hip", "femur", "humerus", "scapula", "clavicula") for n in _sided(stem)),
        *(n for stem in ("patella", "tibia", "fibula", "tarsal", "metatarsal", "ulna", "radius", "carpal",
                         "metacarpal", "fingers", "toes") for n in [stem, *_sided(stem)]),
        "phalanges_feet", "phalanges_hand")
    add(SPLEEN, "spleen")
    add(LIVER, "liver", *(f"liver_segment_{k}" for k in range(1, 9)))
    add(LUNG, "lung", "lung_left", "lung_right", "lung_upper_lobe_left", "lung_lower_lobe_left",
        "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")
    add(ORGAN, *_sided("kidney"), *_sided("adrenal_gland"), *_sided("kidney_cyst"), "gallbladder", "stomach",
        "pancreas", "esophagus", "trachea", "thyroid_gland", *_sided("thyroid"), "small_bowel", "duodenum", "colon",
        "urinary_bladder", "prostate", "brain", "heart", "heart_myocardium", "heart_atrium_left",
        "heart_ventricle_left", "heart_atrium_right", "heart_ventricle_right", "atrial_appendage_left",
        "spinal_cord", "breast", "testicles", "eyes", *_sided("eye"))
    add(MUSCLE, *(n for stem in ("gluteus_maximus", "gluteus_medius", "gluteus_minimus", "autochthon", "iliopsoas")
                  for n in _sided(stem)), "skeletal_muscle")
    add(VESSEL, "aorta", "pulmonary_vein", "pulmonary_artery", "brachiocephalic_trunk",
        *_sided("subclavian_artery"), *_sided("common_carotid_artery"), *_sided("brachiocephalic_vein"),
        "superior_vena_cava", "inferior_vena_cava", "portal_vein_and_splenic_vein", *_sided("iliac_artery"),
        *_sided("iliac_vena"))
    add(TISSUE, "body", "body_trunc", "body_extremities", "face", "head", "legs", "arms", "subcutaneous_fat",
        "torso_fat", "visceral_fat", "thoracic_fat", "intermuscular_fat")
    return kinds


#: Canonical class name -> kind (module docstring).
CLASS_KINDS: dict[str, str] = _vocabulary()

#: Other spellings (MOOSE 3, TotalSegmentator v1 ``--ml`` tables, hand-made tables) -> canonical name.
ALIASES = {
    "bladder": "urinary_bladder", "portal_splenic_vein": "portal_vein_and_splenic_vein",
    "spinal_chord": "spinal_cord", "clavicle_left": "clavicula_left", "clavicle_right": "clavicula_right",
    "thyroid": "thyroid_gland", "adrenal_left": "adrenal_gland_left", "adrenal_right": "adrenal_gland_right",
    "left_adrenal_gland": "adrenal_gland_left", "right_adrenal_gland": "adrenal_gland_right",
}

#: SNOMED CT codes of Segmented Property Type (0062,000F) with the laterality modifier (0062,0011) ("" for none)
#: -> canonical name, for DICOM SEG segments whose Segment Label is no class name (codes from MOOSE's
#: ``moose_snomed_mapping.csv`` and DICOM PS3.16 CID 7151). Left 7771000, right 24028007.
SNOMED_CLASSES: dict[tuple[str, str], str] = {
    ("10200004", ""): "liver", ("78961009", ""): "spleen", ("15825003", ""): "aorta",
    ("23451007", "7771000"): "adrenal_gland_left", ("23451007", "24028007"): "adrenal_gland_right",
    ("64033007", "7771000"): "kidney_left", ("64033007", "24028007"): "kidney_right", ("15776009", ""): "pancreas",
    ("69695003", ""): "stomach", ("89837001", ""): "urinary_bladder", ("12738006", ""): "brain",
    ("80891009", ""): "heart", ("56873002", ""): "sternum", ("54735007", ""): "sacrum",
    ("39607008", "7771000"): "lung_left", ("39607008", "24028007"): "lung_right",
    **{(code, ""): f"vertebrae_{level}" for level, code in (
        ("T1", "64864005"), ("T2", "53733008"), ("T3", "1626008"), ("T4", "73071006"), ("T5", "56401006"),
        ("T6", "45296009"), ("T7", "62487009"), ("T8", "11068009"), ("T9", "82687006"), ("T10", "7610001"),
        ("T11", "12989004"), ("T12", "23215003"), ("L1", "66794005"), ("L2", "14293000"), ("L3", "36470004"),
        ("L4", "11994002"), ("L5", "49668003"))},
}

_SEPARATORS = re.compile(r"[\s\-]+")


def normalized(name: str) -> str:
    """``Adrenal-gland left`` -> ``adrenal_gland_left``; upper-case letters kept only in vertebra levels."""
    token = _SEPARATORS.sub("_", name.strip()).strip("_")
    match = re.fullmatch(r"(?i)vertebrae_([cltsCLTS])(\d+)", token)
    if match:
        return f"vertebrae_{match.group(1).upper()}{match.group(2)}"
    return token.lower()


def canonical(name: str) -> str:
    """The canonical class name of ``name`` (an alias mapped), or its normalized form when it is unknown."""
    token = normalized(name)
    return ALIASES.get(token, token)


def kind_of(name: str) -> str:
    """The kind of a class (module docstring), "" for a name outside the vocabulary."""
    return CLASS_KINDS.get(canonical(name), "")


def is_organ_class(name: str) -> bool:
    return kind_of(name) != ""


def class_of_code(code: str, modifier: str = "") -> str:
    """A SNOMED CT Segmented Property Type (and laterality modifier) as a canonical class name, "" if unknown."""
    return SNOMED_CLASSES.get((code, modifier), SNOMED_CLASSES.get((code, ""), "") if modifier else "")
