"""Rebuild every derived table of OUT from its stored rows: burden, the compare tables already asked for (by
``radiomx compare``), then the patient table. Each is replaced only when its bytes change."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from radiomx.derive.burden import burden_path, write_burden
from radiomx.derive.compare import CompareSummary, existing_pairs, write_compare
from radiomx.derive.patients import write_patients
from radiomx.derive.settings import DeriveSettings
from radiomx.store.outdir import state_path


def is_stale(out: Path, settings: DeriveSettings) -> bool:
    """True when the derived tables are missing or were built with another BSA formula than the cohort's."""
    if not state_path(out).is_file():
        return False
    if not burden_path(out).is_file():
        return True
    recorded = set(pd.read_parquet(burden_path(out), columns=["bsa_formula"])["bsa_formula"])
    return bool(recorded - {settings.bsa_formula})


def refresh(out: Path, cohort: Path | None, settings: DeriveSettings,
            add_pair: tuple[str, str] | None = None) -> list[CompareSummary]:
    """Rebuild the derived tables (and the compare table ``add_pair``, new or not); the compare summaries."""
    out = Path(out)
    write_burden(out, settings)
    pairs = existing_pairs(out)
    if add_pair is not None and add_pair not in pairs:
        pairs.append(add_pair)
    summaries = [write_compare(out, a, b, cohort, settings) for a, b in pairs]
    write_patients(out)
    return summaries
