"""The tables' declarations (``radiomx.columns``) as Arrow: schemas, rows -> Arrow, and files an older radiomx wrote.

Why apart: the live parts (``parts.py``), the published file (``publish.py``), the small tables (``tables.py``) and the
derived tables (``radiomx.derive``) must agree on one schema and one conversion, so both live here and nowhere else.
Why no pandas: rows go straight to Arrow, typed by the declaration, with no DataFrame built per commit; only the
readers that return DataFrames import pandas. (pyarrow itself still imports it when installed: docs/storage.md.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import BOOL, FEATURES, FLOAT, INT, STR, TIME, Table
from radiomx.columns import LESION_KEY as _LESION_KEY
from radiomx.columns import SCAN_KEY as _SCAN_KEY
from radiomx.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

#: Lists, as pandas indexing wants them (``frame[SCAN_KEY]``).
SCAN_KEY = list(_SCAN_KEY)
LESION_KEY = list(_LESION_KEY)

_ARROW = {STR: pa.string(), INT: pa.int64(), FLOAT: pa.float64(), TIME: pa.timestamp("us", tz="UTC"),
          BOOL: pa.bool_()}

FEATURE_COLUMN = re.compile(r"^[A-Za-z0-9.-]+_(shape|shape2D|firstorder|glcm|glrlm|glszm|gldm|ngtdm)_\w+$")

#: Types a file may hold for a declared one when the values are the same, as a table edited with pandas
#: (``read_parquet``, ``to_parquet``) has them: pandas 3 writes text as ``large_string``, and an integer column
#: holding a null as float64 (read back only if every value is a whole number).
_SAME_VALUES = {(pa.large_string(), pa.string()), (pa.float64(), pa.int64())}

#: Joins the scan key's three strings into one Arrow value (set lookups, grouping); never part of a name or ID.
KEY_SEPARATOR = "\x1f"


@functools.cache
def arrow_schema(table: Table) -> pa.Schema:
    """The declared columns of ``table`` as an Arrow schema (an open table's other columns follow them)."""
    return pa.schema([(c.name, _ARROW[c.type]) for c in table.columns])


#: Fixed columns of every features file (feature columns follow, float64, PyRadiomics names).
FEATURE_FIXED_SCHEMA = arrow_schema(FEATURES)


def is_feature_column(name: str) -> bool:
    """PyRadiomics feature names: ``<imageType>_<class>_<feature>`` (``wavelet-LLH_glcm_Contrast``)."""
    return bool(FEATURE_COLUMN.match(name))


def conform(data: pa.Table, table: Table, path: Path) -> pa.Table:
    """``data`` read from ``path`` with every declared column: a column added since an older radiomx wrote the file
    is filled with what the declaration says such files read it as (null, or ""); a column missing otherwise, or with
    another type, refuses the file (not ours, or written by a newer radiomx). This is the one migration of older
    files: the next commit writes them back with every column."""
    for position, fld in enumerate(arrow_schema(table)):
        if fld.name in data.column_names:
            found = data.schema.field(fld.name).type
            if found.equals(fld.type):
                continue
            index = data.schema.get_field_index(fld.name)
            try:
                if (found, fld.type) not in _SAME_VALUES:
                    raise pa.ArrowInvalid(found)
                data = data.set_column(index, fld, data.column(index).cast(fld.type))  # safe: no value changes
            except pa.ArrowInvalid:
                raise ConfigError(f"{path}: column {fld.name} is {found}, expected {fld.type}") from None
            continue
        if fld.name not in table.added:
            raise ConfigError(f"{path}: column {fld.name} missing; this is not a radiomx table (or a newer one)")
        data = data.add_column(min(position, data.num_columns), fld, older_column(fld, len(data), table))
    return data


def with_added_columns(data: pa.Table, table: Table) -> pa.Table:
    """``data`` (an older part) with every column ``table`` added since that it lacks, as older files read it (its
    place and the other columns' types are left to ``conform`` when the table is read)."""
    schema = arrow_schema(table)
    for name in table.added:
        if name not in data.column_names:
            data = data.append_column(schema.field(name), older_column(schema.field(name), data.num_rows, table))
    return data


def older_column(fld: pa.Field, rows: int, table: Table) -> pa.Array:
    """What ``rows`` rows of a file written without the column ``fld`` read in it: the declaration's ``older`` for a
    column added since (null, or ""), null for any other."""
    older = table.added.get(fld.name)
    return pa.nulls(rows, fld.type) if older is None else pa.array([older] * rows, fld.type)


def read_conformed(path: Path, table: Table) -> pa.Table:
    """A bookkeeping or derived table's file, conformed to its declaration (``conform``)."""
    return conform(pq.read_table(path), table, path)


def _column(values: list[Any], name: str) -> pa.Array:
    """A column that is not declared, typed as pandas' ``DataFrame(rows)`` then ``Table.from_pandas`` typed it (the
    store's conversion before it dropped pandas, and so what older parts hold): PyRadiomics features float64;
    numbers as float64 or int64, an integer column holding a null and a column of NaN alone as float64 (pandas has no
    null in int64); text, flags and columns of None alone as inferred. NaN is null."""
    if is_feature_column(name):
        return pa.array(values, pa.float64(), from_pandas=True)
    array = pa.array(values, from_pandas=True)
    if pa.types.is_null(array.type) and any(isinstance(v, float) for v in values):  # NaN only: a float column
        return pa.nulls(len(values), pa.float64())
    if pa.types.is_floating(array.type) or (pa.types.is_integer(array.type) and array.null_count):
        return array.cast(pa.float64())
    if pa.types.is_integer(array.type):
        return array.cast(pa.int64())
    return array


def arrow_rows(rows: Sequence[dict[str, Any]], table: Table) -> pa.Table:
    """Rows as an Arrow table: the declared columns first, with their types; for an open table, then the other
    columns in order of first appearance, text and the other indices before the PyRadiomics features. A declared
    column a row lacks is null; NaN is null, as in every file the store ever wrote."""
    schema = arrow_schema(table)
    arrays = [pa.array([row.get(f.name) for row in rows], f.type, from_pandas=True) for f in schema]
    fields = list(schema)
    if table.open:
        declared = set(schema.names)
        extra = [n for n in dict.fromkeys(k for row in rows for k in row) if n not in declared]
        for name in sorted(extra, key=is_feature_column):  # stable: features last, each group in its own order
            array = _column([row.get(name) for row in rows], name)
            arrays.append(array)
            fields.append(pa.field(name, array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def sort_rows(data: pa.Table, table: Table) -> pa.Table:
    """Rows in the table's declared order (code-point order of the strings, as pandas and Python compare them;
    nulls, as a scan's failure without a lesion has, last); a table kept in append order is returned as it is."""
    if not table.order:
        return data
    return data.sort_by([(c, "ascending") for c in table.order])


def sort_lesions(data: pa.Table) -> pa.Table:
    return sort_rows(data, FEATURES)


def key_strings(data: pa.Table) -> pa.ChunkedArray:
    """One string per row naming its scan (patient, session, tracer), for ``is_in`` filters and grouping."""
    return pc.binary_join_element_wise(*(data[c] for c in SCAN_KEY), KEY_SEPARATOR)


def scan_tuples(data: pa.Table) -> list[tuple[str, str, str]]:
    """The scan key of every row, as Python tuples (sorted the same way as the strings in Arrow)."""
    return list(zip(*(data[c].to_pylist() for c in SCAN_KEY), strict=True))


def join_key(key: Iterable[str]) -> str:
    return KEY_SEPARATOR.join(key)


def split_key(text: str) -> tuple[str, str, str]:
    patient_id, session, tracer = text.split(KEY_SEPARATOR)
    return patient_id, session, tracer


def with_nullable_integers(data: pa.Table) -> pd.DataFrame:
    """``data`` as pandas with its integer columns as pandas' nullable integer types (``Int64``, ...), not the
    float64 pandas makes of an integer column holding a null: ids and counts stay integers through joins, CSV and
    Parquet (a negative scan's ``largest_lesion_id`` is null, the others are ``2``, not ``2.0``)."""
    import pandas as pd

    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}
    return data.to_pandas(types_mapper=nullable.get)
