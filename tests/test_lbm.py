"""SUL and SUVbsa factors (radiomx.inputs.lbm): published worked values, hand computations in exact rational
arithmetic, the formulas' known behaviour (hypothesis), nulls with reasons, and a real GML image stored as SUL
(IBSI-SUV DRO_2_1) recognised and never normalised twice."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiomx.inputs import lbm, suv
from radiomx.params import readouts

from .conftest import shared_data


def test_janmahasatian_sul_factor_equals_cornerstone_calculate_suv():
    """cornerstonejs/calculate-suv, test/calculateSULScalingFactor.test.ts: PatientWeight 100, PatientSize 100 gives
    1.3872759706442228 (M) and 1.055515323759684 (F). Its calculateSULScalingFactor is Janmahasatian's LBM / W (its
    source: 9270 / (6680 + 216 BMI)), with the size taken as metres (BMI 0.01): a check of the formula, not of a body.
    (Issue 25 calls these James values; they are Janmahasatian's.)"""
    assert lbm.lean_body_mass_kg("janmahasatian", 100, 100, "M") / 100 == pytest.approx(1.3872759706442228, rel=1e-14)
    assert lbm.lean_body_mass_kg("janmahasatian", 100, 100, "F") / 100 == pytest.approx(1.055515323759684, rel=1e-14)


def test_suvbsa_bsa_equals_cornerstone_calculate_suv():
    """calculate-suv test/calculateSuvBsaScalingFactor.test.ts: 75 kg, 1.85 m -> BSA 19813.758427117766 cm^2."""
    found = lbm.suv_bsa_normalisation(75.0, 1.85)
    assert found.size * 1e4 == pytest.approx(19813.758427117766, rel=1e-14)
    assert found.factor == pytest.approx(19813.758427117766 / 75000.0, rel=1e-14)  # cm^2 / g


def exact_janmahasatian(w: int, h_cm: int, male: bool) -> Fraction:
    bmi = Fraction(w) / (Fraction(h_cm, 100) ** 2)
    return 9270 * Fraction(w) / ((6680 + 216 * bmi) if male else (8780 + 244 * bmi))


def exact_james(w: int, h_cm: int, male: bool) -> Fraction:
    a, b = (Fraction(110, 100), 128) if male else (Fraction(107, 100), 148)
    return a * w - b * (Fraction(w, h_cm)) ** 2


@pytest.mark.parametrize("formula, exact", [("janmahasatian", exact_janmahasatian), ("james", exact_james)])
@pytest.mark.parametrize("w, h_cm, sex", [(70, 175, "M"), (70, 175, "F"), (75, 185, "M"), (58, 162, "F"),
                                          (120, 170, "M"), (95, 158, "F")])
def test_lean_body_mass_equals_the_published_formula_in_exact_arithmetic(formula, exact, w, h_cm, sex):
    """Hand computation: Janmahasatian et al. 2005 (9270 W / (6680 + 216 BMI), 9270 W / (8780 + 244 BMI)) and James
    1976 (1.10 W - 128 (W/H)^2, 1.07 W - 148 (W/H)^2), evaluated with fractions, against the float code."""
    expected = float(exact(w, h_cm, sex == "M"))
    assert lbm.lean_body_mass_kg(formula, w, h_cm / 100, sex) == pytest.approx(expected, rel=1e-12)
    found = lbm.sul_normalisation(formula, w, h_cm / 100, sex)
    assert found.factor == pytest.approx(expected / w, rel=1e-12) and found.size == pytest.approx(expected, rel=1e-12)


def test_worked_example_70_kg_175_cm_man():
    """By hand: BMI = 70 / 1.75^2 = 22.857; Janmahasatian 648900 / (6680 + 4937.14) = 55.857 kg; James
    77 - 128 x 0.16 = 56.52 kg; SUL factors 0.79796 and 0.80743."""
    assert lbm.sul_normalisation("janmahasatian", 70, 1.75, "M").size == pytest.approx(55.857, abs=5e-4)
    assert lbm.sul_normalisation("james", 70, 1.75, "M").size == pytest.approx(56.52, abs=1e-9)
    assert lbm.sul_normalisation("james", 70, 1.75, "M").factor == pytest.approx(56.52 / 70, rel=1e-12)


heights = st.floats(1.40, 2.10)


@given(heights, st.floats(30.0, 250.0), st.sampled_from(["M", "F"]))
def test_janmahasatian_rises_with_weight_everywhere(h, w, sex):
    """The reason EANM prefers it: heavier at the same height is never leaner (Janmahasatian et al. 2005)."""
    assert lbm.lean_body_mass_kg("janmahasatian", w + 1.0, h, sex) > lbm.lean_body_mass_kg("janmahasatian", w, h, sex)


@given(heights, st.floats(-20.0, 20.0), st.sampled_from(["M", "F"]))
def test_james_peaks_at_its_bmi_and_the_row_says_so_above_it(h, offset, sex):
    """James's LBM rises with weight below BMI 43.0 (men) / 36.1 (women) and falls above (d/dW = 0 at W/H^2 = a/2b);
    above the peak the factor carries a note naming it."""
    peak = lbm.james_peak_bmi(sex)
    bmi = peak + offset
    if abs(offset) < 0.5:
        return
    w = bmi * h * h
    rising = lbm.lean_body_mass_kg("james", w + 0.01, h, sex) > lbm.lean_body_mass_kg("james", w, h, sex)
    assert rising == (offset < 0)
    found = lbm.sul_normalisation("james", w, h, sex)
    if found.factor is not None:
        assert ("above" in found.note) == (offset > 0)


def test_james_peak_bmi_values():
    assert lbm.james_peak_bmi("M") == pytest.approx(1e4 * 1.10 / 256)  # 42.97
    assert lbm.james_peak_bmi("F") == pytest.approx(1e4 * 1.07 / 296)  # 36.15


@pytest.mark.parametrize("args, reason", [
    (("janmahasatian", 70, 1.75, ""), "sex unknown; no SUL"),
    (("janmahasatian", 70, 1.75, "O"), "sex O (other)"),
    (("janmahasatian", 70, None, "M"), "height unknown; no SUL"),
    (("janmahasatian", 70, 175.0, "M"), "height 175 m outside 0.3-2.6 m"),
    (("janmahasatian", None, 1.75, "F"), "body weight unknown"),
    (("janmahasatian", float("nan"), 1.75, "F"), "body weight unknown"),
    (("james", 250, 1.60, "M"), "james lean body mass is -37.5 kg at BMI 97.7"),
])
def test_unknown_sul_is_null_with_its_reason(args, reason):
    found = lbm.sul_normalisation(*args)
    assert found.factor is None and found.size is None and reason in found.note


def test_suvbsa_without_height_is_null_with_its_reason():
    found = lbm.suv_bsa_normalisation(70, None)
    assert found.factor is None and found.note == "height unknown; no SUVbsa"


def test_params_and_inputs_name_the_same_formulas():
    """params may not import inputs, so the names are declared twice; they must agree."""
    assert set(readouts.LBM_FORMULAS) == set(lbm.LBM_FORMULAS)
    assert readouts.DEFAULT_LBM_FORMULA == lbm.DEFAULT_LBM_FORMULA


def gml_dro():
    import pydicom

    folder = shared_data("ibsi_suv_dro", "DRO", "DRO_2_1", "PT")
    files = sorted(folder.glob("*.dcm"))
    return [pydicom.dcmread(f) for f in files], [str(f) for f in files]


def test_an_image_stored_as_sul_is_recognised_and_not_normalised_twice():
    """IBSI-SUV DRO_2_1: Units GML, SUVType LBMJAMES128, a 70 kg 1.75 m man (LBM 77 - 128 x 0.16 = 56.52 kg). radiomx
    back-converts it to SUVbw once (the DRO's 4.00 hot sphere); with the formula it was normalised by, SUL is the
    stored values exactly, and the hot sphere's SUL is 4.00 x 56.52 / 70 by hand."""
    headers, paths = gml_dro()
    factors, inputs = suv.dicom_suv(headers, paths, "F-18")
    assert (inputs.units, inputs.suv_type, inputs.sex) == ("GML", "LBMJAMES128", "M")
    stored = [ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(getattr(ds, "RescaleIntercept", 0))
              for ds in headers]
    suvbw = np.stack([s * f for s, f in zip(stored, factors, strict=True)])
    assert suvbw.max() == pytest.approx(4.0, abs=5e-3)

    sul = lbm.sul_normalisation("james", inputs.weight_kg, inputs.height_m, inputs.sex, inputs.units,
                                inputs.suv_type, inputs.factor)
    assert "stored as SUL" in sul.source and sul.note == ""
    assert sul.size == pytest.approx(56.52, rel=1e-12)
    np.testing.assert_allclose(suvbw * sul.factor, np.stack(stored), rtol=1e-12, atol=1e-12)
    assert (suvbw * sul.factor).max() == pytest.approx(4.0 * 56.52 / 70, abs=5e-3)

    other = lbm.sul_normalisation("janmahasatian", inputs.weight_kg, inputs.height_m, inputs.sex, inputs.units,
                                  inputs.suv_type, inputs.factor)
    assert other.source == "weight, height and sex"
    assert "SUVType LBMJAMES128, converted back to SUVbw once" in other.note
    assert other.factor == pytest.approx(float(exact_janmahasatian(70, 175, True)) / 70, rel=1e-12)


def test_gml_lbm_of_another_formula_is_not_taken_for_ours():
    """SUVType LBM (1.10 W - 120 (W/H)^2) is neither radiomx formula: the factor is computed, not inverted."""
    found = lbm.sul_normalisation("james", 70, 1.75, "M", "GML", "LBM", 70 / (1.10 * 70 - 120 * 0.16))
    assert found.factor == pytest.approx(56.52 / 70, rel=1e-12) and "SUVType LBM" in found.note
