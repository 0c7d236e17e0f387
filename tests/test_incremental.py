"""Nightly reruns: only new, changed or failed scans are computed; upserts never duplicate a key."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from radiomics.featureextractor import RadiomicsFeatureExtractor

from radiomx.cli import cli
from radiomx.params.paramset import default_params_root

from .conftest import next_version_file, sphere_scan, write_volume

KEY = ["patient_id", "session", "tracer", "lesion_id"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def extracted(small_cohort, tmp_path):
    out = tmp_path / "out"
    result = run("extract", small_cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    return small_cohort, out


@pytest.fixture
def execute_calls(monkeypatch):
    """Spy on PyRadiomics itself: every lesion computed goes through RadiomicsFeatureExtractor.execute."""
    calls: list[int] = []
    original = RadiomicsFeatureExtractor.execute

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RadiomicsFeatureExtractor, "execute", spy)
    return calls


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in [*out.glob("features/*.parquet"), out / "scans.parquet"]
            if p.exists()}


def test_rerun_without_change_computes_nothing_and_changes_no_byte(extracted, execute_calls):
    cohort, out = extracted
    before = _files(out)
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0
    assert "0 scans computed, 3 unchanged" in result.stderr
    assert execute_calls == []
    assert _files(out) == before
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["computed"]) == [3, 0] and list(runs["skipped"]) == [0, 3] and list(runs["exit_code"]) == [0, 0]


def test_new_content_recomputes_exactly_that_scan(extracted, execute_calls):
    cohort, out = extracted
    old = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    image, mask = sphere_scan(centres=((12, 8, 8),), seed=99)
    write_volume(image, cohort / "P002" / "FDG" / "pet.nii.gz")
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert "1 scans computed, 2 unchanged" in result.stderr
    assert len(execute_calls) == 1
    new = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    assert not new.duplicated(KEY).any() and len(new) == len(old)
    p1_old, p1_new = old[old.patient_id == "P001"], new[new.patient_id == "P001"]
    pd.testing.assert_frame_equal(p1_old.reset_index(drop=True), p1_new.reset_index(drop=True))
    p2_old, p2_new = old[old.patient_id == "P002"].iloc[0], new[new.patient_id == "P002"].iloc[0]
    assert p2_old["image_sha256"] != p2_new["image_sha256"]
    assert p2_old["original_firstorder_Mean"] != p2_new["original_firstorder_Mean"]


def test_touch_recomputes_nothing_and_refreshes_the_fast_path(extracted, execute_calls):
    cohort, out = extracted
    features_before = (out / "features" / "18F-FDG.parquet").read_bytes()
    image = cohort / "P001" / "FDG" / "pet.nii.gz"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert "0 scans computed, 3 unchanged" in result.stderr and execute_calls == []
    assert (out / "features" / "18F-FDG.parquet").read_bytes() == features_before
    state = pd.read_parquet(out / "scans.parquet").set_index(["patient_id", "tracer"])
    from radiomx.fingerprint import stat_signature

    assert state.loc[("P001", "18F-FDG"), "image_stat"] == stat_signature(image)


def test_removed_lesion_disappears_and_no_key_is_duplicated(extracted):
    cohort, out = extracted
    mask_path = cohort / "P001" / "FDG" / "mask.nii.gz"
    mask = sitk.ReadImage(str(mask_path))
    values = sitk.GetArrayFromImage(mask)
    values[values == 2] = 0
    edited = sitk.GetImageFromArray(values)
    edited.CopyInformation(mask)
    sitk.WriteImage(edited, str(mask_path))
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    table = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    assert list(table[["patient_id", "lesion_id"]].itertuples(index=False, name=None)) == [("P001", 1), ("P002", 1)]


def test_vanished_scan_keeps_rows_unless_prune(extracted):
    cohort, out = extracted
    shutil.rmtree(cohort / "P002")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert "P002" in set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"])
    assert run("extract", cohort, "-o", out, "-j", "1", "--prune").exit_code == 0
    assert set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"]) == {"P001"}
    assert set(pd.read_parquet(out / "scans.parquet")["patient_id"]) == {"P001"}


def test_vanished_scans_are_said_and_prune_says_what_it_dropped_pictures_included(small_cohort, tmp_path):
    """Issue 21.8: a removed patient folder is named by --dry-run, the summary (text and --json) and status, with
    "rows kept"; --prune says what it dropped and removes the scan's QC picture and thumbnail too."""
    cohort, out = small_cohort, tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1", "--qc").exit_code == 0
    picture = out / "qc" / "P002" / "18F-FDG.png"
    assert picture.is_file() and picture.with_name("18F-FDG.thumb.jpg").is_file()
    shutil.rmtree(cohort / "P002")
    kept = "1 scans vanished from the cohort; their rows are kept in OUT (radiomx extract --prune drops them): " \
           "P002/18F-FDG"
    dry = run("extract", cohort, "-o", out, "--dry-run")
    assert dry.exit_code == 0
    assert "vanished\tP002\t\t18F-FDG\tno longer in the cohort; its rows are kept (--prune drops them)" in dry.stdout
    assert "1 vanished (dry run" in dry.stderr and kept in dry.stderr
    result = run("extract", cohort, "-o", out, "-j", "1", "--json")
    assert result.exit_code == 0 and kept in result.stderr
    assert json.loads(result.stdout)["vanished"] == [{"patient_id": "P002", "session": "", "tracer": "18F-FDG"}]
    status = run("status", cohort, "-o", out)
    header, fdg = (line.split() for line in status.stdout.splitlines()[:3] if "FDG" in line or "tracer" in line)
    assert header[-1] == "vanished" and fdg[header.index("vanished")] == "1"
    assert kept in status.stdout and picture.is_file()
    pruned = run("extract", cohort, "-o", out, "-j", "1", "--prune")
    assert pruned.exit_code == 0
    assert ("pruned 1 scans no longer in the cohort (rows, state, failures, QC pictures): P002/18F-FDG"
            in pruned.stderr)
    assert not (out / "qc" / "P002").exists() and (out / "qc" / "P001" / "18F-FDG.png").is_file()
    assert set(pd.read_parquet(out / "scans.parquet")["patient_id"]) == {"P001"}
    after = run("status", cohort, "-o", out)
    assert "vanished from the cohort" not in after.stdout
    assert "vanished from the cohort" not in run("extract", cohort, "-o", out, "-j", "1").stderr


def test_a_scans_selection_with_prune_drops_only_scans_the_cohort_lost(extracted, tmp_path):
    """``--scans`` selects what to compute, not what exists: P002, left out of the selection but still in the
    cohort, is not vanished and keeps its rows (--prune used to drop every scan outside the selection)."""
    cohort, out = extracted
    selection = tmp_path / "p001.tsv"
    selection.write_text("P001\t\t18F-FDG\n")
    result = run("extract", cohort, "-o", out, "-j", "1", "--scans", selection, "--prune")
    assert result.exit_code == 0, result.stderr
    assert "no longer in the cohort" not in result.stderr and "vanished from the cohort" not in result.stderr
    assert set(pd.read_parquet(out / "scans.parquet")["patient_id"]) == {"P001", "P002"}
    assert "P002" in set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"])


def test_an_acknowledged_failure_shows_everywhere_but_no_longer_fails_the_night(small_cohort, tmp_path):
    """Issue 21.11: a failure listed in OUT/acknowledged.tsv (key, stage, reason) is printed ACKNOWLEDGED with the
    reason, marked in status, the failures table and --json, and exit 0; a new failure still exits 1; a malformed
    file is exit 2 naming the line; an entry that matches nothing any more is pointed out by status."""
    cohort, out = small_cohort, tmp_path / "out"
    (cohort / "P002" / "FDG" / "pet.nii.gz").write_bytes(b"not an image")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    reason = "export truncated at the site, cannot be re-sent (ticket 812)"
    (out / "acknowledged.tsv").write_text(f"patient_id\tsession\ttracer\tstage\treason\nP002\t\tfdg\tload\t{reason}\n")
    night = run("extract", cohort, "-o", out, "-j", "1", "--json")
    assert night.exit_code == 0, night.stderr
    assert "ACKNOWLEDGED P002/18F-FDG [load] P002/FDG/pet.nii.gz: " in night.stderr
    assert f"(acknowledged: {reason})" in night.stderr and "FAILED" not in night.stderr
    assert "1 with failures (1 acknowledged)" in night.stderr
    summary = json.loads(night.stdout)
    assert summary["exit_code"] == 0 and [f["acknowledged"] for f in summary["failures"]] == [reason]
    assert pd.read_parquet(out / "runs.parquet")["exit_code"].tolist() == [1, 0]
    table = pd.read_csv(io.StringIO(run("table", out, "--which", "failures").stdout))
    assert table["acknowledged"].tolist() == [reason]
    status = run("status", cohort, "-o", out)
    assert any(line.startswith("ACKNOWLEDGED P002/18F-FDG [load]") and reason in line
               for line in status.stdout.splitlines())
    (cohort / "P001" / "pentixafor" / "mask.nii.gz").unlink()  # a new failure: the night fails again
    new = run("extract", cohort, "-o", out, "-j", "1")
    assert new.exit_code == 1 and "FAILED P001/68Ga-pentixafor [discover]" in new.stderr
    assert "ACKNOWLEDGED P002/18F-FDG" in new.stderr
    shutil.copy(cohort / "P001" / "FDG" / "pet.nii.gz", cohort / "P002" / "FDG" / "pet.nii.gz")  # fixed
    shutil.copy(cohort / "P001" / "FDG" / "mask.nii.gz", cohort / "P001" / "pentixafor" / "mask.nii.gz")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    assert "NOTE acknowledged.tsv line 2 (P002/18F-FDG [load]) matches no failure now" in run(
        "status", cohort, "-o", out).stdout
    (out / "acknowledged.tsv").write_text("patient_id\ttracer\tstage\nP002\tfdg\tload\n")
    bad = run("extract", cohort, "-o", out, "-j", "1")
    assert bad.exit_code == 2 and "acknowledged.tsv: header must name" in bad.stderr


def test_force_and_dry_run(extracted, execute_calls):
    cohort, out = extracted
    before = _files(out)
    dry = run("extract", cohort, "-o", out, "--dry-run")
    assert dry.exit_code == 0
    assert dry.stdout.splitlines() == ["unchanged\tP001\t\t18F-FDG", "unchanged\tP001\t\t68Ga-pentixafor",
                                       "unchanged\tP002\t\t18F-FDG"]
    assert execute_calls == [] and _files(out) == before
    forced = run("extract", cohort, "-o", out, "-j", "1", "--force")
    assert "3 scans computed" in forced.stderr and len(execute_calls) == 4


def test_dry_run_on_a_new_output_writes_nothing(small_cohort, tmp_path):
    result = run("extract", small_cohort, "-o", tmp_path / "never", "--dry-run")
    assert result.exit_code == 0 and result.stdout.count("new\t") == 3
    assert not (tmp_path / "never").exists()


def test_failed_scan_is_retried_and_its_failure_row_removed_once_fixed(extracted):
    cohort, out = extracted
    mask_path = cohort / "P002" / "FDG" / "mask.nii.gz"
    good = mask_path.read_bytes()
    mask_path.write_bytes(good[:100])
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    assert len(pd.read_parquet(out / "failures.parquet")) == 1
    # The last good rows are kept while the scan fails before any row (tests/test_last_good.py).
    assert "P002" in set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"])
    plan = run("extract", cohort, "-o", out, "--dry-run")
    assert "retry\tP002\t\t18F-FDG\tfailed last time" in plan.stdout
    mask_path.write_bytes(good)
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0 and "1 scans computed" in result.stderr
    assert len(pd.read_parquet(out / "failures.parquet")) == 0
    assert "P002" in set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"])


def test_new_parameter_version_recomputes_that_tracer(extracted, tmp_path):
    cohort, out = extracted
    tree = shutil.copytree(default_params_root(), tmp_path / "params")
    newest = next_version_file(tree, "18F-FDG")
    newest.write_text((tree / "18F-FDG" / "v1.yaml").read_text().replace("binWidth: 0.25", "binWidth: 0.5"))
    plan = run("extract", cohort, "-o", out, "--params-dir", tree, "--dry-run")
    assert [ln.split("\t")[0] for ln in plan.stdout.splitlines()] == ["changed", "unchanged", "changed"]
    assert plan.stdout.count("parameters changed") == 2
    result = run("extract", cohort, "-o", out, "--params-dir", tree, "-j", "1")
    assert "2 scans computed, 1 unchanged" in result.stderr
    assert set(pd.read_parquet(out / "features" / "18F-FDG.parquet")["params_version"]) == {newest.stem}


def test_status_shows_done_pending_changed_failed(extracted):
    cohort, out = extracted
    write_volume(sphere_scan(seed=5)[0], cohort / "P002" / "FDG" / "pet.nii.gz")  # changed
    (cohort / "P003" / "FDG").mkdir(parents=True)
    shutil.copy(cohort / "P001" / "FDG" / "pet.nii.gz", cohort / "P003" / "FDG" / "pet.nii.gz")  # no mask: fails
    result = run("status", cohort, "-o", out)
    assert result.exit_code == 0
    lines = [ln.split() for ln in result.stdout.splitlines()]
    assert lines[0] == ["tracer", "done", "negative", "pending", "changed", "failed", "vanished"]
    assert ["18F-FDG", "1", "0", "0", "1", "1", "0"] in lines
    assert ["68Ga-pentixafor", "1", "0", "0", "0", "0", "0"] in lines


def test_output_is_sorted_and_identical_for_serial_and_pool(small_cohort, tmp_path):
    assert run("extract", small_cohort, "-o", tmp_path / "a", "-j", "1").exit_code == 0
    assert run("extract", small_cohort, "-o", tmp_path / "b", "-j", "2").exit_code == 0
    a = pd.read_parquet(tmp_path / "a" / "features" / "18F-FDG.parquet").drop(columns="extracted_at")
    b = pd.read_parquet(tmp_path / "b" / "features" / "18F-FDG.parquet").drop(columns="extracted_at")
    pd.testing.assert_frame_equal(a, b)
    assert np.all(a[KEY].to_numpy()[:-1].tolist() <= a[KEY].to_numpy()[1:].tolist())


def test_editing_the_sidecar_or_the_body_weight_recomputes_that_scan(tmp_path):
    """SUV inputs outside the image file are part of the work key: a corrected dose or weight is not ignored."""
    import json

    from .test_bids import sidecar_for, write_pet

    cohort = tmp_path / "cohort"
    for patient in ("P001", "P002"):
        write_pet(cohort / patient / "FDG" / "pet.nii.gz", cohort / patient / "FDG" / "mask.nii.gz", 70.0, 6586.2,
                  "F18", seed=1)
    (cohort / "participants.tsv").write_text("participant_id\tbody_weight\nP001\t70\nP002\t70\n")
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    def means_of(table: pd.DataFrame) -> pd.Series:
        return table[table["lesion_id"] == 1].set_index("patient_id")["original_firstorder_Mean"]

    means = means_of(pd.read_parquet(out / "features" / "18F-FDG.parquet"))
    (cohort / "participants.tsv").write_text("participant_id\tbody_weight\nP001\t70\nP002\t84\n")
    plan = run("extract", cohort, "-o", out, "--dry-run")
    assert [ln.split("\t")[:2] for ln in plan.stdout.splitlines()] == [["unchanged", "P001"], ["changed", "P002"]]
    sidecar = sidecar_for("F18")
    sidecar["InjectedRadioactivity"] = sidecar["InjectedRadioactivity"] * 0.5
    (cohort / "P001" / "FDG" / "pet.json").write_text(json.dumps(sidecar))
    result = run("extract", cohort, "-o", out, "-j", "1")
    assert result.exit_code == 0 and "2 scans computed" in result.stderr
    new = means_of(pd.read_parquet(out / "features" / "18F-FDG.parquet"))
    assert new["P001"] == pytest.approx(2 * means["P001"], rel=1e-6)  # half the dose, twice the SUV
    assert new["P002"] == pytest.approx(means["P002"] * 84 / 70, rel=1e-6)


def test_feature_rows_go_to_arrow_as_from_pandas_made_them():
    """``store.schema.arrow_rows`` builds the features table from the rows without pandas; it must equal what the
    store made before through ``DataFrame(rows)`` and ``Table.from_pandas`` (declared types, NaN and missing values
    as nulls, every value), text apart: pandas 3 makes inferred text ``large_string``, Arrow ``string``."""
    import pyarrow as pa

    from radiomx.columns import FEATURES
    from radiomx.store.schema import FEATURE_FIXED_SCHEMA, arrow_rows

    rng = np.random.default_rng(5)
    rows = []
    for i in range(7):
        row = {name: None for name in FEATURE_FIXED_SCHEMA.names}
        row.update(patient_id=f"P{i}", session="", tracer="18F-FDG", lesion_id=i + 1, suv_units="BQML",
                   suv_body_weight_kg=70.5 + i, suv_peak_sphere_voxels=None if i == 2 else 33)
        row.update({f"original_firstorder_F{j}": float(rng.normal()) for j in range(40)})
        row.update({f"wavelet-LLH_glcm_G{j}": float(rng.normal()) for j in range(40) if i % 3})  # missing in some
        row["original_firstorder_F3"] = float("nan")
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.astype({c: FEATURE_FIXED_SCHEMA.field(c).type.to_pandas_dtype() for c in ("lesion_id",)})
    ours = arrow_rows(rows, FEATURES)
    fields = list(FEATURE_FIXED_SCHEMA) + [
        pa.field(c, pa.float64()) if c.startswith(("original_", "wavelet")) else
        pa.Schema.from_pandas(frame[[c]], preserve_index=False).field(c)
        for c in frame.columns if c not in FEATURE_FIXED_SCHEMA.names]
    reference = pa.Table.from_pandas(frame.reindex(columns=[f.name for f in fields]), schema=pa.schema(fields),
                                     preserve_index=False)
    reference = reference.cast(pa.schema([pa.field(f.name, pa.string()) if f.type == pa.large_string() else f
                                          for f in reference.schema]))
    assert ours.column_names == reference.column_names  # fixed, then indices and SUV inputs, then features
    assert ours.equals(reference.replace_schema_metadata(None))
    assert ours.column("original_firstorder_F3").null_count == 7
    assert ours.column("suv_peak_sphere_voxels").type == pa.float64()  # an integer with a null: as pandas had it
    assert ours.column("wavelet-LLH_glcm_G0").null_count == 3


def test_qc_exits_0_for_a_picture_of_a_scan_whose_failure_is_acknowledged(small_cohort, tmp_path):
    """QA2 D12: `radiomx qc OUT` exited 1 for a scan whose load failure was in acknowledged.tsv; the rule of extract
    holds for qc too (shown as ACKNOWLEDGED, exit 0), and a picture failure of an unacknowledged scan still exits 1."""
    cohort, out = small_cohort, tmp_path / "out"
    (cohort / "P002" / "FDG" / "pet.nii.gz").write_bytes(b"not an image")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 1
    unacknowledged = run("qc", out, "-j", "1")
    assert unacknowledged.exit_code == 1 and "FAILED P002/18F-FDG [qc]" in unacknowledged.stderr
    (out / "acknowledged.tsv").write_text("patient_id\tsession\ttracer\tstage\treason\nP002\t\tfdg\tload\tknown\n")
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0
    acknowledged = run("qc", out, "-j", "1")
    assert acknowledged.exit_code == 0, acknowledged.stderr
    assert "ACKNOWLEDGED P002/18F-FDG [qc]" in acknowledged.stderr and "(acknowledged: known)" in acknowledged.stderr
    assert "FAILED" not in acknowledged.stderr and "(1 acknowledged)" in acknowledged.stderr
