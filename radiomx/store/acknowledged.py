"""Known failures the team has looked at and accepted: ``OUT/acknowledged.tsv``.

Why: a scan that can never be read (a truncated export the site cannot send again) fails every night, and a nightly
run that always exits 1 hides the night a new failure appears. An acknowledged failure still shows, in ``status``,
in the failures table (column ``acknowledged``: the reason) and in the run's output; it no longer turns the exit
code to 1. A new failure, or another stage of the same scan, still does.

The file is tab-separated with a header (docs/cli.md, "Acknowledging a known failure")::

    patient_id  session  tracer   stage  reason
    P007                 18F-FDG  load   export truncated at the site, cannot be re-sent (JD, 2024 ticket 812)

``session`` is empty for a cohort without sessions, ``tracer`` takes a canonical name or an alias (``fdg``), or
the tracer as the failures table writes it when it is none (the folder name of an unknown tracer folder, failing
at stage ``discover``: ``FDG-2nd-try``; an export's ``unknown``), ``stage`` is the failures table's stage (``*``: any
stage of that scan), and ``reason`` is required. A tracer that names no failure (mistyped) is no error: ``status``
points out every entry that matches no failure. It lives in OUT,
beside the failures it speaks about, because OUT is always writable (a PACS export's folder may not be).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from radiomx.columns import ACKNOWLEDGED
from radiomx.errors import ConfigError
from radiomx.records import Failure, ScanKey
from radiomx.tracers import find_tracer

FILE_NAME = "acknowledged.tsv"
COLUMNS = ACKNOWLEDGED.names
ANY_STAGE = "*"


def acknowledged_path(out: Path | str) -> Path:
    return Path(out) / FILE_NAME


@dataclass(frozen=True)
class Acknowledgement:
    key: ScanKey
    stage: str
    reason: str
    line: int


@dataclass
class Acknowledgements:
    """The acknowledged failures of one OUT (none when the file does not exist)."""

    entries: list[Acknowledgement] = field(default_factory=list)

    def reason(self, key: ScanKey, stage: str) -> str | None:
        """The reason a failure of ``key`` at ``stage`` was acknowledged, or None (a failure that counts)."""
        for entry in self.entries:
            if entry.key == key and entry.stage in (stage, ANY_STAGE):
                return entry.reason
        return None

    def of(self, failure: Failure) -> str | None:
        return self.reason(failure.key, failure.stage)

    def column(self, failures) -> list[str | None]:
        """The ``acknowledged`` column of a failures table (a DataFrame): each row's reason, None for a failure
        that counts and for a warning (which never fails a run)."""
        return [self.reason(key, stage) if severity != "warning" else None for key, stage, severity in _rows(failures)]

    def unmatched(self, failures) -> list[Acknowledgement]:
        """Entries that match no failure of the failures table: fixed since, or mistyped; worth removing."""
        current = [(key, stage) for key, stage, severity in _rows(failures) if severity != "warning"]
        return [e for e in self.entries if not any(k == e.key and e.stage in (s, ANY_STAGE) for k, s in current)]


def _rows(failures) -> list[tuple[ScanKey, str, str]]:
    columns = [failures[c] for c in ("patient_id", "session", "tracer", "stage", "severity")]
    return [(ScanKey(p, s, t), stage, severity) for p, s, t, stage, severity in zip(*columns, strict=True)]


def read_acknowledgements(out: Path | str) -> Acknowledgements:
    """``OUT/acknowledged.tsv``; a ConfigError (exit 2) naming the line for a malformed file."""
    path = acknowledged_path(out)
    if not path.is_file():
        return Acknowledgements()
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}: header must name {', '.join(COLUMNS)} (tab-separated); missing "
                              f"{', '.join(missing)}")
        entries = []
        for row in reader:
            number = reader.line_num
            values = {c: (row.get(c) or "").strip() for c in COLUMNS}
            if not values["patient_id"] or not values["tracer"] or not values["stage"] or not values["reason"]:
                raise ConfigError(f"{path}: line {number}: patient_id, tracer, stage and reason are required "
                                  "(session may be empty)")
            tracer = find_tracer(values["tracer"])  # an alias becomes its canonical name; anything else as written
            key = ScanKey(values["patient_id"], values["session"], tracer.name if tracer else values["tracer"])
            entries.append(Acknowledgement(key, values["stage"], values["reason"], number))
    return Acknowledgements(entries)
