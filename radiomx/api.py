"""The library API the CLI (and notebooks) call: ``extract``, ``scan``, ``status``, ``read_table``, ``compare``.

A facade: each function checks what the caller gave, chains the stages and returns one record. ``extract`` is the
only place that chains discover -> plan -> run -> store -> derive; the run itself is ``radiomx.run.Extraction``,
the reports ``radiomx.run.overview`` and the readers ``radiomx.store.readers``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from radiomx.derive.sessions import session_declaration
from radiomx.derive.settings import DeriveSettings, settings_for
from radiomx.discover.cohort import lesion_options_for
from radiomx.discover.layouts import Discovery, layout_of
from radiomx.discover.layouts import survey as _survey
from radiomx.errors import ConfigError, ScanError
from radiomx.options import ExtractOptions
from radiomx.records import Scan, ScanKey
from radiomx.run.extraction import Extraction, ProgressCallback, open_store, output_errors
from radiomx.run.overview import ScanListing, drafts, dry_run, run_params, scan_listing, status
from radiomx.run.summary import RunSummary
from radiomx.store.acknowledged import read_acknowledgements
from radiomx.store.lock import output_lock
from radiomx.store.outdir import state_path
from radiomx.store.readers import load_table, read_failures, read_table, stale_tracers
from radiomx.tracers import canonical_tracer, resolve_tracer

if TYPE_CHECKING:
    from radiomx.derive.compare import CompareSummary

__all__ = ["RunSummary", "ScanListing", "canonical_tracer", "compare", "extract", "load_table", "publish",
           "read_failures", "read_table", "scan", "scan_listing", "scan_states", "stale_tracers", "status",
           "survey"]


def scan(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None) -> list[Scan]:
    """Discover the scans of a cohort without extracting anything (``out``: where a DICOM export's header index is
    kept, see ``survey``)."""
    return survey(cohort, options, out).scans


def survey(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None) -> Discovery:
    """The scans of a cohort, and for a DICOM export the PET series waiting for a mask, the auto-detection line and
    the header index's summary. A DICOM export's header index is kept in ``out`` when that folder exists, else
    built in memory (``radiomx.discover.dicom_index``; ``extract`` saves it into the OUT it creates)."""
    return _survey(cohort, options or ExtractOptions(), Path(out) if out is not None else None)


def scan_states(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> list[tuple[Scan, str]]:
    """Each discovered scan with its state against OUT: new, changed, done, failed or negative (nothing written)."""
    return scan_listing(cohort, options, out).scans


def extract(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None,
            only: Iterable[ScanKey] | None = None, progress: ProgressCallback | None = None) -> RunSummary:
    """Extract every new, changed or previously failed scan of ``cohort`` into ``out`` (layout: docs/storage.md).

    ``only`` restricts the run to those scan keys (``radiomx scan ... | grep ... | radiomx extract --scans -``).
    Raises ConfigError (exit 2) before any work for configuration problems; per-scan problems are failures.
    """
    options = options or ExtractOptions()
    cohort, out = Path(cohort), Path(out)
    found = survey(cohort, options, out)
    wanted = set(only) if only is not None else None
    scans = [s for s in found.scans if wanted is None or s.key in wanted]
    params = run_params(scans, options)
    # A bad [derive]/[compare]/[sessions] section is exit 2 before any work.
    derive = replace(settings_for(cohort), export_sessions=found.layout == "dicom")
    session_declaration(cohort)
    summary = RunSummary(out=out, dry_run=options.dry_run, drafts=drafts(params),
                         acknowledgements=read_acknowledgements(out),
                         waiting=[w for w in found.waiting if wanted is None or w.key in wanted],
                         layout_note=found.note, index_line=found.summary)
    run = Extraction(cohort, out, options, scans, params, layout_of(cohort, options),
                     lesion_options_for(cohort, options), summary, {s.key for s in found.scans},
                     derive.as_record(), progress)
    if options.dry_run:
        return dry_run(run)
    _check_writable(out)
    if found.index_image:  # a first run into a new OUT: keep the export's index for the next one
        from radiomx.discover.dicom_index import save_index

        with output_errors(out):
            save_index(out, found.index_image)
    with output_lock(out, options.wait):
        summary = run.run()
        _derive_if_changed(cohort, out, derive, summary)
        return summary


def _check_writable(out: Path) -> None:
    """Create OUT and write a probe file in it: the only test that holds for root, read-only mounts and ACLs."""
    probe = out / f".radiomx-write-probe-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{out}: output folder is not writable ({exc.strerror}); choose another -o or fix its "
                          "permissions") from exc


def _derive_if_changed(cohort: Path, out: Path, settings: DeriveSettings, summary: RunSummary) -> None:
    """Rebuild burden, compare and patient tables after the last commit, only when rows changed (or the tables are
    missing, were built with another BSA formula, or the session order's declaration changed): a no-change rerun
    rewrites nothing."""
    from radiomx.derive.refresh import is_stale, refresh

    if summary.rows_changed or is_stale(out, settings, cohort):
        with output_errors(out):
            refresh(out, cohort, settings)


def _two_tracers(tracer_a: object, tracer_b: object = None) -> tuple[str, str]:
    """The two tracer names ``compare`` was given (see its docstring); anything else is refused in one line: a bare
    string used to be read as a sequence of characters ("unknown tracer folder '6'")."""
    usage = ('compare takes two tracers: compare(out, "68Ga-pentixafor", "18F-FDG"), compare(out, ("pentixafor", '
             '"fdg")) or compare(out, "pentixafor,fdg")')
    if tracer_b is not None:
        if not (isinstance(tracer_a, str) and isinstance(tracer_b, str)):
            raise ConfigError(f"{usage}; got {tracer_a!r}, {tracer_b!r} (give the cohort as cohort=...)")
        names = [tracer_a, tracer_b]
    elif isinstance(tracer_a, str):
        names = tracer_a.split(",")
    elif isinstance(tracer_a, (tuple, list)) and all(isinstance(t, str) for t in tracer_a):
        names = list(tracer_a)
    else:
        names = []
    names = [n.strip() for n in names]
    if len(names) != 2 or not all(names):
        raise ConfigError(f"{usage}; got {tracer_a!r}" + (f", {tracer_b!r}" if tracer_b is not None else ""))
    return names[0], names[1]


def publish(out: Path | str, wait: float = 0.0) -> list[str]:
    """Rewrite the published ``features/<tracer>.parquet`` of every tracer whose live parts are newer (a run was
    killed before its end); returns those tracers. ``extract`` does this itself at the end of every run."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"{out}: no output folder (run radiomx extract first)")
    with output_lock(out, wait), output_errors(out):
        return open_store(out).publish_stale()


def compare(out: Path | str, tracer_a: str | tuple[str, str] | list[str], tracer_b: str | None = None, *,
            cohort: Path | str | None = None, wait: float = 0.0) -> CompareSummary:
    """Write ``OUT/compare/<a>_vs_<b>.parquet`` (and refresh the patient table) from the stored rows.

    The two tracers: ``compare(out, "68Ga-pentixafor", "18F-FDG")``, or as one pair, ``compare(out, ("pentixafor",
    "fdg"))`` or ``compare(out, "pentixafor,fdg")`` (as ``--tracers`` takes them); folder aliases work. ``cohort``
    (keyword) gives the BSA setting, the ``[compare] same_frame`` declaration, the acquisition dates and the masks
    for lesion pairing; by default the cohort the last run recorded (``radiomx.store.runlog``), from whatever folder
    this is called. When no cohort can be found, the settings the last run recorded are used, dates and pairs
    already computed for unchanged scans are kept, and the others are null with a reason. The compare table is kept
    fresh by every later extract.
    """
    from radiomx.derive.refresh import refresh, refresh_inputs

    out = Path(out)
    try:
        a, b = (resolve_tracer(t).name for t in _two_tracers(tracer_a, tracer_b))
    except ScanError as exc:
        raise ConfigError(f"--tracers: {exc.detail}") from None
    cohort = Path(cohort) if cohort is not None else None
    if cohort is not None and not cohort.is_dir():
        raise ConfigError(f"{cohort}: cohort folder does not exist or is not a folder")
    if not state_path(out).exists():
        raise ConfigError(f"{out}: no radiomx tables (run radiomx extract first)")
    cohort, settings = refresh_inputs(out, cohort)
    with output_lock(out, wait), output_errors(out):
        summaries = refresh(out, cohort, settings, add_pair=(a, b))
    return next(s for s in summaries if (s.tracer_a, s.tracer_b) == (a, b))
