"""Lesion pairing across two tracers by mask overlap, for scans the cohort declares to share a frame of reference.

Why the masks are re-read here (and only here): overlap needs lesion voxels, which OUT does not hold; a label-map
mask is small (a whole-body UInt8 mask is ~12 MB, gzip far less) and is read only when its content hash changed
since the pairs were last computed, so a rerun re-reads nothing. PET and CT images are never read.

Method: B's label map is resampled onto A's grid by nearest neighbour in patient coordinates (the declaration says
the coordinates agree); Dice(i, j) = 2 |A_i ∩ B_j| / (|A_i| + |B_j|), counted in A's voxels. Pairs are chosen one
to one, greedily by decreasing Dice (ties: lowest ids), among lesion pairs that overlap; every other lesion is
"only A" or "only B". Only lesions with a stored row take part (the ids must be reproducible from the mask, which
is checked against the stored mask sha256 and the stored voxel counts). Label-map masks (NIfTI/NRRD/MHA) only:
DICOM SEG/RTSTRUCT masks need the image grid to rasterize, so those scans say "unavailable" instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError, one_line
from radiomx.features.lesions import split_lesions
from radiomx.fingerprint import content_sha256
from radiomx.inputs.imaging import as_label_map
from radiomx.inputs.paths import has_image_suffix


class PairingUnavailable(Exception):
    """Why lesions of a scan cannot be paired (one line, shown in the compare table)."""


@dataclass
class Pairing:
    #: (lesion_id_a or None, lesion_id_b or None, dice or None)
    pairs: list[tuple[int | None, int | None, float | None]] = field(default_factory=list)
    dice_union: float | None = None


def lesion_map(mask: tuple[Path | None, str], state: dict, lesions: list[dict]) -> sitk.Image:
    """The scan's label map (label == lesion_id) restricted to the lesions with a stored row. ``mask``: the file as
    discovery finds it now (None when the scan is not found) and its name relative to the cohort, for messages."""
    path, relative = mask
    if path is None or not path.exists():
        raise PairingUnavailable(f"mask {relative or '(none)'} not found under the cohort")
    if path.is_dir() or not has_image_suffix(path):
        raise PairingUnavailable(f"mask {relative} is DICOM (SEG/RTSTRUCT): pairing needs a label-map mask")
    if content_sha256(path) != state.get("mask_sha256"):
        raise PairingUnavailable(f"mask {relative} changed since extraction: rerun extract")
    try:
        mask = as_label_map(sitk.ReadImage(str(path)), path)
    except (RuntimeError, ScanError) as exc:
        raise PairingUnavailable(f"mask {relative} unreadable ({one_line(exc)})") from exc
    stored = {int(r["lesion_id"]): (int(r["source_label"]), int(r["voxel_count"])) for r in lesions}
    for mode in ("labels", "components"):
        split = split_lesions(mask, mode)
        found = {les.lesion_id: (les.source_label, les.voxel_count) for les in split.lesions}
        if all(found.get(i) == v for i, v in stored.items()):
            labels = split.labels
            values = sitk.GetArrayFromImage(labels)
            values[~np.isin(values, list(stored))] = 0
            kept = sitk.GetImageFromArray(values.astype(np.uint32))
            kept.CopyInformation(labels)
            return kept
    raise PairingUnavailable(f"lesion ids of mask {relative} not reproducible from the stored rows")


def pair_lesions(map_a: sitk.Image, map_b: sitk.Image) -> Pairing:
    """Greedy one-to-one pairing by Dice on A's grid (see module docstring)."""
    on_a = sitk.Resample(map_b, map_a, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt32)
    a = sitk.GetArrayViewFromImage(map_a).ravel().astype(np.int64)
    b = sitk.GetArrayViewFromImage(on_a).ravel().astype(np.int64)
    ids_a, size_a = np.unique(a[a > 0], return_counts=True)
    ids_b_all = np.unique(sitk.GetArrayViewFromImage(map_b))
    ids_b_all = [int(i) for i in ids_b_all if i > 0]
    ids_b, size_b = np.unique(b[b > 0], return_counts=True)
    sizes_a, sizes_b = dict(zip(ids_a.tolist(), size_a.tolist(), strict=True)), dict(
        zip(ids_b.tolist(), size_b.tolist(), strict=True))
    both = (a > 0) & (b > 0)
    overlaps: list[tuple[float, int, int]] = []
    if both.any():
        pairs, counts = np.unique(np.stack([a[both], b[both]]), axis=1, return_counts=True)
        for (i, j), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            overlaps.append((2.0 * n / (sizes_a[i] + sizes_b[j]), i, j))
    overlaps.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    result = Pairing()
    for dice, i, j in overlaps:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            result.pairs.append((i, j, dice))
    result.pairs += [(int(i), None, None) for i in ids_a.tolist() if i not in used_a]
    result.pairs += [(None, j, None) for j in ids_b_all if j not in used_b]
    total = int((a > 0).sum() + (b > 0).sum())
    result.dice_union = 2.0 * int(both.sum()) / total if total else None
    return result
