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
by a keyed digest of their path relative to the export, never the path itself: exports name files by SOP Instance
UID, and OUT holds no UID. The walk supplies the paths again on every run.

The secret: every digest the index keeps (paths, PatientIDs, UIDs; ``dicom_headers.Digest``) is an HMAC-SHA256
under 32 random bytes made when the index is first created and kept in it (table ``secret``, which a version bump
does not drop). So digests, and the ``unmapped-...`` keys made from them, are stable between runs on one OUT, yet
nobody holding the hospital's ID list can find a patient in OUT by hashing IDs. An index in memory has a secret of
its own run.

Walking: any depth; symlinked folders are followed once (a loop is cut where it closes); folders and files whose
names start with "." are skipped as non-DICOM (counted), and so is OUT when it lies inside the export.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radiomx.discover.dicom_headers import NONDICOM, Digest, summarize
from radiomx.discover.export_walk import walk

#: Bump when ``dicom_headers`` keeps other values: an index of another version is rebuilt from scratch.
#: 2: digests are keyed (HMAC-SHA256 with the index's secret); version 1 kept plain SHA-256 digests.
#: 3: a SEG's ``organ_seg`` (all its segments name organ classes).
#: 4: free text (Series Description, the radiopharmaceutical's name and code meanings) kept redacted; an image
#: without its Modality is a damaged image (not "other"), a file without its Study Instance UID unreadable.
INDEX_VERSION = 4
INDEX_NAME = ".dicom-index.sqlite"
#: Header values every file's linking needs, kept in columns: the rest (``header``) is JSON, decoded only for the
#: files that need it (a series' first file, masks), so a no-change rerun over 50,000 files decodes few.
HOT = ("patient", "study", "series", "sop", "syntax")
_SCHEMA = ("CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
           "kind TEXT NOT NULL, problem TEXT NOT NULL, patient TEXT, study TEXT, series TEXT, sop TEXT, syntax TEXT, "
           "header TEXT NOT NULL)")
_SECRET_SCHEMA = "CREATE TABLE IF NOT EXISTS secret (value BLOB NOT NULL)"


class IndexedFile:
    """One file of the export as the index knows it (``location`` is in memory only, never stored)."""

    __slots__ = ("location", "relative", "kind", "problem", *HOT, "_raw", "_header")

    def __init__(self, location: str, relative: str, kind: str, problem: str, hot: tuple, raw: str) -> None:
        self.location, self.relative, self.kind, self.problem = location, relative, kind, problem
        self.patient, self.study, self.series, self.sop, self.syntax = (v or "" for v in hot)
        self._raw, self._header = raw, None

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def header(self) -> dict[str, Any]:
        """Every header value the index keeps for this file (``dicom_headers``)."""
        if self._header is None:
            self._header = json.loads(self._raw)
        return self._header


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
            self._db.execute("VACUUM")  # a dropped table's pages stay in the file until vacuumed (older digests)
        self._db.execute(_SCHEMA)
        secret = self._secret()
        #: Identifiers (80 bits: linking only needs them distinct) and file keys (the whole HMAC).
        self.digest, self._path_key = Digest(secret), Digest(secret, length=64)

    def _secret(self) -> bytes:
        """The index's HMAC secret, made on first use and kept with the index."""
        with self._db:
            self._db.execute(_SECRET_SCHEMA)
            row = self._db.execute("SELECT value FROM secret").fetchone()
            if row is None:
                row = (secrets.token_bytes(32),)
                self._db.execute("INSERT INTO secret VALUES (?)", row)
        return bytes(row[0])

    def close(self) -> None:
        self._db.close()

    def image(self) -> bytes:
        """The whole index as bytes (``save_index`` writes them into an OUT created after discovery)."""
        return self._db.serialize()

    def __enter__(self) -> HeaderIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self, root: Path, exclude: Path | None = None) -> tuple[list[IndexedFile], IndexSummary]:
        """Every file of the export as of now; headers read only where size or mtime moved. One transaction."""
        stored = {row[0]: row[1:] for row in self._db.execute(
            "SELECT key, size, mtime_ns, kind, problem, patient, study, series, sop, syntax, header FROM files")}
        summary, rows, to_read = IndexSummary(), [], []
        present = set()
        for location, relative, size, mtime in walk(root, exclude):
            key = self._path_key(relative)
            present.add(key)
            old = stored.get(key)
            if old is not None and old[:2] == (size, mtime):
                rows.append((location, relative, old[2], old[3], old[4:9], old[9]))
            else:
                to_read.append((len(rows), key, location, relative, size, mtime))
                rows.append(None)
        changed = []
        read = _read_headers([t[2] for t in to_read], self.digest)
        for (at, key, location, relative, size, mtime), (kind, header, problem) in zip(to_read, read, strict=True):
            raw = json.dumps(header, separators=(",", ":"))
            hot = tuple(str(header.get(name) or "") for name in HOT)
            changed.append((key, size, mtime, kind, problem, *hot, raw))
            rows[at] = (location, relative, kind, problem, hot, raw)
        files = [IndexedFile(*row) for row in rows]  # type: ignore[misc]
        for file in files:
            summary.kinds[file.kind] += 1
        gone = [(key,) for key in stored if key not in present]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", changed)
            self._db.executemany("DELETE FROM files WHERE key = ?", gone)
        summary.files, summary.read, summary.dropped = len(files), len(changed), len(gone)
        return files, summary


def save_index(folder: Path, image: bytes) -> None:
    """Write an index built in memory (a first run: OUT did not exist while the export was discovered) into
    ``folder``, atomically, so that the next run reads only what changes."""
    target = Path(folder) / INDEX_NAME
    temporary = target.with_name(f".{INDEX_NAME}.tmp-{os.getpid()}")
    temporary.write_bytes(image)
    os.replace(temporary, target)


def _summarize(location: str, digest: Digest) -> tuple[str, dict[str, Any], str]:
    return (NONDICOM, {}, "") if os.path.basename(location).startswith(".") else summarize(Path(location), digest)


def _read_headers(locations: list[str], digest: Digest) -> list[tuple[str, dict[str, Any], str]]:
    """``summarize`` of each file, in order, in this process. (A pool of 2 processes gave no measurable gain on the
    loaded 2-core machine of benchmarks/bench_dicom_index.py, so none is kept.)"""
    return [_summarize(location, digest) for location in locations]
