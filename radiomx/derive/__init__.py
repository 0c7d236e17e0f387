"""Derive: the tables computed from stored rows, never from images: burden per scan (``OUT/burden.parquet``),
tracer against tracer (``OUT/compare/<a>_vs_<b>.parquet``) and the model-ready patient table
(``OUT/patients.parquet``).

Why apart from ``run``: these tables are cheap (milliseconds for a 300-patient cohort) and are rebuilt from the
feature and state tables after every extract that changed something, so they can never disagree with them.
Each file is written atomically and only when its bytes change, so a no-change rerun rewrites nothing.

May import ``radiomx.store`` and the top-level vocabulary; ``discover`` (the cohort's ``radiomx.toml``, and the
scans found again as the last run found them), and, for ``compare`` only, ``inputs`` to read acquisition dates
from headers (never written: only the day difference) and the lesion MASKS when the cohort declares a shared frame
of reference (lesion pairing by overlap; masks are small label maps, whereas storing every lesion's voxels in OUT
would double its size for one optional feature). Of ``features`` only the lesion split (``pairing`` re-splits a
mask exactly as the extraction did, so that lesion ids agree). PET and CT images are never read here.
``scores``/``response`` import ``radiomx.params.readouts`` (the settings of the read-outs each parameter file
states). Never imports ``run``, ``qc``, ``api`` or ``cli`` (the ``derive`` contract in pyproject.toml).
"""
