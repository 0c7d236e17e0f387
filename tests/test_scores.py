"""Scores per scan (radiomx.derive.scores): Deauville, qPET and Krenning on each side of every boundary, the defined
answers for a negative scan and for missing references, and monotonicity (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiomx.derive.scores import RegionStats, ScanStatistics, deauville, krenning, qpet, qpet_deauville
from radiomx.params.readouts import DeauvilleSetting, KrenningSetting

DS2 = DeauvilleSetting("suv_max", "suv_max", 2.0)
DS3 = DeauvilleSetting("suv_max", "suv_max", 3.0)
KR = KrenningSetting("suv_max", "suv_mean", (0.9, 1.1))
#: Blood pool SUVmax 2.0, liver SUVmax 3.0 (means lower: a score must read the statistic its setting names).
REFS = {"bloodpool": RegionStats(mean=1.6, sd=0.2, max=2.0), "liver": RegionStats(mean=2.2, sd=0.3, max=3.0)}


def up(x: float) -> float:
    return math.nextafter(x, math.inf)


def scan(value: float | None, refs=REFS, count: int = 1, peak: float | None = None) -> ScanStatistics:
    return ScanStatistics(count, suv_max=value, suv_peak=peak, references=refs)


@pytest.mark.parametrize("lesion, expected", [
    (1.0, 2), (2.0, 2),            # <= mediastinum
    (up(2.0), 3), (3.0, 3),        # > mediastinum, <= liver
    (up(3.0), 4), (6.0, 4),        # > liver, <= 2 x liver
    (up(6.0), 5), (40.0, 5),       # > 2 x liver: markedly higher
])
def test_deauville_on_each_side_of_every_boundary(lesion, expected):
    found = deauville(scan(lesion), DS2)
    assert (found.value, found.low, found.high) == (expected, expected, expected)
    assert found.definition == "hottest lesion suv_max vs bloodpool and liver suv_max; 5 above 2 x liver"


@pytest.mark.parametrize("lesion, expected", [(6.5, 4), (9.0, 4), (up(9.0), 5)])
def test_the_markedly_higher_cut_off_is_the_setting(lesion, expected):
    """Barrington et al.: "two to three times the maximum SUV in the liver"; with 3, 6.5 is still 4."""
    assert deauville(scan(lesion), DS3).value == expected


def test_deauville_reads_the_statistics_its_setting_names():
    lesion = scan(2.5, peak=1.9)
    assert deauville(lesion, DS2).value == 3                                           # 2.0 < 2.5 <= 3.0 (maxima)
    assert deauville(lesion, DeauvilleSetting("suv_max", "suv_mean", 2.0)).value == 4  # 2.2 < 2.5 (means)
    assert deauville(lesion, DeauvilleSetting("suv_peak", "suv_mean", 2.0)).value == 3  # 1.6 < 1.9 <= 2.2


def test_a_negative_scan_is_deauville_1_whatever_the_references():
    for refs in (REFS, {}):
        found = deauville(scan(None, refs, count=0), DS2)
        assert found.value == 1 and "negative scan" in found.note


@pytest.mark.parametrize("refs, expected, note", [
    ({"bloodpool": REFS["bloodpool"]}, (None, None, None), "no usable liver reference (suv_max)"),
    ({**REFS, "liver": RegionStats(mean=2.2, max=0.0)}, (None, None, None), "no usable liver reference"),
    ({**REFS, "liver": RegionStats(mean=2.2)}, (None, None, None), "no usable liver reference"),
    ({"liver": REFS["liver"]}, (None, 2, 3), "2 or 3: lesion 2.5 <= liver 3, no usable blood-pool reference"),
])
def test_deauville_without_a_usable_reference_is_null_or_bounded(refs, expected, note):
    found = deauville(scan(2.5, refs), DS2)
    assert (found.value, found.low, found.high) == expected and note in found.note


def test_without_blood_pool_4_and_5_are_still_known():
    assert deauville(scan(3.5, {"liver": REFS["liver"]}), DS2).value == 4
    assert deauville(scan(7.0, {"liver": REFS["liver"]}), DS2).value == 5


@pytest.mark.parametrize("lesion, expected", [(2.9, 2), (3.0, 3), (up(3.0), 4)])
def test_blood_pool_above_liver_compares_with_the_liver_only(lesion, expected):
    """Barrington et al. 2010: "If mediastinal blood pool activity is equal to or greater than activity in the liver,
    then the uptake within the lesion should be compared with that in the liver (lesion < liver score 2; lesion =
    liver score 3)"."""
    refs = {"bloodpool": RegionStats(max=3.5), "liver": RegionStats(max=3.0)}
    found = deauville(scan(lesion, refs), DS2)
    assert found.value == expected
    if expected < 4:
        assert "compared with the liver only" in found.note


def test_a_missing_lesion_statistic_is_null_with_its_reason():
    found = deauville(scan(None), DS2)
    assert found.value is None and found.note == "hottest lesion suv_max not stored"


scores = st.floats(0.01, 50.0)


@given(scores, scores, st.floats(1.01, 10.0))
def test_deauville_never_falls_as_the_lesion_rises(a, b, k):
    low, high = sorted((a, b))
    setting = DeauvilleSetting("suv_max", "suv_max", k)
    assert deauville(scan(low), setting).value <= deauville(scan(high), setting).value


@given(scores, st.floats(0.5, 5.0), st.floats(0.5, 5.0))
def test_deauville_never_rises_as_the_liver_rises(lesion, liver, more):
    refs = {"bloodpool": RegionStats(max=0.4), "liver": RegionStats(max=liver)}
    higher = {"bloodpool": RegionStats(max=0.4), "liver": RegionStats(max=liver + more)}
    assert deauville(scan(lesion, higher), DS2).value <= deauville(scan(lesion, refs), DS2).value


def test_qpet_is_the_hottest_peak_over_the_liver_mean():
    value, note = qpet(scan(9.0, peak=3.3))
    assert value == pytest.approx(3.3 / 2.2) and note == ""
    assert qpet(scan(None, count=0)) == (None, "negative scan: no lesion in the mask: no lesion to measure")
    assert qpet(scan(9.0, {"bloodpool": REFS["bloodpool"]}, peak=3.3))[0] is None


@pytest.mark.parametrize("value, category", [
    (0.5, 2), (math.nextafter(0.95, 0), 2), (0.95, 3), (math.nextafter(1.3, 0), 3), (1.3, 4),
    (math.nextafter(2.0, 0), 4), (2.0, 5), (7.0, 5)])
def test_qpet_borders_are_hasenclever_2014s(value, category):
    """"Deauville categories 3, 4, 5 correspond to qPET values of 0.95, 1.3 and 2.0" (Hasenclever et al. 2014)."""
    assert qpet_deauville(value) == category


#: Liver SUVmean 4 (a power of 2: 0.9 x 4 and 1.1 x 4 are the floats 3.6 and 4.4), spleen SUVmean 20 (SUVmax
#: higher: Krenning's setting reads means).
SSTR = {"liver": RegionStats(mean=4.0, max=8.0), "spleen": RegionStats(mean=20.0, max=30.0)}


@pytest.mark.parametrize("lesion, expected", [
    (1.0, 1), (math.nextafter(3.6, 0), 1),   # < 0.9 x liver: lower than liver
    (3.6, 2), (4.4, 2),                      # in [0.9, 1.1] x liver: equal to liver
    (up(4.4), 3), (20.0, 3),                 # above liver, <= spleen
    (up(20.0), 4), (80.0, 4),                # above spleen
])
def test_krenning_on_each_side_of_every_band(lesion, expected):
    found = krenning(scan(lesion, SSTR), KR)
    assert found.value == expected
    assert found.definition == "hottest lesion suv_max vs liver and spleen suv_mean; 2 for lesion/liver in [0.9, 1.1]"


def test_krenning_negative_and_missing_references():
    assert krenning(scan(None, SSTR, count=0), KR).value == 0
    no_spleen = krenning(scan(9.0, {"liver": SSTR["liver"]}), KR)
    assert (no_spleen.value, no_spleen.low, no_spleen.high) == (None, 3, 4) and "no usable spleen" in no_spleen.note
    assert krenning(scan(3.0, {"liver": SSTR["liver"]}), KR).value == 1  # below the liver: no spleen needed
    assert krenning(scan(9.0, {"spleen": SSTR["spleen"]}), KR).value is None


@given(scores, scores)
def test_krenning_never_falls_as_the_lesion_rises(a, b):
    low, high = sorted((a, b))
    assert krenning(scan(low, SSTR), KR).value <= krenning(scan(high, SSTR), KR).value
