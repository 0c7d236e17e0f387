"""Reading the stored rows derive needs: the scan state and a few columns of each tracer's lesion table.

Why only some columns: a feature table holds hundreds to thousands of PyRadiomics columns; the burden needs about
ten, and Parquet reads columns independently. Columns a table lacks (an OUT written before the PET indices
existed) come back as nulls, and the burden row says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from radiomx.store.outdir import state_path
from radiomx.store.tables import LESION_KEY, SCAN_KEY, features_path


def read_state(out: Path) -> pd.DataFrame:
    """OUT/scans.parquet (every column, including those a newer worker adds), sorted by key; empty if absent."""
    path = state_path(out)
    if not path.is_file():
        return pd.DataFrame(columns=SCAN_KEY)
    return pq.read_table(path).to_pandas().sort_values(SCAN_KEY, kind="stable").reset_index(drop=True)


def feature_columns(out: Path, tracer: str) -> list[str]:
    path = features_path(out, tracer)
    return pq.read_schema(path).names if path.is_file() else []


def read_lesions(out: Path, tracer: str, wanted: list[str]) -> tuple[pd.DataFrame, set[str]]:
    """The lesion rows of one tracer with the key columns and those of ``wanted`` the table has (missing ones are
    added as NaN); also the set of wanted columns the table lacks."""
    path = features_path(out, tracer)
    present = set(feature_columns(out, tracer))
    if not present:
        return pd.DataFrame(columns=[*LESION_KEY, *wanted]), set(wanted)
    columns = [*LESION_KEY, *(c for c in wanted if c in present and c not in LESION_KEY)]
    frame = pq.read_table(path, columns=columns).to_pandas()
    missing = {c for c in wanted if c not in present}
    for column in missing:
        frame[column] = np.nan
    return frame, missing


Arrays = dict[str, np.ndarray]


def by_scan(lesions: pd.DataFrame, columns: list[str]) -> dict[tuple[str, str], Arrays]:
    """Lesion rows grouped per (patient_id, session), in lesion_id order, as one float64 array per column (and
    ``lesion_id`` as int64). Why arrays: per-scan pandas indexing costs ~1 ms a call, 600 scans x 10 calls."""
    if not len(lesions):
        return {}
    ordered = lesions.sort_values(["patient_id", "session", "lesion_id"], kind="stable")
    keys = list(zip(ordered["patient_id"].astype(str), ordered["session"].astype(str), strict=True))
    values = {c: ordered[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in columns}
    values["lesion_id"] = ordered["lesion_id"].to_numpy(dtype=np.int64)
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]] + [len(keys)]
    return {keys[a]: {c: v[a:b] for c, v in values.items()} for a, b in zip(starts[:-1], starts[1:], strict=True)}


def no_lesions(columns: list[str]) -> Arrays:
    return {**{c: np.empty(0, dtype=np.float64) for c in columns}, "lesion_id": np.empty(0, dtype=np.int64)}
