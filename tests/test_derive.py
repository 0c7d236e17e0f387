"""Burden, compare and patient tables from stored rows: known answers, nulls with reasons, BSA formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from radiomx.derive.bsa import body_surface_area, bsa_mosteller_m2
from radiomx.derive.burden import FEWER_THAN_TWO, build_burden
from radiomx.derive.compare import build_compare
from radiomx.derive.distances import dmax_bulk, dmax_centroid
from radiomx.derive.patients import build_patients
from radiomx.derive.refresh import refresh
from radiomx.derive.settings import DeriveSettings, settings_for
from radiomx.errors import ConfigError
from radiomx.records import ScanKey

from .derive_builders import commit, lesion_row, outcome

PENTIX, FDG = "68Ga-pentixafor", "18F-FDG"


# --- BSA: published formulas, worked values ------------------------------------------------------------------------

@pytest.mark.parametrize("formula, weight, height, expected", [
    # The 70 kg, 170 cm reference adult: 1.81 m2 by Du Bois, 1.82 m2 by Mosteller (rounded as tables give them).
    ("dubois", 70.0, 1.70, 1.81), ("mosteller", 70.0, 1.70, 1.82),
    # Mosteller's formula makes 180 cm x 80 kg exactly sqrt(14400 / 3600) = 2 m2.
    ("mosteller", 80.0, 1.80, 2.00),
    # Du Bois 1916 as 0.007184 W^0.425 H^0.725: 60 kg, 160 cm -> 1.6247 m2.
    ("dubois", 60.0, 1.60, 1.62),
])
def test_bsa_formulas_match_worked_values(formula, weight, height, expected):
    assert body_surface_area(formula, weight, height) == pytest.approx(expected, abs=0.005)


def test_bsa_is_none_without_height_or_weight_and_rejects_unknown_formula():
    assert body_surface_area("dubois", None, 1.7) is None and body_surface_area("mosteller", 70.0, 0.0) is None
    assert bsa_mosteller_m2(80.0, 1.8) == 2.0
    with pytest.raises(ValueError):
        body_surface_area("haycock", 70.0, 1.7)


# --- Dmax definitions ----------------------------------------------------------------------------------------------

def test_dmax_centroid_and_bulk_are_exact():
    points = np.array([[0.0, 0.0, 0.0], [30.0, 40.0, 0.0], [0.0, 10.0, 0.0]])
    assert dmax_centroid(points) == 50.0  # 3-4-5 triangle: (0,0,0)-(30,40,0)
    # Largest lesion is the third one: farthest from it is (30, 40, 0): sqrt(30^2 + 30^2).
    assert dmax_bulk(points, np.array([1.0, 2.0, 5.0])) == pytest.approx(math.sqrt(1800.0))
    assert dmax_centroid(points[:1]) is None and dmax_bulk(points[:1], np.array([1.0])) is None


# --- burden from committed rows ------------------------------------------------------------------------------------

@pytest.fixture
def stored(tmp_path) -> Path:
    """P001: pentixafor 3 lesions + FDG 2 lesions; P002: FDG only, 1 lesion; P003: pentixafor negative + FDG."""
    out = tmp_path / "out"
    p1x, p1f = ScanKey("P001", "", PENTIX), ScanKey("P001", "", FDG)
    p2f = ScanKey("P002", "", FDG)
    p3x, p3f = ScanKey("P003", "", PENTIX), ScanKey("P003", "", FDG)
    outcomes = [
        outcome(p1x, [lesion_row(p1x, 1, (0.0, 0.0, 0.0), 2.0, 8.0, 6.0, 4.0),
                      lesion_row(p1x, 2, (30.0, 40.0, 0.0), 1.0, 12.0, 7.0, 5.0),
                      lesion_row(p1x, 3, (0.0, 10.0, 0.0), 5.0, 6.0, 9.0, 3.0)]),
        outcome(p1f, [lesion_row(p1f, 1, (0.0, 0.0, 0.0), 4.0, 10.0, 8.0, 5.0),
                      lesion_row(p1f, 2, (0.0, 0.0, 100.0), 1.0, 5.0, 4.0, 2.0)]),
        outcome(p2f, [lesion_row(p2f, 1, (5.0, 5.0, 5.0), 3.0, 7.0, 5.0, 4.0)]),
        outcome(p3x, []),
        outcome(p3f, [lesion_row(p3f, 1, (1.0, 2.0, 3.0), 1.5, 4.0, 3.0, 2.0)]),
    ]
    body = {"height_m": 1.80, "weight_kg": 80.0}
    commit(out, outcomes, {p1x: {**body, "tmtv_ml": 8.0, "dmax_voxel_mm": 55.0, "ref_liver_suv_mean": 2.0},
                           p1f: {**body, "tmtv_ml": 5.0}, p3x: {**body, "tmtv_ml": 0.0}})
    return out


def _row(frame: pd.DataFrame, patient: str, tracer: str) -> pd.Series:
    return frame[(frame.patient_id == patient) & (frame.tracer == tracer)].iloc[0]


def test_burden_known_answers(stored):
    burden = build_burden(stored, DeriveSettings(bsa_formula="mosteller")).to_pandas()
    assert list(burden[["patient_id", "tracer"]].itertuples(index=False, name=None)) == [
        ("P001", FDG), ("P001", PENTIX), ("P002", FDG), ("P003", FDG), ("P003", PENTIX)]
    row = _row(burden, "P001", PENTIX)
    assert (row.status, row.lesion_count, row.lesions_measured) == ("ok", 3, 3)
    assert row.tmtv_ml == 8.0 and row.ttlg == pytest.approx(2 * 4 + 1 * 5 + 5 * 3)
    assert (row.suv_max_hottest, row.hottest_lesion_id, row.suv_peak_hottest) == (12.0, 2, 9.0)
    assert (row.mtv_largest_ml, row.largest_lesion_id) == (5.0, 3)
    assert row.dmax_centroid_mm == 50.0 and row.dmax_bulk_mm == pytest.approx(math.sqrt(1800.0))
    assert row.dmax_voxel_mm == 55.0 and row.ref_liver_suv_mean == 2.0 and math.isnan(row.ref_marrow_suv_mean)
    assert (row.bsa_formula, row.bsa_m2) == ("mosteller", 2.0)
    assert row.sdmax_per_m2 == pytest.approx(0.050 / 2.0)  # 50 mm = 0.05 m over 2 m2
    assert row.dmax_note == "" and row.sdmax_note == "" and row.burden_note == ""


def test_burden_nulls_carry_reasons(stored):
    burden = build_burden(stored, DeriveSettings()).to_pandas()
    negative = _row(burden, "P003", PENTIX)
    assert (negative.status, negative.lesion_count, negative.tmtv_ml, negative.ttlg) == ("negative", 0, 0.0, 0.0)
    assert math.isnan(negative.dmax_centroid_mm) and negative.dmax_note == FEWER_THAN_TWO
    single = _row(burden, "P002", FDG)
    assert single.lesion_count == 1 and math.isnan(single.dmax_centroid_mm) and single.dmax_note == FEWER_THAN_TWO
    assert single.tmtv_ml == 3.0  # no stored union: the sum of the lesions' MTV (disjoint in a label map)
    no_height = _row(burden, "P003", FDG)
    assert "no Dmax" in no_height.sdmax_note
    two = _row(burden, "P001", FDG)
    assert two.dmax_centroid_mm == 100.0 and two.bsa_formula == "dubois"
    assert two.bsa_m2 == pytest.approx(0.007184 * 80**0.425 * 180**0.725)


def test_compare_lists_one_sided_patients_with_a_reason(stored):
    refresh(stored, None, DeriveSettings())
    table, pairs = (t.to_pandas() for t in build_compare(stored, PENTIX, FDG, None, DeriveSettings()))
    assert list(table["patient_id"]) == ["P001", "P002", "P003"] and pairs.empty
    p1, p2, p3 = (table.iloc[i] for i in range(3))
    assert p1.missing_reason == "" and p1.positive_on == "both"
    assert (p1.lesion_count_a, p1.lesion_count_b, p1.lesion_count_diff, p1.lesion_count_ratio) == (3, 2, 1, 1.5)
    assert p1.tmtv_ml_ratio == pytest.approx(8.0 / 5.0) and p1.dmax_centroid_mm_diff == pytest.approx(-50.0)
    assert p1.lesion_pairing.startswith("not declared:") and "cohort not known" in p1.days_between_note
    assert p2.missing_reason == f"no {PENTIX} scan" and pd.isna(p2.positive_on) and p2.lesion_count_b == 1
    assert p3.positive_on == "only_b" and p3.status_a == "negative" and p3.lesion_count_ratio == 0.0


def test_a_refresh_that_cannot_read_the_dates_keeps_them_for_unchanged_images_only(stored):
    """days_between read earlier is kept by a refresh without the cohort while both images are the same (by
    sha256); once an image changes, the old value is not carried to it."""
    import pyarrow.parquet as pq

    from radiomx.derive.compare import compare_path

    refresh(stored, None, DeriveSettings(), add_pair=(PENTIX, FDG))
    path = compare_path(stored, PENTIX, FDG)
    table = pq.read_table(path)
    days = [5 if p == "P001" else None for p in table["patient_id"].to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("days_between"), "days_between",
                                    pa.array(days, pa.int64())), path)  # as a build with the cohort wrote it
    refresh(stored, None, DeriveSettings())
    kept = pd.read_parquet(path).set_index("patient_id").loc["P001"]
    assert (kept.days_between, kept.days_between_note, kept.image_sha256_a) == (5, "", "i")
    state = pd.read_parquet(stored / "scans.parquet")
    state.loc[(state["patient_id"] == "P001") & (state["tracer"] == FDG), "image_sha256"] = "j"  # recomputed scan
    state.to_parquet(stored / "scans.parquet", index=False)
    refresh(stored, None, DeriveSettings())
    changed = pd.read_parquet(path).set_index("patient_id").loc["P001"]
    assert pd.isna(changed.days_between) and changed.days_between_note.startswith("cohort not known")
    assert changed.image_sha256_b == "j"


def test_patient_table_blocks_and_duckdb_round_trip(stored):
    refresh(stored, None, DeriveSettings())
    from radiomx.derive.compare import write_compare

    write_compare(stored, PENTIX, FDG, None, DeriveSettings())
    refresh(stored, None, DeriveSettings())
    patients = build_patients(stored).to_pandas()
    assert list(patients["patient_id"]) == ["P001", "P002", "P003"]
    row = patients.set_index("patient_id").loc["P001"]
    assert row[f"{PENTIX}__lesion_count"] == 3 and row[f"{FDG}__tmtv_ml"] == 5.0
    assert row[f"{PENTIX}__hottest__suv_max"] == 12.0 and row[f"{PENTIX}__largest__mtv_ml"] == 5.0
    assert row[f"{PENTIX}__hottest__original_firstorder_Mean"] == 5.0
    assert row[f"{PENTIX}_vs_{FDG}__positive_on"] == "both"
    assert pd.isna(patients.set_index("patient_id").loc["P002", f"{PENTIX}__status"])
    assert all(len(c.split("__")) in (1, 2, 3) for c in patients.columns)
    path = stored / "patients.parquet"
    via_duckdb = duckdb.sql(f'SELECT patient_id, "{PENTIX}__tmtv_ml" AS t FROM \'{path}\' ORDER BY 1').df()
    assert via_duckdb["t"].tolist()[0] == 8.0 and math.isnan(via_duckdb["t"].tolist()[1])


def test_settings_come_from_radiomx_toml(tmp_path):
    (tmp_path / "radiomx.toml").write_text('[derive]\nbsa_formula = "mosteller"\n[compare]\nsame_frame = ["P1"]\n')
    settings = settings_for(tmp_path)
    assert settings.bsa_formula == "mosteller" and settings.shares_frame("P1") and not settings.shares_frame("P2")
    (tmp_path / "radiomx.toml").write_text('[derive]\nbsa_formula = "haycock"\n')
    with pytest.raises(ConfigError, match="bsa_formula must be one of dubois, mosteller"):
        settings_for(tmp_path)
    (tmp_path / "radiomx.toml").write_text('[compare]\nsame_frames = true\n')
    with pytest.raises(ConfigError, match="unknown \\[compare\\] key"):
        settings_for(tmp_path)


# --- acquisition dates (read at compare time, never stored) -------------------------------------------------------

def test_acquisition_date_from_dicom_headers_and_sidecars(tmp_path):
    from datetime import date, datetime

    from radiomx.inputs.dates import acquisition_date

    from .corpus import lesion_volume
    from .corpus.dicom_pet import write_pet_series

    suv, _ = lesion_volume(shape=(4, 8, 8))
    write_pet_series(tmp_path / "pet", suv, (4.0, 4.0, 4.0), series_time=datetime(2023, 11, 5, 10, 0))
    assert acquisition_date(tmp_path / "pet") == date(2023, 11, 5)
    image = tmp_path / "nifti" / "pet.nii.gz"
    image.parent.mkdir()
    image.write_bytes(b"")
    for sidecar, expected in [({"AcquisitionDateTime": "2024-02-29T23:59:00"}, date(2024, 2, 29)),
                              ({"ScanDate": "20240101"}, date(2024, 1, 1)),
                              ({"AcquisitionDateTime": "n/a", "StudyDate": "2022-12-31"}, date(2022, 12, 31)),
                              ({"Units": "g/mL"}, None), ([], None)]:
        (tmp_path / "nifti" / "pet.json").write_text(json.dumps(sidecar))
        assert acquisition_date(image) == expected, sidecar
    (tmp_path / "nifti" / "pet.json").unlink()
    assert acquisition_date(image) is None
