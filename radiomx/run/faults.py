"""Test hooks that make a worker process misbehave on one scan, inert unless their environment variable is set.

Why: a cluster must survive a worker that dies (OOM kill, segfault in native code, a lost node) and must not hang
on a scan that kills every worker it lands on. Real crashes of that kind cannot be produced on demand, so the
cluster tests set these variables in the environment of the ``dask worker`` processes they start (never of the
driver), like ``RADIOMX_FAULT_POINT`` in ``radiomx/store/atomic.py`` for the writer:

- ``RADIOMX_FAULT_KILL_SCAN=<patient_id>``: the worker process SIGKILLs itself when it starts that patient's scan.
- ``RADIOMX_FAULT_STALL_SCAN=<patient_id>`` (or ``*`` for any scan): the worker announces
  ``radiomx-fault-stall <patient_id>`` on its stderr and sleeps ``RADIOMX_FAULT_SECONDS`` (default 60), so that a
  test can kill that worker, or the driver, while the scan is in flight.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def scan_fault(patient_id: str) -> None:
    """Called by a worker when it starts a scan; does nothing unless a fault variable names this patient."""
    if os.environ.get("RADIOMX_FAULT_KILL_SCAN") == patient_id:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("RADIOMX_FAULT_STALL_SCAN") in (patient_id, "*"):
        sys.stderr.write(f"radiomx-fault-stall {patient_id}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("RADIOMX_FAULT_SECONDS", "60")))
