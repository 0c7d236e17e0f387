"""The order of a patient's sessions, from a declaration only: ``radiomx.toml`` or BIDS ``sessions.tsv``.

Why declared, never guessed: session labels are the cohort's own words (``baseline``, ``ses-02``, ``interim``,
``20230815``), and sorting them as text or numbers would silently compare the wrong scans. Two declarations count::

    [sessions]                          # COHORT/radiomx.toml: one order for every patient
    order = ["baseline", "interim", "eot"]
    baseline = "baseline"               # optional: the session every later one is compared with (default: first)

or, without ``order``, each patient's ``sessions.tsv`` ``acq_time`` (BIDS: ``sub-<p>/sub-<p>_sessions.tsv``),
read when the response table is derived, used to sort, and never written anywhere: only the resulting order
reaches a table. A patient with one session needs no declaration. A session the declaration does not place is
listed with the reason (``SessionOrder.unplaced``), never dropped and never compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from radiomx.discover.cohort import CONFIG_NAME, read_cohort_config
from radiomx.errors import ConfigError
from radiomx.inputs.suv import masked

DECLARED = "radiomx.toml [sessions] order"
ACQ_TIME = "sessions.tsv acq_time"
ONE_SESSION = "one session"
UNDECLARED = ("session order not declared: add [sessions] order to radiomx.toml, or acq_time to the patient's "
              "sessions.tsv")


@dataclass(frozen=True)
class SessionDeclaration:
    """``[sessions]`` of radiomx.toml: the order of sessions for every patient, and the baseline (None: the first)."""

    order: tuple[str, ...] = ()
    baseline: str | None = None


@dataclass(frozen=True)
class SessionOrder:
    """One patient's sessions in time order, the baseline every later session is compared with, where the order
    came from, and the sessions no declaration placed (session, reason)."""

    sessions: tuple[str, ...]
    baseline: str | None
    source: str
    unplaced: tuple[tuple[str, str], ...] = ()


def session_declaration(cohort: Path | None) -> SessionDeclaration:
    """``[sessions]`` of the cohort's radiomx.toml, validated (a ConfigError names the file and the key)."""
    if cohort is None:
        return SessionDeclaration()
    where = Path(cohort) / CONFIG_NAME
    section = read_cohort_config(Path(cohort)).get("sessions", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [sessions] must be a table")
    unknown = set(section) - {"order", "baseline"}
    if unknown:
        raise ConfigError(f"{where}: unknown [sessions] key(s): {', '.join(sorted(unknown))} (known: order, baseline)")
    order = section.get("order", [])
    if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
        raise ConfigError(f"{where}: [sessions] order must be a list of session labels (got {order!r})")
    order = [s.removeprefix("ses-") for s in order]
    repeated = sorted({s for s in order if order.count(s) > 1})
    if repeated:
        raise ConfigError(f"{where}: [sessions] order names {', '.join(repeated)} twice")
    baseline = section.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigError(f"{where}: [sessions] baseline must be a session label (got {baseline!r})")
    baseline = baseline.removeprefix("ses-") if baseline is not None else None
    if baseline is not None and order and baseline not in order:
        raise ConfigError(f"{where}: [sessions] baseline {baseline!r} is not in order ({', '.join(order)})")
    return SessionDeclaration(tuple(order), baseline)


def _moment(text: str) -> datetime:
    """BIDS acq_time (ISO 8601: ``2023-08-15T09:30:00``, with or without an offset or ``Z``) as a naive UTC time
    when an offset is given, else as written; ValueError when it is not ISO 8601."""
    moment = datetime.fromisoformat(text.strip())
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def order_sessions(present: Iterable[str], declaration: SessionDeclaration = SessionDeclaration(),
                   acq_times: Mapping[str, str] | None = None) -> SessionOrder:
    """Order one patient's sessions (``present``: those with a scan) by the declaration: radiomx.toml's order (every
    declared session, with or without a scan), else ``acq_times`` (session -> the sessions.tsv cell; sessions
    listed there without a scan are included), else nothing unless there is one session."""
    present = sorted(set(present))
    if declaration.order:
        unplaced = tuple((s, "not in radiomx.toml [sessions] order: not compared") for s in present
                         if s not in declaration.order)
        return SessionOrder(declaration.order, declaration.baseline or declaration.order[0], DECLARED, unplaced)
    moments: dict[str, datetime] = {}
    unplaced_by: dict[str, str] = {}
    for session, text in sorted((acq_times or {}).items()):
        try:
            moments[session] = _moment(text)
        except ValueError:
            unplaced_by[session] = f"acq_time {masked(text)} (digits masked) is not an ISO 8601 date-time"
    if not moments:
        if len(present) == 1 and not unplaced_by:
            return SessionOrder(tuple(present), present[0], ONE_SESSION)
        unplaced_by.update({s: UNDECLARED for s in present if s not in unplaced_by})
        return SessionOrder((), None, "", tuple(sorted(unplaced_by.items())))
    for session in present:
        if session not in moments and session not in unplaced_by:
            unplaced_by[session] = "no acq_time in sessions.tsv: not placed in time"
    by_time: dict[datetime, list[str]] = {}
    for session, moment in moments.items():
        by_time.setdefault(moment, []).append(session)
    for sessions in by_time.values():
        if len(sessions) > 1:
            for session in sessions:
                others = ", ".join(s for s in sessions if s != session)
                unplaced_by[session] = f"same acq_time as session {others}: order unknown"
    ordered = tuple(sorted((s for s in moments if s not in unplaced_by), key=lambda s: moments[s]))
    baseline = declaration.baseline or (ordered[0] if ordered else None)
    return SessionOrder(ordered, baseline, ACQ_TIME, tuple(sorted(unplaced_by.items())))
