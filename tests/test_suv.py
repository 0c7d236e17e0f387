"""Unit tests of the SUV arithmetic (radiomx.inputs.suv): formulas, plausibility guards, sidecars, round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiomx.errors import ScanError
from radiomx.inputs import suv


def test_decay_halves_after_one_half_life() -> None:
    assert suv.decay_factor(6586.2, 6586.2) == pytest.approx(0.5)
    assert suv.decay_factor(0, 6586.2) == 1.0


def test_frame_average_factor_tends_to_one_for_short_frames() -> None:
    assert suv.frame_average_factor(0, 6586.2) == 1.0
    assert suv.frame_average_factor(1e-3, 6586.2) == pytest.approx(1.0, abs=1e-6)
    # over one half-life the mean activity is (1 - 1/2) / ln2 of the initial one
    assert suv.frame_average_factor(6586.2, 6586.2) == pytest.approx(math.log(2) / 0.5)


def test_average_count_time_is_just_under_mid_frame() -> None:
    t = suv.average_count_time(300.0, 6586.2)
    assert 149.0 < t < 150.0


def test_sex_other_takes_the_mean_of_both_formulas() -> None:
    male = suv.normaliser_kg("IBW", 70, 1.75, "M")
    female = suv.normaliser_kg("IBW", 70, 1.75, "F")
    assert (male, female) == (pytest.approx(48.0 + 1.06 * 23), pytest.approx(45.5 + 0.91 * 23))
    assert suv.normaliser_kg("IBW", 70, 1.75, "O") == pytest.approx((male + female) / 2)


def test_lbm_james128_and_bsa_follow_the_manual() -> None:
    assert suv.normaliser_kg("LBMJAMES128", 70, 1.75, "M") == pytest.approx(1.10 * 70 - 128 * (70 / 175) ** 2)
    assert suv.normaliser_kg("BW", 70, 1.75, "M") == 70
    assert suv.bsa_dubois_m2(70, 1.75) == pytest.approx(0.007184 * 175**0.725 * 70**0.425)


@pytest.mark.parametrize("text, nuclide", [
    ("F18", "F-18"), ("18F", "F-18"), ("^18^Fluorine", "F-18"), ("Fluorine-18", "F-18"), ("C-111A1", "F-18"),
    ("Ga68", "Ga-68"), ("68Ga", "Ga-68"), ("^68^Gallium", "Ga-68"), ("C11", "C-11"), ("Zr89", "Zr-89"),
    ("", ""), ("unobtainium", ""),
])
def test_radionuclide_names_are_normalised(text: str, nuclide: str) -> None:
    assert suv.normalise_radionuclide(text) == nuclide


@pytest.mark.parametrize("value, message", [
    (None, "w is missing"), (0, "w is 0;"), (-3, "w is -3;"), (301, "w is 301, implausible"),
    (float("nan"), "w is missing")])
def test_implausible_weights_are_refused(value, message: str) -> None:
    with pytest.raises(ScanError, match=message):
        suv.check_weight(value, "f.dcm", "w", "fix it")


def test_weight_above_1000_is_grams() -> None:
    assert suv.check_weight(72500, "f", "w", "fix") == 72.5


def test_dose_in_mbq_is_recognised_and_recorded() -> None:
    assert suv.check_dose_bq(368.08, "f", "d", "fix") == (pytest.approx(368.08e6), "d read as MBq")
    assert suv.check_dose_bq(3.6808e8, "f", "d", "fix") == (3.6808e8, "d")


@pytest.mark.parametrize("value", [0, -1, 5e5, 1e11])
def test_implausible_doses_are_refused(value: float) -> None:
    with pytest.raises(ScanError, match="d is"):
        suv.check_dose_bq(value, "f", "d", "fix")


def test_half_life_is_checked_against_the_radionuclide() -> None:
    assert suv.resolve_half_life(6588, "F-18", "F-18", "f", "hl", "rn") == (6588, "hl", "F-18")
    assert suv.resolve_half_life(None, "", "Ga-68", "f", "hl", "rn") == (4057.7, "Ga-68 (radionuclide table)",
                                                                       "Ga-68")
    with pytest.raises(ScanError, match="hl is 4057.7 s but F-18 has 6586.2 s"):
        suv.resolve_half_life(4057.7, "", "F-18", "f", "hl", "rn")
    with pytest.raises(ScanError, match="rn says Ga-68 but the tracer folder implies F-18"):
        suv.resolve_half_life(4057.7, "Ga-68", "F-18", "f", "hl", "rn")


# --- BIDS-PET sidecars --------------------------------------------------------------------------------------------

def sidecar(**changes) -> dict:
    base = {"Units": "Bq/mL", "TracerRadionuclide": "F18", "InjectedRadioactivity": 368.08,
            "InjectedRadioactivityUnits": "MBq", "InjectionStart": 0, "ScanStart": 3600, "TimeZero": "10:00:00",
            "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 3600, "FrameTimesStart": [0],
            "FrameDuration": [300]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_sidecar_factor_matches_the_dicom_start_formula() -> None:
    inputs = suv.sidecar_suv(sidecar(), "s.json", 70.0, "participants.tsv", "F-18")
    expected = 70_000 / (368.08e6 * suv.decay_factor(3600, 6586.2))
    assert inputs.factor == pytest.approx(expected)
    assert (inputs.half_life_source, inputs.uptake_s, inputs.weight_kg) == ("F-18 (radionuclide table)", 3600, 70.0)


def test_both_spellings_of_the_dose_unit_key_are_accepted() -> None:
    a = suv.sidecar_suv(sidecar(), "s.json", 70.0, "p", "F-18")
    b = suv.sidecar_suv(sidecar(InjectedRadioactivityUnits=None, InjectedRadioActivityUnits="MBq"), "s.json", 70.0,
                        "p", "F-18")
    assert a == b


def test_kbq_per_ml_images_are_scaled() -> None:
    a = suv.sidecar_suv(sidecar(), "s.json", 70.0, "p", "F-18")
    b = suv.sidecar_suv(sidecar(Units="kBq/mL"), "s.json", 70.0, "p", "F-18")
    assert b.factor == pytest.approx(1000 * a.factor)


def test_uncorrected_sidecar_uses_the_frame_formula() -> None:
    inputs = suv.sidecar_suv(sidecar(ImageDecayCorrected=False), "s.json", 70.0, "p", "F-18")
    expected = 70_000 / 368.08e6 * suv.frame_average_factor(300, 6586.2) / suv.decay_factor(3600, 6586.2)
    assert (inputs.decay_correction, inputs.factor) == ("NONE", pytest.approx(expected))


def test_sidecar_declaring_suv_is_taken_as_is() -> None:
    inputs = suv.sidecar_suv({"Units": "SUV"}, "s.json", None, "", "F-18")
    assert (inputs.source, inputs.factor) == ("declared", 1.0)


BAD_SIDECARS = [
    (sidecar(Units="counts"), "Units is counts"),
    (sidecar(Units=None), "Units is missing"),
    (sidecar(InjectedRadioactivity=None), "InjectedRadioactivity is missing"),
    (sidecar(InjectedRadioactivityUnits=None), "InjectedRadioactivityUnits is missing"),
    (sidecar(InjectedRadioactivityUnits="MBq", InjectedRadioactivity=1e6), "outside the plausible"),
    (sidecar(InjectionStart=None), "InjectionStart is missing"),
    (sidecar(ImageDecayCorrected=None), "ImageDecayCorrected is None"),
    (sidecar(ImageDecayCorrectionTime=-60), "uptake time would be negative"),
    (sidecar(ImageDecayCorrected=False, FrameDuration=None), "FrameDuration is missing"),
    (sidecar(TracerRadionuclide="Ga68"), "TracerRadionuclide says Ga-68 but the tracer folder implies F-18"),
]


@pytest.mark.parametrize("data, message", BAD_SIDECARS, ids=[m for _, m in BAD_SIDECARS])
def test_bad_sidecar_field_gives_its_own_error(data: dict, message: str) -> None:
    with pytest.raises(ScanError, match=message) as info:
        suv.sidecar_suv(data, "s.json", 70.0, "participants.tsv", "F-18")
    assert info.value.stage == "suv" and info.value.path == "s.json"


def test_missing_body_weight_names_the_tsv() -> None:
    with pytest.raises(ScanError) as info:
        suv.sidecar_suv(sidecar(), "s.json", None, "/c/participants.tsv", "F-18")
    assert info.value.path == "/c/participants.tsv"
    assert "body_weight is missing; SUVbw needs it (add body_weight to participants.tsv" in info.value.detail


def test_every_input_kind_records_the_same_columns() -> None:
    dicom_like = suv.SuvInputs("dicom", "BQML", weight_kg=70.0)
    declared = suv.declared_inputs("pet_units = SUVbw")
    bids = suv.sidecar_suv(sidecar(), "s.json", 70.0, "p", "F-18")
    keys = {tuple(x.as_row()) for x in (dicom_like, declared, bids)}
    assert len(keys) == 1 and all(k.startswith("suv_") for k in next(iter(keys)))


@settings(max_examples=60, deadline=None)
@given(suv_value=st.floats(0.01, 50), weight=st.floats(30, 200), dose_mbq=st.floats(50, 800),
       uptake=st.floats(0, 7200), corrected=st.booleans())
def test_suv_to_activity_and_back_is_identity(suv_value, weight, dose_mbq, uptake, corrected) -> None:
    """SUV -> Bq/mL (what a scanner would store) -> SUV through the sidecar path gives the SUV back."""
    duration = 300.0
    data = sidecar(InjectedRadioactivity=dose_mbq, ScanStart=uptake, ImageDecayCorrectionTime=uptake,
                   ImageDecayCorrected=corrected, FrameDuration=[duration])
    dose_at_scan = dose_mbq * 1e6 * suv.decay_factor(uptake, 6586.2)
    activity = suv_value * dose_at_scan / (weight * 1000)
    if not corrected:  # the scanner stores the mean activity over the frame, decayed from the scan start
        activity /= suv.frame_average_factor(duration, 6586.2)
    factor = suv.sidecar_suv(data, "s.json", weight, "p", "F-18").factor
    assert activity * factor == pytest.approx(suv_value, rel=1e-9)
