"""``RunSummary``: what one ``extract`` did (or, in a dry run, would do), for the CLI's summary, ``--json`` and the
run log."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radiomx.errors import exit_code
from radiomx.records import Failure, Scan, ScanKey
from radiomx.run.plan import Plan
from radiomx.store.acknowledged import Acknowledgements
from radiomx.vocabulary import ScanState


@dataclass
class RunSummary:
    """What ``extract`` did; ``failed`` (a failure nobody acknowledged) makes its exit code 1
    (``radiomx.errors.exit_code``); a configuration problem is raised instead."""

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
    def failed(self) -> bool:
        """True when a failure is not acknowledged (``OUT/acknowledged.tsv``)."""
        return any(self.acknowledgements.of(f) is None for f in self.failures)

    @property
    def exit_code(self) -> int:
        """What ``radiomx extract`` exits with after this run (read from the one table, ``radiomx.errors``)."""
        return int(exit_code(self))

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
            data["scans"] += [{**_key_dict(k), "status": ScanState.VANISHED, "reason": self.vanished_reason}
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
