"""What workers do: per scan, load once, split into lesions and cut each lesion's small input
(``prepare_scan``); per lesion, one PyRadiomics call (``run_lesion``); then one ``ScanOutcome`` (``finish_scan``).

Why split a scan: one patient with 40 lesions must not serialize a run, so the engine spreads a scan's lesions over
all workers and reassembles them. ``run_scan`` chains the three steps in one process (serial engine, reference).
Everything crossing a process or Dask boundary is a plain picklable record (lesion inputs are small SimpleITK
images), and nothing raises for bad data: every problem becomes a ``Failure`` naming the file, and the other
lesions still produce rows.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radiomx import __version__
from radiomx.errors import ScanError
from radiomx.features.crop import LesionInput
from radiomx.features.extractor import (
    crop_plan,
    extract_input,
    lesion_inputs,
    prepare_image,
    pyradiomics_version,
)
from radiomx.features.guards import lesion_problems
from radiomx.features.lesions import Lesion, split_lesions
from radiomx.fingerprint import content_sha256, stat_signature
from radiomx.inputs.loader import load_scan
from radiomx.params.paramset import ParamSet
from radiomx.records import Failure, ScanKey, ScanOutcome, redact_uids
from radiomx.run.tasks import ScanTask, work_key

_PINNED = False


def pin_threads() -> None:
    """One thread per worker for SimpleITK, BLAS and OpenMP.

    Why: workers already use every core; GLCM's MCC calls numpy.linalg.eigvals per angle, and a multi-threaded
    BLAS inside N workers oversubscribes the machine (the same lesion swung between 0.2 s and 10 s).
    """
    global _PINNED
    if _PINNED:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = "1"
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threadpool_limits(1)
    _PINNED = True


def _relative(path: Path | None, root: Path) -> str:
    """The input's path relative to the cohort, with UID-like file names redacted (no identifiers in tables)."""
    if path is None:
        return ""
    try:
        return redact_uids(str(path.relative_to(root)))
    except ValueError:
        return redact_uids(str(path))


def _key_columns(task: ScanTask) -> dict[str, Any]:
    k = task.scan.key
    return {"patient_id": k.patient_id, "session": k.session, "tracer": k.tracer}


def _unexpected(lesion: Lesion, exc: Exception) -> LesionResult:
    return LesionResult(lesion.lesion_id, error=(
        f"lesion {lesion.lesion_id}: unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}; "
        "rerun with --verbose or --log-file for the traceback and report it"), traceback=traceback.format_exc())


def _pyradiomics_refusal(exc: Exception, lesion_id: int, voxels: int) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"lesion {lesion_id} ({voxels} voxels) refused by PyRadiomics: {text}; fix or remove this label, or "
            "relax minimumROIDimensions/minimumROISize in a new parameter file version")


@dataclass
class LesionJob:
    """One lesion's PyRadiomics call, runnable in any worker."""

    params: ParamSet
    lesion: Lesion
    item: LesionInput

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
    stage: str = "features"
    traceback: str = ""


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


def run_lesion(job: LesionJob) -> LesionResult:
    """One PyRadiomics call on a prepared lesion input; never raises for PyRadiomics' refusals."""
    pin_threads()
    try:
        values = extract_input(job.params, job.item)
    except ValueError as exc:  # PyRadiomics' way of refusing an ROI (too small, too flat, label lost, ...)
        return LesionResult(job.lesion.lesion_id, error=_pyradiomics_refusal(exc, job.lesion.lesion_id,
                                                                             job.lesion.voxel_count))
    except Exception as exc:  # noqa: BLE001 - a bug (ours or PyRadiomics'): record it, keep the cohort going
        return _unexpected(job.lesion, exc)
    return LesionResult(job.lesion.lesion_id, values, extracted_at=datetime.now(UTC))


def _unreadable(key: ScanKey, exc: OSError, folder: Path) -> Failure:
    return Failure(key, "load", str(exc.filename or folder), f"cannot read input ({exc.strerror}); check permissions")


def _digest_of(path: Path | None, digests: dict[Path, str]) -> str:
    """sha256 of an input: as its reader hashed it while reading, else read now."""
    if path is not None and path in digests:
        return digests[path]
    return content_sha256(path)


def prepare_scan(task: ScanTask) -> PreparedScan:
    """Hash, load, split and cut every lesion of one scan; never raises for bad input.

    In ``full`` mode (a filter with whole-image state, no resampling) the lesions run here on the full image, since
    shipping the whole volume per lesion would cost more than it saves.
    """
    pin_threads()
    scan, key = task.scan, task.scan.key
    outcome = ScanOutcome(key)
    prepared = PreparedScan(task, outcome)
    outcome.state = {
        **_key_columns(task), "image_file": _relative(scan.image, task.cohort),
        "mask_file": _relative(scan.mask, task.cohort), "params_version": task.params.version,
        "params_sha256": task.params.sha256, "work_key": "", "image_sha256": "", "mask_sha256": "",
        "image_stat": "", "mask_stat": "", "n_lesions": 0, "n_failed": 0,
    }
    try:
        image_stat, mask_stat = stat_signature(scan.image), stat_signature(scan.mask)
    except OSError as exc:
        outcome.failures.append(_unreadable(key, exc, scan.folder))
        return prepared
    # Load first, hash after: the readers hash the very bytes they read (``imaging.read_volume``), so a NIfTI input
    # is read once; inputs they did not hash (DICOM folders, files ITK reads) are hashed here.
    digests: dict[Path, str] = {}
    load_failure: Failure | None = None
    try:
        loaded = load_scan(scan, task.layout, digests)
        mode, only = task.lesion_options
        lesion_map = split_lesions(loaded.mask, mode, only)
        image = prepare_image(task.params, loaded.image)
    except ScanError as exc:
        load_failure = Failure(key, exc.stage, exc.path, exc.detail)
    except Exception as exc:  # noqa: BLE001 - a reader's unexpected error must not stop the cohort
        load_failure = Failure(key, "load", str(scan.image),
                               f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}; "
                               "rerun with --verbose or --log-file for the traceback",
                               traceback=traceback.format_exc())
    try:
        image_sha = task.image_sha256 or _digest_of(scan.image, digests)
        mask_sha = task.mask_sha256 or _digest_of(scan.mask, digests)
    except OSError as exc:  # unreadable input: say so, not whatever the reader made of it
        outcome.failures.append(_unreadable(key, exc, scan.folder))
        return prepared
    outcome.state.update(image_stat=image_stat, mask_stat=mask_stat, image_sha256=image_sha, mask_sha256=mask_sha,
                         work_key=work_key(scan, image_sha, mask_sha, task.params, task.lesion_options,
                                           task.layout.pet_units))
    if load_failure is not None:
        outcome.failures.append(load_failure)
        return prepared

    if only:
        for label in sorted(set(only) - set(lesion_map.present_labels)):
            outcome.failures.append(Failure(
                key, "lesions", str(scan.mask),
                f"label {label} not present in mask (present: {list(lesion_map.present_labels) or 'none'}); "
                "check --label", lesion_id=label))
    if not lesion_map.present_labels:
        outcome.failures.append(Failure(key, "lesions", str(scan.mask),
                                        "mask is empty (no non-zero voxel); segment the lesions or remove the mask"))

    prepared.lesions = lesion_map.lesions
    prepared.provenance = {
        "params_version": task.params.version, "params_sha256": task.params.sha256, "radiomx_version": __version__,
        "pyradiomics_version": pyradiomics_version(), "image_sha256": image_sha, "mask_sha256": mask_sha,
        "image_file": outcome.state["image_file"], "mask_file": outcome.state["mask_file"], "unit": loaded.unit,
        **{k: v for k, v in loaded.unit_inputs.items()},
    }
    inline = crop_plan(task.params).mode == "full"
    refused = lesion_problems(loaded.image, lesion_map.labels, lesion_map.lesions, task.params, loaded.unit)
    for lesion in lesion_map.lesions:
        if lesion.lesion_id in refused:
            stage, message = refused[lesion.lesion_id]
            prepared.results[lesion.lesion_id] = LesionResult(lesion.lesion_id, error=message, stage=stage)
            continue
        try:
            job = LesionJob(task.params, lesion, lesion_inputs(task.params, image, lesion_map.labels, lesion))
        except ValueError as exc:  # the crop reproduces PyRadiomics' own refusals (label lost after resampling)
            prepared.results[lesion.lesion_id] = LesionResult(
                lesion.lesion_id, error=_pyradiomics_refusal(exc, lesion.lesion_id, lesion.voxel_count))
            continue
        except Exception as exc:  # noqa: BLE001 - a bug: record it with its traceback, keep the cohort going
            prepared.results[lesion.lesion_id] = _unexpected(lesion, exc)
            continue
        if inline:
            prepared.results[lesion.lesion_id] = run_lesion(job)
        else:
            prepared.jobs.append(job)
    if task.qc:
        _draw_picture(task, outcome, loaded, lesion_map.labels)
    return prepared


def _draw_picture(task: ScanTask, outcome: ScanOutcome, loaded, labels) -> None:
    """The QC picture while the image is in memory (no second read); a failure to draw is a ``qc`` failures row,
    never a lost feature (the scan's rows and state are already complete)."""
    scan, key = task.scan, task.scan.key
    try:
        from radiomx.qc.draw import draw_scan  # matplotlib: loaded only by runs that draw

        drawn = draw_scan(key, loaded.image, labels, loaded.unit, loaded.unit_inputs, task.params, scan.image,
                          scan.folder, task.cohort, outcome.state["work_key"])
    except Exception as exc:  # noqa: BLE001 - drawing must never cost the scan its features
        outcome.failures.append(Failure(key, "qc", _relative(scan.image, task.cohort),
                                        f"QC picture not drawn: {type(exc).__name__}: "
                                        f"{' '.join(str(exc).split())[:300]}", traceback=traceback.format_exc()))
        return
    outcome.picture = drawn.picture
    outcome.failures.extend(Failure(key, "qc", file, message) for file, message in drawn.warnings)


def finish_scan(prepared: PreparedScan, results: dict[int, LesionResult]) -> ScanOutcome:
    """One ScanOutcome from the lesion results, in lesion order whatever order they finished in."""
    task, outcome = prepared.task, prepared.outcome
    key = task.scan.key
    merged = {**prepared.results, **results}
    for lesion in prepared.lesions:
        result = merged.get(lesion.lesion_id)
        if result is None:
            outcome.failures.append(Failure(key, "worker", str(task.scan.mask),
                                            f"lesion {lesion.lesion_id}: worker lost; rerun to retry this scan",
                                            lesion_id=lesion.lesion_id))
        elif result.values is None:
            outcome.failures.append(Failure(key, result.stage, str(task.scan.mask), result.error,
                                            lesion_id=lesion.lesion_id, traceback=result.traceback))
        else:
            outcome.rows.append({
                **_key_columns(task), "lesion_id": lesion.lesion_id, "source_label": lesion.source_label,
                "voxel_count": lesion.voxel_count, **prepared.provenance,
                "extracted_at": result.extracted_at, **result.values,
            })
    if outcome.state.get("work_key"):
        outcome.state.update(n_lesions=len(prepared.lesions), n_failed=len(outcome.failures))
    return outcome


def run_scan(task: ScanTask) -> ScanOutcome:
    """Extract every lesion of one scan in this process; never raises for bad input."""
    prepared = prepare_scan(task)
    results = {job.lesion.lesion_id: run_lesion(job) for job in prepared.jobs}
    prepared.jobs = []
    return finish_scan(prepared, results)
