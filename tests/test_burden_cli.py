"""Negative scans, burden, compare and the patient table through the real CLI, on real cohorts in tmp_path."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import make_cohort, sphere_scan, write_volume

RADIOMX = [sys.executable, "-m", "radiomx"]
PENTIX, FDG = "68Ga-pentixafor", "18F-FDG"
COMPARE = Path("compare") / f"{PENTIX}_vs_{FDG}.parquet"


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def empty_mask(scan_folder: Path) -> None:
    mask = sitk.ReadImage(str(scan_folder / "mask.nii.gz"))
    empty = sitk.GetImageFromArray(np.zeros(sitk.GetArrayViewFromImage(mask).shape, dtype=np.uint8))
    empty.CopyInformation(mask)
    sitk.WriteImage(empty, str(scan_folder / "mask.nii.gz"))


def dated(scan_folder: Path, when: str) -> None:
    """A BIDS-style sidecar: already SUV, and an acquisition date (read at compare time, never stored)."""
    (scan_folder / "pet.json").write_text(json.dumps({"Units": "g/mL", "AcquisitionDateTime": when}))


@pytest.fixture
def cohort(tmp_path) -> Path:
    """P001: pentixafor 1 lesion, FDG 2 (the pentixafor lesion is FDG's lesion 1, same grid); P002: FDG only;
    P003: pentixafor negative (empty mask) and FDG 1 lesion. P001's scans are dated 12 days apart."""
    root = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 1},
                                             "P003": {"FDG": 1, "pentixafor": 1}})
    empty_mask(root / "P003" / "pentixafor")
    dated(root / "P001" / "pentixafor", "2024-03-01T09:30:00")
    dated(root / "P001" / "FDG", "2024-03-13T14:00:00")
    return root


def _files(out: Path) -> dict[str, tuple[bytes, int]]:
    paths = [out / "burden.parquet", out / "patients.parquet", *sorted((out / "compare").glob("*.parquet"))]
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in paths if p.exists()}


def test_negative_scan_is_data_not_a_failure(cohort, tmp_path):
    out = tmp_path / "out"
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert "FAILED" not in result.stderr
    assert "5 scans computed, 0 unchanged, 1 negative (no lesion in mask), 0 with failures" in result.stderr
    failures = out / "failures.parquet"
    assert not failures.exists() or pd.read_parquet(failures).empty
    state = pd.read_parquet(out / "scans.parquet").set_index(["patient_id", "tracer"])
    assert state.loc[("P003", PENTIX), "status"] == "negative" and state.loc[("P003", PENTIX), "n_lesions"] == 0
    burden = pd.read_parquet(out / "burden.parquet").set_index(["patient_id", "tracer"])
    row = burden.loc[("P003", PENTIX)]
    assert (row["status"], row["lesion_count"], row["tmtv_ml"]) == ("negative", 0, 0.0)
    assert row["dmax_note"] == "fewer than 2 lesions"
    rerun = run("extract", cohort, "-o", out, "-j", "1")  # a negative scan is done, not retried
    assert rerun.exit_code == 0 and "0 scans computed, 5 unchanged" in rerun.stderr
    status = run("status", cohort, "-o", out)
    lines = [ln.split() for ln in status.stdout.splitlines()]
    assert lines[0] == ["tracer", "done", "negative", "pending", "changed", "failed", "vanished"]
    assert [PENTIX, "1", "1", "0", "0", "0", "0"] in lines and [FDG, "3", "0", "0", "0", "0", "0"] in lines


def test_missing_mask_is_still_a_failure(cohort, tmp_path):
    (cohort / "P003" / "pentixafor" / "mask.nii.gz").unlink()
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1 and "no mask found" in result.stderr
    burden = pd.read_parquet(tmp_path / "out" / "burden.parquet").set_index(["patient_id", "tracer"])
    assert burden.loc[("P003", PENTIX), "status"] == "failed" and pd.isna(burden.loc[("P003", PENTIX), "tmtv_ml"])
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert list(failures["severity"]) == ["failure"]
    failed = [line for line in run("status", cohort, "-o", tmp_path / "out").stdout.splitlines() if "P003" in line]
    assert failed and failed[-1].startswith(f"FAILED P003/{PENTIX} [") and "no mask found" in failed[-1]


def test_compare_lists_every_patient_with_days_between_and_no_date_in_out(cohort, tmp_path):
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    result = run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort)
    assert result.exit_code == 0, result.stderr
    assert "2 with both scans, 1 with one only, 1 dated" in result.stderr and result.stdout == ""
    table = pd.read_parquet(out / COMPARE).set_index("patient_id")
    assert list(table.index) == ["P001", "P002", "P003"]
    assert table.loc["P001", "days_between"] == 12 and table.loc["P001", "positive_on"] == "both"
    assert table.loc["P002", "missing_reason"] == f"no {PENTIX} scan"
    assert table.loc["P003", "positive_on"] == "only_b" and "no acquisition date" in table.loc["P003",
                                                                                               "days_between_note"]
    assert table.loc["P001", "lesion_pairing"].startswith("not declared:")
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"2024-03" not in data and b"202403" not in data, path  # only the day difference is stored


def test_compare_usage_errors_exit_2(cohort, tmp_path):
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    bad = run("compare", out, "--tracers", "pentixafor,nosuchtracer")
    assert bad.exit_code == 2 and "unknown tracer folder 'nosuchtracer'" in bad.stderr
    assert run("compare", out, "--tracers", "fdg").exit_code == 2
    assert run("compare", tmp_path / "nothing", "--tracers", "fdg,pentixafor").exit_code == 2


def test_declared_same_frame_pairs_lesions_by_overlap_and_caches_pairs(cohort, tmp_path):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[compare]\nsame_frame = ["P001"]\n')
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort).exit_code == 0
    table = pd.read_parquet(out / COMPARE).set_index("patient_id")
    p1 = table.loc["P001"]
    assert p1["lesion_pairing"].startswith("declared same frame")
    # Spheres of radius 4 voxels (n voxels) centred 8 apart touch in one voxel, which FDG's lesion 2 takes: the
    # pentixafor lesion (n) overlaps FDG's lesion 1 in n - 1 voxels.
    z, y, x = np.indices((9, 9, 9)) - 4
    n = int((z**2 + y**2 + x**2 <= 16).sum())
    assert (p1["lesions_paired"], p1["lesions_only_a"], p1["lesions_only_b"]) == (1, 0, 1)
    assert p1["dice_mean"] == pytest.approx(2 * (n - 1) / (n + n - 1), abs=1e-12)
    # All lesions together: the pentixafor sphere lies wholly inside FDG's union (2n - 1 voxels).
    assert p1["dice_union"] == pytest.approx(2 * n / (n + 2 * n - 1), abs=1e-12)
    assert table.loc["P003", "lesion_pairing"].startswith("not declared:")
    pairs = pd.read_parquet(out / "compare" / f"{PENTIX}_vs_{FDG}.lesions.parquet")
    assert pairs["lesion_id_a"].tolist()[0] == 1 and pd.isna(pairs["lesion_id_a"].tolist()[1])
    assert pairs["lesion_id_b"].tolist() == [1, 2] and set(pairs["patient_id"]) == {"P001"}
    before = _files(out)
    shutil.move(cohort / "P001" / "pentixafor" / "mask.nii.gz", tmp_path / "moved.nii.gz")
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort).exit_code == 0
    assert _files(out) == before  # unchanged masks (by stored sha256): pairs reused, no mask read, nothing written


def test_no_change_rerun_rewrites_no_derived_file_and_a_changed_scan_updates_its_rows(cohort, tmp_path):
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort).exit_code == 0
    before = _files(out)
    assert set(before) == {"burden.parquet", "patients.parquet", str(COMPARE)}
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert _files(out) == before  # same bytes and same mtimes: nothing rewritten
    old_burden, old_compare = pd.read_parquet(out / "burden.parquet"), pd.read_parquet(out / COMPARE)
    image, mask = sphere_scan(centres=((12, 8, 8), (12, 16, 8), (12, 24, 8)), seed=4)
    write_volume(image, cohort / "P002" / "FDG" / "pet.nii.gz")
    write_volume(mask, cohort / "P002" / "FDG" / "mask.nii.gz")
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert "1 scans computed, 4 unchanged" in result.stderr
    new_burden, new_compare = pd.read_parquet(out / "burden.parquet"), pd.read_parquet(out / COMPARE)
    changed = (new_burden.patient_id == "P002")
    assert new_burden.loc[changed, "lesion_count"].tolist() == [3]
    pd.testing.assert_frame_equal(old_burden[~changed].reset_index(drop=True),
                                  new_burden[~changed].reset_index(drop=True))
    assert new_compare.set_index("patient_id").loc["P002", "lesion_count_b"] == 3
    pd.testing.assert_frame_equal(old_compare[old_compare.patient_id != "P002"].reset_index(drop=True),
                                  new_compare[new_compare.patient_id != "P002"].reset_index(drop=True))


def test_table_tracer_selects_one_tracers_rows_in_every_table(cohort, tmp_path):
    """Issue 21.6: --tracer was ignored by --which burden and patients (every tracer's rows were printed). Burden,
    scans and failures keep that tracer's rows; the patient table keeps its column block, for the patients with a
    scan of it; a tracer the table lacks, or a table without tracers, is exit 2."""
    (cohort / "P003" / "pentixafor" / "mask.nii.gz").unlink()  # one failure row, pentixafor
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    for which in ("burden", "scans", "failures"):
        result = run("table", out, "--which", which, "--tracer", "pentixafor")
        assert result.exit_code == 0, result.stderr
        printed = pd.read_csv(io.StringIO(result.stdout))
        assert len(printed) and set(printed["tracer"]) == {PENTIX}, which
    fdg = pd.read_csv(io.StringIO(run("table", out, "--which", "burden", "--tracer", "fdg").stdout))
    assert fdg["patient_id"].tolist() == ["P001", "P002", "P003"] and set(fdg["tracer"]) == {FDG}
    patients = pd.read_csv(io.StringIO(run("table", out, "--which", "patients", "--tracer", "pentixafor").stdout))
    assert patients["patient_id"].tolist() == ["P001", "P003"]  # P002 has no pentixafor scan
    assert [c for c in patients.columns if not c.startswith(f"{PENTIX}__")] == ["patient_id", "session"]
    assert f"{PENTIX}__lesion_count" in patients.columns
    missing = run("table", out, "--which", "burden", "--tracer", "dotatate")
    assert missing.exit_code == 2 and "no rows in the burden table (has: 18F-FDG, 68Ga-pentixafor)" in missing.stderr
    assert run("table", out, "--which", "runs", "--tracer", "fdg").exit_code == 2


@pytest.mark.parametrize("which", ["features", "burden", "patients", "compare", "failures", "scans", "runs"])
def test_read_table_reads_every_table_as_radiomx_table_prints_it(cohort, tmp_path, which):
    """Issue 21 (also): ``radiomx.read_table`` reads the derived and bookkeeping tables too, with the dtypes of
    ``radiomx table`` (integer columns stay Int64 with nulls), and the tracer selection alike."""
    import radiomx

    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg").exit_code == 0
    frame = radiomx.read_table(out, which=which)
    piped = subprocess.run([*RADIOMX, "table", str(out), "--which", which, "--format", "parquet"],
                           capture_output=True, check=True)
    printed = pd.read_parquet(io.BytesIO(piped.stdout))
    keys = [c for c in ("run_id", "patient_id", "session", "tracer", "lesion_id") if c in frame.columns]
    ordered = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(ordered, printed, check_dtype=True)
    if which in ("burden", "patients"):
        assert any(str(t) == "Int64" for t in frame.dtypes), frame.dtypes
    if which == "features":  # QA2 D11: they came as float64 (2.0) while `radiomx table` printed 2
        named = ["roi_number", "segment_number", "label_value", "component_number", "lesion_id", "voxel_count"]
        assert [str(frame[c].dtype) for c in named] == ["Int64"] * len(named), frame[named].dtypes
    if which in ("burden", "scans"):
        only = radiomx.read_table(out, "fdg", which=which)
        assert set(only["tracer"]) == {FDG} and len(only) == 3


@pytest.mark.parametrize("which", ["burden", "patients", "compare"])
def test_table_prints_derived_tables_and_they_round_trip(cohort, tmp_path, which):
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort).exit_code == 0
    path = {"burden": out / "burden.parquet", "patients": out / "patients.parquet", "compare": out / COMPARE}[which]
    stored = pd.read_parquet(path)
    as_parquet = subprocess.run([*RADIOMX, "table", str(out), "--which", which, "--format", "parquet"],
                                capture_output=True, check=True)
    assert as_parquet.stderr == b""
    # Arrow types and values as stored: an integer column with nulls (a negative scan's largest_lesion_id) stays
    # int64 through the pipe, not the float64 pandas would make of it.
    piped, kept = pq.read_table(io.BytesIO(as_parquet.stdout)), pq.read_table(path).replace_schema_metadata(None)
    text = {pa.large_string(): pa.string()}  # pandas' own text type is large_string: the same values
    assert [text.get(t, t) for t in piped.schema.types] == [text.get(t, t) for t in kept.schema.types]
    assert piped.cast(kept.schema).equals(kept)
    as_csv = run("table", out, "--which", which)
    assert as_csv.exit_code == 0
    printed = pd.read_csv(io.StringIO(as_csv.stdout), dtype=str, keep_default_na=False)
    assert list(printed.columns) == list(stored.columns)
    for name in (f.name for f in kept.schema if pa.types.is_integer(f.type)):
        assert not printed[name].str.contains(".", regex=False).any(), name  # 2, never 2.0
    if which == "patients":  # a negative or missing scan must not turn a tracer's ids and counts into floats
        types = {f.name: f.type for f in kept.schema}
        for name in (f"{PENTIX}__largest_lesion_id", f"{PENTIX}__lesion_count", f"{PENTIX}__largest__voxel_count"):
            assert types[name] == pa.int64(), (name, types[name])
    if which == "burden":
        by_patient = printed.set_index(["patient_id", "tracer"])["largest_lesion_id"]
        assert by_patient[("P003", PENTIX)] == "" and by_patient[("P001", FDG)] in {"1", "2"}
    by_duckdb = duckdb.sql(f"SELECT * FROM '{path}'").df()
    assert len(by_duckdb) == len(stored) and list(by_duckdb.columns) == list(stored.columns)
    assert by_duckdb["patient_id"].tolist() == stored["patient_id"].tolist()


def test_compare_finds_the_cohort_in_the_run_log(cohort, tmp_path):
    """Real subprocesses (the run log records the command line): without --cohort, compare reads the last
    extract's COHORT and still gets the dates."""
    subprocess.run([*RADIOMX, "extract", "cohort", "-o", "out", "-j", "1"], cwd=tmp_path, check=True,
                   capture_output=True)
    done = subprocess.run([*RADIOMX, "compare", "out", "--tracers", f"{PENTIX},{FDG}"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert pd.read_parquet(tmp_path / "out" / COMPARE).set_index("patient_id").loc["P001", "days_between"] == 12


def test_the_readme_says_what_compare_gives(cohort, tmp_path):
    """Issue 21.10: compare lists every patient with a scan of either tracer (P002 has FDG only); the README said
    "one row per patient with both scans"."""
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg").exit_code == 0
    table = pd.read_parquet(out / COMPARE).set_index("patient_id")
    assert table.loc["P002", "missing_reason"] == f"no {PENTIX} scan"  # listed, though it has one scan only
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    lines = [line for line in readme.splitlines() if "radiomx compare OUT" in line or "OUT/compare/" in line]
    assert lines and all("both scans" not in line for line in lines)
    assert all("either" in line for line in lines), lines


def _days(out: Path) -> int:
    return pd.read_parquet(out / COMPARE).set_index("patient_id").loc["P001", "days_between"]


def test_compare_run_from_another_folder_keeps_days_between(cohort, tmp_path):
    """Issue 21.4: compare started from another folder (OUT given absolute) finds the cohort the run recorded
    (relative to OUT), not relative to the working folder; it used to rewrite every date as null and exit 0."""
    subprocess.run([*RADIOMX, "extract", "cohort", "-o", "out", "-j", "1"], cwd=tmp_path, check=True,
                   capture_output=True)
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run([*RADIOMX, "compare", str(tmp_path / "out"), "--tracers", "pentixafor,fdg"],
                          cwd=tmp_path / "elsewhere", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 dated" in done.stderr and _days(tmp_path / "out") == 12


def test_compare_on_an_out_written_by_the_library_finds_its_cohort(cohort, tmp_path):
    """An OUT written by ``radiomx.extract()`` (no command line to parse) has its cohort in the run log too."""
    from radiomx import api
    from radiomx.options import ExtractOptions

    assert api.extract(cohort, tmp_path / "out", ExtractOptions(jobs=1)).exit_code == 0
    result = run("compare", tmp_path / "out", "--tracers", "pentixafor,fdg")
    assert result.exit_code == 0, result.stderr
    assert _days(tmp_path / "out") == 12


def test_a_refresh_without_the_cohort_loses_no_value(tmp_path):
    """A cohort the run log cannot record (its path from OUT names other folders) and a cohort moved away: compare
    without --cohort keeps the days of unchanged images and the cohort's BSA formula, instead of nulls and the
    default."""
    root = make_cohort(tmp_path / "data" / "cohort", {"P001": {"FDG": 1, "pentixafor": 1}})
    dated(root / "P001" / "pentixafor", "2024-03-01T09:30:00")
    dated(root / "P001" / "FDG", "2024-03-13T14:00:00")
    (root / "radiomx.toml").write_text('[derive]\nbsa_formula = "mosteller"\n')
    out = tmp_path / "results" / "out"
    assert run("extract", root, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", root).exit_code == 0
    assert pd.read_parquet(out / "runs.parquet")["cohort"].tolist() == [""]  # ../../data/cohort names "data"
    before = pd.read_parquet(out / "burden.parquet")["bsa_formula"].unique().tolist()
    result = run("compare", out, "--tracers", "pentixafor,fdg")
    assert result.exit_code == 0, result.stderr
    assert _days(out) == 12 and before == ["mosteller"]
    assert pd.read_parquet(out / "burden.parquet")["bsa_formula"].unique().tolist() == ["mosteller"]
    shutil.move(str(tmp_path / "data"), str(tmp_path / "moved"))
    assert run("compare", out, "--tracers", "pentixafor,fdg").exit_code == 0 and _days(out) == 12


def test_burden_end_to_end_with_the_worker_pet_indices(tmp_path):
    """Two spheres of radius 4 voxels centred 12 voxels apart along y on a 2 mm grid: Dmax = 24 mm exactly."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2}})
    image, mask = sphere_scan(centres=((12, 8, 8), (12, 20, 8)), seed=3)
    write_volume(image, cohort / "P001" / "FDG" / "pet.nii.gz")
    write_volume(mask, cohort / "P001" / "FDG" / "mask.nii.gz")
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    lesions = pd.read_parquet(out / "features" / f"{FDG}.parquet")
    row = pd.read_parquet(out / "burden.parquet").iloc[0]
    assert row["lesion_count"] == 2 and row["dmax_centroid_mm"] == pytest.approx(24.0, abs=1e-9)
    assert row["dmax_bulk_mm"] == pytest.approx(24.0, abs=1e-9)
    assert row["suv_max_hottest"] == lesions["suv_max"].max()
    assert row["tmtv_ml"] == pytest.approx(lesions["mtv_ml"].sum())
    assert row["ttlg"] == pytest.approx(lesions["tlg"].sum())
    assert row["burden_note"] == ""


def test_an_all_negative_ct_cohort_reads_as_ct(tmp_path):
    """No CT lesion table at all (every CT mask empty): the rows still say CT, with TTLG null, not 0."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"CT": 1}})
    empty_mask(cohort / "P001" / "CT")
    assert run("extract", cohort, "-o", tmp_path / "out", "-j", "1").exit_code == 0
    assert not (tmp_path / "out" / "features" / "CT.parquet").exists()
    row = pd.read_parquet(tmp_path / "out" / "burden.parquet").iloc[0]
    assert row["status"] == "negative" and row["lesion_count"] == 0 and row["tmtv_ml"] == 0.0
    assert pd.isna(row["ttlg"]) and row["burden_note"].startswith("CT scan (HU)")


def test_a_ct_scan_has_its_volumes_and_dmax_bulk_and_no_suv_fields(tmp_path):
    """A CT (HU) lesion table has volume_ml and no SUV columns: its burden row takes TMTV, the largest lesion and
    Dmax_bulk from volume_ml, leaves SUV and TLG null and says why; never "rerun extract"."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"CT": 3}})
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    lesions = pd.read_parquet(out / "features" / "CT.parquet").sort_values("lesion_id")
    assert "volume_ml" in lesions and "mtv_ml" not in lesions and "suv_max" not in lesions
    row = pd.read_parquet(out / "burden.parquet").iloc[0]
    largest = lesions.loc[lesions["volume_ml"] == lesions["volume_ml"].max(), "lesion_id"].min()
    assert row["lesion_count"] == 3 and row["largest_lesion_id"] == largest
    assert row["mtv_largest_ml"] == lesions["volume_ml"].max()
    assert row["tmtv_ml"] == pytest.approx(lesions["volume_ml"].sum(), rel=1e-12)
    points = lesions[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy()
    bulk = points[lesions["lesion_id"].to_list().index(largest)]
    assert row["dmax_bulk_mm"] == pytest.approx(np.sqrt(((points - bulk) ** 2).sum(axis=1)).max(), rel=1e-12)
    assert pd.isna(row["suv_max_hottest"]) and pd.isna(row["ttlg"])
    assert row["burden_note"].startswith("CT scan (HU)") and "rerun" not in row["burden_note"]


def test_patient_table_keeps_the_session_key_in_every_form(tmp_path):
    """One patient, two sessions: `--columns` and `--long` keep (patient_id, session), the key of the patient
    table, so baseline and follow-up stay apart."""
    for session, centres in (("baseline", ((12, 8, 8),)), ("followup", ((12, 8, 8), (12, 20, 8)))):
        image, mask = sphere_scan(centres=centres, seed=5)
        write_volume(image, tmp_path / "cohort" / "P001" / session / "FDG" / "pet.nii.gz")
        write_volume(mask, tmp_path / "cohort" / "P001" / session / "FDG" / "mask.nii.gz")
    (tmp_path / "cohort" / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    out = tmp_path / "out"
    assert run("extract", tmp_path / "cohort", "-o", out, "-j", "1").exit_code == 0
    picked = run("table", out, "--which", "patients", "--columns", f"{FDG}__lesion_count")
    assert picked.exit_code == 0, picked.stderr
    assert picked.stdout.splitlines() == ["patient_id,session,18F-FDG__lesion_count", "P001,baseline,1",
                                          "P001,followup,2"]
    long = pd.read_csv(io.StringIO(run("table", out, "--which", "patients", "--long").stdout), keep_default_na=False)
    assert list(long.columns) == ["patient_id", "session", "feature", "value"]
    counts = long[long["feature"] == f"{FDG}__lesion_count"]
    assert counts["session"].tolist() == ["baseline", "followup"] and counts["value"].astype(float).tolist() == [1, 2]


def _set_voxel(path: Path, value: float) -> tuple[sitk.Image, np.ndarray]:
    """Write ``value`` into voxel (2, 2, 2) of an image file; the file as it was and its new values."""
    image = sitk.ReadImage(str(path))
    values = sitk.GetArrayFromImage(image)
    values[2, 2, 2] = value
    edited = sitk.GetImageFromArray(values)
    edited.CopyInformation(image)
    sitk.WriteImage(edited, str(path))
    return image, values


def test_a_partly_failed_scan_says_which_figures_cover_which_lesions(tmp_path):
    """Lesion 2 holds a negative SUV (the input guard fails it: no row): TMTV, TTLG and the voxel Dmax are the
    worker's, over every lesion voxel of the mask (TTLG: sum of SUV over them x voxel volume, checked with numpy on
    the image); the note says exactly that. (A lesion PyRadiomics refuses is measured: it keeps its row,
    tests/test_refused_lesions.py.)"""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    mask, labels = _set_voxel(cohort / "P001" / "FDG" / "mask.nii.gz", 2)
    _set_voxel(cohort / "P001" / "FDG" / "pet.nii.gz", -3.0)
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    lesions = pd.read_parquet(out / "features" / f"{FDG}.parquet")
    row = pd.read_parquet(out / "burden.parquet").iloc[0]
    voxel_ml = float(np.prod(mask.GetSpacing())) / 1000.0
    assert row["lesion_count"] == 2 and row["lesions_measured"] == 1 == len(lesions)
    assert row["tmtv_ml"] == pytest.approx((labels > 0).sum() * voxel_ml, rel=1e-12)  # the failed voxel included
    suv = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / "P001" / "FDG" / "pet.nii.gz"))).astype(np.float64)
    assert row["ttlg"] == pytest.approx(suv[labels > 0].sum() * voxel_ml, rel=1e-12)
    assert row["ttlg"] == pytest.approx(lesions["tlg"].sum() - 3.0 * voxel_ml, rel=1e-12)  # the failed voxel's too
    assert row["ttlg_definition"].startswith("sum of SUV over the union of lesion voxels")
    assert "tmtv_ml, ttlg and dmax_voxel_mm cover every lesion of the mask" in row["burden_note"]


def test_a_session_holding_a_ct_folder_is_a_session(tmp_path):
    """`P001/baseline/{FDG,CT}`: CT is a tracer folder, though `ct` is also a DICOM image-folder pattern; a tracer
    folder holding a DICOM `ct/` folder (`P002/FDG/ct/`) is still a scan folder."""
    from radiomx.discover.cohort import discover

    root = tmp_path / "cohort"
    for folder in ("P001/baseline/FDG", "P001/baseline/CT", "P002/FDG"):
        image, mask = sphere_scan(centres=((12, 8, 8),), seed=1)
        write_volume(image, root / folder / "pet.nii.gz")
        write_volume(mask, root / folder / "mask.nii.gz")
    (root / "P002" / "FDG" / "ct").mkdir()
    (root / "P002" / "FDG" / "ct" / "IM0001.dcm").write_bytes(b"")
    found = {str(s.key): s.problem for s in discover(root)}
    assert found == {"P001/baseline/18F-FDG": None, "P001/baseline/CT": None, "P002/18F-FDG": found["P002/18F-FDG"]}
    listing = run("scan", root)
    assert "unknown tracer folder" not in listing.stdout + listing.stderr


def test_table_takes_a_tracer_alias_as_compare_and_qc_do(cohort, tmp_path):
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    by_alias, by_name = run("table", out, "--tracer", "fdg"), run("table", out, "--tracer", FDG)
    assert by_alias.exit_code == 0 and by_alias.stdout == by_name.stdout and by_alias.stdout.count("\n") == 5
    unknown = run("table", out, "--tracer", "fdg-2nd-try")
    assert unknown.exit_code == 2 and "no feature table for tracer 'fdg-2nd-try' (have: 18F-FDG" in unknown.stderr


def test_dated_file_names_are_redacted_yet_compare_reads_dates_and_masks_through_discovery(cohort, tmp_path):
    """dcm2niix names files by acquisition date-time (``%t``) and people write ``pet_2024-03-01.nii.gz``: the tables
    show ``<DATE>`` instead, so compare cannot go back from a stored path to the file. It finds each scan again as
    the last run found it (the run log's cohort and options), reads the dates from the sidecars and pairs the
    lesions from the masks."""
    renames = {"pentixafor": ("pet_2024-03-01", "mask_20240301"), "FDG": ("PET_WB_20240313140000_3", "mask_13.03.2024")}
    for folder, (image, mask) in renames.items():
        scan = cohort / "P001" / folder
        (scan / "pet.nii.gz").rename(scan / f"{image}.nii.gz")
        (scan / "pet.json").rename(scan / f"{image}.json")
        (scan / "mask.nii.gz").rename(scan / f"{mask}.nii.gz")
    (cohort / "radiomx.toml").write_text(
        '[layout]\npet_units = "SUVbw"\nimage = ["pet.*", "pet_*.nii.gz", "PET_*.nii.gz"]\n'
        'mask = ["mask.*", "mask_*.nii.gz"]\n[compare]\nsame_frame = ["P001"]\n')
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    state = pd.read_parquet(out / "scans.parquet").set_index(["patient_id", "tracer"])
    assert state.loc[("P001", PENTIX), "image_file"] == "P001/pentixafor/pet_<DATE>.nii.gz"
    assert state.loc[("P001", FDG), "image_file"] == "P001/FDG/PET_WB_<DATE>_3.nii.gz"
    assert state.loc[("P001", FDG), "mask_file"] == "P001/FDG/mask_<DATE>.nii.gz"
    features = pd.read_parquet(out / "features" / f"{FDG}.parquet")
    texts = features[[c for c in features if features[c].map(lambda v: isinstance(v, str)).any()]]
    assert not [c for c in texts if texts[c].str.contains(r"2024|13\.03").any()]
    assert features.set_index("patient_id").loc["P001", "mask_file"].tolist() == ["P001/FDG/mask_<DATE>.nii.gz"] * 2
    assert run("compare", out, "--tracers", "pentixafor,fdg").exit_code == 0  # the cohort: from the run log
    p1 = pd.read_parquet(out / COMPARE).set_index("patient_id").loc["P001"]
    assert p1["days_between"] == 12, p1["days_between_note"]
    assert p1["lesion_pairing"].startswith("declared same frame") and p1["lesions_paired"] == 1


def _declared_integers(which: str, columns: list[str]) -> set[str]:
    """The columns of ``which`` whose declared type (radiomx.columns) is an integer; the patient table's blocks
    (``<tracer>__<burden field>``, ``<A>_vs_<B>__<compare field>``) take the type of the field they copy."""
    from radiomx.columns import BURDEN, COMPARE, INT, TABLES

    if which != "patients":
        return {c.name for c in TABLES[which].columns if c.type == INT}
    fields = {c.name for t in (BURDEN, COMPARE) for c in t.columns if c.type == INT}
    return {c for c in columns if "__" in c and c.split("__")[-1] in fields and c.count("__") == 1}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_integer_columns_stay_integers_in_every_table_and_format(cohort, tmp_path, fmt):
    """QA #12: ``radiomx table --which compare`` printed lesion_count_diff as -1.0. Every column declared an
    integer, in every derived and bookkeeping table, is int64 in the file and prints without a decimal point."""
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "pentixafor,fdg", "--cohort", cohort).exit_code == 0
    seen = 0
    for which in ("compare", "burden", "patients", "scans", "runs"):
        args = ["table", out, "--which", which, "--format", fmt]
        if which == "compare":
            args += ["--tracer", "pentixafor,fdg"]
        if fmt == "parquet":
            done = subprocess.run([*RADIOMX, *map(str, args)], capture_output=True, check=True)
            table = pq.read_table(io.BytesIO(done.stdout))
            for name in _declared_integers(which, table.column_names):
                assert pa.types.is_integer(table.schema.field(name).type), (which, name)
                seen += 1
            if which == "compare":
                assert table.schema.field("lesion_count_diff").type == pa.int64()
            continue
        printed = run(*args)
        assert printed.exit_code == 0, printed.stderr
        if fmt == "jsonl":
            rows = [json.loads(line) for line in printed.stdout.splitlines()]
            columns = list(rows[0])
            values = {n: [r[n] for r in rows if r[n] is not None] for n in columns}
            bad = {n: v for n in _declared_integers(which, columns) for v in values[n] if not isinstance(v, int)}
        else:
            frame = pd.read_csv(io.StringIO(printed.stdout), sep="," if fmt == "csv" else "\t", dtype=str,
                                keep_default_na=False)
            columns = list(frame.columns)
            bad = {n: v for n in _declared_integers(which, columns) for v in frame[n] if "." in v}
        assert not bad, (which, bad)
        seen += len(_declared_integers(which, columns))
        if which == "compare":
            printed_rows = rows if fmt == "jsonl" else frame.to_dict("records")
            p001 = next(r for r in printed_rows if r["patient_id"] == "P001")
            assert str(p001["lesion_count_diff"]) == "-1"  # pentixafor 1 lesion, FDG 2
    assert seen > 20


def test_the_library_compare_takes_two_names_a_pair_or_a_comma_string_and_refuses_one_name(cohort, tmp_path):
    """QA #13: ``radiomx.compare("out", "68Ga-pentixafor", "18F-FDG")`` failed with "unknown tracer folder '6'" (a
    string read as a sequence of characters). Every documented spelling writes the same table; one tracer alone,
    three, or a cohort given by position is refused in one line that shows the call."""
    import radiomx
    from radiomx.errors import ConfigError

    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    written = []
    for args in [(PENTIX, FDG), (("pentixafor", "fdg"),), (["pentixafor", "fdg"],), ("pentixafor, fdg",)]:
        summary = radiomx.compare(out, *args, cohort=cohort)
        assert (summary.tracer_a, summary.tracer_b) == (PENTIX, FDG), args
        written.append((out / COMPARE).read_bytes())
    assert len(set(written)) == 1 and summary.dated == 1
    for args in [("pentixafor",), ("pentixafor,fdg,dotatate",), (("pentixafor", "fdg"), cohort), ((PENTIX,),)]:
        with pytest.raises(ConfigError, match=r'compare takes two tracers: compare\(out, "68Ga-pentixafor"'):
            radiomx.compare(out, *args)
