"""QC pictures: drawn by `radiomx extract --qc` and `radiomx qc`, read back from the PNG files and checked by pixel.

The synthetic scan has three lesions at known voxel positions on an anisotropic grid (2 x 2 x 3 mm); the PNG is
read with matplotlib.image.imread and its panel maps (mm -> pixel, stored in the PNG) place the expected extents.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk
import yaml
from click.testing import CliRunner
from matplotlib.image import imread
from PIL import Image

from radiomx import api
from radiomx.cli import cli
from radiomx.errors import ConfigError
from radiomx.options import ExtractOptions
from radiomx.params.paramset import default_params_root, load_param_file
from radiomx.qc.files import picture_path, stored_key, thumbnail_path
from radiomx.qc.picture import NEGATIVE_COLOUR, PALETTE, REFERENCE_COLOUR, read_panels
from radiomx.records import ScanKey
from tests.conftest import make_cohort, write_volume

SPACING = (2.0, 2.0, 3.0)  # x, y, z mm
SHAPE = (30, 36, 48)  # z, y, x
#: label -> (z, y, x) slices of a box lesion, and its uptake; lesion 2 is the hottest, peaking at PEAK.
LESIONS = {
    1: ((slice(4, 9), slice(5, 10), slice(6, 12)), 6.0),
    2: ((slice(18, 24), slice(20, 27), slice(30, 37)), 9.0),
    3: ((slice(10, 14), slice(26, 30), slice(20, 24)), 4.0),
}
PEAK, PEAK_ZYX = 15.0, (21, 23, 33)
WINDOW = [0, 20]


def synthetic_scan() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = (1.0 + rng.uniform(-0.05, 0.05, SHAPE)).astype(np.float32)
    mask = np.zeros(SHAPE, np.uint8)
    for label, (box, uptake) in LESIONS.items():
        image[box] = uptake
        mask[box] = label
    image[PEAK_ZYX] = PEAK
    return image, mask


def params_dir(root: Path, window=WINDOW) -> Path:
    """The released FDG v1 file plus a qc window (a new tree: released files are never edited)."""
    data = yaml.safe_load((default_params_root() / "18F-FDG" / "v1.yaml").read_text())
    data["radiomx"]["qc"] = {"window": window}
    (root / "18F-FDG").mkdir(parents=True)
    (root / "18F-FDG" / "v1.yaml").write_text(yaml.safe_dump(data))
    return root


@pytest.fixture
def drawn(tmp_path: Path):
    cohort = tmp_path / "cohort"
    image, mask = synthetic_scan()
    write_volume(image, cohort / "P001" / "FDG" / "pet.nii.gz", spacing=SPACING, origin=(-40.0, -30.0, -60.0))
    write_volume(mask, cohort / "P001" / "FDG" / "mask.nii.gz", spacing=SPACING, origin=(-40.0, -30.0, -60.0))
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(out), "--qc", "-j", "1",
                                      "--params-dir", str(params_dir(tmp_path / "params"))])
    assert result.exit_code == 0, result.stderr
    path = out / "qc" / "P001" / "18F-FDG.png"
    with Image.open(path) as png:
        panels = read_panels(png.info)
    return imread(path), panels, out


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0


def _inside(pixels: np.ndarray, panel, width_mm: float, height_mm: float) -> np.ndarray:
    """Boolean mask of the PNG pixels within a panel's image area, less the 2-pixel frame (the black axes spine)."""
    c0, r0 = panel.pixel(0, height_mm)
    c1, r1 = panel.pixel(width_mm, 0)
    rows, cols = np.indices(pixels.shape[:2])
    return (cols >= c0 + 2) & (cols < c1 - 2) & (rows >= r0 + 2) & (rows < r1 - 2)


VIEWS = {"coronal": (2, SPACING[0], SHAPE[2] * SPACING[0]), "sagittal": (1, SPACING[1], SHAPE[1] * SPACING[1])}


@pytest.mark.parametrize("view", list(VIEWS))
def test_brightest_mip_pixel_is_where_the_hottest_lesion_projects(drawn, view):
    pixels, panels, _ = drawn
    axis, du, width_mm = VIEWS[view]
    rgb = pixels[..., :3]
    grey = (np.ptp(rgb, axis=2) < 1.5 / 255) & _inside(pixels, panels[view], width_mm, SHAPE[0] * SPACING[2])
    darkest = np.where(grey, rgb[..., 0], np.inf)  # gray_r: the highest SUV is the darkest grey
    row, col = np.unravel_index(np.argmin(darkest), darkest.shape)
    u = (PEAK_ZYX[axis] + 0.5) * du
    v = (PEAK_ZYX[0] + 0.5) * SPACING[2]
    expected_col, expected_row = panels[view].pixel(u, v)
    voxel_px = abs(panels[view].sx) * du, abs(panels[view].sy) * SPACING[2]
    assert abs(col - expected_col) <= voxel_px[0] and abs(row - expected_row) <= voxel_px[1]
    # and its grey is the peak's in the fixed window [0, 20] (gray_r: 1 - 15/20)
    assert rgb[row, col, 0] == pytest.approx(1 - PEAK / WINDOW[1], abs=0.02)


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("label", sorted(LESIONS))
def test_each_outline_bounding_box_matches_the_lesion_within_a_pixel(drawn, view, label):
    pixels, panels, _ = drawn
    axis, du, width_mm = VIEWS[view]
    colour = _rgb(PALETTE[sorted(LESIONS).index(label)])
    inside = _inside(pixels, panels[view], width_mm, SHAPE[0] * SPACING[2])
    hits = (np.abs(pixels[..., :3] - colour).max(axis=2) < 1.5 / 255) & inside
    rows, cols = np.nonzero(hits)
    assert len(rows) > 10, f"no outline in {PALETTE[label - 1]} in the {view} panel"
    box = LESIONS[label][0]
    c_lo, r_hi = panels[view].pixel(box[axis].start * du, box[0].start * SPACING[2])
    c_hi, r_lo = panels[view].pixel(box[axis].stop * du, box[0].stop * SPACING[2])
    for got, expected in ((cols.min(), c_lo), (cols.max(), c_hi), (rows.min(), r_lo), (rows.max(), r_hi)):
        # within a pixel, plus half the 1 pt (1.4 px) line width, plus Agg's snap of unantialiased lines to pixel
        # centres (0.5 px): the panels' scale is whatever fits the field of view, so edges fall between pixels
        assert abs(got - expected) <= 2.0, (view, label, got, expected)


def test_caption_and_legend_carry_keys_and_values_never_names(drawn):
    _, _, out = drawn
    features = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    assert sorted(features["lesion_id"]) == [1, 2, 3]
    from radiomx.features.indices import lesion_values

    image, mask = synthetic_scan()
    values = {v.lesion_id: v for v in lesion_values(image, mask, SPACING)}
    assert values[2].suv_max == PEAK and values[1].mtv_ml == pytest.approx(5 * 5 * 6 * 12 / 1000)
    with Image.open(out / "qc" / "P001" / "18F-FDG.png") as png:
        assert set(png.info) >= {"radiomx-qc-key", "radiomx-qc-panels"}
        assert not any("date" in k.lower() or "time" in k.lower() for k in png.info)


def test_negative_scan_is_drawn_and_marked(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 0}})
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(qc=True, jobs=1))
    pixels = imread(out / "qc" / "P001" / "18F-FDG.png")[..., :3]
    red = np.abs(pixels - _rgb(NEGATIVE_COLOUR)).max(axis=2) < 0.02
    assert red.sum() > 100  # the NEGATIVE mark, beside the panels (tests/test_qc_layout.py: never on them)


def test_reference_regions_are_drawn_and_a_bad_one_is_a_qc_warning(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    folder = cohort / "P001" / "FDG"
    liver = np.zeros((24, 32, 32), np.uint8)
    liver[4:10, 20:28, 18:28] = 1
    write_volume(liver, folder / "ref-liver.nii.gz")
    write_volume(np.ones((5, 5, 5), np.uint8), folder / "ref-bloodpool.nii.gz")  # not on the image grid
    out = tmp_path / "out"
    summary = api.extract(cohort, out, ExtractOptions(qc=True, jobs=1))
    pixels = imread(out / "qc" / "P001" / "18F-FDG.png")[..., :3]
    slate = np.abs(pixels - _rgb(REFERENCE_COLOUR)).max(axis=2) < 0.02
    assert slate.sum() > 40
    (warning,) = [f for f in summary.failures if f.stage == "qc"]
    assert warning.file == "P001/FDG/ref-bloodpool.nii.gz" and "reference region not drawn" in warning.message
    assert str(tmp_path) not in warning.message
    # the misaligned file is also a failure of the scan's reference regions (features/references), which leaves the
    # lesion rows written and retries the scan next run; the QC warning alone would not
    (reference,) = [f for f in summary.failures if f.stage != "qc"]
    assert reference.file == "P001/FDG/ref-bloodpool.nii.gz"
    state = pd.read_parquet(out / "scans.parquet")
    assert list(state["status"]) == ["partial"]
    assert len(pd.read_parquet(out / "features" / "18F-FDG.parquet")) == 1


def test_a_drawing_failure_is_a_qc_row_and_loses_no_feature(tmp_path, monkeypatch):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2}})
    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("no canvas today")

    monkeypatch.setattr("radiomx.qc.draw.draw_scan", broken)  # the serial engine draws in this process
    summary = api.extract(cohort, out, ExtractOptions(qc=True, jobs=1))
    assert summary.exit_code == 1
    assert len(pd.read_parquet(out / "features" / "18F-FDG.parquet")) == 2
    (failure,) = pd.read_parquet(out / "failures.parquet").to_dict("records")
    assert failure["stage"] == "qc" and "no canvas today" in failure["message"] and failure["file"] == (
        "P001/FDG/pet.nii.gz")
    assert list(pd.read_parquet(out / "scans.parquet")["status"]) == ["ok"]
    assert not picture_path(out, ScanKey("P001", "", "18F-FDG")).exists()
    monkeypatch.undo()
    assert api.extract(cohort, out, ExtractOptions(qc=True, jobs=1)).computed == 0  # features are not redone
    result = CliRunner().invoke(cli, ["qc", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "1 pictures drawn" in result.stderr
    assert len(pd.read_parquet(out / "failures.parquet")) == 0  # the qc row is gone with its cause


def _snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    """Every file in OUT but the lock (whose text describes the current holder), with mtime and bytes."""
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".radiomx.store.lock"}


def test_qc_and_report_are_incremental_and_a_no_change_rerun_writes_nothing(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 1}})
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(jobs=1))
    runner = CliRunner()
    hint = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "--qc", "-j", "1"])
    assert "3 unchanged scans have no QC picture; draw them with `radiomx qc" in hint.stderr
    first = runner.invoke(cli, ["qc", str(out), "--patient", "P001", "--tracer", "fdg"])
    assert first.exit_code == 0 and "1 pictures drawn" in first.stderr
    assert runner.invoke(cli, ["qc", str(out)]).stderr.count("2 pictures drawn, 1 unchanged") == 1
    assert runner.invoke(cli, ["report", str(out)]).exit_code == 0
    before = _snapshot(out)
    again = runner.invoke(cli, ["qc", str(out)])
    assert "0 pictures drawn, 3 unchanged" in again.stderr
    assert "unchanged" in runner.invoke(cli, ["report", str(out)]).stderr
    assert _snapshot(out) == before  # same files, same bytes, same mtimes

    # one changed mask: extract recomputes that scan, then only its picture (and the page) are redone
    key = ScanKey("P002", "", "18F-FDG")
    old_key = stored_key(out, key)
    mask_file = cohort / "P002" / "FDG" / "mask.nii.gz"
    shifted = np.roll(sitk.GetArrayFromImage(sitk.ReadImage(str(mask_file))), 3, axis=2)
    write_volume(shifted, mask_file)
    api.extract(cohort, out, ExtractOptions(jobs=1))
    redo = runner.invoke(cli, ["qc", str(out)])
    assert "1 pictures drawn, 2 unchanged" in redo.stderr
    assert stored_key(out, key) != old_key
    after = _snapshot(out)
    changed = {k for k in after if before.get(k) != after[k]}
    assert {"qc/P002/18F-FDG.png", "qc/P002/18F-FDG.thumb.jpg"} <= changed
    assert not any(k.startswith("qc/P001") for k in changed)
    assert "written" in runner.invoke(cli, ["report", str(out)]).stderr


def test_qc_refuses_to_draw_a_scan_changed_since_extraction(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(jobs=1))
    image = cohort / "P001" / "FDG" / "pet.nii.gz"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    result = CliRunner().invoke(cli, ["qc", str(out)])
    assert result.exit_code == 1
    assert "changed since extraction; run `radiomx extract` first" in result.stderr
    failures = pd.read_parquet(out / "failures.parquet")
    assert list(failures["stage"]) == ["qc"]


def drop_run_columns(out: Path) -> None:
    path = out / "runs.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["cohort", "options"]), path)


def test_runs_record_the_cohort_relative_to_out_and_old_run_logs_still_append(tmp_path):
    cohort = make_cohort(tmp_path / "data" / "cohort", {"P001": {"FDG": 1}})
    out = tmp_path / "data" / "results" / "out"
    api.extract(cohort, out, ExtractOptions(jobs=1))
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["cohort"]) == ["../../cohort"]
    assert '"pet_units": null' in runs["options"].iloc[0]
    drop_run_columns(out)  # a run log written before these columns existed
    api.extract(cohort, out, ExtractOptions(jobs=1))
    assert list(pd.read_parquet(out / "runs.parquet")["cohort"]) == ["", "../../cohort"]
    moved = tmp_path / "moved"  # OUT and cohort moved together: still found
    shutil.move(tmp_path / "data", moved)
    result = CliRunner().invoke(cli, ["qc", str(moved / "results" / "out")])
    assert result.exit_code == 0, result.stderr
    assert thumbnail_path(moved / "results" / "out", ScanKey("P001", "", "18F-FDG")).is_file()


def test_a_cohort_path_through_other_named_folders_is_never_recorded(tmp_path):
    """``../Smith_John/cohort`` would put a folder name that may identify a patient into a table: not recorded,
    and `radiomx qc` asks for --cohort."""
    cohort = make_cohort(tmp_path / "Smith_John" / "cohort", {"P001": {"FDG": 1}})
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(jobs=1, params_dir=default_params_root()))
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["cohort"]) == [""] and '"params_dir": ""' in runs["options"].iloc[0]
    assert not any(b"Smith_John" in p.read_bytes() for p in out.rglob("*.parquet"))
    refused = CliRunner().invoke(cli, ["qc", str(out)])
    assert refused.exit_code == 2 and "pass --params-dir" in refused.stderr
    refused = CliRunner().invoke(cli, ["qc", str(out), "--params-dir", str(default_params_root())])
    assert refused.exit_code == 2 and "pass --cohort" in refused.stderr
    given = CliRunner().invoke(cli, ["qc", str(out), "--cohort", str(cohort), "--params-dir",
                                     str(default_params_root())])
    assert given.exit_code == 0 and "1 pictures drawn" in given.stderr, given.stderr


def test_qc_without_a_recorded_cohort_says_what_to_do(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(jobs=1))
    drop_run_columns(out)
    result = CliRunner().invoke(cli, ["qc", str(out)])
    assert result.exit_code == 2
    assert "records how its scans were read" in result.stderr


@pytest.mark.parametrize("window", [[10, 0], [0], "wide", [0, True]])
def test_a_bad_qc_window_in_a_parameter_file_is_refused(tmp_path, window):
    path = params_dir(tmp_path / "params", window) / "18F-FDG" / "v1.yaml"
    with pytest.raises(ConfigError, match="radiomx.qc.window must be two numbers"):
        load_param_file(path, "18F-FDG", "v1")


def test_a_qc_window_is_read_from_the_parameter_file(tmp_path):
    path = params_dir(tmp_path / "params", [0, 7.5]) / "18F-FDG" / "v1.yaml"
    assert load_param_file(path, "18F-FDG", "v1").qc_window == (0.0, 7.5)


def test_pool_workers_draw_the_same_key_radiomx_qc_expects(tmp_path):
    """The local pool (whole-scan and split-scan tasks): every picture crosses the process boundary as bytes, the
    writer writes it, and its key is the one `radiomx qc` computes from the tables, so nothing is drawn twice."""
    cohort = make_cohort(tmp_path / "cohort", {f"P00{i}": {"FDG": 1 + i % 3} for i in range(1, 6)})
    out = tmp_path / "out"
    summary = api.extract(cohort, out, ExtractOptions(qc=True, jobs=2))
    assert summary.exit_code == 0 and summary.computed == 5
    for i in range(1, 6):
        assert picture_path(out, ScanKey(f"P00{i}", "", "18F-FDG")).is_file()
    result = CliRunner().invoke(cli, ["qc", str(out)])
    assert "0 pictures drawn, 5 unchanged" in result.stderr, result.stderr


def test_a_flipped_grid_gives_the_same_picture_as_its_lps_twin(tmp_path):
    """The same physical volume stored with the x axis running right-to-left (direction -1): reoriented to LPS
    before projecting, so the PNG is byte-identical to the LPS-stored one (patient's right on the viewer's left)."""
    from radiomx.params.paramset import resolve_params
    from radiomx.qc.draw import draw_scan
    from radiomx.tracers import get_tracer

    image, mask = synthetic_scan()
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"))
    pictures = []
    for flipped in (False, True):
        order = slice(None, None, -1 if flipped else 1)
        pet = sitk.GetImageFromArray(image[:, :, order].copy())
        labels = sitk.GetImageFromArray(mask[:, :, order].copy())
        for volume in (pet, labels):
            volume.SetSpacing(SPACING)
            if flipped:
                volume.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
                volume.SetOrigin(((SHAPE[2] - 1) * SPACING[0], 0.0, 0.0))
        picture = draw_scan(ScanKey("P001", "", "18F-FDG"), pet, labels, "SUVbw", {"suv_source": "declared"},
                            params, (), "same")
        path = tmp_path / f"flipped-{flipped}.png"
        path.write_bytes(picture.png)
        pictures.append(imread(path))
    assert np.array_equal(pictures[0], pictures[1])
