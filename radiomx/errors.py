"""One exception family for the whole library, mapped to exit codes in one place (the CLI group).

Why a family: the CLI must tell a per-scan problem (recorded, run goes on, exit 1) from a configuration
problem (nothing can start, exit 2) without parsing messages.
"""

from __future__ import annotations


class RadiomxError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with when this escapes a command."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        if not message:
            raise ValueError("RadiomxError needs a message")
        super().__init__(message)


class ConfigError(RadiomxError):
    """Usage or configuration problem found before any work starts: bad parameter file, unwritable OUT."""

    exit_code = 2


class LockHeldError(ConfigError):
    """Another radiomx process is writing to the same output folder."""


class ClusterError(ConfigError):
    """The Dask cluster cannot run this cohort: scheduler unreachable, scheduler file missing, or a worker that
    cannot see the cohort folder (no shared file system). Stops the run with one line; earlier commits are kept."""


class OutputError(RadiomxError):
    """OUT could not be written mid-run (disk full, file system gone read-only). Earlier commits are intact."""

    exit_code = 2


class ScanError(RadiomxError):
    """One scan (or one lesion) cannot be extracted. Becomes a failures-table row; the run goes on.

    ``stage`` says where it went wrong (discover, load, geometry, suv, lesions, features) so that a user can
    filter the failures table; ``path`` names the file the message is about.
    """

    def __init__(self, stage: str, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.stage = stage
        self.path = path
        self.detail = message
