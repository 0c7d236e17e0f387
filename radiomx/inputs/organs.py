"""A scan's organ segmentations, read onto its PET grid: only the classes asked for, each as a small boolean crop.

Forms (``radiomx.records.OrganSource``; docs/organs.md):

* ``folder``: one file per class, named as TotalSegmentator and MOOSE name them (``liver.nii.gz``,
  ``adrenal_gland_left.nii.gz``, ``vertebrae_L1.nii.gz``; any image suffix); a file whose name is no organ class
  (``radiomx.inputs.organ_names``) is not an organ and is left alone; two files of one class are refused;
* ``labels``: one multilabel file (TotalSegmentator ``--ml``, MOOSE's ``CT_Organs_*.nii.gz``, a BIDS
  ``desc-organs_dseg``), its values named by a table beside it or its NIfTI header extension
  (``radiomx.inputs.organ_labels``);
* ``seg``: a DICOM SEG whose segments are organs, named by Segment Label, else by Segmented Property Type code.

**Resampling rule: nearest neighbour at PET voxel centres.** A PET voxel belongs to an organ when its centre, mapped
into the organ grid through both images' origin, spacing and direction (the same patient frame, LPS mm), falls in
an organ voxel (ITK's ``NearestNeighborInterpolateImageFunction``: the organ voxel whose centre is nearest);
a centre outside the organ grid is outside the organ. Why this rule and not a partial-volume fraction >= 0.5:

* organ grids are CT grids, finer than the PET's (0.8-1.5 mm against 4 mm in plane): the two rules then differ
  only where the organ's surface passes within about half a CT voxel of a PET voxel centre, and for a surface flat
  at the PET voxel's scale the voxel's centre is inside exactly when at least half of it is;
* the guideline VOIs are placed with a clearance from the resampled boundary (``radiomx.features.organ_references``),
  so which rule decides a boundary voxel never moves a VOI voxel across an organ's surface;
* it is the rule ITK, 3D Slicer and TotalSegmentator itself use to move label maps between grids, it keeps a
  multilabel map's classes disjoint in one pass, and it costs one lookup per PET voxel inside the organ's box.

Cost: a TotalSegmentator class file is a whole CT volume of zeros around one organ (~85 MB inflated for 512 x 512 x
327). A plain NIfTI is inflated once and its voxels are used where they lie (a numpy view of the inflated bytes,
``radiomx.inputs.nifti.array_from_raw``), never copied into a whole-volume SimpleITK image; only the organ's
bounding box is cut out and resampled, and each class is kept as a boolean crop of the PET grid (``OrganMask``).
An organ without a voxel, or one whose box misses the PET's field of view, has no mask; ``OrganSet.problems`` says
why, for a warning row. Measured: ``benchmarks/bench_organs.py``, docs/organs.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.inputs import nifti
from radiomx.inputs.imaging import read_volume
from radiomx.inputs.organ_labels import organ_label_names
from radiomx.inputs.organ_names import canonical, class_of_code, is_organ_class
from radiomx.inputs.paths import IMAGE_SUFFIXES, has_image_suffix
from radiomx.records import OrganSource
from radiomx.vocabulary import Stage

Box = tuple[slice, slice, slice]


@dataclass
class BoxMask:
    """A mask on the PET grid kept as its bounding box: ``voxels`` (boolean, z y x) is the crop whose first voxel
    is PET index ``origin`` (z, y, x). Organs, lesions and reference VOIs are all this small."""

    origin: tuple[int, int, int]
    voxels: np.ndarray

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.voxels))

    @property
    def box(self) -> Box:
        return tuple(slice(o, o + n) for o, n in zip(self.origin, self.voxels.shape, strict=True))  # type: ignore

    def within(self, box: Box) -> np.ndarray:
        """The mask on another box of the same grid (False outside this organ's crop)."""
        out = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        src, dst = [], []
        for mine, theirs in zip(self.box, box, strict=True):
            lo, hi = max(mine.start, theirs.start), min(mine.stop, theirs.stop)
            if lo >= hi:
                return out
            src.append(slice(lo - mine.start, hi - mine.start))
            dst.append(slice(lo - theirs.start, hi - theirs.start))
        out[tuple(dst)] = self.voxels[tuple(src)]
        return out

    def full(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The mask on the whole PET grid of ``shape`` (z, y, x)."""
        return self.within(tuple(slice(0, n) for n in shape))  # type: ignore[arg-type]


@dataclass
class OrganMask(BoxMask):
    """One organ class on the PET grid."""

    name: str = ""
    #: The file it came from, and for a multilabel file or a SEG its label (``organs.nii.gz [5 liver]``).
    file: str = ""
    #: The organ's box reaches beyond the PET's field of view (part of it has no PET voxel).
    clipped: bool = False


@dataclass
class OrganSet:
    """The organs read for one scan: ``available`` every organ class the source holds (read or not), ``masks`` those
    read that have PET voxels, ``problems`` why a class asked for has none (for a warning row)."""

    source: str
    available: tuple[str, ...] = ()
    masks: dict[str, OrganMask] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def box_of(values: np.ndarray) -> Box | None:
    """The bounding box of the non-zero voxels of a (z, y, x) array, from per-axis maxima (one pass for z, then
    only the slices with voxels); None when every voxel is zero."""
    if values.size == 0:
        return None
    rows = values.reshape(values.shape[0], -1).max(axis=1)
    zs = np.flatnonzero(rows)
    if zs.size == 0:
        return None
    plane = values[zs[0]: zs[-1] + 1].max(axis=0)
    ys, xs = np.flatnonzero(plane.max(axis=1)), np.flatnonzero(plane.max(axis=0))
    return (slice(int(zs[0]), int(zs[-1]) + 1), slice(int(ys[0]), int(ys[-1]) + 1),
            slice(int(xs[0]), int(xs[-1]) + 1))


@dataclass(frozen=True)
class Grid:
    """Where a mask file's voxels lie in the patient frame (ITK's geometry of the file)."""

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image) -> Grid:
        """The geometry of a SimpleITK image or of an ``ImageFileReader`` that read a header."""
        return cls(tuple(image.GetOrigin()), tuple(image.GetSpacing()), tuple(image.GetDirection()))

    def point(self, index_xyz: tuple[int, int, int]) -> tuple[float, float, float]:
        """The patient coordinates of a voxel's centre (origin + direction . (spacing * index))."""
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        offset = direction @ (np.asarray(self.spacing, dtype=np.float64) * np.asarray(index_xyz, dtype=np.float64))
        return tuple(float(v) for v in np.asarray(self.origin, dtype=np.float64) + offset)  # type: ignore[return-value]


def read_mask_values(path: Path, what: str) -> tuple[np.ndarray, Grid]:
    """A mask file's voxels as a (z, y, x) array of non-negative integer labels and its geometry. A plain NIfTI
    (TotalSegmentator's output) is inflated once and used in place (module docstring); other formats are read by
    ITK. A ScanError (stage ``organs``) names the file."""
    try:
        name = path.name.lower()
        if name.endswith((".nii", ".nii.gz")) and path.is_file() and path.stat().st_size > 0:
            raw = nifti.inflate(path, path.read_bytes(), what)
            header = nifti.parse_header(path, raw, what)
            if header is not None:
                nifti.check_data(path, raw, header, what)
            found = nifti.array_from_raw(path, raw, header)
            if found is not None:
                return _labels(found[0], path), Grid.of(found[1])
        image = read_volume(path, what)
        return _labels(sitk.GetArrayFromImage(image), path), Grid.of(image)
    except ScanError as exc:
        raise ScanError(Stage.ORGANS, exc.path, exc.detail) from exc
    except OSError as exc:
        raise ScanError(Stage.ORGANS, str(path), f"{what} cannot be read ({exc.strerror}); check permissions") from exc


def _labels(values: np.ndarray, path: Path) -> np.ndarray:
    """Mask values must be non-negative integers (as ``radiomx.inputs.imaging.as_label_map`` requires)."""
    if np.issubdtype(values.dtype, np.floating):
        if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
            raise ScanError(Stage.ORGANS, str(path),
                            "organ mask holds non-integer values; save it as an integer label map")
        values = values.astype(np.uint32)
    elif np.issubdtype(values.dtype, np.signedinteger) and values.size and values.min() < 0:
        raise ScanError(Stage.ORGANS, str(path), f"organ mask holds negative label {values.min()}; labels must be >= 0")
    return values


def placed_crop(grid: Grid, crop_values: np.ndarray, box: Box) -> sitk.Image:
    """``crop_values`` (an array cut at ``box`` from a volume of geometry ``grid``) as an image placed where the box
    lies in the patient frame (same spacing and direction)."""
    crop = sitk.GetImageFromArray(np.ascontiguousarray(crop_values))
    crop.SetSpacing(grid.spacing)
    crop.SetDirection(grid.direction)
    crop.SetOrigin(grid.point(tuple(int(s.start) for s in reversed(box))))  # type: ignore[arg-type]
    return crop


def pet_box(moving: sitk.Image, pet: sitk.Image) -> tuple[np.ndarray, np.ndarray, bool]:
    """The PET voxels (z, y, x index range ``[lo, hi)``) whose centres lie within ``moving``'s extent (its voxels'
    outer faces), clipped to the PET grid, and whether the extent reaches beyond the PET's field of view."""
    size = moving.GetSize()
    corners = [moving.TransformContinuousIndexToPhysicalPoint((x, y, z)) for x in (-0.5, size[0] - 0.5)
               for y in (-0.5, size[1] - 0.5) for z in (-0.5, size[2] - 0.5)]
    index = np.array([pet.TransformPhysicalPointToContinuousIndex(c) for c in corners])[:, ::-1]  # (z, y, x)
    lo, hi = np.ceil(index.min(axis=0) - 1e-9).astype(int), np.floor(index.max(axis=0) + 1e-9).astype(int) + 1
    shape = np.array(pet.GetSize()[::-1])
    clipped = bool((lo < 0).any() or (hi > shape).any())
    return np.maximum(lo, 0), np.minimum(hi, shape), clipped


def on_pet_grid(moving: sitk.Image, pet: sitk.Image) -> tuple[tuple[int, int, int], np.ndarray, bool] | None:
    """``moving`` (a label crop on the organ grid) sampled at the PET voxel centres of its extent by nearest
    neighbour (module docstring): ``(origin, values, clipped)``, values keeping their labels, or None when no PET
    voxel centre lies within its extent."""
    lo, hi, clipped = pet_box(moving, pet)
    if (hi <= lo).any():
        return None
    reference = sitk.Image([int(v) for v in (hi - lo)[::-1]], moving.GetPixelID())
    reference.SetSpacing(pet.GetSpacing())
    reference.SetDirection(pet.GetDirection())
    reference.SetOrigin(pet.TransformIndexToPhysicalPoint([int(v) for v in lo[::-1]]))
    sampled = sitk.Resample(moving, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, moving.GetPixelID())
    return (int(lo[0]), int(lo[1]), int(lo[2])), sitk.GetArrayFromImage(sampled), clipped


def _trimmed(name: str, file: str, origin: tuple[int, int, int], voxels: np.ndarray, clipped: bool
             ) -> OrganMask | None:
    box = box_of(voxels)
    if box is None:
        return None
    start = tuple(o + s.start for o, s in zip(origin, box, strict=True))
    return OrganMask(start, np.ascontiguousarray(voxels[box]), name, file, clipped)  # type: ignore[arg-type]


class _Collector:
    """Fills an OrganSet, one class at a time, with the reason for every class that gets no mask."""

    def __init__(self, source: str, available: Iterable[str], wanted: set[str] | None) -> None:
        self.organs = OrganSet(source, tuple(sorted(set(available))))
        self.wanted = set(self.organs.available) if wanted is None else wanted
        for name in sorted(self.wanted - set(self.organs.available)):
            self.organs.problems[name] = f"no {name} in {source}"

    def wants(self, name: str) -> bool:
        return name in self.wanted and name in self.organs.available

    def empty(self, name: str, file: str) -> None:
        self.organs.problems[name] = f"{file}: the {name} mask has no voxel"

    def binary(self, name: str, file: str, values: np.ndarray, grid: Grid, pet: sitk.Image) -> None:
        """A 0/non-zero mask of one class on the organ grid, cropped and put on the PET grid."""
        box = box_of(values)
        if box is None:
            self.empty(name, file)
            return
        placed = on_pet_grid(placed_crop(grid, (values[box] != 0).astype(np.uint8), box), pet)
        mask = _trimmed(name, file, placed[0], placed[1] != 0, placed[2]) if placed is not None else None
        self.put(name, file, mask)

    def put(self, name: str, file: str, mask: OrganMask | None) -> None:
        if mask is None:
            self.organs.problems[name] = (f"{file}: the {name} mask lies outside the PET's field of view (no PET "
                                          "voxel centre falls inside it); its region is null")
        else:
            self.organs.masks[name] = mask


def read_organs(source: OrganSource, pet: sitk.Image, wanted: Iterable[str] | None = None) -> OrganSet:
    """The organ classes ``wanted`` (canonical names; None: every organ class the source holds) of ``source`` on
    ``pet``'s grid. A ScanError (stage ``organs``) names a file that cannot be read or is ambiguous."""
    wanted_set = None if wanted is None else {canonical(name) for name in wanted}
    if source.form == "folder":
        return _read_folder(source.path, pet, wanted_set)
    if source.form == "labels":
        return _read_labels(source.path, pet, wanted_set)
    return _read_seg(source.path, pet, wanted_set)


def organs_from_images(images: Mapping[str, sitk.Image], pet: sitk.Image, source: str = "") -> OrganSet:
    """Organ masks already in memory (class name -> 0/non-zero image on any grid of the patient frame) on ``pet``'s
    grid, by the same rule as the files (for library callers and tests)."""
    named = {canonical(name): image for name, image in images.items()}
    collect = _Collector(source or "organ images", named, None)
    for name, image in sorted(named.items()):
        collect.binary(name, f"{source} [{name}]" if source else name, sitk.GetArrayFromImage(image), Grid.of(image),
                       pet)
    return collect.organs


def class_files(folder: Path) -> dict[str, Path]:
    """Canonical class name -> its file in a per-class folder; files named by no organ class are not organs."""
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_file() and has_image_suffix(p))
    except OSError as exc:
        raise ScanError(Stage.ORGANS, str(folder), f"organ folder cannot be listed ({exc.strerror})") from exc
    found: dict[str, Path] = {}
    for path in entries:
        suffix = next(s for s in IMAGE_SUFFIXES if path.name.lower().endswith(s))
        name = canonical(path.name[: -len(suffix)])
        if not is_organ_class(name):
            continue
        if name in found:
            raise ScanError(Stage.ORGANS, str(path), f"two files for organ class {name} ({found[name].name}, "
                                                 f"{path.name}); keep one")
        found[name] = path
    return found


def _read_folder(folder: Path, pet: sitk.Image, wanted: set[str] | None) -> OrganSet:
    files = class_files(folder)
    collect = _Collector(str(folder), files, wanted)
    for name, path in sorted(files.items()):
        if collect.wants(name):
            collect.binary(name, str(path), *read_mask_values(path, f"organ mask {name}"), pet)
    return collect.organs


def _read_labels(path: Path, pet: sitk.Image, wanted: set[str] | None) -> OrganSet:
    names, origin = organ_label_names(path)
    if not names:
        raise ScanError(Stage.ORGANS, str(path), "multilabel organ file names no label: put a table beside it "
                                             "(organs.tsv with columns index and name, as BIDS _dseg.tsv) or keep "
                                             "TotalSegmentator's NIfTI header extension")
    by_class: dict[str, int] = {}
    for value, name in sorted(names.items()):
        name = canonical(name)
        if is_organ_class(name):
            if name in by_class:
                raise ScanError(Stage.ORGANS, str(path), f"labels {by_class[name]} and {value} both name organ class "
                                                     f"{name} ({origin}); keep one")
            by_class[name] = value
    collect = _Collector(str(path), by_class, wanted)
    chosen = {name: value for name, value in by_class.items() if collect.wants(name)}
    if not chosen:
        return collect.organs
    values, grid = read_mask_values(path, "organ label map")
    box = box_of(values)
    placed = on_pet_grid(placed_crop(grid, values[box], box), pet) if box is not None else None
    if placed is None:
        for name, value in chosen.items():
            if box is None:
                collect.empty(name, f"{path} [{value} {name}]")
            else:
                collect.put(name, f"{path} [{value} {name}]", None)
        return collect.organs
    origin_zyx, labels, clipped = placed
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.SetComputePerimeter(False)
    shape.Execute(sitk.GetImageFromArray(labels))
    present = set(shape.GetLabels())
    for name, value in sorted(chosen.items()):
        file = f"{path} [{value} {name}]"
        if value not in present:
            if box is not None and _has_value(values, box, value):
                collect.put(name, file, None)
            else:
                collect.empty(name, file)
            continue
        x0, y0, z0, nx, ny, nz = shape.GetBoundingBox(value)
        inside = labels[z0: z0 + nz, y0: y0 + ny, x0: x0 + nx] == value
        start = (origin_zyx[0] + z0, origin_zyx[1] + y0, origin_zyx[2] + x0)
        collect.put(name, file, OrganMask(start, inside, name, file, clipped))
    return collect.organs


def _has_value(values: np.ndarray, box: Box, value: int) -> bool:
    """Does the label map hold ``value`` at all (to tell an empty class from one outside the PET)?"""
    return bool((values[box] == value).any())


def seg_classes(header) -> dict[str, int]:
    """Canonical organ class -> Segment Number of a DICOM SEG's segments that name organs (by Segment Label, else by
    Segmented Property Type code and laterality modifier); other segments are left out."""
    found: dict[str, int] = {}
    for item in header.get("SegmentSequence", []):
        number = int(item.SegmentNumber)
        name = canonical(str(item.get("SegmentLabel", "")))
        if not is_organ_class(name):
            types = item.get("SegmentedPropertyTypeCodeSequence") or []
            code = str(types[0].get("CodeValue", "")) if types else ""
            modifiers = (types[0].get("SegmentedPropertyTypeModifierCodeSequence") or []) if types else []
            name = class_of_code(code, str(modifiers[0].get("CodeValue", "")) if modifiers else "")
        if name and number > 0:
            found.setdefault(name, number)
    return found


def _read_seg(path: Path, pet: sitk.Image, wanted: set[str] | None) -> OrganSet:
    from radiomx.inputs.masks import DicomMaskFile, seg_segment_images  # highdicom: only for SEG organ sources

    file = DicomMaskFile(path)
    if file.kind != "seg":
        raise ScanError(Stage.ORGANS, str(path), "organ segmentations in DICOM must be a SEG (this is an RTSTRUCT); "
                                             "export the organs as a DICOM SEG or as NIfTI files")
    classes = seg_classes(file.header)
    collect = _Collector(str(path), classes, wanted)
    chosen = {number: name for name, number in classes.items() if collect.wants(name)}
    for number, image in seg_segment_images(path, sorted(chosen), stage=Stage.ORGANS):
        collect.binary(chosen[number], f"{path} [segment {number} {chosen[number]}]", sitk.GetArrayFromImage(image),
                       Grid.of(image), pet)
    return collect.organs
