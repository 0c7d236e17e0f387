"""``radiomx.features.replays.filter_reach``: the crop margins for the LoG (ITK's recursive Gaussian) and Wavelet
(pywt's ``swtn``) image types. A lesion's voxels filtered on its crop must equal the same voxels of the filtered full
volume, by PyRadiomics' own filter calls, with the lesion anywhere (interior, at a border, where the wavelet wraps).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import imageoperations

from radiomx.features.crop import plan_for
from radiomx.features.replays.filter_reach import LOG_DECAY_PER_SIGMA, log_reach, wavelet_reach

from ..test_crop_equivalence import SPACING


def test_log_reach_follows_the_derivation() -> None:
    """Reach grows with sigma/spacing (IIR decay to 2**-64); never below PyRadiomics' own size check."""
    assert log_reach(3.0, 4.0) < log_reach(3.0, 2.0) < log_reach(3.0, 1.0)
    assert log_reach(2.0, 2.0) == math.ceil(64 * math.log(2) / LOG_DECAY_PER_SIGMA) + 1
    assert log_reach(0.1, 4.0) >= math.ceil(0.1 / 4.0) + 1


def test_wavelet_reach_adds_up_over_the_levels() -> None:
    import pywt

    taps = pywt.Wavelet("coif1").dec_len - 1
    assert wavelet_reach({}) == 2 * taps
    assert wavelet_reach({"level": 2, "wavelet": "sym2"}) == 3 * (pywt.Wavelet("sym2").dec_len - 1)
    assert wavelet_reach({"start_level": 1, "level": 2}) == 4 * taps


def _body(shape_zyx=(48, 44, 52), seed=5) -> sitk.Image:
    rng = np.random.default_rng(seed)
    values = rng.gamma(3.0, 1.0, shape_zyx).astype(np.float32)
    values[10:30, 12:30, 8:40] += 6.0  # a bright region whose edge sits inside some margins
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(SPACING)
    return image


#: Boxes (x, y, z index, size): interior, touching x = 0, touching z = max.
BOXES = [((20, 18, 20), (6, 5, 4)), ((0, 15, 10), (5, 6, 5)), ((30, 20, 44), (5, 5, 4))]


def _filtered(name: str, image: sitk.Image, settings: dict) -> dict[str, np.ndarray]:
    mask = sitk.Image(image.GetSize(), sitk.sitkUInt32)
    mask.CopyInformation(image)
    getter = {"LoG": imageoperations.getLoGImage, "Wavelet": imageoperations.getWaveletImage}[name]
    return {n: sitk.GetArrayFromImage(im) for im, n, _ in getter(image, mask, **settings)}


@pytest.mark.parametrize("name, settings", [("LoG", {"sigma": [1.0, 3.0]}), ("Wavelet", {}),
                                            ("Wavelet", {"level": 2, "wavelet": "sym2"})],
                         ids=["log", "wavelet-coif1", "wavelet-sym2-2-levels"])
@pytest.mark.parametrize("box", BOXES, ids=["interior", "x-border", "z-border"])
def test_the_box_filtered_on_its_crop_equals_the_full_volume(name, settings, box) -> None:
    """Bit for bit: the margins are chosen so that the boundary's disturbance is below float64's last bit."""
    image = _body()
    plan = plan_for({"binWidth": 0.25, **settings}, {name: settings})
    margin = np.array(plan.margins(image.GetSpacing()))
    size = np.array(image.GetSize())
    lo, hi = np.array(box[0]), np.array(box[0]) + np.array(box[1]) - 1
    lo, hi = lo - margin, hi + margin
    if plan.wraps:
        crosses = (lo < 0) | (hi > size - 1)
        lo, hi = np.where(crosses, 0, lo), np.where(crosses, size - 1, hi)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, size - 1)
    assert (hi - lo + 1 < size).any(), "the crop must really be a crop"
    crop = sitk.RegionOfInterest(image, [int(v) for v in hi - lo + 1], [int(v) for v in lo])
    full, cut = _filtered(name, image, settings), _filtered(name, crop, settings)
    assert full.keys() == cut.keys() and full
    (bx, by, bz), (sx, sy, sz) = box
    for filtered in full:
        want = full[filtered][bz:bz + sz, by:by + sy, bx:bx + sx]
        ox, oy, oz = bx - lo[0], by - lo[1], bz - lo[2]
        got = cut[filtered][oz:oz + sz, oy:oy + sy, ox:ox + sx]
        np.testing.assert_array_equal(got, want, err_msg=filtered)


@pytest.mark.parametrize("name, settings, too_short", [("LoG", {"sigma": [3.0]}, "half"), ("Wavelet", {}, 2)],
                         ids=["log-half-margin", "wavelet-2-voxels"])
def test_a_margin_too_short_is_caught(name, settings, too_short) -> None:
    """The equality above can fail: with half the LoG margin, or 2 voxels around a coif1 wavelet (whose filters
    read 3 on each side), the crop's values differ from the full volume's."""
    image = _body()
    margins = plan_for({"binWidth": 0.25, **settings}, {name: settings}).margins(image.GetSpacing())
    margin = [m // 2 for m in margins] if too_short == "half" else [too_short] * 3
    assert all(short < full for short, full in zip(margin, margins, strict=True))
    (bx, by, bz), (sx, sy, sz) = BOXES[0]
    lo = [bx - margin[0], by - margin[1], bz - margin[2]]
    size = [sx + 2 * margin[0], sy + 2 * margin[1], sz + 2 * margin[2]]
    crop = sitk.RegionOfInterest(image, size, lo)
    full, cut = _filtered(name, image, settings), _filtered(name, crop, settings)
    differs = []
    for filtered in full:
        want = full[filtered][bz:bz + sz, by:by + sy, bx:bx + sx]
        got = cut[filtered][margin[2]:margin[2] + sz, margin[1]:margin[1] + sy, margin[0]:margin[0] + sx]
        differs.append(not np.array_equal(got, want))
    assert any(differs)
