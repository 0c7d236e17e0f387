"""Response between sessions (radiomx.derive.response): PERCIST 1.0, Lugano and Casasnovas on each side of every
boundary, SUL (not SUV) where PERCIST says SUL, the defined answers for negative, missing, failed and unplaced
sessions, and the rows through a real Parquet round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radiomx.derive.response import (
    RESPONSE_SCHEMA,
    SessionScan,
    casasnovas,
    compare_sessions,
    lugano,
    patient_response,
    percist,
)
from radiomx.derive.scores import RegionStats, ScanStatistics
from radiomx.derive.sessions import SessionDeclaration, order_sessions
from radiomx.params.paramset import default_params_root, resolve_params
from radiomx.params.readouts import CasasnovasSetting, DeauvilleSetting, LuganoSetting
from radiomx.tracers import get_tracer

#: The shipped FDG v3 read-outs: Deauville 2x liver SUVmax, qPET, PERCIST, Lugano 30 %.
FDG = resolve_params(default_params_root(), get_tracer("18F-FDG"), "v3", validate=False).readouts
TINY = 1e-6


def scan(name: str = "fu", *, count: int = 1, suv_max: float | None = None, peak: float | None = None,
         liver=(2.0, 0.3, 3.0), blood=(1.5, 0.2, 2.0), tmtv: float | None = 10.0, sul: float | None = 1.0,
         status: str = "ok", uptake: float | None = 3600.0, version: str = "v3") -> SessionScan:
    """One session; SUL factor 1 unless said (SUL = SUV), liver SULmean 2.0 and SD 0.3: measurable from 3.6."""
    refs = {}
    if liver:
        refs["liver"] = RegionStats(*liver)
    if blood:
        refs["bloodpool"] = RegionStats(*blood)
    stats = ScanStatistics(count, suv_max if suv_max is not None else peak, peak, refs)
    return SessionScan(name, status, stats, tmtv if count else 0.0, sul, "" if sul else "sex unknown; no SUL",
                       uptake, version)


def base(**kw) -> SessionScan:
    return scan("base", **kw)


@pytest.mark.parametrize("peak, measurable", [(3.6, True), (3.6 - TINY, False)])
def test_percist_measurability_is_1_5_liver_plus_2_sd(peak, measurable):
    category, figures = percist(base(peak=peak), scan(peak=peak), False)
    assert figures["percist_measurable_sul"] == pytest.approx(1.5 * 2.0 + 2 * 0.3)
    assert (category.value == "SMD") == measurable
    if not measurable:
        assert category.value is None and "below the measurability threshold 3.6" in category.note


@pytest.mark.parametrize("before, after, liver, expected", [
    (4.0, 2.8, (2.0, 0.3, 3.0), "PMR"), (4.0, 2.8 + TINY, (2.0, 0.3, 3.0), "SMD"),   # 30 % binds (-1.2 SUL)
    (4.0, 5.2, (2.0, 0.3, 3.0), "PMD"), (4.0, 5.2 - TINY, (2.0, 0.3, 3.0), "SMD"),
    (2.0, 1.2, (1.0, 0.1, 1.5), "PMR"), (2.0, 1.2 + TINY, (1.0, 0.1, 1.5), "SMD"),   # 0.8 SUL binds (-40 %)
    (2.0, 2.8, (1.0, 0.1, 1.5), "PMD"), (2.0, 2.8 - TINY, (1.0, 0.1, 1.5), "SMD"),
])
def test_percist_needs_30_percent_and_0_8_sul(before, after, liver, expected):
    category, _ = percist(base(peak=before, liver=liver), scan(peak=after, liver=liver), False)
    assert category.value == expected, category.note


@pytest.mark.parametrize("after, expected", [(2.0 - TINY, "CMR"), (2.0, "PMR")])
def test_percist_cmr_is_below_the_liver_sulmean(after, expected):
    category, _ = percist(base(peak=3.6), scan(peak=after), False)
    assert category.value == expected


def test_a_negative_follow_up_is_cmr():
    category, _ = percist(base(peak=5.0), scan(count=0), False)
    assert (category.value, category.note) == ("CMR", "no lesion at follow-up")


@pytest.mark.parametrize("before, after, comparable", [
    ((2.0, 0.3, 3.0), (2.3 - TINY, 0.3, 3.0), True), ((2.0, 0.3, 3.0), (2.3, 0.3, 3.0), False),   # < 0.3 SUL
    ((1.0, 0.1, 1.5), (1.2, 0.1, 1.5), True), ((1.0, 0.1, 1.5), (1.2 + TINY, 0.1, 1.5), False),   # within 20 %
])
def test_percist_asks_the_liver_to_agree_between_the_scans(before, after, comparable):
    category, _ = percist(base(peak=6.0, liver=before), scan(peak=6.0, liver=after), False)
    assert (category.value is not None) == comparable
    if not comparable:
        assert "scans not comparable" in category.note


def test_percist_measures_sul_not_suv():
    """Base SUVpeak 2.5, follow-up 1.55 with SUL factor 0.8: -0.95 SUV but -0.76 SUL: stable, not partial response;
    the liver threshold is in SUL too (1.25 x 0.8 = 1.0 SUL, SD 0.1: measurable from 1.7)."""
    liver = (1.25, 0.125, 2.0)
    category, figures = percist(base(peak=2.5, liver=liver, sul=0.8), scan(peak=1.55, liver=liver, sul=0.8), False)
    assert category.value == "SMD" and figures["percist_measurable_sul"] == pytest.approx(1.7)
    category, _ = percist(base(peak=2.5, liver=liver, sul=0.8), scan(peak=1.5, liver=liver, sul=0.8), False)
    assert category.value == "PMR"


def test_percist_without_sul_is_null_with_the_reason():
    category, _ = percist(base(peak=5.0), scan(peak=2.0, sul=None), False)
    assert category.value is None and category.note == "SUL unknown at follow-up session 'fu': sex unknown; no SUL"


def test_percist_falls_back_to_the_blood_pool_with_its_own_threshold():
    category, figures = percist(base(peak=6.0), scan(peak=3.0, liver=None), False)
    assert figures["percist_reference"] == "bloodpool"
    assert figures["percist_measurable_sul"] == pytest.approx(2.0 * 1.5 + 2 * 0.2)
    assert category.value == "PMR" and "blood pool used" in category.note
    assert percist(base(peak=6.0, blood=None), scan(peak=3.0, liver=None), False)[0].value is None


@pytest.mark.parametrize("progression, expected", [(False, "SMD"), (True, "PMD")])
def test_a_rise_in_lesion_count_is_pmd_only_when_the_parameter_file_says_so(progression, expected):
    category, _ = percist(base(peak=5.0, count=1), scan(peak=5.0, count=3), progression)
    assert category.value == expected
    row = compare_sessions(base(peak=5.0, count=1), scan(peak=5.0, count=3),
                           replace(FDG, new_lesions_are_progression=progression))
    assert row["new_lesions"] is True and row["delta_lesion_count"] == 2
    assert "cannot tell a new cancer lesion from another new finding" in row["response_note"]
    assert row["percist"] == expected and row["lugano"] == ("PMD" if progression else "NMR")


DS = DeauvilleSetting("suv_max", "suv_max", 2.0)
CHANGE = LuganoSetting(30.0)


@pytest.mark.parametrize("before, after, expected", [
    (10.0, 3.0, "CMR"),                    # Deauville 3 at follow-up (liver SUVmax 3.0)
    (10.0, 3.0 + TINY, "PMR"),             # Deauville 4, reduced by 70 %
    (10.0, 7.0, "PMR"), (10.0, 7.0 + TINY, "NMR"),   # Deauville 5: reduced by 30 %, or not
    (4.0, 5.2, "PMD"), (4.0, 5.2 - TINY, "NMR"),     # Deauville 4: increased by 30 %, or not
])
def test_lugano_from_deauville_and_the_change_band(before, after, expected):
    category = lugano(base(suv_max=before, peak=before), scan(suv_max=after, peak=after), DS, CHANGE, False)
    assert category.value == expected, category.note


def test_lugano_defined_answers():
    negative = lugano(base(suv_max=9.0, peak=9.0), scan(count=0), DS, CHANGE, False)
    assert (negative.value, negative.note) == ("CMR", "follow-up Deauville 1")
    no_blood = lugano(base(suv_max=9.0, peak=9.0), scan(suv_max=2.5, peak=2.5, blood=None), DS, CHANGE, False)
    assert (no_blood.value, no_blood.note) == ("CMR", "follow-up Deauville 2-3")
    no_liver = lugano(base(suv_max=9.0, peak=9.0), scan(suv_max=5.0, peak=5.0, liver=None), DS, CHANGE, False)
    assert no_liver.value is None and "no usable liver reference" in no_liver.note
    from_nothing = lugano(base(count=0), scan(suv_max=5.0, peak=5.0), DS, CHANGE, False)
    assert from_nothing.value == "PMD" and "baseline had no lesion" in from_nothing.note


@pytest.mark.parametrize("after, expected", [(3.4, "unfavourable"), (3.4 - TINY, "favourable")])
def test_casasnovas_needs_a_fall_of_more_than_66_percent(after, expected):
    before = base(suv_max=10.0, peak=10.0)
    follow = scan(suv_max=after, peak=after)
    row = compare_sessions(before, follow, replace(FDG, casasnovas=CasasnovasSetting(66.0)))
    assert row["delta_suv_max_pct"] == pytest.approx(-66.0, abs=1e-4) and row["delta_suv_max_class"] == expected
    assert casasnovas(before, scan(count=0), None, CasasnovasSetting(70.0)).value == "favourable"
    assert compare_sessions(before, follow, FDG).get("delta_suv_max_class") is None, "recorded, not classified"


def test_a_negative_follow_up_is_complete_response_by_both_criteria():
    row = compare_sessions(base(suv_max=12.0, peak=8.0, tmtv=40.0), scan(count=0), FDG)
    assert (row["percist"], row["lugano"]) == ("CMR", "CMR")
    assert row["delta_tmtv_pct"] == pytest.approx(-100.0) and row["delta_lesion_count"] == -1
    assert row["delta_suv_max_pct"] is None and row.get("delta_sul_peak") is None
    assert "negative follow-up" in row["response_note"] and "visual reads" in row["response_note"]


def test_deltas_use_the_hottest_lesion_and_sul():
    row = compare_sessions(base(suv_max=10.0, peak=8.0, tmtv=50.0, sul=0.75),
                           scan(suv_max=6.0, peak=4.0, tmtv=20.0, sul=0.8), FDG)
    assert row["delta_suv_max_pct"] == pytest.approx(-40.0)
    assert row["sul_peak_baseline"] == pytest.approx(6.0) and row["sul_peak"] == pytest.approx(3.2)
    assert row["delta_sul_peak"] == pytest.approx(-2.8) and row["delta_sul_peak_pct"] == pytest.approx(-2.8 / 6 * 100)
    assert row["delta_tmtv_pct"] == pytest.approx(-60.0)


def test_quality_notes_name_uptake_and_parameter_file_differences():
    row = compare_sessions(base(peak=6.0, uptake=3600.0, version="v2"), scan(peak=6.0, uptake=3600.0 + 16 * 60), FDG)
    assert "uptake times differ by 16 min" in row["response_note"]
    assert "different parameter files (v2, v3)" in row["response_note"]


def rows_by_session(rows: list[dict]) -> dict[str, dict]:
    assert len({r["session"] for r in rows}) == len(rows), "one row per session"
    assert all(set(r) == set(RESPONSE_SCHEMA.names) for r in rows)
    return {r["session"]: r for r in rows}


def test_a_patient_with_one_session_has_one_baseline_row():
    rows = rows_by_session(patient_response("P1", {"": base(peak=5.0)}, order_sessions([""]), FDG))
    row = rows[""]
    assert (row["session_rank"], row["baseline_session"], row["status"]) == (0, "", "ok")
    assert row["response_note"] == "baseline; one session: nothing to compare"
    assert row["deauville"] == row["deauville_baseline"] == 4 and row["percist"] is None


def test_every_session_gets_a_row_with_its_reason():
    declaration = SessionDeclaration(("screen", "base", "interim", "eot"), "base")
    scans = {"screen": scan("screen", peak=5.0), "base": base(peak=8.0, suv_max=9.0), "eot": scan("eot", count=0),
             "extra": scan("extra", peak=5.0)}
    rows = rows_by_session(patient_response("P1", scans, order_sessions(scans, declaration), FDG))
    assert rows["screen"]["response_note"] == "before the baseline session 'base': not compared"
    assert rows["base"]["response_note"] == "baseline" and rows["base"]["deauville"] == 5
    assert rows["interim"]["status"] == "missing"
    assert rows["interim"]["response_note"] == "no scan for this session (declared by radiomx.toml [sessions] order)"
    assert (rows["eot"]["percist"], rows["eot"]["lugano"], rows["eot"]["deauville"]) == ("CMR", "CMR", 1)
    assert rows["eot"]["deauville_baseline"] == 5 and rows["eot"]["baseline_session"] == "base"
    assert rows["extra"]["session_rank"] is None and "not in radiomx.toml [sessions] order" in rows["extra"][
        "response_note"]


def test_a_failed_or_missing_baseline_is_said_in_every_follow_up_row():
    order = order_sessions(["base", "fu"], SessionDeclaration(("base", "fu")))
    failed = rows_by_session(patient_response("P1", {"base": base(status="failed"), "fu": scan(peak=5.0)}, order,
                                              FDG))
    assert failed["base"]["response_note"] == "scan failed (see the failures table): no response"
    assert failed["fu"]["response_note"] == "baseline session 'base' failed (see the failures table): no response"
    missing = rows_by_session(patient_response("P1", {"fu": scan(peak=5.0)}, order, FDG))
    assert missing["base"]["status"] == "missing"
    assert missing["fu"]["response_note"] == "baseline session 'base' has no scan: no response"
    assert missing["fu"]["deauville"] == 4 and missing["fu"]["percist"] is None


def test_rows_round_trip_through_parquet_with_their_schema(tmp_path: Path):
    declaration = SessionDeclaration(("base", "fu1", "fu2"))
    scans = {"base": base(peak=8.0, suv_max=9.0, count=2), "fu1": scan("fu1", peak=5.0, suv_max=6.0, count=3),
             "fu2": scan("fu2", count=0)}
    rows = patient_response("P1", scans, order_sessions(scans, declaration), FDG)
    path = tmp_path / "response.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA), path)
    back = pq.read_table(path).to_pylist()
    assert [r["session"] for r in back] == ["base", "fu1", "fu2"]
    assert back[1]["new_lesions"] is True and back[2]["percist"] == "CMR"
    assert back[1]["delta_suv_max_pct"] == pytest.approx(-100 / 3)
