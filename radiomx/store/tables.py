"""The output folder: Parquet tables, upserted by key, each file replaced atomically.

Layout of OUT (documented in the README)::

    OUT/features/<tracer>.parquet   one file per tracer, one row per lesion (a tracer's own feature columns)
    OUT/failures.parquet            one row per failed scan or lesion
    OUT/scans.parquet               per-scan state: fingerprints, work key, status (drives incremental runs)
    OUT/runs.parquet                one row per run (the run log)
    OUT/.radiomx.store.lock               the writer lock

Why one file per tracer: tracers have different parameter files and so different feature columns; one file per
tracer is read by ``pandas.read_parquet``, ``pyarrow.dataset`` and DuckDB in one call with one schema.

Commit protocol (the batch is the unit): feature files, then failures, then ``scans.parquet`` last. Each file
is replaced atomically. Upserts are by scan key (all rows of a recomputed scan are replaced), so replaying a
commit is harmless: if a kill lands between two files, the state still says "not done" and the next run
recomputes those scans and replaces their rows. A key is never present twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.errors import ConfigError
from radiomx.records import ScanKey, ScanOutcome
from radiomx.store.atomic import atomic_path, fault_point
from radiomx.store.outdir import state_path

SCAN_KEY = ["patient_id", "session", "tracer"]
#: Reference regions with columns in the state table (radiomx.features.references.REGIONS, kept equal by a test).
REFERENCE_REGIONS = ("liver", "bloodpool", "adrenal_contralateral", "marrow")
#: Per-scan indices in the state row (docs/lesions-and-indices.md): reference-region statistics, total metabolic
#: tumour volume, Dmax over lesion voxels, height and weight.
SCAN_INDEX_FIELDS = (
    *[f for r in REFERENCE_REGIONS for f in (
        pa.field(f"ref_{r}_suv_mean", pa.float64()), pa.field(f"ref_{r}_suv_sd", pa.float64()),
        pa.field(f"ref_{r}_voxels", pa.int64()), pa.field(f"ref_{r}_file", pa.string()))],
    pa.field("tmtv_ml", pa.float64()), pa.field("dmax_voxel_mm", pa.float64()),
    pa.field("height_m", pa.float64()), pa.field("weight_kg", pa.float64()),
)
LESION_KEY = [*SCAN_KEY, "lesion_id"]

#: Fixed columns of every features file (feature columns follow, float64, PyRadiomics names).
FEATURE_FIXED_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("lesion_id", pa.int64()),
    ("source_label", pa.int64()), ("voxel_count", pa.int64()), ("params_version", pa.string()),
    ("params_sha256", pa.string()), ("radiomx_version", pa.string()), ("pyradiomics_version", pa.string()),
    ("image_sha256", pa.string()), ("mask_sha256", pa.string()), ("image_file", pa.string()),
    ("mask_file", pa.string()), ("unit", pa.string()), ("extracted_at", pa.timestamp("us", tz="UTC")),
])
FAILURES_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("lesion_id", pa.int64()),
    ("stage", pa.string()), ("file", pa.string()), ("message", pa.string()), ("run_id", pa.string()),
    ("failed_at", pa.timestamp("us", tz="UTC")),
])
SCANS_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("image_file", pa.string()),
    ("mask_file", pa.string()), ("image_stat", pa.string()), ("mask_stat", pa.string()),
    ("image_sha256", pa.string()), ("mask_sha256", pa.string()), ("params_version", pa.string()),
    ("params_sha256", pa.string()), ("work_key", pa.string()), ("status", pa.string()),
    ("n_lesions", pa.int64()), ("n_failed", pa.int64()), ("updated_at", pa.timestamp("us", tz="UTC")),
    *SCAN_INDEX_FIELDS,
])
#: Columns a scans.parquet written before they existed may lack: read as null (the logic-version bump then
#: recomputes those scans), instead of refusing the whole output folder.
SCANS_ADDED = frozenset(f.name for f in SCAN_INDEX_FIELDS)
RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")), ("ended_at", pa.timestamp("us", tz="UTC")),
    ("command", pa.string()), ("radiomx_version", pa.string()), ("pyradiomics_version", pa.string()),
    ("planned", pa.int64()), ("computed", pa.int64()), ("skipped", pa.int64()), ("failed", pa.int64()),
    ("exit_code", pa.int64()),
    # The cohort path relative to OUT and the options that decide how scans were read (JSON): ``radiomx qc OUT``
    # finds the scans again from these. Empty in runs logged before they existed.
    ("cohort", pa.string()), ("options", pa.string()),
])
#: Columns added to RUNS_SCHEMA after release: an older runs.parquet gets them empty instead of being refused.
RUNS_ADDED = ("cohort", "options")


def features_path(out: Path, tracer: str) -> Path:
    return Path(out) / "features" / f"{tracer}.parquet"


def _check_fixed(table: pa.Table, schema: pa.Schema, path: Path, added: frozenset[str] = frozenset()) -> pa.Table:
    for fld in schema:
        if fld.name not in table.column_names and fld.name in added:
            table = table.append_column(fld, pa.nulls(len(table), fld.type))
            continue
        if fld.name not in table.column_names:
            raise ConfigError(f"{path}: column {fld.name} missing; this is not a radiomx table (or a newer one)")
        if not table.schema.field(fld.name).type.equals(fld.type):
            raise ConfigError(f"{path}: column {fld.name} is {table.schema.field(fld.name).type}, expected {fld.type}")
    return table


FEATURE_COLUMN = re.compile(r"^[A-Za-z0-9.-]+_(shape|shape2D|firstorder|glcm|glrlm|glszm|gldm|ngtdm)_\w+$")


def is_feature_column(name: str) -> bool:
    """PyRadiomics feature names: ``<imageType>_<class>_<feature>`` (``wavelet-LLH_glcm_Contrast``)."""
    return bool(FEATURE_COLUMN.match(name))


def _to_table(frame: pd.DataFrame, schema: pa.Schema, extra_float: bool) -> pa.Table:
    """Fixed columns get their declared type; with ``extra_float`` feature columns are float64 and other extra
    columns (SUV inputs) keep their inferred type.

    Feature columns (hundreds to thousands with filters) go to Arrow as one float64 block, column by column from
    numpy: ``Table.from_pandas`` spends ~0.15 ms per column, most of a commit's time. NaN becomes null exactly as
    ``from_pandas`` does it (``tests/test_incremental.py`` compares both)."""
    fields = list(schema)
    features: list[str] = []
    if extra_float:
        for column in frame.columns:
            if column in schema.names:
                continue
            if is_feature_column(column):
                features.append(column)
            else:
                fields.append(pa.Schema.from_pandas(frame[[column]], preserve_index=False).field(column))
    others = pa.schema(fields)
    table = pa.Table.from_pandas(frame.reindex(columns=others.names), schema=others, preserve_index=False)
    if not features:
        return table
    block = np.ascontiguousarray(frame[features].to_numpy(dtype=np.float64, na_value=np.nan).T)
    columns = table.columns + [pa.array(values, from_pandas=True) for values in block]
    return pa.Table.from_arrays(columns, schema=pa.schema(list(others) + [pa.field(c, pa.float64()) for c in features]))


def read_parquet_checked(path: Path, schema: pa.Schema) -> pd.DataFrame:
    table = _check_fixed(pq.read_table(path), schema, path, SCANS_ADDED if schema is SCANS_SCHEMA else frozenset())
    return table.to_pandas()


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas()


def _key_index(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[SCAN_KEY].astype(str))


def _upsert(path: Path, schema: pa.Schema, replaced: set[ScanKey], new: pd.DataFrame, sort_by: list[str],
            extra_float: bool = False) -> None:
    """Drop every row of the replaced scans, add the new rows, sort by key, replace the file atomically."""
    old = read_parquet_checked(path, schema) if path.exists() else _empty(schema)
    if len(old) and replaced:
        drop = _key_index(old).isin([tuple(k.__dict__.values()) for k in replaced])
        old = old.loc[~drop]
    parts = [f for f in (old, new) if len(f)]
    if not parts:
        if not path.exists():
            return
        combined = _empty(schema)
    else:
        combined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    combined = combined.sort_values(sort_by, kind="stable").reset_index(drop=True)
    table = _to_table(combined, schema, extra_float)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


class Store:
    """Reads and commits the tables of one output folder. Only one process writes at a time (see lock.py)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)

    @property
    def scans_path(self) -> Path:
        return state_path(self.out)

    @property
    def failures_path(self) -> Path:
        return self.out / "failures.parquet"

    @property
    def runs_path(self) -> Path:
        return self.out / "runs.parquet"

    def load_state(self) -> dict[ScanKey, dict]:
        if not self.scans_path.exists():
            return {}
        frame = read_parquet_checked(self.scans_path, SCANS_SCHEMA)
        return {ScanKey(r["patient_id"], r["session"], r["tracer"]): r for r in frame.to_dict("records")}

    def tracers(self) -> list[str]:
        folder = self.out / "features"
        return sorted(p.name[: -len(".parquet")] for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def read_features(self, tracer: str) -> pd.DataFrame:
        return read_parquet_checked(features_path(self.out, tracer), FEATURE_FIXED_SCHEMA)

    def read_failures(self) -> pd.DataFrame:
        return read_parquet_checked(self.failures_path, FAILURES_SCHEMA) if self.failures_path.exists() else _empty(
            FAILURES_SCHEMA)

    def commit(self, outcomes: list[ScanOutcome], run_id: str, now, state_only: Iterable[dict] = (),
               pruned: Iterable[ScanKey] = ()) -> None:
        """Write one batch: features per tracer, failures, then the scan state (last, so it never runs ahead)."""
        pruned = set(pruned)
        replaced = {o.key for o in outcomes} | pruned
        by_tracer: dict[str, list[dict]] = {}
        for o in outcomes:
            by_tracer.setdefault(o.key.tracer, [])
            by_tracer[o.key.tracer].extend(o.rows)
        for key in pruned:
            by_tracer.setdefault(key.tracer, [])
        for tracer, rows in sorted(by_tracer.items()):
            keys = {k for k in replaced if k.tracer == tracer}
            _upsert(features_path(self.out, tracer), FEATURE_FIXED_SCHEMA, keys, pd.DataFrame(rows), LESION_KEY,
                    extra_float=True)
        fault_point("between-files")
        failure_rows = [{**f.as_row(), "run_id": run_id, "failed_at": now} for o in outcomes
                        for f in [*o.failures, *o.warnings]]
        failures = pd.DataFrame(failure_rows, columns=FAILURES_SCHEMA.names)
        _upsert(self.failures_path, FAILURES_SCHEMA, replaced, failures, [*LESION_KEY, "stage", "message"])
        state_rows = [{**o.state, "status": o.status, "updated_at": now} for o in outcomes if o.state]
        state_rows += [dict(r) for r in state_only]
        state_replaced = replaced | {ScanKey(r["patient_id"], r["session"], r["tracer"]) for r in state_only}
        # A scan whose worker crashed has no state: drop its old state so that it is retried next time.
        _upsert(self.scans_path, SCANS_SCHEMA, state_replaced,
                pd.DataFrame(state_rows, columns=SCANS_SCHEMA.names), SCAN_KEY)

    def read_runs(self) -> pd.DataFrame:
        """The run log; columns added since an older radiomx wrote it are filled with ""."""
        if not self.runs_path.exists():
            return _empty(RUNS_SCHEMA)
        table = pq.read_table(self.runs_path)
        for name in RUNS_ADDED:
            if name not in table.column_names:
                table = table.append_column(name, pa.array([""] * table.num_rows, pa.string()))
        _check_fixed(table, RUNS_SCHEMA, self.runs_path)
        return table.to_pandas()

    def replace_stage_failures(self, keys: Iterable[ScanKey], stage: str, failures: Iterable, run_id: str,
                               now) -> None:
        """Replace only ``stage``'s failures rows of ``keys`` (``radiomx qc`` re-renders pictures without touching
        the extraction's failures)."""
        keys = set(keys)
        old = self.read_failures()
        new = pd.DataFrame([{**f.as_row(), "run_id": run_id, "failed_at": now} for f in failures],
                           columns=FAILURES_SCHEMA.names)
        mine = _key_index(old).isin([tuple(k.__dict__.values()) for k in keys]) & (old["stage"] == stage)
        if not mine.any() and not len(new):
            return  # nothing to replace: leave the file (and its mtime) alone
        old = old.loc[~mine]
        parts = [f for f in (old, new) if len(f)]
        combined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else old)
        combined = combined.sort_values([*LESION_KEY, "stage", "message"], kind="stable").reset_index(drop=True)
        with atomic_path(self.failures_path) as tmp:
            pq.write_table(_to_table(combined, FAILURES_SCHEMA, extra_float=False), tmp)

    def append_run(self, record: dict) -> None:
        old = self.read_runs()
        new = pd.DataFrame([record], columns=RUNS_SCHEMA.names)
        combined = pd.concat([f for f in (old, new) if len(f)], ignore_index=True)
        with atomic_path(self.runs_path) as tmp:
            pq.write_table(_to_table(combined, RUNS_SCHEMA, extra_float=False), tmp)
