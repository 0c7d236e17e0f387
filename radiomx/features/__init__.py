"""Features: from a loaded scan to values per lesion.

Owns lesion splitting, the input guards, the crop/B-spline cut of each lesion's input, the PyRadiomics call, the PET
indices (``indices``, ``peak``), reference regions (``references``) and threshold VOIs (``voi``). May import
``radiomx.inputs``, ``radiomx.params`` and the top-level records; never ``run``, ``store`` or ``cli``. This
``__init__`` stays light (no SimpleITK, no PyRadiomics): the planner reads the logic version.
"""

from __future__ import annotations

import functools
from importlib import metadata

#: Bumped whenever radiomx changes how a feature value is computed (not PyRadiomics' version, which is recorded
#: separately). Part of every scan's work key, so a change recomputes everything on the next run.
#: "2": per-lesion crop / resampling (same values by construction and by test; bumped to recompute anyway).
#: "3": radiomx index columns (SUV statistics, SUVpeak, MTV, TLG, centroids, reference ratios, threshold VOIs) in
#: lesion rows; reference statistics, TMTV, Dmax, height and weight in the state row.
#: "4": no date in the SUV inputs (``suv_injection_time``/``suv_reference_time`` hold times of day, DICOM gave full
#: date-times), ``suv_decay_factor``; a sidecar declaring SUV records ``sidecar Units g/ml`` as ``suv_weight_source``
#: (it read ``ml body_weight``). Recomputing also rewrites the dated rows of older output folders.
#: "4" also: a lesion PyRadiomics refuses keeps its row (PET indices, null features) with a warning; rows and the
#: state record the image's storage orientation; the ``reorient`` parameter-file setting.
#: "4" also: lesions are named masks that may overlap (each SEG segment / RTSTRUCT ROI its own mask; names, selection by
#: name, default non-lesion exclusion); TMTV, TTLG and voxel Dmax over the union of lesion voxels.
#: "4" also: ``suv_uptake_s`` is injection -> scan start whatever the decay-correction reference (it read 0 for DICOM
#: ADMIN and sidecars corrected to the injection); radionuclide codes read through DICOM CID 4020.
#: "5" (issues 24 and 25): SUL columns (sul_max/peak/mean, lbm_kg, lbm_formula), each reference region's SUVmax;
#: reference regions and lesion sites from organ segmentations.
FEATURE_LOGIC_VERSION = "5"

#: The distributions that install the ``radiomics`` package (radiomx depends on the first; see pyproject.toml).
PYRADIOMICS_DISTRIBUTIONS = ("pyradiomics-bhklab", "pyradiomics")


@functools.cache
def pyradiomics_version() -> str:
    """The installed PyRadiomics distribution's version, recorded with every row and run.

    Why from the package metadata: the runs table is written by the writer process, which must not import
    PyRadiomics (~0.3 s) just to read one string; the rows' version comes from the same place, so both tables
    agree. Cached: a worker records it in every row (~1.6 ms a lookup)."""
    for name in PYRADIOMICS_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"
