"""Load one scan for extraction: image in the unit its parameter file expects, mask on the image grid.

Why one function: every entry point (local pool, Dask worker, tests) must get the same voxels, and a PET image
must never reach PyRadiomics in Bq/mL when its bin width is in SUV. Dispatch, in this order:

* image is a folder, or the explicit files of one series in a DICOM export -> DICOM series
  (``radiomx.inputs.dicom``); PET converted to SUVbw from its headers, CT in HU;
* PET NIfTI/NRRD/MHA with a sidecar (same name, ``.json``) -> BIDS-PET sidecar + body weight (``radiomx.inputs.suv``);
* PET NIfTI/NRRD/MHA declared SUVbw (``[layout] pet_units = "SUVbw"`` / ``--pet-units SUVbw``);
* anything else PET -> ScanError. CT files are taken as HU.

Masks: ``.dcm`` -> DICOM SEG or RTSTRUCT (``radiomx.inputs.masks``, placed on the image grid by the true slice
positions of a DICOM image); else a label-map file (names from its label table, ``radiomx.inputs.label_tables``).
Either way the result is a ``MaskSet`` of named masks that may overlap (``radiomx.inputs.named_masks``), chosen by
name (``radiomx.inputs.lesion_selection``): a DICOM mask's unchosen segments/ROIs are never decoded.

SEG segments, RTSTRUCT ROIs and named labels called ``ref-*`` are reference regions: returned apart
(``LoadedScan.embedded_references``), never lesions. Reference-region files (``ref-liver.nii.gz``) are read by
``load_reference`` on the same grid with the same tolerances as the mask.

Slice layout provenance (``slice_spacing_max_deviation_mm``, ``slice_position_max_offset_mm``, with every row): how
far a DICOM series' slices are from the uniform grid the volume is laid on; 0.0 for a regular series, NaN (null in
the tables) for NIfTI/NRRD/MHA images, whose grid is uniform by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.inputs.imaging import align_mask, as_label_map, check_finite, read_volume
from radiomx.inputs.lesion_selection import choose
from radiomx.inputs.named_masks import MaskSet, NamedMask, label_map_masks, pack_layers
from radiomx.inputs.paths import is_dicom_file, sidecar_path
from radiomx.inputs.suv import SuvInputs, declared_inputs, dicom_suv, sidecar_suv
from radiomx.options import RoiSelection
from radiomx.records import Layout, Scan, sex_code
from radiomx.tracers import get_tracer
from radiomx.vocabulary import Stage


@dataclass
class LoadedScan:
    image: sitk.Image
    #: The lesion masks, named and possibly overlapping, on the image grid.
    mask: MaskSet
    unit: str
    #: Every input of the unit conversion (SUV: weight, dose, times, half-life, ...), recorded with each row.
    unit_inputs: dict = field(default_factory=dict)
    #: Slice layout provenance (module docstring), recorded with each row.
    geometry: dict = field(default_factory=lambda: dict(NO_LAYOUT))
    #: True slice positions of a DICOM image series (DICOM reference masks are placed on them too).
    positions: tuple[float, ...] | None = None
    #: Reference regions drawn inside a DICOM mask: region label (``ref-liver``) -> boolean (z, y, x) array.
    embedded_references: dict[str, np.ndarray] = field(default_factory=dict)
    #: Height (m) and weight (kg) from DICOM Patient Size (0010,1020) / Patient Weight (0010,1030) (or a BIDS
    #: sidecar's ``PatientSize``), else None.
    height_m: float | None = None
    weight_kg: float | None = None
    #: Sex (M, F, O; "" unknown) from DICOM Patient's Sex (0010,0040) or a sidecar's ``PatientSex``: lean body mass
    #: (SUL, ``radiomx.inputs.lbm``) needs it. Read here; issue 25's next phase writes SUL columns from it.
    sex: str = ""


#: The layout columns of an image that is not a DICOM series.
NO_LAYOUT = {"slice_spacing_max_deviation_mm": float("nan"), "slice_position_max_offset_mm": float("nan")}


@dataclass
class _UnitImage:
    image: sitk.Image
    unit: str
    inputs: dict
    #: True slice positions of a DICOM series (for placing DICOM masks) and its layout columns.
    positions: tuple[float, ...] | None = None
    geometry: dict = field(default_factory=lambda: dict(NO_LAYOUT))
    #: Height, weight and sex from the DICOM headers (``_dicom_body``) or a sidecar (``_sidecar_body``); else empty.
    body: dict = field(default_factory=dict)


def _read_sidecar(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScanError(Stage.SUV, str(path), f"sidecar is not readable JSON ({type(exc).__name__}); fix it") from exc
    if not isinstance(data, dict):
        raise ScanError(Stage.SUV, str(path), "sidecar must be a JSON object; fix it")
    return data


def _scaled(image: sitk.Image, factors: np.ndarray) -> sitk.Image:
    """image x factor per z slice, as float32 (SUV needs no more precision; halves memory)."""
    values = sitk.GetArrayFromImage(image).astype(np.float64) * np.asarray(factors)[:, None, None]
    out = sitk.GetImageFromArray(values.astype(np.float32))
    out.CopyInformation(image)
    return out


def _plausible(value, low: float, high: float) -> float | None:
    try:
        number = float(value or "nan")
    except (TypeError, ValueError):
        return None
    return number if low < number <= high else None


def _dicom_body(headers) -> dict[str, float | str | None]:
    """Patient Size (0010,1020, m), Patient Weight (0010,1030, kg) and Patient's Sex (0010,0040) of the first slice;
    None ("" for sex) when absent or implausible (height outside 0.3-2.6 m, weight outside 0-300 kg): they feed
    BSA and lean body mass, never SUVbw."""
    first = headers[0]
    return {"height_m": _plausible(first.get("PatientSize"), 0.3, 2.6),
            "weight_kg": _plausible(first.get("PatientWeight"), 0, 300),
            "sex": sex_code(first.get("PatientSex"))}


def _sidecar_body(sidecar: dict) -> dict[str, float | str | None]:
    """``PatientSize`` (m) and ``PatientSex`` of a PET sidecar, as dcm2niix writes them from the DICOM header when
    it does not anonymise (BIDS itself keeps them in participants.tsv); same plausibility as ``_dicom_body``."""
    return {"height_m": _plausible(sidecar.get("PatientSize"), 0.3, 2.6), "sex": sex_code(sidecar.get("PatientSex"))}


def _dicom_image(scan: Scan, pet: bool, nuclide: str | None) -> _UnitImage:
    assert scan.image is not None
    from radiomx.inputs.dicom import read_series  # pydicom: loaded only by cohorts with DICOM inputs

    series = read_series(scan.folder if scan.image_files else scan.image, "PT" if pet else "CT", scan.image_files)
    layout = {"positions": series.layout.positions_mm, "geometry": series.layout.as_row(),
              "body": _dicom_body(series.headers)}
    if not pet:
        return _UnitImage(sitk.Cast(series.image, sitk.sitkFloat32), "HU", {}, **layout)
    factors, inputs = dicom_suv(series.headers, [str(f) for f in series.files], nuclide, bool(scan.image_files))
    return _UnitImage(_scaled(series.image, factors), "SUVbw", inputs.as_row(), **layout)


def _file_pet(scan: Scan, layout: Layout, nuclide: str | None,
              digests: dict[Path, str] | None) -> tuple[sitk.Image, SuvInputs, dict]:
    """The PET file in SUVbw, its SUV inputs, and the height and sex its sidecar states (``_sidecar_body``)."""
    assert scan.image is not None
    image = read_volume(scan.image, "image", digests)
    sidecar = sidecar_path(scan.image)
    if sidecar.is_file():
        content = _read_sidecar(sidecar)
        inputs = sidecar_suv(content, str(sidecar), scan.body_weight_kg, scan.body_weight_source, nuclide)
        if layout.pet_units == "SUVbw" and inputs.source != "declared":
            raise ScanError(Stage.SUV, str(sidecar),
                            f"sidecar Units {inputs.units} conflicts with pet_units = \"SUVbw\"; "
                            "remove one (the sidecar or the option)")
        inputs = _with_weight_file(inputs)
        return _scaled(image, np.full(image.GetSize()[2], inputs.factor)), inputs, _sidecar_body(content)
    if layout.pet_units == "SUVbw":
        return image, declared_inputs("pet_units = SUVbw"), {}
    raise ScanError(
        Stage.SUV, str(scan.image),
        "PET image has no SUV metadata; add a BIDS sidecar (.json) or declare already-SUV images with "
        "pet_units = \"SUVbw\" under [layout] in radiomx.toml (or --pet-units SUVbw)")


def _with_weight_file(inputs: SuvInputs) -> SuvInputs:
    """Record the weight's file by kind only (participants.tsv / sessions.tsv): the same data in the BIDS and the
    default layout must give the same row, and absolute paths do not belong in a table. Only a sidecar in Bq/mL
    takes a weight from a file; a sidecar that declares SUV keeps its reason (``sidecar Units g/ml``), which is
    text, not a path."""
    if inputs.source != "bids-sidecar" or not inputs.weight_source:
        return inputs
    name = Path(inputs.weight_source).name
    name = "sessions.tsv" if name.endswith("sessions.tsv") else name
    return replace(inputs, weight_source=f"{name} body_weight")


def _image_in_unit(scan: Scan, layout: Layout, digests: dict[Path, str] | None) -> _UnitImage:
    tracer = get_tracer(scan.key.tracer)
    assert scan.image is not None
    pet = tracer.modality == "PET"
    if scan.image_files or scan.image.is_dir():
        return _dicom_image(scan, pet, tracer.radionuclide)
    if not pet:
        return _UnitImage(read_volume(scan.image, "image", digests), "HU", {})
    image, inputs, body = _file_pet(scan, layout, tracer.radionuclide, digests)
    return _UnitImage(image, "SUVbw", inputs.as_row(), body=body)


def load_image_in_unit(scan: Scan, layout: Layout,
                       digests: dict[Path, str] | None = None) -> tuple[sitk.Image, str, dict]:
    """The scan's image in SUVbw (PET) or HU (CT), and the unit's inputs, or a ScanError saying what is missing.
    ``digests`` collects the sha256 of single files as read (``imaging.read_volume``)."""
    loaded = _image_in_unit(scan, layout, digests)
    return loaded.image, loaded.unit, loaded.inputs


def _is_dicom_mask(path: Path) -> bool:
    return path.is_file() and (path.name.lower().endswith(".dcm") or is_dicom_file(path))


def _chosen(path: Path, held: tuple[NamedMask, ...], selection: RoiSelection, labels: tuple[int, ...] | None):
    choice = choose(held, selection, labels)
    if choice.problem:  # a naming mismatch is a failure, not a negative scan
        raise ScanError(Stage.LESIONS, str(path), choice.problem)
    return choice


def load_mask(scan: Scan, image: sitk.Image, digests: dict[Path, str] | None = None,
              positions: tuple[float, ...] | None = None, references: dict[str, np.ndarray] | None = None,
              selection: RoiSelection | None = None, labels: tuple[int, ...] | None = None) -> MaskSet:
    """The scan's lesion masks on the image grid, chosen by ``selection`` (``--roi``/``--exclude-roi``; every mask
    but the default non-lesions when None) and ``labels`` (``--label``). ``positions``: the true slice positions
    of a DICOM image series, on which DICOM masks are placed; ``references`` receives the ``ref-*`` masks
    (name -> boolean (z, y, x) array)."""
    assert scan.mask is not None and scan.image is not None
    selection = selection or RoiSelection()
    found: dict[str, np.ndarray] = {}
    if _is_dicom_mask(scan.mask):
        from radiomx.inputs.masks import DicomMaskFile  # highdicom: loaded only by cohorts with DICOM masks

        file = DicomMaskFile(scan.mask)
        choice = _chosen(scan.mask, file.masks(), selection, labels)
        refs = {m.number: m.name.strip() for m in choice.references}
        wanted = sorted({m.number for m in choice.lesions} | set(refs))

        def lesion_voxels():
            for number, voxels in file.voxels(image, positions, wanted):
                if number in refs:
                    found[refs[number]] = voxels
                else:
                    yield number, voxels

        layers, layer_of = pack_layers(image, lesion_voxels(), max(wanted, default=0))
    else:
        layers, held, layer_of = label_map_masks(scan.mask, image, scan.image, digests)
        choice = _chosen(scan.mask, held, selection, labels)
        for mask in choice.references:
            found[mask.name.strip()] = sitk.GetArrayViewFromImage(layers[layer_of[mask.number]]) == mask.number
        kept = {m.number for m in choice.lesions}
        layer_of = {number: layer for number, layer in layer_of.items() if number in kept}
    if references is not None:
        references.update(found)
    return MaskSet(layers, choice.lesions, layer_of, choice.notes)


def load_reference(path: Path, image: sitk.Image, image_path: Path,
                   positions: tuple[float, ...] | None = None) -> np.ndarray:
    """A reference-region file as a boolean (z, y, x) array on the image grid (any non-zero voxel, the union of a
    DICOM mask's segments/ROIs), with the mask's geometry checks; a ScanError names the file."""
    if _is_dicom_mask(path):
        from radiomx.inputs.masks import DicomMaskFile

        union = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=bool)
        for _, voxels in DicomMaskFile(path).voxels(image, positions):
            union |= voxels
        return union
    mask = align_mask(image, as_label_map(read_volume(path, "reference mask"), path), image_path, path)
    return sitk.GetArrayViewFromImage(mask) != 0


def load_scan(scan: Scan, layout: Layout, digests: dict[Path, str] | None = None,
              selection: RoiSelection | None = None, labels: tuple[int, ...] | None = None) -> LoadedScan:
    """Image and lesion masks of one scan (chosen by ``selection`` and ``labels``, see ``load_mask``); with
    ``digests``, the sha256 of each single input file as it was read."""
    loaded = _image_in_unit(scan, layout, digests)
    assert scan.image is not None
    check_finite(loaded.image, scan.image)
    embedded: dict[str, np.ndarray] = {}
    mask = load_mask(scan, loaded.image, digests, loaded.positions, embedded, selection, labels)
    return LoadedScan(loaded.image, mask, loaded.unit, loaded.inputs, loaded.geometry, loaded.positions, embedded,
                      loaded.body.get("height_m"), loaded.body.get("weight_kg"), loaded.body.get("sex") or "")
