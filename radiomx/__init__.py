"""radiomx: PET/CT cohort folders -> tidy, keyed, reproducible PyRadiomics feature tables (Parquet)."""

__version__ = "0.1.0"

from .api import RunSummary, extract, read_failures, read_table, scan, status  # noqa: E402
from .cohort import Scan, ScanKey  # noqa: E402
from .errors import ConfigError, RadiomxError, ScanError  # noqa: E402
from .options import ExtractOptions  # noqa: E402

__all__ = ["extract", "scan", "status", "read_table", "read_failures", "RunSummary", "Scan", "ScanKey",
           "ExtractOptions", "RadiomxError", "ConfigError", "ScanError", "__version__"]
