"""Lesions are named masks that may overlap (issue 22, part 1), through the real CLI.

Every expected value is computed here independently: features by a direct ``RadiomicsFeatureExtractor`` call on the
lesion's binary mask alone (built from the boxes this file draws, not from radiomx's rasterizer), indices and
burden by numpy on the same SUV image. Tolerance for features: relative difference <= 1e-12 (observed: 0, the calls
are bit-identical, because the layer radiomx hands PyRadiomics holds exactly that lesion's voxels under its label).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.sr.codedict import codes

from radiomx.cli import cli
from radiomx.discover.cohort import discover, layout_for
from radiomx.features.lesions import split_masks
from radiomx.inputs.lesion_selection import choose
from radiomx.inputs.loader import load_image_in_unit
from radiomx.inputs.named_masks import MaskSet, NamedMask, pack_layers
from radiomx.options import ExtractOptions, RoiSelection
from radiomx.params.paramset import default_params_root, resolve_params
from radiomx.tracers import get_tracer

from .conftest import write_volume
from .corpus.dicom_pet import rectangle_contours, write_named_seg, write_pet_series, write_rtstruct

FDG = "18F-FDG"
SPACING = (4.0, 4.0, 3.0)  # x, y, z mm: a PET grid, resampled to 4 mm isotropic by the FDG parameter file
SHAPE = (24, 30, 30)  # z, y, x
#: Feature tolerance against a direct PyRadiomics call (module docstring).
FEATURE_RTOL = 1e-12


def box(z: tuple[int, int], y: tuple[int, int], x: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = True
    return mask


BODY = box((1, 23), (1, 29), (1, 29))
EDEMA = box((6, 16), (6, 18), (6, 18))
MASS = box((9, 13), (9, 14), (9, 14))  # inside EDEMA
LIVER = box((16, 22), (18, 27), (16, 27))  # an organ, overlapping nothing above
NODE = box((2, 5), (22, 26), (3, 7))


def suv_volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    suv = 0.9 + 0.1 * rng.standard_normal(SHAPE)
    suv[LIVER] = 2.1 + 0.2 * rng.standard_normal(int(LIVER.sum()))
    suv[EDEMA] = 3.0 + 0.5 * rng.standard_normal(int(EDEMA.sum()))
    suv[MASS] = 9.0 + 1.5 * rng.standard_normal(int(MASS.sum()))
    suv[NODE] = 6.0 + 1.0 * rng.standard_normal(int(NODE.sum()))
    return np.clip(suv, 0.05, None)


def contours(mask: np.ndarray) -> list[np.ndarray]:
    z_mm = [k * SPACING[2] for k in range(SHAPE[0])]
    return rectangle_contours(mask.astype(np.uint8), SPACING, (0.0, 0.0, 0.0), z_mm)[1]


def rtstruct_cohort(root: Path) -> Path:
    """P001/FDG: a DICOM PET and a GE-like RTSTRUCT: BODY (EXTERNAL), GTV_Edema around GTV_Mass (GTV), Liver
    (ORGAN) and ref-liver inside the liver."""
    folder = root / "P001" / "FDG"
    write_pet_series(folder / "pet", suv_volume(), SPACING)
    ref = box((17, 21), (20, 25), (18, 25))
    write_rtstruct(folder / "rtstruct.dcm", {1: contours(BODY), 2: contours(EDEMA), 3: contours(MASS),
                                             4: contours(LIVER), 5: contours(ref)},
                   roi_names={1: "BODY", 2: "GTV_Edema", 3: "GTV_Mass", 4: "Liver", 5: "ref-liver"},
                   roi_types={1: "EXTERNAL", 2: "GTV", 3: "GTV", 4: "ORGAN", 5: "ORGAN"})
    return root


def seg_cohort(root: Path) -> Path:
    """P001/FDG: a DICOM PET and a highdicom SEG with overlapping segments (Edema around Mass), a node and a
    table (category Physical object)."""
    folder = root / "P001" / "FDG"
    files = write_pet_series(folder / "pet", suv_volume(), SPACING)
    table = box((0, 24), (28, 30), (0, 30))
    write_named_seg(folder / "seg.dcm", files, {1: ("Edema", EDEMA), 2: ("Mass", MASS), 3: ("node_axilla_L", NODE),
                                                4: ("Table", table)}, categories={4: codes.SCT.PhysicalObject})
    return root


def run(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def direct_pyradiomics(image: sitk.Image, mask: np.ndarray) -> dict[str, float]:
    """The plain PyRadiomics call a user would make: the released FDG parameter file, the lesion's binary mask."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    params = resolve_params(default_params_root(), get_tracer(FDG))
    binary = sitk.GetImageFromArray(mask.astype(np.uint8))
    binary.CopyInformation(image)
    result = RadiomicsFeatureExtractor(dict(params.pyradiomics)).execute(image, binary, label=1)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def suv_image(cohort: Path) -> sitk.Image:
    (scan,) = discover(cohort)
    return load_image_in_unit(scan, layout_for(cohort))[0]


def diameter_mm(mask: np.ndarray, image: sitk.Image) -> float:
    points = np.argwhere(mask)[:, ::-1] * np.array(image.GetSpacing()) + np.array(image.GetOrigin())
    return float(np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).max())


def test_nested_rtstruct_rois_each_equal_a_direct_pyradiomics_call(tmp_path: Path) -> None:
    """The issue's GE case: GTV_Mass inside GTV_Edema plus BODY and an organ. Two lesion rows, each equal to
    PyRadiomics on its own binary mask; BODY and Liver are left out by default (Liver with a warning, ref-liver a
    reference region); burden counts the shared voxels once."""
    cohort = rtstruct_cohort(tmp_path / "cohort")
    out = tmp_path / "out"
    result = run("extract", cohort, "-o", out, "-j", "2")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(out / "features" / f"{FDG}.parquet").set_index("lesion_name")
    assert list(rows.index) == ["GTV_Edema", "GTV_Mass"]
    assert list(rows["lesion_id"]) == [2, 3] and list(rows["roi_number"]) == [2, 3]
    assert rows["segment_number"].isna().all() and rows["label_value"].isna().all()
    image = suv_image(cohort)
    suv = sitk.GetArrayFromImage(image).astype(np.float64)
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    features = [c for c in rows.columns if c.startswith("original_")]
    assert len(features) > 100
    for name, mask in (("GTV_Edema", EDEMA), ("GTV_Mass", MASS)):
        row = rows.loc[name]
        direct = direct_pyradiomics(image, mask)
        assert set(features) == set(direct)
        for feature in features:
            assert row[feature] == pytest.approx(direct[feature], rel=FEATURE_RTOL, abs=1e-300), (name, feature)
        assert row["voxel_count"] == mask.sum()
        assert row["suv_max"] == suv[mask].max() and row["suv_mean"] == pytest.approx(suv[mask].mean(), rel=1e-12)
        assert row["tlg"] == pytest.approx(suv[mask].mean() * mask.sum() * voxel_ml, rel=1e-12)
    assert rows.loc["GTV_Edema", "suv_max"] == rows.loc["GTV_Mass", "suv_max"]  # the oedema's ROI holds the mass

    burden = pd.read_parquet(out / "burden.parquet").iloc[0]
    union = EDEMA | MASS
    assert burden["tmtv_ml"] == pytest.approx(union.sum() * voxel_ml, rel=1e-12) == EDEMA.sum() * voxel_ml
    assert burden["ttlg"] == pytest.approx(suv[union].sum() * voxel_ml, rel=1e-12)
    assert burden["ttlg"] < rows["tlg"].sum()  # the mass's uptake counted once, not twice
    assert burden["dmax_voxel_mm"] == pytest.approx(diameter_mm(union, image), rel=1e-12)
    assert "union of lesion voxels" in burden["tmtv_definition"] and "counts once" in burden["ttlg_definition"]

    state = pd.read_parquet(out / "scans.parquet").iloc[0]
    ref = box((17, 21), (20, 25), (18, 25))
    assert state["ref_liver_suv_mean"] == pytest.approx(suv[ref].mean(), rel=1e-12)
    (warning,) = pd.read_parquet(out / "failures.parquet").to_dict("records")
    assert (warning["severity"], warning["stage"], warning["file"]) == ("warning", "lesions", "P001/FDG/rtstruct.dcm")
    assert 'ROI 4 "Liver" [ORGAN]' in warning["message"] and "BODY" not in warning["message"]


def test_overlapping_seg_segments_in_labels_and_components_mode_and_by_label(tmp_path: Path) -> None:
    """A highdicom SEG whose segments overlap: one lesion per segment (the table, a physical object, quietly
    out); components mode numbers components per segment; ``--label`` picks a segment even where it overlaps."""
    cohort = seg_cohort(tmp_path / "cohort")
    image = suv_image(cohort)
    labels = run("extract", cohort, "-o", tmp_path / "labels", "-j", "1")
    assert labels.exit_code == 0, labels.stderr
    rows = pd.read_parquet(tmp_path / "labels" / "features" / f"{FDG}.parquet")
    assert list(zip(rows.lesion_id, rows.lesion_name, rows.segment_number, strict=True)) == [
        (1, "Edema", 1), (2, "Mass", 2), (3, "node_axilla_L", 3)]
    assert rows["component_number"].isna().all() and rows["roi_number"].isna().all()
    mass = rows[rows.lesion_name == "Mass"].iloc[0]
    direct = direct_pyradiomics(image, MASS)
    assert all(mass[f] == pytest.approx(v, rel=FEATURE_RTOL, abs=1e-300) for f, v in direct.items())
    assert not (tmp_path / "labels" / "failures.parquet").exists() or pd.read_parquet(
        tmp_path / "labels" / "failures.parquet").empty  # the table is not an organ: no warning

    components = run("extract", cohort, "-o", tmp_path / "components", "--lesions", "components", "-j", "1")
    assert components.exit_code == 0, components.stderr
    split = pd.read_parquet(tmp_path / "components" / "features" / f"{FDG}.parquet")
    assert list(zip(split.lesion_id, split.source_label, split.component_number, strict=True)) == [
        (1, 1, 1), (2, 2, 1), (3, 3, 1)]  # the mass inside the oedema stays its own lesion
    assert list(split.voxel_count) == [EDEMA.sum(), MASS.sum(), NODE.sum()]

    picked = run("extract", cohort, "-o", tmp_path / "picked", "--label", "2", "-j", "1")
    assert picked.exit_code == 0, picked.stderr
    only = pd.read_parquet(tmp_path / "picked" / "features" / f"{FDG}.parquet")
    assert list(only.lesion_name) == ["Mass"] and only.iloc[0]["voxel_count"] == MASS.sum()


# --- label maps and their label tables ---------------------------------------------------------------------------

LABELS = {1: "edema_rim", 2: "mass", 3: "node_axilla_L", 4: "ref-liver"}


def label_map() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[EDEMA & ~MASS], labels[MASS], labels[NODE] = 1, 2, 3
    labels[box((17, 21), (20, 25), (18, 25))] = 4
    return labels


def write_nrrd(path: Path, layers: list[np.ndarray], header: dict[str, str], origin=(0.0, 0.0, 0.0)) -> Path:
    """A 3D Slicer-style segmentation file (gzip NRRD; several layers as a first ``list`` axis) with its
    ``Segment<N>_*`` keys, written byte by byte as Slicer writes it."""
    z, y, x = layers[0].shape
    lines = ["NRRD0004", "type: unsigned char", f"dimension: {3 if len(layers) == 1 else 4}",
             "space: left-posterior-superior",
             f"sizes: {'' if len(layers) == 1 else f'{len(layers)} '}{x} {y} {z}",
             f"space directions: {'' if len(layers) == 1 else 'none '}({SPACING[0]},0,0) (0,{SPACING[1]},0) "
             f"(0,0,{SPACING[2]})",
             f"kinds: {'' if len(layers) == 1 else 'list '}domain domain domain", "encoding: gzip",
             f"space origin: ({origin[0]},{origin[1]},{origin[2]})"]
    lines += [f"{k}:={v}" for k, v in header.items()]
    data = np.stack(layers, axis=-1) if len(layers) > 1 else layers[0]
    path.write_bytes(("\n".join(lines) + "\n\n").encode() + gzip.compress(np.ascontiguousarray(data).tobytes()))
    return path


def slicer_keys(segments: list[tuple[str, int, int]]) -> dict[str, str]:
    keys = {}
    for n, (name, value, layer) in enumerate(segments):
        keys.update({f"Segment{n}_ID": f"Segment_{n + 1}", f"Segment{n}_Name": name,
                     f"Segment{n}_LabelValue": str(value), f"Segment{n}_Layer": str(layer)})
    return keys


def write_table(folder: Path, kind: str) -> Path:
    """The label map ``mask.*`` and its table of ``LABELS`` in one of the formats the field writes."""
    if kind == "seg.nrrd":
        return write_nrrd(folder / "mask.seg.nrrd", [label_map()],
                          slicer_keys([(name, value, 0) for value, name in LABELS.items()]))
    mask = write_volume(label_map(), folder / "mask.nii.gz", spacing=SPACING)
    if kind == "dseg.tsv":
        (folder / "mask.tsv").write_text("index\tname\tabbreviation\n" + "".join(
            f"{v}\t{n}\t{n[:3].upper()}\n" for v, n in LABELS.items()))
    elif kind == "itk-snap":
        (folder / "mask.txt").write_text("# ITK-SNAP Label Description File\n" + '    0     0    0    0        0  0  0'
                                         '    "Clear Label"\n' + "".join(f'{v:5d}   255    0    0        1  1  1    '
                                                                        f'"{n}"\n' for v, n in LABELS.items()))
    else:
        (folder / "mask.json").write_text(json.dumps({"Sources": ["pet"], "labels": {str(v): n for v, n in
                                                                                       LABELS.items()}}))
    return mask


def nifti_cohort(root: Path, table: str) -> Path:
    folder = root / "P001" / "FDG"
    write_volume(suv_volume().astype(np.float32), folder / "pet.nii.gz", spacing=SPACING)
    write_table(folder, table)
    (root / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    return root


@pytest.mark.parametrize("table", ["dseg.tsv", "itk-snap", "json", "seg.nrrd"])
def test_label_tables_name_the_lesions_of_a_label_map(tmp_path: Path, table: str) -> None:
    """BIDS dseg.tsv, ITK-SNAP label descriptions, a JSON sidecar and a 3D Slicer .seg.nrrd header all name the
    labels; a label named ref-liver is the liver reference region, not a lesion; `radiomx table` prints the
    provenance columns as integers."""
    cohort = nifti_cohort(tmp_path / "cohort", table)
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / f"{FDG}.parquet")
    assert list(zip(rows.lesion_id, rows.lesion_name, rows.label_value, strict=True)) == [
        (1, "edema_rim", 1), (2, "mass", 2), (3, "node_axilla_L", 3)]
    expected_segments = [1, 2, 3] if table == "seg.nrrd" else [None, None, None]
    assert [None if pd.isna(v) else v for v in rows.segment_number] == expected_segments
    suv = suv_volume().astype(np.float32).astype(np.float64)
    state = pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]
    assert state["ref_liver_suv_mean"] == pytest.approx(suv[label_map() == 4].mean(), rel=1e-12)
    printed = pd.read_csv(io.StringIO(run("table", tmp_path / "out").stdout), dtype=str, keep_default_na=False)
    assert list(printed.label_value) == ["1", "2", "3"] and list(printed.roi_number) == ["", "", ""]


def test_a_multi_layer_slicer_segmentation_holds_overlapping_segments(tmp_path: Path) -> None:
    """3D Slicer stores overlapping segments in layers (label values repeat across layers) and may save the file
    cropped to the segments' extent: segments are numbered in header order, each its own mask on the image grid."""
    cohort = tmp_path / "cohort"
    folder = cohort / "P001" / "FDG"
    write_volume(suv_volume().astype(np.float32), folder / "pet.nii.gz", spacing=SPACING)
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n')
    crop = (slice(1, 17), slice(5, 27), slice(2, 19))  # z, y, x: the extent of the three segments
    layer0 = (EDEMA * 1 + NODE * 2).astype(np.uint8)[crop]
    layer1 = MASS.astype(np.uint8)[crop]
    origin = tuple(float(s.start) * sp for s, sp in zip(reversed(crop), SPACING, strict=True))
    write_nrrd(folder / "mask.seg.nrrd", [layer0, layer1],
               slicer_keys([("GTV_Edema", 1, 0), ("node", 2, 0), ("GTV_Mass", 1, 1)]), origin=origin)
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = pd.read_parquet(tmp_path / "out" / "features" / f"{FDG}.parquet")
    assert list(zip(rows.lesion_id, rows.lesion_name, rows.segment_number, rows.label_value, rows.voxel_count,
                    strict=True)) == [(1, "GTV_Edema", 1, 1, EDEMA.sum()), (2, "node", 2, 2, NODE.sum()),
                                      (3, "GTV_Mass", 3, 1, MASS.sum())]
    image = sitk.ReadImage(str(folder / "pet.nii.gz"))
    direct = direct_pyradiomics(image, EDEMA)
    edema = rows.iloc[0]
    assert all(edema[f] == pytest.approx(v, rel=FEATURE_RTOL, abs=1e-300) for f, v in direct.items())


@pytest.mark.parametrize("write, message", [
    (lambda f: (f / "mask.txt").write_text('1 255 0 0 1 1 1 "a"\n') and (f / "mask.tsv").write_text(
        "index\tname\n1\tb\n"), "two label tables for mask.nii.gz"),
    (lambda f: (f / "mask.tsv").write_text("index\tname\nx\tmass\n"), "line 2: label value 'x' is not an integer"),
    (lambda f: (f / "mask.txt").write_text("1 255 0 0 mass\n"), "an ITK-SNAP label description has 8 fields"),
    (lambda f: (f / "mask.json").write_text('{"labels": ["mass"]}'), '"labels" must map label values to names'),
], ids=["two-tables", "tsv-value", "itksnap-fields", "json-shape"])
def test_a_bad_label_table_is_one_failure_row_naming_it(tmp_path: Path, write, message: str) -> None:
    cohort = nifti_cohort(tmp_path / "cohort", "json")
    folder = cohort / "P001" / "FDG"
    (folder / "mask.json").unlink()
    write(folder)
    result = run("extract", cohort, "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1
    (failure,) = pd.read_parquet(tmp_path / "out" / "failures.parquet").to_dict("records")
    assert failure["stage"] == "load" and failure["file"].startswith("P001/FDG/mask.") and message in failure["message"]


# --- choosing lesions by name ------------------------------------------------------------------------------------

def test_a_selection_matching_nothing_is_a_failure_listing_the_names(tmp_path: Path) -> None:
    cohort = rtstruct_cohort(tmp_path / "cohort")
    result = run("extract", cohort, "-o", tmp_path / "out", "--roi", "PTV*", "-j", "1")
    assert result.exit_code == 1
    (failure,) = pd.read_parquet(tmp_path / "out" / "failures.parquet").to_dict("records")
    assert failure["stage"] == "lesions" and failure["severity"] == "failure"
    for name in ('ROI 1 "BODY" [EXTERNAL]', '"GTV_Edema"', '"GTV_Mass"', '"Liver" [ORGAN]', '"ref-liver"'):
        assert name in failure["message"]
    assert "--roi 'PTV*'" in failure["message"]
    assert pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]["status"] == "failed"  # not "negative"


def test_an_empty_label_map_is_negative_whatever_the_selection(tmp_path: Path) -> None:
    cohort = nifti_cohort(tmp_path / "cohort", "dseg.tsv")
    write_volume(np.zeros(SHAPE, np.uint8), cohort / "P001" / "FDG" / "mask.nii.gz", spacing=SPACING)
    result = run("extract", cohort, "-o", tmp_path / "out", "--roi", "mass", "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert pd.read_parquet(tmp_path / "out" / "scans.parquet").iloc[0]["status"] == "negative"


def test_roi_and_exclude_roi_are_case_insensitive_repeatable_and_come_from_radiomx_toml(tmp_path: Path) -> None:
    cohort = seg_cohort(tmp_path / "cohort")

    def names(*flags: str) -> list[str]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        result = run("extract", cohort, "-o", out, "-j", "1", *flags)
        assert result.exit_code == 0, result.stderr
        return list(pd.read_parquet(out / "features" / f"{FDG}.parquet").lesion_name)

    assert names("--roi", "MASS", "--roi", "NODE_*") == ["Mass", "node_axilla_L"]
    assert names("--exclude-roi", "*DEMA", "--exclude-roi", "node*") == ["Mass"]
    assert names("--roi", "*") == ["Edema", "Mass", "node_axilla_L", "Table"]  # named on purpose: the table too
    (cohort / "radiomx.toml").write_text('[lesions]\nroi = ["edema", "mass"]\nexclude_roi = "mass"\n')
    assert names() == ["Edema"]
    assert names("--exclude-roi", "edema") == ["Mass"]  # the flag replaces the file's exclude_roi, keeps its roi
    (cohort / "radiomx.toml").write_text('[lesions]\nrois = ["edema"]\n')
    bad = run("extract", cohort, "-o", tmp_path / "bad")
    assert bad.exit_code == 2 and "unknown [lesions] key(s): rois" in bad.stderr


def test_the_selection_and_the_label_table_are_part_of_the_work_key(tmp_path: Path) -> None:
    cohort = nifti_cohort(tmp_path / "cohort", "dseg.tsv")
    out = tmp_path / "out"
    assert run("extract", cohort, "-o", out, "-j", "1").exit_code == 0

    def state(*flags: str) -> str:
        lines = run("scan", cohort, "-o", out, *flags).stdout.splitlines()
        return lines[0].split("\t")[-1]

    assert state() == "done"
    assert state("--roi", "mass") == "changed"
    assert state("--exclude-roi", "node*") == "changed"
    assert run("extract", cohort, "-o", out, "--exclude-roi", "node*", "-j", "1").exit_code == 0
    assert state("--exclude-roi", "NODE*") == "done"  # the same selection in another case
    # docs/lesions.md (QA2 D9): any other selection recomputes every scan, also one whose masks it picks as before
    assert state("--exclude-roi", "node*", "--exclude-roi", "no-such-name") == "changed"
    table = cohort / "P001" / "FDG" / "mask.tsv"
    table.write_text(table.read_text().replace("mass", "GTV_mass"))
    assert state("--exclude-roi", "node*") == "changed"


def test_cli_flags_and_python_arguments_build_equal_selections(tmp_path: Path, monkeypatch) -> None:
    import radiomx.api

    seen = {}

    def capture(cohort, out, options, only=None, progress=None):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr(radiomx.api, "extract", capture)
    run("extract", tmp_path, "-o", tmp_path / "out", "--roi", "GTV*", "--roi", "node_*", "--exclude-roi", "*edema*")
    assert seen["options"] == ExtractOptions(roi=("GTV*", "node_*"), exclude_roi=("*edema*",))
    with pytest.raises(Exception, match="--roi takes non-empty name patterns"):
        ExtractOptions(roi=("",))


def mask(number: int, name: str, kind: str = "", category: tuple[str, str] = ("", "")) -> NamedMask:
    return NamedMask(number, name, "roi", kind, category, roi_number=number)


EXPORT = (mask(1, "BODY", "EXTERNAL"), mask(2, "GTV_Mass", "GTV"), mask(3, "CouchSurface", "SUPPORT"),
          mask(4, "Liver", "ORGAN"), mask(5, "SpinalCord", "AVOIDANCE"), mask(6, "External"), mask(7, "ref-liver"),
          mask(8, "node_1"), mask(9, "Kidney_L", category=("SCT", "123037004")),
          mask(10, "Clip", category=("SCT", "260787004")), mask(11, "Skin", "NONE"))


@pytest.mark.parametrize("selection, labels, expected, warned", [
    (RoiSelection(), None, ["GTV_Mass", "node_1"], ["Liver", "SpinalCord", "Kidney_L"]),
    (RoiSelection(("body", "gtv*")), None, ["BODY", "GTV_Mass"], []),
    (RoiSelection((), ("NODE_*",)), None, ["GTV_Mass"], ["Liver", "SpinalCord", "Kidney_L"]),
    (RoiSelection((), ("liver", "spinal*", "kidney*")), None, ["GTV_Mass", "node_1"], []),
    (RoiSelection(), (4,), [m.name for m in EXPORT if m.number != 7], []),
], ids=["default", "roi", "exclude", "exclude-organs", "label"])
def test_the_default_leaves_out_what_real_exports_carry_besides_lesions(selection, labels, expected, warned) -> None:
    """Body outlines, couch, supports and devices quietly; organs (ORGAN/AVOIDANCE types, anatomical-structure
    SEG categories) with a warning naming them; a name given with --roi (or --label) is always measured; ref-*
    never is."""
    choice = choose(EXPORT, selection, labels)
    assert [m.name for m in choice.lesions] == expected
    assert [m.name for m in choice.references] == ["ref-liver"]
    assert choice.problem == ""
    notes = " ".join(choice.notes)
    assert all(f'"{name}"' in notes for name in warned) and len(choice.notes) == (1 if warned else 0)


# --- the lesion split over overlapping masks ---------------------------------------------------------------------

boxes = st.tuples(*[st.integers(0, 5)] * 3, *[st.integers(1, 4)] * 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(boxes, min_size=1, max_size=5))
def test_components_of_overlapping_masks_partition_each_mask_and_are_numbered_by_source(specs) -> None:
    """Random overlapping masks (each one or two boxes): in components mode every source's components add up to
    exactly its own mask, ids run 1..n in (source, first voxel) order, and each lesion's layer holds it alone."""
    grid = sitk.Image(10, 10, 10, sitk.sitkUInt8)
    shape = (10, 10, 10)
    masks = {}
    for number, (z, y, x, dz, dy, dx) in enumerate(specs, start=1):
        m = np.zeros(shape, bool)
        m[z:z + dz, y:y + dy, x:x + dx] = True
        m[(z + 5) % 10, (y + 5) % 10, (x + 5) % 10] = True  # often a second component
        masks[number] = m
    layers, layer_of = pack_layers(grid, masks.items(), len(masks))
    named = MaskSet(layers, tuple(NamedMask(n, f"m{n}") for n in masks), layer_of)
    split = split_masks(named, "components")
    assert [lesion.lesion_id for lesion in split.lesions] == list(range(1, len(split.lesions) + 1))
    firsts = []
    for number, m in masks.items():
        mine = [lesion for lesion in split.lesions if lesion.source_label == number]
        union = np.zeros(shape, bool)
        for lesion in mine:
            voxels = sitk.GetArrayViewFromImage(split.labels_of(lesion)) == lesion.lesion_id
            assert not (union & voxels).any() and lesion.voxel_count == voxels.sum()
            union |= voxels
            firsts.append((number, int(np.flatnonzero(voxels.ravel())[0])))
        assert np.array_equal(union, m)
    assert firsts == sorted(firsts)


def test_overlapping_lesions_are_each_outlined_in_the_qc_picture(tmp_path: Path) -> None:
    """Nested lesions in two layers: each outline in its own colour, at its own extent; the legend names them."""
    from PIL import Image

    from radiomx.qc.draw import draw_scan
    from radiomx.qc.picture import PALETTE, read_panels
    from radiomx.records import ScanKey

    image = sitk.GetImageFromArray(suv_volume().astype(np.float32))
    image.SetSpacing(SPACING)
    layers = []
    for number, m in ((1, EDEMA), (2, MASS)):
        layer = sitk.GetImageFromArray(m.astype(np.uint8) * number)
        layer.CopyInformation(image)
        layers.append(layer)
    params = resolve_params(default_params_root(), get_tracer(FDG))
    picture = draw_scan(ScanKey("P001", "", FDG), image, layers, "SUVbw", {"suv_source": "declared"}, params, (),
                        "k", names={1: "GTV_Edema", 2: "GTV_Mass"})
    path = tmp_path / "picture.png"
    path.write_bytes(picture.png)
    with Image.open(path) as png:
        panel = read_panels(png.info)["coronal"]
        pixels = np.asarray(png.convert("RGB")).astype(int)
    for index, m in enumerate((EDEMA, MASS)):
        colour = np.array([int(PALETTE[index][i:i + 2], 16) for i in (1, 3, 5)])
        c0, r1 = panel.pixel(0, 0)
        c1, r0 = panel.pixel(SHAPE[2] * SPACING[0], SHAPE[0] * SPACING[2])
        hits = (np.abs(pixels - colour).max(axis=2) <= 1)
        hits[:, :int(c0) + 2] = hits[:, int(c1) - 2:] = False
        hits[:int(r0) + 2] = hits[int(r1) - 2:] = False
        rows, cols = np.nonzero(hits)
        zs, _, xs = np.nonzero(m)
        lo_c, hi_r = panel.pixel(xs.min() * SPACING[0], zs.min() * SPACING[2])
        hi_c, lo_r = panel.pixel((xs.max() + 1) * SPACING[0], (zs.max() + 1) * SPACING[2])
        for got, want in ((cols.min(), lo_c), (cols.max(), hi_c), (rows.min(), lo_r), (rows.max(), hi_r)):
            assert abs(got - want) <= 1.5, (index, got, want)


def test_threshold_vois_of_overlapping_masks_are_cut_each_at_its_own_level_and_numbered_once() -> None:
    """A relative (41 % of SUVmax) VOI per drawn lesion, masks in separate layers, components mode: each VOI (a
    26-connected component of a mask, as docs/lesions-and-indices.md defines it) is cut at its own level, cut VOIs
    split again (components by scikit-image, independently), and all are numbered 1..n in (source, first voxel)
    order across the layers, each carrying its own VOI's threshold."""
    from skimage.measure import label as connected

    from radiomx.features.voi import scan_lesions
    from radiomx.params.paramset import VoiSetting

    image = sitk.GetImageFromArray(suv_volume().astype(np.float32))
    image.SetSpacing(SPACING)
    suv = sitk.GetArrayFromImage(image)
    masks = {1: EDEMA, 2: MASS, 3: NODE | box((18, 20), (2, 4), (24, 26))}  # the node with a second hot blob
    suv[18:20, 2:4, 24:26] = 7.5
    image = sitk.GetImageFromArray(suv)
    image.SetSpacing(SPACING)
    layers, layer_of = pack_layers(image, masks.items(), 3)
    assert len(layers) == 2  # the mass cannot share the oedema's layer
    named = MaskSet(layers, tuple(NamedMask(n, f"m{n}") for n in masks), layer_of)
    result = scan_lesions(image, named, VoiSetting("relative", 0.41), "components", None, "SUVbw", {})
    expected = []
    for number, m in masks.items():
        vois = connected(m, connectivity=3)
        levels = {v: 0.41 * float(suv[vois == v].max()) for v in range(1, vois.max() + 1)}
        kept = np.zeros_like(m)
        for v, level in levels.items():
            kept |= (vois == v) & (suv >= level)
        parts = connected(kept, connectivity=3)
        firsts = sorted((int(np.flatnonzero((parts == k).ravel())[0]), k) for k in range(1, parts.max() + 1))
        expected += [(number, int((parts == k).sum()), levels[int(vois.ravel()[first])]) for first, k in firsts]
    got = [(lesion.source_label, lesion.voxel_count, result.thresholds[lesion.lesion_id])
           for lesion in result.lesion_map.lesions]
    assert [lesion.lesion_id for lesion in result.lesion_map.lesions] == list(range(1, len(expected) + 1))
    assert [g[:2] for g in got] == [e[:2] for e in expected] and len(expected) >= 4
    assert all(g[2] == pytest.approx(e[2], rel=1e-6) for g, e in zip(got, expected, strict=True)), (got, expected)
