"""``OUT/acknowledged.tsv`` takes the tracer as the failures table writes it: a canonical name, an alias, or the
folder name a failure of an unknown tracer folder carries (stage ``discover``), which used to be refused as
"unknown tracer" (exit 2)."""

from __future__ import annotations

import io
import shutil

import pandas as pd
from click.testing import CliRunner

from radiomx.cli import cli

HEADER = "patient_id\tsession\ttracer\tstage\treason\n"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_failure_of_an_unknown_tracer_folder_can_be_acknowledged(small_cohort, tmp_path):
    cohort, out = small_cohort, tmp_path / "out"
    shutil.move(cohort / "P002" / "FDG", cohort / "P002" / "FDG-2nd-try")
    first = run("extract", cohort, "-o", out, "-j", "1")
    assert first.exit_code == 1 and "FAILED P002/FDG-2nd-try [discover]" in first.stderr
    failures = pd.read_csv(io.StringIO(run("table", out, "--which", "failures").stdout), keep_default_na=False)
    assert failures[["patient_id", "tracer", "stage"]].values.tolist() == [["P002", "FDG-2nd-try", "discover"]]

    reason = "re-scan of a failed acquisition, kept for the record (ticket 9)"
    (out / "acknowledged.tsv").write_text(f"{HEADER}P002\t\tFDG-2nd-try\tdiscover\t{reason}\n")
    night = run("extract", cohort, "-o", out, "-j", "1")
    assert night.exit_code == 0, night.stderr
    assert "ACKNOWLEDGED P002/FDG-2nd-try [discover] P002/FDG-2nd-try: unknown tracer folder" in night.stderr
    assert f"(acknowledged: {reason})" in night.stderr and "FAILED" not in night.stderr
    table = pd.read_csv(io.StringIO(run("table", out, "--which", "failures").stdout))
    assert table["acknowledged"].tolist() == [reason]
    assert any(line.startswith("ACKNOWLEDGED P002/FDG-2nd-try [discover]")
               for line in run("status", cohort, "-o", out).stdout.splitlines())


def test_an_alias_still_becomes_its_canonical_name_and_a_typo_is_pointed_out_not_refused(small_cohort, tmp_path):
    cohort, out = small_cohort, tmp_path / "out"
    (cohort / "P002" / "FDG" / "pet.nii.gz").write_bytes(b"not an image")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    (out / "acknowledged.tsv").write_text(f"{HEADER}P002\t\tFdG\tload\ttruncated\nP002\t\tfgd\tload\ttypo\n")
    night = run("extract", cohort, "-o", out, "-j", "1")
    assert night.exit_code == 0 and "ACKNOWLEDGED P002/18F-FDG [load]" in night.stderr, night.stderr
    status = run("status", cohort, "-o", out)
    assert status.exit_code == 0
    assert "NOTE acknowledged.tsv line 3 (P002/fgd [load]) matches no failure now" in status.stdout
