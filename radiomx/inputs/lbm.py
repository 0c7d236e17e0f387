"""SUL and SUVbsa: the other normalisations of an SUVbw image, each one factor per scan, with its inputs.

Why a factor and not a second image: every normalisation divides the same activity concentration by another body
size, so SUL = SUVbw x LBM / W and SUVbsa = SUVbw x BSA / W (W the body weight SUVbw used). Every lesion and
reference statistic that is linear in the voxel values (max, mean, SD, the IBSI peaks: sphere means) therefore
converts by the same factor, and nothing needs to be re-read or recomputed per voxel.

Lean body mass (W in kg, H in cm, BMI = W / (H / 100)^2), ``LBM_FORMULAS``:

* ``janmahasatian``: Janmahasatian S, Duffull SB, Ash S, et al. Quantification of lean bodyweight. Clin
  Pharmacokinet 2005;44:1051-1065: male 9270 W / (6680 + 216 BMI), female 9270 W / (8780 + 244 BMI). The EANM
  FDG guideline 2.0 (Boellaard et al., Eur J Nucl Med Mol Imaging 2015;42:328-354) recommends it for SUL; it
  stays plausible in obesity. DICOM SUVType ``LBMJANMA``.
* ``james``: James WPT. Research on obesity. London: HMSO; 1976: male 1.10 W - 128 (W/H)^2, female
  1.07 W - 148 (W/H)^2; PERCIST 1.0's SUL (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S). DICOM SUVType
  ``LBMJAMES128``. It peaks at BMI 1e4 x 1.10 / 256 = 43.0 (male) and 1e4 x 1.07 / 296 = 36.1 (female) and falls
  above (``james_peak_bmi``): a heavier patient gets a smaller LBM, and at BMI 86 (male) a negative one.

The arithmetic is ``radiomx.inputs.suv.normaliser_kg`` (the IBSI SUV manual's formulas, keyed by DICOM SUVType),
the same code that back-converts GML images, so both stages agree by construction.

An image already stored as SUL (Units GML with SUVType LBMJANMA or LBMJAMES128) is recognised: radiomx converted
it back to SUVbw once (``suv._gml_inputs``), and when the formula asked for is the one the image was normalised
by, the SUL factor is the exact inverse of that back-conversion, so SUL equals the stored values; it is never
normalised a second time. SUVType ``LBM`` (1.10 W - 120 (W/H)^2, "Morgan" in the IBSI SUV manual) is neither
formula: its SUL is recomputed from the back-converted SUVbw, and the row says so.

Sex M or F and a plausible height are required: sex "O" (other) or unknown, or a height outside 0.3-2.6 m, give a
null factor with the reason (the IBSI manual's mean of both sexes recovers what a scanner did; it is no basis for
a new SUL). SUVbsa uses Du Bois's BSA (``suv.bsa_dubois_m2``), as DICOM's CM2ML does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radiomx.inputs.suv import WEIGHT_RANGE_KG, bsa_dubois_m2, normaliser_kg

#: radiomx's name of each lean-body-mass formula -> the DICOM SUVType (0054,1006) of an image normalised by it.
LBM_FORMULAS: dict[str, str] = {"janmahasatian": "LBMJANMA", "james": "LBMJAMES128"}
DEFAULT_LBM_FORMULA = "janmahasatian"
#: Plausible body height (m), as the DICOM and TSV readers take it (``loader._dicom_body``, ``bids.height_m``).
HEIGHT_RANGE_M = (0.3, 2.6)
#: James's coefficients (a W - b (W/H)^2) per sex, for the BMI at which his LBM stops rising.
_JAMES = {"M": (1.10, 128.0), "F": (1.07, 148.0)}


@dataclass(frozen=True)
class Normalisation:
    """One scan's factor from SUVbw to another normalisation: value = SUVbw x ``factor``.

    ``factor`` is None when it cannot be known, and ``note`` then says why (a row's null with a reason); a non-empty
    ``note`` beside a factor is a caution (James above his peak BMI, a formula differing from the image's own)."""

    kind: str                # "SUL" or "SUVbsa"
    formula: str             # janmahasatian, james (SUL); dubois (SUVbsa)
    factor: float | None
    #: The body size divided by: LBM in kg (SUL) or BSA in m^2 (SUVbsa); None with the factor.
    size: float | None
    source: str = ""         # "weight, height and sex" or "image stored as SUL (Units GML, SUVType LBMJANMA)"
    note: str = ""


def lean_body_mass_kg(formula: str, weight_kg: float, height_m: float, sex: str) -> float:
    """The formula as published, without any check (sex M or F): the function the worked values test."""
    if sex not in ("M", "F"):
        raise ValueError(f"lean body mass formulas are for sex M or F (got {sex!r})")
    return normaliser_kg(LBM_FORMULAS[formula], weight_kg, height_m, sex)


def james_peak_bmi(sex: str) -> float:
    """BMI (kg/m^2) above which James's LBM falls as weight rises: d/dW (a W - b W^2 / H^2) = 0 at W / H^2 = a / 2b."""
    a, b = _JAMES[sex]
    return 1e4 * a / (2.0 * b)


def _unknown(kind: str, formula: str, why: str) -> Normalisation:
    return Normalisation(kind, formula, None, None, note=why)


def _body_problem(weight_kg: float | None, height_m: float | None) -> str:
    """Why the weight or height cannot be used ("" when both are plausible)."""
    low, high = WEIGHT_RANGE_KG
    if weight_kg is None or not math.isfinite(weight_kg):
        return "body weight unknown"
    if not low < weight_kg <= high:
        return f"body weight {weight_kg:g} kg implausible"
    if height_m is None or not math.isfinite(height_m):
        return "height unknown"
    if not HEIGHT_RANGE_M[0] <= height_m <= HEIGHT_RANGE_M[1]:
        return f"height {height_m:g} m outside {HEIGHT_RANGE_M[0]:g}-{HEIGHT_RANGE_M[1]:g} m"
    return ""


def sul_normalisation(formula: str, weight_kg: float | None, height_m: float | None, sex: str,
                      suv_units: str = "", suv_type: str = "", suv_factor: float | None = None) -> Normalisation:
    """SUL = SUVbw x LBM / W by ``formula``, for one scan.

    ``weight_kg`` must be the weight the SUVbw used (``suv_weight_kg`` when SUV was computed from headers or a
    sidecar). ``suv_units``/``suv_type``/``suv_factor``: the scan's SUV inputs (``suv_units``, ``suv_suv_type``,
    ``suv_factor``); a GML image normalised by ``formula`` gets the inverse of its back-conversion factor."""
    if formula not in LBM_FORMULAS:
        raise ValueError(f"unknown lean body mass formula {formula!r}; use one of {', '.join(LBM_FORMULAS)}")
    stored = suv_type.upper() if suv_units.upper() == "GML" else ""
    if stored == LBM_FORMULAS[formula] and suv_factor and math.isfinite(suv_factor) and suv_factor > 0:
        lbm = weight_kg / suv_factor if weight_kg else None
        return Normalisation("SUL", formula, 1.0 / suv_factor, lbm,
                             source=f"image stored as SUL (Units GML, SUVType {stored}): SUL = the stored values")
    if sex not in ("M", "F"):
        what = "sex O (other): the lean body mass formulas are sex-specific" if sex == "O" else "sex unknown"
        return _unknown("SUL", formula, f"{what}; no SUL")
    problem = _body_problem(weight_kg, height_m)
    if problem:
        return _unknown("SUL", formula, f"{problem}; no SUL")
    assert weight_kg is not None and height_m is not None
    lbm = lean_body_mass_kg(formula, weight_kg, height_m, sex)
    bmi = weight_kg / height_m**2
    if lbm <= 0:
        return _unknown("SUL", formula, f"{formula} lean body mass is {lbm:.1f} kg at BMI {bmi:.1f} (the formula "
                                        "fails in obesity; janmahasatian does not); no SUL")
    notes = []
    if formula == "james" and bmi > james_peak_bmi(sex):
        notes.append(f"BMI {bmi:.1f} is above {james_peak_bmi(sex):.1f}, where James's lean body mass falls as weight "
                     "rises (Janmahasatian et al. 2005); EANM recommends janmahasatian")
    if stored.startswith("LBM"):
        notes.append(f"image stored as SUL by SUVType {stored}, converted back to SUVbw once; SUL here is by "
                     f"{formula}")
    return Normalisation("SUL", formula, lbm / weight_kg, lbm, source="weight, height and sex",
                         note="; ".join(notes))


def suv_bsa_normalisation(weight_kg: float | None, height_m: float | None) -> Normalisation:
    """SUVbsa [cm^2/mL] = SUVbw x BSA[cm^2] / W[g], BSA by Du Bois (as DICOM CM2ML images; IBSI SUV manual)."""
    problem = _body_problem(weight_kg, height_m)
    if problem:
        return _unknown("SUVbsa", "dubois", f"{problem}; no SUVbsa")
    assert weight_kg is not None and height_m is not None
    bsa = bsa_dubois_m2(weight_kg, height_m)
    return Normalisation("SUVbsa", "dubois", bsa * 1e4 / (weight_kg * 1e3), bsa, source="weight and height")
