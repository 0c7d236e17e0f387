"""Threshold VOIs: lesion masks drawn as generous volumes of interest, cut to the voxels above a threshold before
any index or feature is computed (PyRadiomics gets the thresholded mask too).

Methods (parameter file ``radiomx: voi:``; sources in docs/lesions-and-indices.md):

* ``relative``: voxels >= fraction x the lesion's own SUVmax (0.41: EANM guideline, Boellaard et al. 2015);
* ``absolute``: voxels >= a fixed SUV (2.5: the common FDG MTV threshold, e.g. Barrington & Meignan 2019);
* ``percist``: voxels >= 1.5 x liver SUVmean + 2 x liver SUVsd (Wahl et al. 2009, PERCIST 1.0), from the scan's
  liver reference region.

"The lesion" of a relative threshold is what the mask draws as one lesion: one mask (a label, segment or ROI;
``--lesions labels``) or one 26-connected component of a mask (``--lesions components``). Overlapping masks are
thresholded each on its own voxels (a mass and its oedema each at their own SUVmax). Components mode splits again
*after* thresholding, so a VOI whose hot voxels fall apart becomes several lesions, each carrying its VOI's
threshold. The comparison is ``>=`` throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.features.lesions import Lesion, LesionMap, merge_layers, split_layer, split_lesions, wanted_per_layer
from radiomx.features.references import RegionStats, percist_threshold
from radiomx.inputs.named_masks import MaskSet
from radiomx.params.paramset import VoiSetting
from radiomx.vocabulary import Stage

#: Why a percist scan without a liver region cannot go on (the failures row's message, stage ``voi``).
PERCIST_NEEDS_LIVER = ("percist VOI threshold (1.5 x liver SUVmean + 2 x SD) needs the liver reference region; add "
                       "ref-liver.nii.gz to the scan folder (or a ref-liver segment), or choose another radiomx.voi "
                       "method")


@dataclass(frozen=True)
class VoiResult:
    """The thresholded lesions, each lesion's threshold (SUV), and VOIs that kept no voxel."""

    lesion_map: LesionMap
    thresholds: dict[int, float] = field(default_factory=dict)
    #: One message per VOI with no voxel at or above its threshold (those VOIs yield no lesion).
    emptied: tuple[str, ...] = ()


def _box(lesion: Lesion) -> tuple[slice, slice, slice]:
    (x0, y0, z0), (nx, ny, nz) = lesion.bbox_index, lesion.bbox_size
    return slice(z0, z0 + nz), slice(y0, y0 + ny), slice(x0, x0 + nx)


def threshold_lesions(image: sitk.Image, mask: sitk.Image, setting: VoiSetting, mode: str,
                      only: tuple[int, ...] | None, fixed_threshold: float | None = None) -> VoiResult:
    """Split ``mask`` into VOIs, keep each VOI's voxels >= its threshold, split the result into lesions.

    ``fixed_threshold`` is the SUV of ``absolute`` (from the setting) or ``percist`` (computed by the caller from
    the liver region); ``relative`` computes one threshold per VOI.
    """
    vois = split_lesions(mask, mode, only)
    values = sitk.GetArrayViewFromImage(image)
    voi_ids = sitk.GetArrayViewFromImage(vois.labels)
    kept = np.array(sitk.GetArrayViewFromImage(mask))  # source labels, so that source_label survives the re-split
    per_voi: dict[int, float] = {}
    emptied = []
    threshold = setting.threshold if setting.method == "absolute" else fixed_threshold
    for voi in vois.lesions:
        box = _box(voi)
        inside = voi_ids[box] == voi.lesion_id
        box_values = values[box]
        level = float(setting.fraction * box_values[inside].max()) if setting.method == "relative" else threshold
        assert level is not None
        drop = inside & (box_values < level)
        kept[box][drop] = 0
        per_voi[voi.lesion_id] = level
        if drop.sum() == inside.sum():
            emptied.append(f"source label {voi.source_label}: no voxel >= {level:.4g} SUV "
                           f"({setting.method} threshold); this VOI gives no lesion")
    thresholded = sitk.GetImageFromArray(kept)
    thresholded.CopyInformation(mask)
    lesions = split_lesions(thresholded, mode, only)
    final_ids = sitk.GetArrayViewFromImage(lesions.labels)
    thresholds = {}
    for lesion in lesions.lesions:
        box = _box(lesion)
        first = np.argwhere(final_ids[box] == lesion.lesion_id)[0]
        thresholds[lesion.lesion_id] = per_voi[int(voi_ids[box][tuple(first)])]
    # ``present_labels`` describe the mask as drawn (for --label checks), not what survived the threshold.
    return VoiResult(LesionMap(lesions.layers, lesions.lesions, vois.present_labels, mode=mode), thresholds,
                     tuple(emptied))


def scan_lesions(image: sitk.Image, mask: MaskSet | sitk.Image, setting: VoiSetting, mode: str,
                 only: tuple[int, ...] | None, unit: str, stats: dict[str, RegionStats]) -> VoiResult:
    """The lesions of one scan as every index, feature and QC outline sees them: the masks split as drawn (CT, or
    ``method: none``), else their VOIs thresholded on the SUV image, layer by layer (masks that overlap are
    thresholded each on its own voxels), merged into one numbering (``features.lesions.merge_layers``).

    The one place that decides, so that ``radiomx qc`` redraws the lesions the extraction measured (it passes the
    reference statistics stored in the scan's state row; the worker passes those it has just computed).
    Raises ScanError (stage ``voi``, no path: the caller names the mask) for percist without a liver region.
    """
    masks = mask if isinstance(mask, MaskSet) else MaskSet.of_label_map(mask)
    wanted = wanted_per_layer(masks, only)
    if unit != "SUVbw" or setting.method == "none":
        parts = [split_layer(layer, mode, numbers) for layer, numbers in zip(masks.layers, wanted, strict=True)]
        return VoiResult(merge_layers(parts, mode, masks.present, masks.by_number)[0])
    fixed = percist_threshold(stats) if setting.method == "percist" else None
    if setting.method == "percist" and fixed is None:
        raise ScanError(Stage.VOI, "", PERCIST_NEEDS_LIVER)
    results = [threshold_lesions(image, layer, setting, mode, numbers, fixed) if numbers
               else VoiResult(split_layer(layer, mode, numbers))
               for layer, numbers in zip(masks.layers, wanted, strict=True)]
    merged, renumber = merge_layers([r.lesion_map for r in results], mode, masks.present, masks.by_number)
    thresholds = {renumber[i][old]: level for i, r in enumerate(results) for old, level in r.thresholds.items()}
    return VoiResult(merged, thresholds, tuple(m for r in results for m in r.emptied))


def voi_columns(setting: VoiSetting, threshold: float | None) -> dict[str, str | float]:
    """``voi_method``, ``voi_threshold_suv`` (the SUV this lesion was cut at; null for none) and ``voi_fraction``
    (null unless relative), recorded in every PET row."""
    nan = float("nan")
    return {"voi_method": setting.method,
            "voi_threshold_suv": float(threshold) if setting.method != "none" and threshold is not None else nan,
            "voi_fraction": float(setting.fraction) if setting.method == "relative" and setting.fraction else nan}
