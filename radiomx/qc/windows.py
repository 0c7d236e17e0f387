"""The QC pictures' fixed display window per tracer: the same grey scale for every patient, so that two pictures
can be compared by eye (a window fitted to each scan's own maximum would make a cold scan look as hot as a hot one).

Display only: no feature value depends on it. A parameter file may set its own (``radiomx: qc: {window: [0, 10]}``,
in the file's unit); otherwise the defaults below apply. Choices (SUVbw unless noted):

* 18F-FDG [0, 10]: liver ~2-3, typical lesions 5-20; 10 keeps most lesions distinguishable from the bladder and
  brain, which saturate (the usual fixed window of FDG MIP viewers is 0-5 to 0-10).
* 68Ga-pentixafor [0, 8]: CXCR4 uptake is lower (spleen ~5, lymphoma/myeloma lesions ~4-15).
* 68Ga-DOTATATE [0, 20]: SSTR uptake is high (spleen/kidneys ~20-30, NET lesions ~10-60).
* CT [-200, 1200] HU: a MIP of CT is dominated by bone, so the window spans soft tissue to cortical bone.
"""

from __future__ import annotations

from radiomx.params.paramset import ParamSet

DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {
    "18F-FDG": (0.0, 10.0),
    "68Ga-pentixafor": (0.0, 8.0),
    "68Ga-DOTATATE": (0.0, 20.0),
    "CT": (-200.0, 1200.0),
}
#: For a tracer added to the registry without a default here: by unit.
FALLBACK_BY_UNIT: dict[str, tuple[float, float]] = {"SUVbw": (0.0, 10.0), "HU": (-200.0, 1200.0)}


def display_window(params: ParamSet) -> tuple[float, float]:
    """The parameter file's ``radiomx.qc.window`` if it has one, else radiomx's default for the tracer."""
    if params.qc_window is not None:
        return params.qc_window
    return DEFAULT_WINDOWS.get(params.tracer, FALLBACK_BY_UNIT.get(params.units, (0.0, 10.0)))
