"""The report tells failures, acknowledged failures and warnings apart, each row with its severity (an exit-0 run
listed its warnings under "Failures (N)"), and counts patients, not patient-session rows, under a TMTV plot."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
from click.testing import CliRunner

from radiomx.cli import cli
from tests.conftest import make_cohort, write_volume


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _section(page: str, heading: str) -> str:
    """The HTML from the heading ``<h2 ...>heading (n)</h2>`` to the next ``<h2``, or "" when absent."""
    match = re.search(rf"<h2[^>]*>{re.escape(heading)} \(\d+\)</h2>(.*?)(?=<h2)", page, re.S)
    return match.group(0) if match else ""


def test_failures_acknowledged_failures_and_warnings_are_listed_apart_with_their_severity(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}, "P003": {"FDG": 1}})
    write_volume(np.ones((24, 32, 32), np.uint8), cohort / "P001" / "FDG" / "ref-kidney.nii.gz")  # a warning
    for patient in ("P002", "P003"):
        (cohort / patient / "FDG" / "mask.nii.gz").unlink()  # failures
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    (out / "acknowledged.tsv").write_text("patient_id\tsession\ttracer\tstage\treason\n"
                                          "P003\t\tFDG\tdiscover\tmask lost at the site\n")
    assert run("report", out).exit_code == 0
    page = (out / "report.html").read_text()
    failures, known, warnings = (_section(page, h) for h in ("Failures", "Acknowledged failures", "Warnings"))
    assert "Failures (1)</h2>" in failures and "Acknowledged failures (1)</h2>" in known
    assert "Warnings (1)</h2>" in warnings
    assert "P002" in failures and "P003" not in failures and "P001" not in failures
    assert "P003" in known and "failure (acknowledged: mask lost at the site)" in known
    assert "P001" in warnings and "<td>warning</td>" in warnings and "kidney" in warnings
    assert "<td>failure</td>" in failures

    # All dealt with: the run exits 0, and the report says so instead of listing a warning as a failure.
    shutil.copy(cohort / "P001" / "FDG" / "mask.nii.gz", cohort / "P002" / "FDG" / "mask.nii.gz")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("report", out).exit_code == 0
    page = (out / "report.html").read_text()
    assert "Failures (0)</h2>" in _section(page, "Failures") and "id=no-failures" in page
    assert "P001" in _section(page, "Warnings") and "P001" not in _section(page, "Failures")


def test_the_tmtv_pairs_count_patients_and_say_sessions(tmp_path):
    """Two patients with both tracers, one of them at two sessions: 2 patients, 3 points."""
    cohort = tmp_path / "cohort"
    for patient, session, seed in (("P001", "baseline", 0), ("P001", "followup", 1), ("P002", "baseline", 2)):
        make_cohort(tmp_path / f"part{seed}", {patient: {"FDG": 1, "pentixafor": 2}}, seed=seed)
        shutil.copytree(tmp_path / f"part{seed}" / patient, cohort / patient / session)
    shutil.copy(tmp_path / "part0" / "radiomx.toml", cohort / "radiomx.toml")
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert run("compare", out, "--tracers", "fdg,pentixafor").exit_code == 0
    table = pd.read_parquet(next((out / "compare").glob("*_vs_*.parquet")))
    assert len(table) == 3 and table["patient_id"].nunique() == 2  # a row per patient and session
    assert run("report", out).exit_code == 0
    page = (out / "report.html").read_text()
    assert "2 patients with both scans, in 3 sessions (a point per patient and session)" in page
    assert "3 patients with both scans" not in page
