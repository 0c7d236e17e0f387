"""A rerun whose scan fails before producing any row keeps that scan's last good rows.

Why: the nightly run must lose nothing already written (the brief). An input that becomes unreadable (a slice
truncated by a partial copy, a share that drops mid-run) used to replace a scan's lesion rows by nothing, and its
burden's TMTV by null, until someone noticed. A scan that fails before any lesion is measured (discovery, load,
geometry, SUV, or its worker lost) tells nothing new about the scan; its last good rows are still the best answer,
as long as everyone can see that they are old:

* the failures table gets this run's failure, its message saying that the rows of the last good extraction were
  kept and which inputs they came from (their ``image_sha256``, as in every lesion row);
* the state row keeps that extraction's figures (work key, hashes, lesion count, TMTV, references) with status
  "failed" and ``rows_kept_from`` = that ``image_sha256``: the run exits 1, ``radiomx status`` counts the scan as
  failed, the next run retries it, and the burden row keeps its figures with a note saying where they are from;
* the lesion rows stay as they were (``ScanOutcome.kept_rows``: the commit leaves them alone).

A scan that fails later (some lesions measured: "partial"), or whose changed inputs produce rows, replaces its rows
as always. A scan that never had a good extraction has nothing to keep.
"""

from __future__ import annotations

import dataclasses

from radiomx.records import ScanOutcome
from radiomx.vocabulary import ScanStatus, Stage

#: Stages that fail a scan before any lesion row exists: its last good rows say as much as ever.
BEFORE_ANY_ROW = frozenset({Stage.DISCOVER, Stage.LOAD, Stage.GEOMETRY, Stage.SUV, Stage.WORKER})


def last_good_sha(stored: dict | None) -> str:
    """The ``image_sha256`` of the stored rows a failure may keep ("" when the scan has none: never extracted, or
    its last extraction failed without keeping older rows)."""
    if not stored:
        return ""
    if stored.get("status") == ScanStatus.FAILED:
        return str(stored.get("rows_kept_from") or "")
    return str(stored.get("image_sha256") or "")


def keep_last_good(outcome: ScanOutcome, stored: dict | None) -> ScanOutcome:
    """``outcome`` as committed: unchanged, or (a failure before any row of a scan with a good extraction) the
    failure with the stored state and rows kept (module docstring)."""
    sha = last_good_sha(stored)
    if (not sha or outcome.rows or not outcome.failures
            or any(f.stage not in BEFORE_ANY_ROW for f in outcome.failures)):
        return outcome
    note = (f"; the rows of the last good extraction were kept (inputs image_sha256 {sha}); the next run retries "
            "this scan")
    outcome.failures = [dataclasses.replace(f, message=f.message + note) for f in outcome.failures]
    outcome.state = {**stored, "n_failed": len(outcome.failures), "rows_kept_from": sha}  # type: ignore[dict-item]
    outcome.kept_rows = True
    return outcome
