"""The broken-input corpus as one cohort through the real CLI: each case gives its own failure row (stage and a
stable message fragment naming the file), every good scan is still written, exit code 1, no traceback."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.discover.cohort import discover, layout_for
from radiomx.inputs.dicom import read_series
from radiomx.inputs.loader import load_scan

from .corpus import CASES, build_corpus, lesion_volume, write
from .corpus.dicom_pet import SERIES_TIME, bqml_per_suv, write_pet_series

CASE_PARAMS = [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
               for c in CASES]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    cohort = build_corpus(root / "cohort")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(root / "out"), "--jobs", "2"])
    features = pd.concat([pd.read_parquet(p) for p in (root / "out" / "features").glob("*.parquet")])
    return result, features, pd.read_parquet(root / "out" / "failures.parquet"), cohort


def test_corpus_run_exits_1_without_traceback_and_keeps_good_scans(corpus_run):
    result, features, failures, cohort = corpus_run
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert {"good-0", "good-1", "dicom-good"} <= set(features["patient_id"])
    assert len(CASES) >= 20
    assert not (cohort / "radiomx.toml").exists()  # PET units come from each scan's sidecar or DICOM headers


@pytest.mark.parametrize("case", CASE_PARAMS)
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
    assert row["severity"] == case.severity
    if case.severity == "warning":
        assert sorted(features.loc[features["patient_id"] == case.name, "lesion_id"]) == list(case.rows)
    assert case.message in row["message"]
    assert row["file"].startswith(case.name) or f"{case.name}/" in row["message"]  # relative to the cohort
    assert str(cohort) not in row["file"] + row["message"]
    assert case.file in row["file"], row["file"]
    assert "\n" not in row["message"]
    word = "WARNING" if case.severity == "warning" else "FAILED"
    line = [ln for ln in result.stderr.splitlines() if f"{word} {case.name}" in ln]
    assert line and case.message in line[0]


def test_dicom_generator_reads_back_to_the_intended_suv(tmp_path):
    """The synthetic PET series converts back to the SUV it was written from, on the grid of a NIfTI mask with the
    same spacing and origin, with the header's weight, dose and uptake as the SUV inputs (non-default values)."""
    suv, mask = lesion_volume(seed=3)
    origin, spacing = (-30.5, 12.0, 101.0), (3.5, 3.5, 2.5)
    injection = SERIES_TIME - timedelta(minutes=75)
    scan_dir = tmp_path / "cohort" / "P1" / "FDG"
    files = write_pet_series(scan_dir / "pet", suv, spacing, origin=origin, weight_kg=82.5, dose_bq=2.9e8,
                             injection_time=injection)
    write(mask, scan_dir / "mask.nii.gz", spacing=spacing, origin=origin)
    assert len(files) == suv.shape[0]

    series = read_series(scan_dir / "pet", "PT")
    assert series.image.GetOrigin() == pytest.approx(origin) and series.image.GetSpacing() == pytest.approx(spacing)
    assert series.image.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    bqml = sitk.GetArrayFromImage(series.image)
    np.testing.assert_allclose(bqml, suv * bqml_per_suv(82.5, 2.9e8, 75 * 60.0), rtol=1e-3)
    slopes = {float(h.RescaleSlope) for h in series.headers}
    assert len(slopes) > 1  # per-slice RescaleSlope, as scanners write it

    (scan,) = discover(tmp_path / "cohort")
    loaded = load_scan(scan, layout_for(tmp_path / "cohort"))
    assert loaded.unit == "SUVbw"
    np.testing.assert_allclose(sitk.GetArrayFromImage(loaded.image), suv, rtol=1e-3)
    (labels,) = loaded.mask.layers  # a label map: one layer, as read
    assert np.array_equal(sitk.GetArrayFromImage(labels), mask)
    inputs = loaded.unit_inputs
    assert (inputs["suv_weight_kg"], inputs["suv_dose_bq"], inputs["suv_uptake_s"]) == (82.5, 2.9e8, 4500.0)
    assert (inputs["suv_radionuclide"], inputs["suv_decay_correction"]) == ("F-18", "START")


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
    good_scan(cohort / "P1" / "FDG")  # with its SUV sidecar pet.json
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
    good_scan(cohort / "P1" / "FDG")  # with its SUV sidecar pet.json
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
