"""Plain records passed between stages (picklable, so they cross process and Dask boundaries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .cohort import ScanKey

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


@dataclass
class ScanOutcome:
    """What one scan produced: feature rows, failures, and the state row that marks it done."""

    key: ScanKey
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if not self.failures:
            return "ok"
        return "partial" if self.rows else "failed"
