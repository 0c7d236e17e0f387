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

Cost: a TotalSegmentator file is a whole CT volume, mostly zeros (~85 MB inflated for 512 x 512 x 327). A plain
NIfTI is read one z slice at a time (``radiomx.inputs.nifti.SliceStream``: every gzip member's CRC still checked)
and sampled slab by slab onto the PET grid (``radiomx.inputs.organ_grid``: ITK's whole-volume resample, voxel for
voxel), so the inflated volume is never held; other formats are read whole by ITK and sampled the same way. Each
class is kept as a boolean crop of the PET grid (``OrganMask``). An organ without a voxel, or one that no PET voxel
centre falls in, has no mask; ``OrganSet.problems`` says why, for a warning row. Measured:
``benchmarks/bench_organs.py``, docs/organs.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.inputs import nifti
from radiomx.inputs.imaging import read_volume
from radiomx.inputs.organ_grid import LabelGrid, Sampled, sample_on_pet_grid
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


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Errors met reading an organ file, as a ScanError of stage ``organs`` naming it."""
    try:
        yield
    except ScanError as exc:
        raise ScanError(Stage.ORGANS, exc.path, exc.detail) from exc
    except OSError as exc:
        raise ScanError(Stage.ORGANS, str(path), f"{what} cannot be read ({exc.strerror}); check permissions") from exc


def _file_slices(path: Path, what: str) -> tuple[Iterator[np.ndarray], LabelGrid]:
    """A mask file's z slices as checked integer labels, one at a time, and its grid: a plain NIfTI
    (TotalSegmentator's output) streamed from the file (module docstring), other formats read whole by ITK."""
    stream = None
    if path.name.lower().endswith((".nii", ".nii.gz")) and path.is_file() and path.stat().st_size > 0:
        stream = nifti.slice_stream(path, what)
    if stream is not None:
        return (_labels(values, path) for values in stream.slices()), LabelGrid.of(stream.reader)
    image = read_volume(path, what)

    def planes() -> Iterator[np.ndarray]:
        for values in sitk.GetArrayViewFromImage(image):  # the view lives as long as ``image`` here
            yield _labels(values, path)

    return planes(), LabelGrid.of(image)


def sample_file(path: Path, pet: sitk.Image, labelled: bool, what: str) -> Sampled:
    """A mask file sampled on ``pet``'s grid (``radiomx.inputs.organ_grid``); ``labelled``: keep the label values
    (a multilabel file). A ScanError (stage ``organs``) names the file."""
    with _reading(path, what):
        slices, grid = _file_slices(path, what)
        return sample_on_pet_grid(slices, grid, pet, labelled)


def sample_image(image: sitk.Image, pet: sitk.Image, name: str) -> Sampled:
    """A one-class mask already in memory (0/non-zero, any grid of the patient frame) sampled on ``pet``'s grid."""
    planes = (_labels(values, Path(name)) for values in sitk.GetArrayViewFromImage(image))
    return sample_on_pet_grid(planes, LabelGrid.of(image), pet, False)


def _trimmed(name: str, file: str, origin: tuple[int, int, int], voxels: np.ndarray) -> OrganMask | None:
    box = box_of(voxels)
    if box is None:
        return None
    start = tuple(o + s.start for o, s in zip(origin, box, strict=True))
    return OrganMask(start, np.ascontiguousarray(voxels[box]), name, file)  # type: ignore[arg-type]


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

    def binary(self, name: str, file: str, sampled: Sampled) -> None:
        """One class's mask (0/1) sampled on the PET grid, trimmed to its box."""
        if not sampled.present:
            self.empty(name, file)
            return
        mask = _trimmed(name, file, sampled.origin, sampled.labels != 0) if sampled.labels is not None else None
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
    if not source.path.exists():
        declared = f" (declared by {source.found_by})" if source.found_by else ""
        raise ScanError(Stage.ORGANS, str(source.path),
                        f"organ segmentation {source.path.name} does not exist{declared}; check the path")
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
        collect.binary(name, f"{source} [{name}]" if source else name, sample_image(image, pet, source or name))
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
            collect.binary(name, str(path), sample_file(path, pet, False, f"organ mask {name}"))
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
    sampled = sample_file(path, pet, True, "organ label map")
    labels = sampled.labels
    present: set[int] = set()
    if labels is not None and labels.any():
        shape = sitk.LabelShapeStatisticsImageFilter()
        shape.SetComputePerimeter(False)
        shape.Execute(sitk.GetImageFromArray(labels))
        present = set(shape.GetLabels())
    for name, value in sorted(chosen.items()):
        file = f"{path} [{value} {name}]"
        if value not in present:
            if value in sampled.present:
                collect.put(name, file, None)
            else:
                collect.empty(name, file)
            continue
        x0, y0, z0, nx, ny, nz = shape.GetBoundingBox(value)
        inside = labels[z0: z0 + nz, y0: y0 + ny, x0: x0 + nx] == value
        start = (sampled.origin[0] + z0, sampled.origin[1] + y0, sampled.origin[2] + x0)
        collect.put(name, file, OrganMask(start, inside, name, file))
    return collect.organs


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
        collect.binary(chosen[number], f"{path} [segment {number} {chosen[number]}]",
                       sample_image(image, pet, str(path)))
    return collect.organs
