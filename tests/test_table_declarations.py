"""Every table is declared once (``radiomx.columns``): the state row, the store's and derive's schemas, the key
columns ``radiomx table`` sorts by and the reading of older files are generated from it; rows go to Arrow without
pandas, with the values and types the pandas path gave; one path changes a bookkeeping table."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiomx import columns
from radiomx.columns import FAILURES, FEATURES, RUNS, SCANS, TABLES, Column, Table
from radiomx.errors import ConfigError
from radiomx.records import Failure, ScanKey, ScanOutcome, new_state_row
from radiomx.store.schema import arrow_rows, arrow_schema, conform, read_conformed
from radiomx.store.tables import Store, of_scans, replace_rows
from radiomx.store.views import KEYS

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = ScanKey("P001", "", "18F-FDG")


def test_the_state_row_is_the_declared_scans_row_without_what_the_store_stamps():
    row = new_state_row(KEY, n_lesions=2)
    stamped = {c.name for c in SCANS.columns if c.stamped}
    assert stamped == {"status", "updated_at"}
    assert list(row) == [n for n in SCANS.names if n not in stamped]
    assert (row["patient_id"], row["n_lesions"], row["n_failed"], row["work_key"]) == ("P001", 2, 0, "")
    assert math.isnan(row["tmtv_ml"]) and row["ref_liver_voxels"] is None and row["ref_liver_file"] == ""
    with pytest.raises(KeyError, match="not a scans column"):
        new_state_row(KEY, n_lesion=3)
    committed = arrow_rows([{**row, "status": "ok", "updated_at": NOW}], SCANS)
    assert committed.schema.equals(arrow_schema(SCANS))
    assert committed.column("tmtv_ml").null_count == 1  # "not known yet" is stored as null, as pandas stored NaN


def test_a_column_added_once_reaches_the_row_the_schema_and_older_files(tmp_path):
    """What issue 24/25 will do to the scans table: one line in the declaration. The state row has the column, the
    schema has it, a file written before it reads it as declared, and the next commit writes it."""
    added = Column("suv_peak_method", columns.STR, since="issue 24", older="not recorded")
    newer = dataclasses.replace(SCANS, columns=(*SCANS.columns, added))
    assert "suv_peak_method" in newer.new_row(patient_id="P1") and newer.new_row()["suv_peak_method"] == ""
    assert arrow_schema(newer).field("suv_peak_method").type == pa.string()
    path = tmp_path / "scans.parquet"
    pq.write_table(arrow_rows([new_state_row(KEY, work_key="w")], SCANS), path)  # as this version writes it
    old = read_conformed(path, newer)
    assert old.column("suv_peak_method").to_pylist() == ["not recorded"] and old.column("work_key")[0].as_py() == "w"
    replace_rows(path, newer, arrow_rows([newer.new_row(**{**KEY.__dict__, "suv_peak_method": "IBSI"})], newer),
                 of_scans([KEY]))
    assert pq.read_table(path).column("suv_peak_method").to_pylist() == ["IBSI"]


@pytest.mark.parametrize("table", [FEATURES, FAILURES, SCANS, RUNS], ids=lambda t: t.name)
def test_older_files_lacking_the_added_columns_read_as_declared(tmp_path, table):
    """The one migration of older files: every column added since is filled as declared (null, or "" in the run
    log), in its declared place; a file lacking a column that was always there is refused, naming the file."""
    assert table.added, "every bookkeeping table has had columns added"
    row = table.new_row() if table is SCANS else {n: None for n in table.names}
    full = arrow_rows([{**row, "patient_id": "P1", "run_id": "r1"}], table)
    old = full.drop_columns(list(table.added))
    path = tmp_path / f"{table.name}.parquet"
    pq.write_table(old, path)
    read = read_conformed(path, table)
    assert read.column_names[:len(table.names)] == list(table.names)
    for name, older in table.added.items():
        assert read.column(name).to_pylist() == [older], name
    pq.write_table(old.drop_columns([table.key[0]]), path)
    with pytest.raises(ConfigError, match=f"{path}: column {table.key[0]} missing"):
        read_conformed(path, table)


def test_a_file_edited_with_pandas_still_reads_but_other_types_are_refused(tmp_path):
    """pandas 3 writes text as large_string and an integer column with a null as float64: same values, read back;
    a fractional value in an integer column is not the same value and is refused."""
    path = tmp_path / "scans.parquet"
    pq.write_table(arrow_rows([new_state_row(KEY, n_lesions=3), new_state_row(ScanKey("P2", "", "x"))], SCANS),
                   path)
    pd.read_parquet(path).to_parquet(path)
    assert pq.read_schema(path).field("patient_id").type == pa.large_string()
    assert pq.read_schema(path).field("ref_liver_voxels").type == pa.float64()
    assert read_conformed(path, SCANS).schema.equals(arrow_schema(SCANS))
    frame = pd.read_parquet(path)
    frame["ref_liver_voxels"] = [1.5, None]
    frame.to_parquet(path)
    with pytest.raises(ConfigError, match="column ref_liver_voxels is double, expected int64"):
        read_conformed(path, SCANS)


def test_keys_and_derived_schemas_come_from_the_declarations():
    from radiomx.derive.burden import BURDEN_SCHEMA
    from radiomx.derive.compare import COMPARE_SCHEMA, PAIRS_SCHEMA
    from radiomx.store.acknowledged import COLUMNS

    assert KEYS == {name: list(t.key) for name, t in TABLES.items()}
    assert BURDEN_SCHEMA.equals(arrow_schema(columns.BURDEN))
    assert PAIRS_SCHEMA.equals(arrow_schema(columns.LESION_PAIRS))
    assert COMPARE_SCHEMA.field("lesion_count_a").type == pa.int64()  # a burden figure keeps its type side by side
    assert COMPARE_SCHEMA.names[-2:] == ["sdmax_per_m2_diff", "sdmax_per_m2_ratio"]
    assert COLUMNS == ("patient_id", "session", "tracer", "stage", "reason")


# --- one path for the bookkeeping tables ---------------------------------------------------------------------------

def _failure(key: ScanKey, stage: str, message: str, lesion: int | None = None) -> Failure:
    return Failure(key, stage, "P/pet.nii.gz", message, lesion)


def test_replace_rows_drops_adds_sorts_and_leaves_an_unchanged_file_alone(tmp_path):
    store = Store(tmp_path)
    other = ScanKey("P000", "", "18F-FDG")
    outcome = ScanOutcome(KEY, failures=[_failure(KEY, "suv", "b"), _failure(KEY, "load", "a", 2)])
    store.commit([outcome, ScanOutcome(other, failures=[_failure(other, "load", "c")])], "r1", NOW)
    written = pq.read_table(store.failures_path)
    assert written.column("patient_id").to_pylist() == ["P000", "P001", "P001"]
    assert written.column("lesion_id").to_pylist() == [None, 2, None]  # a scan's own failure last, as pandas sorted
    assert written.column("severity").to_pylist() == ["failure"] * 3
    before = store.failures_path.stat().st_mtime_ns
    store.replace_stage_failures([KEY], "qc", [], "qc-1", NOW)  # no qc rows to replace, none to add
    assert store.failures_path.stat().st_mtime_ns == before
    store.replace_stage_failures([KEY], "qc", [_failure(KEY, "qc", "no picture")], "qc-1", NOW)
    assert sorted(pq.read_table(store.failures_path).column("stage").to_pylist()) == ["load", "load", "qc", "suv"]
    store.replace_stage_failures([KEY], "qc", [], "qc-2", NOW)  # qc's row goes, the extraction's rows stay
    assert sorted(pq.read_table(store.failures_path).column("stage").to_pylist()) == ["load", "load", "suv"]
    store.commit([ScanOutcome(KEY, state=new_state_row(KEY, work_key="w"))], "r2", NOW)  # recomputed: no failure
    assert pq.read_table(store.failures_path).column("patient_id").to_pylist() == ["P000"]
    assert not Path(tmp_path / "runs.parquet").exists()
    store.append_run({"run_id": "r2", "started_at": NOW, "ended_at": NOW, "planned": 1})
    store.append_run({"run_id": "r1", "started_at": NOW, "ended_at": NOW, "planned": 2})
    assert pq.read_table(store.runs_path).column("run_id").to_pylist() == ["r2", "r1"]  # the order they ran in
    assert store.read_runs()["cohort"].isna().all()  # given by nobody: null, not ""


def test_the_stored_state_reads_back_as_it_was_built(tmp_path):
    store = Store(tmp_path)
    state = new_state_row(KEY, work_key="w", n_lesions=1, ref_liver_voxels=12, ref_liver_suv_mean=1.5)
    store.commit([ScanOutcome(KEY, rows=[{"patient_id": "P001", "session": "", "tracer": "18F-FDG", "lesion_id": 1}],
                              state=state)], "r1", NOW)
    loaded = store.load_state()[KEY]
    assert {k: loaded[k] for k in ("status", "updated_at", "ref_liver_voxels", "ref_liver_suv_mean")} == {
        "status": "ok", "updated_at": NOW, "ref_liver_voxels": 12, "ref_liver_suv_mean": 1.5}
    assert math.isnan(loaded["tmtv_ml"]) and loaded["ref_marrow_voxels"] is None  # figures NaN, as built
    store.commit([], "r2", NOW, state_only=[loaded])  # a refreshed state row is written back unchanged
    assert store.load_state()[KEY].keys() == loaded.keys()


# --- rows to Arrow without pandas: the values and types the pandas path gave -----------------------------------

def _pandas_path(rows: list[dict], table: Table) -> pa.Table:
    """What the store did before it dropped pandas: ``DataFrame(rows)``, declared types, extra columns inferred
    (features float64), ``Table.from_pandas`` (NaN to null); inferred text made Arrow ``string``."""
    from radiomx.store.schema import is_feature_column

    frame = pd.DataFrame(rows)
    schema = arrow_schema(table)
    extra = [c for c in frame.columns if c not in schema.names]
    others = [c for c in extra if not is_feature_column(c)]
    fields = [*schema, *(pa.Schema.from_pandas(frame[others], preserve_index=False) if others else []),
              *(pa.field(c, pa.float64()) for c in extra if is_feature_column(c))]
    converted = pa.Table.from_pandas(frame.reindex(columns=[f.name for f in fields]), schema=pa.schema(fields),
                                     preserve_index=False).replace_schema_metadata(None)
    text = {pa.large_string(): pa.string()}
    return converted.cast(pa.schema([pa.field(f.name, text.get(f.type, f.type)) for f in converted.schema]))


@st.composite
def _index_column(draw) -> list:
    """One lesion-row column as a worker fills it: numbers with nulls, text with nulls, flags; never mixed kinds."""
    kind = draw(st.sampled_from(["float", "int", "text", "flag", "null", "nan"]))
    value = {"float": st.floats(allow_nan=True, allow_infinity=True), "int": st.integers(-2**40, 2**40),
             "text": st.text(max_size=4), "flag": st.booleans(), "null": st.none(),
             "nan": st.just(math.nan)}[kind]  # an index not known for any lesion (ratios without a region)
    return draw(st.lists(st.one_of(st.none(), value) if kind != "null" else value, min_size=3, max_size=3))


@settings(max_examples=80, deadline=None)
@given(st.lists(_index_column(), max_size=4), st.lists(st.one_of(st.none(), st.floats()), min_size=3, max_size=3),
       st.lists(st.sampled_from([0, 1, 2]), min_size=3, max_size=3))
def test_feature_rows_convert_as_the_pandas_path_did(indices, feature, missing):
    rows = []
    for i in range(3):
        row = {"patient_id": f"P{i}", "session": "", "tracer": "18F-FDG", "lesion_id": i + 1, "extracted_at": NOW,
               "voxel_count": 10 + i, "suv_max": 2.5 if i else None}
        row.update({f"index_{j}": column[i] for j, column in enumerate(indices)})
        if missing[i]:  # a feature some rows lack (a filter that gave nothing)
            row["original_firstorder_Mean"] = feature[i]
        row["wavelet-LLH_glcm_Contrast"] = feature[i]
        rows.append(row)
    ours = arrow_rows(rows, FEATURES)
    reference = _pandas_path(rows, FEATURES)
    assert ours.column_names == reference.column_names
    assert ours.equals(reference), (ours.schema, reference.schema)
    pd.testing.assert_frame_equal(ours.to_pandas(), reference.to_pandas())  # what readers get: same dtypes


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"lesion_id": st.one_of(st.none(), st.integers(1, 9)),
                                       "stage": st.sampled_from(["load", "suv", "qc"]),
                                       "message": st.text(max_size=5)}), max_size=6))
def test_bookkeeping_rows_convert_as_the_pandas_path_did(found):
    rows = [{**KEY.__dict__, **f, "file": "f", "run_id": "r", "failed_at": NOW, "severity": "failure"} for f in found]
    assert arrow_rows(rows, FAILURES).equals(_pandas_path(rows, FAILURES) if rows else arrow_schema(FAILURES)
                                             .empty_table())
    states = [{**new_state_row(ScanKey(f"P{i}", "", "x"), n_lesions=i, tmtv_ml=float(i) if i % 2 else math.nan,
                               ref_bloodpool_voxels=i or None), "status": "ok", "updated_at": NOW}
              for i in range(len(found))]
    if states:
        assert arrow_rows(states, SCANS).equals(_pandas_path(states, SCANS))


# --- the import pyarrow makes ------------------------------------------------------------------------------------

def test_the_store_and_derive_modules_import_no_pandas():
    """radiomx's writers import no pandas themselves (the readers that return DataFrames do, when called). pyarrow
    still imports pandas, when installed, on its first conversion of Python values (``pa.array``'s check for pandas
    objects): docs/storage.md measures what that leaves of the saving."""
    code = ("import sys; import radiomx.store.tables, radiomx.derive.refresh, radiomx.derive.patients; "
            "assert 'pandas' not in sys.modules, 'pandas imported'; import pyarrow as pa; pa.array([1.0]); "
            "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # pyarrow's own import: if this turns False, a one-scan run loses pandas


def test_numpy_values_convert_like_python_values():
    """Workers hand Python values today; numpy scalars convert as pandas converted them (float32 is widened)."""
    rows = [{"patient_id": "P1", "session": "", "tracer": "t", "lesion_id": np.int64(1), "suv_max": np.float64(2.5),
             "suv_peak_sphere_voxels": np.int64(33), "extracted_at": NOW}]
    table = arrow_rows(rows, FEATURES)
    assert table.schema.field("suv_peak_sphere_voxels").type == pa.int64() and table["suv_max"].to_pylist() == [2.5]
    assert table.equals(_pandas_path(rows, FEATURES))
    assert arrow_rows([{**rows[0], "suv_sd": np.float32(0.5)}], FEATURES).schema.field("suv_sd").type == pa.float64()
    assert conform(table, FEATURES, Path("x")).num_columns == table.num_columns


def test_a_real_extraction_writes_what_the_pandas_path_wrote(tmp_path, monkeypatch):
    """Every row, failure and state row of a real run (PET indices, SUV inputs, a negative scan, a failed scan)
    converts exactly as ``DataFrame`` + ``Table.from_pandas`` converted it."""
    from click.testing import CliRunner

    from radiomx.cli import cli

    from .conftest import make_cohort

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 3, "pentixafor": 1}, "P002": {"FDG": 0}})
    (cohort / "P003" / "FDG").mkdir(parents=True)
    (cohort / "P003" / "FDG" / "pet.nii.gz").write_bytes(b"not a nifti")
    (cohort / "P003" / "FDG" / "mask.nii.gz").write_bytes(b"not a nifti")
    committed: list[ScanOutcome] = []
    commit = Store.commit
    monkeypatch.setattr(Store, "commit", lambda self, outcomes, *a, **k: (committed.extend(outcomes),
                                                                           commit(self, outcomes, *a, **k)))
    assert CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "-j", "1"]).exit_code == 1
    assert {o.status for o in committed} == {"ok", "negative", "failed"}
    for tracer in ("18F-FDG", "68Ga-pentixafor"):
        rows = [r for o in committed for r in o.rows if r["tracer"] == tracer]
        assert arrow_rows(rows, FEATURES).equals(_pandas_path(rows, FEATURES)), tracer
    states = [{**o.state, "status": o.status, "updated_at": NOW} for o in committed]
    assert arrow_rows(states, SCANS).equals(_pandas_path(states, SCANS))
    failures = [{**f.as_row(), "run_id": "r", "failed_at": NOW, "severity": "failure"} for o in committed
                for f in o.failures]
    assert failures and arrow_rows(failures, FAILURES).equals(_pandas_path(failures, FAILURES))


def test_a_derived_table_written_with_other_columns_is_rebuilt(tmp_path):
    """An older radiomx's burden or compare table (a column since added, or one since dropped) is stale: the next
    refresh rebuilds it with the declared columns, without anything else changing."""
    from radiomx.derive.burden import burden_path
    from radiomx.derive.refresh import is_stale, refresh
    from radiomx.derive.settings import DeriveSettings

    from .derive_builders import commit, lesion_row, outcome

    key = ScanKey("P001", "", "18F-FDG")
    commit(tmp_path, [outcome(key, [lesion_row(key, 1, (0.0, 0.0, 0.0), 2.0, 8.0, 6.0, 4.0)])])
    refresh(tmp_path, None, DeriveSettings())
    assert not is_stale(tmp_path, DeriveSettings())
    path = burden_path(tmp_path)
    current = pq.read_table(path)
    pq.write_table(current.drop_columns(["sdmax_note"]), path)  # as written before sdmax_note existed
    assert is_stale(tmp_path, DeriveSettings())
    refresh(tmp_path, None, DeriveSettings())
    assert pq.read_table(path).equals(current) and not is_stale(tmp_path, DeriveSettings())
