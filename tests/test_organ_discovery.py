"""Where a scan's organ segmentations are found (``radiomx.discover.organs``, BIDS, DICOM exports), without reading
them: discovery stays free of SimpleITK and numpy, and an organ file is never taken as an image or lesion mask."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.discover.cohort import discover
from radiomx.discover.dicom_export import ExportSettings, discover_export
from radiomx.errors import ConfigError

from .conftest import make_cohort, write_volume
from .corpus.dicom_pet import write_named_seg
from .export_builders import Export, box_volume, rtstruct_on, synthetic_ct, synthetic_pet


def one_scan(cohort):
    (scan,) = discover(cohort)
    return scan


@pytest.fixture
def cohort(tmp_path):
    return make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})


def test_an_organs_folder_beside_the_image(cohort):
    folder = cohort / "P001" / "FDG" / "organs"
    write_volume(np.zeros((4, 4, 4), np.uint8), folder / "liver.nii.gz")
    scan = one_scan(cohort)
    assert scan.problem is None and scan.organs is not None
    assert (scan.organs.form, scan.organs.path, scan.organs.found_by) == ("folder", folder, "organs beside the image")
    assert scan.mask.name == "mask.nii.gz"


@pytest.mark.parametrize("name, form", [("organs.nii.gz", "labels"), ("Organs.nrrd", "labels"),
                                        ("organs.dcm", "seg")])
def test_a_multilabel_file_or_seg_beside_the_image(cohort, name, form):
    (cohort / "P001" / "FDG" / name).write_bytes(b"x")
    scan = one_scan(cohort)
    assert scan.problem is None and (scan.organs.form, scan.organs.path.name) == (form, name)


def test_an_organ_file_is_never_the_lesion_mask_whatever_the_patterns(cohort):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\nmask = ["*mask*", "organs*"]\n')
    (cohort / "P001" / "FDG" / "organs.nii.gz").write_bytes(b"x")
    scan = one_scan(cohort)
    assert scan.problem is None and scan.mask.name == "mask.nii.gz" and scan.organs.form == "labels"


def test_two_organ_segmentations_beside_one_image_are_a_problem(cohort):
    (cohort / "P001" / "FDG" / "organs").mkdir()
    (cohort / "P001" / "FDG" / "organs.nii.gz").write_bytes(b"x")
    scan = one_scan(cohort)
    assert scan.problem[0] == "discover" and "several organ segmentations (organs, organs.nii.gz)" in scan.problem[2]


def test_radiomx_toml_declares_the_organs_relative_to_each_scan_folder(cohort):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[organs]\npath = "../CT/totalseg"\n')
    seg = cohort / "P001" / "CT" / "totalseg"
    seg.mkdir(parents=True)
    scan = one_scan(cohort)  # the CT folder holds no image: no CT scan
    assert scan.organs.path == cohort / "P001" / "CT" / "totalseg" and scan.organs.form == "folder"  # no ".."
    assert scan.organs.found_by == "radiomx.toml [organs]"


def test_a_declared_path_that_is_missing_is_kept_for_the_worker_to_report(cohort):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[organs]\npath = "seg/organs.nii.gz"\n')
    scan = one_scan(cohort)
    assert scan.problem is None and scan.organs.form == "labels" and not scan.organs.path.exists()


def test_a_declared_path_outside_the_cohort_is_a_problem(cohort):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[organs]\npath = "../../../elsewhere"\n')
    scan = one_scan(cohort)
    assert scan.organs is None and "leads outside the cohort" in scan.problem[2]


@pytest.mark.parametrize("section, message", [('[organs]\nfolder = "x"\n', "unknown [organs] key(s): folder"),
                                              ('[organs]\npath = "/abs/organs"\n', "relative to each scan folder")])
def test_a_bad_organs_section_is_a_configuration_error(cohort, section, message):
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n' + section)
    with pytest.raises(ConfigError) as caught:
        discover(cohort)
    assert message in str(caught.value)
    result = CliRunner().invoke(cli, ["scan", str(cohort)])
    assert result.exit_code == 2 and message in result.stderr


def bids_cohort(root):
    write_volume(np.zeros((4, 4, 4), np.float32), root / "sub-01" / "ses-1" / "pet" / "sub-01_ses-1_trc-FDG_pet.nii.gz")
    (root / "sub-01" / "ses-1" / "pet" / "sub-01_ses-1_trc-FDG_pet.json").write_text("{}")
    lesions = root / "derivatives" / "lesions" / "sub-01" / "ses-1" / "pet"
    write_volume(np.zeros((4, 4, 4), np.uint8), lesions / "sub-01_ses-1_trc-FDG_desc-lesions_mask.nii.gz")
    return root


def test_bids_desc_organs_dseg_is_the_organ_source_not_a_second_mask(tmp_path):
    root = bids_cohort(tmp_path / "bids")
    anat = root / "derivatives" / "totalseg" / "sub-01" / "ses-1" / "anat"
    write_volume(np.zeros((4, 4, 4), np.uint8), anat / "sub-01_ses-1_desc-organs_dseg.nii.gz")
    (scan,) = discover(root)
    assert scan.problem is None and scan.mask.name == "sub-01_ses-1_trc-FDG_desc-lesions_mask.nii.gz"
    assert scan.organs.form == "labels" and scan.organs.path.name == "sub-01_ses-1_desc-organs_dseg.nii.gz"
    # one beside the PET, naming its tracer, is more specific and wins
    pet = root / "derivatives" / "totalseg" / "sub-01" / "ses-1" / "pet"
    write_volume(np.zeros((4, 4, 4), np.uint8), pet / "sub-01_ses-1_trc-FDG_desc-organs_dseg.nii.gz")
    (scan,) = discover(root)
    assert scan.problem is None and scan.organs.path.name == "sub-01_ses-1_trc-FDG_desc-organs_dseg.nii.gz"
    # two equally specific candidates: which one is meant is not ours to guess
    other = root / "derivatives" / "moose" / "sub-01" / "ses-1" / "ct"
    write_volume(np.zeros((4, 4, 4), np.uint8), other / "sub-01_ses-1_trc-FDG_desc-organs_dseg.nii.gz")
    (scan,) = discover(root)
    assert "several organ segmentations match" in scan.problem[2]


def test_a_dicom_exports_organ_seg_joins_the_pet_of_its_cts_frame_of_reference(tmp_path):
    export = Export(tmp_path / "export")
    study, frame = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    pet = synthetic_pet(export, "PAT1", study, frame)
    ct = synthetic_ct(export, "PAT1", study, frame)
    rtstruct_on(export, pet, box_volume()[1])
    organs = np.zeros((len(ct.files), 24, 24), dtype=bool)
    organs[2:6, 5:15, 5:15] = True
    seg_path = export._folder() / "ORGANSEG"
    write_named_seg(seg_path, ct.files, {1: ("liver", organs), 2: ("adrenal_gland_left", np.roll(organs, 8, axis=2))})
    found = discover_export(export.root, ExportSettings())
    (scan,) = found.scans
    assert scan.problem is None and scan.key.tracer == "18F-FDG" and scan.mask.name != "ORGANSEG"
    assert (scan.organs.form, scan.organs.path) == ("seg", seg_path)
    assert found.notes["CT series without a mask (not scans)"] == 1  # the organ SEG made no CT scan


def test_discovery_with_organs_imports_neither_simpleitk_nor_numpy(cohort):
    (cohort / "P001" / "FDG" / "organs").mkdir()
    code = (f"import sys; from pathlib import Path; from radiomx.discover.cohort import discover; "
            f"s = discover(Path({str(cohort)!r})); assert s[0].organs is not None; "
            "print(sorted(m for m in ('SimpleITK', 'numpy') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


def test_a_declared_path_through_a_symlinked_scan_folder_is_not_rewritten(cohort, tmp_path):
    """``FDG/../CT`` through a symlinked FDG folder names the link target's sibling, here outside the cohort: it must
    not be rewritten to the cohort's ``P001/CT`` (review: lexical normalisation), and is refused as outside."""
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[organs]\npath = "../CT/totalseg"\n')
    real = tmp_path / "store" / "FDG"
    real.parent.mkdir()
    (cohort / "P001" / "FDG").rename(real)
    (cohort / "P001" / "FDG").symlink_to(real, target_is_directory=True)
    (cohort / "P001" / "CT" / "totalseg").mkdir(parents=True)  # what a lexical rewrite would wrongly pick
    scan = one_scan(cohort)
    assert scan.organs is None and "leads outside the cohort" in scan.problem[2]
