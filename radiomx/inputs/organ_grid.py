"""A label map on its own grid (an organ segmentation on the CT's), sampled at the PET's voxel centres by nearest
neighbour, from its z slices read one after the other.

Why slices: a TotalSegmentator label map is a whole CT volume (85 MB for 512 x 512 x 327 uint8), mostly zeros, read
to be sampled at about 12 M PET voxel centres. Held whole, its fresh memory costs more than its inflating
(``radiomx.inputs.nifti.SliceStream``). Each PET plane needs only the few CT slices its voxel centres fall between,
so the slices are gathered into slabs of a few MB and each slab is resampled by ITK onto the PET planes it serves.

The result equals ``sitk.Resample`` of the whole volume onto the PET grid (nearest neighbour, 0 outside) voxel for
voxel: a PET plane's slab holds every CT slice its centres can round to, with one slice of margin each side, and a
centre's nearest voxel is found by ITK's own arithmetic (``tests/test_organ_grid.py`` checks random grids, mirrored
and oblique directions, against the whole-volume resample). The one difference possible is a tie: a centre within
float rounding of halfway between two CT voxel centres, or of the CT's outer face, rounds either way (a different
slab or box origin changes the last bit of ITK's sums). On grids that line up (PET voxel faces on CT voxel faces,
e.g. 3.90625 mm = 4 x 0.9765625 mm) ties are systematic and whole columns of a boundary can flip; nearest neighbour
has no answer there, the whole-volume resample's choice is no more right, and every run of radiomx makes the same
choice for the same files. The reader before this one (a crop of the label map resampled whole) differed from the
whole-volume resample at ties in the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import SimpleITK as sitk

#: Most CT slices gathered before a slab is resampled (when no single PET plane needs more): 24 slices of 512 x 512
#: uint8 are 6 MB, which stays in cache.
SLAB_SLICES = 24


@dataclass(frozen=True)
class Sampled:
    """A label map on the PET grid: ``labels`` (z, y, x) is the box of PET voxels whose centres lie within the map's
    extent, its first voxel at PET index ``origin``; None when no PET voxel centre does. ``present`` holds every
    non-zero value anywhere in the map, in or out of the PET's field of view (a one-class mask: {1} or nothing), to
    tell a class outside the field of view from one the map lacks."""

    origin: tuple[int, int, int]
    labels: np.ndarray | None
    present: frozenset[int] = frozenset()


@dataclass(frozen=True)
class LabelGrid:
    """Where a label map's voxels lie: its size (x, y, z) and ITK's origin, spacing and direction."""

    size: tuple[int, int, int]
    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image) -> LabelGrid:
        """The grid of a SimpleITK image or of an ``ImageFileReader`` that read a header."""
        return cls(tuple(image.GetSize()), tuple(image.GetOrigin()), tuple(image.GetSpacing()),  # type: ignore[arg-type]
                   tuple(image.GetDirection()))

    @cached_property
    def probe(self) -> sitk.Image:
        """A one-voxel image with this grid's geometry: ITK's index <-> point arithmetic without the voxels."""
        image = sitk.Image([1, 1, 1], sitk.sitkUInt8)
        image.SetOrigin(self.origin)
        image.SetSpacing(self.spacing)
        image.SetDirection(self.direction)
        return image


def pet_box(grid: LabelGrid, pet: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The PET voxels (z, y, x index range ``[lo, hi)``) whose centres lie within ``grid``'s extent (its voxels'
    outer faces), clipped to the PET grid; empty on some axis when none does."""
    probe, size = grid.probe, grid.size
    corners = [probe.TransformContinuousIndexToPhysicalPoint((x, y, z)) for x in (-0.5, size[0] - 0.5)
               for y in (-0.5, size[1] - 0.5) for z in (-0.5, size[2] - 0.5)]
    index = np.array([pet.TransformPhysicalPointToContinuousIndex(c) for c in corners])[:, ::-1]  # (z, y, x)
    lo, hi = np.ceil(index.min(axis=0) - 1e-9).astype(int), np.floor(index.max(axis=0) + 1e-9).astype(int) + 1
    return np.maximum(lo, 0), np.minimum(hi, np.array(pet.GetSize()[::-1]))


def _slices_needed(grid: LabelGrid, pet: sitk.Image, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per PET plane of the box, the label map's slices ``[first, last]`` it can take a value from: those the
    continuous z indices of the plane's box corners round to, one more each side (for float rounding), clipped to
    the map; rows (plane, first, last). The PET index -> map index mapping is affine: taken from ITK at four points,
    then applied to every plane's corners at once."""
    probe = grid.probe

    def to_map(index_xyz: tuple[int, int, int]) -> np.ndarray:
        return np.array(probe.TransformPhysicalPointToContinuousIndex(pet.TransformIndexToPhysicalPoint(index_xyz)))

    base = to_map((0, 0, 0))
    axes = np.stack([to_map(unit) - base for unit in ((1, 0, 0), (0, 1, 0), (0, 0, 1))])  # rows: PET x, y, z steps
    planes = np.arange(int(lo[0]), int(hi[0]))
    corners = np.array([(x, y) for x in (lo[2], hi[2] - 1) for y in (lo[1], hi[1] - 1)], dtype=np.float64)
    in_plane = base[2] + corners[:, 0] * axes[0, 2] + corners[:, 1] * axes[1, 2]  # map z at each corner, plane 0
    zs = in_plane[None, :] + planes[:, None] * axes[2, 2]
    first = np.maximum(np.floor(zs.min(axis=1) + 0.5).astype(int) - 1, 0)
    last = np.minimum(np.floor(zs.max(axis=1) + 0.5).astype(int) + 1, grid.size[2] - 1)
    return np.stack([planes, first, last], axis=1)


@dataclass
class _Batch:
    """Consecutive PET planes ``[planes[0], planes[1])`` served by one slab of label slices ``[first, last]``."""

    planes: tuple[int, int]
    first: int
    last: int


def _batches(grid: LabelGrid, pet: sitk.Image, lo: np.ndarray, hi: np.ndarray) -> list[_Batch]:
    """The PET planes of the box grouped into batches of consecutive planes whose slabs hold at most SLAB_SLICES
    label slices (twice what one plane needs when that is more), ordered by their slabs' last slice (the order
    the stream completes them)."""
    # planes whose centres all lie beyond the map's slices get zeros
    needed = [(int(p), int(f), int(la)) for p, f, la in _slices_needed(grid, pet, lo, hi) if f <= la]
    if needed and needed[0][2] > needed[-1][2]:
        needed.reverse()  # the PET's z runs against the map's: stream order is descending planes
    batches: list[_Batch] = []
    for plane, first, last in needed:
        current = batches[-1] if batches else None
        limit = max(SLAB_SLICES, 2 * (last - first + 1))  # an oblique plane alone may need more than a slab
        if current is not None and max(last, current.last) - min(first, current.first) < limit:
            current.planes = (min(current.planes[0], plane), max(current.planes[1], plane + 1))
            current.first, current.last = min(first, current.first), max(last, current.last)
        else:
            batches.append(_Batch((plane, plane + 1), first, last))
    return sorted(batches, key=lambda b: b.last)


def sample_on_pet_grid(slices: Iterable[np.ndarray], grid: LabelGrid, pet: sitk.Image, labelled: bool) -> Sampled:
    """Sample the label map whose z slices (each (y, x) integer labels >= 0, first to last) ``slices`` yields at
    ``pet``'s voxel centres (module docstring). ``labelled``: keep the values (a multilabel map) rather than 0/1
    (a one-class mask: sampled as stored, then 0/1, which nearest neighbour makes the same). Only slices with a
    label are held, and a slab without one is not resampled: a one-class file is mostly such slabs."""
    lo, hi = pet_box(grid, pet)
    inside = bool((hi > lo).all())
    pending = _batches(grid, pet, lo, hi) if inside else []
    keep_from = min((b.first for b in pending), default=0)
    out: np.ndarray | None = None
    dtype = np.dtype(np.uint8)
    present: set[int] = set()
    held: dict[int, np.ndarray] = {}
    for index, values in enumerate(slices):
        dtype = values.dtype
        labelled_slice = bool(values.size) and values.max() > 0  # labels are >= 0; max is 4x faster than any
        if labelled_slice:
            present.update(_values_in(values) if labelled else (1,))
        if pending and labelled_slice and index >= keep_from:
            held[index] = values
        while pending and pending[0].last == index:
            batch = pending.pop(0)
            if any(batch.first <= k <= batch.last for k in held):
                if out is None:
                    out = np.zeros(tuple(int(v) for v in hi - lo), dtype=dtype)
                _resample_batch(batch, held, grid, pet, lo, out)
            keep_from = min((b.first for b in pending), default=index + 1)
            held = {k: v for k, v in held.items() if k >= keep_from}
    if out is None and inside:
        out = np.zeros(tuple(int(v) for v in hi - lo), dtype=dtype)
    if out is not None and not labelled:
        out = (out != 0).view(np.uint8)
    return Sampled((int(lo[0]), int(lo[1]), int(lo[2])), out, frozenset(present))


def _values_in(values: np.ndarray) -> set[int]:
    """The distinct non-zero values of a slice, exactly, from its run starts: every value's first run starts at the
    first element or where the value changes (a third of ``np.unique``'s time, which sorts the whole slice)."""
    flat = values.ravel()
    found = set(np.unique(flat[1:][flat[1:] != flat[:-1]]).tolist())
    found.add(int(flat[0]))
    found.discard(0)
    return found


def _resample_batch(batch: _Batch, held: dict[int, np.ndarray], grid: LabelGrid, pet: sitk.Image,
                    lo: np.ndarray, out: np.ndarray) -> None:
    """Resample one slab onto its PET planes and write them into ``out`` (the PET box from PET index ``lo``). The
    slab is cut to the rows and columns where its held slices have labels (one organ of a CT slice is a small part
    of it); its slices without a label, and all beyond the cut, are zeros, as they are in the file."""
    inside = {k - batch.first: v for k, v in held.items() if batch.first <= k <= batch.last}
    rows = np.flatnonzero(np.logical_or.reduce([v.max(axis=1) > 0 for v in inside.values()]))
    cols = np.flatnonzero(np.logical_or.reduce([v.max(axis=0) > 0 for v in inside.values()]))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    some = next(iter(inside.values()))
    slab = np.zeros((batch.last - batch.first + 1, y1 - y0, x1 - x0), dtype=some.dtype)
    for k, values in inside.items():
        slab[k] = values[y0:y1, x0:x1]
    image = sitk.GetImageFromArray(slab)
    image.SetSpacing(grid.spacing)
    image.SetDirection(grid.direction)
    image.SetOrigin(grid.probe.TransformIndexToPhysicalPoint((x0, y0, batch.first)))
    first, stop = batch.planes
    size = [out.shape[2], out.shape[1], stop - first]
    origin = pet.TransformIndexToPhysicalPoint((int(lo[2]), int(lo[1]), first))
    sampled = sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor, origin, pet.GetSpacing(),
                            pet.GetDirection(), 0, image.GetPixelID())
    out[first - int(lo[0]): stop - int(lo[0])] = sitk.GetArrayViewFromImage(sampled)
