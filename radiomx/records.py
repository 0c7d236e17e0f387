"""Plain records passed between stages (picklable, so they cross process and Dask boundaries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bare names ("pet", "dicom", "pet_dicom", "ct") are DICOM series folders.
DEFAULT_IMAGE_PATTERNS = ("pet.*", "image.*", "img.*", "ct.*", "pet", "dicom", "pet_dicom", "ct")
#: ``seg.dcm``/``mask.dcm`` (DICOM SEG) and ``rtstruct*.dcm``/``rs_*.dcm``/``rs.dcm`` (RTSTRUCT) are DICOM masks.
DEFAULT_MASK_PATTERNS = ("mask.*", "lesions.*", "lesion.*", "label.*", "labels.*", "seg.*", "rtstruct*.dcm",
                         "rs_*.dcm", "rs.dcm")


@dataclass(frozen=True, order=True)
class ScanKey:
    """Identity of a scan in every table: the cohort's own folder IDs, never anything from DICOM headers."""

    patient_id: str
    session: str
    tracer: str

    def __str__(self) -> str:
        return "/".join(p for p in (self.patient_id, self.session, self.tracer) if p)


@dataclass(frozen=True)
class Scan:
    key: ScanKey
    folder: Path
    image: Path | None = None
    mask: Path | None = None
    #: A discovery problem as (stage, file, message); the scan is recorded as failed without being loaded.
    problem: tuple[str, str, str] | None = None
    #: Body weight (kg) from participants.tsv/sessions.tsv, for SUV of NIfTI PET with a sidecar (radiomx.discover.bids).
    body_weight_kg: float | None = None
    #: The TSV file the weight came from (or should come from), named in SUV error messages.
    body_weight_source: str = ""


@dataclass(frozen=True)
class Layout:
    image_patterns: tuple[str, ...] = DEFAULT_IMAGE_PATTERNS
    mask_patterns: tuple[str, ...] = DEFAULT_MASK_PATTERNS
    #: Intensity unit of NIfTI/NRRD/MHA PET images that carry no sidecar: None (refuse) or "SUVbw".
    pet_units: str | None = None


#: A DICOM UID (``1.2.840.10008...``): five or more dot-separated numbers. Exports often name files by their SOP
#: Instance UID, and UIDs are identifiers (DICOM PS3.15 replaces them when de-identifying).
_UID = re.compile(r"(?<![\w.])\d+(?:\.\d+){4,}(?![\w.]*\d\.\d)")


def redact_uids(text: str) -> str:
    """Replace UID-like tokens (file names exported as UIDs) by ``<UID>`` before they reach a table or a log."""
    return _UID.sub("<UID>", text)


@dataclass(frozen=True)
class Failure:
    """One failures-table row: which scan (and lesion, if only one lesion failed), where, and what to do."""

    key: ScanKey
    stage: str
    file: str
    message: str
    lesion_id: int | None = None
    #: Traceback of an unexpected error: for ``--verbose`` and ``--log-file`` only, never in a table.
    traceback: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("file", "message", "traceback"):
            object.__setattr__(self, name, redact_uids(getattr(self, name)))

    def as_row(self) -> dict[str, Any]:
        return {"patient_id": self.key.patient_id, "session": self.key.session, "tracer": self.key.tracer,
                "lesion_id": self.lesion_id, "stage": self.stage, "file": self.file, "message": self.message}


#: Stages whose failures leave a scan's rows complete: a QC picture that could not be drawn loses no feature, so the
#: scan stays "ok" (and is not recomputed next run); the failures row still says what went wrong.
ADVISORY_STAGES = frozenset({"qc"})


@dataclass(frozen=True)
class QcPicture:
    """A rendered QC picture on its way from a worker to the writer (which alone writes into OUT)."""

    #: What the picture was drawn from (``radiomx.qc.files.render_key``); stored in the PNG, decides re-rendering.
    key: str
    png: bytes
    thumbnail: bytes


@dataclass
class ScanOutcome:
    """What one scan produced: feature rows, failures, and the state row that marks it done."""

    key: ScanKey
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    #: The scan's QC picture when ``--qc`` asked for one and it could be drawn.
    picture: QcPicture | None = None

    @property
    def status(self) -> str:
        if all(f.stage in ADVISORY_STAGES for f in self.failures):
            return "ok"
        return "partial" if self.rows else "failed"
