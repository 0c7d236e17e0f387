"""Which cohort and which options the last run of an output folder used, from its run log (``OUT/runs.parquet``,
columns ``cohort`` and ``options``).

Why one module: ``radiomx qc`` (to draw pictures again), ``radiomx compare`` and the derived tables' refresh need the
cohort long after the run, from whatever folder they are started. The cohort gives the masks, the acquisition dates
and the ``[derive]``/``[compare]`` settings. An OUT written by the library has no command line to parse. Every run
writes both columns (``options_json``, ``relative_to_out``) and every reader asks here (``last_run``,
``recorded_run``).

The cohort is stored relative to OUT, and only when that path names no folder but the cohort's own (``../cohort``,
``../../cohort``). So it stays valid when OUT and the cohort move together, and it never names a folder that may
identify a patient (``../Smith_John/cohort``). No absolute path is ever stored. The options record how scans were
found and split (patterns, units, lesion mode, parameter version and folder), and the derive settings the cohort
declared, so that a table refreshed without the cohort is built as the run built it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radiomx.errors import ConfigError
from radiomx.options import ExtractOptions, RoiSelection


@dataclass(frozen=True)
class RecordedRun:
    """The last run that recorded how it read its cohort."""

    #: The cohort folder as found from here (resolved against OUT), or None when not recorded or not a folder now.
    cohort: Path | None
    #: The cohort as stored, relative to OUT ("" when the run could not record it).
    recorded: str
    #: How scans were read (``options_json``): patterns, pet_units, lesions, labels, params version and folder.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def derive(self) -> dict[str, Any]:
        """The ``[derive]``/``[compare]`` settings the run's cohort declared (empty in older run logs)."""
        return dict(self.options.get("derive") or {})

    def extract_options(self, out: Path | str) -> ExtractOptions:
        """The options that find and split scans as the run did: with them, ``discover.layouts.survey`` finds the
        run's scans (and their files) again."""
        o, ids = self.options, self.options.get("patient_ids")
        return ExtractOptions(
            image_patterns=tuple(o.get("image_patterns") or ()), mask_patterns=tuple(o.get("mask_patterns") or ()),
            pet_units=o.get("pet_units"), lesions=o.get("lesions") or "labels",
            labels=tuple(o.get("labels") or ()) or None, roi=tuple(o.get("roi") or ()),
            exclude_roi=tuple(o.get("exclude_roi") or ()), layout=o.get("layout") or "auto",
            default_tracer=o.get("default_tracer"), patient_ids=(Path(out) / ids).resolve() if ids else None, jobs=1)


def relative_to_out(path: Path | str, out: Path | str) -> str:
    """``path`` as seen from OUT, or "" when that would name a folder other than the target's own (see the module
    docstring); ``..`` alone says nothing and is not recorded either."""
    relative = os.path.relpath(Path(path).resolve(), Path(out).resolve())
    named = [part for part in Path(relative).parts if part != ".."]
    return relative if len(named) == 1 else ""


def options_json(options: ExtractOptions, out: Path, derive: dict[str, Any] | None = None,
                 selection: RoiSelection | None = None) -> str:
    """The options that decide how scans were found, read and split (not engine settings), the lesion selection as
    it was in effect (``--roi``/``--exclude-roi`` or the cohort's ``[lesions]``), and the derive settings, as the
    run log records them."""
    selection = selection or RoiSelection(options.roi, options.exclude_roi)
    return json.dumps({
        "roi": list(selection.include), "exclude_roi": list(selection.exclude),
        "image_patterns": list(options.image_patterns), "mask_patterns": list(options.mask_patterns),
        "pet_units": options.pet_units, "lesions": options.lesions,
        "labels": list(options.labels) if options.labels else None, "params_version": options.params_version,
        "params_dir": relative_to_out(options.params_dir, out) if options.params_dir else None,
        "layout": options.layout, "default_tracer": options.default_tracer,
        "patient_ids": relative_to_out(options.patient_ids, out) if options.patient_ids else None,
        "derive": derive or {},
    }, sort_keys=True)


def last_run(out: Path | str) -> RecordedRun | None:
    """The latest run of OUT that recorded its options (None for a fresh OUT or an old run log only)."""
    out = Path(out)
    if not (out / "runs.parquet").is_file():
        return None
    from radiomx.store.tables import Store

    runs = Store(out).read_runs()
    usable = runs[runs["options"].fillna("") != ""] if len(runs) else runs
    if not len(usable):
        return None
    last = usable.sort_values("started_at", kind="stable").iloc[-1]
    recorded = str(last["cohort"] or "")
    folder = (out / recorded).resolve() if recorded else None
    return RecordedRun(folder if folder is not None and folder.is_dir() else None, recorded,
                       json.loads(last["options"]))


def cohort_of(out: Path | str, given: Path | str | None = None) -> Path | None:
    """The cohort a command on OUT works with: ``given`` (``--cohort``), else the last run's, if still a folder."""
    if given is not None:
        return Path(given)
    run = last_run(out)
    return run.cohort if run is not None else None


def recorded_run(out: Path | str, cohort: Path | None = None, params_dir: Path | None = None) -> RecordedRun:
    """The last run with ``cohort``/``params_dir`` given by the user taking precedence, the params folder resolved
    to a path; a ConfigError saying what to pass when the cohort or the params folder cannot be found."""
    out = Path(out)
    run = last_run(out)
    if run is None:
        raise ConfigError(f"{out}: no run in runs.parquet records how its scans were read (run `radiomx extract` "
                          "with this radiomx version once; it skips unchanged scans)")
    options = dict(run.options)
    if params_dir is not None:
        options["params_dir"] = str(Path(params_dir).resolve())
    elif options.get("params_dir") == "":
        raise ConfigError(f"{out}: the last run's --params-dir was not recorded (its path names other folders); "
                          "pass --params-dir")
    elif options.get("params_dir"):
        options["params_dir"] = str((out / options["params_dir"]).resolve())
    if cohort is None:
        if not run.recorded:
            raise ConfigError(f"{out}: the cohort's path was not recorded (it is not beside OUT or beside one of its "
                              "parents, and other folder names are never stored); pass --cohort")
        cohort = out / run.recorded
    cohort = Path(cohort).resolve()
    if not cohort.is_dir():
        raise ConfigError(f"{out}: the cohort ({run.recorded or cohort.name}) is not a folder; pass --cohort or "
                          "move it back beside OUT")
    return RecordedRun(cohort, run.recorded, options)
