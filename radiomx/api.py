"""The library API the CLI (and notebooks) call: ``extract``, ``scan``, ``status``, ``read_table``.

``extract`` is the only place that chains the stages: discover -> plan -> run (engine) -> store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shlex
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from radiomx import __version__
from radiomx.derive.settings import DeriveSettings, settings_for
from radiomx.discover.cohort import layout_for, selection_for
from radiomx.discover.layouts import Discovery, discover_cohort
from radiomx.errors import ConfigError, OutputError, ScanError
from radiomx.features import pyradiomics_version
from radiomx.options import ExtractOptions
from radiomx.params.paramset import ParamSet, default_params_root, resolve_params
from radiomx.records import CohortPaths, Failure, Layout, Scan, ScanKey, ScanOutcome, new_state_row
from radiomx.run.plan import Plan, make_plan
from radiomx.store.acknowledged import Acknowledgements, read_acknowledgements
from radiomx.store.lock import output_lock
from radiomx.store.outdir import prepare_out, state_path
from radiomx.tracers import find_tracer, get_tracer, resolve_tracer

if TYPE_CHECKING:  # pandas/pyarrow load with the store, after the workers have been started
    import pandas as pd

    from radiomx.derive.compare import CompareSummary
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
    #: Scans computed this run whose mask holds no lesion (status "negative"): data, not failures.
    negative_scans: int = 0
    rows_written: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: Warning rows (stage "reference"/"voi"): written to the failures table, but not failures (exit code stays 0).
    warnings: list[Failure] = field(default_factory=list)
    dry_run: bool = False
    plan: Plan | None = None
    #: True when this run committed rows (scans computed or pruned): the derived tables are rebuilt.
    rows_changed: bool = False
    #: With ``--qc``: scans this run did not compute (unchanged) that have no QC picture (``radiomx qc OUT`` draws
    #: them; the extraction only draws what it computes, while the image is in memory).
    qc_missing: int = 0
    #: Failures the team acknowledged in ``OUT/acknowledged.tsv``: shown, but they do not make the exit code 1.
    acknowledgements: Acknowledgements = field(default_factory=Acknowledgements)
    #: Parameter files this run uses that are drafts (not frozen by their tree's LOCK.json): ``<tracer> <vN>``.
    drafts: list[str] = field(default_factory=list)
    #: Scans stored in OUT that the cohort no longer has (their rows are kept, unless pruned).
    vanished: list[ScanKey] = field(default_factory=list)
    #: With ``--prune``: the vanished scans whose rows, state, failures and QC pictures this run removed (a dry
    #: run: would remove).
    pruned: list[ScanKey] = field(default_factory=list)
    #: A DICOM export: the PET series no mask references yet (not failures; extracted once their mask arrives),
    #: the auto-detection line ("" when ``--layout dicom`` said so) and the header index's summary line.
    waiting: list[Scan] = field(default_factory=list)
    layout_note: str = ""
    index_line: str = ""

    @property
    def exit_code(self) -> int:
        """1 when a failure is not acknowledged (``OUT/acknowledged.tsv``), else 0."""
        return 1 if any(self.acknowledgements.of(f) is None for f in self.failures) else 0

    def as_dict(self) -> dict:
        """The machine-readable summary (``radiomx extract --json``): counts, the tables in OUT, the failures."""
        tables = [*sorted(self.out.glob("features/*.parquet")),
                  *(p for p in (self.out / n for n in ("failures.parquet", "scans.parquet", "runs.parquet"))
                    if p.exists())]
        data = {"out": str(self.out), "dry_run": self.dry_run, "exit_code": self.exit_code,
                "plan": dict(self.plan_counts), "computed": self.computed, "skipped": self.skipped,
                "failed_scans": self.failed_scans, "negative_scans": self.negative_scans,
                "rows_written": self.rows_written, "tables": [] if self.dry_run else [str(p) for p in tables],
                "failures": [{**f.as_row(), "acknowledged": self.acknowledgements.of(f)} for f in self.failures],
                "warnings": [w.as_row() for w in self.warnings],
                "vanished": [_key_dict(k) for k in self.vanished], "pruned": [_key_dict(k) for k in self.pruned],
                "drafts": list(self.drafts)}
        if self.dry_run and self.plan is not None:
            data["scans"] = [{"patient_id": i.scan.key.patient_id, "session": i.scan.key.session,
                              "tracer": i.scan.key.tracer, "status": i.status, "reason": i.reason}
                             for i in self.plan.items]
            data["scans"] += [{**_key_dict(k), "status": "vanished", "reason": self.vanished_reason}
                              for k in self.vanished]
        return data

    @property
    def vanished_reason(self) -> str:
        """What happens to the rows of the scans that vanished from the cohort, in this run."""
        if self.pruned:
            return "no longer in the cohort; --prune drops its rows"
        return "no longer in the cohort; its rows are kept (--prune drops them)"


def _key_dict(key: ScanKey) -> dict[str, str]:
    return {"patient_id": key.patient_id, "session": key.session, "tracer": key.tracer}


def _layout(cohort: Path, options: ExtractOptions) -> Layout:
    return layout_for(cohort, options.image_patterns, options.mask_patterns, options.pet_units)


def scan(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None) -> list[Scan]:
    """Discover the scans of a cohort without extracting anything (``out``: where a DICOM export's header index is
    kept, see ``survey``)."""
    return survey(cohort, options, out).scans


def survey(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None) -> Discovery:
    """The scans of a cohort, and for a DICOM export the PET series waiting for a mask, the auto-detection line and
    the header index's summary. A DICOM export's header index is kept in ``out`` when that folder exists, else
    built in memory (``radiomx.discover.dicom_index``; ``extract`` saves it into the OUT it creates)."""
    options = options or ExtractOptions()
    cohort = Path(cohort)
    index = Path(out) if out is not None else None
    return discover_cohort(cohort, _layout(cohort, options), options.layout, options.patient_ids,
                           options.default_tracer, index if index is not None and index.is_dir() else None)


def _resolve_all_params(scans: list[Scan], options: ExtractOptions, validate: bool = True) -> dict[str, ParamSet]:
    """The parameter file of every tracer the run's scans use (a ``--scans`` selection: only its tracers); a
    missing or invalid one is a ConfigError (exit 2) before any work."""
    root = options.params_dir or default_params_root()
    if not Path(root).is_dir():
        raise ConfigError(f"{root}: --params-dir does not exist")
    tracers = sorted({s.key.tracer for s in scans if s.problem is None})
    return {t: resolve_params(Path(root), get_tracer(t), options.params_version, validate) for t in tracers}


def _drafts(params: dict[str, ParamSet]) -> list[str]:
    """``68Ga-pentixafor v3`` for each parameter file the run uses that its tree's LOCK.json does not freeze."""
    from radiomx.params.paramset import is_released

    return [f"{p.tracer} {p.version}" for _, p in sorted(params.items()) if not is_released(p)]


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
    outcome.state = new_state_row(scan.key, n_failed=1)
    return outcome


def extract(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None,
            only: Iterable[ScanKey] | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    """Extract every new, changed or previously failed scan of ``cohort`` into ``out`` (layout: docs/storage.md).

    ``only`` restricts the run to those scan keys (``radiomx scan ... | grep ... | radiomx extract --scans -``).
    Raises ConfigError (exit 2) before any work for configuration problems; per-scan problems are failures.
    """
    options = options or ExtractOptions()
    cohort, out = Path(cohort), Path(out)
    found = survey(cohort, options, out)
    scans = found.scans
    in_cohort = {s.key for s in scans}
    if only is not None:
        wanted = set(only)
        scans = [s for s in scans if s.key in wanted]
    params = _resolve_all_params(scans, options)
    derive_settings = settings_for(cohort)  # a bad [derive]/[compare] section is exit 2 before any work
    lesion_options = _lesion_options(cohort, options)
    layout = _layout(cohort, options)
    summary = RunSummary(out=out, dry_run=options.dry_run, drafts=_drafts(params),
                         acknowledgements=read_acknowledgements(out), waiting=found.waiting,
                         layout_note=found.note, index_line=found.summary)
    if only is not None:
        summary.waiting = [w for w in found.waiting if w.key in wanted]
    if options.dry_run:
        return _planned(summary, scans, params, cohort, layout, options, in_cohort)
    _check_writable(out)
    if found.index_image:  # a first run into a new OUT: keep the export's index for the next one
        from radiomx.discover.dicom_index import save_index

        with _output_errors(out):
            save_index(out, found.index_image)
    with output_lock(out, options.wait):
        summary = _run_locked(cohort, out, scans, params, layout, lesion_options, options, summary, progress,
                              derive_settings, in_cohort)
        _derive_if_changed(cohort, out, derive_settings, summary)
        return summary


def _planned(summary: RunSummary, scans: list[Scan], params: dict[str, ParamSet], cohort: Path, layout: Layout,
             options: ExtractOptions, in_cohort: set[ScanKey] | None = None) -> RunSummary:
    """A dry run: what the next run would do, from the stored state (nothing written)."""
    summary.plan = make_plan(scans, _stored_state(summary.out), params, cohort, layout,
                             _lesion_options(cohort, options), options.force, in_cohort)
    summary.plan_counts = summary.plan.counts()
    summary.vanished = list(summary.plan.vanished)
    summary.pruned = list(summary.plan.vanished) if options.prune else []
    return summary


def _lesion_options(cohort: Path, options: ExtractOptions) -> tuple:
    """(lesion mode, --label values, selection by name): how a mask becomes lesions, part of every work key."""
    return options.lesions, options.labels, selection_for(cohort, options.roi, options.exclude_roi)


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
            importlib.import_module("radiomx.store.tables")

    threading.Thread(target=load, name="radiomx-import-store", daemon=True).start()


def _store(out: Path) -> Store:
    from radiomx.store.tables import Store

    return Store(out)


def _run_locked(cohort, out, scans, params, layout, lesion_options, options, summary, progress,
                derive: DeriveSettings | None = None, in_cohort: set[ScanKey] | None = None) -> RunSummary:
    prepare_out(out)
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    plan = make_plan(scans, _stored_state(out), params, cohort, layout, lesion_options, options.force, in_cohort)
    summary.plan = plan
    summary.plan_counts = plan.counts()
    summary.skipped = plan.count("unchanged")
    summary.vanished = list(plan.vanished)
    refreshed = [i.refreshed_state for i in plan.items if i.refreshed_state]
    pruned = list(plan.vanished) if options.prune else []
    summary.pruned = list(pruned)
    # The one place every outcome passes before a table, the summary or the log: paths become cohort-relative here.
    paths = CohortPaths(cohort)
    batch: list[ScanOutcome] = [paths.outcome(_invalid_outcome(i.scan)) for i in plan.items if i.status == "invalid"]
    total = len(plan.to_compute) + len(batch)
    done = 0
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal batch, refreshed, pruned, last_commit
        summary.rows_changed = summary.rows_changed or bool(batch or pruned)
        if batch or refreshed or pruned:
            with _output_errors(out):
                _store(out).commit(batch, run_id, datetime.now(UTC), refreshed, pruned)
                _write_pictures(out, batch)
                _remove_pictures(out, pruned)
        batch, refreshed, pruned, last_commit = [], [], [], time.monotonic()

    for outcome in batch:
        _account(summary, outcome)
        done += 1
        if progress:
            progress(done, total, outcome)
    tasks = [dataclasses.replace(i.task, qc=options.qc) for i in plan.to_compute]
    if tasks:
        _import_store_in_background()
    for outcome in _run(tasks, options):
        outcome = paths.outcome(outcome)
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
        _store(out).publish_stale()  # only tracers this run (or a killed earlier one) committed to
        _append_run(_store(out), run_id, started, plan, summary, cohort, options, derive or DeriveSettings())
    if options.qc:
        from radiomx.qc.files import picture_path

        summary.qc_missing = sum(1 for i in plan.items if i.status == "unchanged"
                                 and not picture_path(out, i.scan.key).is_file())
    return summary


def publish(out: Path | str, wait: float = 0.0) -> list[str]:
    """Rewrite the published ``features/<tracer>.parquet`` of every tracer whose live parts are newer (a run was
    killed before its end); returns those tracers. ``extract`` does this itself at the end of every run."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"{out}: no output folder (run radiomx extract first)")
    with output_lock(out, wait), _output_errors(out):
        return _store(out).publish_stale()


def stale_tracers(out: Path | str) -> list[str]:
    """Tracers whose published file is older than the last commit (``read_table`` then reads the live parts)."""
    return _store(Path(out)).stale_tracers()


def _derive_if_changed(cohort: Path, out: Path, settings: DeriveSettings, summary: RunSummary) -> None:
    """Rebuild burden, compare and patient tables after the last commit, only when rows changed (or the tables are
    missing or were built with another BSA formula): a no-change rerun reads and rewrites nothing."""
    from radiomx.derive.refresh import is_stale, refresh

    if summary.rows_changed or is_stale(out, settings):
        with _output_errors(out):
            refresh(out, cohort, settings)


def compare(out: Path | str, tracers: tuple[str, str], cohort: Path | str | None = None, wait: float = 0.0
            ) -> CompareSummary:
    """Write ``OUT/compare/<a>_vs_<b>.parquet`` (and refresh the patient table) from the stored rows.

    ``tracers`` may use folder aliases (``pentixafor``, ``fdg``). ``cohort`` gives the BSA setting, the
    ``[compare] same_frame`` declaration, the acquisition dates and the masks for lesion pairing; by default the
    cohort the last run recorded (``radiomx.store.runlog``), from whatever folder this is called. When no cohort can
    be found, the settings the last run recorded are used, dates and pairs already computed for unchanged scans
    are kept, and the others are null with a reason. The compare table is kept fresh by every later extract.
    """
    from radiomx.derive.refresh import refresh, refresh_inputs

    out = Path(out)
    try:
        a, b = (resolve_tracer(t.strip()).name for t in tracers)
    except ScanError as exc:
        raise ConfigError(f"--tracers: {exc.detail}") from None
    cohort = Path(cohort) if cohort is not None else None
    if cohort is not None and not cohort.is_dir():
        raise ConfigError(f"{cohort}: cohort folder does not exist or is not a folder")
    if not state_path(out).exists():
        raise ConfigError(f"{out}: no radiomx tables (run radiomx extract first)")
    cohort, settings = refresh_inputs(out, cohort)
    with output_lock(out, wait), _output_errors(out):
        summaries = refresh(out, cohort, settings, add_pair=(a, b))
    return next(s for s in summaries if (s.tracer_a, s.tracer_b) == (a, b))


def _remove_pictures(out: Path, pruned: list[ScanKey]) -> None:
    """A pruned scan's QC picture and thumbnail go with its rows (after the commit that dropped them)."""
    if pruned:
        from radiomx.qc.files import remove_pictures

        remove_pictures(out, pruned)


def _write_pictures(out: Path, batch: list[ScanOutcome]) -> None:
    """The writer writes the workers' QC pictures, after the batch's tables (one writer for everything in OUT)."""
    pictures = [o for o in batch if o.picture is not None]
    if pictures:
        from radiomx.qc.files import write_picture

        for outcome in pictures:
            write_picture(out, outcome.key, outcome.picture)  # type: ignore[arg-type]


def _append_run(store: Store, run_id: str, started: datetime, plan: Plan, summary: RunSummary, cohort: Path,
                options: ExtractOptions, derive: DeriveSettings) -> None:
    from radiomx.store.runlog import options_json, relative_to_out

    store.append_run({
        "run_id": run_id, "started_at": started, "ended_at": datetime.now(UTC),
        "command": _command_line(cohort), "radiomx_version": __version__,
        "pyradiomics_version": pyradiomics_version(), "planned": len(plan.items), "computed": summary.computed,
        "skipped": summary.skipped, "failed": summary.failed_scans, "exit_code": summary.exit_code,
        "cohort": relative_to_out(cohort, store.out),
        "options": options_json(options, store.out, derive.as_record(), _lesion_options(cohort, options)[2]),
    })


def _command_line(cohort: Path) -> str:
    """The command as typed, for the run log: the program by its name (not the absolute path of its venv) and every
    spelling of the cohort's path relative to itself, so that the folders above it (``/data/Smith_John/``) and
    the cohort's own absolute path are not stored."""
    argv = [Path(sys.argv[0]).name if sys.argv else "", *sys.argv[1:]]
    return CohortPaths(cohort).text(shlex.join(argv))


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

    return run_tasks(tasks, options.jobs, options.engine, options.dask_scheduler, options.dask_timeout)


def _account(summary: RunSummary, outcome: ScanOutcome) -> None:
    summary.rows_written += len(outcome.rows)
    summary.failures.extend(outcome.failures)
    summary.warnings.extend(outcome.warnings)
    if outcome.failures:
        summary.failed_scans += 1
    elif outcome.is_negative:
        summary.negative_scans += 1


def read_table(out: Path | str, tracer: str | None = None, which: str = "features") -> pd.DataFrame:
    """A table of OUT, with the dtypes ``radiomx table`` prints: by default the feature table of one tracer (its
    canonical name or an alias: ``fdg``), or all tracers stacked (columns unioned) when ``tracer`` is None.

    ``which``: ``features``, ``burden``, ``patients``, ``compare``, ``failures``, ``scans`` or ``runs``, so that a
    notebook needs no file paths. The derived and bookkeeping tables keep integer columns as nullable ``Int64`` (a
    negative scan's ``largest_lesion_id`` is null, the others stay integers). ``tracer`` selects that tracer's rows
    (its column block in ``patients``); for ``compare`` it names the pair, ``A,B``."""
    if which != "features":
        return load_table(out, which, tracer, nullable_integers=True)
    return _read_features(out, tracer)


def _read_features(out: Path | str, tracer: str | None = None, nullable_integers: bool = False) -> pd.DataFrame:
    import pandas as pd

    store = _store(Path(out))
    tracers = [canonical_tracer(tracer)] if tracer else store.tracers()
    if not tracers:
        raise ConfigError(f"{out}: no feature tables found (run radiomx extract first)")
    frames = []
    for t in tracers:
        try:
            frames.append(store.read_features(t, nullable_integers))
        except FileNotFoundError:
            have = ", ".join(store.tracers())
            raise ConfigError(f"{out}: no feature table for tracer {t!r} (have: {have})") from None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def canonical_tracer(name: str) -> str:
    """A tracer's canonical name from any of its names (``fdg`` -> ``18F-FDG``), as the tables are keyed; a name
    radiomx does not know is returned as given (the caller then reports it missing, with what OUT has)."""
    tracer = find_tracer(name)
    return tracer.name if tracer else name


def load_table(out: Path | str, which: str = "features", tracer: str | None = None,
               nullable_integers: bool = False) -> pd.DataFrame:
    """Any table of an output folder by name: features (one tracer or all), failures, scans, runs, burden,
    patients, compare (``tracer`` = ``A,B``; default: the only compare table). ``tracer`` selects one tracer's rows
    (burden, failures, scans) or column block (patients: ``<tracer>__*``, for the patients with a scan of it).

    ``nullable_integers``: the derived and bookkeeping tables' integer columns come as pandas' nullable ``Int64``,
    so that ``largest_lesion_id`` of a negative scan stays null and the others print as ``2``, not ``2.0`` (what
    ``radiomx table`` prints and pipes). The default is ``pd.read_parquet``'s own mapping (float64 wherever a
    column holds a null)."""
    out = Path(out)
    if which == "features":
        return _read_features(out, tracer, nullable_integers)
    store = _store(out)
    if which == "compare":
        path = _compare_path(out, tracer)
    else:
        paths = {"failures": store.failures_path, "scans": store.scans_path, "runs": store.runs_path,
                 "burden": out / "burden.parquet", "patients": out / "patients.parquet"}
        if which not in paths:
            raise ConfigError(f"{which!r} is not a table (features, {', '.join(paths)} or compare)")
        path = paths[which]
    if which == "failures" and not path.exists() and store.scans_path.exists():
        frame = _failures_frame(store, nullable_integers)  # a run with no failure writes no file: none, not an error
    elif not path.exists():
        raise ConfigError(f"{path}: no {which} table (run radiomx extract first)")
    else:
        frame = _read_parquet(path, nullable_integers)
    if which == "failures":
        frame = _acknowledged_column(out, frame)
    if tracer and which != "compare":
        from radiomx.store.views import of_tracer

        frame = of_tracer(frame, which, canonical_tracer(tracer))
    return frame


def _acknowledged_column(out: Path, failures: pd.DataFrame) -> pd.DataFrame:
    """The failures table with ``acknowledged``: the reason from ``OUT/acknowledged.tsv`` for a failure the team
    accepted, null otherwise (and for warnings, which never fail a run)."""
    import pandas as pd

    reasons = read_acknowledgements(out).column(failures)
    return failures.assign(acknowledged=pd.Series(reasons, index=failures.index, dtype=object))


def _failures_frame(store: Store, nullable_integers: bool) -> pd.DataFrame:
    """The (empty) failures table of an OUT whose runs had no failure, with the table's columns and types."""
    from radiomx.store.schema import with_nullable_integers
    from radiomx.store.tables import FAILURES_SCHEMA

    empty = FAILURES_SCHEMA.empty_table()
    return with_nullable_integers(empty) if nullable_integers else empty.to_pandas()


def _read_parquet(path: Path, nullable_integers: bool) -> pd.DataFrame:
    """One table file as pandas: ``pd.read_parquet``'s mapping, or with nullable integer columns."""
    import pyarrow.parquet as pq

    from radiomx.store.schema import with_nullable_integers

    table = pq.read_table(path)
    return with_nullable_integers(table) if nullable_integers else table.to_pandas()


def _compare_path(out: Path, tracers: str | None) -> Path:
    from radiomx.derive.compare import compare_path, existing_pairs

    pairs = existing_pairs(out)
    if tracers:
        a, _, b = tracers.partition(",")
        try:
            wanted = (resolve_tracer(a.strip()).name, resolve_tracer(b.strip()).name)
        except ScanError as exc:
            raise ConfigError(f"--tracer: {exc.detail}") from None
        pairs = [p for p in pairs if p == wanted]
    if len(pairs) != 1:
        have = ", ".join(f"{a},{b}" for a, b in existing_pairs(out)) or "none; run radiomx compare"
        raise ConfigError(f"{out}: name one compare table with --tracer A,B (have: {have})")
    return compare_path(out, *pairs[0])


def read_failures(out: Path | str) -> pd.DataFrame:
    """The failures table with its ``acknowledged`` column (see ``load_table``)."""
    return _acknowledged_column(Path(out), _store(Path(out)).read_failures())


#: How ``scan_states`` names the plan's statuses (``radiomx.run.plan``) for a user looking at a cohort against OUT:
#: ``retry`` (failed or partial last time) and ``invalid`` (a discovery problem: no mask, unknown tracer folder)
#: are both "failed"; ``unchanged`` is "done", or "negative" when the stored scan has zero lesions.
SCAN_STATES = {"new": "new", "changed": "changed", "retry": "failed", "invalid": "failed", "unchanged": "done"}


def _reported_params(scans: list[Scan], options: ExtractOptions) -> tuple[list[Scan], dict[str, ParamSet]]:
    """The parameter files of a report on the whole cohort (``status``, ``scan -o``): a tracer whose file
    ``--params-dir`` lacks (or cannot read) does not stop the report, as it would stop a run that uses it; its
    scans are reported failed with the reason (a ``--scans`` selection without them runs). No PyRadiomics schema
    check: a report needs each file's version and hash, and stays light."""
    root = Path(options.params_dir or default_params_root())
    if not root.is_dir():
        raise ConfigError(f"{root}: --params-dir does not exist")
    params: dict[str, ParamSet] = {}
    problems: dict[str, str] = {}
    for tracer in sorted({s.key.tracer for s in scans if s.problem is None}):
        try:
            params[tracer] = resolve_params(root, get_tracer(tracer), options.params_version, validate=False)
        except ConfigError as exc:
            problems[tracer] = f"{exc}; a run needs it for these scans (or a --scans selection without them)"
    return [replace(s, problem=("params", "", problems[s.key.tracer])) if s.key.tracer in problems
            and s.problem is None else s for s in scans], params


def _reported_plan(cohort: Path, out: Path, options: ExtractOptions) -> tuple[RunSummary, Discovery]:
    """What the next run would do with the whole cohort, for a report (nothing written but a DICOM export's index,
    nothing heavy imported), and what discovery found."""
    options = replace(options, dry_run=True)
    found = survey(cohort, options, out)
    scans, params = _reported_params(found.scans, options)
    summary = RunSummary(out=out, dry_run=True, waiting=found.waiting, layout_note=found.note,
                         index_line=found.summary)
    return _planned(summary, scans, params, cohort, _layout(cohort, options), options), found


@dataclass
class ScanListing:
    """What ``radiomx scan`` lists: each scan with its state against OUT ("" without OUT), the PET series of a DICOM
    export that wait for a mask, the auto-detection line and the export's index summary."""

    scans: list[tuple[Scan, str]]
    waiting: list[Scan] = field(default_factory=list)
    layout_note: str = ""
    index_line: str = ""


def scan_listing(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None
                 ) -> ScanListing:
    """The discovered scans, with their state against ``out`` when given (nothing written but an export's index)."""
    if out is None:
        found = survey(cohort, options)
        return ScanListing([(s, "") for s in found.scans], found.waiting, found.note, found.summary)
    summary, _ = _reported_plan(Path(cohort), Path(out), options or ExtractOptions())
    stored = _stored_state(Path(out))
    states = []
    for item in summary.plan.items:  # type: ignore[union-attr]
        state = SCAN_STATES[item.status]
        if state == "done" and not stored[item.scan.key]["n_lesions"]:
            state = "negative"
        states.append((item.scan, state))
    return ScanListing(states, summary.waiting, summary.layout_note, summary.index_line)


def scan_states(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> list[tuple[Scan, str]]:
    """Each discovered scan with its state against OUT: new, changed, done, failed or negative (nothing written)."""
    return scan_listing(cohort, options, out).scans


def status(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> pd.DataFrame:
    """Per tracer: scans done, negative (done, no lesion in the mask), pending (new), changed, failed, as the next
    run would see them, and vanished (stored in OUT, no longer in the cohort: rows kept until ``extract
    --prune``; their keys are in ``frame.attrs["vanished"]``). ``done`` and ``negative`` are disjoint."""
    import pandas as pd

    cohort, out = Path(cohort), Path(out)
    summary, found = _reported_plan(cohort, out, options or ExtractOptions())
    stored = _stored_state(out)
    rows: dict[str, dict[str, int]] = {}
    columns = ("done", "negative", "pending", "changed", "failed", "vanished")
    for item in summary.plan.items:  # type: ignore[union-attr]
        counts = rows.setdefault(item.scan.key.tracer, dict.fromkeys(columns, 0))
        name = {"unchanged": "done", "new": "pending", "changed": "changed", "retry": "failed", "invalid": "failed"}
        negative = item.status == "unchanged" and stored.get(item.scan.key, {}).get("status") == "negative"
        counts["negative" if negative else name[item.status]] += 1
    for key in summary.vanished:  # stored, no longer in the cohort: rows kept until extract --prune
        rows.setdefault(key.tracer, dict.fromkeys(columns, 0))["vanished"] += 1
    if found.layout == "dicom":  # a DICOM export's PET series without a mask yet: not failures
        waiting = Counter(w.key.tracer for w in found.waiting)
        for tracer in sorted(set(waiting) - set(rows)):
            rows[tracer] = dict.fromkeys(columns, 0)
        for tracer, counts in rows.items():
            counts["waiting"] = waiting[tracer]
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("tracer").reset_index()
    frame.attrs.update(layout_note=found.note, index_line=found.summary)  # for ``radiomx status`` to say
    frame.attrs["vanished"] = list(summary.vanished)
    frame.attrs["params_problems"] = sorted({i.scan.problem[2] for i in summary.plan.items  # type: ignore[union-attr]
                                             if i.scan.problem and i.scan.problem[0] == "params"})
    return frame
