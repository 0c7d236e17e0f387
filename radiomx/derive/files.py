"""Where the derived tables live, and writing one: atomically, and only when its bytes change.

Why compare bytes: the derived tables are rebuilt from the stored rows after every extract that changed something;
a table whose content is the same must keep its file (same bytes, same mtime), so that a no-change rerun touches
nothing and a downstream ``make``/DVC step is not retriggered. pyarrow writes identical tables to identical bytes.
Their schemas are declared with every other table's (``radiomx.columns``).
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.store.atomic import atomic_path


def pairs_path(out: Path, a: str, b: str) -> Path:
    return Path(out) / "compare" / f"{a}_vs_{b}.lesions.parquet"


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_if_changed(path: Path, table: pa.Table) -> bool:
    """Replace ``path`` atomically with ``table`` unless it already holds exactly these bytes; True if written."""
    data = parquet_bytes(table)
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True
