"""The words radiomx writes into tables, summaries and logs: plan statuses, stored scan statuses, the states a user
sees for a scan, failure stages and severities.

Why ``StrEnum``: a member *is* its string (``PlanStatus.NEW == "new"``), so the Parquet tables, JSON lines and
``radiomx scan`` output keep the exact words they always had, while the code has one spelling of each, a typo is a
NameError and not a silent mismatch, and each word has one rule for what users see (``ScanState.of``,
``ScanState.heading``, ``Severity.label``, ``Severity.level``). A vocabulary module: imports no stage.
"""

from __future__ import annotations

import logging
from enum import StrEnum


class PlanStatus(StrEnum):
    """What the next run does with a discovered scan (``radiomx.run.plan``; ``extract --dry-run`` prints it)."""

    NEW = "new"
    CHANGED = "changed"
    #: Stored as failed or partial last time: computed again.
    RETRY = "retry"
    UNCHANGED = "unchanged"
    #: A discovery problem (no mask, unknown tracer folder, a parameter file missing): a failures row, not computed.
    INVALID = "invalid"

    @property
    def computes(self) -> bool:
        return self in (PlanStatus.NEW, PlanStatus.CHANGED, PlanStatus.RETRY)


class ScanStatus(StrEnum):
    """A computed scan's status (``OUT/scans.parquet`` column ``status``; ``ScanOutcome.status``)."""

    OK = "ok"
    #: Some lesions have rows, some failed.
    PARTIAL = "partial"
    FAILED = "failed"
    #: The mask was read and holds no lesion: data (a burden row with count 0), not a failure.
    NEGATIVE = "negative"



#: Stored statuses with nothing to retry: a negative scan is done as much as an ok one.
DONE_STATUSES = frozenset({ScanStatus.OK, ScanStatus.NEGATIVE})


class ScanState(StrEnum):
    """Where a scan stands against an output folder, as users see it: the ``state`` column of ``radiomx scan -o``
    and the columns of ``radiomx status`` (in this order)."""

    DONE = "done"
    NEGATIVE = "negative"
    NEW = "new"
    CHANGED = "changed"
    FAILED = "failed"
    #: Stored in OUT, no longer in the cohort (rows kept until ``extract --prune``).
    VANISHED = "vanished"
    #: A DICOM export's PET series that no mask references yet (not a failure).
    WAITING = "waiting"

    @property
    def heading(self) -> str:
        """The ``radiomx status`` column that counts this state: new scans are "pending" there."""
        return "pending" if self is ScanState.NEW else self.value

    @classmethod
    def of(cls, planned: PlanStatus | str, stored_status: str | None) -> ScanState:
        """The one rule from what the next run would do (``planned``) and the stored status of the scan (None when
        OUT has none): retry and invalid are failed; unchanged is done, or negative when stored as negative."""
        planned = PlanStatus(planned)
        if planned is PlanStatus.UNCHANGED:
            return cls.NEGATIVE if stored_status == ScanStatus.NEGATIVE else cls.DONE
        return {PlanStatus.NEW: cls.NEW, PlanStatus.CHANGED: cls.CHANGED}.get(planned, cls.FAILED)


class Stage(StrEnum):
    """Where a scan or lesion went wrong: the ``stage`` column of the failures table and the ``[stage]`` of every
    failure line (docs/cli.md lists them)."""

    DISCOVER = "discover"
    PARAMS = "params"
    LOAD = "load"
    GEOMETRY = "geometry"
    SUV = "suv"
    LESIONS = "lesions"
    REFERENCE = "reference"
    #: Organ segmentations (TotalSegmentator/MOOSE output) read for reference VOIs and lesion sites (docs/organs.md).
    ORGANS = "organs"
    VOI = "voi"
    INDICES = "indices"
    FEATURES = "features"
    QC = "qc"
    WORKER = "worker"


#: Stages whose failures leave a scan's rows complete: a QC picture that could not be drawn loses no feature, so the
#: scan stays "ok" (and is not recomputed next run); the failures row still says what went wrong.
ADVISORY_STAGES = frozenset({Stage.QC})


class Severity(StrEnum):
    """What a message means for the run: the failures table's ``severity`` column (failure, warning) and the JSON
    log lines' ``severity`` field, the key a cron alert filters on (docs/cli.md, "JSON log lines")."""

    #: The command exits non-zero because of it: a scan or lesion failed, a usage or configuration error.
    FAILURE = "failure"
    #: Worth a look, the exit code stays 0: an implausible reference region, vanished scans, a draft file.
    WARNING = "warning"
    #: Progress and summaries.
    INFO = "info"

    @property
    def level(self) -> int:
        """The logging level of a line of this severity."""
        return {Severity.FAILURE: logging.ERROR, Severity.WARNING: logging.WARNING}.get(self, logging.INFO)

    @property
    def label(self) -> str:
        """The word that starts a failures-table line on stderr (``FAILED P001/18F-FDG [load] ...``)."""
        return {Severity.FAILURE: "FAILED", Severity.WARNING: "WARNING"}.get(self, "INFO")
