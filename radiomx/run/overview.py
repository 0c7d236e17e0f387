"""What a run would do, without doing it: the parameter files it uses, its dry-run plan, and each scan's state
against an output folder (``radiomx scan -o``, ``radiomx status``).

Why one module: a dry run, ``scan -o`` and ``status`` must agree with what ``extract`` then does, so all three
plan through ``Extraction.plan`` and name a scan's state by one rule (``radiomx.vocabulary.ScanState.of``). Nothing
is written here but a DICOM export's header index, and nothing heavy is imported (pandas only to return the
status table).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from radiomx.discover.cohort import lesion_options_for
from radiomx.discover.layouts import Discovery, layout_of, survey
from radiomx.errors import ConfigError
from radiomx.options import ExtractOptions
from radiomx.params.paramset import ParamSet, default_params_root, is_released, resolve_params
from radiomx.records import Scan
from radiomx.run.extraction import Extraction, stored_state
from radiomx.run.summary import RunSummary
from radiomx.tracers import get_tracer
from radiomx.vocabulary import ScanState, Stage

if TYPE_CHECKING:
    import pandas as pd


def _params_root(options: ExtractOptions) -> Path:
    root = Path(options.params_dir or default_params_root())
    if not root.is_dir():
        raise ConfigError(f"{root}: --params-dir does not exist")
    return root


def run_params(scans: list[Scan], options: ExtractOptions) -> dict[str, ParamSet]:
    """The parameter file of every tracer the run's scans use (a ``--scans`` selection: only its tracers); a
    missing or invalid one is a ConfigError (exit 2) before any work."""
    root = _params_root(options)
    tracers = sorted({s.key.tracer for s in scans if s.problem is None})
    return {t: resolve_params(root, get_tracer(t), options.params_version) for t in tracers}


def drafts(params: dict[str, ParamSet]) -> list[str]:
    """``68Ga-pentixafor v3`` for each parameter file the run uses that its tree's LOCK.json does not freeze."""
    return [f"{p.tracer} {p.version}" for _, p in sorted(params.items()) if not is_released(p)]


def dry_run(extraction: Extraction) -> RunSummary:
    """What the next run would do, from the stored state (nothing written)."""
    extraction.plan()
    return extraction.summary


def _reported_params(scans: list[Scan], options: ExtractOptions) -> tuple[list[Scan], dict[str, ParamSet]]:
    """The parameter files of a report on the whole cohort (``status``, ``scan -o``): a tracer whose file
    ``--params-dir`` lacks (or cannot read) does not stop the report, as it would stop a run that uses it; its
    scans are reported failed with the reason (a ``--scans`` selection without them runs). No PyRadiomics schema
    check: a report needs each file's version and hash, and stays light."""
    root = _params_root(options)
    params: dict[str, ParamSet] = {}
    problems: dict[str, str] = {}
    for tracer in sorted({s.key.tracer for s in scans if s.problem is None}):
        try:
            params[tracer] = resolve_params(root, get_tracer(tracer), options.params_version, validate=False)
        except ConfigError as exc:
            problems[tracer] = f"{exc}; a run needs it for these scans (or a --scans selection without them)"
    return [dataclasses.replace(s, problem=(Stage.PARAMS, "", problems[s.key.tracer]))
            if s.key.tracer in problems and s.problem is None else s for s in scans], params


def _reported_plan(cohort: Path, out: Path, options: ExtractOptions) -> tuple[RunSummary, Discovery]:
    """What the next run would do with the whole cohort, for a report, and what discovery found."""
    options = dataclasses.replace(options, dry_run=True)
    found = survey(cohort, options, out)
    scans, params = _reported_params(found.scans, options)
    summary = RunSummary(out=out, dry_run=True, waiting=found.waiting, layout_note=found.note,
                         index_line=found.summary)
    extraction = Extraction(cohort, out, options, scans, params, layout_of(cohort, options),
                            lesion_options_for(cohort, options), summary)
    return dry_run(extraction), found


@dataclass
class ScanListing:
    """What ``radiomx scan`` lists: each scan with its state against OUT ("" without OUT), the PET series of a DICOM
    export that wait for a mask, the auto-detection line and the export's index summary."""

    scans: list[tuple[Scan, str]]
    waiting: list[Scan] = field(default_factory=list)
    layout_note: str = ""
    index_line: str = ""


def _states(summary: RunSummary, out: Path) -> list[tuple[Scan, ScanState]]:
    stored = stored_state(out)
    return [(i.scan, ScanState.of(i.status, stored.get(i.scan.key, {}).get("status")))
            for i in summary.plan.items]  # type: ignore[union-attr]


def scan_listing(cohort: Path | str, options: ExtractOptions | None = None, out: Path | str | None = None
                 ) -> ScanListing:
    """The discovered scans, with their state against ``out`` when given (nothing written but an export's index)."""
    options = options or ExtractOptions()
    if out is None:
        found = survey(cohort, options)
        return ScanListing([(s, "") for s in found.scans], found.waiting, found.note, found.summary)
    summary, _ = _reported_plan(Path(cohort), Path(out), options)
    states: list[tuple[Scan, str]] = list(_states(summary, Path(out)))
    return ScanListing(states, summary.waiting, summary.layout_note, summary.index_line)


def status(cohort: Path | str, out: Path | str, options: ExtractOptions | None = None) -> pd.DataFrame:
    """Per tracer: scans done, negative (done, no lesion in the mask), pending (new), changed, failed, as the next
    run would see them, and vanished (stored in OUT, no longer in the cohort: rows kept until ``extract
    --prune``; their keys are in ``frame.attrs["vanished"]``); a DICOM export adds waiting. ``done`` and
    ``negative`` are disjoint."""
    import pandas as pd

    cohort, out = Path(cohort), Path(out)
    summary, found = _reported_plan(cohort, out, options or ExtractOptions())
    counts = Counter((scan.key.tracer, state) for scan, state in _states(summary, out))
    counts.update((key.tracer, ScanState.VANISHED) for key in summary.vanished)
    tracers = [*(i.scan.key.tracer for i in summary.plan.items), *(k.tracer for k in summary.vanished)]  # type: ignore[union-attr]
    columns = [s for s in ScanState if s is not ScanState.WAITING]
    if found.layout == "dicom":  # a DICOM export's PET series without a mask yet: not failures
        columns.append(ScanState.WAITING)
        counts.update((w.key.tracer, ScanState.WAITING) for w in found.waiting)
        tracers += sorted({w.key.tracer for w in found.waiting})
    rows = {t: {s.heading: counts[(t, s)] for s in columns} for t in dict.fromkeys(tracers)}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[s.heading for s in columns])
    frame = frame.rename_axis("tracer").reset_index()
    frame.attrs.update(layout_note=found.note, index_line=found.summary)  # for ``radiomx status`` to say
    frame.attrs["vanished"] = list(summary.vanished)
    frame.attrs["params_problems"] = sorted({i.scan.problem[2] for i in summary.plan.items  # type: ignore[union-attr]
                                             if i.scan.problem and i.scan.problem[0] == Stage.PARAMS})
    return frame

