"""Cheap and exact fingerprints of a scan's inputs.

Why two: a nightly rerun over hundreds of scans must decide "unchanged" in seconds, so it compares size and
mtime first (``stat_signature``) and hashes content (``content_sha256``) only when those moved. Touching a file
therefore costs one hash and recomputes nothing; changing its bytes recomputes exactly that scan.
A DICOM series (a folder, or the explicit files of one series in an export) is fingerprinted over its sorted file
names and their contents.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: An input: one file, a folder (a DICOM series: every file under it), or an explicit list of files (the slices of
#: one series in a DICOM export, ``Scan.image_files``), named relative to their common folder.
Source = Path | tuple[Path, ...]


def _files(path: Source) -> list[tuple[Path, str]]:
    """Each file of an input with the name it is fingerprinted under (relative to the folder or the list's common
    folder; a single file by its name)."""
    if isinstance(path, tuple):
        root = os.path.commonpath([p.parent for p in path])
        return [(f, os.path.relpath(f, root)) for f in sorted(path)]
    if path.is_dir():
        return [(p, str(p.relative_to(path))) for p in sorted(path.rglob("*"))
                if p.is_file() and not p.name.startswith(".")]
    return [(path, path.name)]


def stat_signature(path: Source | None) -> str:
    """Size and mtime (ns) of a file, or of every file under a folder or in a list; changes whenever a byte might
    have."""
    if path is None or path == ():
        return ""
    parts = []
    for f, name in _files(path):
        st = f.stat()
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_sha256(path: Source | None) -> str:
    """sha256 of a file's bytes; for a folder or a list of files, of their relative names and their sha256s."""
    if path is None or path == ():
        return ""
    if not isinstance(path, tuple) and not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for f, name in _files(path):
        digest.update(f"{name}\0{file_sha256(f)}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def canonical_sha256(data: dict[str, Any]) -> str:
    """Hash of a JSON-able dict with sorted keys (DVC's ``dict_sha256``): equal settings, equal hash."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
