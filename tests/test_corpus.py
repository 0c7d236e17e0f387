"""The broken-input corpus as one cohort through the real CLI: each case gives its own failure row (stage and a
stable message fragment naming the file), every good scan is still written, exit code 1, no traceback."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

from .corpus import CASES, build_corpus


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    cohort = build_corpus(root / "cohort")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(root / "out"), "--jobs", "2"])
    features = pd.concat([pd.read_parquet(p) for p in (root / "out" / "features").glob("*.parquet")])
    return result, features, pd.read_parquet(root / "out" / "failures.parquet"), cohort


def test_corpus_run_exits_1_without_traceback_and_keeps_good_scans(corpus_run):
    result, features, failures, _ = corpus_run
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert {"good-0", "good-1"} <= set(features["patient_id"])
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_broken_case_gives_its_exact_failure(corpus_run, case):
    result, features, failures, cohort = corpus_run
    mine = failures[failures["patient_id"] == case.name]
    if case.stage is None:
        assert mine.empty, mine["message"].tolist()
        assert sorted(features.loc[features["patient_id"] == case.name, "lesion_id"]) == list(case.rows)
        return
    assert len(mine) >= 1, f"no failure row for {case.name}"
    row = mine.iloc[0]
    assert row["stage"] == case.stage, row["message"]
    assert case.message in row["message"]
    assert str(cohort / case.name) in row["file"] or str(cohort / case.name) in row["message"]
    assert "\n" not in row["message"]
    line = [ln for ln in result.stderr.splitlines() if f"FAILED {case.name}" in ln]
    assert line and case.message in line[0]


def _unknown_key(tree):
    (tree / "18F-FDG" / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: 0.25\n  binWdth: 1\n")


def _wrong_type(tree):
    (tree / "18F-FDG" / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: [0.25]\n")


def _missing_bin_width(tree):
    (tree / "18F-FDG" / "v1.yaml").write_text("radiomx:\n  units: SUVbw\nsetting:\n  normalize: false\n")


def _hu_file_for_pet(tree):
    (tree / "18F-FDG" / "v1.yaml").write_text("radiomx:\n  units: HU\nsetting:\n  binWidth: 25\n")


USAGE_CASES = [
    (_unknown_key, "binWdth"),
    (_wrong_type, "binWidth"),
    (_missing_bin_width, "binWidth (or binCount) is missing"),
    (_hu_file_for_pet, "declares units HU but 18F-FDG images are SUVbw"),
]


@pytest.mark.parametrize("break_params, fragment", USAGE_CASES, ids=[b.__name__ for b, _ in USAGE_CASES])
def test_configuration_errors_exit_2_before_any_work(tmp_path, break_params, fragment):
    from .corpus import good_scan

    cohort = tmp_path / "cohort"
    good_scan(cohort / "P1" / "FDG")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    tree = tmp_path / "params"
    (tree / "18F-FDG").mkdir(parents=True)
    break_params(tree)
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir", str(tree)])
    assert result.exit_code == 2
    assert fragment in result.stderr and str(tree / "18F-FDG" / "v1.yaml") in result.stderr
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_exit_2_and_loses_nothing(tmp_path):
    from .corpus import good_scan

    cohort = tmp_path / "cohort"
    good_scan(cohort / "P1" / "FDG")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(blocker / "out")])
    assert result.exit_code == 2 and "output folder is not writable" in result.stderr
    assert blocker.read_text() == "not a folder"
    # a read-only folder (effective for non-root users; root bypasses permission bits, hence the case above)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(readonly / "out")])
        import os

        if os.geteuid() != 0:
            assert result.exit_code == 2 and "not writable" in result.stderr
    finally:
        readonly.chmod(0o755)
