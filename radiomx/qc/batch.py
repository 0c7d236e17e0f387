"""``radiomx qc OUT``: draw the pictures of a past output folder without recomputing any feature.

How the scans are found again: the run log (``OUT/runs.parquet``) records the cohort path relative to OUT and the
options that decide how scans were found and split; ``radiomx.store.runlog`` gives the latest run that recorded
them. Each scan's recorded state (``scans.parquet``) gives its work key and the stat signatures of its inputs:
a scan whose image or mask changed since it was extracted is not drawn (the picture would show something else
than the table), it gets a ``qc`` failures row telling to run ``radiomx extract`` first.

Incremental: a scan is drawn only when its picture is missing or its stored render key differs from the one its
inputs give now (``radiomx.qc.files``); a no-change rerun reads the PNG headers and writes nothing.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from radiomx.discover.layouts import layout_of, survey
from radiomx.errors import ConfigError, ScanError, one_line
from radiomx.features.references import RegionStats, stats_from_state
from radiomx.fingerprint import stat_signature
from radiomx.options import LesionOptions
from radiomx.params.paramset import ParamSet, default_params_root, resolve_params
from radiomx.qc.files import render_key, stored_key, write_picture
from radiomx.records import CohortPaths, Failure, Layout, Scan, ScanKey
from radiomx.store.acknowledged import Acknowledgements, read_acknowledgements
from radiomx.store.lock import output_lock
from radiomx.store.runlog import RecordedRun, recorded_run
from radiomx.store.tables import Store
from radiomx.tracers import get_tracer
from radiomx.vocabulary import Stage

if TYPE_CHECKING:
    from radiomx.qc.draw import Drawn


@dataclass
class QcSummary:
    out: Path
    drawn: int = 0
    unchanged: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: ``OUT/acknowledged.tsv`` (an entry for stage ``qc`` or ``*`` acknowledges a picture's failure directly).
    acknowledgements: Acknowledgements = field(default_factory=Acknowledgements)
    #: Scans whose extraction failure is acknowledged, with the reason: their picture's failure repeats it.
    known: dict[ScanKey, str] = field(default_factory=dict)

    def reason(self, failure: Failure) -> str | None:
        """Why ``failure`` is acknowledged, or None when it counts."""
        return self.acknowledgements.of(failure) or self.known.get(failure.key)

    @property
    def failed(self) -> bool:
        """A picture could not be drawn, and nobody acknowledged why (exit code 1, the rule of ``extract``:
        ``radiomx.errors.exit_code``)."""
        return any(self.reason(f) is None for f in self.failures)


def _acknowledged_scans(store: Store, acknowledgements: Acknowledgements) -> dict[ScanKey, str]:
    """The scans with an extraction failure (not a picture's) that ``OUT/acknowledged.tsv`` accepts, and why."""
    if not acknowledgements.entries:
        return {}
    failures = store.read_failures()
    reasons = acknowledgements.column(failures)
    return {ScanKey(p, s, t): reason for p, s, t, stage, reason in zip(
        failures["patient_id"], failures["session"], failures["tracer"], failures["stage"], reasons, strict=True)
        if reason is not None and stage != Stage.QC}


def _params_for(run: RecordedRun, out: Path, tracer: str, version: str, cache: dict) -> ParamSet:
    if (tracer, version) not in cache:
        folder = run.options.get("params_dir")
        root = Path(folder) if folder else default_params_root()
        cache[(tracer, version)] = resolve_params(root, get_tracer(tracer), version or None)
    return cache[(tracer, version)]


def _scans(run: RecordedRun, out: Path) -> tuple[dict[ScanKey, Scan], Layout]:
    """The run's scans found again as it found them (its cohort and options, from the run log)."""
    options = run.extract_options(out)
    found = survey(run.cohort, options, out)  # type: ignore[arg-type]
    return {s.key: s for s in found.scans}, layout_of(run.cohort, options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DrawJob:
    """One scan to draw again (picklable: it goes to a pool worker with ``--jobs``)."""

    scan: Scan
    layout: Layout
    params: ParamSet
    work_key: str
    cohort: Path
    lesion_options: LesionOptions
    #: The reference regions as the extraction measured them (the state row's ``ref_*`` columns): a percist
    #: threshold VOI is cut at the same SUV.
    references: dict[str, RegionStats] = field(default_factory=dict)


def draw_job(job: DrawJob) -> tuple[ScanKey, Drawn | None, str]:
    """Load one scan again and draw it (same loader, threshold VOIs and lesion split as the extraction:
    ``features.voi.scan_lesions``); never raises for bad input: a problem comes back as the failures-row message."""
    from radiomx.features.voi import scan_lesions  # SimpleITK, matplotlib: only when there is a scan to draw
    from radiomx.inputs.loader import load_scan
    from radiomx.qc.draw import draw_loaded, organ_overlay

    scan = job.scan
    try:
        lesions = job.lesion_options
        loaded = load_scan(scan, job.layout, selection=lesions.selection, labels=lesions.labels)
        lesion_map = scan_lesions(loaded.image, loaded.mask, job.params.indices.voi, lesions.mode, lesions.labels,
                                  loaded.unit, job.references).lesion_map
        names = {lesion.lesion_id: lesion_map.source_columns(lesion)["lesion_name"] for lesion in lesion_map.lesions}
        overlay = organ_overlay(scan, loaded, job.references, lesions, lesion_map)
        drawn = draw_loaded(scan, loaded, lesion_map.layers, job.params, job.cohort, job.work_key, names, overlay)
    except Exception as exc:  # noqa: BLE001 - one scan's problem must not stop the others' pictures
        detail = exc.detail if isinstance(exc, ScanError) else f"{type(exc).__name__}: {exc}"
        detail = one_line(CohortPaths(job.cohort).text(detail))
        return scan.key, None, f"QC picture not drawn: {detail}"
    return scan.key, drawn, ""


def _drawn(jobs: list[DrawJob], workers: int) -> Iterator[tuple[ScanKey, Drawn | None, str]]:
    """Results as they complete: in this process, or in a pool of spawned workers (no inherited locks or threads, and
    nothing process-wide left behind, as the extraction's pool: ``radiomx.run.warmup``)."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(draw_job, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(draw_job, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def render_out(out: Path | str, patient: str | None = None, tracer: str | None = None, force: bool = False,
               wait: float = 0.0, jobs: int = 1, cohort: Path | None = None, params_dir: Path | None = None,
               progress: Callable[[int, int, ScanKey], None] | None = None) -> QcSummary:
    """Draw every missing or stale picture of OUT (optionally one patient / one tracer) with ``jobs`` processes;
    this process alone writes into OUT. See the module docstring."""
    out = Path(out)
    store = Store(out)
    if not store.scans_path.exists():
        raise ConfigError(f"{out}: no scans.parquet (run `radiomx extract` first)")
    run = recorded_run(out, cohort, params_dir)
    summary = QcSummary(out, acknowledgements=read_acknowledgements(out))
    summary.known = _acknowledged_scans(store, summary.acknowledgements)
    with output_lock(out, wait):
        state = store.load_state()
        wanted = sorted(k for k, row in state.items() if row.get("work_key")
                        and (patient is None or k.patient_id == patient) and (tracer is None or k.tracer == tracer))
        if not wanted:
            return summary

        scans, layout = _scans(run, out)
        lesion_options = LesionOptions.from_record(run.options)
        cache: dict = {}
        touched: list[ScanKey] = []
        todo: list[DrawJob] = []
        for key in wanted:
            row, scan = state[key], scans.get(key)
            if scan is None or scan.problem is not None:
                touched.append(key)
                summary.failures.append(Failure(key, Stage.QC, row.get("image_file", ""),
                                                "scan not found in the cohort any more; QC picture not drawn"))
                continue
            params = _params_for(run, out, key.tracer, row["params_version"], cache)
            if not force and stored_key(out, key) == render_key(row["work_key"], params, scan):
                summary.unchanged += 1
                continue
            touched.append(key)
            organs = scan.organs.path if scan.organs is not None else None
            if ((stat_signature(scan.image_source), stat_signature(scan.mask), stat_signature(organs))
                    != (row["image_stat"], row["mask_stat"], row.get("organs_stat") or "")):
                summary.failures.append(Failure(
                    key, Stage.QC, row.get("image_file", ""),
                    "image, mask or organs changed since extraction; run `radiomx extract` first (it draws with "
                    "--qc)"))
                continue
            todo.append(DrawJob(scan, layout, params, row["work_key"], run.cohort, lesion_options,
                                stats_from_state(row)))
        for index, (key, drawn, problem) in enumerate(_drawn(todo, jobs), start=1):
            if progress:
                progress(index, len(todo), key)
            if drawn is None:
                image = CohortPaths(run.cohort).relative(scans[key].image)
                summary.failures.append(Failure(key, Stage.QC, image, problem))
                continue
            write_picture(out, key, drawn.picture)
            summary.drawn += 1
            summary.failures.extend(Failure(key, Stage.QC, file, message) for file, message in drawn.warnings)
        now = datetime.now(UTC)
        if touched:
            store.replace_stage_failures(touched, Stage.QC, summary.failures, now.strftime("qc-%Y%m%dT%H%M%S"), now)
    return summary
