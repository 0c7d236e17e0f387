"""Hold back other libraries' log records during radiomx's own calls, without changing any logger's level.

Why: PyRadiomics prints warnings to stderr through its own handler, and pykwalify logs every schema violation before
raising it; radiomx reports both as one line of its own (a failures row, a ConfigError). A library must not change
the caller's logging for good (no ``setLevel``, no ``setVerbosity`` in the caller's process), so the records are
dropped by a filter that only matches the calling thread and only while radiomx's call runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator


class FromThread(logging.Filter):
    """Drops the records logged by one thread: radiomx's own call, not another thread's use of the library."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextlib.contextmanager
def records_dropped(target: logging.Logger | logging.Handler | None) -> Iterator[None]:
    """While the block runs, ``target`` (a logger: records logged on it; a handler: records it would emit) drops
    this thread's records. ``None`` does nothing."""
    if target is None:
        yield
        return
    only_ours = FromThread()
    target.addFilter(only_ours)
    try:
        yield
    finally:
        target.removeFilter(only_ours)


@contextlib.contextmanager
def pydicom_quiet() -> Iterator[None]:
    """Keep pydicom's complaints about odd values off the caller's stderr while radiomx reads DICOM: they quote the
    values (UIDs, names), and radiomx reports what matters as one line of its own. This thread's records on the
    "pydicom" logger are dropped, and warnings raised meanwhile ignored (``warnings.catch_warnings`` restores the
    filters after)."""
    with records_dropped(logging.getLogger("pydicom")), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def handlers_restored(logger: logging.Logger) -> Iterator[None]:
    """Remove any handler a library adds to ``logger`` while the block runs (the ones the caller had stay)."""
    before = list(logger.handlers)
    try:
        yield
    finally:
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)


def pyradiomics_extractor(config: dict):
    """``RadiomicsFeatureExtractor(config)`` without its lasting side effect: when neither ``pykwalify.core`` nor the
    root logger has a handler, PyRadiomics' ``_applyParams`` gives ``pykwalify.core`` the ``radiomics`` stderr
    handler for good (QA2 D8). radiomx has validated ``config`` already (``radiomx.params.paramset``)."""
    import pykwalify.core
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    with handlers_restored(pykwalify.core.log):
        return RadiomicsFeatureExtractor(config)
