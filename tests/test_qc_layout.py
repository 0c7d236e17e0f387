"""QC pictures as a reader needs them (issue 21, point 15), read back from the PNGs ``radiomx extract --qc`` writes
for a DICOM cohort: reference regions stored as SEG segments or RTSTRUCT ROIs are drawn and listed, both panels
share one mm-per-pixel scale and height (the field of view is wider than deep: 96 x 72 mm, 90 mm tall), and a
negative scan's banner leaves the MIPs clear."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from PIL import Image

from radiomx.cli import cli
from radiomx.qc.picture import NEGATIVE_COLOUR, REFERENCE_COLOUR, read_panels
from tests.conftest import write_volume
from tests.corpus.dicom_pet import rectangle_contours, write_pet_series, write_rtstruct, write_seg
from tests.test_qc import SHAPE, SPACING, _inside, _rgb, synthetic_scan

ORIGIN = (-48.0, -36.0, -45.0)
#: Reference boxes (z, y, x) away from the lesions of ``synthetic_scan``.
LIVER = (slice(14, 20), slice(4, 12), slice(30, 40))
BLOODPOOL = (slice(22, 26), slice(8, 12), slice(8, 12))
HEIGHT_MM = SHAPE[0] * SPACING[2]
WIDTH_MM = {"coronal": SHAPE[2] * SPACING[0], "sagittal": SHAPE[1] * SPACING[1]}
AXIS = {"coronal": (2, SPACING[0]), "sagittal": (1, SPACING[1])}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """P001: SEG with three lesions and a ``ref-liver`` segment; P002: RTSTRUCT with three lesions and a
    ``ref-bloodpool`` ROI; P003: a negative scan (empty NIfTI mask)."""
    root = tmp_path_factory.mktemp("qc-layout")
    cohort = root / "cohort"
    image, mask = synthetic_scan()
    zs = [ORIGIN[2] + k * SPACING[2] for k in range(SHAPE[0])]
    for patient, region, box in (("P001", "ref-liver", LIVER), ("P002", "ref-bloodpool", BLOODPOOL)):
        folder = cohort / patient / "FDG"
        files = write_pet_series(folder / "pet", image, SPACING, origin=ORIGIN)
        labels = mask.copy()
        labels[box] = 4
        if patient == "P001":
            write_seg(folder / "seg.dcm", files, labels, names={4: region})
        else:
            write_rtstruct(folder / "rs.dcm", rectangle_contours(labels, SPACING, ORIGIN, zs), roi_names={4: region})
    write_volume(image, cohort / "P003" / "FDG" / "pet.nii.gz", spacing=SPACING, origin=ORIGIN)
    write_volume(np.zeros_like(mask), cohort / "P003" / "FDG" / "mask.nii.gz", spacing=SPACING, origin=ORIGIN)
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')  # P003's NIfTI; DICOM has its headers
    out = root / "out"
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--qc", "-j", "1"])
    assert result.exit_code == 0, result.stderr
    drawn = {}
    for patient in ("P001", "P002", "P003"):
        path = out / "qc" / patient / "18F-FDG.png"
        with Image.open(path) as png:
            drawn[patient] = (imread(path)[..., :3], read_panels(png.info))
    return drawn, pd.read_parquet(out / "scans.parquet").set_index("patient_id")


def _panel_area(pixels: np.ndarray, panels) -> np.ndarray:
    return _inside(pixels, panels["coronal"], WIDTH_MM["coronal"], HEIGHT_MM) | _inside(
        pixels, panels["sagittal"], WIDTH_MM["sagittal"], HEIGHT_MM)


@pytest.mark.parametrize("patient, region, box", [("P001", "liver", LIVER), ("P002", "bloodpool", BLOODPOOL)])
@pytest.mark.parametrize("view", ["coronal", "sagittal"])
def test_a_reference_region_stored_in_a_dicom_mask_is_outlined_where_it_lies(pictures, patient, region, box, view):
    drawn, state = pictures
    assert state.loc[patient, f"ref_{region}_voxels"] > 0  # the extraction measured it
    pixels, panels = drawn[patient]
    axis, du = AXIS[view]
    slate = (np.abs(pixels - _rgb(REFERENCE_COLOUR)).max(axis=2) < 1.5 / 255) & _inside(
        pixels, panels[view], WIDTH_MM[view], HEIGHT_MM)
    rows, cols = np.nonzero(slate)
    assert len(rows) > 10, f"no {region} outline in the {view} panel"
    c_lo, r_hi = panels[view].pixel(box[axis].start * du, box[0].start * SPACING[2])
    c_hi, r_lo = panels[view].pixel(box[axis].stop * du, box[0].stop * SPACING[2])
    # the dashed outline's top-left corner is the region's (its italic name is written below it, from its left)
    # (tolerance: tests/test_qc.py's, a pixel plus half the line width plus Agg's snap)
    assert abs(cols.min() - c_lo) <= 2.0 and abs(rows.min() - r_lo) <= 2.0
    assert cols.max() >= c_hi - 2.0 and rows.max() >= r_hi - 2.0


@pytest.mark.parametrize("patient", ["P001", "P002"])
def test_a_reference_region_stored_in_a_dicom_mask_is_listed(pictures, patient):
    drawn, _ = pictures
    pixels, panels = drawn[patient]
    # the reference colour (slate blue; anti-aliased text blends it with white), not a grey of the colour bar
    slate = (np.abs(pixels - _rgb(REFERENCE_COLOUR)).max(axis=2) < 0.12) & (pixels[..., 2] - pixels[..., 0] > 0.1)
    beside = (slate & ~_panel_area(pixels, panels))[:, int(panels["sagittal"].pixel(WIDTH_MM["sagittal"], 0)[0]):]
    assert beside.sum() > 30  # the legend's "ref <region>: SUVmean ..." line


@pytest.mark.parametrize("patient", ["P001", "P003"])
def test_both_panels_share_one_scale_and_one_height(pictures, patient):
    """A lesion sits at the same row in both panels, and a millimetre is as many pixels in one as in the other,
    though the coronal field (96 mm) is wider than the sagittal (72 mm)."""
    _, panels = pictures[0][patient]
    coronal, sagittal = panels["coronal"], panels["sagittal"]
    assert coronal.sx == pytest.approx(sagittal.sx, rel=1e-9)
    assert coronal.sy == pytest.approx(sagittal.sy, rel=1e-9)
    assert coronal.y0 == pytest.approx(sagittal.y0, abs=1e-6)
    assert coronal.pixel(0, HEIGHT_MM)[0] < sagittal.pixel(0, HEIGHT_MM)[0]  # side by side, not overlapping
    assert coronal.pixel(WIDTH_MM["coronal"], 0)[0] < sagittal.pixel(0, 0)[0]


def test_the_negative_banner_leaves_the_mips_clear(pictures):
    pixels, panels = pictures[0]["P003"]
    red = np.abs(pixels - _rgb(NEGATIVE_COLOUR)).max(axis=2) < 0.1
    assert not (red & _panel_area(pixels, panels)).any()  # the head (top of the MIPs) stays visible
    assert red.sum() > 100  # the banner is there, beside the panels
