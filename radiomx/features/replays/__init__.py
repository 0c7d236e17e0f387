"""Replays: the only places where radiomx reproduces a library's internals instead of calling them.

Why they exist: each lesion gets a small input (``radiomx.features.crop``) on which PyRadiomics must compute the
values it would compute on the whole body. That needs, bit for bit, what three libraries do inside:

* ``pyradiomics_grid``: ``imageoperations.resampleImage``'s target grid and resampling call, ``loadImage``'s
  "resample or not" and the interpolator fallback; pyradiomics-bhklab ==3.1.4 (PyRadiomics 3.1.0's code).
* ``itk_bspline``: ITK's ``BSplineDecompositionImageFilter`` (the B-spline prefilter), on just the lines a lesion's
  samples read; SimpleITK >=2.5,<2.6 (ITK 5.4).
* ``filter_reach``: how far ITK's recursive Gaussian (LoG) and pywt's ``swtn`` (wavelet) read around a voxel, the
  crop margins; SimpleITK >=2.5,<2.6 and PyWavelets >=1.9,<1.10.

``VERIFIED`` holds those bounds; pyproject.toml must bound each library by exactly them, and the installed versions
must lie inside (``tests/replays/test_versions.py``). Widen a bound only after the equivalence tests pass on the new
version: ``tests/replays/`` (each replay against the library's own function) and ``tests/test_crop_equivalence.py``
(every lesion's values through the small input against PyRadiomics' full-volume call, relative difference <= 1e-9).

Light on purpose (no SimpleITK, no PyWavelets here): the version test reads ``VERIFIED`` without them.
"""

from __future__ import annotations

#: distribution -> the version specifier each replay was verified on (see the table above).
VERIFIED: dict[str, str] = {
    "pyradiomics-bhklab": "==3.1.4",
    "SimpleITK": ">=2.5,<2.6",
    "PyWavelets": ">=1.9,<1.10",
}

#: Bits a boundary disturbance must decay by before it can no longer change a float64 result: the 53-bit mantissa
#: plus 11 bits (x2048) of headroom because the disturbance is as large as the intensities at the crop border,
#: which may exceed the values near the lesion (body vs lesion rim, or a LoG response near zero). Used by every
#: margin derived from an infinite (IIR) filter: ``filter_reach.log_reach``, ``itk_bspline.bspline_decay``.
EXACT_BITS = 53 + 11
