"""The parts store and its publish step, with real Parquet files: keyed upserts across parts, no key in two
parts, a published file that pandas, pyarrow and DuckDB read in one call with one schema, staleness after a run
that ended early, a lost index, and OUT folders written before parts existed (read as they are, migrated in place
on the first write, also when that migration is killed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from radiomx.api import read_table, stale_tracers
from radiomx.cli import cli
from radiomx.records import ScanKey, ScanOutcome
from radiomx.store import parts as parts_module
from radiomx.store.parts import TracerParts
from radiomx.store.publish import features_path, sorted_row_groups
from radiomx.store.schema import FEATURE_FIXED_SCHEMA
from radiomx.store.tables import Store

from .conftest import as_read_parquet, sphere_scan, write_volume

KEY = ["patient_id", "session", "tracer", "lesion_id"]
TRACER = "18F-FDG"


def outcome(patient: str, lesions: int, seed: int) -> ScanOutcome:
    """One scan's result as the worker hands it to the writer: real row dicts, a state row."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    rows = []
    for lesion in range(1, lesions + 1):
        row = {name: "x" for name in FEATURE_FIXED_SCHEMA.names}
        row.update(patient_id=patient, session="", tracer=TRACER, lesion_id=lesion, source_label=lesion,
                   segment_number=None, roi_number=None, label_value=lesion, component_number=None,
                   voxel_count=int(rng.integers(10, 999)), extracted_at=now, suv_body_weight_kg=70.5,
                   lesion_site_fraction=None)
        row.update({f"original_firstorder_F{j}": float(rng.normal()) for j in range(6)})
        rows.append(row)
    state = {"patient_id": patient, "session": "", "tracer": TRACER, "image_file": "i", "mask_file": "m",
             "image_stat": "1", "mask_stat": "2", "image_sha256": str(seed), "mask_sha256": "s",
             "params_version": "v1", "params_sha256": "p", "work_key": str(seed), "n_lesions": lesions,
             "n_failed": 0}
    return ScanOutcome(ScanKey(patient, "", TRACER), rows=rows, state=state)


def commit(out: Path, outcomes: list[ScanOutcome], pruned=()) -> None:
    Store(out).commit(outcomes, "run", datetime.now(UTC), pruned=pruned)


def expected(outcomes: dict[str, ScanOutcome]) -> pd.DataFrame:
    rows = [r for o in outcomes.values() for r in o.rows]
    return pd.DataFrame(rows).sort_values(KEY).reset_index(drop=True)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["patient_id", "lesion_id", "voxel_count", *(f"original_firstorder_F{j}" for j in range(6))]
    return frame[columns].sort_values(["patient_id", "lesion_id"]).reset_index(drop=True)


@pytest.fixture
def three_per_part(monkeypatch):
    monkeypatch.setattr(parts_module, "PART_SCANS", 3)


def test_upsert_across_parts_replaces_rows_and_a_removed_lesion_disappears(tmp_path, three_per_part):
    out = tmp_path / "out"
    current = {f"P{i:02d}": outcome(f"P{i:02d}", 2, i) for i in range(10)}
    names = sorted(current)
    for start in range(0, 10, 4):
        commit(out, [current[n] for n in names[start:start + 4]])
    tracer_parts = TracerParts(out, TRACER)
    assert [p.name for p in tracer_parts.part_files()] == [f"part-{i:06d}.parquet" for i in range(4)]
    # recompute P01 (first part) with one lesion fewer and P07 (third part), add P10 (newest part)
    current.update(P01=outcome("P01", 1, 101), P07=outcome("P07", 2, 107), P10=outcome("P10", 3, 110))
    commit(out, [current["P01"], current["P07"], current["P10"]])
    live = pd.read_parquet(tracer_parts.folder)  # the live view, one call
    assert not live.duplicated(KEY).any()
    assert list(live[live.patient_id == "P01"]["lesion_id"]) == [1]
    assert stale_tracers(out) == [TRACER]
    pd.testing.assert_frame_equal(comparable(as_read_parquet(read_table(out))), comparable(expected(current)))
    assert Store(out).publish_stale() == [TRACER] and stale_tracers(out) == []
    published = pd.read_parquet(features_path(out, TRACER))
    pd.testing.assert_frame_equal(comparable(published), comparable(expected(current)))
    keys = published[KEY].to_numpy().tolist()
    assert keys == sorted(keys), "the published file is in key order although the parts are not"
    # a scan whose recomputation yields no rows leaves no rows; a pruned scan neither
    empty = ScanOutcome(ScanKey("P03", "", TRACER), rows=[], state=current["P03"].state)
    commit(out, [empty], pruned=[ScanKey("P05", "", TRACER)])
    Store(out).publish_stale()
    left = set(pd.read_parquet(features_path(out, TRACER))["patient_id"])
    assert left == set(current) - {"P03", "P05"}
    index = tracer_parts.load_index()
    assert ("P03", "", TRACER) not in index and ("P05", "", TRACER) not in index


def test_scans_arriving_out_of_key_order_publish_sorted_in_several_row_groups(tmp_path, three_per_part):
    out = tmp_path / "out"
    current = {f"P{i:02d}": outcome(f"P{i:02d}", 1 + i % 3, i) for i in range(12)}
    order = [f"P{i:02d}" for i in (11, 3, 7, 0, 9, 5, 1, 10, 2, 8, 4, 6)]
    for start in range(0, 12, 2):
        commit(out, [current[n] for n in order[start:start + 2]])
    tracer_parts = TracerParts(out, TRACER)
    index = tracer_parts.load_index()
    schema = pq.read_schema(tracer_parts.part_files()[0]).remove_metadata()
    groups = list(sorted_row_groups(tracer_parts, index, schema, rows_per_group=4))
    assert len(groups) > 3 and all(g.num_rows <= 4 + 2 for g in groups)
    merged = pd.concat([g.to_pandas() for g in groups], ignore_index=True)
    assert merged[KEY].to_numpy().tolist() == sorted(merged[KEY].to_numpy().tolist())
    pd.testing.assert_frame_equal(comparable(merged), comparable(expected(current)))


def test_a_lost_index_is_rebuilt_from_the_parts(tmp_path, three_per_part):
    out = tmp_path / "out"
    current = {f"P{i:02d}": outcome(f"P{i:02d}", 2, i) for i in range(7)}
    commit(out, list(current.values()))
    Store(out).publish_stale()
    TracerParts(out, TRACER).index_path.unlink()
    assert stale_tracers(out) == [TRACER], "without the index the published file cannot be proven current"
    current.update(P02=outcome("P02", 1, 202), P09=outcome("P09", 2, 209))
    commit(out, [current["P02"], current["P09"]])
    Store(out).publish_stale()
    published = pd.read_parquet(features_path(out, TRACER))
    assert not pd.read_parquet(TracerParts(out, TRACER).folder).duplicated(KEY).any()
    pd.testing.assert_frame_equal(comparable(published), comparable(expected(current)))


def test_published_file_reads_in_one_call_with_pandas_pyarrow_and_duckdb(small_cohort, tmp_path):
    import duckdb

    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["extract", str(small_cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    path = features_path(out, TRACER)
    with_pandas = pd.read_parquet(path)
    with_pyarrow = pq.read_table(path).to_pandas()
    with_duckdb = duckdb.sql(f"FROM '{path}'").df()
    pd.testing.assert_frame_equal(with_pandas, with_pyarrow)
    assert list(with_duckdb.columns) == list(with_pandas.columns) == pq.read_schema(path).names
    features = [c for c in with_pandas.columns if c.startswith("original_")]
    assert len(features) > 50
    np.testing.assert_array_equal(with_duckdb[features].to_numpy(), with_pandas[features].to_numpy())
    assert list(with_duckdb["patient_id"]) == list(with_pandas["patient_id"])
    pd.testing.assert_frame_equal(as_read_parquet(read_table(out, TRACER)), with_pandas)


def test_table_command_notes_a_stale_published_file_and_publish_refreshes_it(tmp_path):
    out = tmp_path / "out"
    commit(out, [outcome("P01", 2, 1)])
    Store(out).publish_stale()
    commit(out, [outcome("P02", 1, 2)])  # a run that ended before publishing
    runner = CliRunner()
    stale = runner.invoke(cli, ["table", str(out)])
    assert stale.exit_code == 0 and "radiomx publish" in stale.stderr and len(stale.stderr.splitlines()) == 1
    assert sorted(pd.read_csv(pd.io.common.StringIO(stale.stdout))["patient_id"]) == ["P01", "P01", "P02"]
    published = runner.invoke(cli, ["publish", str(out)])
    assert published.exit_code == 0 and published.stderr.strip() == f"radiomx: published: {TRACER}"
    fresh = runner.invoke(cli, ["table", str(out)])
    assert fresh.exit_code == 0 and fresh.stderr == "" and fresh.stdout == stale.stdout
    assert runner.invoke(cli, ["publish", str(out)]).stderr.strip() == "radiomx: every published table is current"


# ------------------------------------------------------------------------------------ OUT written before parts
def make_old_shape(out: Path) -> None:
    """Turn an OUT into exactly what the store before parts left: features/<tracer>.parquet written by one
    ``pq.write_table`` of the sorted table (one row group, no radiomx metadata), no .parts folder."""
    shutil.rmtree(out / ".parts")
    for path in (out / "features").glob("*.parquet"):
        pq.write_table(pq.read_table(path).replace_schema_metadata(None), path)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.parquet")}


@pytest.fixture
def old_out(small_cohort, tmp_path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["extract", str(small_cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    make_old_shape(out)
    return small_cohort, out


def test_old_shape_out_is_read_as_is_and_a_no_change_run_touches_nothing(old_out):
    cohort, out = old_out
    before = _files(out)
    old = pd.read_parquet(features_path(out, TRACER))
    assert stale_tracers(out) == []
    pd.testing.assert_frame_equal(as_read_parquet(read_table(out, TRACER)), old)
    table = CliRunner().invoke(cli, ["table", str(out), "--tracer", TRACER])
    assert table.exit_code == 0 and table.stderr == "" and len(table.stdout.splitlines()) == len(old) + 1
    rerun = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert "0 scans computed, 3 unchanged" in rerun.stderr
    assert {k: v for k, v in _files(out).items() if k != "runs.parquet"} == \
        {k: v for k, v in before.items() if k != "runs.parquet"}
    assert not (out / ".parts").exists()


def test_old_shape_out_is_migrated_on_the_first_write_of_that_tracer(old_out):
    cohort, out = old_out
    old = pd.read_parquet(features_path(out, TRACER))
    old_pentixafor = (out / "features" / "68Ga-pentixafor.parquet").read_bytes()
    write_volume(sphere_scan(centres=((12, 8, 8),), seed=99)[0], cohort / "P002" / "FDG" / "pet.nii.gz")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0 and "1 scans computed, 2 unchanged" in result.stderr
    assert TracerParts(out, TRACER).part_files() and not TracerParts(out, "68Ga-pentixafor").exists()
    assert (out / "features" / "68Ga-pentixafor.parquet").read_bytes() == old_pentixafor
    new = pd.read_parquet(features_path(out, TRACER))
    assert stale_tracers(out) == [] and not new.duplicated(KEY).any() and len(new) == len(old)
    assert list(new.columns) == list(old.columns) and (new.dtypes == old.dtypes).all()
    pd.testing.assert_frame_equal(new[new.patient_id == "P001"].reset_index(drop=True),
                                  old[old.patient_id == "P001"].reset_index(drop=True))
    assert (new[new.patient_id == "P002"]["image_sha256"] != old[old.patient_id == "P002"]["image_sha256"]).all()


def test_sigkill_during_migration_keeps_the_old_table_and_the_rerun_converges(old_out, tmp_path):
    cohort, out = old_out
    old = pd.read_parquet(features_path(out, TRACER))
    write_volume(sphere_scan(centres=((12, 8, 8),), seed=99)[0], cohort / "P002" / "FDG" / "pet.nii.gz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOMX_")}
    env["RADIOMX_FAULT_POINT"] = "migrate-rename"
    proc = subprocess.Popen([sys.executable, "-m", "radiomx", "extract", str(cohort), "-o", str(out), "-j", "1"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stderr:
        if "radiomx-fault-point migrate-rename" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert list((out / ".parts").glob(".*.tmp-*")), "the kill left the half-built parts folder"
    # not migrated: the old file, as it was
    pd.testing.assert_frame_equal(as_read_parquet(read_table(out, TRACER)), old)
    assert stale_tracers(out) == []
    rerun = subprocess.run([sys.executable, "-m", "radiomx", "extract", str(cohort), "-o", str(out), "-j", "1"],
                           capture_output=True, text=True, env={k: v for k, v in env.items()
                                                                if k != "RADIOMX_FAULT_POINT"})
    assert rerun.returncode == 0 and "1 scans computed, 2 unchanged" in rerun.stderr, rerun.stderr
    assert not list(out.rglob(".*.tmp-*"))
    clean = tmp_path / "clean"
    assert CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(clean), "-j", "1"]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(features_path(out, TRACER)).drop(columns="extracted_at"),
                                  pd.read_parquet(features_path(clean, TRACER)).drop(columns="extracted_at"))
