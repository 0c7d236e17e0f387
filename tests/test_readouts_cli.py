"""Issue 25 end to end through the CLI: a two-session FDG cohort and a DOTATATE one with uniform lesions and
reference regions (liver, blood pool, spleen) on each side of every boundary, extracted by ``radiomx extract``, read
back by ``radiomx table --which burden|response``, pandas and DuckDB; every score, delta and category is checked
against an independent numpy computation from the stored lesion and state rows, and against the category a hand
computation gives. Incremental: a no-change rerun rewrites nothing; a changed follow-up changes its own rows only;
an edited ``[sessions]`` declaration refreshes the table without any scan changing."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import write_volume

SHAPE = (20, 24, 24)
LIVER, BLOOD, SPLEEN = 2.0, 1.5, 5.0
WEIGHT, HEIGHT = 70.0, 1.75
READOUTS = """  suv_peak: ibsi-global
  sul:
    lbm_formula: janmahasatian
  scores:
{scores}
  response:
    new_lesions_are_progression: false
{response}"""
FDG_SCORES = """    deauville:
      lesion_statistic: suv_max
      reference_statistic: suv_max
      markedly_higher_than_liver: 2.0
    qpet: {}"""
FDG_RESPONSE = """    percist: {}
    lugano:
      significant_change_pct: 30"""
KRENNING = """    krenning:
      lesion_statistic: suv_max
      reference_statistic: suv_mean
      equal_to_liver: [0.9, 1.1]"""
PYRADIOMICS = ("setting:\n  binWidth: 0.25\n  minimumROIDimensions: 1\nimageType:\n  Original: {}\n"
               "featureClass:\n  firstorder: [Mean]\n")

#: patient -> (baseline hottest SUV, interim hottest SUV; None: negative, "absent": no scan), FDG. The expected
#: categories are hand computations: liver SUVmean 2.0, SD 0.1, SUVmax 2.1 (Deauville 5 above 2 x 2.1 = 4.2), blood
#: pool 1.5, one SUL factor f (0.798) at both sessions, PERCIST measurable from 1.5 x 2.0 + 2 x 0.1 = 3.2 SUV:
#: (Deauville baseline, Deauville interim, PERCIST, Lugano).
FDG = {
    "A": (8.0, 5.5, (5, 5, "PMR", "PMR")),     # -31.25 %, -2.5 f SUL
    "B": (8.0, 5.7, (5, 5, "SMD", "NMR")),     # -28.75 %: under 30 %
    "C": (3.3, 2.3, (4, 4, "SMD", "PMR")),     # -30.3 % but -1.0 f = -0.798 SUL: under 0.8 SUL
    "D": (3.3, 2.25, (4, 4, "PMR", "PMR")),    # -31.8 %, -1.05 f = -0.838 SUL
    "E": (4.2, 5.5, (4, 5, "PMD", "PMD")),     # +31 %, +1.04 SUL; 4.2 = 2 x liver SUVmax (float32): still 4
    "F": (4.0, 5.1, (4, 5, "SMD", "NMR")),     # +27.5 %
    "G": (3.1, 2.1, (4, 3, None, "CMR")),      # baseline 3.1 < 3.2: not measurable; 2.1 = liver SUVmax: 3
    "H": (3.3, None, (4, 1, "CMR", "CMR")),    # measurable; negative interim
    "I": (1.6, 1.4, (3, 2, None, "CMR")),      # 1.5 < 1.6 <= 2.1; 1.4 <= 1.5
    "J": (6.0, "absent", (5, None, None, None)),  # declared interim without a scan
}
#: DOTATATE: (baseline, interim) hottest SUVmax -> Krenning against liver SUVmean 2.0 (band 1.8-2.2), spleen 5.0.
DOTATATE = {"Q": ((1.7, 1), (1.9, 2)), "R": ((2.3, 3), (5.1, 4)), "S": ((4.9, 3), (2.1, 2))}


def write_scan(folder: Path, lesion: float | None, spleen: bool) -> None:
    """Uniform regions: a 16 mm lesion cube (none: a negative scan), liver 2.0 +- 0.1 (mean 2.0, SD 0.1, max 2.1),
    blood pool 1.5, spleen 5.0, background 0.5."""
    image = np.full(SHAPE, 0.5, dtype=np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    if lesion is not None:
        image[2:10, 2:10, 2:10] = lesion
        mask[2:10, 2:10, 2:10] = 1
    liver = np.zeros(SHAPE, dtype=np.uint8)
    liver[12:18, 2:10, 12:20] = 1
    checker = (np.indices(SHAPE).sum(axis=0) % 2).astype(np.float32)
    image[liver == 1] = (LIVER - 0.1 + 0.2 * checker)[liver == 1]
    blood = np.zeros(SHAPE, dtype=np.uint8)
    blood[2:8, 14:20, 14:20] = 1
    image[blood == 1] = BLOOD
    write_volume(image, folder / "pet.nii.gz")
    write_volume(mask, folder / "mask.nii.gz")
    write_volume(liver, folder / "ref-liver.nii.gz")
    write_volume(blood, folder / "ref-bloodpool.nii.gz")
    if spleen:
        region = np.zeros(SHAPE, dtype=np.uint8)
        region[12:18, 14:20, 2:8] = 1
        image[region == 1] = SPLEEN
        write_volume(image, folder / "pet.nii.gz")
        write_volume(region, folder / "ref-spleen.nii.gz")


def build(root: Path) -> tuple[Path, Path]:
    cohort, params = root / "cohort", root / "params"
    for patient, (base, interim, _) in FDG.items():
        write_scan(cohort / patient / "baseline" / "FDG", base, spleen=False)
        if interim != "absent":
            write_scan(cohort / patient / "interim" / "FDG", interim, spleen=False)
    for patient, ((base, _), (interim, _)) in DOTATATE.items():
        write_scan(cohort / patient / "baseline" / "DOTATATE", base, spleen=True)
        write_scan(cohort / patient / "interim" / "DOTATATE", interim, spleen=True)
    patients = [*FDG, *DOTATATE]
    (cohort / "participants.tsv").write_text("participant_id\tbody_weight\tsex\theight\n" + "".join(
        f"{p}\t{WEIGHT}\tmale\t{HEIGHT * 100:g}\n" for p in patients))
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n\n[sessions]\n'
                                         'order = ["baseline", "interim"]\n')
    for tracer, scores, response in (("18F-FDG", FDG_SCORES, FDG_RESPONSE), ("68Ga-DOTATATE", KRENNING, "")):
        (params / tracer).mkdir(parents=True)
        (params / tracer / "v1.yaml").write_text(
            "radiomx:\n  units: SUVbw\n" + READOUTS.format(scores=scores, response=response or "    {}")
            .replace("  response:\n    new_lesions_are_progression: false\n    {}", "  response: {}")
            + "\n" + PYRADIOMICS)
    return cohort, params


def extract(cohort: Path, out: Path, params: Path):
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir", str(params),
                                      "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    return result


def table(out: Path, which: str, tracer: str | None = None) -> pd.DataFrame:
    args = ["table", str(out), "--which", which, "--format", "csv"] + (["--tracer", tracer] if tracer else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout), dtype={"session": str, "patient_id": str, "baseline_session": str})


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("trial")
    cohort, params = build(root)
    out = root / "out"
    extract(cohort, out, params)
    return cohort, params, out


def lbm_janmahasatian_male(weight: float, height_m: float) -> float:
    return 9270 * weight / (6680 + 216 * weight / height_m**2)


def stored(out: Path, tracer: str) -> pd.DataFrame:
    """Per scan, from the stored lesion and state rows alone (numpy): the hottest SUVmax/SUVpeak, the references
    and the SUL factor."""
    lesions = pd.read_parquet(out / "features" / f"{tracer}.parquet")
    state = pd.read_parquet(out / "scans.parquet").query("tracer == @tracer").set_index(["patient_id", "session"])
    hottest = lesions.groupby(["patient_id", "session"])[["suv_max", "suv_peak"]].max()
    return state.join(hottest)


def test_sul_factor_and_lesion_sul_columns_are_janmahasatian_from_participants(trial):
    _, _, out = trial
    lesions = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    factor = lbm_janmahasatian_male(WEIGHT, HEIGHT) / WEIGHT
    assert np.allclose(lesions["sul_max"], lesions["suv_max"] * factor, rtol=1e-12)
    assert np.allclose(lesions["sul_peak"], lesions["suv_peak"] * factor, rtol=1e-12)
    assert np.allclose(lesions["sul_mean"], lesions["suv_mean"] * factor, rtol=1e-12)
    assert np.allclose(lesions["lbm_kg"], lbm_janmahasatian_male(WEIGHT, HEIGHT), rtol=1e-12)
    assert set(lesions["lbm_formula"]) == {"janmahasatian"}
    assert "sex" not in lesions.columns and "sex" not in pd.read_parquet(out / "scans.parquet").columns
    assert not any(c.startswith("suvbsa") for c in lesions.columns), "SUVbsa only where the parameter file asks"


def test_burden_scores_on_each_side_of_the_boundaries(trial):
    _, _, out = trial
    burden = table(out, "burden").set_index(["patient_id", "session", "tracer"])
    mine = stored(out, "18F-FDG")
    for patient, (base, interim, (d_base, d_interim, _, _)) in FDG.items():
        for session, lesion, expected in (("baseline", base, d_base), ("interim", interim, d_interim)):
            if lesion == "absent":
                continue
            row, s = burden.loc[(patient, session, "18F-FDG")], mine.loc[(patient, session)]
            assert row["deauville"] == expected, (patient, session, row["deauville_note"])
            # independent: hottest stored SUVmax against the stored liver and blood-pool SUVmax
            liver, blood = s["ref_liver_suv_max"], s["ref_bloodpool_suv_max"]
            assert liver == pytest.approx(LIVER + 0.1, rel=1e-6) and blood == pytest.approx(BLOOD, rel=1e-6)
            if lesion is None:
                assert row["lesion_count"] == 0 and expected == 1 and pd.isna(row["qpet"])
                continue
            hot = s["suv_max"]
            numpy_score = int(np.select([hot > 2 * liver, hot > liver, hot > blood], [5, 4, 3], 2))
            assert row["deauville"] == numpy_score
            assert row["qpet"] == pytest.approx(s["suv_peak"] / s["ref_liver_suv_mean"], rel=1e-12)
            assert row["sul_peak_hottest"] == pytest.approx(s["suv_peak"] * s["sul_factor"], rel=1e-12)
            assert row["ref_liver_sul_mean"] == pytest.approx(s["ref_liver_suv_mean"] * s["sul_factor"], rel=1e-12)
            assert "suv_max" in row["deauville_definition"] and "2 x liver" in row["deauville_definition"]
            assert pd.isna(row["krenning"]) and "not asked" in row["krenning_note"]


def test_krenning_with_liver_and_spleen(trial):
    _, _, out = trial
    burden = table(out, "burden", "68Ga-DOTATATE").set_index(["patient_id", "session"])
    mine = stored(out, "68Ga-DOTATATE")
    for patient, sessions in DOTATATE.items():
        for session, (_, expected) in zip(("baseline", "interim"), sessions, strict=True):
            row, s = burden.loc[(patient, session)], mine.loc[(patient, session)]
            assert row["krenning"] == expected, (patient, session, row["krenning_note"])
            hot, liver, spleen = s["suv_max"], s["ref_liver_suv_mean"], s["ref_spleen_suv_mean"]
            numpy_score = int(np.select([hot < 0.9 * liver, hot <= 1.1 * liver, hot <= spleen], [1, 2, 3], 4))
            assert row["krenning"] == numpy_score and spleen == pytest.approx(SPLEEN, rel=1e-6)
            assert pd.isna(row["deauville"]) and "not asked" in row["deauville_note"]


def test_response_categories_and_deltas_against_numpy(trial):
    _, _, out = trial
    response = table(out, "response", "fdg")
    assert list(response.columns[:2]) == ["patient_id", "session"]
    rows = response.set_index(["patient_id", "session"])
    mine = stored(out, "18F-FDG")
    for patient, (_base, interim, (d_base, d_interim, percist, lugano)) in FDG.items():
        row = rows.loc[(patient, "interim")]
        assert rows.loc[(patient, "baseline"), "response_note"] == "baseline"
        assert row["baseline_session"] == "baseline" and row["deauville_baseline"] == d_base
        if interim == "absent":
            assert row["status"] == "missing" and "no scan" in row["response_note"]
            continue
        assert (row["percist"] if pd.notna(row["percist"]) else None) == percist, (patient, row["percist_note"])
        assert row["lugano"] == lugano, (patient, row["lugano_note"])
        assert row["deauville"] == d_interim
        b, f = mine.loc[(patient, "baseline")], mine.loc[(patient, "interim")]
        threshold = 1.5 * b["ref_liver_suv_mean"] * b["sul_factor"] + 2 * b["ref_liver_suv_sd"] * b["sul_factor"]
        assert row["percist_measurable_sul"] == pytest.approx(threshold, rel=1e-12)
        if interim is None:
            assert row["status"] == "negative" and pd.isna(row["delta_suv_max_pct"])
            assert row["delta_tmtv_pct"] == pytest.approx(-100.0)
            continue
        assert row["delta_suv_max_pct"] == pytest.approx((f["suv_max"] - b["suv_max"]) / b["suv_max"] * 100,
                                                         rel=1e-12)
        change = f["suv_peak"] * f["sul_factor"] - b["suv_peak"] * b["sul_factor"]
        assert row["delta_sul_peak"] == pytest.approx(change, rel=1e-12, abs=1e-12)
        pct = change / (b["suv_peak"] * b["sul_factor"]) * 100
        assert row["delta_sul_peak_pct"] == pytest.approx(pct, rel=1e-12)
        measurable = b["suv_peak"] * b["sul_factor"] >= threshold
        numpy_percist = (None if not measurable else "PMR" if pct <= -30 and change <= -0.8
                         else "PMD" if pct >= 30 and change >= 0.8 else "SMD")
        assert (row["percist"] if pd.notna(row["percist"]) else None) == numpy_percist
    assert "2026" not in response.to_csv() and "sex" not in response.columns


def test_a_criterion_the_parameter_file_does_not_ask_for_is_null_with_that_reason(trial):
    """The DOTATATE file asks for Krenning only: its follow-ups' PERCIST and Lugano are null, each with the reason
    the score columns give (a null always has a reason)."""
    _, _, out = trial
    rows = table(out, "response", "68Ga-DOTATATE").set_index(["patient_id", "session"])
    burden = table(out, "burden", "68Ga-DOTATATE").set_index(["patient_id", "session"])
    for patient in DOTATATE:
        row = rows.loc[(patient, "interim")]
        assert row["status"] == "ok" and pd.isna(row["percist"]) and pd.isna(row["lugano"])
        assert row["percist_note"] == row["lugano_note"] == burden.loc[(patient, "interim"), "deauville_note"]
        assert row["percist_note"].startswith("not asked by the parameter file (68Ga-DOTATATE v"), row["percist_note"]


def test_naming_one_table_is_worded_for_the_library_and_the_cli(trial):
    """Two response tables (and no compare table): the library's read_table and ``radiomx table`` each get the
    way to name one in their own words (``tracer=`` / ``--tracer``)."""
    from radiomx.api import read_table
    from radiomx.errors import ConfigError

    _, _, out = trial
    for which in ("response", "compare"):
        with pytest.raises(ConfigError, match=f"name one {which} table \\(tracer=.* / --tracer"):
            read_table(out, which=which)
        result = CliRunner().invoke(cli, ["table", str(out), "--which", which])
        assert result.exit_code == 2 and "--tracer" in result.stderr, result.stderr


def test_readers_agree_pandas_duckdb_library(trial):
    import duckdb

    import radiomx

    _, _, out = trial
    path = out / "response" / "18F-FDG.parquet"
    library = radiomx.read_table(out, "18F-FDG", which="response")
    direct = pd.read_parquet(path)
    assert len(library) == len(direct) == 2 * len(FDG)
    assert str(library["deauville"].dtype) == "Int64" and str(library["session_rank"].dtype) == "Int64"
    assert library["new_lesions"].tolist() == direct["new_lesions"].tolist()  # null for a baseline, else a flag
    counted = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}') WHERE percist = 'PMR'").fetchall()[0][0]
    assert counted == sum(1 for _, _, c in FDG.values() if c[2] == "PMR")
    patients = pd.read_parquet(out / "patients.parquet").set_index(["patient_id", "session"])
    assert patients.loc[("A", "interim"), "18F-FDG__response__percist"] == "PMR"
    assert patients.loc[("A", "interim"), "18F-FDG__deauville"] == 5
    assert "18F-FDG__hottest__sul_peak" in patients.columns


def test_incremental_changed_follow_up_and_no_change_rerun(tmp_path: Path):
    cohort, params = build(tmp_path)
    for patient in list(FDG)[2:]:  # a smaller cohort: A, B and the DOTATATE patients
        shutil.rmtree(cohort / patient)
    out = tmp_path / "out"
    extract(cohort, out, params)
    files = [out / "response" / "18F-FDG.parquet", out / "response" / "68Ga-DOTATATE.parquet",
             out / "burden.parquet", out / "patients.parquet"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    extract(cohort, out, params)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before, "no-change rerun rewrote a table"

    old = pd.read_parquet(files[0]).set_index(["patient_id", "session"])
    write_scan(cohort / "A" / "interim" / "FDG", 7.5, spleen=False)  # A's follow-up changes: -6.25 %
    extract(cohort, out, params)
    new = pd.read_parquet(files[0]).set_index(["patient_id", "session"])
    changed = [k for k in new.index if not new.loc[k].equals(old.loc[k])]
    assert changed == [("A", "interim")] and new.loc[("A", "interim"), "percist"] == "SMD"
    assert files[1].read_bytes() == before[files[1]][1], "the other tracer's response table was rewritten"

    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n\n[sessions]\n'
                                         'order = ["interim", "baseline"]\n')
    extract(cohort, out, params)  # no scan changed: the declaration alone refreshes the order
    flipped = pd.read_parquet(files[0])
    assert set(flipped["baseline_session"]) == {"interim"}


def test_a_dicom_export_orders_sessions_by_its_own_numbering_without_writing_a_date(tmp_path: Path):
    """An export's studies of a tracer are ses-1, ses-2 in Study Date order (discover.dicom_export): the response
    table uses that order without a declaration, and no date reaches it."""
    from .export_builders import Export, dro_study
    from .test_dicom_export import minimal_params

    export = Export(tmp_path / "export")
    dro_study(export, "DRO_3_4", "P001", "20240901")  # written first, dated later: ses-2
    dro_study(export, "DRO_0_0", "P001", "20240105")
    out = tmp_path / "out"
    extract(export.root, out, minimal_params(tmp_path / "params"))
    response = table(out, "response")
    assert list(response["session"]) == ["ses-1", "ses-2"] and list(response["session_rank"]) == [0, 1]
    assert set(response["baseline_session"]) == {"ses-1"} and response["order_source"].str.contains("DICOM").all()
    features = pd.read_parquet(out / "features" / "18F-FDG.parquet").set_index("session")
    expected = (features.loc["ses-2", "suv_max"] - features.loc["ses-1", "suv_max"]) / features.loc["ses-1", "suv_max"]
    assert response.loc[1, "delta_suv_max_pct"] == pytest.approx(expected * 100, rel=1e-9)
    text = (out / "response" / "18F-FDG.parquet").read_bytes()
    assert b"2024" not in text and b"20240105" not in text


def test_james_and_suvbsa_where_the_parameter_file_asks(tmp_path: Path):
    """A parameter file with ``sul: {lbm_formula: james, suv_bsa: true}``: James's LBM in every row, and SUVbsa
    columns (Du Bois) appear; unknown sex gives a null SUL with the reason, never a guess."""
    cohort, params = build(tmp_path)
    for patient in [*list(FDG)[1:], *DOTATATE]:
        shutil.rmtree(cohort / patient)
    path = params / "18F-FDG" / "v1.yaml"
    path.write_text(path.read_text().replace("lbm_formula: janmahasatian", "lbm_formula: james\n    suv_bsa: true"))
    (cohort / "participants.tsv").write_text(f"participant_id\tbody_weight\tsex\theight\nA\t{WEIGHT}\tn/a\t175\n")
    out = tmp_path / "out"
    extract(cohort, out, params)
    lesions = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    assert lesions["sul_max"].isna().all() and lesions["sul_note"].str.contains("sex unknown").all()
    bsa = 0.007184 * (HEIGHT * 100) ** 0.725 * WEIGHT**0.425
    assert np.allclose(lesions["suvbsa_max"], lesions["suv_max"] * bsa * 1e4 / (WEIGHT * 1e3), rtol=1e-12)
    assert np.allclose(lesions["bsa_m2"], bsa, rtol=1e-12)

    (cohort / "participants.tsv").write_text(f"participant_id\tbody_weight\tsex\theight\nA\t{WEIGHT}\tF\t175\n")
    extract(cohort, out, params)  # the sex is an input of the scan: its rows are recomputed
    lesions = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    james = 1.07 * WEIGHT - 148 * (WEIGHT / (HEIGHT * 100)) ** 2
    assert np.allclose(lesions["lbm_kg"], james, rtol=1e-12) and set(lesions["lbm_formula"]) == {"james"}
    assert np.allclose(lesions["sul_max"], lesions["suv_max"] * james / WEIGHT, rtol=1e-12)
    response = pd.read_parquet(out / "response" / "18F-FDG.parquet").set_index("session")
    assert response.loc["interim", "sul_peak"] == pytest.approx(lesions.query("session == 'interim'")["sul_peak"]
                                                                 .max(), rel=1e-12)


def test_an_edited_sessions_tsv_acq_time_reorders_without_a_changed_scan_and_no_date_is_written(tmp_path: Path):
    from .test_bids import params_dir
    from .test_readouts_stored import cohort_with_sessions

    cohort = cohort_with_sessions(tmp_path / "bids")
    out, params = tmp_path / "out", params_dir(tmp_path / "params")
    extract(cohort, out, params)
    first = table(out, "response", "fdg").query("patient_id == '01'")
    assert list(first["session"]) == ["2", "1"] and set(first["baseline_session"]) == {"2"}
    assert set(first["order_source"]) == {"sessions.tsv acq_time"}
    tsv = cohort / "sub-01" / "sub-01_sessions.tsv"
    tsv.write_text(tsv.read_text().replace("2022-01-10T09:00:00", "2022-09-10T09:00:00"))
    result = extract(cohort, out, params)
    assert "0 scans computed" in result.stderr  # only the order changed
    second = table(out, "response", "fdg").query("patient_id == '01'")
    assert list(second["session"]) == ["1", "2"] and set(second["baseline_session"]) == {"1"}
    stored = (out / "response" / "18F-FDG.parquet").read_bytes()
    assert b"2022" not in stored and b"09:00" not in stored
