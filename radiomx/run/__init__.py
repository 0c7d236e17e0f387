"""Run: what to compute (plan), where (engine: serial, local pool, Dask; cluster: Dask's connect, checks and
losses), how one scan is computed (worker; faults: the worker-side test hooks, inert unless set), and the writer's
side of one run (extraction: ``Extraction`` plans, accounts and commits; summary; overview: dry runs and reports).

The only stage that chains inputs -> features for a scan. May import ``qc`` (the worker draws pictures),
``discover``, ``params``, ``inputs``, ``features``, ``store`` (``extraction`` and ``overview`` only: the writer lives
in the caller's process) and the top-level vocabulary; never ``derive``, ``api`` or ``cli``. The worker's side
never loads pandas or pyarrow (the ``workers`` contract in pyproject.toml).
"""
