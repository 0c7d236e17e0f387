"""Reading the stored rows derive needs: the scan state and a few columns of each tracer's lesion table.

Why only some columns: a feature table holds hundreds to thousands of PyRadiomics columns; the burden needs about
ten, and Parquet reads columns independently. Columns a table lacks (an OUT written before the PET indices
existed) come back as nulls, and the burden row says why. Why Arrow and not pandas: a one-scan run derives its
tables without importing pandas (docs/storage.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import LESION_KEY, SCANS
from radiomx.store.outdir import state_path
from radiomx.store.publish import features_path
from radiomx.store.schema import read_conformed, sort_rows


def read_state(out: Path) -> list[dict]:
    """OUT/scans.parquet as rows sorted by scan key (every declared column: an older file's added ones as null);
    none if absent."""
    path = state_path(out)
    if not path.is_file():
        return []
    return sort_rows(read_conformed(path, SCANS), SCANS).to_pylist()


def feature_columns(out: Path, tracer: str) -> list[str]:
    path = features_path(out, tracer)
    return pq.read_schema(path).names if path.is_file() else []


def read_lesions(out: Path, tracer: str, wanted: list[str]) -> tuple[pa.Table, set[str]]:
    """The lesion rows of one tracer with the key columns and those of ``wanted`` the table has (missing ones are
    added as nulls); also the set of wanted columns the table lacks."""
    path = features_path(out, tracer)
    present = set(feature_columns(out, tracer))
    if not present:
        empty = [pa.array([], pa.string())] * 3 + [pa.array([], pa.int64())]
        empty += [pa.array([], pa.float64()) for c in wanted if c not in LESION_KEY]
        names = [*LESION_KEY, *(c for c in wanted if c not in LESION_KEY)]
        return pa.Table.from_arrays(empty, names=names), set(wanted)
    columns = [*LESION_KEY, *(c for c in wanted if c in present and c not in LESION_KEY)]
    table = pq.read_table(path, columns=columns)
    missing = {c for c in wanted if c not in present}
    for column in sorted(missing):
        table = table.append_column(column, pa.nulls(table.num_rows, pa.float64()))
    return table, missing


Arrays = dict[str, np.ndarray]


def by_scan(lesions: pa.Table, columns: list[str]) -> dict[tuple[str, str], Arrays]:
    """Lesion rows grouped per (patient_id, session), in lesion_id order, as one float64 array per column (nulls as
    NaN, and ``lesion_id`` as int64). Why arrays: the burden of 600 scans x 10 figures stays a few array slices."""
    if not lesions.num_rows:
        return {}
    ordered = lesions.sort_by([("patient_id", "ascending"), ("session", "ascending"), ("lesion_id", "ascending")])
    keys = list(zip(ordered["patient_id"].to_pylist(), ordered["session"].to_pylist(), strict=True))
    values = {c: pc.fill_null(ordered[c].cast(pa.float64()), np.nan).to_numpy() for c in columns}
    values["lesion_id"] = ordered["lesion_id"].to_numpy().astype(np.int64)
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]] + [len(keys)]
    return {keys[a]: {c: v[a:b] for c, v in values.items()} for a, b in zip(starts[:-1], starts[1:], strict=True)}


def no_lesions(columns: list[str]) -> Arrays:
    return {**{c: np.empty(0, dtype=np.float64) for c in columns}, "lesion_id": np.empty(0, dtype=np.int64)}
