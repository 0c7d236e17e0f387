"""The features tables' schema: key columns, the fixed provenance columns, and pandas -> Arrow conversion.

Why apart: the live parts (``parts.py``), the published file (``publish.py``) and the small tables (``tables.py``)
must agree on one schema and one conversion, so both live here and nowhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.errors import ConfigError

SCAN_KEY = ["patient_id", "session", "tracer"]
LESION_KEY = [*SCAN_KEY, "lesion_id"]

#: Fixed columns of every features file (feature columns follow, float64, PyRadiomics names).
FEATURE_FIXED_SCHEMA = pa.schema([
    ("patient_id", pa.string()), ("session", pa.string()), ("tracer", pa.string()), ("lesion_id", pa.int64()),
    ("lesion_name", pa.string()), ("source_label", pa.int64()), ("segment_number", pa.int64()),
    ("roi_number", pa.int64()), ("label_value", pa.int64()), ("component_number", pa.int64()),
    ("voxel_count", pa.int64()), ("params_version", pa.string()),
    ("params_sha256", pa.string()), ("radiomx_version", pa.string()), ("pyradiomics_version", pa.string()),
    ("image_sha256", pa.string()), ("mask_sha256", pa.string()), ("image_file", pa.string()),
    ("mask_file", pa.string()), ("unit", pa.string()), ("extracted_at", pa.timestamp("us", tz="UTC")),
])

#: Fixed columns added after features files were written without them (named, overlapping lesions; read as null in
#: an older file until its scans are recomputed: the feature-logic version bump recomputes them on the next run).
FEATURE_ADDED = frozenset({"lesion_name", "segment_number", "roi_number", "label_value", "component_number"})

FEATURE_COLUMN = re.compile(r"^[A-Za-z0-9.-]+_(shape|shape2D|firstorder|glcm|glrlm|glszm|gldm|ngtdm)_\w+$")

#: Joins the scan key's three strings into one Arrow value (set lookups, grouping); never part of a name or ID.
KEY_SEPARATOR = "\x1f"


def is_feature_column(name: str) -> bool:
    """PyRadiomics feature names: ``<imageType>_<class>_<feature>`` (``wavelet-LLH_glcm_Contrast``)."""
    return bool(FEATURE_COLUMN.match(name))


def check_fixed(table: pa.Table, schema: pa.Schema, path: Path, added: frozenset[str] = frozenset()) -> pa.Table:
    """Refuse a file that lacks one of the fixed columns or has it with another type (not ours, or newer); a
    column in ``added`` (introduced after files were written) may be missing and is then read as null."""
    for fld in schema:
        if fld.name not in table.column_names and fld.name in added:
            table = table.append_column(fld, pa.nulls(len(table), fld.type))
            continue
        if fld.name not in table.column_names:
            raise ConfigError(f"{path}: column {fld.name} missing; this is not a radiomx table (or a newer one)")
        if not table.schema.field(fld.name).type.equals(fld.type):
            raise ConfigError(f"{path}: column {fld.name} is {table.schema.field(fld.name).type}, expected {fld.type}")
    return table


def read_parquet_checked(path: Path, schema: pa.Schema, added: frozenset[str] = frozenset()) -> pd.DataFrame:
    return check_fixed(pq.read_table(path), schema, path, added).to_pandas()


def with_nullable_integers(table: pa.Table) -> pd.DataFrame:
    """``table`` as pandas with its integer columns as pandas' nullable integer types (``Int64``, ...), not the
    float64 pandas makes of an integer column holding a null: ids and counts stay integers through joins, CSV and
    Parquet (a negative scan's ``largest_lesion_id`` is null, the others are ``2``, not ``2.0``)."""
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}
    return table.to_pandas(types_mapper=nullable.get)


def float64_arrays(frame: pd.DataFrame, names: list[str]) -> list[pa.Array]:
    """``frame``'s columns ``names`` as float64 Arrow arrays, through one numpy block: NaN becomes null exactly as
    ``Table.from_pandas`` does it, at a fraction of its ~0.15 ms per column (feature tables, the patient table)."""
    block = np.ascontiguousarray(frame[names].to_numpy(dtype=np.float64, na_value=np.nan).T)
    return [pa.array(values, from_pandas=True) for values in block]


def to_table(frame: pd.DataFrame, schema: pa.Schema, extra_float: bool) -> pa.Table:
    """Fixed columns get their declared type; with ``extra_float`` feature columns are float64 and other extra
    columns (SUV inputs) keep their inferred type.

    Feature columns (hundreds to thousands with filters) go to Arrow as one float64 block, column by column from
    numpy: ``Table.from_pandas`` spends ~0.15 ms per column, most of a commit's time. NaN becomes null exactly as
    ``from_pandas`` does it (``tests/test_incremental.py`` compares both)."""
    fields = list(schema)
    features: list[str] = []
    if extra_float:
        extra = [c for c in frame.columns if c not in schema.names]
        features = [c for c in extra if is_feature_column(c)]
        inferred = [c for c in extra if not is_feature_column(c)]
        if inferred:  # one inference for all of them: ~1 ms per call, and a lesion row has dozens (indices, SUV)
            fields.extend(pa.Schema.from_pandas(frame[inferred], preserve_index=False))
    others = pa.schema(fields)
    table = pa.Table.from_pandas(frame.reindex(columns=others.names), schema=others, preserve_index=False)
    if not features:
        return table
    columns = table.columns + float64_arrays(frame, features)
    return pa.Table.from_arrays(columns, schema=pa.schema(list(others) + [pa.field(c, pa.float64()) for c in features]))


def key_strings(table: pa.Table) -> pa.ChunkedArray:
    """One string per row naming its scan (patient, session, tracer), for ``is_in`` filters and grouping."""
    return pc.binary_join_element_wise(*(table[c] for c in SCAN_KEY), KEY_SEPARATOR)


def scan_tuples(table: pa.Table) -> list[tuple[str, str, str]]:
    """The scan key of every row, as Python tuples (sorted the same way as the strings in Arrow)."""
    return list(zip(*(table[c].to_pylist() for c in SCAN_KEY), strict=True))


def join_key(key: tuple[str, str, str]) -> str:
    return KEY_SEPARATOR.join(key)


def split_key(text: str) -> tuple[str, str, str]:
    patient_id, session, tracer = text.split(KEY_SEPARATOR)
    return patient_id, session, tracer


def sort_lesions(table: pa.Table) -> pa.Table:
    """Rows in key order (code-point order of the strings, as pandas and Python compare them)."""
    return table.sort_by([(c, "ascending") for c in LESION_KEY])
