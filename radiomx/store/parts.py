"""The live view of one tracer's features: bounded Parquet parts, upserted by scan key, one atomic replace each.

Layout (internal; readers use the published ``features/<tracer>.parquet``, see ``publish.py``)::

    OUT/.parts/<tracer>/part-000000.parquet   at most PART_SCANS scans each, rows sorted by lesion key
    OUT/.parts/<tracer>.index.parquet         scan key -> part name, and the generation of the last commit

Why parts: rewriting the whole table per commit made a run cost grow with the square of the cohort (37 s per
16-scan commit at 20,000 scans, 4 GiB of writer memory). A commit here rewrites only the part(s) that hold the
batch's recomputed scans plus the newest part, so its cost and memory depend on the batch, not on the table.

Why the index is written FIRST in a commit: it is the only place a scan is assigned to a part, and an assignment
never changes while the scan exists. So the invariant "a row in part P belongs to a scan the index maps to P"
holds after a SIGKILL at any instant: a kill after the index and before the part leaves an assignment with no rows
yet (harmless: the scan is not "done" in scans.parquet, the rerun writes it into that same part). A key therefore
never appears in two parts. A missing index (first run after a migration was killed, or deleted by hand) is
rebuilt from the parts' key columns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import FEATURES
from radiomx.errors import ConfigError
from radiomx.store.atomic import atomic_path, fault_point, fsync_dir
from radiomx.store.schema import (
    SCAN_KEY,
    join_key,
    key_strings,
    scan_tuples,
    sort_lesions,
    split_key,
    with_added_columns,
)

#: Scans per part. 64 keeps an upsert of 4 scattered scans + 12 new ones at ~0.5 s with 1,130 feature columns
#: (256 doubled it, docs/storage.md); smaller parts would only make the publish step read more files.
PART_SCANS = 64
PARTS_DIR = ".parts"
GENERATION = b"radiomx.generation"

ScanTuple = tuple[str, str, str]


def parts_root(out: Path) -> Path:
    return Path(out) / PARTS_DIR


def _part_number(name: str) -> int:
    return int(name[len("part-"):-len(".parquet")])


def _part_name(number: int) -> str:
    return f"part-{number:06d}.parquet"


class TracerParts:
    """One tracer's parts and index. Only the lock holder calls the writing methods."""

    def __init__(self, out: Path, tracer: str) -> None:
        self.out = Path(out)
        self.tracer = tracer
        self.folder = parts_root(out) / tracer
        self.index_path = parts_root(out) / f"{tracer}.index.parquet"

    # ------------------------------------------------------------------------------------------------ reading
    def exists(self) -> bool:
        return self.index_path.exists() or self.folder.is_dir()

    def generation(self) -> str | None:
        """The token of the last commit (None without an index): the published file is current iff it has it."""
        if not self.index_path.exists():
            return None
        meta = pq.read_schema(self.index_path).metadata or {}
        return meta.get(GENERATION, b"").decode() or None

    def part_files(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def load_index(self) -> dict[ScanTuple, str]:
        if self.index_path.exists():
            table = pq.read_table(self.index_path)
            return dict(zip(scan_tuples(table), table["part"].to_pylist(), strict=True))
        return self._rebuild_index()

    def _rebuild_index(self) -> dict[ScanTuple, str]:
        index: dict[ScanTuple, str] = {}
        for path in self.part_files():
            keys = pq.read_table(path, columns=SCAN_KEY).group_by(SCAN_KEY).aggregate([])
            for key in scan_tuples(keys):
                if key in index:
                    raise ConfigError(f"{path}: scan {'/'.join(key)} is also in {index[key]}; the parts folder "
                                      "was edited by hand: delete OUT/.parts and rerun with --force")
                index[key] = path.name
        return index

    # ------------------------------------------------------------------------------------------------ writing
    def save_index(self, index: dict[ScanTuple, str], generation: str) -> None:
        keys = sorted(index)
        columns = {c: pa.array([k[i] for k in keys], pa.string()) for i, c in enumerate(SCAN_KEY)}
        columns["part"] = pa.array([index[k] for k in keys], pa.string())
        table = pa.table(columns).replace_schema_metadata({GENERATION: generation.encode()})
        with atomic_path(self.index_path) as tmp:
            pq.write_table(table, tmp)

    def upsert(self, replaced: Iterable[ScanTuple], rows: pa.Table | None) -> None:
        """Replace every row of the ``replaced`` scans by ``rows`` (the batch's rows of this tracer; scans of
        ``replaced`` without rows disappear). Index first, then each touched part, then the index again only if
        scans disappeared."""
        index = self.load_index()
        row_keys = key_strings(rows) if rows is not None and rows.num_rows else None
        with_rows = set() if row_keys is None else set(pc.unique(row_keys).to_pylist())
        replaced = {join_key(k): k for k in replaced}
        for text in with_rows - set(replaced):
            replaced[text] = split_key(text)
        if not with_rows and not any(key in index for key in replaced.values()):
            return  # nothing stored, nothing to store (a scan that failed before any row): no file appears
        self._assign([replaced[t] for t in sorted(with_rows) if replaced[t] not in index], index)
        generation = uuid.uuid4().hex
        self.save_index(index, generation)
        fault_point("between-parts")
        by_part: dict[str, list[str]] = {}
        for text, key in replaced.items():
            if key in index:
                by_part.setdefault(index[key], []).append(text)
        for part, texts in sorted(by_part.items()):
            self._rewrite(part, texts, rows, row_keys)
        gone = [key for text, key in replaced.items() if text not in with_rows and key in index]
        if gone:
            for key in gone:
                del index[key]
            self.save_index(index, generation)

    def _assign(self, new_keys: list[ScanTuple], index: dict[ScanTuple, str]) -> None:
        """New scans fill the newest part up to PART_SCANS, then start the next one (keys sorted within a batch,
        so parts follow discovery order and the publish merge holds few parts open at once)."""
        counts = Counter(index.values())
        names = set(counts) | {p.name for p in self.part_files()}
        tail = max(names, key=_part_number, default=None)
        for key in sorted(new_keys):
            if tail is None or counts[tail] >= PART_SCANS:
                tail = _part_name(0 if tail is None else _part_number(tail) + 1)
            counts[tail] += 1
            index[key] = tail

    def _rewrite(self, part: str, texts: list[str], rows: pa.Table | None, row_keys) -> None:
        path = self.folder / part
        pieces = []
        if path.exists():
            old = with_added_columns(pq.read_table(path), FEATURES)  # "" where an older radiomx wrote no column
            pieces.append(old.filter(pc.invert(pc.is_in(key_strings(old), pa.array(texts)))))
        if row_keys is not None:
            pieces.append(rows.filter(pc.is_in(row_keys, pa.array(texts))))
        pieces = [p for p in pieces if p.num_rows]
        if not pieces:
            if path.exists():
                path.unlink()
                fsync_dir(self.folder)
            return
        table = pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 else pieces[0]
        with atomic_path(path) as tmp:
            pq.write_table(sort_lesions(table).replace_schema_metadata(None), tmp)

    def migrate_from(self, published: Path) -> None:
        """Split a features file written before parts existed into parts, atomically: the parts are written into
        a temporary folder that is renamed into place in one step, then the index. Memory: the old file once
        (the old store held about four times that on every commit)."""
        table = pq.read_table(published).replace_schema_metadata(None)
        order = sorted(set(scan_tuples(table)))
        texts = key_strings(table)
        tmp = self.folder.with_name(f".{self.tracer}.tmp-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        index: dict[ScanTuple, str] = {}
        for start in range(0, len(order), PART_SCANS):
            chunk = order[start:start + PART_SCANS]
            name = _part_name(start // PART_SCANS)
            index.update(dict.fromkeys(chunk, name))
            piece = table.filter(pc.is_in(texts, pa.array([join_key(k) for k in chunk])))
            pq.write_table(sort_lesions(piece), tmp / name)
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        fault_point("migrate-rename")
        os.replace(tmp, self.folder)
        fsync_dir(self.folder.parent)
        self.save_index(index, uuid.uuid4().hex)
