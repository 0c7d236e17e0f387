"""Features: from a loaded scan to values per lesion.

Owns lesion splitting, the input guards, the crop/B-spline cut of each lesion's input, the PyRadiomics call, the PET
indices (``indices``, ``peak``), reference regions (``references``) and threshold VOIs (``voi``). May import
``radiomx.inputs``, ``radiomx.params`` and the top-level records; never ``run``, ``store`` or ``cli``. This
``__init__`` stays light (no SimpleITK, no PyRadiomics): the planner reads the logic version.
"""

#: Bumped whenever radiomx changes how a feature value is computed (not PyRadiomics' version, which is recorded
#: separately). Part of every scan's work key, so a change recomputes everything on the next run.
#: "2": per-lesion crop / resampling (same values by construction and by test; bumped to recompute anyway).
#: "3": radiomx index columns (SUV statistics, SUVpeak, MTV, TLG, centroids, reference ratios, threshold VOIs) in
#: lesion rows; reference statistics, TMTV, Dmax, height and weight in the state row.
FEATURE_LOGIC_VERSION = "3"
