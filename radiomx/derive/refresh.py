"""Rebuild every derived table of OUT from its stored rows: burden (with its scores), the compare tables already
asked for (by ``radiomx compare``), the response tables (cohorts with sessions), then the patient table. Each is
replaced only when its bytes change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from radiomx.columns import BURDEN, COMPARE, Table
from radiomx.derive.burden import burden_path, write_burden
from radiomx.derive.compare import CompareSummary, write_compare
from radiomx.derive.patients import write_patients
from radiomx.derive.response_table import responses_stale, write_responses
from radiomx.derive.settings import DeriveSettings, settings_for
from radiomx.store.outdir import compare_path, existing_pairs, state_path
from radiomx.store.runlog import last_run
from radiomx.store.schema import arrow_schema


def is_stale(out: Path, settings: DeriveSettings, cohort: Path | None = None) -> bool:
    """True when the derived tables are missing, were built with another BSA formula than the cohort's, hold
    other columns than their declaration (``radiomx.columns``: written by an older radiomx, they are rebuilt), or
    a response table's sessions are ordered by another declaration than the cohort's now."""
    if not state_path(out).is_file():
        return False
    if not burden_path(out).is_file():
        return True
    if responses_stale(out, cohort, settings):
        return True
    compared = [(compare_path(out, a, b), COMPARE) for a, b in existing_pairs(out)]
    if any(not _as_declared(path, table) for path, table in [(burden_path(out), BURDEN), *compared]):
        return True
    recorded = set(pq.read_table(burden_path(out), columns=["bsa_formula"])["bsa_formula"].to_pylist())
    return bool(recorded - {settings.bsa_formula})


def _as_declared(path: Path, table: Table) -> bool:
    return pq.read_schema(path).remove_metadata().equals(arrow_schema(table))


def refresh_inputs(out: Path, cohort: Path | None = None) -> tuple[Path | None, DeriveSettings]:
    """The cohort and settings a refresh of OUT uses: ``cohort`` when given, else the one the last run recorded
    (``radiomx.store.runlog``), wherever the command runs from. When neither can be read, the settings the last run
    recorded: a derived table is never rebuilt with other settings because of the folder it was refreshed from
    (values read from the inputs, such as ``days_between``, are then kept from the last build: ``compare.py``)."""
    run = last_run(out)
    if cohort is None and run is not None:
        cohort = run.cohort
    recorded = DeriveSettings.from_record(run.derive) if run is not None else DeriveSettings()
    if cohort is not None:  # what the run found the cohort to be (a DICOM export) is kept from its record
        return cohort, replace(settings_for(cohort), export_sessions=recorded.export_sessions)
    return None, recorded


def refresh(out: Path, cohort: Path | None, settings: DeriveSettings,
            add_pair: tuple[str, str] | None = None) -> list[CompareSummary]:
    """Rebuild the derived tables (and the compare table ``add_pair``, new or not); the compare summaries."""
    out = Path(out)
    write_burden(out, settings)
    pairs = existing_pairs(out)
    if add_pair is not None and add_pair not in pairs:
        pairs.append(add_pair)
    summaries = [write_compare(out, a, b, cohort, settings) for a, b in pairs]
    if cohort is not None:  # without the cohort its session declaration is unknown: the tables are kept as built
        write_responses(out, cohort, settings)
    write_patients(out)
    return summaries
