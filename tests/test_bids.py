"""BIDS-PET cohorts: discovery, sidecar SUV with body weight from participants/sessions TSVs, and the same table as
the default layout for the same data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.discover.cohort import discover
from radiomx.inputs import suv

from .conftest import sphere_scan, write_volume

PARAMS = ("radiomx:\n  units: SUVbw\nsetting:\n  binWidth: 0.25\n  minimumROIDimensions: 1\n"
          "imageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n  shape: [VoxelVolume]\n")
UPTAKE_S, DOSE_MBQ = 3600.0, 350.0


def params_dir(root: Path) -> Path:
    for tracer in ("18F-FDG", "68Ga-pentixafor"):
        (root / tracer).mkdir(parents=True, exist_ok=True)
        (root / tracer / "v1.yaml").write_text(PARAMS)
    return root


def sidecar_for(nuclide: str) -> dict:
    return {"Units": "Bq/mL", "TracerRadionuclide": nuclide, "InjectedRadioactivity": DOSE_MBQ,
            "InjectedRadioactivityUnits": "MBq", "TimeZero": "09:30:00", "InjectionStart": 0, "ScanStart": UPTAKE_S,
            "ImageDecayCorrected": True, "ImageDecayCorrectionTime": UPTAKE_S, "FrameTimesStart": [0],
            "FrameDuration": [600]}


def write_pet(image_path: Path, mask_path: Path, weight_kg: float, half_life: float, nuclide: str, seed: int):
    """A Bq/mL image whose true SUV is the conftest sphere image; returns the SUV array and its mask."""
    suv_image, mask = sphere_scan(seed=seed)
    activity = suv_image.astype(np.float64) * DOSE_MBQ * 1e6 * suv.decay_factor(UPTAKE_S, half_life) / (
        weight_kg * 1000)
    write_volume(activity.astype(np.float32), image_path)
    write_volume(mask, mask_path)
    image_path.with_name(image_path.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar_for(nuclide)))
    return suv_image, mask


def write_tsvs(root: Path, sessions_dir: Path) -> None:
    sessions_dir.mkdir(parents=True, exist_ok=True)
    (root / "participants.tsv").write_text("participant_id\tage\tbody_weight\nsub-01\t50\t70\nsub-02\t60\t82.5\n")
    (sessions_dir / ("sub-01_sessions.tsv" if sessions_dir.name.startswith("sub-") else "sessions.tsv")).write_text(
        "session_id\tbody_weight\nses-1\t75\nses-2\tn/a\n")


def bids_cohort(root: Path) -> Path:
    """sub-01 (sessions 1, 2; FDG) and sub-02 (no session; pentixafor, dseg mask)."""
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    write_tsvs(root, root / "sub-01")
    derivatives = root / "derivatives" / "lesions"
    for ses, weight, seed in (("1", 75.0, 1), ("2", 70.0, 2)):
        stem = f"sub-01_ses-{ses}_trc-FDG_rec-acstat"
        write_pet(root / f"sub-01/ses-{ses}/pet/{stem}_pet.nii.gz",
                  derivatives / f"sub-01/ses-{ses}/pet/{stem}_desc-tumour_mask.nii.gz", weight, 6586.2, "F18", seed)
    write_pet(root / "sub-02/pet/sub-02_trc-pentixafor_pet.nii.gz",
              derivatives / "sub-02/pet/sub-02_trc-pentixafor_dseg.nii.gz", 82.5, 4057.7, "Ga68", 3)
    return root


def default_cohort_from(bids: Path, root: Path) -> Path:
    """The same files in the default layout: <p>/[<s>/]<tracer>/pet.nii.gz + pet.json + mask.nii.gz."""
    write_tsvs(root, root / "01")
    pairs = {("01/1/FDG"): ("sub-01/ses-1/pet/sub-01_ses-1_trc-FDG_rec-acstat", "sub-01/ses-1/pet/sub-01_ses-1_trc-FDG"
                                                                                "_rec-acstat_desc-tumour_mask"),
             ("01/2/FDG"): ("sub-01/ses-2/pet/sub-01_ses-2_trc-FDG_rec-acstat", "sub-01/ses-2/pet/sub-01_ses-2_trc-FDG"
                                                                                "_rec-acstat_desc-tumour_mask"),
             ("02/pentixafor"): ("sub-02/pet/sub-02_trc-pentixafor", "sub-02/pet/sub-02_trc-pentixafor_dseg")}
    for folder, (image, mask) in pairs.items():
        (root / folder).mkdir(parents=True)
        shutil.copy(bids / f"{image}_pet.nii.gz", root / folder / "pet.nii.gz")
        shutil.copy(bids / f"{image}_pet.json", root / folder / "pet.json")
        shutil.copy(bids / "derivatives" / "lesions" / f"{mask}.nii.gz", root / folder / "mask.nii.gz")
    return root


def test_bids_layout_is_discovered_with_keys_masks_and_weights(tmp_path: Path) -> None:
    scans = discover(bids_cohort(tmp_path / "bids"))
    assert [(s.key.patient_id, s.key.session, s.key.tracer, s.problem) for s in scans] == [
        ("01", "1", "18F-FDG", None), ("01", "2", "18F-FDG", None), ("02", "", "68Ga-pentixafor", None)]
    assert [s.mask.name for s in scans] == ["sub-01_ses-1_trc-FDG_rec-acstat_desc-tumour_mask.nii.gz",
                                            "sub-01_ses-2_trc-FDG_rec-acstat_desc-tumour_mask.nii.gz",
                                            "sub-02_trc-pentixafor_dseg.nii.gz"]
    # sessions.tsv wins; its "n/a" falls back to participants.tsv
    assert [(s.body_weight_kg, Path(s.body_weight_source).name) for s in scans] == [
        (75.0, "sub-01_sessions.tsv"), (70.0, "participants.tsv"), (82.5, "participants.tsv")]


@pytest.mark.parametrize("breaks, message", [
    (lambda r: (r / "derivatives").rename(r / "elsewhere"), "no mask found"),
    (lambda r: shutil.copy(r / "derivatives/lesions/sub-02/pet/sub-02_trc-pentixafor_dseg.nii.gz",
                           r / "derivatives/lesions/sub-02/pet/sub-02_trc-pentixafor_desc-b_mask.nii.gz"),
     "several masks"),
    (lambda r: (r / "sub-02/pet/sub-02_trc-pentixafor_pet.nii.gz").rename(r / "sub-02/pet/sub-02_trc-xyz_pet.nii.gz"),
     "unknown tracer folder 'xyz'"),
    (lambda r: (r / "sub-02/pet/sub-02_trc-pentixafor_pet.nii.gz").rename(r / "sub-02/pet/sub-02_pet.nii.gz"),
     "no trc-<tracer> entity"),
])
def test_bids_discovery_problems_travel_with_the_scan(tmp_path: Path, breaks, message: str) -> None:
    root = bids_cohort(tmp_path / "bids")
    breaks(root)
    problems = [s.problem for s in discover(root) if s.key.patient_id == "02"]
    assert len(problems) == 1 and problems[0] is not None and message in problems[0][2]


def run(cohort: Path, out: Path, params: Path):
    return CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--params-dir", str(params), "--jobs", "2"])


def features(out: Path) -> pd.DataFrame:
    frame = pd.concat([pd.read_parquet(p) for p in sorted((out / "features").glob("*.parquet"))], ignore_index=True)
    return frame.sort_values(["patient_id", "session", "tracer", "lesion_id"]).reset_index(drop=True)


def test_bids_and_default_layout_give_the_same_table(tmp_path: Path) -> None:
    bids = bids_cohort(tmp_path / "bids")
    default = default_cohort_from(bids, tmp_path / "default")
    params = params_dir(tmp_path / "params")
    for cohort, out in ((bids, tmp_path / "out_bids"), (default, tmp_path / "out_default")):
        result = run(cohort, out, params)
        assert result.exit_code == 0, result.output + result.stderr
    a, b = features(tmp_path / "out_bids"), features(tmp_path / "out_default")
    varying = ["image_file", "mask_file", "extracted_at"]
    pd.testing.assert_frame_equal(a.drop(columns=varying), b.drop(columns=varying))
    assert len(a) == 6 and set(a["suv_source"]) == {"bids-sidecar"}
    assert list(a["suv_weight_kg"].unique()) == [75.0, 70.0, 82.5]
    # the Bq/mL images were made from known SUV images: the extracted SUVmax is the true one
    suv_image, mask = sphere_scan(seed=3)
    pentix = a[a["tracer"] == "68Ga-pentixafor"].set_index("lesion_id")
    for label in (1, 2):
        assert pentix.loc[label, "original_firstorder_Maximum"] == pytest.approx(
            float(suv_image[mask == label].max()), rel=1e-5)


def test_bids_scan_without_body_weight_fails_naming_the_tsv(tmp_path: Path) -> None:
    bids = bids_cohort(tmp_path / "bids")
    (bids / "participants.tsv").write_text("participant_id\tbody_weight\nsub-01\t70\nsub-02\t0\n")
    result = run(bids, tmp_path / "out", params_dir(tmp_path / "params"))
    assert result.exit_code == 1
    (failure,) = pd.read_parquet(tmp_path / "out" / "failures.parquet").to_dict("records")
    assert (failure["patient_id"], failure["stage"]) == ("02", "suv")
    assert failure["file"].endswith("participants.tsv")
    assert "body_weight is 0; SUVbw needs it (add body_weight to participants.tsv" in failure["message"]


@pytest.mark.parametrize("units", ["g/ml", "g/mL", "SUVbw"])
def test_a_sidecar_declaring_suv_records_its_units_not_a_weight_file(tmp_path: Path, units: str) -> None:
    """``"Units": "g/ml"`` is a declaration, not a path: the row and the QC caption say ``sidecar Units g/ml`` (the
    weight-file rewrite read it as a path and wrote ``ml body_weight``), and a Bq/mL sidecar still names its TSV."""
    from radiomx.params.paramset import default_params_root, resolve_params
    from radiomx.qc.draw import caption
    from radiomx.records import ScanKey
    from radiomx.tracers import get_tracer

    cohort = tmp_path / "cohort"
    image, mask = sphere_scan(seed=4)
    write_volume(image, cohort / "P001" / "FDG" / "pet.nii.gz")
    write_volume(mask, cohort / "P001" / "FDG" / "mask.nii.gz")
    (cohort / "P001" / "FDG" / "pet.json").write_text(json.dumps({"Units": units}))
    write_pet(cohort / "P002" / "FDG" / "pet.nii.gz", cohort / "P002" / "FDG" / "mask.nii.gz", 70.0, 6586.2, "F18", 5)
    (cohort / "participants.tsv").write_text("participant_id\tbody_weight\nP002\t70\n")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir",
                                      str(params_dir(tmp_path / "params")), "--jobs", "1", "--qc"])
    assert result.exit_code == 0, result.stderr
    rows = features(tmp_path / "out").groupby("patient_id").first()
    assert rows.loc["P001", "suv_source"] == "declared"
    assert rows.loc["P001", "suv_weight_source"] == f"sidecar Units {units}"
    assert rows.loc["P002", "suv_weight_source"] == "participants.tsv body_weight"
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"))
    text = caption(ScanKey("P001", "", "18F-FDG"), params, "SUVbw", rows.loc["P001"].to_dict(), 2, (0.0, 10.0))
    assert f"source declared (sidecar Units {units})" in text and "body_weight" not in text
