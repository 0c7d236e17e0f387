"""radiomx: PET/CT cohort folders -> tidy, keyed, reproducible PyRadiomics feature tables (Parquet).

The public names are imported lazily (PEP 562): a worker process imports ``radiomx.run.worker`` and must not pay for
pandas and pyarrow (~1.5 s and ~110 MB per worker) that only the writer process needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "extract": "api", "scan": "api", "status": "api", "read_table": "api", "read_failures": "api",
    "compare": "api", "publish": "api",
    "RunSummary": "api", "Scan": "records", "ScanKey": "records", "ExtractOptions": "options",
    "RadiomxError": "errors", "ConfigError": "errors", "ScanError": "errors",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from radiomx.api import RunSummary, compare, extract, publish, read_failures, read_table, scan, status  # noqa: F401
    from radiomx.errors import ConfigError, RadiomxError, ScanError  # noqa: F401
    from radiomx.options import ExtractOptions  # noqa: F401
    from radiomx.records import Scan, ScanKey  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'radiomx' has no attribute {name!r}")
