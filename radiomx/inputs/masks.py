"""DICOM masks -> a UInt32 label map on the image grid: DICOM SEG (one lesion per segment) and RTSTRUCT (one lesion
per ROI).

Why these choices:

* SEG is decoded by highdicom (``Segmentation.get_volume``), which handles BINARY/FRACTIONAL/LABELMAP encodings,
  bit-packed frames and sparse frames; we only place its volume on the image grid. Label = Segment Number
  (0062,0004), so the lesion id is what the SEG file says.
* RTSTRUCT is rasterized here by a small even-odd polygon fill (rt-utils is unmaintained and uses OpenCV's fillPoly,
  whose pixel-inclusion rule is undocumented for sub-voxel vertices). Convention, for each ROI (label = ROI Number
  (3006,0022)): every CLOSED_PLANAR contour is mapped to the image's continuous voxel index; it must lie in one
  image slice (within ``PLANE_TOL`` voxel of a slice centre); a voxel belongs to the ROI when its centre is inside
  the contour by the even-odd rule, and contours of one ROI on one slice are combined by XOR, so an inner contour
  cuts a hole. POINT and OPEN contours carry no area and are ignored.
* Two lesions cannot share a voxel in a label map: overlapping segments or ROIs are refused with their numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from radiomx.errors import ScanError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: How far (in voxels) a contour plane or a SEG frame may sit from the image's voxel centres.
PLANE_TOL = 0.1
GRID_TOL = 1e-3


def read_dicom_mask(path: Path, image: sitk.Image) -> sitk.Image:
    """SEG or RTSTRUCT (told apart by SOP Class UID, then Modality) -> UInt32 label map on ``image``'s grid."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises several types for non-DICOM input
        raise ScanError("load", str(path), f"cannot read DICOM mask ({type(exc).__name__}); re-export it") from exc
    sop, modality = str(header.get("SOPClassUID", "")), str(header.get("Modality", ""))
    if sop == SEG_SOP_CLASS or modality == "SEG":
        return read_seg(path, image)
    if sop == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":
        return rasterize_rtstruct(pydicom.dcmread(path), image, path)
    raise ScanError("load", str(path), f"DICOM mask has Modality {modality or 'missing'}; a mask must be a DICOM SEG "
                                       "or an RTSTRUCT (or a NIfTI/NRRD label map)")


# --- DICOM SEG -------------------------------------------------------------------------------------------------------

def _volume_as_sitk(volume: hd.Volume) -> sitk.Image:
    """highdicom Volume (array axes: slice, row, column; affine to patient LPS mm) -> SimpleITK image."""
    affine = np.asarray(volume.affine, dtype=np.float64)
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array).astype(np.uint32))
    columns = affine[:3, [2, 1, 0]]  # SimpleITK index (x, y, z) = array (column, row, slice)
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (columns / spacing).ravel()))
    image.SetOrigin(tuple(float(v) for v in affine[:3, 3]))
    return image


def _check_on_grid(moving: sitk.Image, image: sitk.Image, path: Path, what: str) -> None:
    """Every voxel centre of ``moving`` must be a voxel centre of ``image`` (no interpolation of labels)."""
    origin = np.array(image.TransformPhysicalPointToContinuousIndex(moving.GetOrigin()))
    steps = []
    for axis in range(3):
        index = [0, 0, 0]
        index[axis] = 1
        point = moving.TransformIndexToPhysicalPoint(index)
        steps.append(np.array(image.TransformPhysicalPointToContinuousIndex(point)) - origin)
    integral = np.abs(origin - np.round(origin)).max() <= GRID_TOL and all(
        np.abs(s - np.round(s)).max() <= GRID_TOL and np.abs(np.round(s)).sum() == 1 for s in steps)
    if not integral:
        raise ScanError("geometry", str(path), f"{what} is not on the image grid (different spacing, orientation or "
                                               "offset); it was drawn on another series")


def read_seg(path: Path, image: sitk.Image) -> sitk.Image:
    """DICOM SEG -> label map (label = Segment Number) on ``image``'s grid; overlapping segments refuse."""
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001 - highdicom validates and raises ValueError/AttributeError/...
        raise ScanError("load", str(path), f"cannot read DICOM SEG ({' '.join(str(exc).split())[:150]})") from exc
    try:
        volume = seg.get_volume(combine_segments=True, relabel=False)
    except (ValueError, RuntimeError) as exc:  # highdicom raises RuntimeError for overlapping segments
        text = " ".join(str(exc).split())
        if "overlap" in text.lower():
            raise ScanError("load", str(path), "segments overlap; a label map holds one lesion per voxel (export "
                                               "non-overlapping segments)") from exc
        raise ScanError("load", str(path), f"cannot place SEG frames in a volume ({text[:150]})") from exc
    labels = _volume_as_sitk(volume)
    _check_on_grid(labels, image, path, "SEG")
    return sitk.Resample(labels, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt32)


# --- RTSTRUCT --------------------------------------------------------------------------------------------------------

def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Boolean (rows, columns) mask of voxel centres inside ``polygon`` ((n, 2) as x=column, y=row), even-odd rule.

    A centre exactly on an edge counts as inside for left/bottom edges and outside for right/top edges (the usual
    half-open crossing test), so two polygons sharing an edge never both claim a voxel. Kept instead of
    scikit-image's ``polygon2mask``, which counts boundary centres as inside (adjacent contours overlap):
    ``tests/test_polygon_fill.py::test_contours_sharing_an_edge_through_voxel_centres_split_the_voxels``.
    """
    rows, cols = shape
    out = np.zeros(shape, dtype=bool)
    x0, x1 = max(int(np.floor(polygon[:, 0].min())), 0), min(int(np.ceil(polygon[:, 0].max())) + 1, cols)
    y0, y1 = max(int(np.floor(polygon[:, 1].min())), 0), min(int(np.ceil(polygon[:, 1].max())) + 1, rows)
    if x0 >= x1 or y0 >= y1:
        return out
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    inside = np.zeros(ys.shape, dtype=bool)
    start, end = polygon, np.roll(polygon, -1, axis=0)
    for (xa, ya), (xb, yb) in zip(start, end, strict=True):
        if ya == yb:
            continue
        crosses = (ya > ys) != (yb > ys)
        x_at = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xs < x_at)
    out[y0:y1, x0:x1] = inside
    return out


def _contours(item: Dataset) -> Iterable[np.ndarray]:
    for contour in item.get("ContourSequence", []):
        if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")) != "CLOSED_PLANAR":
            continue
        points = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
        if len(points) >= 3:
            yield points


def _rasterize_roi(item: Dataset, image: sitk.Image, path: Path, number: int) -> np.ndarray:
    size = image.GetSize()
    mask = np.zeros((size[2], size[1], size[0]), dtype=bool)
    for points in _contours(item):
        index = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in points])
        z = index[:, 2]
        slice_index = int(np.round(z.mean()))
        if np.abs(z - slice_index).max() > PLANE_TOL:
            raise ScanError("geometry", str(path), f"ROI {number} has a contour between or across image slices "
                                                   f"(z index {z.min():.2f}-{z.max():.2f}); it was drawn on another "
                                                   "grid")
        if not 0 <= slice_index < size[2]:
            raise ScanError("geometry", str(path), f"ROI {number} has a contour outside the image (slice "
                                                   f"{slice_index} of {size[2]}); it belongs to another scan")
        mask[slice_index] ^= polygon_mask((size[1], size[0]), index[:, :2])
    return mask


def rasterize_rtstruct(ds: Dataset, image: sitk.Image, path: Path) -> sitk.Image:
    """RTSTRUCT -> label map: label = ROI Number, convention in the module docstring; overlapping ROIs refuse."""
    labels = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.uint32)
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        roi = _rasterize_roi(item, image, path, number)
        clash = np.unique(labels[roi & (labels > 0)])
        if clash.size:
            raise ScanError("load", str(path), f"ROI {number} overlaps ROI {int(clash[0])}; a "
                                               "label map holds one lesion per voxel (remove the overlap)")
        labels[roi] = number
    if not labels.any():
        raise ScanError("load", str(path), "RTSTRUCT has no closed contour on this image; check it belongs to the scan")
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(image)
    return out
