"""Every ``benchmarks/bench_*.py`` runs with ``--smoke``: the same code on a tiny input, in seconds. A benchmark the
docs quote must not rot unnoticed (one did: ``bench_store.py`` called a store function whose signature had
changed). Parametrized over the files found, so a new benchmark without ``--smoke`` fails here.

Each runs as a real subprocess with this interpreter, from a scratch working folder, and must exit 0 with what its
report prints; the benchmarks' own checks (values equal to the stock CLI's, tables identical) run as in a real run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import shared_data

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))

#: What a benchmark's report must print (beyond exit 0 and some output): the lines its docs or RESULTS file quote.
PRINTS = {
    "bench_before_after.py": ("| original |", "Load average"),
    "bench_cluster.py": ("cluster table == pool table",),
    "bench_dicom_index.py": ("| radiomx index, no change |", "ratio export / sorted (best):", "load average"),
    "bench_extract.py": ("**", "## Profile of one large lesion"),
    "bench_indices.py": ("all lesions: indices",),
    "bench_machine_scaling.py": ("best 1 -> 2 process scaling",),
    "bench_one_scan.py": ("| stock |", "radiomx / stock: wall", "load average"),
    "bench_qc.py": ("added wall-clock time per scan with --qc",),
    "bench_read.py": ("| whole |",),
    "bench_rerun.py": ("no-change rerun",),
    "bench_seeds.py": ("| pooled |",),
    "bench_store.py": ("after: upsert commit", "rewrite inside one"),
    "bench_workers.py": ("| nightly |", "load average"),
}

#: Benchmarks that read ../shared/data (skip without it; fail under CI=true, as every test that needs it).
NEEDS_SHARED = {"bench_dicom_index.py": ("ibsi_suv_dro",)}


def test_the_benchmarks_are_found_and_every_quoted_line_belongs_to_one() -> None:
    assert SCRIPTS, f"no benchmarks found in {BENCHMARKS}"
    assert set(PRINTS) <= {p.name for p in SCRIPTS}, "PRINTS names a benchmark that is gone"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_benchmark_runs_in_smoke_mode(script: Path, tmp_path: Path) -> None:
    assert "--smoke" in script.read_text(encoding="utf-8"), f"{script.name}: add --smoke (a tiny input, seconds)"
    for data in NEEDS_SHARED.get(script.name, ()):
        shared_data(data)
    extra = ["--workdir", str(tmp_path)] if script.name == "bench_dicom_index.py" else []
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # every scratch folder a smoke run makes lands here
    quoted = {p: p.stat().st_mtime_ns for p in BENCHMARKS.glob("RESULTS*.md")}
    proc = subprocess.run([sys.executable, str(script), "--smoke", *extra], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, f"{script.name} --smoke exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{script.name} --smoke printed no report"
    for line in PRINTS.get(script.name, ()):
        assert line in proc.stdout, f"{script.name} --smoke did not print {line!r}:\n{proc.stdout[-3000:]}"
    assert {p: p.stat().st_mtime_ns for p in BENCHMARKS.glob("RESULTS*.md")} == quoted, (
        "a smoke run must not overwrite the results the docs quote")
