"""The incremental header index of a DICOM export: every file's kind and header summary, re-read only when its stat
signature (size, mtime) changed.

Why an index: an export is thousands of files named by UID or number, in any folders, with no suffix. Reading
every header each night costs about a millisecond a file (a minute for 50,000 files); stating them costs
microseconds. So ``refresh`` walks the export, compares each file's size and mtime with the index, reads only new
or changed files (headers, ``dicom_headers.summarize``), drops deleted ones and commits. Measured:
``benchmarks/bench_dicom_index.py`` (docs/layouts.md quotes it).

Where: ``OUT/.dicom-index.sqlite`` when the run has an output folder (SQLite, from the standard library: one
transaction per refresh, so a killed run leaves the last good index; rows are upserted and deleted by key, so a
nightly rerun writes only what changed), else in memory (``radiomx scan EXPORT`` without ``-o``). Files are keyed
by the SHA-256 of their path relative to the export, never the path itself: exports name files by SOP Instance
UID, and OUT holds no UID. The walk supplies the paths again on every run.

Walking: any depth; symlinked folders are followed once (a loop is cut where it closes); folders and files whose
names start with "." are skipped as non-DICOM (counted), and so is OUT when it lies inside the export.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radiomx.discover.dicom_headers import NONDICOM, summarize
from radiomx.discover.export_walk import walk

#: Bump when ``dicom_headers`` keeps other values: an index of another version is rebuilt from scratch.
INDEX_VERSION = 1
INDEX_NAME = ".dicom-index.sqlite"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
           "kind TEXT NOT NULL, problem TEXT NOT NULL, header TEXT NOT NULL)")


@dataclass(frozen=True)
class IndexedFile:
    """One file of the export as the index knows it (``path`` is in memory only, never stored)."""

    path: Path
    relative: str
    kind: str
    header: dict[str, Any]
    problem: str


@dataclass
class IndexSummary:
    """What one refresh saw, for the run's summary line."""

    files: int = 0
    read: int = 0
    dropped: int = 0
    kinds: Counter = field(default_factory=Counter)

    def line(self) -> str:
        k = self.kinds
        parts = [f"{self.files} files", f"{self.read} read (new or changed)", f"{self.dropped} gone"]
        parts.append(f"{k['image']} PET/CT images, {k['seg'] + k['rtstruct']} SEG/RTSTRUCT")
        if k["other"] or k["dicomdir"]:
            parts.append(f"{k['other'] + k['dicomdir']} other DICOM (DICOMDIR, secondary captures, reports, ...)")
        parts.append(f"{k['nondicom']} non-DICOM skipped")
        if k["unreadable"]:
            parts.append(f"{k['unreadable']} unreadable")
        return "index: " + ", ".join(parts)


def path_key(relative: str) -> str:
    return hashlib.sha256(relative.encode("utf-8", "surrogateescape")).hexdigest()


class HeaderIndex:
    """The index of one export, in ``OUT/.dicom-index.sqlite`` or (``folder`` None) in memory."""

    def __init__(self, folder: Path | None) -> None:
        self.path = Path(folder) / INDEX_NAME if folder is not None else None
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=30)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version != INDEX_VERSION:
            with self._db:
                self._db.execute("DROP TABLE IF EXISTS files")
                self._db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HeaderIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self, root: Path, exclude: Path | None = None) -> tuple[list[IndexedFile], IndexSummary]:
        """Every file of the export as of now; headers read only where size or mtime moved. One transaction."""
        stored = {key: (size, mtime, kind, problem, header) for key, size, mtime, kind, problem, header
                  in self._db.execute("SELECT key, size, mtime_ns, kind, problem, header FROM files")}
        summary, files, changed = IndexSummary(), [], []
        present = set()
        for path, relative, size, mtime in walk(root, exclude):
            key = path_key(relative)
            present.add(key)
            old = stored.get(key)
            if old is not None and old[:2] == (size, mtime):
                kind, problem, header = old[2], old[3], json.loads(old[4])
            else:
                kind, header, problem = (NONDICOM, {}, "") if path.name.startswith(".") else summarize(path)
                changed.append((key, size, mtime, kind, problem, json.dumps(header, separators=(",", ":"))))
            summary.kinds[kind] += 1
            files.append(IndexedFile(path, relative, kind, header, problem))
        gone = [(key,) for key in stored if key not in present]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", changed)
            self._db.executemany("DELETE FROM files WHERE key = ?", gone)
        summary.files, summary.read, summary.dropped = len(files), len(changed), len(gone)
        return files, summary
