"""Turn a label map into lesions, each with a stable integer ``lesion_id``.

Two modes:

* ``labels`` (default): one lesion per non-zero label value; ``lesion_id`` is the label value.
* ``components``: each label (a binary mask is label 1) is split into connected components with
  26-connectivity (voxels touching by a face, an edge or a corner belong together; ITK's ``fullyConnected``).
  Components are numbered 1..n in the order (source label, raster index of the component's first voxel in
  z, y, x order), so the id depends only on the mask's content: the same mask always gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radiomx.options import LESION_MODES


@dataclass(frozen=True)
class Lesion:
    lesion_id: int
    source_label: int
    voxel_count: int
    #: Index-space bounding box in SimpleITK (x, y, z) order: lower corner and size.
    bbox_index: tuple[int, int, int]
    bbox_size: tuple[int, int, int]


@dataclass(frozen=True)
class LesionMap:
    """The label image handed to PyRadiomics (label value == lesion_id) and its lesions."""

    labels: sitk.Image
    lesions: tuple[Lesion, ...]
    present_labels: tuple[int, ...]


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


def split_lesions(mask: sitk.Image, mode: str = "labels", only_labels: tuple[int, ...] | None = None) -> LesionMap:
    """Split an unsigned-integer label map into lesions. ``only_labels`` restricts to those source labels (absent
    ones are reported by the caller through ``present_labels``)."""
    if mode not in LESION_MODES:
        raise ValueError(f"unknown lesion mode {mode!r}; use one of {LESION_MODES}")
    per_label = _stats(mask)
    present = tuple(sorted(per_label))
    wanted = [lab for lab in present if only_labels is None or lab in only_labels]
    if mode == "labels":
        if only_labels is not None and set(wanted) != set(present):
            keep = sitk.ChangeLabel(mask, {lab: 0 for lab in present if lab not in wanted})
        else:
            keep = mask
        lesions = tuple(Lesion(lab, lab, *per_label[lab]) for lab in wanted)
        return LesionMap(keep, lesions, present)

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
    return LesionMap(label_image, tuple(lesions), present)
