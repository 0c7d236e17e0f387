"""Crash-safe file replacement: write beside the target, fsync, rename, fsync the folder.

Why: a cron job can be killed at any instant (SIGKILL, full disk, power cut). ``os.replace`` is atomic on POSIX,
so readers see either the old file or the new one, never half of one; fsync before and after makes that hold
across a power cut too (DVC's ``as_atomic`` does the rename but not the fsync).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def fault_point(name: str) -> None:
    """Crash-test hook: with ``RADIOMX_FAULT_POINT=<name>`` the process announces the point on stderr and stalls,
    so a test can SIGKILL it at exactly that instant (mid-commit). Inert otherwise."""
    if os.environ.get("RADIOMX_FAULT_POINT") == name:
        sys.stderr.write(f"radiomx-fault-point {name}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("RADIOMX_FAULT_SECONDS", "60")))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``, on any error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        fault_point("before-rename")
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove_stale_temporaries(folder: Path) -> None:
    """Temporaries left by a killed writer (files, and the folder of a killed migration) are never read; the next
    writer (holding the lock) removes them."""
    if folder.is_dir():
        for leftover in list(folder.rglob(".*.tmp-*")):
            with contextlib.suppress(OSError):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
