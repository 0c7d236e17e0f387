"""DICOM masks -> named masks on the image grid: DICOM SEG (one mask per segment) and RTSTRUCT (one mask per ROI),
each its own boolean volume, so that they may overlap (``radiomx.inputs.named_masks``).

Why these choices:

* SEG is decoded by highdicom (``Segmentation.get_volume``), which handles BINARY/FRACTIONAL/LABELMAP encodings,
  bit-packed frames and sparse frames; we only place its frames on the image grid. Number = Segment Number
  (0062,0004), so the lesion id is what the SEG file says; each segment is decoded on its own
  (``get_volume(segment_numbers=[n])``), so overlapping segments are read as they are. Placement: each frame goes
  on the image slice nearest to it, by the slices' true positions (``SliceLayout``), when every voxel centre of
  the frame lies within ``PLANE_TOL`` voxel of an image voxel centre; its geometry is then set to that slice's
  before highdicom builds the volume. Writers round DS values to 7 significant digits and dcmqi writes frames on
  its own (ITK) grid, so frames sit a few hundredths of a voxel off (0.022 voxel in a Siemens/dcmqi export); a SEG
  drawn on another grid (a CT, another reconstruction) is refused with the offset found.
* RTSTRUCT is rasterized here by a small even-odd polygon fill (rt-utils is unmaintained and uses OpenCV's fillPoly,
  whose pixel-inclusion rule is undocumented for sub-voxel vertices). Convention, for each ROI (number = ROI Number
  (3006,0022)): every CLOSED_PLANAR contour is mapped to the image's continuous voxel index; it must lie in one
  image slice (within ``PLANE_TOL`` voxel of a slice's true position, as SEG frames); a voxel belongs to the ROI
  when its centre is inside the contour by the even-odd rule, and contours of one ROI on one slice are combined by
  XOR, so an inner contour cuts a hole. POINT and OPEN contours carry no area and are ignored.
* Only the masks asked for are decoded or rasterized (``numbers``): a BODY outline that is not a lesion costs no
  polygon fill, and its contours outside the PET's field of view are never looked at.
* Names come from the header alone (``DicomMaskFile.masks``): Segment Label and Segmented Property Category
  (0062,0003), ROI Name and RT ROI Interpreted Type (3006,00A4) from the RT ROI Observations.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

from radiomx.errors import ScanError, one_line
from radiomx.inputs.dicom import grid_positions
from radiomx.inputs.imaging import check_on_grid
from radiomx.inputs.named_masks import NamedMask, pack_layers
from radiomx.inputs.paths import truncated_pixels
from radiomx.vocabulary import Stage

#: Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: How far (in voxels) a contour plane or a SEG frame may sit from the image's voxel centres: 10x the 7-digit
#: rounding and grid arithmetic of real writers (0.022 voxel), 5x short of half a voxel (where the nearest slice
#: becomes ambiguous). dcmqi itself snaps anything under 0.5 voxel; highdicom's match_geometry allows 1e-5.
PLANE_TOL = 0.1
#: Direction cosines of a SEG and its image must agree to this (highdicom's perpendicularity tolerance).
ORIENTATION_ATOL = 1e-3


class DicomMaskFile:
    """One SEG or RTSTRUCT (told apart by SOP Class UID, then Modality): the masks its header names, and the voxels
    of those asked for on an image grid. The file is parsed once (an RTSTRUCT's contours are its header)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header = _read(path, stop_before_pixels=True)
        sop, modality = str(self.header.get("SOPClassUID", "")), str(self.header.get("Modality", ""))
        rtstruct = sop == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT"
        cut = "" if rtstruct else _cut_short(path)  # an RTSTRUCT has no pixel data: ending there is no problem
        if cut:
            raise ScanError(Stage.LOAD, str(path), f"DICOM mask: {cut}")
        if sop in SEG_SOP_CLASSES or modality == "SEG":
            self.kind = "seg"
        elif sop == RTSTRUCT_SOP_CLASS or modality == "RTSTRUCT":
            self.kind = "rtstruct"
        else:
            raise ScanError(Stage.LOAD, str(path), f"DICOM mask has Modality {modality or 'missing'}; a mask must be a "
                                                   "DICOM SEG or an RTSTRUCT (or a NIfTI/NRRD label map)")
        check_mask_structure(self.header, self.kind, path)

    def masks(self) -> tuple[NamedMask, ...]:
        """Every segment / ROI the file names, in number order (segment 0 of a label-map SEG is background)."""
        return seg_masks(self.header) if self.kind == "seg" else rtstruct_masks(self.header)

    def voxels(self, image: sitk.Image, positions: Sequence[float] | None = None,
               numbers: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(number, boolean (z, y, x) mask on image's grid)`` for each wanted mask (all when None), in number
        order, one at a time. ``positions``: the true position (mm) of each image slice along its slice axis
        (``SliceLayout.positions_mm`` of a DICOM series); None means where the grid puts them (NIfTI/NRRD)."""
        slices = _Slices.of(image, positions)
        wanted = sorted({m.number for m in self.masks()} if numbers is None else set(numbers))
        if self.kind == "seg":
            yield from seg_voxels(self.path, image, slices, wanted)
        else:
            yield from rtstruct_voxels(self.header, image, self.path, slices, wanted)


#: The Type 1 sequences without which a mask file cannot say what it holds (DICOM PS3.3): the Segmentation Image
#: Module's Segment Sequence (C.8.20.2); the Structure Set Module's Structure Set ROI Sequence (C.8.8.5) and the ROI
#: Contour Module's ROI Contour Sequence (C.8.8.6).
REQUIRED_SEQUENCES = {
    "seg": (("SegmentSequence", "Segment Sequence (0062,0002)"),),
    "rtstruct": (("StructureSetROISequence", "Structure Set ROI Sequence (3006,0020)"),
                 ("ROIContourSequence", "ROI Contour Sequence (3006,0039)")),
}


def check_mask_structure(header: Dataset, kind: str, path: Path) -> None:
    """Refuse a damaged mask file before it is read as "no lesion": a SEG without its segments would make a negative
    scan (TMTV 0), an RTSTRUCT without its ROI names would lose them (and the reference regions named in them). A
    negative scan is only a well-formed mask whose segments or ROIs are empty."""
    what = "SEG" if kind == "seg" else "RTSTRUCT"
    for keyword, field in REQUIRED_SEQUENCES[kind]:
        if not header.get(keyword):
            raise ScanError(Stage.LOAD, str(path), f"{what} has no {field} (Type 1); the file is damaged, so its "
                                                   "masks are unknown (re-export it)")
        if keyword == "SegmentSequence" and any("SegmentNumber" not in item for item in header.SegmentSequence):
            raise ScanError(Stage.LOAD, str(path), f"{what} has a segment without Segment Number (0062,0004); the "
                                                   "file is damaged (re-export it)")
    if kind == "seg" and not header.get("FrameOfReferenceUID"):
        raise ScanError(Stage.LOAD, str(path), "SEG has no Frame of Reference UID (0020,0052), so its frames have no "
                                               "place in the patient's space; the file is damaged (re-export it)")


def read_dicom_mask(path: Path, image: sitk.Image, positions: Sequence[float] | None = None) -> sitk.Image:
    """A SEG or RTSTRUCT whose masks do not overlap as one label map (value = segment / ROI number) on ``image``'s
    grid; overlapping masks are refused. For tools and tests; extraction reads named masks (``DicomMaskFile``)."""
    file = DicomMaskFile(path)
    numbers = [m.number for m in file.masks()]
    layers, _ = pack_layers(image, file.voxels(image, positions, numbers), max(numbers, default=0))
    if len(layers) > 1:
        raise ScanError(Stage.LOAD, str(path), "masks overlap; a label map holds one mask per voxel")
    return layers[0]


def _read(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """A DICOM file, also without the Part-10 preamble and meta header (older planning systems write RTSTRUCTs so;
    pydicom reads them with ``force``), as long as it names its SOP Class or Modality."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass
    except Exception as exc:  # noqa: BLE001 - pydicom raises several types for non-DICOM input
        raise ScanError(Stage.LOAD, str(path), f"cannot read DICOM mask ({type(exc).__name__}); re-export it") from exc
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
        if "SOPClassUID" not in ds and "Modality" not in ds:
            raise ValueError("no SOP Class UID or Modality")
        return ds
    except Exception as exc:  # noqa: BLE001 - anything forced through pydicom that is not DICOM
        raise ScanError(Stage.LOAD, str(path), f"cannot read DICOM mask ({type(exc).__name__}); re-export it") from exc


def _cut_short(path: Path) -> str:
    """What is wrong when the file ends before (or inside) its Pixel Data, else "" (``paths.truncated_pixels``)."""
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
            return truncated_pixels(fh, ds, os.fstat(fh.fileno()).st_size, fh.tell())
    except Exception:  # noqa: BLE001 - unreadable: ``_read`` has said so already, or will
        return ""


@dataclass(frozen=True)
class _Slices:
    """The image's slice axis, each slice's true position along it and the grid spacing (mm)."""

    axis: np.ndarray
    positions: np.ndarray
    spacing: float

    @classmethod
    def of(cls, image: sitk.Image, positions: Sequence[float] | None) -> _Slices:
        axis, grid = grid_positions(image)
        return cls(axis, grid if positions is None else np.asarray(positions, float), image.GetSpacing()[2])

    def nearest(self, point: Sequence[float]) -> tuple[int, float]:
        """Index of the slice nearest to ``point`` and the point's offset from it along the axis (mm)."""
        distance = float(np.dot(self.axis, point))
        k = int(np.argmin(np.abs(self.positions - distance)))
        return k, distance - float(self.positions[k])


# --- DICOM SEG -------------------------------------------------------------------------------------------------------

def _volume_as_sitk(volume: hd.Volume) -> sitk.Image:
    """highdicom Volume (array axes: slice, row, column; affine to patient LPS mm) -> SimpleITK image."""
    affine = np.asarray(volume.affine, dtype=np.float64)
    array = volume.array[..., 0] if volume.array.ndim == 4 else volume.array  # one segment: (slice, row, column, 1)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array).astype(np.uint8))
    columns = affine[:3, [2, 1, 0]]  # SimpleITK index (x, y, z) = array (column, row, slice)
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (columns / spacing).ravel()))
    image.SetOrigin(tuple(float(v) for v in affine[:3, 3]))
    return image


def _frame_geometry(ds: Dataset, index: int) -> tuple[Dataset | None, Dataset | None, Dataset | None]:
    """(plane position, plane orientation, pixel measures) items of frame ``index``: per-frame, else shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    found = []
    for keyword in ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence"):
        item = None
        for groups in ((per_frame[index],) if per_frame else ()) + ((shared[0],) if shared else ()):
            if keyword in groups and len(groups.get(keyword)):
                item = groups.get(keyword)[0]
                break
        found.append(item)
    return found[0], found[1], found[2]


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.3g}" for v in values) + ")"


def _place_frames(ds: Dataset, image: sitk.Image, slices: _Slices, path: Path) -> None:
    """Put every SEG frame on its nearest image slice, in place: each frame's position, orientation and pixel
    spacing become the image's once the frame is within ``PLANE_TOL`` voxel of it; otherwise refuse with the offset.

    Checked per frame on its corner voxel centres (the map is linear, so corners bound every voxel): in plane
    against the image's voxel centres, along the slice axis against the nearest slice's true position."""
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), float)
    rows, columns = int(ds.Rows), int(ds.Columns)
    for index in range(int(ds.get("NumberOfFrames", 1) or 1)):
        position, orientation, measures = _frame_geometry(ds, index)
        if position is None or orientation is None or measures is None:
            raise ScanError(Stage.GEOMETRY, str(path), f"SEG frame {index + 1} has no plane position, orientation or "
                                                       "pixel spacing; re-export the SEG")
        cosines = np.asarray(orientation.ImageOrientationPatient, float)
        if np.abs(cosines - direction[:, :2].T.ravel()).max() > ORIENTATION_ATOL:
            raise ScanError(Stage.GEOMETRY, str(path),
                            f"SEG frame orientation {_fmt(cosines)} differs from the image's "
                            f"{_fmt(direction[:, :2].T.ravel())}; it was drawn on another "
                            "series")
        row_mm, column_mm = (float(v) for v in measures.PixelSpacing)  # between rows (y), between columns (x)
        drift = np.array([abs(column_mm - spacing[0]) * (columns - 1), abs(row_mm - spacing[1]) * (rows - 1)])
        if (drift / spacing[:2] > PLANE_TOL).any():
            raise ScanError(Stage.GEOMETRY, str(path), f"SEG pixel spacing ({column_mm:.4g}, {row_mm:.4g}) mm differs "
                                                       f"from the image's ({spacing[0]:.4g}, {spacing[1]:.4g}) mm; it "
                                                       "was drawn on another series (a CT or another reconstruction)")
        origin = np.asarray(position.ImagePositionPatient, float)
        in_plane = np.asarray(image.TransformPhysicalPointToContinuousIndex(tuple(origin)), float)[:2]
        offset = in_plane - np.round(in_plane)
        if np.abs(offset).max() > PLANE_TOL:
            raise ScanError(Stage.GEOMETRY, str(path), f"SEG frame {index + 1} is {_fmt(offset * spacing[:2])} mm "
                                                       f"({_fmt(offset)} voxel) off the image's voxel centres in plane "
                                                       f"(limit {PLANE_TOL:g} voxel); it was drawn on another series")
        k, off_mm = slices.nearest(origin)
        if abs(off_mm) > PLANE_TOL * slices.spacing:
            raise ScanError(Stage.GEOMETRY, str(path), f"SEG frame {index + 1} is {abs(off_mm):.3g} mm "
                                                       f"({abs(off_mm) / slices.spacing:.2f} slice) from the nearest "
                                                       f"image slice (limit {PLANE_TOL:g} slice); it was drawn on "
                                                       "another series or grid")
        column, row = (int(v) for v in np.round(in_plane))
        snapped = image.TransformIndexToPhysicalPoint((column, row, k))
        position.ImagePositionPatient = [float(v) for v in snapped]
        orientation.ImageOrientationPatient = [float(v) for v in direction[:, :2].T.ravel()]
        measures.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        measures.SpacingBetweenSlices = float(spacing[2])


def _little_endian(ds: Dataset) -> Dataset:
    """A big-endian SEG (Explicit VR Big Endian, retired but still written) as little endian, which highdicom
    requires: the parsed attributes are byte-order free, only 16-bit pixel data must be swapped."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") != ExplicitVRBigEndian:
        return ds
    if int(ds.get("BitsAllocated", 1)) == 16 and "PixelData" in ds:
        ds.PixelData = np.frombuffer(ds.PixelData, dtype=">u2").astype("<u2").tobytes()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _code(item: Dataset, keyword: str) -> tuple[str, str]:
    codes = item.get(keyword)
    if not codes:
        return "", ""
    return str(codes[0].get("CodingSchemeDesignator", "")), str(codes[0].get("CodeValue", ""))


def seg_masks(header: Dataset) -> tuple[NamedMask, ...]:
    """Segment Number -> Segment Label and Segmented Property Category, for every segment but 0 (background)."""
    masks = [NamedMask(int(s.SegmentNumber), str(s.get("SegmentLabel", "")), "segment",
                       category=_code(s, "SegmentedPropertyCategoryCodeSequence"),
                       segment_number=int(s.SegmentNumber))
             for s in header.get("SegmentSequence", []) if int(s.SegmentNumber) > 0]
    return tuple(sorted(masks, key=lambda m: m.number))


def seg_voxels(path: Path, image: sitk.Image, slices: _Slices, numbers: Sequence[int]
               ) -> Iterator[tuple[int, np.ndarray]]:
    """Each wanted segment of a DICOM SEG as a boolean volume on ``image``'s grid (frames placed as the module
    docstring says)."""
    if not numbers:
        return
    ds = _little_endian(_read(path))
    _place_frames(ds, image, slices, path)
    for number, labels in _segment_images(ds, path, numbers):
        check_on_grid(labels, image, path, "SEG")
        placed = sitk.Resample(labels, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        yield number, sitk.GetArrayViewFromImage(placed) != 0


def _segment_images(ds: Dataset, path: Path, numbers: Sequence[int], stage: str = Stage.LOAD
                    ) -> Iterator[tuple[int, sitk.Image]]:
    """Each wanted segment of a parsed SEG as a 0/1 image on the SEG's own grid (highdicom ``get_volume``)."""
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as exc:  # noqa: BLE001 - highdicom validates and raises ValueError/AttributeError/...
        raise ScanError(stage, str(path), f"cannot read DICOM SEG ({one_line(exc)})") from exc
    for number in numbers:
        try:
            volume = seg.get_volume(segment_numbers=[number], combine_segments=False)
        except (ValueError, RuntimeError) as exc:
            raise ScanError(stage, str(path),
                            f"cannot place SEG segment {number} in a volume ({one_line(exc)})") from exc
        yield number, _volume_as_sitk(volume)


def seg_segment_images(path: Path, numbers: Sequence[int], stage: str = Stage.LOAD
                       ) -> Iterator[tuple[int, sitk.Image]]:
    """Each wanted segment of the DICOM SEG at ``path`` on the SEG's own grid, for a caller that resamples it (organ
    SEGs drawn on a CT, ``radiomx.inputs.organs``); a ScanError of ``stage`` names the file."""
    if numbers:
        yield from _segment_images(_little_endian(_read(path)), path, numbers, stage)


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


def _rasterize_roi(item: Dataset, image: sitk.Image, path: Path, roi: str, slices: _Slices) -> np.ndarray:
    """One ROI's voxels by the module docstring's convention; ``roi`` names it in messages (``ROI 3 "GTV"``)."""
    size = image.GetSize()
    mask = np.zeros((size[2], size[1], size[0]), dtype=bool)
    for points in _contours(item):
        index = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in points])
        along = points @ slices.axis
        slice_index, off_mm = slices.nearest(points.mean(axis=0))
        spread = float(along.max() - along.min()) / slices.spacing
        if abs(off_mm) > PLANE_TOL * slices.spacing or spread > PLANE_TOL:
            if not (slices.positions.min() - slices.spacing / 2 <= along.mean()
                    <= slices.positions.max() + slices.spacing / 2):
                raise ScanError(Stage.GEOMETRY, str(path), f"{roi} has a contour outside the image (slice "
                                                           f"{int(np.round(index[:, 2].mean()))} of {size[2]}); it "
                                                           "belongs to another scan")
            raise ScanError(Stage.GEOMETRY, str(path), f"{roi} has a contour between or across image slices "
                                                       f"({abs(off_mm):.3g} mm = {abs(off_mm) / slices.spacing:.2f} "
                                                       f"slice from the nearest slice, {spread:.2f} slice thick; limit "
                                                       f"{PLANE_TOL:g}); it was drawn on another grid")
        mask[slice_index] ^= polygon_mask((size[1], size[0]), index[:, :2])
    return mask


def rtstruct_masks(ds: Dataset) -> tuple[NamedMask, ...]:
    """Every ROI of an RTSTRUCT: ROI Number -> ROI Name (Structure Set ROI Sequence) and RT ROI Interpreted Type
    (RT ROI Observations Sequence); an ROI with contours but no Structure Set entry is unnamed."""
    names = {int(r.ROINumber): str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])}
    kinds = {int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "") or "").strip().upper()
             for o in ds.get("RTROIObservationsSequence", []) if "ReferencedROINumber" in o}
    numbers = set(names) | {int(i.ReferencedROINumber) for i in ds.get("ROIContourSequence", [])}
    return tuple(NamedMask(n, names.get(n, ""), "roi", kinds.get(n, ""), roi_number=n) for n in sorted(numbers))


def rtstruct_voxels(ds: Dataset, image: sitk.Image, path: Path, slices: _Slices, numbers: Sequence[int]
                    ) -> Iterator[tuple[int, np.ndarray]]:
    """Each wanted ROI rasterized by the module docstring's convention. An RTSTRUCT without any closed contour
    (only points or lines) is refused: it cannot be a lesion mask."""
    items = {int(i.ReferencedROINumber): i for i in ds.get("ROIContourSequence", [])}
    if not any(True for item in items.values() for _ in _contours(item)):
        raise ScanError(Stage.LOAD, str(path), "RTSTRUCT has no closed contour; check it belongs to the scan")
    names = {m.number: m.describe() for m in rtstruct_masks(ds)}
    for number in numbers:
        if number in items:
            yield number, _rasterize_roi(items[number], image, path, names.get(number, f"ROI {number}"), slices)
