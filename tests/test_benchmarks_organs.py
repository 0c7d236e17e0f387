"""``benchmarks/bench_organs.py --smoke`` runs: the organ-cost figures docs/organs.md quotes come from a script that
cannot rot unnoticed. The smoke run extracts a real scan through the CLI and reads organs in both forms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_organs.py"


def test_the_organ_benchmark_runs_in_smoke_mode(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--workdir", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| radiomx extract (one scan, -j 1, Original features, 18F-FDG) |" in out
    for row in ("per-class folder, regions |", "per-class folder, regions + sites |", "multilabel (--ml), regions |",
                "multilabel (--ml), regions + sites |"):
        assert f"| organs: {row}" in out
    for leg in ("extract with organs: multilabel (--ml) |", "extract with organs: per-class folder |"):
        assert f"| {leg}" in out
        row = next(line for line in out.splitlines() if line.startswith(f"| {leg}"))
        assert 50 < float(row.rstrip(" |").rsplit("|", 1)[1]) < 900  # peak RSS in MiB of radiomx, not of the bench
    assert "load average" in out
    assert "regions not placed: ['adrenal_contralateral']" in out  # the synthetic scan has no adrenal lesion
