"""What a scan's work is and what identifies it: ``ScanTask`` (picklable, sent to workers) and ``work_key`` (the
hash that decides "unchanged" on the next run).

Why apart from worker.py: the planner runs in the writer process on every nightly rerun and must stay light; the
worker's readers (pydicom, highdicom, PyRadiomics' feature code) are only imported where scans are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiomx.features import FEATURE_LOGIC_VERSION
from radiomx.fingerprint import canonical_sha256, content_sha256
from radiomx.inputs.label_tables import label_table_candidates
from radiomx.inputs.paths import sidecar_path
from radiomx.options import LesionOptions
from radiomx.params.paramset import ParamSet
from radiomx.records import Layout, Scan


@dataclass(frozen=True)
class ScanTask:
    scan: Scan
    cohort: Path
    layout: Layout
    params: ParamSet
    #: How the mask becomes lesions (mode, --label values, selection by name).
    lesion_options: LesionOptions
    #: Hashes already computed while planning ("" = compute here, in parallel).
    image_sha256: str = ""
    mask_sha256: str = ""
    #: The organ source's content hash, already computed while planning ("" = compute here).
    organs_sha256: str = ""
    #: Render the QC picture in the worker (``--qc``).
    qc: bool = False


def _sha_or_reason(path: Path) -> str:
    """A reference file deleted or unreadable after discovery must not stop the plan: the worker reports it."""
    try:
        return content_sha256(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def outside_inputs(scan: Scan) -> dict[str, Any]:
    """Inputs that live outside the image and mask files: the BIDS sidecar's content, the body weight, height and
    sex from participants.tsv/sessions.tsv, and each reference-region mask (region name and content). Editing any of
    them must recompute the scan (reference masks are small: hashing them on every plan costs milliseconds)."""
    sidecar = sidecar_path(scan.image) if scan.image is not None and not scan.image.is_dir() else None
    key: dict[str, Any] = {"sidecar": content_sha256(sidecar) if sidecar is not None and sidecar.is_file() else "",
                           "weight": scan.body_weight_kg}
    # Only present when used, so that scans without them keep the work key they had.
    if scan.references:
        key["references"] = [[region, _sha_or_reason(path)] for region, path in scan.references]
    if scan.height_m is not None:
        key["height"] = scan.height_m
    if scan.sex:  # lean body mass (SUL) is sex-specific; only the hash of the key is stored, never the sex
        key["sex"] = scan.sex
    tables = label_table_candidates(scan.mask) if scan.mask is not None else []
    if tables:  # a label table beside a label-map mask names (and so selects) its lesions
        key["label_tables"] = [[path.name, _sha_or_reason(path)] for path in tables]
    return key


def work_key(scan: Scan, image_sha: str, mask_sha: str, params: ParamSet, lesion_options: LesionOptions,
             unit_policy: str | None, organs_sha: str = "") -> str:
    """Everything that can change a row: inputs (and their metadata outside the image file), parameter file,
    radiomx's feature logic, lesion options (mode, labels, the selection by name), and the organ segmentations
    (their form and content) when the scan has them: scans without keep the key they had."""
    key = {
        "image": image_sha, "mask": mask_sha, "params": params.sha256, "logic": FEATURE_LOGIC_VERSION,
        **lesion_options.as_key(),
        "pet_units": unit_policy, "outside": outside_inputs(scan),
    }
    if scan.organs is not None:
        key["organs"] = [scan.organs.form, organs_sha]
    return canonical_sha256(key)
