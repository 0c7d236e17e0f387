"""Publishing: the live parts of a tracer streamed into ``OUT/features/<tracer>.parquet``, once per run.

Why a published file at all: reading Parquet costs ~0.1-0.3 ms per (row group x column chunk), so 313 parts of
1,150 columns read in ~36 s where one file with large row groups reads in ~2-3 s (docs/storage.md). Readers keep
one call on one path (``pd.read_parquet("OUT/features/<tracer>.parquet")``, pyarrow, DuckDB, R arrow), and the
file is "as of the end of the last run": ``api.extract`` publishes when a run committed something, and the next
run (or ``radiomx publish``) does it when a killed run left the parts newer than the file.

Rows come out globally sorted by lesion key through a merge over the parts driven by the index; memory is one row
group (``ROW_GROUP_BYTES``) plus the parts still holding keys ahead of the merge (a few when scans were committed
in about key order, as discovery yields them; up to all of them if they arrived in random order). Staleness is
exact, not mtime-based: the file carries the generation token of the commit it was built from.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.columns import FEATURES
from radiomx.store.atomic import atomic_path, fault_point
from radiomx.store.parts import GENERATION, ScanTuple, TracerParts
from radiomx.store.schema import FEATURE_FIXED_SCHEMA, join_key, key_strings, older_column

#: Buffered bytes per row group of the published file (float64 columns x rows): ~14,000 rows at 1,150 columns,
#: the whole table up to ~140,000 rows without filters. benchmarks/RESULTS-store.md measures other budgets.
ROW_GROUP_BYTES = 128 * 2**20


def features_path(out: Path, tracer: str) -> Path:
    return Path(out) / "features" / f"{tracer}.parquet"


def published_generation(path: Path) -> str | None:
    meta = pq.read_schema(path).metadata or {}
    return meta.get(GENERATION, b"").decode() or None


def is_stale(out: Path, tracer: str) -> bool:
    """True when the parts hold commits the published file does not (a run was killed before publishing, or the
    OUT was just migrated). An OUT written before parts existed has no parts and is never stale."""
    parts = TracerParts(out, tracer)
    if not parts.exists():
        return False
    published = features_path(out, tracer)
    return not published.exists() or published_generation(published) != parts.generation()


def _unified_schema(parts: TracerParts, names: set[str]) -> pa.Schema:
    """One schema for all parts: fixed columns first, then the others in order of first appearance; a column
    missing from a part is null there (a declared one added since: what older files read, ``schema.older_column``),
    and types widen as ``pa.concat_tables(promote_options="permissive")`` does (int64 with float64 -> float64,
    all-null -> the other type)."""
    schemas = [pq.read_schema(parts.folder / n).remove_metadata() for n in sorted(names)
               if (parts.folder / n).exists()]
    return pa.unify_schemas([FEATURE_FIXED_SCHEMA, *schemas], promote_options="permissive")


def _align(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.remove_metadata().equals(schema):
        return table.replace_schema_metadata(None)
    have = set(table.column_names)
    columns = [(table[f.name] if table.schema.field(f.name).type.equals(f.type) else table[f.name].cast(f.type))
               if f.name in have else older_column(f, table.num_rows, FEATURES) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _load(path: Path, schema: pa.Schema) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """A part aligned to the published schema, and where each scan's rows are (parts are sorted by key, so a
    scan's rows are contiguous). A part the index names but that is absent (a kill right after the index was
    written) holds nothing."""
    if not path.exists():
        return schema.empty_table(), {}
    table = _align(pq.read_table(path), schema)
    spans: dict[str, tuple[int, int]] = {}
    previous, start = None, 0
    for row, text in enumerate([*key_strings(table).to_pylist(), None]):
        if text != previous:
            if previous is not None:
                spans[previous] = (start, row - start)
            previous, start = text, row
    return table, spans


def sorted_row_groups(parts: TracerParts, index: dict[ScanTuple, str], schema: pa.Schema,
                      rows_per_group: int) -> Iterator[pa.Table]:
    """The rows of the scans in ``index``, in key order, as tables of about ``rows_per_group`` rows. Only rows of
    a scan from the part the index maps it to are taken, so no key can come out twice."""
    remaining = Counter(index.values())
    cache: dict[str, tuple[pa.Table, dict[str, tuple[int, int]]]] = {}
    segments: list[list] = []  # [part, start, length], merged while a part's rows are contiguous
    finished: list[str] = []
    pending = 0

    def assemble() -> pa.Table:
        return pa.concat_tables([cache[p][0].slice(s, n) for p, s, n in segments]) if segments else \
            schema.empty_table()

    for key in sorted(index):
        part = index[key]
        if part not in cache:
            cache[part] = _load(parts.folder / part, schema)
        span = cache[part][1].get(join_key(key))
        remaining[part] -= 1
        if remaining[part] == 0:
            finished.append(part)
        if span is not None:
            last = segments[-1] if segments else None
            if last is not None and last[0] == part and last[1] + last[2] == span[0]:
                last[2] += span[1]
            else:
                segments.append([part, *span])
            pending += span[1]
        if pending >= rows_per_group:
            yield assemble()
            segments, pending = [], 0
            for done in finished:
                cache.pop(done, None)
            finished = []
    if pending:
        yield assemble()


def _rows_per_group(schema: pa.Schema, row_group_bytes: int) -> int:
    return max(1024, row_group_bytes // (8 * len(schema)))


def live_table(out: Path, tracer: str) -> pa.Table:
    """The parts as one table in key order (what the next publish will write), for readers of a stale OUT."""
    parts = TracerParts(out, tracer)
    index = parts.load_index()
    schema = _unified_schema(parts, set(index.values()))
    groups = list(sorted_row_groups(parts, index, schema, rows_per_group=2**62))
    return pa.concat_tables(groups) if groups else schema.empty_table()


def publish(out: Path, tracer: str, row_group_bytes: int = ROW_GROUP_BYTES) -> None:
    """Rewrite ``features/<tracer>.parquet`` from the parts (call it holding the lock): streamed row group by
    row group with ``pq.ParquetWriter``, fsynced and renamed into place, so a kill leaves the previous file."""
    parts = TracerParts(out, tracer)
    index = parts.load_index()
    generation = parts.generation()
    if generation is None:  # index rebuilt from the parts (killed migration): record it first
        generation = uuid.uuid4().hex
        parts.save_index(index, generation)
    schema = _unified_schema(parts, set(index.values()))
    rows = _rows_per_group(schema, row_group_bytes)
    with atomic_path(features_path(out, tracer)) as tmp:
        with pq.ParquetWriter(tmp, schema.with_metadata({GENERATION: generation.encode()})) as writer:
            for number, group in enumerate(sorted_row_groups(parts, index, schema, rows)):
                writer.write_table(group, row_group_size=max(1, group.num_rows))
                if number == 0:
                    fault_point("publish")
