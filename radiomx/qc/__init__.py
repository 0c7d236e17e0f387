"""QC: what a reader looks at. One picture per scan (coronal + sagittal MIPs, lesion outlines with their ids, SUVmax
and MTV, reference regions) and one self-contained HTML page per output folder.

Owns ``OUT/qc/`` and ``OUT/report.html``. May import ``features``, ``inputs``, ``params``, ``discover`` (to find a
past run's scans again for ``radiomx qc``), ``store`` and the top-level vocabulary; never ``run``, ``derive``,
``api`` or ``cli`` (the worker calls ``radiomx.qc.draw``, not the other way round). matplotlib is used through its
Agg canvas only (``matplotlib.figure.Figure`` + ``FigureCanvasAgg``): never ``pyplot`` or ``matplotlib.use``, which
would change the caller's process-wide backend.
"""
