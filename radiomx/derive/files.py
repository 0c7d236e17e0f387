"""Writing a derived table: atomically, and only when its bytes change.

Why compare bytes: the derived tables are rebuilt from the stored rows after every extract that changed something;
a table whose content is the same must keep its file (same bytes, same mtime), so that a no-change rerun touches
nothing and a downstream ``make``/DVC step is not retriggered. pyarrow writes identical tables to identical bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.store.atomic import atomic_path
from radiomx.store.schema import float64_arrays

_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}


def schema(spec: str, *more: tuple[str, pa.DataType]) -> pa.Schema:
    """A table schema from ``"name:type name:type ..."`` (types str, int, float), then ``more`` fields in order:
    one readable line per group of columns instead of a tuple per column."""
    fields = [(name, _TYPES[kind]) for name, _, kind in (word.partition(":") for word in spec.split())]
    return pa.schema([*fields, *more])


def typed(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``frame`` as it reads back from its Parquet file (declared types, nulls as NaN/None the way pandas reads)."""
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_pandas()


def to_arrow(frame: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """``frame`` as an Arrow table: with ``schema``, exactly ``Table.from_pandas``; without one, float64 columns go
    straight from numpy (as ``from_pandas`` does them: NaN becomes null), because ``from_pandas`` costs ~0.15 ms a
    column and the patient table carries two PyRadiomics blocks per tracer (over 2,000 columns with filters)."""
    if schema is not None:
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    floats = [c for c, dtype in frame.dtypes.items() if dtype == np.float64]
    if not floats or frame.columns.has_duplicates or not all(isinstance(c, str) for c in frame.columns):
        return pa.Table.from_pandas(frame, preserve_index=False)
    float_names = set(floats)
    others = [c for c in frame.columns if c not in float_names]
    table = pa.Table.from_pandas(frame[others], preserve_index=False)
    columns = dict(zip(table.column_names, table.columns, strict=True))
    columns.update(zip(floats, float64_arrays(frame, floats), strict=True))
    fields = {f.name: f for f in table.schema}
    schema = pa.schema([fields.get(str(c), pa.field(str(c), pa.float64())) for c in frame.columns],
                       metadata=table.schema.metadata)
    return pa.Table.from_arrays([columns[str(c)] for c in frame.columns], schema=schema)


def parquet_bytes(frame: pd.DataFrame, schema: pa.Schema | None = None) -> bytes:
    table = to_arrow(frame, schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_if_changed(path: Path, frame: pd.DataFrame, schema: pa.Schema | None = None) -> bool:
    """Replace ``path`` atomically with ``frame`` unless it already holds exactly these bytes; True if written."""
    data = parquet_bytes(frame, schema)
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True
