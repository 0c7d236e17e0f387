"""``benchmarks/bench_bookkeeping.py --smoke`` runs: the figures docs/storage.md quotes for the SQLite decision come
from a script that cannot rot unnoticed. Its own asserts check that both candidates hold the same state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bookkeeping.py"


def test_the_bookkeeping_benchmark_runs_in_smoke_mode(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--workdir", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| sqlite commit |" in proc.stdout and "| parquet commit |" in proc.stdout
    assert "code each candidate needs" in proc.stdout and "load average" in proc.stdout
