"""Read a DICOM image series (a folder of slices) into one volume plus its per-slice headers.

Why split the work: SimpleITK (GDCM) sorts slices and computes the geometry sites trust, but it applies
RescaleSlope/Intercept with the pixel type of the first slice, which can clip or round slices whose slope differs
(IBSI-SUV DRO_1_0). So the voxels are rebuilt from pydicom's stored values, each slice with its own slope and
intercept, in float64, and laid on SimpleITK's geometry. The headers travel with the volume in z order because
SUV factors can differ per slice (DecayCorrection NONE, Philips scale factors).

Real exports round slice positions (a GE series of 3.27 mm slices has 3.19 and 3.29 mm gaps): such a series is
laid on a uniform grid as ITK reads it and its deviation recorded (``SliceLayout``); only what is broken is
refused. Refusals (ScanError, stage ``load`` or ``geometry``): no series, several series of the wanted modality
that Corrected Image / Image Type cannot tell apart, a multi-frame file, slices of different size or orientation,
a missing slice, interleaved or duplicate slices, slices too far from a uniform grid, a PET slice without Rescale
Slope/Intercept, with an intercept other than 0, or in another unit than the first slice. Tolerances and their
reasons: docs/pet-inputs.md. Messages never quote UIDs or patient attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radiomx.errors import ScanError, one_line
from radiomx.inputs.paths import is_dicom_file
from radiomx.inputs.series_choice import PROJECTION_TYPES, describe, measurable  # noqa: F401  (PROJECTION_TYPES: API)
from radiomx.vocabulary import Stage

#: A gap of at least this many median gaps is a missing slice (a missing slice is 2x), see ``check_gaps``.
MISSING_RATIO = 1.5
#: A gap of at most this many median gaps is two interleaved series (they give about 0.5x), see ``check_gaps``.
INTERLEAVED_RATIO = 0.75
#: Two slices closer than this fraction of the median gap share one position (a duplicate, not an interleave).
SAME_POSITION_FRACTION = 0.01
#: How far (in slice spacings) a slice may sit from its place on the uniform grid, see ``slice_layout``.
POSITION_TOL = 0.25
#: Deviations are recorded to the micrometre: below any scanner's position rounding, so a regular series gives 0.0.
MM_DECIMALS = 3
ORIENTATION_ATOL = 1e-4
#: PET and CT Image Storage (PS3.4 Annex B): the slices a scan folder's series are made of.
IMAGE_STORAGE = ("1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.2")


@dataclass(frozen=True)
class SliceLayout:
    """Where the slices really are, against the uniform grid the volume is laid on (ITK's layout)."""

    #: True position (mm) of each z slice along the grid's slice axis, in image z order.
    positions_mm: tuple[float, ...]
    #: Largest |gap - grid spacing| (mm): ITK's ``ITK_non_uniform_sampling_deviation``; 0.0 for a regular series.
    spacing_max_deviation_mm: float
    #: Largest |true position - grid position| (mm): how far any slice sits from where the grid puts it.
    position_max_offset_mm: float

    def as_row(self) -> dict[str, float]:
        return {"slice_spacing_max_deviation_mm": self.spacing_max_deviation_mm,
                "slice_position_max_offset_mm": self.position_max_offset_mm}


@dataclass(frozen=True)
class DicomSeries:
    #: Stored values after each slice's RescaleSlope/Intercept, float64, on SimpleITK's geometry.
    image: sitk.Image
    #: One header per slice, in image z order (pixel data included).
    headers: tuple[Dataset, ...]
    files: tuple[Path, ...]
    #: The slices' true positions against the uniform grid of ``image``.
    layout: SliceLayout


def _series_ids(folder: Path) -> list[str]:
    try:
        return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    except RuntimeError:
        return []


def _first_header(folder: Path, series_id: str) -> Dataset | None:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
    try:
        header = pydicom.dcmread(files[0], stop_before_pixels=True) if files else None
    except (InvalidDicomError, OSError):
        return None
    if header is not None and str(header.get("SOPClassUID", "")) in IMAGE_STORAGE:
        # A slice that lost what groups it would be left out as another "series", leaving a gap named by its
        # neighbour (or none, at either end): name it instead.
        for keyword, tag in (("SeriesInstanceUID", "(0020,000E)"), ("Modality", "(0008,0060)")):
            if not header.get(keyword):
                raise ScanError(Stage.LOAD, files[0], f"{keyword} {tag} is missing: a damaged slice; re-export "
                                                      "the series")
    return header


def _pick_series(folder: Path, modality: str) -> str:
    """The one series of ``modality`` in the folder; others (CT, RTSTRUCT, SEG beside a PET) are ignored.

    Real exports put several series of one modality in a folder: a PET beside its non-attenuation-corrected
    reconstruction (NAC) and a MIP, a CT beside its localizer. The measurable one is taken when it is the only
    one left after two steps: PET series whose Corrected Image (0028,0051) says ATTN (when any does), then no
    MIP/projection/localizer (Image Type (0008,0008) or a Series Description "MIP"). Otherwise the scan is refused
    with the candidates, so a user can keep the right one.
    """
    found: dict[str, Dataset] = {}
    seen_modalities = set()
    for series_id in _series_ids(folder):
        header = _first_header(folder, series_id)
        if header is None:
            continue
        seen_modalities.add(str(header.get("Modality", "?")))
        if header.get("Modality") == modality:
            found[series_id] = header
    if not found:
        what = f"only {', '.join(sorted(seen_modalities))} series" if seen_modalities else "no DICOM image series"
        raise ScanError(Stage.LOAD, str(folder),
                        f"folder holds {what}, no {modality} series; put the {modality} slices "
                        "of this scan in it")
    candidates = measurable(found, modality)
    if len(candidates) > 1:
        listed = ", ".join(sorted(describe(h) for h in candidates.values()))
        raise ScanError(Stage.LOAD, str(folder),
                        f"folder mixes {len(candidates)} {modality} series ({listed}); keep one "
                        "series per scan folder")
    return next(iter(candidates))


def _read_headers(files: list[str]) -> list[Dataset]:
    headers = []
    for name in files:
        try:
            headers.append(pydicom.dcmread(name))
        except (InvalidDicomError, OSError) as exc:
            raise ScanError(Stage.LOAD, name, f"cannot read DICOM slice ({exc}); re-export the series") from exc
    return headers


def _normal(ds: Dataset) -> np.ndarray:
    row, col = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
    return np.cross(row, col)


def check_slices(headers: list[Dataset], files: list[str], folder: Path) -> None:
    """Same matrix and orientation in every slice, one frame per file, position and orientation present."""
    first = headers[0]
    for ds, name in zip(headers, files, strict=True):
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ScanError(Stage.LOAD, name,
                            "multi-frame (enhanced) DICOM is not supported; export one slice per file")
        for attr in ("Rows", "Columns"):
            if ds.get(attr) != first.get(attr):
                raise ScanError(Stage.GEOMETRY, name,
                                f"{attr} is {ds.get(attr)} but {first.get(attr)} in the first slice; "
                                "the folder mixes series")
        if "ImageOrientationPatient" not in ds or "ImagePositionPatient" not in ds:
            raise ScanError(Stage.GEOMETRY, name, "Image Position/Orientation (Patient) (0020,0032/0037) is missing")
        if not np.allclose(ds.ImageOrientationPatient, first.ImageOrientationPatient, atol=ORIENTATION_ATOL):
            raise ScanError(Stage.GEOMETRY, name,
                            "slice orientation differs from the first slice; the folder mixes series")


def slice_positions(headers: list[Dataset]) -> np.ndarray:
    """Each slice's position (mm) along the slice normal, in the given order."""
    normal = _normal(headers[0])
    return np.array([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) for ds in headers])


def check_gaps(positions: np.ndarray, files: list[str], folder: Path) -> None:
    """Refuse what is broken, by the size of a gap against the median gap (the series' own spacing).

    Why the median: one missing slice or a few duplicates do not move it, so it names the bad gap. Why these
    limits: a missing slice is a gap of 2x the spacing and two interleaved series give gaps of about 0.5x, while
    scanners round positions by a few per cent (GE: 3.19/3.29 mm gaps in a 3.27 mm series). ``MISSING_RATIO`` and
    ``INTERLEAVED_RATIO`` sit halfway between a regular gap (1x) and those two failures, more than 10x the rounding
    away from a regular gap. (MIRP calls a gap above 1.2x the smallest "missing slices"; dcm2niix flags gaps that
    differ from the first by more than 0.2 mm; ITK only warns.)
    """
    gaps = np.abs(np.diff(positions))
    typical = float(np.median(gaps))
    for i, gap in enumerate(gaps):
        ratio = gap / typical if typical > 0 else 0.0
        if gap <= SAME_POSITION_FRACTION * typical or typical == 0:
            raise ScanError(Stage.GEOMETRY, str(folder),
                            f"{Path(files[i]).name} and {Path(files[i + 1]).name} are both "
                            f"at {positions[i]:.2f} mm along the slice normal; the folder "
                            "mixes two series or holds a slice twice (keep one series)")
        if ratio <= INTERLEAVED_RATIO:
            raise ScanError(Stage.GEOMETRY, files[i + 1], f"slice gap {gap:.3g} mm before this slice (after "
                                                          f"{Path(files[i]).name}), {typical:.3g} mm elsewhere; two "
                                                          "series are interleaved (keep one series per folder)")
        if ratio >= MISSING_RATIO:
            missing = max(int(round(ratio)) - 1, 1)
            what = "a slice is missing" if missing == 1 else f"about {missing} slices are missing"
            raise ScanError(Stage.GEOMETRY, files[i + 1], f"slice gap {gap:.3g} mm before this slice, {typical:.3g} mm "
                                                          f"elsewhere; {what} (re-export the complete series)")


def grid_positions(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The slice axis (unit vector) of ``image`` and each z slice's position along it (mm)."""
    axis = np.asarray(image.GetDirection(), float).reshape(3, 3)[:, 2]
    start = float(np.dot(axis, image.GetOrigin()))
    return axis, start + np.arange(image.GetSize()[2]) * image.GetSpacing()[2]


def slice_layout(headers: list[Dataset], files: list[str], image: sitk.Image) -> SliceLayout:
    """Measure the series against ``image``'s uniform grid and refuse it when a slice is too far from its place.

    Layout, as ITK/GDCM (SimpleITK's ImageSeriesReader) read it and as dcm2niix's main output does: origin at the
    first slice, spacing (last - first) / (n - 1), slices stacked at that spacing without resampling (no voxel value
    changes; MIRP and dcm2niix's ``_Eq`` copy interpolate instead, which would change intensities). Accepted when
    every slice lies within ``POSITION_TOL`` of a spacing of its grid place: half way between a perfect series
    and a missing slice, which puts slices about half a spacing off the grid. This also refuses slow drift that no
    single gap shows. ITK never refuses (it only warns above 1e-4 of the spacing); highdicom refuses gaps off the
    mean by more than 1 %, which refuses real GE exports.
    """
    axis, grid = grid_positions(image)
    positions = np.array([float(np.dot(axis, np.asarray(ds.ImagePositionPatient, float))) for ds in headers])
    spacing = image.GetSpacing()[2]
    offsets = positions - grid
    worst = int(np.argmax(np.abs(offsets))) if len(offsets) else 0
    if len(offsets) > 1 and abs(offsets[worst]) > POSITION_TOL * spacing:
        raise ScanError(Stage.GEOMETRY, files[worst], f"slice sits {abs(offsets[worst]):.2f} mm "
                                                      f"({abs(offsets[worst]) / spacing:.2f} of the {spacing:.3g} mm "
                                                      f"spacing) from its place on a uniform grid (limit "
                                                      f"{POSITION_TOL:g}); the slice spacing is not uniform (re-export "
                                                      "the series, or resample it to uniform slices)")
    deviation = float(np.abs(np.diff(positions) - spacing).max()) if len(positions) > 1 else 0.0
    return SliceLayout(tuple(float(p) for p in positions), round(deviation, MM_DECIMALS),
                       round(float(np.abs(offsets).max()) if len(offsets) else 0.0, MM_DECIMALS))


#: Per-slice attributes that say what a PET slice's rescaled values mean: every slice must state the first slice's.
PET_VALUE_MEANING = (("Units", "Units (0054,1001)"), ("RescaleType", "Rescale Type (0028,1054)"))


def check_pet_rescale(headers: list[Dataset], files: list[str]) -> None:
    """Refuse a PET slice whose stored values cannot be turned into the series' unit for certain.

    Rescale Slope (0028,1053) and Intercept (0028,1052) are Type 1 in the PET Image Module (DICOM PS3.3 C.8.9.4):
    a PET slice without them is broken, and the default GDCM/SimpleITK and ``pydicom.pixels.apply_rescale`` would
    use (slope 1, intercept 0) silently gives a wrong number (a GE slope is far from 1). The intercept must be 0
    (IBSI SUV manual). Units (Type 1, per series) and Rescale Type, when any slice states them, must be the same in
    every slice: SUV factors are taken once for the series, so a slice in another unit would be mixed in silently.
    """
    first = headers[0]
    for ds, name in zip(headers, files, strict=True):
        for keyword, field in (("RescaleSlope", "Rescale Slope (0028,1053)"),
                               ("RescaleIntercept", "Rescale Intercept (0028,1052)")):
            if ds.get(keyword) in (None, ""):
                raise ScanError(Stage.SUV, name, f"{field} is missing; it is Type 1 in a PET image (DICOM PS3.3 "
                                                 "C.8.9.4) and the stored values mean nothing without it, "
                                                 "re-export the series")
        if float(ds.RescaleIntercept) != 0.0:
            raise ScanError(Stage.SUV, name,
                            f"Rescale Intercept (0028,1052) is {ds.RescaleIntercept}; PET slices must "
                            "have 0 (IBSI SUV manual), re-export the series")
        for keyword, field in PET_VALUE_MEANING:
            mine, theirs = str(ds.get(keyword, "") or "").strip(), str(first.get(keyword, "") or "").strip()
            if mine != theirs:
                raise ScanError(Stage.SUV, name, f"{field} is {mine or 'missing'} but {theirs or 'missing'} in "
                                                 "the first slice; the slices' values are not in one unit "
                                                 "(re-export the series)")


def _rescaled(ds: Dataset, name: str) -> np.ndarray:
    try:
        stored = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for unsupported transfer syntaxes
        raise ScanError(Stage.LOAD, name, f"cannot decode pixel data ({one_line(exc)}); export "
                                          "uncompressed or install the pydicom pixel-data plugin for it") from exc
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return stored.astype(np.float64) * slope + intercept


def _check_all_files_parsed(folder: Path) -> None:
    """GDCM silently leaves out a DICOM file it cannot parse (a half-written slice), which would surface later as a
    misleading "missing slice" or a shorter volume; name the file instead."""
    listed = {Path(f).resolve() for sid in _series_ids(folder)
              for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid)}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.resolve() not in listed and is_dicom_file(path):
            raise ScanError(Stage.LOAD, str(path),
                            "DICOM file is truncated or unreadable (in no series); re-export the "
                            "series")


def read_series(folder: Path, modality: str, series_files: tuple[Path, ...] = ()) -> DicomSeries:
    """The folder's ``modality`` ("PT" or "CT") series, rescaled per slice, on SimpleITK's geometry.

    ``series_files``: exactly the slices of one series, as a DICOM export's index found them among other series
    (``radiomx.discover.dicom_export``); they are read with the same checks, and ``folder`` only names them."""
    if series_files:
        files = [str(f) for f in series_files]
    else:
        _check_all_files_parsed(folder)
        series_id = _pick_series(folder, modality)
        files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id))
    headers = _read_headers(files)
    check_slices(headers, files, folder)
    if len(headers) > 1:
        # GDCM sorts by position, but falls back to other orders when it cannot (two slices at one position): sort
        # here too, so that duplicates sit side by side and are named, and the reader stacks slices by position.
        positions = slice_positions(headers)
        order = [int(i) for i in np.argsort(positions, kind="stable")]
        files, headers = [files[i] for i in order], [headers[i] for i in order]
        check_gaps(positions[order], files, folder)
    if modality == "PT":
        check_pet_rescale(headers, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    # ITK warns on stderr about any non-uniformity above 1e-4 of the spacing; slice_layout measures and records it.
    reader.SetSpacingWarningRelThreshold(float("inf"))
    try:
        geometry = reader.Execute()
    except RuntimeError as exc:
        raise ScanError(Stage.LOAD, str(folder),
                        f"SimpleITK cannot read the series ({one_line(exc)})"
                        ) from exc
    layout = slice_layout(headers, files, geometry)
    voxels = np.stack([_rescaled(ds, name) for ds, name in zip(headers, files, strict=True)])
    image = sitk.GetImageFromArray(voxels)
    image.CopyInformation(geometry)
    return DicomSeries(image, tuple(headers), tuple(Path(f) for f in files), layout)
