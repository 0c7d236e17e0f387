"""One lesion -> one dict of PyRadiomics feature values.

Why a thin wrapper: the numbers must be exactly PyRadiomics' (same names, same values), so we call
``RadiomicsFeatureExtractor.execute`` with the parameter file's settings and only change what does not touch a
value: ``additionalInfo`` is off (diagnostics are recomputed on the whole volume for every lesion, ~1 s each,
and carry no feature value), and inputs are SimpleITK images loaded once per scan.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np
import SimpleITK as sitk

from .params import ParamSet

#: Bumped whenever radiomx changes how a feature value is computed (not PyRadiomics' version, which is recorded
#: separately). Part of every scan's work key, so a change recomputes everything on the next run.
FEATURE_LOGIC_VERSION = "1"


def quiet_pyradiomics() -> None:
    """PyRadiomics prints warnings to stderr through its own handler; failures reach us as exceptions instead."""
    import radiomics

    radiomics.setVerbosity(logging.CRITICAL)
    logging.getLogger("radiomics").setLevel(logging.CRITICAL)


@lru_cache(maxsize=8)
def _extractor_for(sha256: str, params: ParamSet):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    quiet_pyradiomics()
    config = dict(params.pyradiomics)
    config["setting"] = {**(config.get("setting") or {}), "additionalInfo": False}
    return RadiomicsFeatureExtractor(config)


def extractor_for(params: ParamSet):
    """A configured extractor, built once per parameter file per process."""
    return _extractor_for(params.sha256, params)


def _as_float(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))


def extract_lesion(params: ParamSet, image: sitk.Image, labels: sitk.Image, lesion_id: int) -> dict[str, float]:
    """Feature values for one lesion (``labels == lesion_id``), PyRadiomics names, float64, no diagnostics."""
    result = extractor_for(params).execute(image, labels, label=int(lesion_id))
    return {name: _as_float(value) for name, value in result.items() if not name.startswith("diagnostics_")}


def pyradiomics_version() -> str:
    import radiomics

    return str(radiomics.__version__)
