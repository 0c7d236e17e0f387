"""Two PyRadiomics hot spots that cost time and touch no value, replaced during radiomx's own calls only.

Why: once each lesion gets a small input (``crop.py``), PyRadiomics' fixed per-call overhead is a large share of
what is left (``benchmarks/RESULTS.md``). Two parts of it are pure Python overhead:

* ``imageoperations.getBinEdges`` finds the ROI's minimum and maximum with Python's built-in ``min``/``max``,
  iterating a numpy array element by element (~7 % of a lesion's time with LoG + Wavelet). Here it is handed a
  two-element array holding numpy's minimum and maximum of the same values, so the very same function computes the
  very same edges from the very same two numbers. (Only for fixed bin width; ``binCount`` needs every value.)
* ``RadiomicsFeaturesBase.getFeatureNames`` runs ``inspect.getmembers`` on the class for every feature-class
  instance (12 images x 7 classes per lesion). The names of a class never change, so they are looked up once per
  class and process, and a copy is returned each time.

Both are swapped in only while a ``pyradiomics_speedups()`` block runs (the worker's extraction call) and restored
after it, and even then the replacements run only on a thread that is inside such a block: any other thread (the
tests' reference, a user's own PyRadiomics call in a notebook thread) gets the original code, untouched.
``tests/test_speedups.py`` proves the replacements return what the originals return; PyRadiomics is pinned
exactly in pyproject.toml (``tests/test_library_versions.py``), as the swap names two of its internals.

Measured (``benchmarks/bench_speedups.py``, Original-only benchmark settings, 21 lesions x 5, one thread): median
0.048 s per lesion with, 0.057 s without (x1.20). Why not upstream: a change to PyRadiomics' ``getBinEdges`` or
``getFeatureNames`` could be proposed, but radiomx must compute with exactly the pinned release whose values its
users' tables hold (``pyradiomics-bhklab==3.1.4``; the last official PyRadiomics release no longer installs on
current Python), so it would reach radiomx only as a new pinned version, re-verified value for value.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Per thread: how many ``pyradiomics_speedups()`` blocks this thread is inside.
_DEPTH = threading.local()


def _inside_radiomx() -> bool:
    return getattr(_DEPTH, "n", 0) > 0


def fast_bin_edges(original: Callable[..., Any]) -> Callable[..., Any]:
    """``getBinEdges`` fed the extremes of its input instead of the whole input (fixed bin width only)."""

    def get_bin_edges(parameterValues, **kwargs):  # noqa: N803 - PyRadiomics' own argument name
        if (_inside_radiomx() and kwargs.get("binCount") is None and isinstance(parameterValues, np.ndarray)
                and parameterValues.size and not np.isnan(parameterValues).any()):
            parameterValues = np.array([parameterValues.min(), parameterValues.max()], dtype=parameterValues.dtype)
        return original(parameterValues, **kwargs)

    return get_bin_edges


#: Feature names per feature class, kept for the life of the process: every ``pyradiomics_speedups()`` entry (one
#: per lesion) reuses them, so a class is inspected once per worker, not once per lesion.
_FEATURE_NAMES: dict[type, dict[str, bool]] = {}


def cached_feature_names(original: classmethod) -> classmethod:
    """``getFeatureNames`` computed once per feature class and process; each caller gets its own copy of the
    dict."""

    def get_feature_names(cls) -> dict[str, bool]:
        if not _inside_radiomx():
            return original.__func__(cls)
        names = _FEATURE_NAMES.get(cls)
        if names is None:
            names = _FEATURE_NAMES[cls] = original.__func__(cls)
        return dict(names)

    return classmethod(get_feature_names)


_LOCK = threading.Lock()
_ACTIVE = 0
_SAVED: dict[str, Any] = {}


@contextlib.contextmanager
def pyradiomics_speedups() -> Iterator[None]:
    """Run the enclosed PyRadiomics calls with the two replacements above, then restore the originals.

    Reference-counted under a lock: a Dask worker with several threads may run extractions concurrently; the first
    to enter swaps, the last to leave restores, so no thread ever saves a replacement as the "original"."""
    global _ACTIVE
    from radiomics import base, imageoperations

    with _LOCK:
        if _ACTIVE == 0:
            _SAVED["edges"] = imageoperations.getBinEdges
            _SAVED["names"] = base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]
            imageoperations.getBinEdges = fast_bin_edges(_SAVED["edges"])
            base.RadiomicsFeaturesBase.getFeatureNames = cached_feature_names(_SAVED["names"])
        _ACTIVE += 1
    _DEPTH.n = getattr(_DEPTH, "n", 0) + 1
    try:
        yield
    finally:
        _DEPTH.n -= 1
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0:
                imageoperations.getBinEdges = _SAVED.pop("edges")
                base.RadiomicsFeaturesBase.getFeatureNames = _SAVED.pop("names")
