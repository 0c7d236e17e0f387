"""The output folder's tables and the one class that reads and commits them (``Store``).

Layout of OUT (docs/storage.md)::

    OUT/features/<tracer>.parquet   PUBLISHED: one file per tracer, one row per lesion, as of the end of the last
                                    run (a tracer's own feature columns); what readers open
    OUT/.parts/<tracer>/            internal live view: bounded parts the commits write (parts.py)
    OUT/.parts/<tracer>.index.parquet   scan key -> part, generation of the last commit
    OUT/failures.parquet            one row per failed scan or lesion
    OUT/scans.parquet               per-scan state: fingerprints, work key, status (drives incremental runs)
    OUT/runs.parquet                one row per run (the run log)
    OUT/.radiomx.store.lock         the writer lock

Why one published file per tracer: tracers have different parameter files and so different feature columns; one
file per tracer is read by ``pandas.read_parquet``, ``pyarrow``, DuckDB and R arrow in one call with one schema.

Commit protocol (the batch is the unit): feature parts (index first, then each touched part), then failures, then
``scans.parquet`` last. Each file is replaced atomically. Upserts are by scan key (all rows of a recomputed scan
are replaced), so replaying a commit is harmless: if a kill lands between two files, the state still says "not
done" and the next run recomputes those scans and replaces their rows. A key is never present twice. At the end
of a run ``publish_stale`` rewrites the published file of every tracer whose parts changed (publish.py).

Why failures and scans stay whole files rewritten per commit: they have ~20 columns, so at 20,000 scans the
scans.parquet rewrite costs ~0.26 s on a loaded 2-core machine (0.05 s at 1,000; benchmarks/RESULTS-store.md),
against ~40 s for a features table of 1,130 columns. It is included in the measured commit times.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.records import REFERENCE_REGIONS, ScanKey, ScanOutcome
from radiomx.store.atomic import atomic_path, fault_point
from radiomx.store.outdir import state_path
from radiomx.store.parts import TracerParts, parts_root
from radiomx.store.publish import features_path, is_stale, live_table, publish
from radiomx.store.schema import (  # noqa: F401  (re-exported: the names other modules and tests import)
    FEATURE_ADDED,
    FEATURE_FIXED_SCHEMA,
    LESION_KEY,
    SCAN_KEY,
    check_fixed,
    is_feature_column,
    read_parquet_checked,
    to_table,
    with_nullable_integers,
)

_to_table = to_table

#: Reference regions with columns in the state table (radiomx.features.references.REGIONS, kept equal by a test).
#: Per-scan indices in the state row (docs/lesions-and-indices.md): reference-region statistics, total metabolic
#: tumour volume and total lesion glycolysis over the union of lesion voxels, Dmax over lesion voxels, height and
#: weight.
SCAN_INDEX_FIELDS = (
    *[f for r in REFERENCE_REGIONS for f in (
        pa.field(f"ref_{r}_suv_mean", pa.float64()), pa.field(f"ref_{r}_suv_sd", pa.float64()),
        pa.field(f"ref_{r}_voxels", pa.int64()), pa.field(f"ref_{r}_file", pa.string()))],
    pa.field("tmtv_ml", pa.float64()), pa.field("ttlg", pa.float64()), pa.field("dmax_voxel_mm", pa.float64()),
    pa.field("height_m", pa.float64()), pa.field("weight_kg", pa.float64()),
)

#: The image's storage orientation (``LPS``, ``RAS``, ...: radiomx.features.orientation), also in every lesion row.
SCAN_PROVENANCE_FIELDS = (pa.field("image_orientation", pa.string()),)

FAILURES_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("lesion_id", pa.int64()),
    ("stage", pa.string()), ("file", pa.string()), ("message", pa.string()), ("run_id", pa.string()),
    ("failed_at", pa.timestamp("us", tz="UTC")), ("severity", pa.string()),
])
#: ``severity``: "failure" (the scan or lesion lacks rows, or a step failed: exit 1) or "warning" (the rows are
#: complete; an implausible reference region, a VOI left empty by its threshold: exit 0). Added after files were
#: written without it: those rows read as null (and were failures or warnings as their stage says).
FAILURES_ADDED = frozenset({"severity"})
SCANS_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("image_file", pa.string()),
    ("mask_file", pa.string()), ("image_stat", pa.string()), ("mask_stat", pa.string()),
    ("image_sha256", pa.string()), ("mask_sha256", pa.string()), ("params_version", pa.string()),
    ("params_sha256", pa.string()), ("work_key", pa.string()), ("status", pa.string()),
    ("n_lesions", pa.int64()), ("n_failed", pa.int64()), ("updated_at", pa.timestamp("us", tz="UTC")),
    *SCAN_INDEX_FIELDS, *SCAN_PROVENANCE_FIELDS,
])
#: Columns a scans.parquet written before they existed may lack: read as null (the logic-version bump then
#: recomputes those scans), instead of refusing the whole output folder.
SCANS_ADDED = frozenset(f.name for f in (*SCAN_INDEX_FIELDS, *SCAN_PROVENANCE_FIELDS))
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


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas()


def _key_index(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[SCAN_KEY].astype(str))


def _upsert(path: Path, schema: pa.Schema, added: frozenset[str], replaced: set[ScanKey], new: pd.DataFrame,
            sort_by: list[str], extra_float: bool = False) -> None:
    """Drop every row of the replaced scans, add the new rows, sort by key, replace the file atomically; ``added``:
    the schema's columns that older files may lack."""
    old = read_parquet_checked(path, schema, added) if path.exists() else _empty(schema)
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
        frame = read_parquet_checked(self.scans_path, SCANS_SCHEMA, SCANS_ADDED)
        return {ScanKey(r["patient_id"], r["session"], r["tracer"]): r for r in frame.to_dict("records")}

    def tracers(self) -> list[str]:
        """Tracers with a published file or live parts (a first run killed before publishing has only parts)."""
        folder = self.out / "features"
        published = {p.name[: -len(".parquet")] for p in folder.glob("*.parquet")} if folder.is_dir() else set()
        live = {p.name[: -len(".index.parquet")] for p in parts_root(self.out).glob("*.index.parquet")}
        return sorted(published | live)

    def read_features(self, tracer: str, nullable_integers: bool = False) -> pd.DataFrame:
        """The published file; when a killed run left the parts newer than it, the parts themselves (same rows and
        order the next publish writes, read more slowly), so a reader never sees less than was committed.
        ``nullable_integers``: integer columns as pandas' ``Int64`` (``segment_number`` of an RTSTRUCT lesion is
        null, not NaN in a float column)."""
        if is_stale(self.out, tracer):
            table = live_table(self.out, tracer)
            folder = parts_root(self.out) / tracer
        else:
            folder = features_path(self.out, tracer)
            table = pq.read_table(folder)
        table = check_fixed(table, FEATURE_FIXED_SCHEMA, folder, FEATURE_ADDED)
        return with_nullable_integers(table) if nullable_integers else table.to_pandas()

    def stale_tracers(self) -> list[str]:
        """Tracers whose published file lags their parts (``radiomx table`` says so; ``publish_stale`` fixes it)."""
        return [t for t in self.tracers() if is_stale(self.out, t)]

    def publish_stale(self) -> list[str]:
        """Publish every tracer whose parts are newer than its published file (hold the lock); returns them."""
        stale = self.stale_tracers()
        for tracer in stale:
            publish(self.out, tracer)
        return stale

    def read_failures(self) -> pd.DataFrame:
        if not self.failures_path.exists():
            return _empty(FAILURES_SCHEMA)
        return read_parquet_checked(self.failures_path, FAILURES_SCHEMA, FAILURES_ADDED)

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
            keys = [(k.patient_id, k.session, k.tracer) for k in replaced if k.tracer == tracer]
            self._parts(tracer).upsert(keys, to_table(pd.DataFrame(rows), FEATURE_FIXED_SCHEMA, extra_float=True)
                                       if rows else None)
        fault_point("between-files")
        failure_rows = [{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": severity} for o in outcomes
                        for severity, found in (("failure", o.failures), ("warning", o.warnings)) for f in found]
        failures = pd.DataFrame(failure_rows, columns=FAILURES_SCHEMA.names)
        _upsert(self.failures_path, FAILURES_SCHEMA, FAILURES_ADDED, replaced, failures,
                [*LESION_KEY, "stage", "message"])
        state_rows = [{**o.state, "status": o.status, "updated_at": now} for o in outcomes if o.state]
        state_rows += [dict(r) for r in state_only]
        state_replaced = replaced | {ScanKey(r["patient_id"], r["session"], r["tracer"]) for r in state_only}
        # A scan whose worker crashed has no state: drop its old state so that it is retried next time.
        _upsert(self.scans_path, SCANS_SCHEMA, SCANS_ADDED, state_replaced,
                pd.DataFrame(state_rows, columns=SCANS_SCHEMA.names), SCAN_KEY)

    def read_runs(self) -> pd.DataFrame:
        """The run log; columns added since an older radiomx wrote it are filled with ""."""
        if not self.runs_path.exists():
            return _empty(RUNS_SCHEMA)
        table = pq.read_table(self.runs_path)
        for name in RUNS_ADDED:
            if name not in table.column_names:
                table = table.append_column(name, pa.array([""] * table.num_rows, pa.string()))
        check_fixed(table, RUNS_SCHEMA, self.runs_path)
        return table.to_pandas()

    def replace_stage_failures(self, keys: Iterable[ScanKey], stage: str, failures: Iterable, run_id: str,
                               now) -> None:
        """Replace only ``stage``'s failures rows of ``keys`` (``radiomx qc`` re-renders pictures without touching
        the extraction's failures)."""
        keys = set(keys)
        old = self.read_failures()
        new = pd.DataFrame([{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": "failure"}
                            for f in failures], columns=FAILURES_SCHEMA.names)
        mine = _key_index(old).isin([tuple(k.__dict__.values()) for k in keys]) & (old["stage"] == stage)
        if not mine.any() and not len(new):
            return  # nothing to replace: leave the file (and its mtime) alone
        old = old.loc[~mine]
        parts = [f for f in (old, new) if len(f)]
        combined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else old)
        combined = combined.sort_values([*LESION_KEY, "stage", "message"], kind="stable").reset_index(drop=True)
        with atomic_path(self.failures_path) as tmp:
            pq.write_table(_to_table(combined, FAILURES_SCHEMA, extra_float=False), tmp)

    def _parts(self, tracer: str) -> TracerParts:
        """The tracer's parts, first splitting a features file written before parts existed (migration in place,
        once, on the first commit that touches the tracer; reads of an unmigrated OUT work unchanged)."""
        parts = TracerParts(self.out, tracer)
        published = features_path(self.out, tracer)
        if not parts.exists() and published.exists():
            check_fixed(pq.read_schema(published).empty_table(), FEATURE_FIXED_SCHEMA, published, FEATURE_ADDED)
            parts.migrate_from(published)
        return parts

    def append_run(self, record: dict) -> None:
        old = self.read_runs()
        new = pd.DataFrame([record], columns=RUNS_SCHEMA.names)
        combined = pd.concat([f for f in (old, new) if len(f)], ignore_index=True)
        with atomic_path(self.runs_path) as tmp:
            pq.write_table(_to_table(combined, RUNS_SCHEMA, extra_float=False), tmp)
