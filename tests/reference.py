"""The full-volume PyRadiomics call the fast path must reproduce, and the fast path on a full image: for the
equivalence tests and the benchmark only (radiomx itself runs ``prepare_scan``/``run_lesion``)."""

from __future__ import annotations

import SimpleITK as sitk

from radiomx.features.extractor import extract_input, extractor_for, feature_values, lesion_inputs, prepare_image
from radiomx.features.lesions import Lesion
from radiomx.params.paramset import ParamSet


def extract_lesion(params: ParamSet, image: sitk.Image, labels: sitk.Image, lesion: Lesion) -> dict[str, float]:
    """Feature values for one lesion of a full (unnormalized) image and label map, through the fast path."""
    return extract_input(params, lesion_inputs(params, prepare_image(params, image), labels, lesion))


def extract_lesion_reference(params: ParamSet, image: sitk.Image, labels: sitk.Image,
                             lesion_id: int) -> dict[str, float]:
    """The plain PyRadiomics call on the full, uncropped volume: the values the fast path must reproduce."""
    return feature_values(extractor_for(params).execute(image, labels, label=int(lesion_id)))
