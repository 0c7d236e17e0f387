"""The fast per-lesion path gives the values of a plain full-volume PyRadiomics call (the replays it relies on are
each tested against their library in ``tests/replays/``).

Reference: ``RadiomicsFeatureExtractor.execute(full_image, full_labels, label=...)`` (real PyRadiomics, no diagnostics).
Tolerance: relative difference <= 1e-9; where the reference is 0 the fast value must be within 1e-12 of it; NaN
must stay NaN; the same feature names in both. Volumes are small but larger than lesion + margin on some axis, so
the crop really is a crop, and lesions touch the volume border (where the wavelet wraps and ITK filters extend).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radiomx.features.extractor import crop_plan, lesion_inputs, prepare_image
from radiomx.features.lesions import Lesion, split_lesions
from radiomx.params.paramset import ParamSet

from .reference import extract_lesion, extract_lesion_reference

REL_TOL = 1e-9
ZERO_ABS_TOL = 1e-12
SPACING = (4.07283, 4.07283, 3.27)  # a scanner's grid: not round, anisotropic
FEW = {"firstorder": ["Mean", "Maximum", "Minimum", "Variance", "Skewness", "Entropy"], "glcm": ["Contrast", "MCC"]}


def params(setting: dict, image_types: dict | None = None, classes: dict | None = None) -> ParamSet:
    config = {"setting": {"binWidth": 0.25, **setting}, "imageType": image_types or {"Original": {}},
              "featureClass": classes if classes is not None else {"shape": ["VoxelVolume", "Sphericity"], **FEW}}
    sha = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return ParamSet("18F-FDG", "test", Path("test.yaml"), sha, "SUVbw", config)


def volume(shape_zyx=(60, 56, 72), seed=1) -> tuple[sitk.Image, sitk.Image]:
    """Smooth SUV-like background with structure, and 4 lesions: interior, touching x=0, touching z=max, tiny."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(4.0, 0.25, size=shape_zyx).astype(np.float32)
    image = sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(values), 1.0)
    values = sitk.GetArrayFromImage(image) * rng.normal(1.0, 0.1, size=shape_zyx).astype(np.float32)
    z, y, x = np.indices(shape_zyx)
    labels = np.zeros(shape_zyx, dtype=np.uint32)
    lesions = [((30, 28, 36), (5, 4, 6)), ((20, 25, 2), (4, 5, 5)), ((57, 30, 50), (4, 4, 4)),
               ((12, 12, 60), (1, 1, 1))]
    for label, ((cz, cy, cx), (rz, ry, rx)) in enumerate(lesions, start=1):
        inside = ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
        values[inside] += rng.uniform(3, 9) * (1.2 - ((z[inside] - cz) / (rz + 1)) ** 2)
        labels[inside] = label
    img = sitk.GetImageFromArray(values.astype(np.float32))
    msk = sitk.GetImageFromArray(labels)
    for im in (img, msk):
        im.SetSpacing(SPACING)
        im.SetOrigin((-151.3, -120.77, -90.1))
    return img, msk


@pytest.fixture(scope="module")
def scan() -> tuple[sitk.Image, sitk.Image, tuple[Lesion, ...]]:
    image, labels = volume()
    lesion_map = split_lesions(labels)
    return image, lesion_map.labels, lesion_map.lesions


def assert_same_values(fast: dict[str, float], ref: dict[str, float], where: str) -> None:
    assert fast.keys() == ref.keys(), f"{where}: feature names differ: {set(fast) ^ set(ref)}"
    for name, expected in ref.items():
        got = fast[name]
        if math.isnan(expected):
            assert math.isnan(got), f"{where} {name}: {got} != NaN"
        elif expected == 0:
            assert abs(got) <= ZERO_ABS_TOL, f"{where} {name}: {got} != 0"
        else:
            assert abs(got - expected) <= REL_TOL * abs(expected), \
                f"{where} {name}: {got!r} vs {expected!r} (rel {abs(got - expected) / abs(expected):.3g})"


def outcome(fn):
    try:
        return "ok", fn()
    except ValueError as exc:
        return "error", str(exc)


def check_all_lesions(p: ParamSet, image, labels, lesions, expect_mode: str) -> int:
    """Compare every lesion; returns how many gave values (the others must fail alike)."""
    assert crop_plan(p).mode == expect_mode
    valued = 0
    for lesion in lesions:
        ref = outcome(lambda lesion=lesion: extract_lesion_reference(p, image, labels, lesion.lesion_id))
        fast = outcome(lambda lesion=lesion: extract_lesion(p, image, labels, lesion))
        assert fast[0] == ref[0], f"lesion {lesion.lesion_id}: fast {fast} vs reference {ref}"
        if ref[0] == "ok":
            assert_same_values(fast[1], ref[1], f"lesion {lesion.lesion_id}")
            valued += 1
        else:
            assert fast[1].split(".")[0] == ref[1].split(".")[0]
    return valued


CASES = {
    # name: (settings, image types, feature classes or None for the default few, expected mode)
    "original-all-classes": ({"minimumROIDimensions": 3}, None,
                             {c: None for c in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")},
                             "crop"),
    "log-wavelet-no-resampling": ({}, {"Original": {}, "LoG": {"sigma": [1.0, 3.0]}, "Wavelet": {}}, None, "crop"),
    "wavelet-2-levels-force2D": ({"force2D": True, "force2Ddimension": 0},
                                 {"Wavelet": {"level": 2, "wavelet": "sym2"}}, None, "crop"),
    "log-wavelet-bspline-2mm": ({"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline"},
                                {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}}, None, "resample"),
    "linear-2.5mm-normalize-resegment": ({"resampledPixelSpacing": [2.5, 2.5, 0], "interpolator": "sitkLinear",
                                          "normalize": True, "normalizeScale": 2, "removeOutliers": 3,
                                          "resegmentRange": [-1, 3]},
                                         {"Original": {}, "LoG": {"sigma": [2.0]}}, None, "resample"),
    "sinc-coarse-label-lost": ({"resampledPixelSpacing": [9, 9, 9], "interpolator": "sitkLanczosWindowedSinc",
                                    "padDistance": 2, "minimumROIDimensions": 1}, None, None, "resample"),
    "same-spacing-resample-crops": ({"resampledPixelSpacing": list(SPACING), "interpolator": "sitkBSpline",
                                     "padDistance": 3}, {"Original": {}, "Wavelet": {}}, None, "resample"),
    "precrop-normalize-log": ({"preCrop": True, "padDistance": 4, "normalize": True},
                              {"Original": {}, "LoG": {"sigma": [3.0]}}, None, "crop"),
    "square-needs-full-image": ({"resegmentRange": [1.0], "resegmentMode": "absolute"},
                                {"Original": {}, "Square": {}}, None, "full"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_full_volume(scan, case: str) -> None:
    image, labels, lesions = scan
    setting, image_types, classes, mode = CASES[case]
    valued = check_all_lesions(params(setting, image_types, classes), image, labels, lesions, mode)
    assert valued >= 2  # the comparison really compared values, not only matching failures


def test_label_lost_after_resampling_fails_like_pyradiomics(scan) -> None:
    """A 7-voxel lesion resampled at 8 mm with nearest neighbour falls between samples: both paths refuse it with
    the same message (and at 9 mm, where one sample hits it, with the same single-voxel message)."""
    image, labels, lesions = scan
    tiny = min(lesions, key=lambda lesion: lesion.voxel_count)
    for spacing, message in ((8, "Label (4) not present in mask"), (9, "mask only contains 1 segmented voxel")):
        p = params({"resampledPixelSpacing": [spacing] * 3, "interpolator": "sitkLinear", "padDistance": 1,
                    "minimumROIDimensions": 1})
        ref = outcome(lambda p=p: extract_lesion_reference(p, image, labels, tiny.lesion_id))
        fast = outcome(lambda p=p: extract_lesion(p, image, labels, tiny))
        assert ref[0] == "error" and ref[1].startswith(message)
        assert fast == ref


def test_crop_really_crops_and_clips_at_border(scan) -> None:
    """The fast inputs are smaller than the volume, clip at the border, and keep the whole axis where the wavelet
    wraps (lesion 2 touches x = 0)."""
    image, labels, lesions = scan
    p = params({}, {"Original": {}, "LoG": {"sigma": [1.0]}, "Wavelet": {}})
    full = image.GetNumberOfPixels()
    by_id = {lesion.lesion_id: lesion for lesion in lesions}
    interior = lesion_inputs(p, prepare_image(p, image), labels, by_id[1])
    assert interior.image.GetNumberOfPixels() < full / 2
    border = lesion_inputs(p, prepare_image(p, image), labels, by_id[2])
    assert border.image.GetSize()[0] == image.GetSize()[0]  # x wraps: whole axis
    assert border.image.GetSize()[1] < image.GetSize()[1]
    q = params({"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear"})
    assert lesion_inputs(q, image, labels, by_id[1]).image.GetNumberOfPixels() < 40_000


@pytest.mark.parametrize("case", ["log-wavelet-bspline-2mm", "log-wavelet-no-resampling"])
def test_an_8_bit_label_map_gives_the_32_bit_values(scan, case: str) -> None:
    """radiomx keeps an unsigned mask as read (``imaging.as_label_map``); the reference gets the UInt32 map."""
    image, labels, lesions = scan
    setting, image_types, classes, _ = CASES[case]
    p = params(setting, image_types, classes)
    small = sitk.Cast(labels, sitk.sitkUInt8)
    for lesion in lesions[:3]:
        assert_same_values(extract_lesion(p, image, small, lesion),
                           extract_lesion_reference(p, image, labels, lesion.lesion_id), f"lesion {lesion.lesion_id}")
