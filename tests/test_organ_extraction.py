"""Organ segmentations end to end through ``radiomx extract`` (issue 24): the synthetic patient of
``tests/organ_phantom.py`` (organs on a CT grid of other spacing, origin and extent than the PET's, every organ part
of one known SUV, six lesions in known organs) written as a cohort, extracted by the real CLI, read back from the
real Parquet tables.

Known answers by construction (the phantom's docstring): right liver lobe 2.0 (left 3.0), descending thoracic aorta
1.7, spleen 1.5, vertebral bodies 1.1, left adrenal 3.2 and right 2.2; the adenoma lies in the left adrenal, so the
contralateral adrenal is the right one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.api import read_table
from radiomx.cli import cli
from radiomx.columns import REFERENCE_REGIONS

from . import organ_phantom as ph

SITES = {1: ("liver", "liver"), 2: ("vertebrae_L3", "bone"), 3: ("spleen", "spleen"), 4: ("other", "outside_organs"),
         5: ("adrenal_gland_left", "other_extranodal"), 6: ("lung_upper_lobe_right", "lung")}
MEANS = {"liver": 2.0, "bloodpool": 1.7, "spleen": 1.5, "marrow": 1.1, "adrenal_contralateral": 2.2}
#: A hand-drawn liver region in the left lobe (3.0): it must win over the derived one (2.0).
DRAWN_LIVER_CENTRE, DRAWN_LIVER_HALF = (5.0, -40.0, -65.0), 10.0


def write_scan(folder, phantom: ph.Phantom) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(phantom.pet, str(folder / "pet.nii.gz"))
    labels = np.zeros(phantom.pet.GetSize()[::-1], dtype=np.uint8)
    for number, lesion in enumerate(ph.LESIONS, start=1):
        labels[phantom.lesions[lesion.name]] = number
    sitk.WriteImage(ph.as_image(labels, phantom.pet), str(folder / "mask.nii.gz"))


def drawn_liver(phantom: ph.Phantom) -> sitk.Image:
    points = ph.centres(phantom.pet)
    inside = np.all(np.abs(points - np.asarray(DRAWN_LIVER_CENTRE)) <= DRAWN_LIVER_HALF, axis=-1)
    return ph.as_image(inside.astype(np.uint8), phantom.pet)


def shifted_liver_folder(phantom: ph.Phantom, folder) -> None:
    """The organ folder with the liver mask moved 600 mm up: outside the PET's field of view."""
    ph.write_folder(phantom, folder)
    liver = ph.as_image(phantom.organs["liver"].astype(np.uint8), phantom.ct)
    x, y, z = liver.GetOrigin()
    liver.SetOrigin((x, y, z + 600.0))
    sitk.WriteImage(liver, str(folder / "liver.nii.gz"), True)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """P001: a per-class folder; P002: a multilabel file (TotalSegmentator --ml) and a hand-drawn ref-liver;
    P003: the liver mask outside the PET's field of view; P004: no organs."""
    root = tmp_path_factory.mktemp("organ-cohort")
    cohort, out = root / "cohort", root / "out"
    phantom = ph.build()
    for patient in ("P001", "P002", "P003", "P004"):
        write_scan(cohort / patient / "FDG", phantom)
    ph.write_folder(phantom, cohort / "P001" / "FDG" / "organs")
    ph.write_multilabel(phantom, cohort / "P002" / "FDG" / "organs.nii.gz")
    sitk.WriteImage(drawn_liver(phantom), str(cohort / "P002" / "FDG" / "ref-liver.nii.gz"))
    shifted_liver_folder(phantom, cohort / "P003" / "FDG" / "organs")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1", "--qc"])
    return cohort, out, result, phantom


def state_of(out, patient: str) -> dict:
    state = read_table(out, which="scans")
    return state[state.patient_id == patient].iloc[0].to_dict()


def test_extract_runs_and_only_the_expected_problems_are_reported(extracted):
    _, out, result, _ = extracted
    assert result.exit_code == 0, result.output
    failures = read_table(out, which="failures")
    assert set(failures.severity) == {"warning"}
    organs = failures[failures.stage == "organs"]
    # The brain mask lies above the PET's field of view on every scan with organs; P003's liver does too.
    assert sorted(organs.patient_id) == ["P001", "P002", "P003", "P003"]
    p003 = organs[organs.patient_id == "P003"].message.tolist()
    assert any("reference region liver not derived" in m and "field of view" in m for m in p003)
    assert all("brain" in m for m in organs[organs.patient_id != "P003"].message)
    assert not failures.file.str.startswith("/").any() and not failures.message.str.contains(str(out.parent)).any()


@pytest.mark.parametrize("patient", ["P001", "P002"])
def test_derived_regions_read_their_parts_exactly_in_state_and_burden(extracted, patient):
    _, out, _, phantom = extracted
    state = state_of(out, patient)
    burden = read_table(out, which="burden").set_index("patient_id").loc[patient]
    for region, mean in MEANS.items():
        if patient == "P002" and region == "liver":
            continue
        assert state[f"ref_{region}_suv_mean"] == pytest.approx(mean, abs=1e-6), region
        assert state[f"ref_{region}_suv_sd"] == pytest.approx(0.0, abs=1e-6), region
        assert burden[f"ref_{region}_suv_mean"] == state[f"ref_{region}_suv_mean"]
        assert burden[f"ref_{region}_source"] == state[f"ref_{region}_source"] != ""
        assert burden[f"ref_{region}_voxels"] == state[f"ref_{region}_voxels"] > 0
        assert state[f"ref_{region}_reason"] == ""
        assert not state[f"ref_{region}_source"].startswith("/")
    voxel_ml = float(np.prod(ph.PET_SPACING)) / 1000.0
    liver_volume = state["ref_liver_volume_ml"]
    if patient == "P001":
        # The lattice sphere of 30 mm on the 4.07 x 4.07 x 3.27 mm grid: 253 voxels (tests/test_organ_references.py
        # counts it independently), 13.72 mL against the nominal 14.14 mL.
        assert state["ref_liver_voxels"] == 253 and liver_volume == pytest.approx(253 * voxel_ml)
        assert abs(liver_volume - 4 / 3 * math.pi * 15.0**3 / 1000) < 0.05 * 14.137
        assert state["ref_liver_source"].startswith("P001/FDG/organs/liver.nii.gz: PERCIST liver (Wahl 2009)")
        assert state["ref_liver_centre_x_mm"] < ph.LOBE_SPLIT_X  # in the right lobe (LPS: right is -x)
        assert state["organs_file"] == "P001/FDG/organs" and state["organs_form"] == "folder"
        # Every vertebra T5-T10 bounds the cylinder's slices, so every one is named with the aorta.
        assert state["ref_bloodpool_file"] == ", ".join(
            f"P001/FDG/organs/{name}.nii.gz" for name in ("aorta", *(f"vertebrae_T{k}" for k in range(5, 11))))
        assert state["ref_bloodpool_source"].startswith(state["ref_bloodpool_file"] + ": PERCIST blood pool")
    else:
        assert state["organs_file"] == "P002/FDG/organs.nii.gz" and state["organs_form"] == "labels"
        assert state["ref_spleen_source"].startswith("P002/FDG/organs.nii.gz [1 spleen]: radiomx spleen")
    assert "aorta" in state["ref_bloodpool_source"] and "PERCIST blood pool" in state["ref_bloodpool_source"]
    # docs/organs.md: burden copies every ref_<R>_* column of the state but ref_<R>_file (its source names it).
    state_refs = {c for c in state if c.startswith("ref_")}
    assert state_refs - set(burden.index) == {f"ref_{r}_file" for r in REFERENCE_REGIONS}
    assert "adrenal_gland_right" in state["ref_adrenal_contralateral_source"]
    assert {"liver", "spleen", "aorta", "adrenal_gland_left", "vertebrae_L3"} <= set(state["organs_classes"].split(","))
    assert len(state["organs_sha256"]) == 64 and state["organs_stat"]


def test_a_hand_drawn_region_wins_over_the_derived_one(extracted):
    _, out, _, _ = extracted
    state = state_of(out, "P002")
    assert state["ref_liver_suv_mean"] == pytest.approx(3.0, abs=1e-6)  # the left lobe, where it was drawn
    assert state["ref_liver_source"] == "drawn: P002/FDG/ref-liver.nii.gz"
    assert state["ref_liver_file"] == "P002/FDG/ref-liver.nii.gz"
    lesions = read_table(out)
    liver_lesion = lesions[(lesions.patient_id == "P002") & (lesions.lesion_id == 1)].iloc[0]
    assert liver_lesion.suv_max_to_liver == pytest.approx(7.0 / 3.0, rel=1e-6)


def test_an_organ_outside_the_field_of_view_gives_a_null_region_with_its_reason(extracted):
    _, out, _, _ = extracted
    state = state_of(out, "P003")
    assert math.isnan(state["ref_liver_suv_mean"]) and state["ref_liver_source"] == ""
    assert "field of view" in state["ref_liver_reason"] and "liver" in state["ref_liver_reason"]
    assert state["ref_spleen_suv_mean"] == pytest.approx(1.5, abs=1e-6)
    assert state["status"] == "ok"
    p003 = read_table(out).query("patient_id == 'P003'").set_index("lesion_id")
    # The liver is not on the PET grid, so the liver lesion lies outside every organ read.
    assert p003.loc[1, "lesion_site"] == "other" and "liver" not in state["organs_classes"].split(",")


def test_lesion_sites_and_the_burden_by_site_adds_up_to_the_tmtv(extracted):
    _, out, _, _ = extracted
    lesions = read_table(out).query("patient_id == 'P001'").set_index("lesion_id")
    for lesion_id, (site, group) in SITES.items():
        assert lesions.loc[lesion_id, "lesion_site"] == site, lesion_id
        assert lesions.loc[lesion_id, "lesion_site_group"] == group
        assert 0.5 < lesions.loc[lesion_id, "lesion_site_fraction"] <= 1.0
    assert lesions.loc[5, "adrenal_side"] == "left" and set(lesions.drop(index=5).adrenal_side) == {""}
    burden = read_table(out, which="burden").set_index("patient_id").loc["P001"]
    groups = ("bone", "spleen", "liver", "lung", "other_extranodal", "outside_organs")
    assert sum(burden[f"site_{g}_volume_ml"] for g in groups) == pytest.approx(burden.tmtv_ml, rel=1e-9)
    assert sum(burden[f"site_{g}_tlg"] for g in groups) == pytest.approx(burden.ttlg, rel=1e-9)
    assert sum(burden[f"site_{g}_count"] for g in groups) == burden.lesion_count == 6
    by_group = lesions.groupby("lesion_site_group").mtv_ml.sum()  # no overlap here: the sums are the union's
    for group in groups:
        assert burden[f"site_{group}_volume_ml"] == pytest.approx(by_group.get(group, 0.0), rel=1e-9)


def test_a_scan_without_organs_keeps_its_columns_empty(extracted):
    _, out, _, _ = extracted
    state = state_of(out, "P004")
    assert state["organs_file"] == "" and state["organs_classes"] == ""
    assert pd.isna(state["site_liver_count"]) and all(math.isnan(state[f"ref_{r}_suv_mean"]) for r in MEANS)
    lesions = read_table(out).query("patient_id == 'P004'")
    assert len(lesions) == 6 and lesions.lesion_site_fraction.isna().all()
    for column in ("lesion_site", "lesion_site_group", "adrenal_side"):
        assert lesions[column].tolist() == [""] * 6, column  # "" (no organs), never null


def test_a_cohort_without_organs_has_the_lesion_site_columns_and_older_parts_read_them_as_declared(tmp_path):
    """Feature tables of cohorts with and without organs stack with one schema: the lesion-site columns are always
    there ("" and a null fraction without organs). A part an older radiomx wrote without them (here: the columns
    dropped from the stored parts) reads them as "" once a new scan makes the run publish again."""
    import pyarrow.parquet as pq

    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    write_scan(cohort / "P001" / "FDG", phantom)
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    columns = ["lesion_site", "lesion_site_fraction", "lesion_site_group", "adrenal_side"]
    assert CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    first = read_table(out)
    assert len(first) == 6 and first.lesion_site_fraction.isna().all()
    assert {c: first[c].tolist() for c in columns if c != "lesion_site_fraction"} == dict.fromkeys(
        ("lesion_site", "lesion_site_group", "adrenal_side"), [""] * 6)
    parts = sorted((out / ".parts" / "18F-FDG").glob("*.parquet"))
    assert parts
    for part in parts:
        old = pq.read_table(part)
        pq.write_table(old.drop_columns(columns).replace_schema_metadata(old.schema.metadata), part)
    (out / "features" / "18F-FDG.parquet").unlink()  # the parts themselves are read (a killed run's reader)
    stale = read_table(out)
    assert stale.lesion_site.tolist() == [""] * 6 and stale.lesion_site_fraction.isna().all()
    write_scan(cohort / "P002" / "FDG", phantom)
    assert CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    both = read_table(out)
    assert sorted(set(both.patient_id)) == ["P001", "P002"] and both.lesion_site_fraction.isna().all()
    for column in ("lesion_site", "lesion_site_group", "adrenal_side"):
        assert both[column].tolist() == [""] * 12, column


def test_table_command_shows_the_new_columns(extracted):
    _, out, _, _ = extracted
    result = CliRunner().invoke(cli, ["table", str(out), "--which", "burden", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split(",")
    assert {"ref_spleen_suv_mean", "ref_liver_source", "ref_liver_centre_x_mm", "site_bone_count",
            "site_outside_organs_volume_ml"} <= set(header)


def test_qc_pictures_draw_the_derived_vois_and_radiomx_qc_redraws_them_the_same(extracted):
    _, out, _, _ = extracted
    pictures = {p: (out / "qc" / p / "18F-FDG.png").read_bytes() for p in ("P001", "P002", "P004")}
    result = CliRunner().invoke(cli, ["qc", str(out), "--force", "-j", "1"])
    assert result.exit_code == 0, result.output
    for patient, before in pictures.items():
        assert (out / "qc" / patient / "18F-FDG.png").read_bytes() == before, patient
    # The organ overlay is really drawn: the picture with organs differs from the one without (same image, mask).
    assert pictures["P001"] != pictures["P004"]


def test_qc_redraws_the_vois_the_extraction_measured_and_the_sites(extracted):
    from radiomx.discover.cohort import discover
    from radiomx.features.references import stats_from_state
    from radiomx.features.voi import scan_lesions
    from radiomx.inputs.loader import load_scan
    from radiomx.options import LesionOptions
    from radiomx.params.paramset import VoiSetting
    from radiomx.qc.draw import organ_overlay
    from radiomx.records import Layout

    cohort, out, _, _ = extracted
    scan = next(s for s in discover(cohort, Layout(pet_units="SUVbw")) if s.key.patient_id == "P002")
    loaded = load_scan(scan, Layout(pet_units="SUVbw"))
    lesion_map = scan_lesions(loaded.image, loaded.mask, VoiSetting(), "labels", None, loaded.unit, {}).lesion_map
    overlay = organ_overlay(scan, loaded, stats_from_state(state_of(out, "P002")), LesionOptions(), lesion_map)
    assert set(overlay.regions) == {"bloodpool", "spleen", "marrow", "adrenal_contralateral"}  # liver was drawn
    assert overlay.sites[1] == "liver" and overlay.sites[4] == "other"
    state = state_of(out, "P002")
    for region, mask in overlay.regions.items():  # the same VOIs the extraction measured
        assert mask.count == state[f"ref_{region}_voxels"], region


def test_a_dicom_exports_organ_seg_gives_sites_and_regions_end_to_end(tmp_path):
    """A PET/CT export: the lesion RTSTRUCT on the PET, an organ SEG (TotalSegmentator's classes as Segment Labels)
    on the CT of the same frame of reference, with 2 mm slices against the PET's 4 mm. The lesion lies in the SEG's
    liver; the liver is too small for PERCIST's 30 mm sphere once the lesion margin is removed, so the region is
    null, with its reason in the state and a warning row."""
    from .corpus.dicom_pet import write_named_seg
    from .export_builders import ORIGIN, SPACING, Export, box_volume, rtstruct_on, synthetic_ct, synthetic_pet

    export = Export(tmp_path / "export")
    study, frame = "1.2.826.0.1.3680043.8.498.11", "1.2.826.0.1.3680043.8.498.12"
    pet = synthetic_pet(export, "PAT1", study, frame)
    ct = synthetic_ct(export, "PAT1", study, frame)
    rtstruct_on(export, pet, box_volume()[1])  # the lesion: PET slices 6-9, rows and columns 9-13
    ct_z = ORIGIN[2] + 2.0 * np.arange(len(ct.files))
    liver = np.zeros((len(ct.files), 24, 24), dtype=bool)
    in_slab = (ct_z >= ORIGIN[2] + 4 * SPACING[2]) & (ct_z <= ORIGIN[2] + 12 * SPACING[2])
    liver[np.ix_(in_slab, np.arange(5, 18), np.arange(5, 18))] = True
    spleen = np.zeros_like(liver)
    spleen[np.ix_(in_slab, np.arange(2, 6), np.arange(19, 23))] = True
    write_named_seg(export._folder() / "ORGANSEG", ct.files, {1: ("liver", liver), 2: ("spleen", spleen)})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["extract", str(export.root), "-o", str(out), "--layout", "dicom", "-j", "1"])
    assert result.exit_code == 0, result.output
    state = read_table(out, which="scans").iloc[0].to_dict()
    assert state["organs_form"] == "seg" and state["organs_classes"] == "liver,spleen"
    assert not state["organs_file"].startswith("/") and "1.2.826" not in state["organs_file"]
    assert math.isnan(state["ref_liver_suv_mean"]) and "30 mm sphere does not fit" in state["ref_liver_reason"]
    lesion = read_table(out).iloc[0]
    assert (lesion.lesion_site, lesion.lesion_site_group, lesion.lesion_site_fraction) == ("liver", "liver", 1.0)
    burden = read_table(out, which="burden").iloc[0]
    assert burden.site_liver_count == 1 and burden.site_liver_volume_ml == pytest.approx(burden.tmtv_ml)
    warnings = read_table(out, which="failures").query("stage == 'organs'")
    assert any("reference region liver not derived" in m for m in warnings.message)


def test_organs_join_the_work_key_only_where_present_and_an_unreadable_source_is_a_failure(tmp_path):
    """A no-change rerun computes nothing; editing the organ file recomputes that scan ("organs changed") and no
    other; an organ file that cannot be read is a failure (stage organs): the scan is partial, its lesion rows are
    written (sites unknown), and it is retried next run."""
    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    for patient in ("P001", "P002"):
        write_scan(cohort / patient / "FDG", phantom)
    organs = ph.write_multilabel(phantom, cohort / "P001" / "FDG" / "organs.nii.gz")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    keys = read_table(out, which="scans").set_index("patient_id").work_key
    again = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--dry-run"])
    assert "0 changed, 0 retry, 2 unchanged" in again.output

    organs.write_bytes(organs.read_bytes()[:-200])  # truncated: the gzip stream cannot be inflated
    plan = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--dry-run"])
    assert "changed\tP001" in plan.output and "organs changed" in plan.output, plan.output
    assert "unchanged\tP002" in plan.output
    result = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 1
    state = read_table(out, which="scans").set_index("patient_id")
    assert state.loc["P001", "status"] == "partial" and state.loc["P002", "work_key"] == keys["P002"]
    failure = read_table(out, which="failures").query("severity == 'failure'").iloc[0]
    assert (failure.patient_id, failure.stage, failure.file) == ("P001", "organs", "P001/FDG/organs.nii.gz")
    lesions = read_table(out).query("patient_id == 'P001'")
    assert len(lesions) == 6 and set(lesions.lesion_site.fillna("")) == {""}
    assert "retry\tP001" in runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--dry-run"]).output


@pytest.mark.parametrize("centre, side, gland, mean", [((-40.0, 56.0, -72.0), "right", "adrenal_gland_left", 3.2),
                                                       ((40.0, 56.0, -75.0), "left", "adrenal_gland_right", 2.2)])
def test_the_contralateral_adrenal_is_the_gland_opposite_a_single_adrenal_lesion(tmp_path, centre, side, gland, mean):
    """One lesion in one adrenal (organs on the CT grid, per-class files): the other gland's mean, exactly."""
    phantom = ph.build(lesions=(ph.Lesion("adrenal", centre, 5.0, 8.5),))
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    folder = cohort / "P001" / "FDG"
    folder.mkdir(parents=True)
    sitk.WriteImage(phantom.pet, str(folder / "pet.nii.gz"))
    sitk.WriteImage(ph.as_image(phantom.lesions["adrenal"].astype(np.uint8), phantom.pet), str(folder / "mask.nii.gz"))
    ph.write_folder(phantom, folder / "organs")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0, result.output
    burden = read_table(out, which="burden").iloc[0]
    assert burden.ref_adrenal_contralateral_suv_mean == pytest.approx(mean, abs=1e-6)
    assert gland in burden.ref_adrenal_contralateral_source
    lesion = read_table(out).iloc[0]
    assert lesion.adrenal_side == side and lesion.lesion_site == f"adrenal_gland_{side}"
    assert lesion.suv_max_to_adrenal_contralateral == pytest.approx(8.5 / mean, rel=1e-6)


def test_a_ct_scan_gets_lesion_sites_and_no_reference_regions(tmp_path):
    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    write_scan(cohort / "P001" / "CT", phantom)
    ph.write_multilabel(phantom, cohort / "P001" / "CT" / "organs.nii.gz")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0, result.output
    lesions = read_table(out).set_index("lesion_id")
    assert [lesions.loc[i, "lesion_site"] for i in SITES] == [site for site, _ in SITES.values()]
    state = read_table(out, which="scans").iloc[0]
    assert state.site_liver_count == 1 and pd.isna(state.site_liver_tlg) and state.ref_liver_source == ""
    assert state.ref_liver_reason == "" and pd.isna(state.ref_liver_suv_mean)


def test_a_percist_threshold_voi_uses_the_liver_derived_from_organs(tmp_path):
    """No ref-liver drawn: the PERCIST threshold (1.5 x liver SUVmean + 2 x SD, Wahl 2009) comes from the liver VOI
    placed in the organs (2.0, SD 0: threshold 3.0), placed clear of the lesions as drawn."""
    from .test_voi import params_with

    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    write_scan(cohort / "P001" / "FDG", phantom)
    ph.write_multilabel(phantom, cohort / "P001" / "FDG" / "organs.nii.gz")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    tree, _ = params_with(tmp_path, "  voi:\n    method: percist\n")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1", "--params-dir", str(tree)])
    assert result.exit_code == 0, result.output
    lesions = read_table(out)
    assert len(lesions) == 6 and list(lesions.voi_threshold_suv) == pytest.approx([3.0] * 6, abs=1e-6)
    assert read_table(out, which="scans").iloc[0].ref_liver_suv_mean == pytest.approx(2.0, abs=1e-6)


def test_a_source_without_a_regions_organ_gives_a_reason_and_no_warning_row(tmp_path):
    """docs/organs.md's failures table: a source that lacks a region's classes (here no aorta, no lumbar vertebra)
    gives ``ref_<R>_reason`` only, as a missing liver does, although it holds the blood pool's T5-T10 vertebrae."""
    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    write_scan(cohort / "P001" / "FDG", phantom)
    folder = ph.write_folder(phantom, cohort / "P001" / "FDG" / "organs")
    for name in ("aorta", "liver", *(f"vertebrae_L{k}" for k in range(1, 6))):
        (folder / f"{name}.nii.gz").unlink()
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0, result.output
    messages = read_table(out, which="failures").message.tolist()
    assert not [m for m in messages if "not derived" in m], messages
    state = state_of(out, "P001")
    for region in ("liver", "bloodpool", "marrow"):
        assert "no " in state[f"ref_{region}_reason"] and pd.isna(state[f"ref_{region}_suv_mean"]), region
    assert state["ref_spleen_suv_mean"] == pytest.approx(1.5, abs=1e-6)


def test_a_declared_organ_file_is_named_by_its_normal_path_and_a_missing_one_says_it_does_not_exist(tmp_path):
    """``[organs] path = "../CT/organs.nii.gz"``: P001's file is named ``P001/CT/organs.nii.gz`` (no ``..``);
    P002's is missing: one failure row saying so, and each region to derive says why it is null."""
    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    for patient in ("P001", "P002"):
        write_scan(cohort / patient / "FDG", phantom)
    ph.write_multilabel(phantom, cohort / "P001" / "CT" / "organs.nii.gz")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[organs]\npath = "../CT/organs.nii.gz"\n')
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert state_of(out, "P001")["organs_file"] == "P001/CT/organs.nii.gz"
    failure = read_table(out, which="failures").query("severity == 'failure'").iloc[0]
    assert (failure.patient_id, failure.file) == ("P002", "P002/CT/organs.nii.gz")
    assert "does not exist (declared by radiomx.toml [organs])" in failure.message, failure.message
    state = state_of(out, "P002")
    for region in ("liver", "bloodpool", "spleen", "marrow"):
        assert "could not be read" in state[f"ref_{region}_reason"], region


def test_an_organ_folder_naming_no_organ_class_is_a_warning_and_leaves_the_sites_unknown(tmp_path):
    """Sites of a source with no organ class would all read "other" and the site burden 0: they stay null."""
    phantom = ph.build()
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    write_scan(cohort / "P001" / "FDG", phantom)
    folder = cohort / "P001" / "FDG" / "organs"
    folder.mkdir()
    sitk.WriteImage(ph.as_image(phantom.organs["liver"].astype(np.uint8), phantom.ct), str(folder / "tumour.nii.gz"))
    (folder / "notes.txt").write_text("not an organ")
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert result.exit_code == 0, result.output
    warning = read_table(out, which="failures").query("severity == 'warning'").message.tolist()
    assert any("names no organ class" in m for m in warning), warning
    state = state_of(out, "P001")
    assert all(pd.isna(state[f"site_{group}_volume_ml"]) for group in ("liver", "bone", "outside_organs"))
    assert set(read_table(out).lesion_site) == {""}
    assert state["ref_liver_reason"] == "the organ segmentation names no organ class"
