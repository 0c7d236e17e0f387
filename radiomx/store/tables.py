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
``scans.parquet`` last. Each file is replaced atomically; the small tables all change through ``replace_rows``,
their columns, key and order declared in ``radiomx.columns``. Upserts are by scan key (all rows of a recomputed scan
are replaced), so replaying a commit is harmless: if a kill lands between two files, the state still says "not
done" and the next run recomputes those scans and replaces their rows. A key is never present twice. At the end
of a run ``publish_stale`` rewrites the published file of every tracer whose parts changed (publish.py).

Why failures and scans stay whole files rewritten per commit: they have ~20 columns, so at 20,000 scans the
scans.parquet rewrite costs ~0.26 s on a loaded 2-core machine (0.05 s at 1,000; benchmarks/RESULTS-store.md),
against ~40 s for a features table of 1,130 columns. It is included in the measured commit times. Why not one
SQLite file for them: measured in docs/storage.md (more code, the same write order, a net loss for nightly runs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import FAILURES, FEATURES, FLOAT, RUNS, SCANS, Table
from radiomx.records import REFERENCE_REGIONS, ScanKey, ScanOutcome  # noqa: F401  (REFERENCE_REGIONS: re-exported)
from radiomx.store.atomic import atomic_path, fault_point
from radiomx.store.outdir import state_path
from radiomx.store.parts import TracerParts, parts_root
from radiomx.store.publish import features_path, is_stale, live_table, publish
from radiomx.store.schema import (  # noqa: F401  (re-exported: the names other modules and tests import)
    FEATURE_FIXED_SCHEMA,
    LESION_KEY,
    SCAN_KEY,
    arrow_rows,
    arrow_schema,
    conform,
    is_feature_column,
    join_key,
    key_strings,
    read_conformed,
    sort_rows,
    with_nullable_integers,
)

if TYPE_CHECKING:
    import pandas as pd

FAILURES_SCHEMA = arrow_schema(FAILURES)
SCANS_SCHEMA = arrow_schema(SCANS)
RUNS_SCHEMA = arrow_schema(RUNS)
_STATE_FIGURES = [c.name for c in SCANS.columns if c.type == FLOAT]


def replace_rows(path: Path, table: Table, new: pa.Table, drop: Callable[[pa.Table], pa.Array] | None = None) -> None:
    """The one way a bookkeeping table changes: read the file (conformed to the declaration, so an older file is
    migrated here), drop the rows ``drop`` selects, add ``new``, sort as declared, replace the file atomically.
    Nothing dropped and nothing added: the file (and its mtime) is left alone, and none appears."""
    old = read_conformed(path, table).select(list(table.names)).replace_schema_metadata(None) \
        if path.exists() else None
    changed = new.num_rows > 0
    if old is not None and drop is not None and old.num_rows:
        dropped = drop(old)
        if pc.any(dropped).as_py():
            old, changed = old.filter(pc.invert(dropped)), True
    if not changed:
        return
    combined = pa.concat_tables([old, new]) if old is not None else new
    with atomic_path(path) as tmp:
        pq.write_table(sort_rows(combined, table), tmp)


def of_scans(keys: Iterable[ScanKey]) -> Callable[[pa.Table], pa.Array]:
    """``drop`` for ``replace_rows``: the rows of these scans."""
    texts = pa.array([join_key((k.patient_id, k.session, k.tracer)) for k in keys], pa.string())
    return lambda data: pc.is_in(key_strings(data), value_set=texts)


def _state_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored state row with its figures' nulls as NaN, as ``new_state_row`` builds them and as every reader of
    the state has always seen them (``math.isnan``)."""
    return {**row, **{n: math.nan for n in _STATE_FIGURES if row.get(n) is None}}


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
        rows = read_conformed(self.scans_path, SCANS).to_pylist()
        return {ScanKey(r["patient_id"], r["session"], r["tracer"]): _state_row(r) for r in rows}

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
        table = conform(table, FEATURES, folder)
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
            return FAILURES_SCHEMA.empty_table().to_pandas()
        return read_conformed(self.failures_path, FAILURES).to_pandas()

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
        # A scan that kept its last good rows (a failed rerun, radiomx.run.last_good) keeps them: only its failures
        # and state change.
        rows_replaced = replaced - {o.key for o in outcomes if o.kept_rows}
        for tracer, rows in sorted(by_tracer.items()):
            keys = [(k.patient_id, k.session, k.tracer) for k in rows_replaced if k.tracer == tracer]
            self._parts(tracer).upsert(keys, arrow_rows(rows, FEATURES) if rows else None)
        fault_point("between-files")
        failure_rows = [{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": severity} for o in outcomes
                        for severity, found in (("failure", o.failures), ("warning", o.warnings)) for f in found]
        replace_rows(self.failures_path, FAILURES, arrow_rows(failure_rows, FAILURES), of_scans(replaced))
        state_rows = [{**o.state, "status": o.status, "updated_at": now} for o in outcomes if o.state]
        state_rows += [dict(r) for r in state_only]
        state_replaced = replaced | {ScanKey(r["patient_id"], r["session"], r["tracer"]) for r in state_only}
        # A scan whose worker crashed has no state: drop its old state so that it is retried next time.
        replace_rows(self.scans_path, SCANS, arrow_rows(state_rows, SCANS), of_scans(state_replaced))

    def read_runs(self) -> pd.DataFrame:
        """The run log; columns added since an older radiomx wrote it are filled as declared (``""``)."""
        if not self.runs_path.exists():
            return RUNS_SCHEMA.empty_table().to_pandas()
        return read_conformed(self.runs_path, RUNS).to_pandas()

    def replace_stage_failures(self, keys: Iterable[ScanKey], stage: str, failures: Iterable, run_id: str,
                               now) -> None:
        """Replace only ``stage``'s failures rows of ``keys`` (``radiomx qc`` re-renders pictures without touching
        the extraction's failures)."""
        of_keys = of_scans(keys)
        new = [{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": "failure"} for f in failures]
        replace_rows(self.failures_path, FAILURES, arrow_rows(new, FAILURES),
                     lambda data: pc.and_(of_keys(data), pc.equal(data["stage"], stage)))

    def _parts(self, tracer: str) -> TracerParts:
        """The tracer's parts, first splitting a features file written before parts existed (migration in place,
        once, on the first commit that touches the tracer; reads of an unmigrated OUT work unchanged)."""
        parts = TracerParts(self.out, tracer)
        published = features_path(self.out, tracer)
        if not parts.exists() and published.exists():
            conform(pq.read_schema(published).empty_table(), FEATURES, published)
            parts.migrate_from(published)
        return parts

    def append_run(self, record: dict) -> None:
        replace_rows(self.runs_path, RUNS, arrow_rows([record], RUNS))
