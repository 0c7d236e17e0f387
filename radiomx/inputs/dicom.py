"""Read a DICOM image series (a folder of slices) into one volume plus its per-slice headers.

Why split the work: SimpleITK (GDCM) sorts slices and computes the geometry sites trust, but it applies
RescaleSlope/Intercept with the pixel type of the first slice, which can clip or round slices whose slope differs
(IBSI-SUV DRO_1_0). So the voxels are rebuilt from pydicom's stored values, each slice with its own slope and
intercept, in float64, and laid on SimpleITK's geometry. The headers travel with the volume in z order because
SUV factors can differ per slice (DecayCorrection NONE, Philips scale factors).

Refusals (ScanError, stage ``load`` or ``geometry``): no series, several series of the wanted modality, a
multi-frame file, slices of different size or orientation, unevenly spaced slices (a missing slice), a PET
RescaleIntercept other than 0. Messages never quote UIDs or patient attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radiomx.errors import ScanError
from radiomx.inputs.paths import is_dicom_file

#: Relative tolerance on slice gaps: beyond it a slice is missing or two series are interleaved.
GAP_RTOL = 0.01
ORIENTATION_ATOL = 1e-4


@dataclass(frozen=True)
class DicomSeries:
    #: Stored values after each slice's RescaleSlope/Intercept, float64, on SimpleITK's geometry.
    image: sitk.Image
    #: One header per slice, in image z order (pixel data included).
    headers: tuple[Dataset, ...]
    files: tuple[Path, ...]
    modality: str


def _series_ids(folder: Path) -> list[str]:
    try:
        return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    except RuntimeError:
        return []


def _first_header(folder: Path, series_id: str) -> Dataset | None:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
    try:
        return pydicom.dcmread(files[0], stop_before_pixels=True) if files else None
    except (InvalidDicomError, OSError):
        return None


def _pick_series(folder: Path, modality: str) -> str:
    """The one series of ``modality`` in the folder; others (CT, RTSTRUCT, SEG beside a PET) are ignored."""
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
        raise ScanError("load", str(folder), f"folder holds {what}, no {modality} series; put the {modality} slices "
                                             "of this scan in it")
    if len(found) > 1:
        numbers = ", ".join(sorted(str(h.get("SeriesNumber", "?")) for h in found.values()))
        raise ScanError("load", str(folder), f"folder mixes {len(found)} {modality} series (Series Number {numbers}); "
                                             "keep one series per scan folder")
    return next(iter(found))


def _read_headers(files: list[str]) -> list[Dataset]:
    headers = []
    for name in files:
        try:
            headers.append(pydicom.dcmread(name))
        except (InvalidDicomError, OSError) as exc:
            raise ScanError("load", name, f"cannot read DICOM slice ({exc}); re-export the series") from exc
    return headers


def _normal(ds: Dataset) -> np.ndarray:
    row, col = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
    return np.cross(row, col)


def check_slices(headers: list[Dataset], files: list[str], folder: Path) -> None:
    """Same matrix and orientation in every slice, one frame per file, evenly spaced positions."""
    first = headers[0]
    for ds, name in zip(headers, files, strict=True):
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ScanError("load", name, "multi-frame (enhanced) DICOM is not supported; export one slice per file")
        for attr in ("Rows", "Columns"):
            if ds.get(attr) != first.get(attr):
                raise ScanError("geometry", name, f"{attr} is {ds.get(attr)} but {first.get(attr)} in the first slice; "
                                                  "the folder mixes series")
        if "ImageOrientationPatient" not in ds or "ImagePositionPatient" not in ds:
            raise ScanError("geometry", name, "Image Position/Orientation (Patient) (0020,0032/0037) is missing")
        if not np.allclose(ds.ImageOrientationPatient, first.ImageOrientationPatient, atol=ORIENTATION_ATOL):
            raise ScanError("geometry", name, "slice orientation differs from the first slice; the folder mixes series")
    if len(headers) < 2:
        return
    normal = _normal(first)
    positions = np.array([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) for ds in headers])
    gaps = np.diff(positions)
    typical = float(np.median(np.abs(gaps)))
    if typical == 0 or np.any(np.abs(gaps) < 1e-6):
        raise ScanError("geometry", str(folder), "two slices share one position; the folder mixes series or frames "
                                                 "(keep one frame of one series)")
    uneven = np.flatnonzero(np.abs(np.abs(gaps) - typical) > GAP_RTOL * typical)
    if uneven.size:
        i = int(uneven[0])
        raise ScanError("geometry", files[i + 1], f"slice gap {abs(gaps[i]):.3g} mm before this slice, "
                                                  f"{typical:.3g} mm elsewhere; a slice is missing (re-export the "
                                                  "complete series)")


def _rescaled(ds: Dataset, name: str) -> np.ndarray:
    try:
        stored = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for unsupported transfer syntaxes
        raise ScanError("load", name, f"cannot decode pixel data ({' '.join(str(exc).split())[:150]}); export "
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
            raise ScanError("load", str(path), "DICOM file is truncated or unreadable (in no series); re-export the "
                                               "series")


def read_series(folder: Path, modality: str) -> DicomSeries:
    """The folder's single ``modality`` ("PT" or "CT") series, rescaled per slice, on SimpleITK's geometry."""
    _check_all_files_parsed(folder)
    series_id = _pick_series(folder, modality)
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id))
    headers = _read_headers(files)
    check_slices(headers, files, folder)
    if modality == "PT":
        for ds, name in zip(headers, files, strict=True):
            if float(ds.get("RescaleIntercept", 0.0) or 0.0) != 0.0:
                raise ScanError("suv", name, f"Rescale Intercept (0028,1052) is {ds.RescaleIntercept}; PET slices must "
                                             "have 0 (IBSI SUV manual), re-export the series")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        geometry = reader.Execute()
    except RuntimeError as exc:
        raise ScanError("load", str(folder), f"SimpleITK cannot read the series ({' '.join(str(exc).split())[-150:]})"
                        ) from exc
    voxels = np.stack([_rescaled(ds, name) for ds, name in zip(headers, files, strict=True)])
    image = sitk.GetImageFromArray(voxels)
    image.CopyInformation(geometry)
    return DicomSeries(image, tuple(headers), tuple(Path(f) for f in files), modality)
