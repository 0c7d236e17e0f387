"""stderr of the ``radiomx`` process: our messages and other libraries' warnings, as text or one JSON object a line.

Why only here: a library never configures logging (a notebook's handlers and levels are its owner's). The CLI
process does, for the length of one command, and undoes it on the way out (so CliRunner tests, and a program
that calls ``cli`` in-process, get their loggers back as they were).

Other libraries' records reach the user at WARNING and above (PyRadiomics: ERROR, see LEVELS), through one
handler on the root logger (so in the chosen format), never their INFO chatter. PyRadiomics and Dask
(distributed) also install stderr handlers of their own when imported; ``adopt`` (called by the commands that
load them, after the import they pay anyway) silences those handlers while the command runs, so a record is
printed once, by us. pykwalify's ERROR lines repeat what our ConfigError says (with the file name), so pykwalify
is raised to CRITICAL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from radiomx.vocabulary import Severity

LOG_FORMATS = ("text", "json")
#: Library loggers held at a level while a command runs (their children inherit it). PyRadiomics at ERROR: its
#: WARNINGs are per-lesion advice ("GLCM is symmetrical, therefore Sum Average = 2 * Joint Average ...", once per
#: lesion and parameter file), and its real problems reach us as exceptions, which become failures rows.
LEVELS = {"radiomics": logging.ERROR, "distributed": logging.WARNING, "pykwalify": logging.CRITICAL}
#: What to undo when the command ends (filled by ``cli_logging`` and ``adopt``).
_undo: list = []

log = logging.getLogger("radiomx.cli")

#: Keys every JSON line has; an event's own fields never replace them.
RESERVED = ("ts", "level", "severity", "event", "logger", "message", "traceback")


def emit(event: str, message: str, severity: Severity | str = Severity.INFO, traceback: str = "", **fields) -> None:
    """One line on stderr: ``message`` as text, or a JSON object with ``event`` (a name from docs/cli.md),
    ``severity`` (``radiomx.vocabulary.Severity``: what the line means for the run) and the event's ``fields``."""
    severity = Severity(severity)
    log.log(severity.level, message,
            extra={"event": event, "severity": severity, "fields": fields, "traceback": traceback})


def severity_of(record: logging.LogRecord) -> Severity:
    """The record's declared severity; another library's record gets one from its level."""
    declared = getattr(record, "severity", None)
    if declared:
        return Severity(declared)
    return next(s for s in Severity if record.levelno >= s.level or s is Severity.INFO)


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (CliRunner swaps it), never to a stream captured once."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # a logging error must not end the run (stdlib convention)
            self.handleError(record)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        origin = "" if record.name.startswith("radiomx") else f"[{record.name}] {record.levelname}: "
        text = f"radiomx: {origin}{record.getMessage()}"
        detail = getattr(record, "traceback", "")
        return f"{text}\n{detail.rstrip()}" if detail else text


class JsonFormatter(logging.Formatter):
    """One object per line: ts (UTC), level, severity, event, logger, message, plus the event's own fields (the
    schema is in docs/cli.md). Another library's record is event ``library``."""

    def format(self, record: logging.LogRecord) -> str:
        ours = record.name.startswith("radiomx")
        data = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "severity": severity_of(record),
                "event": getattr(record, "event", None) or ("message" if ours else "library"),
                "logger": record.name, "message": record.getMessage()}
        data.update({k: v for k, v in getattr(record, "fields", {}).items() if k not in RESERVED})
        if getattr(record, "traceback", ""):
            data["traceback"] = record.traceback  # type: ignore[attr-defined]
        return json.dumps(data, default=str)


class _Silence(logging.Filter):
    """On a library's own handler: emit nothing (the record propagates to our root handler instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _hold(logger: logging.Logger, level: int) -> None:
    saved = logger.level
    logger.setLevel(level)
    _undo.append(lambda: logger.setLevel(saved))


def adopt(*modules: str) -> None:
    """Import ``modules`` (e.g. "radiomics") and silence the stderr handlers they installed, for this command."""
    import importlib

    if not _undo:  # not inside cli_logging: a library caller's loggers are not ours to touch
        return
    for name in modules:
        importlib.import_module(name)
        logger = logging.getLogger(name)
        _hold(logger, LEVELS.get(name, logging.WARNING))
        for handler in list(logger.handlers):
            silence = _Silence()
            handler.addFilter(silence)
            _undo.append(lambda h=handler, f=silence: h.removeFilter(f))
        if not logger.propagate:  # distributed keeps its records to itself: send them on to our handler
            logger.propagate = True
            _undo.append(lambda lg=logger: setattr(lg, "propagate", False))


@contextlib.contextmanager
def cli_logging(quiet: bool = False, fmt: str = "text") -> Iterator[None]:
    """Route radiomx's messages (INFO, or WARNING with --quiet) and libraries' warnings to stderr while inside."""
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    ours, libraries = StderrHandler(), StderrHandler(logging.WARNING)
    ours.setFormatter(formatter)
    libraries.setFormatter(formatter)
    radiomx_logger, root = logging.getLogger("radiomx"), logging.getLogger()
    saved = (radiomx_logger.level, radiomx_logger.propagate)
    radiomx_logger.addHandler(ours)
    radiomx_logger.setLevel(logging.WARNING if quiet else logging.INFO)
    radiomx_logger.propagate = False
    root.addHandler(libraries)
    _undo.append(lambda: root.removeHandler(libraries))
    for name, level in LEVELS.items():
        _hold(logging.getLogger(name), level)
    logging.captureWarnings(True)
    _undo.append(lambda: logging.captureWarnings(False))
    try:
        yield
    finally:
        while _undo:
            _undo.pop()()
        radiomx_logger.removeHandler(ours)
        radiomx_logger.setLevel(saved[0])
        radiomx_logger.propagate = saved[1]
