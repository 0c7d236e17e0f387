"""Real scanner exports (issue 12): accept the rounding and jitter real PET/CT exports carry, refuse what is broken.

Every irregular case is built with the DICOM builders of ``tests/corpus/dicom_pet.py`` from the same voxel values
as a regular scan, and its values are compared with that regular scan's: SUV max/mean identical, voxel counts
equal. Rules and their reasons: ``docs/pet-inputs.md`` (Tolerances).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import ScanError
from radiomx.inputs.dicom import POSITION_TOL, read_series
from radiomx.inputs.masks import PLANE_TOL, read_dicom_mask

from .conftest import shared_data
from .corpus.dicom_pet import (
    jittered_positions,
    rectangle_contours,
    write_ct_series,
    write_pet_series,
    write_rtstruct,
    write_seg,
)

#: A GE Discovery-like PET: 3.27 mm slices, 4.07 mm pixels, positions that are not round numbers.
SPACING = (4.0728402, 4.0728402, 3.27)
ORIGIN = (-48.8740824, -48.8740824, -812.345678)
SHAPE = (40, 24, 24)
#: The GE export's odd gaps (issue 12): four 3.29 mm and one 3.19 mm gap among 3.27 mm ones (net zero drift).
GE_ODD_GAPS = (3.29, 3.29, 3.29, 3.29, 3.19)
#: Siemens/dcmqi SEG: frames 0.045 mm off the PET slice centres.
SEG_OFFSET_MM = 0.045
VALUES = ["original_firstorder_Maximum", "original_firstorder_Mean", "original_firstorder_Minimum"]


def scan_volume(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SUV-like values with three box lesions (labels 1-3: boxes, so an RTSTRUCT square contour is exact)."""
    rng = np.random.default_rng(seed)
    suv = rng.normal(1.0, 0.1, SHAPE)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    for label, (z, y, x) in enumerate([(8, 6, 6), (20, 14, 10), (30, 8, 16)], start=1):
        labels[z:z + 5, y:y + 4, x:x + 3] = label
        suv[labels == label] += 3.0 * label + rng.normal(0, 0.4, int((labels == label).sum()))
    return suv, labels


def regular_z() -> list[float]:
    return [ORIGIN[2] + k * SPACING[2] for k in range(SHAPE[0])]


def ge_z(seed: int = 1) -> list[float]:
    return jittered_positions(SHAPE[0], SPACING[2], ORIGIN[2], np.random.default_rng(seed), GE_ODD_GAPS)


def pet(folder: Path, z: list[float] | None = None, **kwargs) -> list[Path]:
    suv, _ = scan_volume()
    return write_pet_series(folder, suv, SPACING, origin=ORIGIN, z_positions=z, **kwargs)


def write_nifti_mask(path: Path, labels: np.ndarray) -> None:
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))


def params(root: Path) -> Path:
    text = ("radiomx:\n  units: {unit}\nsetting:\n  binWidth: {bw}\n  minimumROIDimensions: 1\n"
            "imageType:\n  Original: {{}}\nfeatureClass:\n  firstorder: [Minimum, Mean, Maximum]\n")
    for tracer, unit, bw in (("18F-FDG", "SUVbw", 0.1), ("CT", "HU", 25)):
        (root / tracer).mkdir(parents=True, exist_ok=True)
        (root / tracer / "v1.yaml").write_text(text.format(unit=unit, bw=bw))
    return root


def extract(cohort: Path, tmp_path: Path):
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir",
                                      str(params(tmp_path / "params")), "--jobs", "2"])
    features = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "out" / "features").glob("*.parquet"))],
                         ignore_index=True)
    path = tmp_path / "out" / "failures.parquet"
    failures = pd.read_parquet(path) if path.exists() else pd.DataFrame({"message": []})
    return result, features, failures


# --- slice spacing --------------------------------------------------------------------------------------------------

def test_ge_like_jittered_pet_gives_the_values_of_the_regular_scan_with_every_mask_kind(tmp_path: Path) -> None:
    """The GE case end to end: jittered slices with a NIfTI mask, a highdicom SEG at the jittered positions, a
    dcmqi-like SEG (7 digits, frames on ITK's uniform grid, i.e. off the true slices), an RTSTRUCT with 7-digit
    contours 0.045 mm off the slice centres. Every lesion's SUV max/mean/min and voxel count equal the regular
    scan's, and the layout columns record the jitter (0.0 for the regular series)."""
    _, labels = scan_volume()
    cohort = tmp_path / "cohort"
    z = ge_z()
    files = pet(cohort / "regular" / "FDG" / "pet")
    write_nifti_mask(cohort / "regular" / "FDG" / "mask.nii.gz", labels)
    for patient in ("ge-nifti", "ge-seg", "ge-dcmqi-seg", "ge-rtstruct"):
        files = pet(cohort / patient / "FDG" / "pet", z)
    write_nifti_mask(cohort / "ge-nifti" / "FDG" / "mask.nii.gz", labels)
    write_seg(cohort / "ge-seg" / "FDG" / "seg.dcm", files, labels)
    uniform = [z[0] + k * (z[-1] - z[0]) / (len(z) - 1) + SEG_OFFSET_MM for k in range(len(z))]
    write_seg(cohort / "ge-dcmqi-seg" / "FDG" / "seg.dcm", files, labels, digits=7, frame_z=uniform)
    write_rtstruct(cohort / "ge-rtstruct" / "FDG" / "rtstruct.dcm",
                   rectangle_contours(labels, SPACING, ORIGIN, z, z_shift_mm=SEG_OFFSET_MM), digits=7)
    result, rows, failures = extract(cohort, tmp_path)
    assert result.exit_code == 0, result.stderr + str(failures["message"].tolist())
    rows = rows.set_index(["patient_id", "lesion_id"]).sort_index()
    reference = rows.loc["regular"]
    assert list(reference.index) == [1, 2, 3]
    for patient in ("ge-nifti", "ge-seg", "ge-dcmqi-seg", "ge-rtstruct"):
        mine = rows.loc[patient]
        pd.testing.assert_frame_equal(mine[[*VALUES, "voxel_count"]], reference[[*VALUES, "voxel_count"]])
        assert mine["slice_spacing_max_deviation_mm"].eq(0.08).all(), mine["slice_spacing_max_deviation_mm"]
        assert (0 < mine["slice_position_max_offset_mm"]).all() and (mine["slice_position_max_offset_mm"] <= 0.08).all()
    assert reference["slice_spacing_max_deviation_mm"].eq(0.0).all()
    assert reference["slice_position_max_offset_mm"].eq(0.0).all()


@pytest.mark.parametrize("seed", range(4))
def test_random_gaps_in_the_ge_range_keep_voxels_and_masks(tmp_path: Path, seed: int) -> None:
    """Gaps drawn uniformly from the GE range (3.19-3.29 mm): the voxels are the regular scan's, and a 7-digit SEG
    and RTSTRUCT at the jittered positions give back exactly the drawn labels."""
    rng = np.random.default_rng(seed)
    z = [ORIGIN[2], *(ORIGIN[2] + np.cumsum(rng.uniform(3.19, 3.29, SHAPE[0] - 1))).tolist()]
    _, labels = scan_volume()
    files = pet(tmp_path / "pet", z)
    series = read_series(tmp_path / "pet", "PT")
    regular = read_series(Path(pet(tmp_path / "regular")[0]).parent, "PT")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(series.image), sitk.GetArrayFromImage(regular.image))
    assert 0 < series.layout.spacing_max_deviation_mm <= 0.1 + 1e-9
    seg = write_seg(tmp_path / "seg.dcm", files, labels, digits=7)
    rs = write_rtstruct(tmp_path / "rs.dcm", rectangle_contours(labels, SPACING, ORIGIN, z), digits=7)
    for mask in (seg, rs):
        placed = sitk.GetArrayFromImage(read_dicom_mask(mask, series.image, series.layout.positions_mm))
        np.testing.assert_array_equal(placed, labels)


def test_nifti_scans_have_no_slice_layout_values(tmp_path: Path) -> None:
    """Null, not 0.0, for an image that is not a DICOM series: its grid is uniform by construction, not measured."""
    suv, labels = scan_volume()
    folder = tmp_path / "cohort" / "P1" / "FDG"
    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(suv.astype(np.float32))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(folder / "pet.nii.gz"))
    (folder / "pet.json").write_text('{"Units": "g/mL"}')
    write_nifti_mask(folder / "mask.nii.gz", labels)
    result, rows, _ = extract(tmp_path / "cohort", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert rows["slice_spacing_max_deviation_mm"].isna().all() and rows["slice_position_max_offset_mm"].isna().all()


def _missing(z: list[float]) -> tuple[list[float], int]:
    return z[:17] + z[18:], 17


def _two_missing(z: list[float]) -> tuple[list[float], int]:
    return z[:17] + z[19:], 17


def _interleaved(z: list[float]) -> tuple[list[float], int]:
    """Two series of one UID mixed: a second set of slices 1.1 mm above the first ones' upper half."""
    return sorted(z[:20] + [p + 1.1 for p in z[20:30]] + z[30:]), 21


def _duplicate(z: list[float]) -> tuple[list[float], int]:
    return sorted(z[:39] + [z[12]]), 13


def _drift(z: list[float]) -> tuple[list[float], int]:
    """Every gap within 10 % of the spacing, but 10 % longer in the first half and shorter in the second: the
    slices drift up to two spacings from any uniform grid, though no single gap is odd."""
    gaps = [SPACING[2] * (1.1 if k < 20 else 0.9) for k in range(39)]
    return [z[0], *(z[0] + np.cumsum(gaps)).tolist()], 20


BROKEN = [
    (_missing, "a slice is missing"),
    (_two_missing, "about 2 slices are missing"),
    (_interleaved, "two series are interleaved"),
    (_duplicate, "the folder mixes two series or holds a slice twice"),
    (_drift, "from its place on a uniform grid"),
]


@pytest.mark.parametrize("break_it, message", BROKEN, ids=[b.__name__.strip("_") for b, _ in BROKEN])
def test_broken_slice_spacing_is_refused_on_top_of_the_jitter(tmp_path: Path, break_it, message: str) -> None:
    z, _ = break_it(ge_z())
    suv, _ = scan_volume()
    suv = np.resize(suv, (len(z), *SHAPE[1:]))
    write_pet_series(tmp_path / "pet", suv, SPACING, origin=ORIGIN, z_positions=z)
    with pytest.raises(ScanError, match=message) as info:
        read_series(tmp_path / "pet", "PT")
    assert info.value.stage == "geometry"
    if break_it is _duplicate:  # both files are named
        assert "slice0012.dcm and slice0013.dcm" in info.value.detail


def test_the_rules_sit_between_rounding_and_breakage() -> None:
    """The tolerances are physical, not fitted: scanner rounding (2.4 % here) is at least 10x inside them, and a
    missing slice (about half a spacing off the uniform grid) is outside."""
    z = np.array(ge_z())
    mean = (z[-1] - z[0]) / (len(z) - 1)
    offsets = np.abs(z - (z[0] + np.arange(len(z)) * mean)) / mean
    assert offsets.max() * 10 <= POSITION_TOL < 0.5 * (1 - 1 / 40)
    assert SEG_OFFSET_MM / SPACING[2] * 4 <= PLANE_TOL < 0.5


# --- series picking, file order and names ---------------------------------------------------------------------------

def test_mixed_folder_picks_the_attenuation_corrected_pet(tmp_path: Path) -> None:
    """PET + NAC PET + MIP + CT in one folder, as exported: the AC PET is taken, with its own values."""
    alone = read_series(Path(pet(tmp_path / "alone")[0]).parent, "PT")
    folder = tmp_path / "mixed"
    pet(folder, series_number=3, series_description="PET WB AC")
    suv, _ = scan_volume(seed=5)
    write_pet_series(folder, suv * 0.3, SPACING, origin=ORIGIN, series_number=4, file_prefix="nac",
                     corrected_image=("DECY", "SCAT"), series_description="PET WB NAC")
    write_pet_series(folder, suv[:3], SPACING, origin=ORIGIN, series_number=5, file_prefix="mip",
                     image_type=("DERIVED", "SECONDARY", "MIP"), series_description="MIP")
    write_ct_series(folder, np.zeros(SHAPE) - 100, SPACING, origin=ORIGIN, series_number=2)
    mixed = read_series(folder, "PT")
    assert [f.name for f in mixed.files] == [f.name for f in alone.files]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mixed.image), sitk.GetArrayFromImage(alone.image))
    assert {str(h.Modality) for h in read_series(folder, "CT").headers} == {"CT"}


def test_two_attenuation_corrected_pets_are_refused_by_number_and_description(tmp_path: Path) -> None:
    pet(tmp_path / "pet", series_number=3, series_description="PET WB AC")
    pet(tmp_path / "pet", series_number=6, series_description="PET WB AC PSF", file_prefix="psf")
    with pytest.raises(ScanError, match=r"folder mixes 2 PT series \(Series Number 3 'PET WB AC', Series Number 6 "
                                        r"'PET WB AC PSF'\)"):
        read_series(tmp_path / "pet", "PT")


@pytest.mark.parametrize("order", ["reverse", "random"])
def test_file_order_and_names_without_dcm_do_not_change_the_volume(tmp_path: Path, order: str) -> None:
    regular = read_series(Path(pet(tmp_path / "regular")[0]).parent, "PT")
    n = SHAPE[0]
    names = ([f"IM{n - k:03d}" for k in range(n)] if order == "reverse"
             else [f"{v:08x}" for v in np.random.default_rng(3).permutation(n) * 7919 + 12345])
    pet(tmp_path / "odd", ge_z(), names=names)
    odd = read_series(tmp_path / "odd", "PT")
    assert not any(f.suffix for f in odd.files)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(odd.image), sitk.GetArrayFromImage(regular.image))
    assert odd.image.GetOrigin() == pytest.approx(regular.image.GetOrigin())
    assert odd.image.GetSpacing() == pytest.approx(regular.image.GetSpacing(), rel=1e-9)


def test_per_slice_rescale_slope_is_applied_slice_by_slice(tmp_path: Path) -> None:
    files = pet(tmp_path / "pet", ge_z())
    slopes = {str(pydicom.dcmread(f, stop_before_pixels=True).RescaleSlope) for f in files}
    assert len(slopes) == len(files)  # every slice has its own slope
    series = read_series(tmp_path / "pet", "PT")
    expected = [pydicom.dcmread(f).pixel_array * float(pydicom.dcmread(f).RescaleSlope) for f in files]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(series.image), np.stack(expected))


@pytest.mark.parametrize("units, decay", [("GML", "ADMIN"), ("BQML", "ADMIN"), ("GML", "START")])
def test_gml_and_admin_decay_correction_give_the_written_suv(tmp_path: Path, units: str, decay: str) -> None:
    cohort = tmp_path / "cohort"
    _, labels = scan_volume()
    for patient, kwargs in (("start", {}), ("odd", {"units": units, "decay_correction": decay})):
        pet(cohort / patient / "FDG" / "pet", ge_z(), **kwargs)
        write_nifti_mask(cohort / patient / "FDG" / "mask.nii.gz", labels)
    result, rows, _ = extract(cohort, tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = rows.set_index(["patient_id", "lesion_id"])
    np.testing.assert_allclose(rows.loc["odd", VALUES].to_numpy(), rows.loc["start", VALUES].to_numpy(), rtol=1e-6)
    assert set(rows.loc["odd", "suv_units"]) == {units}


# --- CT and RTSTRUCT -------------------------------------------------------------------------------------------------

def test_ct_with_rtstruct_gives_hu_of_the_contoured_voxels(tmp_path: Path) -> None:
    suv, labels = scan_volume()
    hu = np.round(suv * 100 - 200)
    folder = tmp_path / "cohort" / "P1" / "ct"
    z = ge_z()
    write_ct_series(folder / "ct", hu, SPACING, origin=ORIGIN, z_positions=z)
    write_rtstruct(folder / "rtstruct.dcm", rectangle_contours(labels, SPACING, ORIGIN, z, z_shift_mm=0.05),
                   digits=7)
    result, rows, _ = extract(tmp_path / "cohort", tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = rows.set_index("lesion_id")
    assert set(rows["unit"]) == {"HU"}
    for label in (1, 2, 3):
        assert rows.loc[label, "original_firstorder_Maximum"] == hu[labels == label].max()
        assert rows.loc[label, "voxel_count"] == int((labels == label).sum())


def test_rtstruct_drawn_between_slices_is_refused_with_its_offset(tmp_path: Path) -> None:
    z = ge_z()
    pet(tmp_path / "pet", z)
    _, labels = scan_volume()
    rs = write_rtstruct(tmp_path / "rs.dcm", rectangle_contours(labels, SPACING, ORIGIN, z, z_shift_mm=1.0))
    image = read_series(tmp_path / "pet", "PT")
    with pytest.raises(ScanError, match=r"between or across image slices \(1 mm = 0.31 slice from the nearest"):
        read_dicom_mask(rs, image.image, image.layout.positions_mm)


# --- DICOM SEG on another grid ---------------------------------------------------------------------------------------

def test_seg_of_another_reconstruction_is_refused_with_the_offset(tmp_path: Path) -> None:
    """Same pixels, slices half a spacing apart (another reconstruction of the same bed positions)."""
    _, labels = scan_volume()
    other = pet(tmp_path / "other", [p + SPACING[2] / 2 for p in regular_z()])
    seg = write_seg(tmp_path / "seg.dcm", other, labels, digits=7)
    image = read_series(Path(pet(tmp_path / "pet")[0]).parent, "PT")
    with pytest.raises(ScanError, match=r"SEG frame \d+ is 1.6\d mm \(0.50 slice\) from the nearest image slice"):
        read_dicom_mask(seg, image.image, image.layout.positions_mm)


def test_seg_drawn_on_the_ct_grid_is_refused_with_both_spacings(tmp_path: Path) -> None:
    ct_spacing = (0.9765625, 0.9765625, 3.27)
    ct_labels = np.zeros((SHAPE[0], 96, 96), dtype=np.uint8)
    ct_labels[10:14, 30:40, 30:40] = 1
    ct = write_ct_series(tmp_path / "ct", np.zeros(ct_labels.shape), ct_spacing, origin=ORIGIN)
    seg = write_seg(tmp_path / "seg.dcm", ct, ct_labels)
    image = read_series(Path(pet(tmp_path / "pet")[0]).parent, "PT")
    with pytest.raises(ScanError, match=r"SEG pixel spacing \(0.9766, 0.9766\) mm differs from the image's "
                                        r"\(4.073, 4.073\) mm"):
        read_dicom_mask(seg, image.image, image.layout.positions_mm)


def test_seg_in_plane_offset_beyond_the_tolerance_is_refused(tmp_path: Path) -> None:
    _, labels = scan_volume()
    shifted = write_pet_series(tmp_path / "shifted", scan_volume()[0], SPACING,
                               origin=(ORIGIN[0] + 0.2 * SPACING[0], ORIGIN[1], ORIGIN[2]))
    seg = write_seg(tmp_path / "seg.dcm", shifted, labels)
    image = read_series(Path(pet(tmp_path / "pet")[0]).parent, "PT")
    with pytest.raises(ScanError, match=r"off the image's voxel centres in plane \(limit 0.1 voxel\)"):
        read_dicom_mask(seg, image.image, image.layout.positions_mm)


# --- failures name files relative to the cohort ----------------------------------------------------------------------

def test_refusals_name_files_relative_to_the_cohort(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    z, _ = _missing(ge_z())
    suv, labels = scan_volume()
    write_pet_series(cohort / "P1" / "FDG" / "pet", suv[:39], SPACING, origin=ORIGIN, z_positions=z)
    write_nifti_mask(cohort / "P1" / "FDG" / "mask.nii.gz", labels[:39])
    shutil.copytree(cohort / "P1", cohort / "P2")
    for f in (cohort / "P2" / "FDG" / "pet").iterdir():
        if f.name != "slice0005.dcm":
            f.unlink()
    pet(cohort / "P2" / "FDG" / "pet", series_number=9, file_prefix="other")  # a second PET series
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir",
                                      str(params(tmp_path / "params")), "--jobs", "1"])
    assert result.exit_code == 1
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet").set_index("patient_id")
    assert failures.loc["P1", "file"] == "P1/FDG/pet/slice0017.dcm"
    assert failures.loc["P2", "file"] == "P2/FDG/pet"
    assert str(cohort) not in result.stderr + "".join(failures["message"])


# --- real DICOM files shipped as test data (pydicom, dcmqi via ../shared/data) ---------------------------------------

def pydicom_file(name: str) -> Path:
    """A file of pydicom's own test data (never downloaded); skip when this pydicom does not ship it."""
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)
    if found is None:
        pytest.skip(f"pydicom {pydicom.__version__} does not ship {name} locally")
    return Path(found)


def series_folder(tmp_path: Path, *names: str) -> Path:
    """Copies of pydicom test files in one folder (their own folder may hold other series)."""
    folder = tmp_path / "series"
    folder.mkdir()
    for name in names:
        shutil.copy(pydicom_file(name), folder / Path(name).name)
    return folder


CT5N = [f"dicomdirtests/98892001/CT5N/{n}" for n in ("2062", "2392", "2693", "3023", "3353")]
CT2 = [f"dicomdirtests/77654033/CT2/{n}" for n in ("17106", "17136", "17166", "17196")]


def test_pydicom_ct_small_reads_as_one_hu_slice(tmp_path: Path) -> None:
    series = read_series(series_folder(tmp_path, "CT_small.dcm"), "CT")
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(series.image)[0], expected)
    assert series.layout.spacing_max_deviation_mm == 0.0


def test_pydicom_ct_series_without_dcm_names_reads_regular(tmp_path: Path) -> None:
    """Five 2.5 mm CT slices named by number (no ``.dcm``), written top down."""
    series = read_series(series_folder(tmp_path, *CT5N), "CT")
    assert series.image.GetSize()[2] == 5 and series.image.GetSpacing()[2] == pytest.approx(2.5)
    assert series.layout.spacing_max_deviation_mm == 0.0 and series.layout.position_max_offset_mm == 0.0
    assert np.all(np.diff(series.layout.positions_mm) > 0)


def test_pydicom_ct_series_with_a_gap_is_refused_as_missing_slices(tmp_path: Path) -> None:
    """A real series with slices missing: z = -99.48, then 103.02, 104.27, 105.52 (gap 202.5 mm, 1.25 elsewhere)."""
    with pytest.raises(ScanError, match=r"slice gap 202 mm before this slice, 1.25 mm elsewhere; about 161 slices "
                                        r"are missing"):
        read_series(series_folder(tmp_path, *CT2), "CT")


def test_pydicom_jpeg2000_ct_reads_or_names_the_missing_decoder(tmp_path: Path) -> None:
    folder = series_folder(tmp_path, "693_J2KI.dcm")
    try:
        series = read_series(folder, "CT")
    except ScanError as exc:  # no JPEG 2000 plugin installed: the one-line refusal says what to install
        assert exc.stage == "load" and "cannot decode pixel data" in exc.detail
        return
    assert series.image.GetSize() == (512, 512, 1)


def test_pydicom_rtstruct_without_meta_header_is_rasterized(tmp_path: Path) -> None:
    """pydicom's rtstruct.dcm has no preamble or meta header, as older planning systems write it: ROI 1 is a
    400 x 300 mm rectangle on z = -200, -190, -180; ROIs 2 and 3 are POINTs (no area, ignored)."""
    image = sitk.Image(50, 50, 3, sitk.sitkFloat32)
    image.SetSpacing((10.0, 10.0, 10.0))
    image.SetOrigin((-245.0, -245.0, -200.0))
    labels = sitk.GetArrayFromImage(read_dicom_mask(pydicom_file("rtstruct.dcm"), image))
    # voxel centres (-245 + 10 i) inside x in (-200, 200), y in (-150, 150): 40 x 30 per slice, none on an edge
    assert set(np.unique(labels)) == {0, 1}
    assert [int((labels[k] == 1).sum()) for k in range(3)] == [40 * 30] * 3


@pytest.mark.parametrize("name", ["liver_1frame.dcm", "liver_expb_1frame.dcm"])
def test_pydicom_one_frame_liver_seg_lands_on_its_ct_slice(name: str) -> None:
    """pydicom's one-frame copies of dcmqi's liver SEG (little and big endian) on dcmqi's CT: the frame is slice 0
    of the dcmqi decoding, the other slices are empty."""
    ct = read_series(shared_data("dcmqi_seg", "segmentations", "ct-3slice"), "CT")
    labels = sitk.GetArrayFromImage(read_dicom_mask(pydicom_file(name), ct.image, ct.layout.positions_mm))
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data("dcmqi_seg", "segmentations",
                                                                      "liver_seg.nrrd"))))
    np.testing.assert_array_equal(labels[0] > 0, reference[0] > 0)
    assert not labels[1:].any()


#: Every DICOM file of the dcmqi set: (file, image series it belongs to, expected decoding or refusal).
DCMQI = [
    ("liver.dcm", "ct-3slice", "liver_seg.nrrd"),
    ("partial_overlaps.dcm", "ct-3slice", "masks overlap"),  # as a label map; read per segment: test_dicom_inputs
    ("23x38x3/seg/label.seg", "23x38x3/image", "23x38x3/nrrd/label.nrrd"),
    ("24x38x3/seg/label.seg", "24x38x3/image", "24x38x3/nrrd/label.nrrd"),
    ("sparse-labelmap-noppv.dcm", "24x38x3/image", "sparse_labelmap_noppv_seg.nrrd"),
    ("sparse-labelmap-ppv5.dcm", "24x38x3/image", "sparse_labelmap_ppv5_seg.nrrd"),
]


@pytest.mark.parametrize("seg, image_dir, expected", DCMQI, ids=[d[0] for d in DCMQI])
def test_every_dcmqi_seg_is_placed_on_its_ct_series(seg: str, image_dir: str, expected: str) -> None:
    """Real dcmqi SEGs (7-significant-digit geometry) on their real CT series through the frame placement."""
    root = shared_data("dcmqi_seg", "segmentations")
    ct = read_series(root / image_dir, "CT")
    assert ct.layout.spacing_max_deviation_mm == 0.0
    if not expected.endswith(".nrrd"):
        with pytest.raises(ScanError, match=expected):
            read_dicom_mask(root / seg, ct.image, ct.layout.positions_mm)
        return
    ours = sitk.GetArrayFromImage(read_dicom_mask(root / seg, ct.image, ct.layout.positions_mm)).astype(np.int64)
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(root / expected))).astype(np.int64)
    padding = int(pydicom.dcmread(root / seg, stop_before_pixels=True).get("PixelPaddingValue", 0))
    np.testing.assert_array_equal(ours, np.where(theirs == padding, 0, theirs) if padding else theirs)


@pytest.mark.parametrize("folder", ["23x38x3/multiframe", "24x38x3/multiframe"])
def test_dcmqi_enhanced_multiframe_ct_is_refused_in_one_line(tmp_path: Path, folder: str) -> None:
    with pytest.raises(ScanError, match="no CT series|multi-frame"):
        read_series(shared_data("dcmqi_seg", "segmentations", folder), "CT")
