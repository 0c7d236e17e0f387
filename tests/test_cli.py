"""The CLI as a user runs it: CliRunner for exit codes and both streams, real subprocesses for pipes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli

from .conftest import make_cohort, sphere_scan, write_volume

RADIOMX = [sys.executable, "-m", "radiomx"]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_extract_writes_one_keyed_row_per_lesion(small_cohort, tmp_path):
    result = run("extract", small_cohort, "-o", tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # stdout carries only data; this command prints none
    assert "4 lesion rows written" in result.stderr
    fdg = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(fdg[["patient_id", "lesion_id"]].itertuples(index=False, name=None)) == [
        ("P001", 1), ("P001", 2), ("P002", 1)]
    assert set(fdg["tracer"]) == {"18F-FDG"} and set(fdg["session"]) == {""}
    for column in ("params_version", "params_sha256", "radiomx_version", "pyradiomics_version", "image_sha256",
                   "mask_sha256", "extracted_at"):
        assert fdg[column].notna().all(), column
    features = [c for c in fdg.columns if c.startswith("original_")]
    assert len(features) > 90 and all(fdg[c].dtype == np.float64 for c in features)
    assert not fdg.duplicated(["patient_id", "session", "tracer", "lesion_id"]).any()
    pentix = pd.read_parquet(tmp_path / "out" / "features" / "68Ga-pentixafor.parquet")
    assert len(pentix) == 1


def test_each_tracer_table_reads_in_one_call_with_pandas_pyarrow_and_duckdb(small_cohort, tmp_path):
    assert run("extract", small_cohort, "-o", tmp_path / "out", "-j", "1").exit_code == 0
    path = tmp_path / "out" / "features" / "18F-FDG.parquet"
    by_pandas = pd.read_parquet(path)
    by_arrow = ds.dataset(path).to_table().to_pandas()
    by_duckdb = duckdb.sql(f"SELECT * FROM '{path}' ORDER BY patient_id, lesion_id").df()
    assert len(by_pandas) == len(by_arrow) == len(by_duckdb) == 3
    assert list(by_pandas.columns) == list(by_arrow.columns) == list(by_duckdb.columns)
    np.testing.assert_array_equal(by_pandas["original_firstorder_Mean"], by_duckdb["original_firstorder_Mean"])


def test_scan_lists_one_line_per_scan_and_pipes_into_extract(small_cohort, tmp_path):
    listing = run("scan", small_cohort)
    assert listing.exit_code == 0
    lines = listing.stdout.strip().splitlines()
    assert [ln.split("\t")[:3] for ln in lines] == [["P001", "", "18F-FDG"], ["P001", "", "68Ga-pentixafor"],
                                                    ["P002", "", "18F-FDG"]]
    only_fdg = "".join(ln + "\n" for ln in lines if "\t18F-FDG\t" in ln)
    result = CliRunner().invoke(cli, ["extract", str(small_cohort), "-o", str(tmp_path / "out"), "-j", "1",
                                      "--scans", "-"], input=only_fdg)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "features").iterdir()) == ["18F-FDG.parquet"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_table_prints_the_features_to_stdout(small_cohort, tmp_path, fmt):
    assert run("extract", small_cohort, "-o", tmp_path / "out", "-j", "1").exit_code == 0
    out = subprocess.run([*RADIOMX, "table", str(tmp_path / "out"), "--tracer", "18F-FDG", "--format", fmt],
                         capture_output=True, check=True)
    reader = {"csv": lambda b: pd.read_csv(io.BytesIO(b), keep_default_na=False),
              "tsv": lambda b: pd.read_csv(io.BytesIO(b), sep="\t", keep_default_na=False),
              "jsonl": lambda b: pd.read_json(io.BytesIO(b), lines=True),
              "parquet": lambda b: pd.read_parquet(io.BytesIO(b))}[fmt]
    frame = reader(out.stdout)
    original = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(frame["lesion_id"]) == list(original["lesion_id"])
    # JSON carries 15 significant digits; CSV, TSV and Parquet are exact
    np.testing.assert_allclose(frame["original_firstorder_Mean"], original["original_firstorder_Mean"], rtol=1e-14)


def test_real_subprocess_pipeline_and_broken_pipe(small_cohort, tmp_path):
    """`radiomx extract` as a real process, then `radiomx table OUT | head -1` exits quietly."""
    proc = subprocess.run([*RADIOMX, "extract", str(small_cohort), "-o", str(tmp_path / "out"), "-j", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "tables in" in proc.stderr
    pipeline = subprocess.run(f"{sys.executable} -m radiomx table {tmp_path / 'out'} | head -1", shell=True,
                              capture_output=True, text=True)
    assert pipeline.stdout.startswith("patient_id,session,tracer,lesion_id")
    assert pipeline.stderr == ""


def _break_geometry(cohort: Path) -> None:
    mask = sitk.ReadImage(str(cohort / "P002" / "FDG" / "mask.nii.gz"))
    mask.SetOrigin((0.0, 0.0, 10.0))
    sitk.WriteImage(mask, str(cohort / "P002" / "FDG" / "mask.nii.gz"))


def _unknown_tracer(cohort: Path) -> None:
    (cohort / "P002" / "FDG").rename(cohort / "P002" / "FDG-2nd-try")


def _missing_mask(cohort: Path) -> None:
    (cohort / "P002" / "FDG" / "mask.nii.gz").unlink()


def _truncated_image(cohort: Path) -> None:
    path = cohort / "P002" / "FDG" / "pet.nii.gz"
    path.write_bytes(path.read_bytes()[:200])


BAD_INPUTS = [
    (_break_geometry, "geometry", "mask origin"),
    (_unknown_tracer, "discover", "unknown tracer folder 'FDG-2nd-try'"),
    (_missing_mask, "discover", "no mask found"),
    (_truncated_image, "load", "image file is truncated"),
]


@pytest.mark.parametrize("break_it, stage, message", BAD_INPUTS, ids=[b.__name__ for b, _, _ in BAD_INPUTS])
def test_bad_input_becomes_one_failure_row_and_good_scans_are_written(small_cohort, tmp_path, break_it, stage,
                                                                       message):
    break_it(small_cohort)
    result = run("extract", small_cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    failed_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("radiomx: FAILED")]
    assert len(failed_lines) == 1 and message in failed_lines[0] and "P002" in failed_lines[0]
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert len(failures) == 1
    row = failures.iloc[0]
    assert (row["patient_id"], row["stage"]) == ("P002", stage) and message in row["message"]
    assert row["file"].startswith("P002/") and str(small_cohort) not in row["message"]  # relative to the cohort
    fdg = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert set(fdg["patient_id"]) == {"P001"}  # the good scans are still written
    assert len(pd.read_parquet(tmp_path / "out" / "features" / "68Ga-pentixafor.parquet")) == 1


def test_usage_errors_exit_2(tmp_path):
    assert run("extract", tmp_path / "nope", "-o", tmp_path / "out").exit_code == 2
    assert run("extract").exit_code == 2
    result = run("table", tmp_path / "empty")
    assert result.exit_code == 2 and "no feature tables found" in result.stderr


def test_components_split_gives_stable_ids(tmp_path):
    """Components of one label are numbered in raster (z, y, x) order of their first voxel. The three blobs differ
    in size, and that order is neither the order they were drawn in nor an order by size, so a wrong numbering
    shows as wrong voxel counts."""
    image, _ = sphere_scan()
    z, y, x = np.indices(image.shape)
    blobs = {"B": ((12, 20, 22), 5), "C": ((17, 8, 24), 4), "A": ((5, 8, 8), 3)}  # drawn B, C, A
    mask = np.zeros(image.shape, dtype=np.uint8)
    counts = {}
    for name, ((cz, cy, cx), r) in blobs.items():
        inside = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r**2
        mask[inside] = 1  # one binary label, three blobs
        image[inside] += {"A": 2.0, "B": 5.0, "C": 9.0}[name]
        counts[name] = int(inside.sum())
    cohort = tmp_path / "cohort"
    write_volume(image, cohort / "P001" / "FDG" / "pet.nii.gz")
    write_volume(mask, cohort / "P001" / "FDG" / "mask.nii.gz")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    labels = run("extract", cohort, "-o", tmp_path / "a", "-j", "1")
    comps = run("extract", cohort, "-o", tmp_path / "b", "-j", "1", "--lesions", "components")
    again = run("extract", cohort, "-o", tmp_path / "c", "-j", "1", "--lesions", "components")
    assert labels.exit_code == comps.exit_code == again.exit_code == 0
    assert len(pd.read_parquet(tmp_path / "a" / "features" / "18F-FDG.parquet")) == 1
    b = pd.read_parquet(tmp_path / "b" / "features" / "18F-FDG.parquet")
    c = pd.read_parquet(tmp_path / "c" / "features" / "18F-FDG.parquet")
    assert list(b["lesion_id"]) == [1, 2, 3] and list(b["source_label"]) == [1, 1, 1]
    # first voxels: A at z=2, B at z=7, C at z=13 (sizes: small, large, medium)
    assert list(b["voxel_count"]) == [counts["A"], counts["B"], counts["C"]]
    assert len(set(counts.values())) == 3
    assert list(b["original_firstorder_Median"].rank()) == [1.0, 2.0, 3.0]  # intensities follow A < B < C
    pd.testing.assert_frame_equal(b.drop(columns="extracted_at"), c.drop(columns="extracted_at"))


def test_image_and_mask_are_read_once_per_scan_whatever_the_lesion_count(tmp_path, monkeypatch):
    """Each input file is read and inflated once per scan: the integrity check, the voxels and the sha256 recorded
    with the rows share one read; ITK never reads it a second time, whatever the number of lesions."""
    import hashlib

    from radiomx import fingerprint
    from radiomx.inputs import nifti

    reads: list[str] = []
    itk_reads: list[str] = []
    hashed_again: list[str] = []
    original_inflate, original_read, original_hash = nifti.inflate, sitk.ReadImage, fingerprint.file_sha256

    def counting_hash(path, *args, **kwargs):
        hashed_again.append(str(path))
        return original_hash(path, *args, **kwargs)

    def counting_inflate(path, *args, **kwargs):
        reads.append(str(path))
        return original_inflate(path, *args, **kwargs)

    def counting_read(path, *args, **kwargs):
        itk_reads.append(str(path))
        return original_read(path, *args, **kwargs)

    original_execute = sitk.ImageFileReader.Execute

    def counting_execute(reader, *args, **kwargs):  # the voxel read; ReadImageInformation reads the header only
        itk_reads.append(reader.GetFileName())
        return original_execute(reader, *args, **kwargs)

    monkeypatch.setattr(nifti, "inflate", counting_inflate)
    monkeypatch.setattr(sitk, "ReadImage", counting_read)
    monkeypatch.setattr(sitk.ImageFileReader, "Execute", counting_execute)
    monkeypatch.setattr(fingerprint, "file_sha256", counting_hash)
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 5}})
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert len(rows) == 5
    assert sorted(Path(p).name for p in reads) == ["mask.nii.gz", "pet.nii.gz"]
    assert itk_reads == []
    assert hashed_again == []
    pet = cohort / "P001" / "FDG" / "pet.nii.gz"
    assert set(rows["image_sha256"]) == {hashlib.sha256(pet.read_bytes()).hexdigest()}


def test_label_option_restricts_and_reports_absent_labels(small_cohort, tmp_path):
    result = run("extract", small_cohort, "-o", tmp_path / "out", "-j", "1", "--label", "2", "--label", "7")
    assert result.exit_code == 1
    fdg = pd.read_parquet(tmp_path / "out" / "features" / "18F-FDG.parquet")
    assert list(fdg["lesion_id"]) == [2]
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert set(failures["lesion_id"]) == {2, 7}  # 7 absent everywhere; 2 absent where only label 1 exists
    assert failures["message"].str.contains("not present in mask").all()


def test_unexpected_error_is_one_line_and_its_traceback_goes_to_verbose_or_log_file(small_cohort, tmp_path,
                                                                                       monkeypatch):
    import radiomx.run.worker

    def broken(params, item):
        raise RuntimeError("simulated bug in feature code")

    monkeypatch.setattr(radiomx.run.worker, "extract_input", broken)
    log = tmp_path / "radiomx.log"
    quiet = run("extract", small_cohort, "-o", tmp_path / "a", "-j", "1", "--log-file", log)
    assert quiet.exit_code == 1
    assert "Traceback" not in quiet.stderr
    assert "unexpected RuntimeError: simulated bug in feature code" in quiet.stderr
    assert "Traceback (most recent call last)" in log.read_text() and "simulated bug" in log.read_text()
    verbose = run("--verbose", "extract", small_cohort, "-o", tmp_path / "b", "-j", "1")
    assert verbose.exit_code == 1 and "Traceback (most recent call last)" in verbose.stderr


def test_cli_flags_and_python_arguments_build_equal_options(small_cohort, tmp_path, extract_options):
    """Both entry points (CLI flags, ``api.extract`` arguments) must mean the same extraction."""
    from radiomx.options import ExtractOptions

    seen = extract_options
    run("extract", small_cohort, "-o", tmp_path / "out", "--jobs", "3", "--lesions", "components", "--label", "2",
        "--label", "1", "--params-version", "v1", "--force", "--wait", "5", "--batch-size", "4", "--pet-units", "SUVbw",
        "--qc")
    expected = ExtractOptions(jobs=3, lesions="components", labels=(1, 2), params_version="v1", force=True, wait=5.0,
                              batch_size=4, pet_units="SUVbw", qc=True)
    assert seen["options"] == expected  # ``cli`` inside this (pytest's) process: the library's spawn pools
    with pytest.raises(Exception, match="--lesions must be one of"):
        ExtractOptions(lesions="blobs")
    with pytest.raises(TypeError, match="unknown extract option"):
        ExtractOptions.from_flags({"jobz": 2})


def test_real_process_exit_codes(small_cohort, tmp_path):
    """0, 1 and 2 as documented, from the real entry point."""
    version = subprocess.run([*RADIOMX, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "radiomx" in version.stdout
    usage = subprocess.run([*RADIOMX, "extract", str(small_cohort), "-o", str(tmp_path / "o2"), "--params-dir",
                            str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1, usage.stderr
    _break_geometry(small_cohort)
    partial = subprocess.run([*RADIOMX, "extract", str(small_cohort), "-o", str(tmp_path / "o1"), "-j", "2"],
                             capture_output=True, text=True)
    assert partial.returncode == 1, partial.stderr
    assert "geometry" in partial.stderr and "tables in" in partial.stderr
    assert len(pd.read_parquet(tmp_path / "o1" / "features" / "18F-FDG.parquet")) > 0
