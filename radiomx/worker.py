"""What one worker does for one scan: load once, split into lesions, one PyRadiomics call per lesion.

Runs in a pool process or on a Dask worker, so it takes and returns plain picklable records and never raises
for bad data: every problem becomes a ``Failure`` naming the file, and the other lesions still produce rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .cohort import Layout, Scan
from .errors import ScanError
from .features import FEATURE_LOGIC_VERSION, extract_lesion, pyradiomics_version
from .fingerprint import canonical_sha256, content_sha256, stat_signature
from .lesions import split_lesions
from .loader import load_scan
from .params import ParamSet
from .records import Failure, ScanOutcome


@dataclass(frozen=True)
class ScanTask:
    scan: Scan
    cohort: Path
    layout: Layout
    params: ParamSet
    lesion_options: tuple[str, tuple[int, ...] | None]
    #: Hashes already computed while planning ("" = compute here, in parallel).
    image_sha256: str = ""
    mask_sha256: str = ""


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


def work_key(image_sha: str, mask_sha: str, params: ParamSet, lesion_options: tuple, unit_policy: str | None) -> str:
    """Everything that can change a row: inputs, parameter file, radiomx's feature logic, lesion options."""
    return canonical_sha256({
        "image": image_sha, "mask": mask_sha, "params": params.sha256, "logic": FEATURE_LOGIC_VERSION,
        "lesions": list(lesion_options[0:1]) + [list(lesion_options[1]) if lesion_options[1] else None],
        "pet_units": unit_policy,
    })


def _relative(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _key_columns(task: ScanTask) -> dict[str, Any]:
    k = task.scan.key
    return {"patient_id": k.patient_id, "session": k.session, "tracer": k.tracer}


def _pyradiomics_refusal(exc: Exception, lesion_id: int, voxels: int) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"lesion {lesion_id} ({voxels} voxels) refused by PyRadiomics: {text}; fix or remove this label, or "
            "relax minimumROIDimensions/minimumROISize in a new parameter file version")


def run_scan(task: ScanTask) -> ScanOutcome:
    """Extract every lesion of one scan; never raises for bad input."""
    pin_threads()
    scan, key = task.scan, task.scan.key
    outcome = ScanOutcome(key)
    outcome.state = {
        **_key_columns(task), "image_file": _relative(scan.image, task.cohort),
        "mask_file": _relative(scan.mask, task.cohort), "params_version": task.params.version,
        "params_sha256": task.params.sha256, "work_key": "", "image_sha256": "", "mask_sha256": "",
        "image_stat": "", "mask_stat": "", "n_lesions": 0, "n_failed": 0,
    }
    try:
        image_stat, mask_stat = stat_signature(scan.image), stat_signature(scan.mask)
        image_sha = task.image_sha256 or content_sha256(scan.image)
        mask_sha = task.mask_sha256 or content_sha256(scan.mask)
    except OSError as exc:
        outcome.failures.append(Failure(key, "load", str(exc.filename or scan.folder),
                                        f"cannot read input ({exc.strerror}); check permissions"))
        return outcome
    outcome.state.update(image_stat=image_stat, mask_stat=mask_stat, image_sha256=image_sha, mask_sha256=mask_sha,
                         work_key=work_key(image_sha, mask_sha, task.params, task.lesion_options,
                                           task.layout.pet_units))
    try:
        loaded = load_scan(scan, task.layout)
        mode, only = task.lesion_options
        lesion_map = split_lesions(loaded.mask, mode, only)
    except ScanError as exc:
        outcome.failures.append(Failure(key, exc.stage, exc.path, exc.detail))
        return outcome
    except Exception as exc:  # noqa: BLE001 - a reader's unexpected error must not stop the cohort
        outcome.failures.append(Failure(key, "load", str(scan.image), f"unexpected {type(exc).__name__}: {exc}"))
        return outcome

    if only:
        for label in sorted(set(only) - set(lesion_map.present_labels)):
            outcome.failures.append(Failure(
                key, "lesions", str(scan.mask),
                f"label {label} not present in mask (present: {list(lesion_map.present_labels) or 'none'}); "
                "check --label", lesion_id=label))
    if not lesion_map.present_labels:
        outcome.failures.append(Failure(key, "lesions", str(scan.mask),
                                        "mask is empty (no non-zero voxel); segment the lesions or remove the mask"))

    provenance = {
        "params_version": task.params.version, "params_sha256": task.params.sha256, "radiomx_version": __version__,
        "pyradiomics_version": pyradiomics_version(), "image_sha256": image_sha, "mask_sha256": mask_sha,
        "image_file": outcome.state["image_file"], "mask_file": outcome.state["mask_file"], "unit": loaded.unit,
        **{k: v for k, v in loaded.unit_inputs.items()},
    }
    for lesion in lesion_map.lesions:
        try:
            values = extract_lesion(task.params, loaded.image, lesion_map.labels, lesion.lesion_id)
        except Exception as exc:  # noqa: BLE001 - PyRadiomics raises ValueError for invalid ROIs, others for bugs
            outcome.failures.append(Failure(key, "features", str(scan.mask),
                                            _pyradiomics_refusal(exc, lesion.lesion_id, lesion.voxel_count),
                                            lesion_id=lesion.lesion_id))
            continue
        outcome.rows.append({
            **_key_columns(task), "lesion_id": lesion.lesion_id, "source_label": lesion.source_label,
            "voxel_count": lesion.voxel_count, **provenance,
            "extracted_at": datetime.now(UTC), **values,
        })
    outcome.state.update(n_lesions=len(lesion_map.lesions), n_failed=len(outcome.failures))
    return outcome
