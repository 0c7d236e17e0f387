"""How far the filters PyRadiomics runs read around a voxel: the margin a lesion's crop needs so that every voxel
inside the lesion's box gets the value the full volume gives it.

Replays the filters' internals as far as their reach: ITK 5.4's recursive Gaussian (the LoG image type) and
PyWavelets 1.9's ``swtn`` as PyRadiomics 3.1 calls it (the Wavelet image type). Both margins are upper bounds: a
filter that read further in a new version would change values at the crop's edge, which
``tests/replays/test_filter_reach.py`` (the filtered crop against the filtered full volume) and
``tests/test_crop_equivalence.py`` (every feature value) catch.
"""

from __future__ import annotations

import math
from typing import Any

from radiomx.features.replays import EXACT_BITS

#: ITK's recursive Gaussian (``RecursiveGaussianImageFilter``, used by ``LaplacianRecursiveGaussianImageFilter``) is
#: a 4th-order IIR filter run forwards and backwards along each axis. Its poles are exp((L +- iW) / sigma_voxels)
#: with (L, W) = (-1.3932, 0.6681) and (-1.3732, 2.0787) (Farnebaeck & Westin's fit of Deriche's filter), so an input
#: sample ``d`` voxels away is weighted at most ~exp(-1.3732 d / sigma_voxels).
LOG_DECAY_PER_SIGMA = 1.3732


def log_reach(sigma_mm: float, spacing_mm: float) -> int:
    """Voxels along one axis that a LoG crop needs so that the lesion's voxels equal the full-volume LoG.

    With decay exp(-LOG_DECAY_PER_SIGMA d / s) (s = sigma / spacing in voxels), the boundary disturbance falls below
    2**-EXACT_BITS after d = EXACT_BITS ln 2 s / LOG_DECAY_PER_SIGMA (~32 s). Plus one voxel for the rounding, and at
    least ceil(sigma/spacing) + 1 so PyRadiomics' own size check (``size >= ceil(sigma/spacing) + 1``) passes on the
    crop whenever it passes on the full image.
    """
    s = sigma_mm / spacing_mm
    return max(math.ceil(EXACT_BITS * math.log(2) * s / LOG_DECAY_PER_SIGMA) + 1, math.ceil(s) + 1)


def wavelet_reach(settings: dict[str, Any]) -> int:
    """Voxels a wavelet crop needs: each level is one undecimated pass of filters ``dec_len`` taps long (PyRadiomics
    calls ``pywt.swtn(level=1)`` once per level), which reads at most ``dec_len - 1`` neighbours on either side;
    levels chain, so the reach adds up over ``start_level + level`` passes. One more pass-width keeps the lesion's
    voxels inside pywt's interior loop (the same summation order as in the full volume). An upper bound: coif1's
    six taps read 3 voxels on either side at one level (``tests/replays/test_filter_reach.py``), this gives 10."""
    import pywt

    wavelet = pywt.Wavelet(settings.get("wavelet", "coif1"))
    passes = int(settings.get("start_level", 0)) + int(settings.get("level", 1))
    return (passes + 1) * (wavelet.dec_len - 1)
