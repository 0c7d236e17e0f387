"""Which named masks of a mask file are lesions: reference regions out, the user's name patterns, and a default that
leaves out what real exports carry besides lesions (BODY, couch, organs at risk).

Rules (docs/lesions.md), applied to every SEG segment, RTSTRUCT ROI or label of a label map:

1. A name starting with ``ref-`` is a reference region, never a lesion (``radiomx.features.references``).
2. ``--roi GLOB`` (or ``[lesions] roi``) given: exactly the masks whose name matches one of the patterns are
   candidates; the default exclusion does not apply (a structure named on purpose is measured on purpose).
   ``--label N`` given: every mask is a candidate (``--label`` then picks by number).
3. Neither given: every mask except the default non-lesions:
   * RT ROI Interpreted Type (3006,00A4; DICOM PS3.3 C.8.8.8) of a structure that is not a lesion:
     ``NOT_LESION_TYPES`` (quietly: the body outline, the couch, markers) and ``ORGAN_TYPES`` (ORGAN, OAR,
     AVOIDANCE: with a warning row that lists them, since some tools type every new contour ORGAN);
   * a SEG segment whose Segmented Property Category (0062,0003) is an anatomical structure or a physical object
     (``ORGAN_CATEGORIES``, with the same warning; ``NOT_LESION_CATEGORIES`` quietly);
   * a name matching ``NOT_LESION_NAMES`` (BODY, External, Skin, Outline, couch and table structures), quietly.
4. ``--exclude-roi GLOB`` (or ``[lesions] exclude_roi``) removes matching masks last.

Patterns are shell globs (``fnmatch``), matched case-insensitively against the whole name with its surrounding
spaces removed. A mask that holds masks but none left by these rules is a failure that lists every name it holds
(a naming mismatch is not a negative scan); a mask holding no mask at all (an empty label map) is a negative scan.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from radiomx.inputs.named_masks import NamedMask
from radiomx.options import RoiSelection

#: RT ROI Interpreted Type defined terms (PS3.3 C.8.8.8) of structures that are never lesions: left out quietly.
NOT_LESION_TYPES = frozenset({
    "EXTERNAL", "SUPPORT", "FIXATION", "BOLUS", "MARKER", "REGISTRATION", "ISOCENTER", "CONTRAST_AGENT", "CAVITY",
    "BRACHY_CHANNEL", "BRACHY_ACCESSORY", "BRACHY_SRC_APP", "BRACHY_CHNL_SHLD", "DOSE_REGION", "CONTROL",
    "DOSE_MEASUREMENT"})
#: Types of normal organs: left out by default, with a warning row naming them (a lesion typed ORGAN by a tool's
#: default would otherwise vanish without a word).
ORGAN_TYPES = frozenset({"ORGAN", "OAR", "AVOIDANCE"})
#: Segmented Property Category codes (scheme, value) of segments that are organs: SNOMED CT 123037004 "Anatomical
#: Structure" (SRT T-D000A in older SEGs, as TotalSegmentator and dcmqi write organs).
ORGAN_CATEGORIES = frozenset({("SCT", "123037004"), ("SRT", "T-D000A")})
#: ... and never lesions: SNOMED CT 260787004 "Physical object" (SRT A-00004): devices, couch, markers.
NOT_LESION_CATEGORIES = frozenset({("SCT", "260787004"), ("SRT", "A-00004")})
#: Names of body outlines and patient supports as planning systems and readers write them (Eclipse BODY,
#: RayStation External, Pinnacle Skin, couch models CouchSurface/CouchInterior), matched case-insensitively.
NOT_LESION_NAMES = ("body", "body_*", "body-*", "external", "external_*", "skin", "outline", "outer contour",
                    "outer_contour", "patient", "*couch*", "table", "tabletop")


@dataclass(frozen=True)
class Choice:
    """The outcome of the rules for one mask file."""

    lesions: tuple[NamedMask, ...]
    references: tuple[NamedMask, ...]
    #: Warnings (one line each) for masks left out by default that might be lesions (organs).
    notes: tuple[str, ...] = ()
    #: Why nothing is left while the file holds masks (the failure's message), else "".
    problem: str = ""


def matches(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.strip().lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def _default_out(mask: NamedMask) -> str:
    """"quiet", "organ" or "" (a lesion by default)."""
    kind = mask.kind.upper()
    if kind in ORGAN_TYPES or mask.category in ORGAN_CATEGORIES:
        return "organ"
    if kind in NOT_LESION_TYPES or mask.category in NOT_LESION_CATEGORIES or matches(mask.name, NOT_LESION_NAMES):
        return "quiet"
    return ""


def _rules(selection: RoiSelection, labels: tuple[int, ...] | None) -> str:
    parts = [f"--roi {' '.join(repr(g) for g in selection.include)}" if selection.include else
             "the default (no --roi: BODY, couch, organs and other non-lesion structures left out)"]
    if labels:
        parts.append(f"--label {' '.join(str(v) for v in labels)}")
    if selection.exclude:
        parts.append(f"--exclude-roi {' '.join(repr(g) for g in selection.exclude)}")
    return "; ".join(parts)


def choose(masks: Sequence[NamedMask], selection: RoiSelection, labels: tuple[int, ...] | None = None) -> Choice:
    """Apply the module's rules to the masks a file holds (in number order)."""
    references = tuple(m for m in masks if m.is_reference)
    candidates = [m for m in masks if not m.is_reference]
    organs: list[NamedMask] = []
    if selection.include:
        chosen = [m for m in candidates if matches(m.name, selection.include)]
    elif labels:
        chosen = list(candidates)
    else:
        chosen = []
        for mask in candidates:
            verdict = _default_out(mask)
            if verdict == "organ":
                organs.append(mask)
            elif not verdict:
                chosen.append(mask)
    chosen = [m for m in chosen if not matches(m.name, selection.exclude)]
    organs = [m for m in organs if not matches(m.name, selection.exclude)]
    notes = ()
    if organs:
        notes = (f"not measured as lesions by default (organs): {', '.join(m.describe() for m in organs)}; name "
                 "them with --roi (or [lesions] roi in radiomx.toml) if they are lesions",)
    problem = ""
    if candidates and not chosen:
        problem = (f"no lesion left by {_rules(selection, labels)}: the mask holds "
                   f"{', '.join(m.describe() for m in masks)}; choose with --roi/--exclude-roi or [lesions] in "
                   "radiomx.toml")
    return Choice(tuple(chosen), references, notes, problem)
