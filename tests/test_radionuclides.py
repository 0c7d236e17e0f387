"""Radionuclide Code Sequence (0054,0300): DICOM PS3.16 CID 4020 "PET Radionuclide", SNOMED CT and the retired SNOMED
RT codes, checked against pydicom's own copy of the standard; and what a header whose radionuclide contradicts the
scan's tracer is told, in a cohort folder and in an export (which has no tracer folders)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from radiomx import api
from radiomx.cli import cli
from radiomx.errors import ScanError
from radiomx.inputs.radionuclides import radionuclide_of_code
from radiomx.inputs.suv import dicom_suv, normalise_radionuclide

from .corpus.dicom_pet import write_pet_series
from .export_builders import Export, box_volume, rtstruct_on, synthetic_pet
from .test_dicom_export import minimal_params

#: Every concept of CID 4020 (PS3.16 2025), keyword as pydicom names it -> the radionuclide radiomx must read.
CID_4020 = {
    "_11Carbon": "C-11", "_124Iodine": "I-124", "_13Nitrogen": "N-13", "_14Oxygen": "O-14", "_152Terbium": "Tb-152",
    "_15Oxygen": "O-15", "_18Fluorine": "F-18", "_22Sodium": "Na-22", "_38Potassium": "K-38", "_43Scandium": "Sc-43",
    "_44Scandium": "Sc-44", "_45Titanium": "Ti-45", "_51Manganese": "Mn-51", "_52Iron": "Fe-52",
    "_52Manganese": "Mn-52", "_52mManganese": "Mn-52m", "_60Copper": "Cu-60", "_61Copper": "Cu-61",
    "_62Copper": "Cu-62", "_62Zinc": "Zn-62", "_64Copper": "Cu-64", "_66Gallium": "Ga-66", "_68Gallium": "Ga-68",
    "_68Germanium": "Ge-68", "_70Arsenic": "As-70", "_72Arsenic": "As-72", "_73Selenium": "Se-73",
    "_75Bromine": "Br-75", "_76Bromine": "Br-76", "_77Bromine": "Br-77", "_82Rubidium": "Rb-82",
    "_86Yttrium": "Y-86", "_89Zirconium": "Zr-89", "_90Niobium": "Nb-90", "_90Yttrium": "Y-90",
    "_94mTechnetium": "Tc-94m",
}

#: Codes copied from PS3.16 CID 4020 itself (SNOMED RT, SNOMED CT), independent of pydicom: the ones a hand table
#: got wrong (C-131A3 read as Ge-68, C-128A2 as Rb-82, C-131A1 as Ga-68), and every nuclide of a radiomx tracer.
PS3_16 = [
    ("C-131A3", "35337001", "Ga-68"), ("C-128A2", "53315004", "Ge-68"), ("C-131A1", "79477007", "Ga-66"),
    ("C-159A2", "79197006", "Rb-82"), ("C-111A1", "77004003", "F-18"), ("C-105A1", "40565003", "C-11"),
    ("C-107A1", "21576001", "N-13"), ("C-B1038", "129504001", "O-15"), ("C-127A2", "3932008", "Cu-64"),
    ("C-168A4", "63360001", "Zr-89"), ("C-114A5", "40937006", "I-124"),
]


def test_the_table_covers_every_concept_pydicom_has_in_cid_4020():
    assert set(codes.cid4020.concepts) == set(CID_4020)


@pytest.mark.parametrize("keyword, nuclide", sorted(CID_4020.items()))
def test_every_cid_4020_code_names_its_radionuclide_in_every_scheme(keyword, nuclide):
    from pydicom.sr._snomed_dict import mapping  # pydicom's PS3.16 Annex O: SNOMED CT -> SNOMED RT

    code = codes.cid4020.concepts[keyword]
    assert radionuclide_of_code(code.scheme_designator, code.value) == (nuclide, code.meaning)
    assert radionuclide_of_code("", code.value)[0] == nuclide  # no scheme written: the value's shape says which
    if code.scheme_designator == "SCT":
        srt = mapping["SCT"][code.value]
        for scheme in ("SRT", "SNM3", ""):
            assert radionuclide_of_code(scheme, srt)[0] == nuclide, (scheme, srt)
        assert normalise_radionuclide(srt) == nuclide
    assert normalise_radionuclide(code.meaning) == nuclide


@pytest.mark.parametrize("srt, sct, nuclide", PS3_16)
def test_the_standards_codes_read_as_the_standard_says(srt, sct, nuclide):
    assert radionuclide_of_code("SRT", srt)[0] == nuclide
    assert radionuclide_of_code("SCT", sct)[0] == nuclide
    assert radionuclide_of_code("SCT", srt) == ("", "")  # an SRT value under SCT is no code


def test_a_code_outside_cid_4020_names_nothing():
    assert radionuclide_of_code("SRT", "C-B1031") == ("", "")  # FDG: a radiopharmaceutical (CID 4021)
    assert normalise_radionuclide("C-B1031") == ""


# --- a series' header against the scan's tracer -----------------------------------------------------------------

GA68_HALF_LIFE_S = 4057.7


def _relabel(files: list[Path], code: tuple[str, str, str] | None, half_life_s: float | None = None) -> None:
    """Give every slice the Radionuclide Code Sequence ``code`` (scheme, value, meaning; None removes it)."""
    for path in files:
        ds = pydicom.dcmread(path)
        rp = ds.RadiopharmaceuticalInformationSequence[0]
        if code is None:
            del rp.RadionuclideCodeSequence
        else:
            item = rp.RadionuclideCodeSequence[0]
            item.CodingSchemeDesignator, item.CodeValue, item.CodeMeaning = code
        if half_life_s is not None:
            rp.RadionuclideHalfLife = f"{half_life_s:g}"
        ds.save_as(path, enforce_file_format=True)


def _series(tmp_path: Path, code, half_life_s=None) -> tuple[list, list[str]]:
    files = write_pet_series(tmp_path / "pet", box_volume()[0], (4.0, 4.0, 4.0))
    _relabel(files, code, half_life_s)
    return [pydicom.dcmread(f) for f in files], [str(f) for f in files]


@pytest.mark.parametrize("code", [("SRT", "C-131A3", "^68^Gallium"), ("SCT", "35337001", "^68^Gallium")])
def test_a_ga68_code_in_a_ga68_folder_is_ga68(tmp_path, code):
    headers, paths = _series(tmp_path, code, GA68_HALF_LIFE_S)
    _factors, inputs = dicom_suv(headers, paths, "Ga-68")
    assert (inputs.radionuclide, inputs.half_life_s) == ("Ga-68", GA68_HALF_LIFE_S)


@pytest.mark.parametrize("code, said", [
    (("SRT", "C-131A1", "^66^Gallium"), "says Ga-66"),
    (("SRT", "C-128A2", "^68^Germanium"), "says Ge-68"),
    (("SRT", "C-159A2", "^82^Rubidium"), "says Rb-82"),
    (("SRT", "C-131A1", ""), "says Ga-66"),
])
def test_another_radionuclides_code_is_refused_under_a_ga68_tracer(tmp_path, code, said):
    headers, paths = _series(tmp_path, code)
    with pytest.raises(ScanError, match=said) as info:
        dicom_suv(headers, paths, "Ga-68")
    assert "tracer folder implies Ga-68; move the scan to the right tracer folder" in info.value.detail


def test_a_code_contradicted_by_its_meaning_and_half_life_is_read_by_physics_and_noted(tmp_path):
    """The IBSI-SUV Ga-68 DRO writes C-131A1 (^66^Gallium) with the meaning ^68^Gallium and Ga-68's half-life."""
    headers, paths = _series(tmp_path, ("SRT", "C-131A1", "^68^Gallium"), GA68_HALF_LIFE_S)
    _factors, inputs = dicom_suv(headers, paths, "Ga-68")
    assert inputs.radionuclide == "Ga-68"
    assert "not the code SRT C-131A1 (^66^Gallium in DICOM CID 4020)" in inputs.half_life_source
    headers, paths = _series(tmp_path / "no-half-life", ("SRT", "C-131A1", "^68^Gallium"))
    for ds in headers:
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife
    with pytest.raises(ScanError, match="says Ga-66 .* implies Ga-68") as info:  # no physics to settle it: the code
        dicom_suv(headers, paths, "Ga-68")
    assert "though its Code Meaning reads '^68^Gallium'" in info.value.detail


# --- from the command line, on a PACS export --------------------------------------------------------------------


def _extract(tmp_path: Path, export: Export, *flags: str):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["extract", str(export.root), "-o", str(out), "--params-dir",
                                      str(minimal_params(tmp_path / "params")), "-j", "1", *flags])
    return result, out


def test_an_exports_ga68_series_coded_c131a3_is_extracted_as_ga68(tmp_path):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image,
                        radiopharmaceutical="[68Ga]Ga-Pentixafor")
    _relabel(pet.files, ("SRT", "C-131A3", "^68^Gallium"), GA68_HALF_LIFE_S)
    rtstruct_on(export, pet, mask)
    result, out = _extract(tmp_path, export)
    assert result.exit_code == 0, result.stderr
    rows = api.read_table(out)
    assert set(rows["tracer"]) == {"68Ga-pentixafor"} and set(rows["suv_radionuclide"]) == {"Ga-68"}


@pytest.mark.parametrize("radiopharmaceutical, flags, implied_by, fix", [
    ("Fluorodeoxyglucose F^18^", (), "the header's Radiopharmaceutical", "the header contradicts itself"),
    (None, ("--default-tracer", "18F-FDG"), "--default-tracer", "run with the --default-tracer of that radionuclide"),
])
def test_an_exports_mismatch_names_what_set_the_tracer_not_a_folder(tmp_path, radiopharmaceutical, flags,
                                                                     implied_by, fix):
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    pet = synthetic_pet(export, "P1", generate_uid(), generate_uid(), volume=image,
                        radiopharmaceutical=radiopharmaceutical)
    _relabel(pet.files, ("SCT", "35337001", "^68^Gallium"))
    rtstruct_on(export, pet, mask)
    result, _out = _extract(tmp_path, export, *flags)
    assert result.exit_code == 1, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("radiomx: FAILED")]
    assert "says Ga-68" in line and f"{implied_by}" in line and "implies F-18" in line and fix in line, line
    assert "folder" not in line, line
