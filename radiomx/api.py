"""The library API the CLI (and notebooks) call: ``extract``, ``scan``, ``status``, ``read_table``.

``extract`` is the only place that chains the stages: discover -> plan -> run (engine) -> store.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from radiomx import __version__
from radiomx.discover.cohort import discover, layout_for
from radiomx.errors import ConfigError, OutputError
from radiomx.features.extractor import pyradiomics_version
from radiomx.options import ExtractOptions
from radiomx.params.paramset import ParamSet, default_params_root, resolve_params
from radiomx.records import Failure, Layout, Scan, ScanKey, ScanOutcome
from radiomx.run.plan import Plan, make_plan
from radiomx.run.warmup import start_local_workers
from radiomx.store.lock import output_lock
from radiomx.store.outdir import prepare_out, state_path
from radiomx.tracers import get_tracer

if TYPE_CHECKING:  # pandas/pyarrow load with the store, after the workers have been started
    import pandas as pd

    from radiomx.store.tables import Store

ProgressCallback = Callable[[int, int, ScanOutcome], None]


@dataclass
class RunSummary:
    """What ``extract`` did. ``exit_code``: 0 all scans ok, 1 some scans or lesions failed, 2 never (raised)."""

    out: Path
    plan_counts: dict[str, int] = field(default_factory=dict)
    computed: int = 0
    skipped: int = 0
    failed_scans: int = 0
    rows_written: int = 0
    failures: list[Failure] = field(default_factory=list)
    dry_run: bool = False
    plan: Plan | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def as_dict(self) -> dict:
        """The machine-readable summary (``radiomx extract --json``): counts, the tables in OUT, the failures."""
        tables = [*sorted(self.out.glob("features/*.parquet")),
                  *(p for p in (self.out / n for n in ("failures.parquet", "scans.parquet", "runs.parquet"))
                    if p.exists())]
        data = {"out": str(self.out), "dry_run": self.dry_run, "exit_code": self.exit_code,
                "plan": dict(self.plan_counts), "computed": self.computed, "skipped": self.skipped,
                "failed_scans": self.failed_scans, "rows_written": self.rows_written,
                "tables": [] if self.dry_run else [str(p) for p in tables],
                "failures": [f.as_row() for f in self.failures]}
        if self.dry_run and self.plan is not None:
            data["scans"] = [{"patient_id": i.scan.key.patient_id, "session": i.scan.key.session,
                              "tracer": i.scan.key.tracer, "status": i.status, "reason": i.reason}
                             for i in self.plan.items]
        return data


def _layout(cohort: Path, options: ExtractOptions) -> Layout:
    return layout_for(cohort, options.image_patterns, options.mask_patterns, options.pet_units)


def scan(cohort: Path | str, options: ExtractOptions | None = None) -> list[Scan]:
    """Discover the scans of a cohort without extracting anything."""
    options = options or ExtractOptions()
    cohort = Path(cohort)
    return discover(cohort, _layout(cohort, options))


def _resolve_all_params(scans: list[Scan], options: ExtractOptions) -> dict[str, ParamSet]:
    root = options.params_dir or default_params_root()
    if not Path(root).is_dir():
        raise ConfigError(f"{root}: --params-dir does not exist")
    tracers = sorted({s.key.tracer for s in scans if s.problem is None})
    return {t: resolve_params(Path(root), get_tracer(t), options.params_version) for t in tracers}


def _check_writable(out: Path) -> None:
    """Create OUT and write a probe file in it: the only test that holds for root, read-only mounts and ACLs."""
    probe = out / f".radiomx-write-probe-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{out}: output folder is not writable ({exc.strerror}); choose another -o or fix its "
                          "permissions") from exc


def _invalid_outcome(scan: Scan) -> ScanOutcome:
    stage, path, message = scan.problem  # type: ignore[misc]
    outcome = ScanOutcome(scan.key, failures=[Failure(scan.key, stage, path, message)])
    outcome.state = {"patient_id": scan.key.patient_id, "session": scan.key.session, "tracer": scan.key.tracer,
                     "image_file": "", "mask_file": "", "image_stat": "", "mask_stat": "", "image_sha256": "",
                     "mask_sha256": "", "params_version": "", "params_sha256": "", "work_key": "", "n_lesions": 0,
                     "n_failed": 1}
    return outcome


def extract(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None,
            only: Iterable[ScanKey] | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    """Extract every new, changed or previously failed scan of ``cohort`` into ``out`` (see store.py for layout).

    ``only`` restricts the run to those scan keys (``radiomx scan ... | grep ... | radiomx extract --scans -``).
    Raises ConfigError (exit 2) before any work for configuration problems; per-scan problems are failures.
    """
    options = options or ExtractOptions()
    cohort, out = Path(cohort), Path(out)
    if options.uses_local_pool:
        start_local_workers()  # the workers' imports overlap discovery and planning (see warmup.py)
    scans = scan(cohort, options)
    if only is not None:
        wanted = set(only)
        scans = [s for s in scans if s.key in wanted]
    params = _resolve_all_params(scans, options)
    lesion_options = (options.lesions, options.labels)
    layout = _layout(cohort, options)
    summary = RunSummary(out=out, dry_run=options.dry_run)
    if options.dry_run:
        summary.plan = make_plan(scans, _stored_state(out), params, cohort, layout, lesion_options, options.force)
        summary.plan_counts = {s: summary.plan.count(s) for s in ("new", "changed", "retry", "unchanged", "invalid")}
        return summary
    _check_writable(out)
    with output_lock(out, options.wait):
        return _run_locked(cohort, out, scans, params, layout, lesion_options, options, summary, progress)


def _stored_state(out: Path) -> dict[ScanKey, dict]:
    """The per-scan state of earlier runs; a fresh OUT has none, and then no table library is imported yet."""
    if not state_path(out).exists():
        return {}
    return _store(out).load_state()


def _import_store_in_background() -> None:
    """Import the store (pandas, pyarrow: ~0.45 s) on a thread while this one hands scans to the workers and waits
    for them, so the first commit does not pay it on the run's critical path. A failed import here is ignored:
    the commit's own import raises it again, where it is reported."""
    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(f"{__package__}.store")

    threading.Thread(target=load, name="radiomx-import-store", daemon=True).start()


def _store(out: Path) -> Store:
    from radiomx.store.tables import Store

    return Store(out)


def _run_locked(cohort, out, scans, params, layout, lesion_options, options, summary, progress) -> RunSummary:
    prepare_out(out)
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    plan = make_plan(scans, _stored_state(out), params, cohort, layout, lesion_options, options.force)
    summary.plan = plan
    summary.plan_counts = {s: plan.count(s) for s in ("new", "changed", "retry", "unchanged", "invalid")}
    summary.skipped = plan.count("unchanged")
    refreshed = [i.refreshed_state for i in plan.items if i.refreshed_state]
    pruned = plan.vanished if options.prune else []
    batch: list[ScanOutcome] = [_invalid_outcome(i.scan) for i in plan.items if i.status == "invalid"]
    total = len(plan.to_compute) + len(batch)
    done = 0
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal batch, refreshed, pruned, last_commit
        if batch or refreshed or pruned:
            with _output_errors(out):
                _store(out).commit(batch, run_id, datetime.now(UTC), refreshed, pruned)
        batch, refreshed, pruned, last_commit = [], [], [], time.monotonic()

    for outcome in batch:
        _account(summary, outcome)
        done += 1
        if progress:
            progress(done, total, outcome)
    tasks = [i.task for i in plan.to_compute]
    if tasks:
        _import_store_in_background()
    for outcome in _run(tasks, options):
        batch.append(outcome)
        summary.computed += 1
        _account(summary, outcome)
        done += 1
        if progress:
            progress(done, total, outcome)
        if len(batch) >= options.batch_size or time.monotonic() - last_commit >= options.batch_seconds:
            commit()
    commit()
    with _output_errors(out):
        _append_run(_store(out), run_id, started, plan, summary)
    return summary


def _append_run(store: Store, run_id: str, started: datetime, plan: Plan, summary: RunSummary) -> None:
    store.append_run({
        "run_id": run_id, "started_at": started, "ended_at": datetime.now(UTC),
        "command": shlex.join(sys.argv), "radiomx_version": __version__,
        "pyradiomics_version": pyradiomics_version(), "planned": len(plan.items), "computed": summary.computed,
        "skipped": summary.skipped, "failed": summary.failed_scans, "exit_code": summary.exit_code,
    })


@contextlib.contextmanager
def _output_errors(out: Path) -> Iterator[None]:
    """A failed write (ENOSPC, EROFS, EIO) stops the run with one line; atomic replacement kept every table as it
    was after the last completed commit, and the next run recomputes what this one could not store."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{out}: cannot write results ({exc.strerror or exc}); the tables are as after the last "
                          "completed commit: free space or fix the output folder, then rerun") from exc


def _run(tasks: list, options: ExtractOptions) -> Iterator[ScanOutcome]:
    """The engine, imported only when there is work: a no-change rerun never loads the readers or feature code."""
    if not tasks:
        return iter(())
    from radiomx.run.engine import run_tasks

    return run_tasks(tasks, options.jobs, options.engine, options.dask_scheduler)


def _account(summary: RunSummary, outcome: ScanOutcome) -> None:
    summary.rows_written += len(outcome.rows)
    summary.failures.extend(outcome.failures)
    if outcome.failures:
        summary.failed_scans += 1


def read_table(out: Path | str, tracer: str | None = None) -> pd.DataFrame:
    """The feature table of one tracer, or all tracers stacked (columns unioned) when ``tracer`` is None."""
    import pandas as pd

    store = _store(Path(out))
    tracers = [tracer] if tracer else store.tracers()
    if not tracers:
        raise ConfigError(f"{out}: no feature tables found (run radiomx extract first)")
    frames = []
    for t in tracers:
        try:
            frames.append(store.read_features(t))
        except FileNotFoundError:
            have = ", ".join(store.tracers())
            raise ConfigError(f"{out}: no feature table for tracer {t!r} (have: {have})") from None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_table(out: Path | str, which: str = "features", tracer: str | None = None) -> pd.DataFrame:
    """Any table of an output folder by name: features (one tracer or all), failures, scans, runs."""
    import pandas as pd

    out = Path(out)
    if which == "features":
        return read_table(out, tracer)
    store = _store(out)
    path = {"failures": store.failures_path, "scans": store.scans_path, "runs": store.runs_path}[which]
    if not path.exists():
        raise ConfigError(f"{path}: no {which} table (run radiomx extract first)")
    return pd.read_parquet(path)


def read_failures(out: Path | str) -> pd.DataFrame:
    return _store(Path(out)).read_failures()


#: How ``scan_states`` names the plan's statuses (``radiomx.run.plan``) for a user looking at a cohort against OUT:
#: ``retry`` (failed or partial last time) and ``invalid`` (a discovery problem: no mask, unknown tracer folder)
#: are both "failed"; ``unchanged`` is "done", or "negative" when the stored scan has zero lesions.
SCAN_STATES = {"new": "new", "changed": "changed", "retry": "failed", "invalid": "failed", "unchanged": "done"}


def scan_states(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> list[tuple[Scan, str]]:
    """Each discovered scan with its state against OUT: new, changed, done, failed or negative (nothing written)."""
    summary = extract(cohort, out, replace(options or ExtractOptions(), dry_run=True))
    stored = _stored_state(Path(out))
    states = []
    for item in summary.plan.items:  # type: ignore[union-attr]
        state = SCAN_STATES[item.status]
        if state == "done" and not stored[item.scan.key]["n_lesions"]:
            state = "negative"
        states.append((item.scan, state))
    return states


def status(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> pd.DataFrame:
    """Per tracer: scans done, pending (new), changed, failed, as the next run would see them."""
    options = ExtractOptions(**{**options.__dict__, "dry_run": True}) if options else ExtractOptions(dry_run=True)
    import pandas as pd

    summary = extract(cohort, out, options)
    rows: dict[str, dict[str, int]] = {}
    for item in summary.plan.items:  # type: ignore[union-attr]
        counts = rows.setdefault(item.scan.key.tracer, {"done": 0, "pending": 0, "changed": 0, "failed": 0})
        name = {"unchanged": "done", "new": "pending", "changed": "changed", "retry": "failed", "invalid": "failed"}
        counts[name[item.status]] += 1
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("tracer").reset_index()
    return frame
