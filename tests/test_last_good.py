"""QA #5: a nightly rerun whose scan fails before producing any row (an input truncated by a partial copy) keeps the
scan's last good rows, says so in its failures row (with the inputs those rows came from), exits 1, shows the scan
as failed and retries it; the burden keeps its figures and says where they are from. A changed input that produces
rows replaces them as always. Real NIfTI files, the real CLI, real Parquet."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import make_cohort, sphere_scan, write_volume

KEPT = "the rows of the last good extraction were kept (inputs image_sha256 {sha})"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _fdg(out):
    return pd.read_parquet(out / "features" / "18F-FDG.parquet").set_index(["patient_id", "lesion_id"])


def _burden(out, patient):
    return pd.read_parquet(out / "burden.parquet").set_index("patient_id").loc[patient]


@pytest.fixture
def extracted(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 3}, "P002": {"FDG": 1}})
    out = tmp_path / "out"
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    return cohort, out


@pytest.mark.parametrize("broken", ["pet.nii.gz", "mask.nii.gz"])
def test_an_input_truncated_by_a_partial_copy_keeps_the_last_good_rows_until_it_is_fixed(extracted, broken):
    cohort, out = extracted
    rows, burden = _fdg(out), _burden(out, "P001")
    sha = rows.loc["P001", "image_sha256"].iloc[0]
    assert burden["status"] == "ok" and burden["tmtv_ml"] > 0 and burden["lesion_count"] == 3
    path = cohort / "P001" / "FDG" / broken
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a partial copy
    for _ in range(2):  # the next nightly run too: still failed, still kept, still retried
        result = run("extract", cohort, "-o", out, "-j", "1")
        assert result.exit_code == 1, result.stderr
        pd.testing.assert_frame_equal(_fdg(out), rows)  # not one row lost or changed
        failures = pd.read_parquet(out / "failures.parquet")
        assert len(failures) == 1 and failures.loc[0, "stage"] in ("load", "geometry", "suv", "discover")
        assert KEPT.format(sha=sha) in failures.loc[0, "message"], failures.loc[0, "message"]
        kept = _burden(out, "P001")
        assert kept["status"] == "failed" and kept["lesion_count"] == 3
        assert kept["tmtv_ml"] == burden["tmtv_ml"] and kept["ttlg"] == burden["ttlg"]
        assert kept["suv_max_hottest"] == burden["suv_max_hottest"]
        assert f"figures from the last good extraction (inputs image_sha256 {sha})" in kept["burden_note"]
        state = pd.read_parquet(out / "scans.parquet").set_index("patient_id").loc["P001"]
        assert state["status"] == "failed" and state["rows_kept_from"] == sha and state["image_sha256"] == sha
        plan = run("extract", cohort, "-o", out, "--dry-run")
        assert "retry\tP001\t\t18F-FDG\tfailed last time" in plan.stdout
        status = run("status", cohort, "-o", out)
        assert ["18F-FDG", "1", "0", "0", "0", "1", "0"] in [ln.split() for ln in status.stdout.splitlines()]
    path.write_bytes(good)  # the copy completed
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0 and "1 scans computed" in result.stderr, result.stderr
    assert len(pd.read_parquet(out / "failures.parquet")) == 0
    fixed = _fdg(out)
    pd.testing.assert_frame_equal(fixed.drop(columns="extracted_at"), rows.drop(columns="extracted_at"))
    again = _burden(out, "P001")
    assert again["status"] == "ok" and again["burden_note"] == "" and again["tmtv_ml"] == burden["tmtv_ml"]
    state = pd.read_parquet(out / "scans.parquet").set_index("patient_id").loc["P001"]
    assert state["status"] == "ok" and state["rows_kept_from"] == ""


def test_a_changed_input_that_produces_rows_replaces_them(extracted):
    cohort, out = extracted
    before = _fdg(out).loc["P001"]
    image, mask = sphere_scan(centres=[(12, 8, 8)], seed=9)
    write_volume(image, cohort / "P001" / "FDG" / "pet.nii.gz")
    write_volume(mask, cohort / "P001" / "FDG" / "mask.nii.gz")
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    after = _fdg(out).loc["P001"]
    assert len(before) == 3 and len(after) == 1
    assert set(after["image_sha256"]).isdisjoint(before["image_sha256"])
    assert _burden(out, "P001")["lesion_count"] == 1


def test_a_scan_that_never_had_rows_has_nothing_to_keep(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    image = cohort / "P001" / "FDG" / "pet.nii.gz"
    image.write_bytes(image.read_bytes()[:200])
    out = tmp_path / "out"
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 1
    failures = pd.read_parquet(out / "failures.parquet")
    assert "last good" not in failures.loc[0, "message"]
    burden = _burden(out, "P001")
    assert burden["status"] == "failed" and pd.isna(burden["tmtv_ml"])
    assert burden["burden_note"] == "scan failed: no burden (see the failures table)"


def test_a_truncated_slice_in_a_dicom_export_keeps_the_last_good_rows(tmp_path):
    """The QA's case: a PACS export whose slice a partial copy cut short; the header index finds it at discovery."""
    from .export_builders import Export, dro_study
    from .test_dicom_export import minimal_params

    export = Export(tmp_path / "export")
    image, _, _ = dro_study(export, "DRO_0_0", "P001")
    dro_study(export, "DRO_1_0", "P002")
    out, params = tmp_path / "out", minimal_params(tmp_path / "params")
    first = run("extract", export.root, "-o", out, "-j", "1", "--params-dir", params)
    assert first.exit_code == 0, first.stderr
    rows = _fdg(out)
    sha = rows.loc["P001", "image_sha256"].iloc[0]
    slice_path = image.files[len(image.files) // 2]
    slice_path.write_bytes(slice_path.read_bytes()[: slice_path.stat().st_size // 2])
    result = run("extract", export.root, "-o", out, "-j", "1", "--params-dir", params)
    assert result.exit_code == 1, result.stderr
    assert KEPT.format(sha=sha) in result.stderr
    pd.testing.assert_frame_equal(_fdg(out), rows)
    failures = pd.read_parquet(out / "failures.parquet")
    assert list(failures["patient_id"]) == ["P001"] and KEPT.format(sha=sha) in failures.loc[0, "message"]
    burden = _burden(out, "P001")
    assert burden["status"] == "failed" and burden["tmtv_ml"] > 0 and sha in burden["burden_note"]
