"""Every file of a DICOM export, walked once with its stat (no pydicom: ``--layout auto`` walks to tell whether a
folder holds DICOM at all, and the default layout must stay light)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def walk(root: Path, exclude: Path | None = None) -> Iterator[tuple[str, str, int, int]]:
    """(path, path relative to root, size, mtime_ns) of every file under ``root``, hidden ones included (they are
    counted as non-DICOM); symlink loops are cut, ``exclude`` (OUT inside the export) is skipped."""
    seen: set[tuple[int, int]] = set()
    excluded = os.path.realpath(exclude) if exclude is not None else None
    stack = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen or os.path.realpath(folder) == excluded:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            relative = prefix + entry.name
            try:
                if entry.is_dir():
                    if not entry.name.startswith("."):
                        stack.append((entry.path, relative + "/"))
                    continue
                st = entry.stat()
            except OSError:
                continue
            yield entry.path, relative, st.st_size, st.st_mtime_ns
