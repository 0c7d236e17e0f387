"""What workers do: per scan, load once, split into lesions and cut each lesion's small input
(``prepare_scan``); per lesion, one PyRadiomics call (``run_lesion``); then one ``ScanOutcome`` (``finish_scan``).

Why split a scan: one patient with 40 lesions must not serialize a run, so the engine spreads a scan's lesions over
all workers and reassembles them. ``run_scan`` chains the three steps in one process (serial engine, reference).
Everything crossing a process or Dask boundary is a plain picklable record (lesion inputs are small SimpleITK
images), and nothing raises for bad data: every problem becomes a ``Failure`` naming the file, and the other
lesions still produce rows.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from radiomx import __version__
from radiomx.errors import ScanError, one_line
from radiomx.features import pyradiomics_version
from radiomx.features.crop import LesionInput
from radiomx.features.extractor import (
    crop_plan,
    extract_input,
    lesion_inputs,
    prepare_image,
    prepare_layers,
    pyradiomics_silenced,
    quiet_pyradiomics,
)
from radiomx.features.guards import lesion_problems
from radiomx.features.indices import lesion_indices, scan_indices
from radiomx.features.lesions import Lesion, LesionMap
from radiomx.features.orientation import orientation_code
from radiomx.features.references import RegionStats, implausible, lesion_ratios, state_columns
from radiomx.features.refusal import RoiSize, refusal_hint, roi_size
from radiomx.features.voi import scan_lesions, voi_columns
from radiomx.fingerprint import content_sha256, stat_signature
from radiomx.inputs.loader import LoadedScan, load_scan
from radiomx.params.paramset import ParamSet, VoiSetting
from radiomx.quiet import pydicom_quiet
from radiomx.records import CohortPaths, Failure, ScanKey, ScanOutcome, new_state_row
from radiomx.run.faults import scan_fault
from radiomx.run.organs import NO_SITE, OrganReading, read_scan_organs, site_columns
from radiomx.run.references import Normalisations, body_columns, normalisations, reference_stats
from radiomx.run.tasks import ScanTask, work_key
from radiomx.run.threads import threadpool_limits
from radiomx.vocabulary import Stage

_INITIALISED = False


def init_worker_process() -> None:
    """Set up a worker process for good (never the caller's): one thread for SimpleITK, BLAS and OpenMP, and
    PyRadiomics' own stderr handler quiet. Idempotent.

    Why one thread: workers already use every core; GLCM's MCC calls numpy.linalg.eigvals per angle, and a
    multi-threaded BLAS inside N workers oversubscribes the machine (the same lesion swung between 0.2 s and 10 s).
    Why quiet: PyRadiomics' refusals reach radiomx as exceptions and become failures rows; its warnings on the
    workers' stderr would only interleave with the progress bar.
    """
    global _INITIALISED
    if _INITIALISED:
        return
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threadpool_limits(1)
    quiet_pyradiomics()
    _INITIALISED = True


@contextlib.contextmanager
def caller_scope() -> Iterator[None]:
    """Compute in the caller's own process (``-j 1``, an in-process executor) and leave it as it was: one thread
    for BLAS/OpenMP (``threadpoolctl``'s context) and SimpleITK while the block runs, the previous counts after;
    PyRadiomics' messages from this thread held back from PyRadiomics' own stderr handler only while it runs
    (``pyradiomics_silenced``). Nothing is written to ``os.environ`` and no logger's level changes."""
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        with threadpool_limits(1), pyradiomics_silenced():
            yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def call_in_worker(fn: Callable[[Any], Any], arg: Any, caller_pid: int) -> Any:
    """What every pool or Dask task runs: ``fn(arg)`` in a worker set up by ``init_worker_process``, or scoped by
    ``caller_scope`` when the executor turns out to run in the caller's own process (Dask ``inproc://``)."""
    if os.getpid() == caller_pid:
        with caller_scope():
            return fn(arg)
    init_worker_process()
    return fn(arg)


def _key_columns(task: ScanTask) -> dict[str, Any]:
    k = task.scan.key
    return {"patient_id": k.patient_id, "session": k.session, "tracer": k.tracer}


def _unexpected(lesion: Lesion, exc: Exception, stage: Stage = Stage.FEATURES) -> LesionResult:
    return LesionResult(lesion.lesion_id, error=(
        f"lesion {lesion.lesion_id}: unexpected {type(exc).__name__}: {one_line(exc)}; "
        "rerun with --verbose or --log-file for the traceback and report it"), stage=stage,
        traceback=traceback.format_exc())


def _refusal(exc: Exception, params: ParamSet, lesion: Lesion, spacing: tuple[float, ...],
             item: LesionInput | None) -> LesionResult:
    """PyRadiomics refused the lesion: a warning (its row keeps the PET indices) whose hint names the lesion's size
    where PyRadiomics checked it (``item``, its input; None when it could not be cut) and the setting that would
    really change the outcome (``features.refusal``)."""
    reason = one_line(exc)
    as_read = RoiSize(lesion.voxel_count, tuple(lesion.bbox_size), spacing)
    seen = roi_size(item.mask, lesion.lesion_id) if item is not None else None
    resampled = item is not None and item.mode == "resample" and tuple(item.mask.GetSpacing()) != spacing
    hint = refusal_hint(lesion.lesion_id, reason, seen, as_read, params.settings, resampled)
    return LesionResult(lesion.lesion_id, error=hint, extracted_at=datetime.now(UTC), refused=True)


@dataclass
class LesionJob:
    """One lesion's PyRadiomics call, runnable in any worker."""

    params: ParamSet
    lesion: Lesion
    item: LesionInput
    #: The image's own spacing (x, y, z mm): the lesion's size as read, for a refusal's hint.
    spacing: tuple[float, ...] = ()

    @property
    def cost(self) -> int:
        """Voxels PyRadiomics will filter and read: the scheduler starts the biggest first."""
        return int(self.item.image.GetNumberOfPixels())


@dataclass
class LesionResult:
    lesion_id: int
    values: dict[str, float] | None = None
    #: PyRadiomics' refusal or our unexpected error, as the failures-table message.
    error: str = ""
    extracted_at: datetime | None = None
    stage: str = Stage.FEATURES
    traceback: str = ""
    #: PyRadiomics refused the ROI (too small, label lost after resampling, ...): the lesion keeps its row with
    #: its PET indices and null PyRadiomics columns, and ``error`` becomes a warning row, not a failure.
    refused: bool = False


@dataclass
class PreparedScan:
    """A scan after loading: its outcome so far (state, scan-level failures) and what remains to run per lesion."""

    task: ScanTask
    outcome: ScanOutcome
    lesions: tuple[Lesion, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    jobs: list[LesionJob] = field(default_factory=list)
    #: Results already computed in the preparing process (lesions whose input could not be cut, ``full`` mode).
    results: dict[int, LesionResult] = field(default_factory=dict)
    #: radiomx's index columns per lesion (SUV/HU statistics, MTV, TLG, peaks, centroids, ratios, VOI), computed
    #: on the image grid as read while the full image is in memory.
    indices: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Each lesion's name and where it came from (``lesion_name``, segment / ROI number, label value, component).
    sources: dict[int, dict[str, Any]] = field(default_factory=dict)


def run_lesion(job: LesionJob) -> LesionResult:
    """One PyRadiomics call on a prepared lesion input; never raises for PyRadiomics' refusals."""
    try:
        values = extract_input(job.params, job.item)
    except ValueError as exc:  # PyRadiomics' way of refusing an ROI (too small, too flat, label lost, ...)
        return _refusal(exc, job.params, job.lesion, job.spacing, job.item)
    except Exception as exc:  # noqa: BLE001 - a bug (ours or PyRadiomics'): record it, keep the cohort going
        return _unexpected(job.lesion, exc)
    return LesionResult(job.lesion.lesion_id, values, extracted_at=datetime.now(UTC))


def _unreadable(key: ScanKey, exc: OSError, folder: Path) -> Failure:
    return Failure(key, Stage.LOAD, str(exc.filename or folder),
                   f"cannot read input ({exc.strerror}); check permissions")


def _digest_of(path: Path | tuple[Path, ...] | None, digests: dict[Path, str]) -> str:
    """sha256 of an input: as its reader hashed it while reading, else read now."""
    if isinstance(path, Path) and path in digests:
        return digests[path]
    return content_sha256(path)


@dataclass
class _Inputs:
    """A scan's inputs once read: the image (its unit, SUV inputs, masks) as read, and on the grid PyRadiomics works
    on (the parameter file's ``reorient``), with the content hashes of image and mask."""

    loaded: LoadedScan
    image: sitk.Image
    image_sha: str
    mask_sha: str


@dataclass
class _Split:
    """A scan's lesions, with what each lesion row adds to its PET indices: the threshold VOI that made it and its
    ratios to the scan's reference regions (PET only), and its site in the organs (any scan with organs)."""

    lesion_map: LesionMap
    voi: VoiSetting
    thresholds: dict[int, Any]
    references: dict[str, RegionStats]
    pet: bool
    #: SUL (and SUVbsa when asked) factors of a PET scan.
    normalised: Normalisations | None = None
    sites: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The reference VOIs derived from organs, for the QC picture.
    organ_masks: dict[str, Any] = field(default_factory=dict)

    def overlay(self) -> dict[str, Any]:
        """What the QC picture adds from the organs: the derived VOIs and each lesion's site."""
        return {"regions": self.organ_masks,
                "sites": {i: c["lesion_site"] for i, c in self.sites.items() if c.get("lesion_site")}}

    def row_columns(self, lesion: Lesion, values: dict[str, Any]) -> dict[str, Any]:
        sites = self.sites.get(lesion.lesion_id, NO_SITE)
        if not self.pet:
            return sites
        return {**voi_columns(self.voi, self.thresholds.get(lesion.lesion_id)),
                **lesion_ratios(values["suv_max"], values["suv_peak"], self.references), **sites,
                **(self.normalised.lesion_columns(values) if self.normalised is not None else {})}


def prepare_scan(task: ScanTask) -> PreparedScan:
    """Hash, load, split and cut every lesion of one scan; never raises for bad input: each step that fails records
    its failure on the outcome and the scan stops there.

    In ``full`` mode (a filter with whole-image state, no resampling) the lesions run here on the full image, since
    shipping the whole volume per lesion would cost more than it saves.
    """
    scan_fault(task.scan.key.patient_id)
    prepared = PreparedScan(task, ScanOutcome(task.scan.key))
    paths = CohortPaths(task.cohort)
    prepared.outcome.state = new_state_row(
        task.scan.key, image_file=paths.relative(task.scan.image), mask_file=paths.relative(task.scan.mask),
        params_version=task.params.version, params_sha256=task.params.sha256)
    inputs = _read_inputs(task, prepared.outcome)
    if inputs is None:
        return prepared
    split = _split(task, inputs.loaded, prepared.outcome)
    if split is None:
        return prepared
    _check_labels(task, split.lesion_map, prepared.outcome)
    prepared.lesions = split.lesion_map.lesions
    prepared.sources = {lesion.lesion_id: split.lesion_map.source_columns(lesion) for lesion in prepared.lesions}
    prepared.provenance = _provenance(task, inputs, prepared.outcome.state)
    _cut_lesions(prepared, inputs, split)
    if task.qc:
        _draw_picture(task, prepared.outcome, inputs.loaded, split.lesion_map, split.overlay())
    return prepared


def _read_inputs(task: ScanTask, outcome: ScanOutcome) -> _Inputs | None:
    """Read image and masks, hash them and record the work key; None (with the failure recorded) when they cannot
    be read. Load first, hash after: the readers hash the very bytes they read (``imaging.read_volume``), so a NIfTI
    input is read once; inputs they did not hash (DICOM folders, files ITK reads) are hashed here. A scan whose
    reader failed still gets its hashes and work key, so that the next run retries it only when an input changed."""
    scan, key = task.scan, task.scan.key
    organs_path = scan.organs.path if scan.organs is not None else None
    try:
        image_stat, mask_stat = stat_signature(scan.image_source), stat_signature(scan.mask)
    except OSError as exc:
        outcome.failures.append(_unreadable(key, exc, scan.folder))
        return None
    try:  # a missing or unreadable organ source is the organ step's failure, not the scan's
        organs_stat = stat_signature(organs_path)
        organs_sha = task.organs_sha256 or content_sha256(organs_path)
    except OSError:
        organs_stat = organs_sha = ""
    digests: dict[Path, str] = {}
    read = _load(task, digests)
    try:
        image_sha = task.image_sha256 or _digest_of(scan.image_source, digests)
        mask_sha = task.mask_sha256 or _digest_of(scan.mask, digests)
    except OSError as exc:  # unreadable input: say so, not whatever the reader made of it
        outcome.failures.append(_unreadable(key, exc, scan.folder))
        return None
    outcome.state.update(image_stat=image_stat, mask_stat=mask_stat, image_sha256=image_sha, mask_sha256=mask_sha,
                         organs_stat=organs_stat, organs_sha256=organs_sha,
                         work_key=work_key(scan, image_sha, mask_sha, task.params, task.lesion_options,
                                           task.layout.pet_units, organs_sha))
    if isinstance(read, Failure):
        outcome.failures.append(read)
        return None
    loaded, image = read
    outcome.state.update(body_columns(scan, loaded), image_orientation=orientation_code(loaded.image))
    outcome.warnings.extend(Failure(key, Stage.LESIONS, str(scan.mask), note) for note in loaded.mask.notes)
    return _Inputs(loaded, image, image_sha, mask_sha)


def _load(task: ScanTask, digests: dict[Path, str]) -> tuple[LoadedScan, sitk.Image] | Failure:
    """The scan as read and its image on PyRadiomics' grid, or the failure that stopped the reading."""
    scan = task.scan
    try:
        with pydicom_quiet():  # its complaints quote header values; radiomx's own failure says what matters
            loaded = load_scan(scan, task.layout, digests, task.lesion_options.selection, task.lesion_options.labels)
        return loaded, prepare_image(task.params, loaded.image)
    except ScanError as exc:
        return Failure(scan.key, exc.stage, exc.path, exc.detail)
    except Exception as exc:  # noqa: BLE001 - a reader's unexpected error must not stop the cohort
        return Failure(scan.key, Stage.LOAD, str(scan.image), f"unexpected {type(exc).__name__}: {one_line(exc)}; "
                       "rerun with --verbose or --log-file for the traceback", traceback=traceback.format_exc())


def _split(task: ScanTask, loaded: LoadedScan, outcome: ScanOutcome) -> _Split | None:
    """Reference regions (drawn ones first, then those derived from organs), then (PET) threshold VOIs, then
    lesions and their sites; None when the scan cannot go on (a percist threshold without a liver region). A mask
    without any non-zero voxel is a negative scan (zero lesions, status "negative"), not a failure."""
    key = task.scan.key
    pet = loaded.unit == "SUVbw"
    voi, lesions = task.params.indices.voi, task.lesion_options
    stats = reference_stats(task, loaded, outcome)
    drawn_regions = set(stats)
    drawn = None
    reading = OrganReading()
    if task.scan.organs is not None:  # the masks as drawn: the organ VOIs keep clear of them
        drawn = scan_lesions(loaded.image, loaded.mask, VoiSetting(), lesions.mode, lesions.labels, loaded.unit, {})
        reading = read_scan_organs(task, loaded.image, pet, stats, drawn.lesion_map, outcome)
        stats = {**reading.stats, **stats}  # a hand-drawn region wins
    outcome.state.update(state_columns(stats, reading.reasons))
    normalised = None
    if pet:
        normalised = normalisations(task.scan, loaded, outcome.state, task.params.readouts.sul)
        outcome.state.update(normalised.state_columns())
        for file, message in implausible(stats, task.params.indices.reference_suv_mean, key.tracer,
                                         f"params {task.params.version}"):
            outcome.warnings.append(Failure(key, Stage.REFERENCE, file, message))
    if drawn is not None and (voi.method == "none" or not pet):
        result = drawn
    else:
        try:
            result = scan_lesions(loaded.image, loaded.mask, voi, lesions.mode, lesions.labels, loaded.unit, stats)
        except ScanError as exc:  # percist without a liver region
            outcome.failures.append(Failure(key, exc.stage, str(task.scan.mask), exc.detail))
            return None
    outcome.warnings.extend(Failure(key, Stage.VOI, str(task.scan.mask), message) for message in result.emptied)
    split = _Split(result.lesion_map, voi, result.thresholds, stats, pet, normalised,
                   organ_masks={r: m for r, m in reading.masks.items() if r not in drawn_regions})
    if task.scan.organs is not None:
        site_state, split.sites = site_columns(reading, loaded.image, result.lesion_map, pet)
        outcome.state.update(site_state)
    return split


def _check_labels(task: ScanTask, lesion_map: LesionMap, outcome: ScanOutcome) -> None:
    """``--label`` values the mask does not hold: a failure each (the user asked for a lesion that is not there)."""
    asked = task.lesion_options.labels or ()
    present = lesion_map.present_labels
    for label in sorted(set(asked) - set(present)):
        outcome.failures.append(Failure(
            task.scan.key, Stage.LESIONS, str(task.scan.mask),
            f"label {label} not present in mask (present: {list(present) or 'none'}); check --label",
            lesion_id=label))


def _provenance(task: ScanTask, inputs: _Inputs, state: dict[str, Any]) -> dict[str, Any]:
    """The columns every lesion row of the scan carries: versions, hashes, files, unit, SUV inputs, geometry."""
    loaded = inputs.loaded
    return {
        "params_version": task.params.version, "params_sha256": task.params.sha256, "radiomx_version": __version__,
        "pyradiomics_version": pyradiomics_version(), "image_sha256": inputs.image_sha,
        "mask_sha256": inputs.mask_sha, "image_file": state["image_file"], "mask_file": state["mask_file"],
        "unit": loaded.unit, "image_orientation": state["image_orientation"], **loaded.unit_inputs,
        **loaded.geometry,
    }


def _cut_lesions(prepared: PreparedScan, inputs: _Inputs, split: _Split) -> None:
    """Per lesion: its PET indices on the image as read, then its small input on PyRadiomics' grid (``reorient``)
    as a job, or its result when it is refused, cannot be cut, or runs here (``full`` mode)."""
    task, loaded, lesion_map = prepared.task, inputs.loaded, split.lesion_map
    prepared.outcome.state.update(scan_indices(loaded.image, lesion_map.layers, lesion_map.lesions, loaded.unit))
    refused = lesion_problems(loaded.image, lesion_map.layers, lesion_map.lesions, task.params, loaded.unit)
    on_grid = prepare_layers(task.params, lesion_map.layers, lesion_map.lesions)
    spacing = tuple(float(s) for s in inputs.image.GetSpacing())
    inline = crop_plan(task.params).mode == "full"
    for lesion in lesion_map.lesions:
        lesion_id = lesion.lesion_id
        if lesion_id in refused:
            stage, message = refused[lesion_id]
            prepared.results[lesion_id] = LesionResult(lesion_id, error=message, stage=stage)
            continue
        try:
            values = lesion_indices(loaded.image, lesion_map.labels_of(lesion), lesion, loaded.unit,
                                    task.params.indices.suv_peak)
        except Exception as exc:  # noqa: BLE001 - a bug in our index code: record it, keep the cohort going
            prepared.results[lesion_id] = _unexpected(lesion, exc, Stage.INDICES)
            continue
        prepared.indices[lesion_id] = {**values, **split.row_columns(lesion, values)}
        labels, grid_lesion = on_grid[lesion_id]
        try:
            job = LesionJob(task.params, grid_lesion, lesion_inputs(task.params, inputs.image, labels, grid_lesion),
                            spacing)
        except ValueError as exc:  # the crop reproduces PyRadiomics' own refusals
            prepared.results[lesion_id] = _refusal(exc, task.params, grid_lesion, spacing, None)
            continue
        except Exception as exc:  # noqa: BLE001 - a bug: record it with its traceback, keep the cohort going
            prepared.results[lesion_id] = _unexpected(lesion, exc)
            continue
        if inline:
            prepared.results[lesion_id] = run_lesion(job)
        else:
            prepared.jobs.append(job)


def _draw_picture(task: ScanTask, outcome: ScanOutcome, loaded, lesion_map: LesionMap,
                  organs: dict[str, Any]) -> None:
    """The QC picture while the image is in memory (no second read); a failure to draw is a ``qc`` failures row,
    never a lost feature (the scan's rows and state are already complete)."""
    scan, key = task.scan, task.scan.key
    try:
        from radiomx.qc.draw import OrganOverlay, draw_loaded  # matplotlib: loaded only by runs that draw

        drawn = draw_loaded(scan, loaded, lesion_map.layers, task.params, task.cohort, outcome.state["work_key"],
                            {lesion.lesion_id: lesion_map.source_columns(lesion)["lesion_name"]
                             for lesion in lesion_map.lesions}, OrganOverlay(**organs))
    except Exception as exc:  # noqa: BLE001 - drawing must never cost the scan its features
        outcome.failures.append(Failure(key, Stage.QC, str(scan.image),
                                        f"QC picture not drawn: {type(exc).__name__}: {one_line(exc)}",
                                        traceback=traceback.format_exc()))
        return
    outcome.picture = drawn.picture
    outcome.failures.extend(Failure(key, Stage.QC, file, message) for file, message in drawn.warnings)


def _row(prepared: PreparedScan, lesion: Lesion, result: LesionResult) -> dict[str, Any]:
    """One lesion row: keys, provenance, PET indices and (unless PyRadiomics refused the lesion) its features."""
    return {**_key_columns(prepared.task), "lesion_id": lesion.lesion_id, "source_label": lesion.source_label,
            **prepared.sources.get(lesion.lesion_id, {}), "voxel_count": lesion.voxel_count,
            **prepared.provenance, **prepared.indices[lesion.lesion_id], "extracted_at": result.extracted_at,
            **(result.values or {})}


def finish_scan(prepared: PreparedScan, results: dict[int, LesionResult]) -> ScanOutcome:
    """One ScanOutcome from the lesion results, in lesion order whatever order they finished in."""
    task, outcome = prepared.task, prepared.outcome
    key = task.scan.key
    merged = {**prepared.results, **results}
    for lesion in prepared.lesions:
        result = merged.get(lesion.lesion_id)
        if result is None:
            outcome.failures.append(Failure(key, Stage.WORKER, str(task.scan.mask),
                                            f"lesion {lesion.lesion_id}: worker lost; rerun to retry this scan",
                                            lesion_id=lesion.lesion_id))
        elif result.refused and lesion.lesion_id in prepared.indices:
            outcome.rows.append(_row(prepared, lesion, result))
            outcome.warnings.append(Failure(key, result.stage, str(task.scan.mask), result.error,
                                            lesion_id=lesion.lesion_id))
        elif result.values is None:
            outcome.failures.append(Failure(key, result.stage, str(task.scan.mask), result.error,
                                            lesion_id=lesion.lesion_id, traceback=result.traceback))
        else:
            outcome.rows.append(_row(prepared, lesion, result))
    if outcome.state.get("work_key"):
        outcome.state.update(n_lesions=len(prepared.lesions), n_failed=len(outcome.failures))
    return outcome


def run_scan(task: ScanTask) -> ScanOutcome:
    """Extract every lesion of one scan in this process; never raises for bad input."""
    prepared = prepare_scan(task)
    results = {job.lesion.lesion_id: run_lesion(job) for job in prepared.jobs}
    prepared.jobs = []
    return finish_scan(prepared, results)
