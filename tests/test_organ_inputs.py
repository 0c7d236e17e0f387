"""Organ segmentations read onto the PET grid (``radiomx.inputs.organs``): every form the field writes gives the same
masks, and the masks follow the stated rule (nearest neighbour at PET voxel centres), checked against an
independent numpy mapping of every PET voxel centre into the CT grid."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.inputs.organ_labels import caret_label_table, nifti_extensions, organ_label_names
from radiomx.inputs.organ_names import canonical, class_of_code, is_organ_class, kind_of
from radiomx.inputs.organs import class_files, organs_from_images, read_organs
from radiomx.records import OrganSource

from . import organ_phantom as ph
from .corpus.dicom_pet import write_ct_series, write_named_seg

SEG_CLASSES = ("liver", "spleen", "aorta", "adrenal_gland_left", "adrenal_gland_right", "vertebrae_L1", "vertebrae_T7")


@pytest.fixture(scope="module")
def phantom():
    return ph.build()


@pytest.fixture(scope="module")
def forms(phantom, tmp_path_factory) -> dict[str, OrganSource]:
    root = tmp_path_factory.mktemp("forms")
    ct = write_ct_series(root / "ct", np.zeros(ph.CT_SIZE[::-1]), ph.CT_SPACING, origin=ph.CT_ORIGIN)
    seg = write_named_seg(root / "organs.dcm", ct, {k: (name, phantom.organs[name])
                                                    for k, name in enumerate(SEG_CLASSES, start=1)})
    bids = root / "derivatives" / "totalseg" / "sub-01" / "anat" / "sub-01_desc-organs_dseg.nii.gz"
    return {
        "folder": OrganSource("folder", ph.write_folder(phantom, root / "organs")),
        "totalsegmentator --ml": OrganSource("labels", ph.write_multilabel(phantom, root / "ml" / "organs.nii.gz")),
        "multilabel + tsv": OrganSource("labels", ph.write_multilabel(phantom, root / "tsv" / "organs.nii", "tsv")),
        "BIDS dseg": OrganSource("labels", ph.write_multilabel(phantom, bids, "tsv")),
        "DICOM SEG": OrganSource("seg", seg),
    }


@pytest.fixture(scope="module")
def reference(phantom, forms):
    return read_organs(forms["folder"], phantom.pet)


@pytest.mark.parametrize("form", ["totalsegmentator --ml", "multilabel + tsv", "BIDS dseg", "DICOM SEG"])
def test_every_form_reads_to_the_same_masks(phantom, forms, reference, form):
    organs = read_organs(forms[form], phantom.pet)
    expected = SEG_CLASSES if form == "DICOM SEG" else tuple(reference.masks)
    assert set(organs.masks) == set(expected)
    for name in expected:
        mine, theirs = organs.masks[name], reference.masks[name]
        assert mine.origin == theirs.origin and np.array_equal(mine.voxels, theirs.voxels), name
    if form != "DICOM SEG":
        assert "outside the PET's field of view" in organs.problems["brain"]


def expected_on_pet(pet: sitk.Image, ct: sitk.Image, mask_zyx: np.ndarray) -> np.ndarray:
    """The stated rule, computed here without ITK's resampler: each PET voxel centre mapped into the CT grid
    (inverse of the CT's index-to-point affine), rounded to the nearest CT voxel; outside the CT grid is outside."""
    points = ph.centres(pet).reshape(-1, 3)
    direction = np.asarray(ct.GetDirection()).reshape(3, 3)
    continuous = ((points - np.asarray(ct.GetOrigin())) @ np.linalg.inv(direction).T) / np.asarray(ct.GetSpacing())
    assert (np.abs(continuous - np.floor(continuous) - 0.5) > 1e-6).all()  # no tie between two CT voxels
    index = np.round(continuous).astype(int)
    size = np.asarray(ct.GetSize())
    inside = ((index >= 0) & (index < size)).all(axis=1)
    out = np.zeros(len(points), dtype=bool)
    out[inside] = mask_zyx[index[inside, 2], index[inside, 1], index[inside, 0]]
    return out.reshape(pet.GetSize()[::-1])


@pytest.mark.parametrize("name", ["liver", "aorta", "adrenal_gland_left", "vertebrae_T7"])
def test_masks_are_nearest_neighbour_at_pet_voxel_centres(phantom, reference, name):
    expected = expected_on_pet(phantom.pet, phantom.ct, phantom.organs[name])
    assert np.array_equal(reference.masks[name].full(expected.shape), expected)


def test_a_mirrored_ct_grid_of_the_same_lattice_gives_the_same_masks(phantom, reference, tmp_path):
    """The CT stored right-to-left and posterior-to-anterior (direction diag(-1, -1, 1)): the patient frame, not
    the voxel order, decides where an organ is."""
    far = (ph.CT_ORIGIN[0] + (ph.CT_SIZE[0] - 1) * ph.CT_SPACING[0], ph.CT_ORIGIN[1] + (ph.CT_SIZE[1] - 1)
           * ph.CT_SPACING[1], ph.CT_ORIGIN[2])
    mirrored = ph.build(lesions=(), ct_direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1), ct_origin=far)
    organs = read_organs(OrganSource("folder", ph.write_folder(mirrored, tmp_path / "organs")), phantom.pet,
                         ["liver", "spleen", "adrenal_gland_right"])
    for name, mask in organs.masks.items():
        assert mask.origin == reference.masks[name].origin and np.array_equal(mask.voxels, reference.masks[name].voxels)


def test_an_organ_cut_by_the_pet_field_of_view_keeps_the_part_inside(phantom, forms):
    short = ph.grid_image((80, 64, 20), ph.PET_SPACING, (ph.PET_ORIGIN[0], ph.PET_ORIGIN[1], -95.0),
                          pixel=sitk.sitkFloat32)
    organs = read_organs(forms["folder"], short, ["liver", "adrenal_gland_left", "lung_upper_lobe_right"])
    liver = organs.masks["liver"].full(short.GetSize()[::-1])
    assert liver[0].any() or liver[-1].any()  # the field of view cuts it
    assert np.array_equal(liver, expected_on_pet(short, phantom.ct, phantom.organs["liver"]))
    assert "lung_upper_lobe_right" not in organs.masks  # above this short field of view
    assert "outside the PET's field of view" in organs.problems["lung_upper_lobe_right"]


def test_only_the_classes_asked_for_are_read(phantom, forms, tmp_path):
    folder = shutil.copytree(forms["folder"].path, tmp_path / "organs")
    (folder / "spleen.nii.gz").write_bytes(b"not a NIfTI file at all")
    organs = read_organs(OrganSource("folder", folder), phantom.pet, ["liver"])
    assert set(organs.masks) == {"liver"} and "spleen" in organs.available
    with pytest.raises(ScanError) as caught:
        read_organs(OrganSource("folder", folder), phantom.pet, ["spleen"])
    assert "spleen.nii.gz" in caught.value.path


def test_totalsegmentator_label_extension_is_read_from_the_header_bytes(forms):
    path = forms["totalsegmentator --ml"].path
    names, origin = organ_label_names(path)
    assert origin == "NIfTI header extension"
    assert names == {value: name for name, value in ph.TOTALSEG_LABELS.items()}
    assert caret_label_table(ph.caret_xml({"spleen": 1, "liver": 5})) == {1: "spleen", 5: "liver"}
    plain = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # ITK honours vox_offset past the extension
    assert plain.max() == max(ph.TOTALSEG_LABELS.values()) and nifti_extensions(b"\0" * 400) == []


def test_a_table_beside_the_file_names_its_labels(forms):
    names, origin = organ_label_names(forms["BIDS dseg"].path)
    assert origin == "sub-01_desc-organs_dseg.tsv" and names[5] == "liver"


def test_multilabel_without_names_is_refused_with_the_fix(phantom, tmp_path):
    path = tmp_path / "organs.nii.gz"
    sitk.WriteImage(ph.as_image(ph.label_map(phantom), phantom.ct), str(path), True)
    with pytest.raises(ScanError) as caught:
        read_organs(OrganSource("labels", path), phantom.pet)
    assert "names no label" in caught.value.detail and "organs.tsv" in caught.value.detail


def test_two_labels_of_one_class_are_refused(phantom, tmp_path):
    path = ph.write_multilabel(phantom, tmp_path / "organs.nii.gz", "tsv")
    path.with_name("organs.tsv").write_text("index\tname\n1\tspleen\n5\tliver\n9\tLiver\n")
    with pytest.raises(ScanError, match="both name organ class liver"):
        read_organs(OrganSource("labels", path), phantom.pet)


def test_two_files_of_one_class_are_refused(forms, tmp_path):
    folder = shutil.copytree(forms["folder"].path, tmp_path / "organs")
    shutil.copy(folder / "liver.nii.gz", folder / "Liver.nii")
    with pytest.raises(ScanError, match="two files for organ class liver"):
        class_files(folder)


def test_moose_names_and_other_spellings_map_to_one_vocabulary(forms, tmp_path):
    folder = shutil.copytree(forms["folder"].path, tmp_path / "organs")
    shutil.copy(folder / "spleen.nii.gz", folder / "bladder.nii.gz")  # MOOSE's name for the urinary bladder
    (folder / "notes.nii.gz").write_bytes(b"")  # no organ class: not an organ, never read
    files = class_files(folder)
    assert files["urinary_bladder"].name == "bladder.nii.gz" and "notes" not in files
    assert canonical("clavicle_left") == "clavicula_left" and canonical("Adrenal-gland left") == "adrenal_gland_left"
    assert canonical("vertebrae_l1") == "vertebrae_L1" and kind_of("portal_splenic_vein") == "vessel"
    assert is_organ_class("rib_right_13") and not is_organ_class("GTV_1")
    assert class_of_code("23451007", "24028007") == "adrenal_gland_right" and class_of_code("10200004") == "liver"


def test_organ_images_in_memory_follow_the_same_rule(phantom, reference):
    images = {name: ph.as_image(phantom.organs[name].astype(np.uint8), phantom.ct) for name in ("liver", "aorta")}
    organs = organs_from_images(images, phantom.pet)
    for name in images:
        assert np.array_equal(organs.masks[name].voxels, reference.masks[name].voxels)


def test_a_damaged_organ_file_is_refused_naming_it_and_gzip_members_are_read(phantom, forms, reference, tmp_path):
    """Organ files are read slice by slice (``radiomx.inputs.nifti.SliceStream``), yet a file cut anywhere, with a
    bad CRC, or shorter than its header says is refused with a ScanError naming it, never read as fewer organs; a
    file in several gzip members with padding between them reads as the whole file."""
    import gzip

    good = (forms["folder"].path / "liver.nii.gz").read_bytes()
    raw = gzip.decompress(good)
    damaged = {"cut-early": good[:200], "cut-late": good[:-20], "cut-trailer": good[:-6],
               "crc": good[:-8] + bytes(4) + good[-4:], "short": gzip.compress(raw[:-500]),
               "trailing-bytes": good + b"not gzip at all"}
    for name, data in damaged.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "liver.nii.gz").write_bytes(data)
        with pytest.raises(ScanError) as caught:
            read_organs(OrganSource("folder", folder), phantom.pet, ["liver"])
        assert caught.value.path.endswith("liver.nii.gz") and "truncated" in caught.value.detail, name
    folder = tmp_path / "members"
    folder.mkdir()
    third = len(raw) // 3
    (folder / "liver.nii.gz").write_bytes(gzip.compress(raw[:third]) + b"\0" * 8 + gzip.compress(raw[third:]))
    organs = read_organs(OrganSource("folder", folder), phantom.pet, ["liver"])
    assert np.array_equal(organs.masks["liver"].voxels, reference.masks["liver"].voxels)
    assert organs.masks["liver"].origin == reference.masks["liver"].origin


def test_an_organ_file_that_cannot_be_opened_says_check_permissions_not_corrupt(forms, phantom, monkeypatch):
    """Root reads every file, so the OS's refusal is injected where the file is opened: the message must point at
    permissions, not call the file corrupt (review of the slice reader)."""
    from radiomx.inputs import nifti

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(nifti, "_open", refuse)
    with pytest.raises(ScanError) as caught:
        read_organs(forms["folder"], phantom.pet, ["liver"])
    assert "check permissions" in caught.value.detail and "corrupt" not in caught.value.detail
    assert caught.value.path.endswith("liver.nii.gz")
