"""``Extraction``: one ``extract`` run over one output folder, held under its lock: plan, compute, account, commit in
batches, log the run.

Why an object: the run has one state that every step touches (the plan, the batch waiting for its commit, the
running counts, the time of the last commit), and its inputs are many (cohort, OUT, options, scans, parameter files,
layout, lesion options, progress callback). As fields of one typed record they are named once, instead of
travelling as ten positional arguments and a closure's ``nonlocal`` state.

The writer's side of ``run``: this process alone writes OUT (tables, then QC pictures). The table libraries are
imported only when a commit needs them, and in the background while the workers compute (``_import_store_soon``),
so a fresh run hands out its first scan before pandas and pyarrow are loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radiomx import __version__
from radiomx.errors import OutputError, exit_code
from radiomx.features import pyradiomics_version
from radiomx.options import ExtractOptions, LesionOptions
from radiomx.params.paramset import ParamSet
from radiomx.records import CohortPaths, Failure, Layout, Scan, ScanKey, ScanOutcome, new_state_row
from radiomx.run.last_good import keep_last_good
from radiomx.run.plan import Plan, make_plan
from radiomx.run.summary import RunSummary
from radiomx.store.outdir import prepare_out, state_path
from radiomx.vocabulary import PlanStatus

if TYPE_CHECKING:  # pandas/pyarrow load with the store, after the workers have been started
    from radiomx.store.tables import Store

ProgressCallback = Callable[[int, int, ScanOutcome], None]


@dataclass
class _Batch:
    """What the next commit writes: computed outcomes, refreshed state rows (a touched but unchanged input) and the
    vanished scans to prune."""

    outcomes: list[ScanOutcome] = field(default_factory=list)
    refreshed: list[dict] = field(default_factory=list)
    pruned: list[ScanKey] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __bool__(self) -> bool:
        return bool(self.outcomes or self.refreshed or self.pruned)


@dataclass
class Extraction:
    """One run of ``cohort`` into ``out`` (see the module docstring). ``scans``: those to plan (a ``--scans``
    selection, or all); ``in_cohort``: every scan the cohort has (a selection must not make the others vanished)."""

    cohort: Path
    out: Path
    options: ExtractOptions
    scans: list[Scan]
    params: dict[str, ParamSet]
    layout: Layout
    lesion_options: LesionOptions
    summary: RunSummary
    in_cohort: set[ScanKey] | None = None
    #: The ``[derive]``/``[compare]`` settings the cohort declared, as the run log records them.
    derive_record: dict[str, Any] = field(default_factory=dict)
    progress: ProgressCallback | None = None
    run_id: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _done: int = 0
    _total: int = 0
    #: The state rows of earlier runs, as ``plan`` read them (what a failed scan's last good extraction was).
    _stored: dict[ScanKey, dict] = field(default_factory=dict)

    def plan(self) -> Plan:
        """What this run computes, from the stored state (a dry run stops here: nothing written)."""
        self._stored = stored_state(self.out)
        plan = make_plan(self.scans, self._stored, self.params, self.cohort, self.layout,
                         self.lesion_options, self.options.force, self.in_cohort)
        self.summary.plan = plan
        self.summary.plan_counts = plan.counts()
        self.summary.vanished = list(plan.vanished)
        self.summary.pruned = list(plan.vanished) if self.options.prune else []
        return plan

    def run(self) -> RunSummary:
        """Plan, compute and commit every batch, publish, log the run (the caller holds OUT's lock)."""
        prepare_out(self.out)
        self.started = datetime.now(UTC)
        self.run_id = self.started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        plan = self.plan()
        self.summary.skipped = plan.count(PlanStatus.UNCHANGED)
        # The one place every outcome passes before a table, the summary or the log: paths become cohort-relative.
        paths = CohortPaths(self.cohort)
        invalid = [self._kept(paths.outcome(_invalid_outcome(i.scan)))
                   for i in plan.items if i.status == PlanStatus.INVALID]
        batch = _Batch(invalid, [i.refreshed_state for i in plan.items if i.refreshed_state],
                       list(self.summary.pruned))
        self._total = len(plan.to_compute) + len(invalid)
        for outcome in invalid:
            self._account(outcome)
        for outcome in self._computed(plan):
            outcome = self._kept(paths.outcome(outcome))
            batch.outcomes.append(outcome)
            self.summary.computed += 1
            self._account(outcome)
            if len(batch.outcomes) >= self.options.batch_size or self._due(batch):
                batch = self._commit(batch)
        self._commit(batch)
        with output_errors(self.out):
            store = open_store(self.out)
            store.publish_stale()  # only tracers this run (or a killed earlier one) committed to
            store.append_run(self._run_row(plan))
        if self.options.qc:
            self.summary.qc_missing = _pictures_missing(self.out, plan)
        return self.summary

    def _computed(self, plan: Plan) -> Iterator[ScanOutcome]:
        """The engine's outcomes, imported only when there is work: a no-change rerun loads no reader or feature
        code."""
        tasks = [dataclasses.replace(i.task, qc=self.options.qc) for i in plan.to_compute]
        if not tasks:
            return
        _import_store_soon()
        from radiomx.run.engine import run_tasks

        o = self.options
        yield from run_tasks(tasks, o.jobs, o.engine, o.dask_scheduler, o.dask_timeout)

    def _kept(self, outcome: ScanOutcome) -> ScanOutcome:
        """A scan that failed before any row keeps its last good rows (``last_good``)."""
        return keep_last_good(outcome, self._stored.get(outcome.key))

    def _due(self, batch: _Batch) -> bool:
        return time.monotonic() - batch.started >= self.options.batch_seconds

    def _account(self, outcome: ScanOutcome) -> None:
        summary = self.summary
        summary.rows_written += len(outcome.rows)
        summary.failures.extend(outcome.failures)
        summary.warnings.extend(outcome.warnings)
        if outcome.failures:
            summary.failed_scans += 1
        elif outcome.is_negative:
            summary.negative_scans += 1
        self._done += 1
        if self.progress:
            self.progress(self._done, self._total, outcome)

    def _commit(self, batch: _Batch) -> _Batch:
        """Write the batch (tables first, then the QC pictures it carries); an empty batch writes nothing."""
        self.summary.rows_changed = self.summary.rows_changed or bool(batch.outcomes or batch.pruned)
        if batch:
            with output_errors(self.out):
                open_store(self.out).commit(batch.outcomes, self.run_id, datetime.now(UTC), batch.refreshed,
                                            batch.pruned)
                _write_pictures(self.out, batch.outcomes)
                _remove_pictures(self.out, batch.pruned)
        return _Batch()

    def _run_row(self, plan: Plan) -> dict[str, Any]:
        """The run log's row (``OUT/runs.parquet``): counts, versions, and how the cohort was read."""
        from radiomx.store.runlog import options_json, relative_to_out

        summary = self.summary
        return {
            "run_id": self.run_id, "started_at": self.started, "ended_at": datetime.now(UTC),
            "command": _command_line(self.cohort), "radiomx_version": __version__,
            "pyradiomics_version": pyradiomics_version(), "planned": len(plan.items), "computed": summary.computed,
            "skipped": summary.skipped, "failed": summary.failed_scans, "exit_code": int(exit_code(summary)),
            "cohort": relative_to_out(self.cohort, self.out),
            "options": options_json(self.options, self.out, self.derive_record, self.lesion_options.selection),
        }


def stored_state(out: Path) -> dict[ScanKey, dict]:
    """The per-scan state of earlier runs; a fresh OUT has none, and then no table library is imported yet."""
    if not state_path(out).exists():
        return {}
    return open_store(out).load_state()


def open_store(out: Path) -> Store:
    """OUT's tables (pandas and pyarrow are imported here, on first use)."""
    from radiomx.store.tables import Store

    return Store(out)


@contextlib.contextmanager
def output_errors(out: Path) -> Iterator[None]:
    """A failed write (ENOSPC, EROFS, EIO) stops the run with one line; atomic replacement kept every table as it
    was after the last completed commit, and the next run recomputes what this one could not store."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{out}: cannot write results ({exc.strerror or exc}); the tables are as after the last "
                          "completed commit: free space or fix the output folder, then rerun") from exc


def _import_store_soon() -> None:
    """Import the store (pandas, pyarrow: ~0.45 s) on a thread while this one hands scans to the workers and waits
    for them, so the first commit does not pay it on the run's critical path. A failed import here is ignored:
    the commit's own import raises it again, where it is reported."""
    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module("radiomx.store.tables")

    threading.Thread(target=load, name="radiomx-import-store", daemon=True).start()


def _invalid_outcome(scan: Scan) -> ScanOutcome:
    """A scan discovery could not make whole (no mask, unknown tracer folder): one failures row, state "failed"."""
    stage, path, message = scan.problem  # type: ignore[misc]
    outcome = ScanOutcome(scan.key, failures=[Failure(scan.key, stage, path, message)])
    outcome.state = new_state_row(scan.key, n_failed=1)
    return outcome


def _write_pictures(out: Path, outcomes: list[ScanOutcome]) -> None:
    """The writer writes the workers' QC pictures, after the batch's tables (one writer for everything in OUT)."""
    pictures = [o for o in outcomes if o.picture is not None]
    if pictures:
        from radiomx.qc.files import write_picture

        for outcome in pictures:
            write_picture(out, outcome.key, outcome.picture)  # type: ignore[arg-type]


def _remove_pictures(out: Path, pruned: list[ScanKey]) -> None:
    """A pruned scan's QC picture and thumbnail go with its rows (after the commit that dropped them)."""
    if pruned:
        from radiomx.qc.files import remove_pictures

        remove_pictures(out, pruned)


def _pictures_missing(out: Path, plan: Plan) -> int:
    """With ``--qc``: unchanged scans without a picture (the run draws only what it computes)."""
    from radiomx.qc.files import picture_path

    return sum(1 for i in plan.items
               if i.status == PlanStatus.UNCHANGED and not picture_path(out, i.scan.key).is_file())


def _command_line(cohort: Path) -> str:
    """The command as typed, for the run log: the program by its name (not the absolute path of its venv) and every
    spelling of the cohort's path relative to itself, so that the folders above it (``/data/Smith_John/``) and
    the cohort's own absolute path are not stored."""
    argv = [Path(sys.argv[0]).name if sys.argv else "", *sys.argv[1:]]
    return CohortPaths(cohort).text(shlex.join(argv))
