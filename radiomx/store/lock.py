"""One writer per output folder, with the holder's PID and start time in the refusal message.

Why ``flock``: the kernel releases it when the holding process dies (SIGKILL, OOM, power loss on reboot), so a
stale lock from a dead run is taken over without any PID guessing. The lock file's text only *describes* the
holder for the error message; it is never trusted for mutual exclusion. (Like any flock, this needs a local
or lock-aware file system; on NFS use one OUT per host.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from radiomx.errors import LockHeldError

LOCK_NAME = ".radiomx.store.lock"


def _describe_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another radiomx process"
    return f"PID {info.get('pid')} on {info.get('host')} (started {info.get('started_at')})"


@contextlib.contextmanager
def output_lock(out: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock on ``out`` for the duration of the block, waiting at most ``wait_seconds``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    acquired = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeldError(
                        f"{out}: output folder is locked by {_describe_holder(path)}; wait for it to finish "
                        "or pass --wait SECONDS") from None
                time.sleep(0.2)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        if acquired:  # never wipe the description written by the process that does hold the lock
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)
