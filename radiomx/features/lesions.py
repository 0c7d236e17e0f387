"""Turn named masks (or a bare label map) into lesions, each with a stable integer ``lesion_id`` and its own mask.

Two modes:

* ``labels`` (default): one lesion per mask (a SEG segment, an RTSTRUCT ROI, a label value); ``lesion_id`` is its
  number (Segment Number, ROI Number, label value).
* ``components``: each mask is split into connected components with 26-connectivity (voxels touching by a face,
  an edge or a corner belong together; ITK's ``fullyConnected``). Components are numbered 1..n in the order
  (source number, raster index of the component's first voxel in z, y, x order), so the id depends only on the
  masks' content: the same masks always give the same ids. A component never spans two masks: a mass inside its
  oedema stays two lesions.

Masks may overlap, so the lesions live in *layers* (``radiomx.inputs.named_masks``): label maps with value =
lesion_id in which lesions never share a voxel; ``LesionMap.labels_of(lesion)`` is the layer a lesion is read
from. ``layer == lesion_id`` is that lesion's binary mask alone, whatever else overlaps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import SimpleITK as sitk

from radiomx.inputs.named_masks import MaskSet, NamedMask
from radiomx.options import LESION_MODES


@dataclass(frozen=True)
class Lesion:
    lesion_id: int
    source_label: int
    voxel_count: int
    #: Index-space bounding box in SimpleITK (x, y, z) order: lower corner and size.
    bbox_index: tuple[int, int, int]
    bbox_size: tuple[int, int, int]
    #: Which layer of its ``LesionMap`` holds the lesion's voxels (value ``lesion_id``).
    layer: int = 0


@dataclass(frozen=True)
class LesionMap:
    """The layers handed to PyRadiomics (value == lesion_id; see the module docstring) and their lesions."""

    layers: tuple[sitk.Image, ...]
    lesions: tuple[Lesion, ...]
    present_labels: tuple[int, ...]
    #: Source number -> the named mask it came from (name and provenance columns of the rows).
    sources: Mapping[int, NamedMask] = field(default_factory=dict)
    mode: str = "labels"

    @property
    def labels(self) -> sitk.Image:
        """The one label map of lesions that share no voxel (a label-map mask, disjoint segments)."""
        if len(self.layers) != 1:
            raise ValueError(f"{len(self.layers)} layers (overlapping lesions): read each with labels_of(lesion)")
        return self.layers[0]

    def labels_of(self, lesion: Lesion) -> sitk.Image:
        return self.layers[lesion.layer]

    def source_columns(self, lesion: Lesion) -> dict[str, str | int | None]:
        """``lesion_name`` and where the lesion came from (segment / ROI number, label value), and its
        ``component_number`` (1.. within its source in components mode, null in labels mode)."""
        number = lesion.source_label
        source = self.sources.get(number) or NamedMask(number, label_value=number)
        return {**source.columns(), "component_number": self.component_numbers.get(lesion.lesion_id)}

    @cached_property
    def component_numbers(self) -> dict[int, int]:
        """lesion_id -> its place (1..) among the components of its source; empty in labels mode."""
        if self.mode != "components":
            return {}
        out: dict[int, int] = {}
        seen: dict[int, int] = {}
        for lesion in self.lesions:  # in lesion_id order, which is (source, first voxel) order
            seen[lesion.source_label] = seen.get(lesion.source_label, 0) + 1
            out[lesion.lesion_id] = seen[lesion.source_label]
        return out


def layers_of(labels: sitk.Image | Sequence[sitk.Image]) -> tuple[sitk.Image, ...]:
    """One label map or a sequence of layers, as a tuple of layers."""
    return (labels,) if isinstance(labels, sitk.Image) else tuple(labels)


def _stats(label_image: sitk.Image) -> dict[int, tuple[int, tuple, tuple]]:
    """Voxel count and bounding box of every non-zero label, in one pass over the volume."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.SetComputePerimeter(False)
    stats.Execute(label_image)
    out = {}
    for label in stats.GetLabels():
        box = stats.GetBoundingBox(label)
        out[int(label)] = (int(stats.GetNumberOfPixels(label)), tuple(box[:3]), tuple(box[3:]))
    return out


def split_lesions(mask: sitk.Image, mode: str = "labels", only: tuple[int, ...] | None = None) -> LesionMap:
    """Split an unsigned-integer label map into lesions. ``only`` restricts to those source labels (absent
    ones are reported by the caller through ``present_labels``)."""
    if mode not in LESION_MODES:
        raise ValueError(f"unknown lesion mode {mode!r}; use one of {LESION_MODES}")
    per_label = _stats(mask)
    present = tuple(sorted(per_label))
    wanted = [lab for lab in present if only is None or lab in only]
    if mode == "labels":
        if only is not None and set(wanted) != set(present):
            keep = sitk.ChangeLabel(mask, {lab: 0 for lab in present if lab not in wanted})
        else:
            keep = mask
        lesions = tuple(Lesion(lab, lab, *per_label[lab]) for lab in wanted)
        return LesionMap((keep,), lesions, present, mode=mode)

    values = sitk.GetArrayViewFromImage(mask)
    relabelled = np.zeros(values.shape, dtype=np.uint32)
    next_id = 1
    lesions: list[Lesion] = []
    for lab in wanted:
        binary = sitk.Equal(mask, lab)
        components = sitk.ConnectedComponent(binary, True)
        comp = sitk.GetArrayViewFromImage(components)
        flat = comp.ravel()
        ids = np.unique(flat)
        ids = ids[ids != 0]
        # Order components by their first voxel in raster (z, y, x) order: independent of ITK's internal numbering.
        firsts = {int(c): int(np.argmax(flat == c)) for c in ids}
        for comp_id in sorted(firsts, key=firsts.get):
            relabelled[comp == comp_id] = next_id
            next_id += 1
    label_image = sitk.GetImageFromArray(relabelled)
    label_image.CopyInformation(mask)
    stats = _stats(label_image)
    source = sitk.GetArrayViewFromImage(mask).ravel()
    flat_new = relabelled.ravel()
    for lesion_id in sorted(stats):
        first = int(np.argmax(flat_new == lesion_id))
        lesions.append(Lesion(lesion_id, int(source[first]), *stats[lesion_id]))
    return LesionMap((label_image,), tuple(lesions), present, mode=mode)


def wanted_per_layer(masks: MaskSet, only: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    """The source numbers to split in each layer: the chosen masks, restricted to ``only`` (``--label``)."""
    return [tuple(n for n in masks.numbers_in(i) if only is None or n in only) for i in range(len(masks.layers))]


def merge_layers(parts: Sequence[LesionMap], mode: str, present: tuple[int, ...],
                 sources: Mapping[int, NamedMask]) -> tuple[LesionMap, list[dict[int, int]]]:
    """One LesionMap from the per-layer splits of one scan, and per part the map old lesion_id -> new.

    ``labels`` mode: ids are source numbers, unique across layers. ``components`` mode: each layer numbered its
    components 1..k in (source, first voxel) order; a source lives in one layer, so sorting every component by
    (source, its id in its layer) gives the order the module docstring promises, and each layer is relabelled."""
    kept = [(i, part) for i, part in enumerate(parts) if part.lesions]
    if mode == "labels" or len(kept) <= 1:
        renumber = [{lesion.lesion_id: lesion.lesion_id for lesion in part.lesions} for part in parts]
    else:
        order = sorted((lesion.source_label, lesion.lesion_id, i) for i, part in kept for lesion in part.lesions)
        renumber = [{} for _ in parts]
        for new_id, (_, old_id, i) in enumerate(order, start=1):
            renumber[i][old_id] = new_id
    layers, lesions = [], []
    for new_layer, (i, part) in enumerate(kept):
        mapping = renumber[i]
        layer = part.layers[0]
        if any(old != new for old, new in mapping.items()):
            lookup = np.zeros(max(mapping) + 1, dtype=np.uint32)
            lookup[list(mapping)] = list(mapping.values())
            relabelled = sitk.GetImageFromArray(lookup[sitk.GetArrayViewFromImage(layer)])
            relabelled.CopyInformation(layer)
            layer = relabelled
        layers.append(layer)
        lesions += [replace(lesion, lesion_id=mapping[lesion.lesion_id], layer=new_layer) for lesion in part.lesions]
    lesions.sort(key=lambda lesion: lesion.lesion_id)
    if not layers:  # no lesion: one empty layer, so that every consumer sees a label map
        layers = [empty_like(parts[0].layers[0])]
    return LesionMap(tuple(layers), tuple(lesions), present, dict(sources), mode), renumber


def empty_like(image: sitk.Image) -> sitk.Image:
    empty = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(image)
    return empty


def split_layer(layer: sitk.Image, mode: str, numbers: tuple[int, ...]) -> LesionMap:
    """One layer's lesions: only ``numbers`` (a layer without any chosen mask is not even read)."""
    return split_lesions(layer, mode, numbers) if numbers else LesionMap((layer,), (), (), mode=mode)


def split_masks(masks: MaskSet, mode: str = "labels", only: tuple[int, ...] | None = None) -> LesionMap:
    """Split a scan's named masks into lesions (module docstring); ``only`` restricts to those numbers."""
    if mode not in LESION_MODES:
        raise ValueError(f"unknown lesion mode {mode!r}; use one of {LESION_MODES}")
    wanted = wanted_per_layer(masks, only)
    parts = [split_layer(layer, mode, numbers) for layer, numbers in zip(masks.layers, wanted, strict=True)]
    return merge_layers(parts, mode, masks.present, masks.by_number)[0]
