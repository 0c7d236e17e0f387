"""One lesion -> one dict of PyRadiomics feature values.

Why a thin wrapper: the numbers must be exactly PyRadiomics' (same names, same values), so we call
``RadiomicsFeatureExtractor.execute`` with the parameter file's settings and only change what does not touch a
value: ``additionalInfo`` is off (diagnostics are recomputed on the whole volume for every lesion, ~1 s each,
and carry no feature value), and each lesion gets a small input cut by ``crop.lesion_input`` (resampled onto
PyRadiomics' own grid, or cropped with a filter margin), on which PyRadiomics computes the full volume's values.
``tests/reference.py`` holds the plain full-volume call the tests and the benchmark compare against.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import SimpleITK as sitk

from radiomx.features.crop import CropPlan, LesionInput, lesion_input, normalized, plan_for
from radiomx.features.lesions import Lesion
from radiomx.features.orientation import lesion_on, orientation_code, reoriented
from radiomx.params.paramset import ParamSet
from radiomx.quiet import pyradiomics_extractor, records_dropped


def quiet_pyradiomics() -> None:
    """In a worker process only (it changes PyRadiomics' logging for good): PyRadiomics prints warnings to stderr
    through its own handler; its refusals reach radiomx as exceptions instead. Touches no other logger."""
    import radiomics

    radiomics.setVerbosity(logging.CRITICAL)


@contextlib.contextmanager
def pyradiomics_silenced() -> Iterator[None]:
    """In the caller's process: what PyRadiomics logs from this thread during the block stays off PyRadiomics' own
    stderr handler. No level changes; records still reach the caller's own handlers (``radiomx/quiet.py``)."""
    import radiomics

    with records_dropped(getattr(radiomics, "handler", None)):
        yield


#: Settings overridden per input mode, because the work was already done on the full image:
#: normalization (whole-image statistics, applied once per scan) and, for ``resample``, the resampling itself
#: (preCrop is skipped by PyRadiomics whenever it resamples, so it must stay off on the resampled grid).
_OVERRIDES: dict[str, dict[str, Any]] = {
    "reference": {},
    "resample": {"normalize": False, "resampledPixelSpacing": None, "preCrop": False},
    "crop": {"normalize": False},
    "full": {"normalize": False},
}


@lru_cache(maxsize=16)
def _extractor_for(sha256: str, params: ParamSet, mode: str):
    """The extractor of ``mode``: PyRadiomics validates and applies the parameter file once per process (its schema
    check, ~30 ms, is the same for every mode); each other mode is a copy with its own ``settings`` dict, the
    public attribute ``execute`` reads them from."""
    if mode != "reference":
        variant = copy.copy(_extractor_for(sha256, params, "reference"))
        variant.settings = {**variant.settings, **_OVERRIDES[mode]}
        return variant
    config = dict(params.pyradiomics)
    config["setting"] = {**(config.get("setting") or {}), "additionalInfo": False}
    return pyradiomics_extractor(config)


def extractor_for(params: ParamSet, mode: str = "reference"):
    """A configured extractor, built once per parameter file and input mode per process."""
    return _extractor_for(params.sha256, params, mode)


def crop_plan(params: ParamSet) -> CropPlan:
    """How lesions of this parameter file are cut out, from the extractor's effective settings."""
    extractor = extractor_for(params)
    return plan_for(extractor.settings, extractor.enabledImagetypes)


def prepare_image(params: ParamSet, image: sitk.Image) -> sitk.Image:
    """The full image as every lesion of the scan needs it: reoriented when the parameter file asks
    (``radiomx: reorient``, ``features.orientation``), then normalized once when it asks."""
    return normalized(reoriented(image, params.reorient), extractor_for(params).settings)


def prepare_labels(params: ParamSet, labels: sitk.Image, lesions: tuple[Lesion, ...]
                   ) -> tuple[sitk.Image, tuple[Lesion, ...]]:
    """The label map and its lesions on the grid of ``prepare_image`` (the same voxels, reordered axes)."""
    target = reoriented(labels, params.reorient)
    return target, tuple(lesion_on(labels, target, lesion) for lesion in lesions)


def prepare_layers(params: ParamSet, layers: tuple[sitk.Image, ...], lesions: tuple[Lesion, ...]
                   ) -> dict[int, tuple[sitk.Image, Lesion]]:
    """lesion_id -> (its layer, the lesion) on the grid of ``prepare_image``: each layer of lesions that may overlap
    (``features.lesions.LesionMap.layers``) reoriented once, whatever the number of its lesions."""
    out: dict[int, tuple[sitk.Image, Lesion]] = {}
    for index, layer in enumerate(layers):
        own = tuple(lesion for lesion in lesions if lesion.layer == index)
        target, moved = prepare_labels(params, layer, own)
        out.update({lesion.lesion_id: (target, grid) for lesion, grid in zip(own, moved, strict=True)})
    return out


def lesion_inputs(params: ParamSet, image: sitk.Image, labels: sitk.Image, lesion: Lesion) -> LesionInput:
    """One lesion's small input; ``image`` must come from ``prepare_image``. ``labels`` and ``lesion`` should come
    from ``prepare_labels`` (once per scan); on the grid as read they are reoriented here, for this lesion."""
    if orientation_code(labels) != orientation_code(image):
        labels, (lesion,) = prepare_labels(params, labels, (lesion,))
    return lesion_input(crop_plan(params), image, labels, lesion)


def _as_float(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))


def feature_values(result: dict[str, Any]) -> dict[str, float]:
    return {name: _as_float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def extract_input(params: ParamSet, item: LesionInput) -> dict[str, float]:
    """Feature values of one prepared lesion: PyRadiomics names, float64, no diagnostics."""
    if item.label_lost:
        # The full-volume path raises this from checkMask after resampling; same exception, same text.
        raise ValueError(f"Label ({item.lesion_id:g}) not present in mask")
    result = extractor_for(params, item.mode).execute(item.image, item.mask, label=int(item.lesion_id))
    return feature_values(result)
