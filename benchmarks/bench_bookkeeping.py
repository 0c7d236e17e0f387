"""Should the bookkeeping tables (scans, failures, runs) live in one SQLite file, committed in one transaction per
batch, with Parquet kept as the published format? Issue 23 asks to measure before deciding: commit cost and code
size both ways, side by side.

The two candidates, on the same OUT and the same batches:

* **parquet** (radiomx today): ``failures.parquet`` then ``scans.parquet`` rewritten whole per commit, each an
  atomic replace (``store.tables.replace_rows``), the state last; ``runs.parquet`` appended once per run. Readers
  open the files themselves.
* **sqlite**: ``OUT/.radiomx-bookkeeping.sqlite`` (WAL, ``synchronous=FULL``: durable like the fsynced Parquet),
  its tables created from the same declarations (``radiomx.columns``); a commit deletes the batch's scans and
  inserts their rows in ONE transaction; at the end of a run the three tables are exported to Parquet (what
  readers, pandas, DuckDB and R, open), and a first run migrates an older OUT's Parquet files in. ``SqliteBook``
  below is that candidate, complete enough to time: schema, commit, state load, export, migration.

Workload: a table of N scans (37 state columns, 1 failure per 20 scans), then 16-scan commits that recompute 4
existing scans at random places and add 12 new ones (one of them failing), as ``bench_store.py`` does; the
features parts are the same for both and not timed here. Each figure is the median of ``--commits`` commits (or
of ``--repeats`` for once-per-run steps), the candidates alternating commit by commit. Code size: lines of code
(no blank, comment or docstring line) that each candidate needs and the other does not.

Usage: ``python benchmarks/bench_bookkeeping.py [--sizes 1000 4000 20000] [--commits 9] [--smoke]``. ``--smoke``
runs the same code at 200 scans in seconds (tests/test_benchmark_bookkeeping.py). Prints markdown tables and the
machine load (``os.getloadavg``) before and after.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from radiomx.columns import FAILURES, FLOAT, RUNS, SCANS, TIME, Table  # noqa: E402
from radiomx.records import Failure, ScanKey, ScanOutcome, new_state_row  # noqa: E402
from radiomx.store import tables as parquet_store  # noqa: E402
from radiomx.store.atomic import atomic_path  # noqa: E402
from radiomx.store.schema import arrow_rows, arrow_schema, read_conformed, sort_rows  # noqa: E402

TRACER = "18F-FDG"
BATCH = 16
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqliteBook:
    """The SQLite candidate: the three bookkeeping tables in one file, one transaction per commit."""

    FILE = ".radiomx-bookkeeping.sqlite"
    _SQL = {"string": "TEXT", "int64": "INTEGER", "float64": "REAL", TIME: "INTEGER"}

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        fresh = not (self.out / self.FILE).exists()
        self.db = sqlite3.connect(self.out / self.FILE, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        for table in (SCANS, FAILURES, RUNS):
            columns = ", ".join(f'"{c.name}" {self._SQL[c.type]}' for c in table.columns)
            self.db.execute(f'CREATE TABLE IF NOT EXISTS "{table.name}" ({columns})')
        self.db.execute("CREATE INDEX IF NOT EXISTS scans_key ON scans (patient_id, session, tracer)")
        self.db.execute("CREATE INDEX IF NOT EXISTS failures_key ON failures (patient_id, session, tracer)")
        if fresh:
            self._migrate()

    def _migrate(self) -> None:
        """An older OUT's Parquet files, read once into the database (conformed: the added columns filled)."""
        with self._transaction():
            for table in (SCANS, FAILURES, RUNS):
                path = self.out / f"{table.name}.parquet"
                if path.exists():
                    self._insert(table, read_conformed(path, table).to_pylist())

    def _transaction(self):
        db = self.db

        class Transaction:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, *_) -> None:
                db.execute("COMMIT" if kind is None else "ROLLBACK")

        return Transaction()

    @staticmethod
    def _value(value, kind: str):
        if kind == TIME and value is not None:
            return (value - EPOCH) // timedelta(microseconds=1)
        if kind == FLOAT and value is not None and math.isnan(value):
            return None
        return value

    def _insert(self, table: Table, rows: list[dict]) -> None:
        names = ", ".join(f'"{n}"' for n in table.names)
        marks = ", ".join("?" * len(table.names))
        values = [tuple(self._value(r.get(c.name), c.type) for c in table.columns) for r in rows]
        self.db.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', values)

    def _delete(self, table: Table, keys: set[ScanKey]) -> None:
        self.db.executemany(f'DELETE FROM "{table.name}" WHERE patient_id = ? AND session = ? AND tracer = ?',
                            [(k.patient_id, k.session, k.tracer) for k in keys])

    def commit(self, outcomes: list[ScanOutcome], run_id: str, now: datetime, state_only=(), pruned=()) -> None:
        replaced = {o.key for o in outcomes} | set(pruned)
        failures = [{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": severity} for o in outcomes
                    for severity, found in (("failure", o.failures), ("warning", o.warnings)) for f in found]
        states = [{**o.state, "status": o.status, "updated_at": now} for o in outcomes if o.state]
        states += [dict(r) for r in state_only]
        with self._transaction():
            self._delete(FAILURES, replaced)
            self._insert(FAILURES, failures)
            self._delete(SCANS, replaced | {ScanKey(r["patient_id"], r["session"], r["tracer"]) for r in states})
            self._insert(SCANS, states)

    def replace_stage_failures(self, keys, stage: str, failures, run_id: str, now: datetime) -> None:
        rows = [{**f.as_row(), "run_id": run_id, "failed_at": now, "severity": "failure"} for f in failures]
        with self._transaction():
            self.db.executemany("DELETE FROM failures WHERE patient_id = ? AND session = ? AND tracer = ? AND "
                                "stage = ?", [(k.patient_id, k.session, k.tracer, stage) for k in keys])
            self._insert(FAILURES, rows)

    def append_run(self, record: dict) -> None:
        with self._transaction():
            self._insert(RUNS, [record])

    def read(self, table: Table) -> pa.Table:
        rows = self.db.execute(f'SELECT * FROM "{table.name}"').fetchall()
        arrays = []
        for i, column in enumerate(table.columns):
            values = [r[i] for r in rows]
            if column.type == TIME:
                arrays.append(pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC")))
            else:
                arrays.append(pa.array(values, arrow_schema(table).field(column.name).type))
        return sort_rows(pa.Table.from_arrays(arrays, schema=arrow_schema(table)), table)

    def load_state(self) -> dict[ScanKey, dict]:
        floats = [c.name for c in SCANS.columns if c.type == FLOAT]
        return {ScanKey(r["patient_id"], r["session"], r["tracer"]): {**r, **{n: math.nan for n in floats
                                                                            if r[n] is None}}
                for r in self.read(SCANS).to_pylist()}

    def publish(self) -> None:
        """The three tables as Parquet for their readers, each an atomic replace; done at the end of a run, so a
        killed run leaves them stale (readers then need a staleness check, as the features files have)."""
        for table in (SCANS, FAILURES, RUNS):
            with atomic_path(self.out / f"{table.name}.parquet") as tmp:
                pq.write_table(self.read(table), tmp)


# ------------------------------------------------------------------------------------------------------ workload
def state_row(i: int, now: datetime) -> dict:
    row = new_state_row(ScanKey(f"P{i:06d}", "baseline", TRACER), image_file=f"P{i:06d}/FDG/pet.nii.gz",
                        mask_file=f"P{i:06d}/FDG/mask.nii.gz", image_stat="1:2", mask_stat="3:4",
                        image_sha256="a" * 64, mask_sha256="b" * 64, params_version="v3", params_sha256="c" * 64,
                        work_key="d" * 64, n_lesions=5, tmtv_ml=12.5, ttlg=40.0, dmax_voxel_mm=120.0,
                        ref_liver_suv_mean=2.1, ref_liver_suv_sd=0.3, ref_liver_voxels=900,
                        ref_liver_file="ref-liver.nii.gz", image_orientation="LPS")
    return {**row, "status": "ok", "updated_at": now}


def outcome(i: int, failing: bool) -> ScanOutcome:
    key = ScanKey(f"P{i:06d}", "baseline", TRACER)
    state = {k: v for k, v in state_row(i, datetime.now(UTC)).items() if k not in ("status", "updated_at")}
    failures = [Failure(key, "suv", f"P{i:06d}/FDG/pet.nii.gz", "Patient Weight (0010,1030) is 0")] if failing \
        else []
    return ScanOutcome(key, failures=failures, state=state)


def build_out(root: Path, size: int) -> None:
    """An OUT of ``size`` scans as today's store leaves it (scans.parquet, failures.parquet, runs.parquet)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    now = datetime.now(UTC)
    pq.write_table(arrow_rows([state_row(i, now) for i in range(size)], SCANS), root / "scans.parquet")
    failures = [{**Failure(ScanKey(f"P{i:06d}", "baseline", TRACER), "suv", "pet.nii.gz", "weight 0").as_row(),
                 "run_id": "r0", "failed_at": now, "severity": "failure"} for i in range(0, size, 20)]
    pq.write_table(arrow_rows(failures, FAILURES), root / "failures.parquet")
    pq.write_table(arrow_rows([{"run_id": "r0", "started_at": now, "ended_at": now, "planned": size}], RUNS),
                   root / "runs.parquet")


def batches(size: int, commits: int, seed: int = 7) -> list[list[ScanOutcome]]:
    rng = np.random.default_rng(seed)
    plan, next_id = [], size
    for _ in range(commits):
        old = sorted(rng.choice(size, BATCH // 4, replace=False).tolist())
        new = list(range(next_id, next_id + BATCH - len(old)))
        next_id += len(new)
        plan.append([outcome(i, failing=(i == new[0])) for i in old + new])
    return plan


def parquet_commit(out: Path, batch: list[ScanOutcome], now: datetime) -> None:
    """What ``Store.commit`` does for the bookkeeping tables (its features parts are the same for both)."""
    replaced = {o.key for o in batch}
    failures = [{**f.as_row(), "run_id": "bench", "failed_at": now, "severity": "failure"} for o in batch
                for f in o.failures]
    parquet_store.replace_rows(out / "failures.parquet", FAILURES, arrow_rows(failures, FAILURES),
                               parquet_store.of_scans(replaced))
    states = [{**o.state, "status": o.status, "updated_at": now} for o in batch]
    parquet_store.replace_rows(out / "scans.parquet", SCANS, arrow_rows(states, SCANS),
                               parquet_store.of_scans(replaced))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(size: int, commits: int, repeats: int, work: Path) -> dict:
    """Both candidates on copies of one OUT, alternating commit by commit."""
    base, a, b = work / f"base-{size}", work / f"parquet-{size}", work / f"sqlite-{size}"
    build_out(base, size)
    for copy in (a, b):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(base, copy)
    result: dict[str, list[float]] = {k: [] for k in ("parquet commit", "sqlite commit", "parquet load state",
                                                      "sqlite load state", "sqlite publish (end of run)",
                                                      "sqlite migration (first run)", "parquet append run",
                                                      "sqlite append run")}
    result["sqlite migration (first run)"].append(timed(lambda: SqliteBook(b)))
    book = SqliteBook(b)
    for batch in batches(size, commits):
        now = datetime.now(UTC)
        result["parquet commit"].append(timed(lambda bt=batch, t=now: parquet_commit(a, bt, t)))
        result["sqlite commit"].append(timed(lambda bt=batch, t=now: book.commit(bt, "bench", t)))
    record = {"run_id": "r1", "started_at": datetime.now(UTC), "ended_at": datetime.now(UTC), "planned": 1}
    for _ in range(repeats):
        result["parquet load state"].append(timed(lambda: parquet_store.Store(a).load_state()))
        result["sqlite load state"].append(timed(book.load_state))
        result["sqlite publish (end of run)"].append(timed(book.publish))
        result["parquet append run"].append(timed(lambda: parquet_store.Store(a).append_run(record)))
        result["sqlite append run"].append(timed(lambda: book.append_run(record)))
    # Both hold the same state after the same commits (the candidate is complete for what is timed).
    same = {k: v for k, v in parquet_store.Store(a).load_state().items()}
    theirs = book.load_state()
    assert same.keys() == theirs.keys(), "the candidates disagree on the scans"
    assert read_conformed(a / "failures.parquet", FAILURES).num_rows == book.read(FAILURES).num_rows
    for folder in (base, a, b):
        shutil.rmtree(folder, ignore_errors=True)
    return {k: statistics.median(v) for k, v in result.items()}


# ----------------------------------------------------------------------------------------------------- code size
def code_lines(source: str) -> int:
    """Lines of code: no blank line, comment or docstring."""
    tree = ast.parse(textwrap.dedent(source))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = textwrap.dedent(source).splitlines()
    return sum(1 for n, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#")
               and n not in docstrings)


def code_size() -> dict[str, int]:
    """What each candidate needs that the other does not. Parquet: the replace path, the bookkeeping part of
    ``Store.commit`` (after its features) and ``Store``'s bookkeeping readers and writers. SQLite: ``SqliteBook``
    (schema, transaction, conversions, commit, qc's failures, readers, export, migration), not counting what it
    would still need to be used: the staleness check of the exported files for their readers."""
    store = parquet_store.Store
    parquet = [parquet_store.replace_rows, parquet_store.of_scans, parquet_store._state_row, store.load_state,
               store.read_failures, store.read_runs, store.append_run, store.replace_stage_failures]
    commit = inspect.getsource(store.commit).split('fault_point("between-files")')[1]
    return {"parquet": sum(code_lines(inspect.getsource(f)) for f in parquet) + code_lines(commit),
            "sqlite": code_lines(inspect.getsource(SqliteBook))}


# -------------------------------------------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 20000])
    parser.add_argument("--commits", type=int, default=9, help="16-scan commits per candidate and size")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the once-per-run steps")
    parser.add_argument("--smoke", action="store_true", help="200 scans, 3 commits: the same code in seconds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.commits, args.repeats = [200], 3, 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="radiomx-bench-bookkeeping-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        results = {size: measure(size, args.commits, args.repeats, work) for size in args.sizes}
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"Bookkeeping tables only (scans, failures, runs), {BATCH}-scan commits (4 recomputed + 12 new, one "
          f"failing); medians of {args.commits} commits, {args.repeats} repeats of once-per-run steps; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| scans already in OUT | " + " | ".join(f"{s:,}" for s in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in next(iter(results.values())):
        print(f"| {name} | " + " | ".join(f"{r[name] * 1000:.1f} ms" for r in results.values()) + " |")
    sizes = code_size()
    print(f"\ncode each candidate needs that the other does not: parquet {sizes['parquet']} lines, "
          f"sqlite {sizes['sqlite']} lines (before the stale-export check its readers would need)")
    largest = results[max(results)]
    print(f"commit sqlite / parquet at {max(results):,} scans: "
          f"{largest['sqlite commit'] / largest['parquet commit']:.2f}x")
    print(f"\n(bench_bookkeeping.py ran {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
