"""``benchmarks/bench_dicom_index.py --smoke`` runs: the script docs/layouts.md quotes cannot rot unnoticed. Its own
asserts check that a no-change rerun reads no header and that touched files are read again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import shared_data

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dicom_index.py"


def test_the_dicom_index_benchmark_runs_in_smoke_mode(tmp_path):
    shared_data("ibsi_suv_dro")  # part 2 extracts a DRO: skip without the data, fail under CI
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--workdir", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| radiomx index, no change |" in proc.stdout and "ratio export / sorted (best):" in proc.stdout
    assert "load average" in proc.stdout
