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
