"""Run: what to compute (plan), where (engine: serial, local pool, Dask; cluster: Dask's connect, checks and
losses) and how one scan is computed (worker; faults: the worker-side test hooks, inert unless set).

The only stage that chains inputs -> features for a scan. May import ``discover``, ``params``, ``inputs``,
``features`` and the top-level records; never ``store`` (the writer lives in the caller's process) or ``cli``.
"""
