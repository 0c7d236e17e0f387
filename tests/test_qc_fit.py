"""QC pictures on small, wide and whole-body grids (QA1 #11): the figure is as tall as its panels need (a 64 x 64 x
40 grid at 4 mm left the lower half of an 1100 x 640 canvas blank), the colour bar is the panels' height (it was
~2.5x), and labels (lesion ids, reference names) cover neither each other nor an outline ("2ver", "bl1odpool")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from PIL import Image

from radiomx.cli import cli
from radiomx.features.indices import lesion_values
from radiomx.qc.picture import PALETTE, Scene, read_panels, render, short_site
from tests.conftest import write_volume
from tests.test_qc import _rgb

S = np.s_
#: Below the panels: the caption's line and its margins, nothing else.
CAPTION_PX = 45
#: (name, (z, y, x) shape, (x, y, z) spacing mm): QA's small and wide grids, a whole body, a wide-FOV torso.
GRIDS = [("small", (40, 64, 64), (4.0, 4.0, 4.0)), ("wide", (47, 128, 128), (4.0, 4.0, 4.0)),
         ("whole-body", (300, 200, 200), (4.0, 4.0, 3.0)), ("wide-fov-torso", (70, 192, 192), (3.6, 3.6, 3.3))]


def _scene(shape, spacing) -> Scene:
    """A body, a liver with a lesion just below its bottom-left corner (where its name goes), a blood pool with a
    lesion beside it: the places the old layout wrote "liver" and "bloodpool" over a lesion's id."""
    nz, ny, nx = shape
    rng = np.random.default_rng(0)
    image = (1.0 + rng.normal(0, 0.05, shape)).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    cz, cy, cx = nz // 2, ny // 2, nx // 2
    dz, dy, dx = max(2, nz // 10), max(2, ny // 10), max(2, nx // 10)
    liver = S[cz - dz:cz + dz, cy - dy:cy + dy, cx - 2 * dx:cx]
    pool = S[cz + 2 * dz:cz + 2 * dz + 3, cy:cy + 3, cx + dx:cx + dx + 3]
    lesions = [S[cz - dz - 3:cz - dz - 1, cy:cy + 3, cx - 2 * dx - 1:cx - 2 * dx + 2],  # under "liver"
               S[cz + 2 * dz:cz + 2 * dz + 3, cy:cy + 3, cx + dx + 4:cx + dx + 7],      # beside the blood pool
               S[cz - 1:cz + 1, cy - 1:cy + 1, cx - dx:cx - dx + 2]]                    # inside the liver
    references = []
    for name, box in (("liver", liver), ("bloodpool", pool)):
        region = np.zeros(shape, bool)
        region[box] = True
        image[box] = 2.0
        references.append((name, region))
    for lesion_id, box in enumerate(lesions, start=1):
        image[box] = 6.0 + lesion_id
        labels[box] = lesion_id
    return Scene(title="P001 / 18F-FDG", caption="patient P001 | tracer 18F-FDG", image=image,
                 spacing_xyz=spacing, labels=labels, lesions=tuple(lesion_values(image, labels, spacing)),
                 unit="SUVbw", window=(0.0, 10.0), references=tuple(references))


def _bar_rows(pixels: np.ndarray, column: int) -> tuple[int, int]:
    """Top and bottom rows of the colour bar (its arrow tips included) in one column through it."""
    ink = np.nonzero(pixels[:, column].min(axis=1) < 0.97)[0]
    return int(ink.min()), int(ink.max())


@pytest.mark.parametrize("name, shape, spacing", GRIDS, ids=[g[0] for g in GRIDS])
def test_the_figure_is_as_tall_as_its_panels_and_the_colour_bar_as_tall_as_they(name, shape, spacing):
    rendered = render(_scene(shape, spacing))
    pixels = imread(io.BytesIO(rendered.png))[..., :3]
    coronal, sagittal = rendered.panels["coronal"], rendered.panels["sagittal"]
    height_mm = shape[0] * spacing[2]
    top, bottom = coronal.pixel(0, height_mm)[1], coronal.pixel(0, 0)[1]
    # Below the panels only the caption: no blank half (the old canvas was 640 px whatever the grid).
    assert pixels.shape[0] - bottom <= CAPTION_PX, (name, pixels.shape, bottom)
    assert pixels.shape[1] == 1100
    # One scale for both panels (last wave's fix stays).
    assert coronal.sx == pytest.approx(sagittal.sx) and coronal.y0 == pytest.approx(sagittal.y0)
    right = sagittal.pixel(shape[1] * spacing[1], 0)[0]
    bar_top, bar_bottom = _bar_rows(pixels, int(right + 16 + 6))
    assert abs(bar_top - top) <= 2 and abs(bar_bottom - bottom) <= 2, (name, bar_top, bar_bottom, top, bottom)


@pytest.mark.parametrize("name, shape, spacing", GRIDS, ids=[g[0] for g in GRIDS])
def test_no_label_covers_another_label_or_a_lesion_outline(name, shape, spacing):
    rendered = render(_scene(shape, spacing))
    pixels = imread(io.BytesIO(rendered.png))[..., :3]
    names = [text for _view, text, _box in rendered.labels]
    assert sorted(names) == sorted(["1", "2", "3", "liver", "bloodpool"] * 2)
    outline = np.zeros(pixels.shape[:2], bool)
    for colour in PALETTE[:3]:
        outline |= np.abs(pixels - _rgb(colour)).max(axis=2) < 1.5 / 255
    for view in ("coronal", "sagittal"):
        boxes = [(text, box) for v, text, box in rendered.labels if v == view]
        for i, (text, (left, top, right, bottom)) in enumerate(boxes):
            for other, (l2, t2, r2, b2) in boxes[i + 1:]:
                assert min(right, r2) <= max(left, l2) or min(bottom, b2) <= max(top, t2), (name, view, text, other)
            covered = outline[int(np.ceil(top)):int(bottom), int(np.ceil(left)):int(right)]
            assert not covered.any(), (name, view, text, "an outline runs through the label")


def test_extract_draws_a_small_grid_without_a_blank_half(tmp_path):
    """From the command line, QA's case: a 64 x 64 x 40 grid at 4 mm with a liver and a blood pool."""
    scene = _scene((40, 64, 64), (4.0, 4.0, 4.0))
    folder = tmp_path / "cohort" / "P001" / "FDG"
    write_volume(scene.image, folder / "pet.nii.gz", spacing=(4.0, 4.0, 4.0))
    write_volume(scene.labels, folder / "mask.nii.gz", spacing=(4.0, 4.0, 4.0))
    for name, region in scene.references:
        write_volume(region.astype(np.uint8), folder / f"ref-{name}.nii.gz", spacing=(4.0, 4.0, 4.0))
    (tmp_path / "cohort" / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    result = CliRunner().invoke(cli, ["extract", str(tmp_path / "cohort"), "-o", str(tmp_path / "out"), "--qc",
                                      "-j", "1"])
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "out" / "qc" / "P001" / "18F-FDG.png"
    with Image.open(path) as png:
        panels, size = read_panels(png.info), png.size
    bottom = panels["coronal"].pixel(0, 0)[1]
    assert size[1] - bottom <= CAPTION_PX and size[1] < 400, size  # was 640 px, the panels' bottom at 292


def test_legend_rows_with_long_names_and_sites_stay_inside_the_picture():
    """QA4: ``les_spleen @splee``: a lesion's name and site ran past the picture's right edge. The site stays whole,
    the name gives way, and no legend text reaches the last pixel columns."""
    import dataclasses

    scene = _scene((300, 200, 200), (4.0, 4.0, 3.0))
    long_names = {1: "les_adrenal_left_mass", 2: "les_spleen", 3: "lesion_in_the_liver"}
    sites = {1: "adrenal_gland_left", 2: "spleen", 3: "lung_upper_lobe_right"}
    unnamed = {1: "gluteus_maximus_right", 2: "atrial_appendage_left", 3: "heart_ventricle_left"}  # review: 41 chars
    for names, where in ((long_names, sites), ({}, unnamed)):
        rendered = render(dataclasses.replace(scene, names=names, sites=where))
        pixels = imread(io.BytesIO(rendered.png))[..., :3]
        assert pixels[:, -4:].min() > 0.97, f"legend text reaches the picture's right edge: {where}"
        assert pixels[:, -60:].min() < 0.5  # the rows do reach the right part of the legend column
    assert short_site("gluteus_maximus_right") == "gluteus_maxim R" and short_site("adrenal_gland_left") == "adrenal L"
