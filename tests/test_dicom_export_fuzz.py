"""Fuzz the DICOM export's index and linking: real files (pydicom's own test files, the dcmqi CT and SEG, an IBSI-SUV
DRO with its RTSTRUCT) and synthetic ones (a PET series, its RTSTRUCT and SEG), with the tags the index and the
linking read dropped or their bytes garbled in place, as hypothesis draws them. Every case must give one line per
problem and no traceback: in ``radiomx scan`` (every draw) and in ``radiomx extract`` (fewer draws: they load
pixels)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid

from radiomx import api
from radiomx.cli import cli
from radiomx.options import ExtractOptions

from .conftest import shared_data
from .export_builders import DICOMDIR, Export, box_volume, rtstruct_on, seg_on, synthetic_pet
from .test_dicom_export import minimal_params

#: What the index (``radiomx.discover.dicom_headers``) and the linking (``dicom_links``, ``dicom_export``) read.
TAGS = ["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality",
        "FrameOfReferenceUID", "SeriesNumber", "SeriesDescription", "ImageType", "CorrectedImage",
        "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "NumberOfFrames",
        "RadiopharmaceuticalInformationSequence", "ReferencedSeriesSequence", "ReferencedFrameOfReferenceSequence",
        "StructureSetROISequence", "ROIContourSequence", "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime",
        "TransferSyntaxUID"]
PYDICOM_FILES = ["CT_small.dcm", "MR_small.dcm", "rtstruct.dcm", "JPEG2000.dcm", "MR_truncated.dcm", "no_meta.dcm",
                 "SC_rgb_rle.dcm", "rtplan.dcm"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    """The files every draw starts from: real and synthetic, all in one export-like folder."""
    root = tmp_path_factory.mktemp("pool")
    export = Export(root / "synthetic", rng=np.random.default_rng(3))
    image, mask = box_volume(shape=(8, 16, 16), box=(slice(3, 5), slice(6, 9), slice(6, 9)))
    rtstruct_on(export, synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image), mask)
    seg_on(export, synthetic_pet(export, "P2", generate_uid(), generate_uid(), volume=image), mask)
    real = root / "real"
    real.mkdir()
    dro = shared_data("ibsi_suv_dro", "DRO", "DRO_0_0")
    for src in [*sorted((dro / "PT").glob("*.dcm"))[:6], *(dro / "RS").glob("*.dcm")]:
        shutil.copy(src, real / src.stem)
    dcmqi = shared_data("dcmqi_seg", "segmentations")
    for src in [*(dcmqi / "ct-3slice").glob("*.dcm"), dcmqi / "liver.dcm"]:
        shutil.copy(src, real / f"dcmqi_{src.stem}")
    test_files = Path(pydicom.__file__).parent / "data" / "test_files"
    for name in PYDICOM_FILES:
        shutil.copy(test_files / name, real / f"pydicom_{Path(name).stem}")
    shutil.copy(DICOMDIR, real / "DICOMDIR")
    return sorted(p for p in root.rglob("*") if p.is_file())


def damage(path: Path, keyword: str, how: str, noise: bytes) -> None:
    """Drop ``keyword`` from the file, or overwrite its value's bytes in place with ``noise`` (same length, so the
    rest of the file still parses as it did)."""
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:  # noqa: BLE001 - a file pydicom cannot read at all stays as it is: already broken
        return
    where = ds.file_meta if keyword == "TransferSyntaxUID" else ds
    if keyword not in where:
        return
    if how == "drop":
        del where[keyword]
        try:
            ds.save_as(path, enforce_file_format=False)
        except Exception:  # noqa: BLE001 - pydicom refuses to write some damaged files: keep the original
            pass
        return
    element = where.get_item(keyword)
    offset, length = getattr(element, "value_tell", None), getattr(element, "length", 0)
    if offset is None or not length or length == 0xFFFFFFFF:
        return
    data = bytearray(path.read_bytes())
    span = min(length, len(noise))
    data[offset: offset + span] = noise[:span]
    path.write_bytes(bytes(data))


damages = st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(TAGS),
                             st.sampled_from(["drop", "garble"]), st.binary(min_size=1, max_size=16)),
                   min_size=1, max_size=6)


def _export_from(pool: list[Path], draws, root: Path) -> Path:
    export = root / "export"
    for k, src in enumerate(pool):
        target = export / f"d{k % 4}" / f"f{k:03d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    files = sorted(p for p in export.rglob("*") if p.is_file())
    for index, keyword, how, noise in draws:
        damage(files[index % len(files)], keyword, how, noise)
    return export


def _one_line_each(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]
    for line in text.splitlines():
        assert line.startswith("radiomx: "), (line, text[-3000:])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draws=damages)
def test_damaged_headers_give_one_line_each_in_scan(pool, draws):
    with tempfile.TemporaryDirectory() as tmp:
        export = _export_from(pool, draws, Path(tmp))
        listing = api.scan_listing(export, ExtractOptions(layout="dicom"))
        for scan, _state in listing.scans:
            if scan.problem is not None:
                stage, file, message = scan.problem
                assert "\n" not in message and Path(file).is_relative_to(export), scan.problem
        result = CliRunner().invoke(cli, ["scan", str(export), "--layout", "dicom", "--format", "tsv"])
        assert result.exit_code == 0, result.stderr
        _one_line_each(result.stderr)
        assert all(len(line.split("\t")) == 6 for line in result.stdout.splitlines()), result.stdout


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> Path:
    return minimal_params(tmp_path_factory.mktemp("params"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draws=damages)
def test_damaged_headers_give_one_line_each_in_extract(pool, params, draws):
    with tempfile.TemporaryDirectory() as tmp:
        export = _export_from([p for p in pool if "synthetic" in p.parts], draws, Path(tmp))
        result = CliRunner().invoke(cli, ["extract", str(export), "-o", str(Path(tmp) / "out"), "--layout", "dicom",
                                          "-j", "1", "--params-dir", str(params)])
        assert result.exit_code in (0, 1), result.stderr
        _one_line_each(result.stderr)
