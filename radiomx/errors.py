"""One exception family for the whole library, and the one table from outcomes to exit codes.

Why a family: the CLI must tell a per-scan problem (recorded, run goes on, exit 1) from a configuration problem
(nothing can start, exit 2) without parsing messages. Why the table lives here and not on the classes: every
command returns through ``exit_code`` (the CLI group calls it on whatever a command returned or raised), the run
log records the same number, and the docs' table is generated from ``EXIT_CODES`` (``exit_code_table``; a test
holds README.md and docs/cli.md to it), so the number, its meaning and its prose cannot drift apart.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radiomx.vocabulary import Stage


class RadiomxError(Exception):
    """Base class: a problem that stops a command (exit code: ``exit_code``)."""

    def __init__(self, message: str) -> None:
        if not message:
            raise ValueError("RadiomxError needs a message")
        super().__init__(message)


class ConfigError(RadiomxError):
    """Usage or configuration problem found before any work starts: bad parameter file, unwritable OUT."""


class LockHeldError(ConfigError):
    """Another radiomx process is writing to the same output folder."""


class ClusterError(ConfigError):
    """The Dask cluster cannot run this cohort: scheduler unreachable, scheduler file missing, or a worker that
    cannot see the cohort folder (no shared file system). Stops the run with one line; earlier commits are kept."""


class OutputError(RadiomxError):
    """OUT could not be written mid-run (disk full, file system gone read-only). Earlier commits are intact."""


class ScanError(RadiomxError):
    """One scan (or one lesion) cannot be extracted. Becomes a failures-table row; the run goes on.

    ``stage`` says where it went wrong (``radiomx.vocabulary.Stage``) so that a user can filter the failures table;
    ``path`` names the file the message is about.
    """

    def __init__(self, stage: Stage, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.stage = stage
        self.path = path
        self.detail = message


#: The longest error text a failures-table cell or a log line quotes from an exception.
MESSAGE_LIMIT = 300


def one_line(error: BaseException | str, limit: int = MESSAGE_LIMIT) -> str:
    """An error's message on one line, as a failures-table cell or a log line quotes it: whitespace collapsed (the
    newlines of ITK's and pykwalify's multi-line reports), at most ``limit`` characters; an exception without a
    message gives its type's name."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text[:limit]


class ExitCode(IntEnum):
    """The exit codes of every ``radiomx`` command."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    BROKEN_PIPE = 141


#: What each exit code means, as README.md and docs/cli.md show it (``exit_code_table``).
EXIT_CODES = {
    ExitCode.OK: "every scan was extracted (or was already up to date); any other command did what it was asked",
    ExitCode.FAILURES: "some scans or lesions failed (or QC pictures could not be drawn); each is a row in "
                       "`failures.parquet` and a `radiomx: FAILED …` line on stderr; everything else was written "
                       "(failures listed in `OUT/acknowledged.tsv` are shown but do not count)",
    ExitCode.USAGE: "usage or configuration error (bad option or parameter file, unwritable OUT, OUT locked by "
                    "another run, Dask scheduler unreachable) before any work; or OUT became unwritable mid-run: "
                    "the tables stay as after the last completed commit",
    ExitCode.BROKEN_PIPE: "the reader of stdout went away (`radiomx table OUT` piped into `head -1`): 128 + SIGPIPE, "
                          "nothing on stderr",
}

#: Raised exceptions, most specific first: the first class the exception is an instance of gives its exit code.
RAISED: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (ConfigError, ExitCode.USAGE),
    (OutputError, ExitCode.USAGE),
    (RadiomxError, ExitCode.FAILURES),
    (BrokenPipeError, ExitCode.BROKEN_PIPE),
)


def exit_code(outcome: object) -> ExitCode:
    """The exit code of what a command returned or raised: an exception by ``RAISED``; an ``ExitCode`` as itself;
    a summary (``RunSummary``, ``QcSummary``) by its ``failed`` (failures nobody acknowledged); None: OK."""
    if isinstance(outcome, BaseException):
        return next((code for kind, code in RAISED if isinstance(outcome, kind)), ExitCode.FAILURES)
    if isinstance(outcome, ExitCode):
        return outcome
    return ExitCode.FAILURES if getattr(outcome, "failed", False) else ExitCode.OK


def exit_code_table() -> str:
    """The exit-code table of the docs, in Markdown, from ``EXIT_CODES``."""
    rows = [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(["| code | meaning |", "| --- | --- |", *rows])


def exit_code_summary() -> str:
    """One line for ``radiomx --help``: each code and the first clause of its meaning."""
    return "; ".join(f"{int(code)} {meaning.split(' (')[0].split(';')[0]}" for code, meaning in EXIT_CODES.items())
