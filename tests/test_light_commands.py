"""``radiomx --help``, ``scan`` and ``status`` stay light: a user typing them waits for Python and Click, not for
SimpleITK, PyRadiomics (~0.5 s together) or, for ``--help`` and ``scan``, pandas (~0.4 s). Real interpreters, so
the import list is what a user's shell gets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import make_cohort

HEAVY = ("SimpleITK", "radiomics", "pandas", "pyarrow")


def _imported(*args: str) -> set[str]:
    """Top-level packages ``python -X importtime -m radiomx ARGS`` imported, and the command's exit code."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "radiomx", *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    return {name for name in names if name in HEAVY}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A cohort extracted once, so ``status`` reads real stored state."""
    from click.testing import CliRunner

    from radiomx.cli import cli

    root = tmp_path_factory.mktemp("light")
    cohort = make_cohort(root / "cohort", {"P001": {"FDG": 1}})
    assert CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(root / "out"), "-j", "1"]).exit_code == 0
    return cohort, root / "out"


def test_help_and_scan_import_no_image_feature_or_table_library(done):
    cohort, _ = done
    assert _imported("--help") == set()
    assert _imported("scan", str(cohort)) == set()


def test_status_imports_no_image_or_feature_library(done):
    """``status`` prints a pandas table from the stored Parquet state; it never loads SimpleITK or PyRadiomics
    (parameter files are hashed, not validated against PyRadiomics' schema, for status)."""
    cohort, out = done
    assert _imported("status", str(cohort), "-o", str(out)) <= {"pandas", "pyarrow"}


#: What a NIfTI cohort's extraction never needs: the cluster engine, the QC drawing, the DICOM readers.
NOT_FOR_A_NIFTI_RUN = ("dask", "distributed", "matplotlib", "highdicom", "pydicom", "PIL")


def test_one_nifti_scan_imports_only_what_its_run_needs(tmp_path):
    """``radiomx extract`` of one NIfTI scan (the nightly case) computes in its own process (no pool) and loads no
    Dask, matplotlib or DICOM library: the process's whole import list, from a real interpreter."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "radiomx", "extract", str(cohort), "-o",
                          str(tmp_path / "out"), "-j", "2"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in run.stderr.splitlines()
             if line.startswith("import time:")}
    assert {"SimpleITK", "radiomics", "pyarrow"} <= names  # it did compute and write
    assert not names & set(NOT_FOR_A_NIFTI_RUN), sorted(names & set(NOT_FOR_A_NIFTI_RUN))
    assert "multiprocessing.spawn" not in {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
                                           if line.startswith("import time:")}, "one scan starts no pool"
