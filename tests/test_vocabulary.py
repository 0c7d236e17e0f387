"""The vocabulary (``radiomx.vocabulary``), ``LesionOptions`` and the lock file's description of its holder."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from radiomx.options import LesionOptions, RoiSelection
from radiomx.records import Failure, ScanKey, redact
from radiomx.store.lock import LOCK_NAME, output_lock
from radiomx.vocabulary import PlanStatus, ScanState, ScanStatus, Severity, Stage


@pytest.mark.parametrize("planned, stored, state", [
    (PlanStatus.NEW, None, ScanState.NEW), (PlanStatus.CHANGED, "ok", ScanState.CHANGED),
    (PlanStatus.RETRY, "failed", ScanState.FAILED), (PlanStatus.RETRY, "partial", ScanState.FAILED),
    (PlanStatus.INVALID, None, ScanState.FAILED), (PlanStatus.UNCHANGED, "ok", ScanState.DONE),
    (PlanStatus.UNCHANGED, "negative", ScanState.NEGATIVE), ("unchanged", ScanStatus.NEGATIVE, ScanState.NEGATIVE),
])
def test_one_rule_names_a_scans_state(planned, stored, state) -> None:
    """``radiomx scan -o`` and ``radiomx status`` both name a scan by ``ScanState.of``; negative is the stored
    status, nothing else."""
    assert ScanState.of(planned, stored) is state


def test_what_users_see_is_the_word_itself() -> None:
    assert [s.heading for s in ScanState] == ["done", "negative", "pending", "changed", "failed", "vanished",
                                              "waiting"]
    assert json.dumps({"stage": Stage.SUV, "status": PlanStatus.NEW}) == '{"stage": "suv", "status": "new"}'
    assert (Severity.FAILURE.label, Severity.WARNING.label) == ("FAILED", "WARNING")
    assert Failure(ScanKey("P1", "", "18F-FDG"), "load", "", "x").stage is Stage.LOAD
    with pytest.raises(ValueError):
        Failure(ScanKey("P1", "", "18F-FDG"), "loading", "", "x")  # a misspelt stage is an error, not a new word


@pytest.mark.parametrize("options", [LesionOptions(), LesionOptions("components", (3, 1, 3)),
                                     LesionOptions("labels", None, RoiSelection(("GTV*",), ("node*",)))])
def test_lesion_options_hash_as_the_tuple_did(options: LesionOptions) -> None:
    """The work key's lesion part is the JSON the ``(mode, labels, selection)`` tuple gave: no cohort recomputes
    because of the new spelling."""
    mode, labels, selection = options.mode, options.labels, options.selection
    before = {"lesions": [mode, list(labels) if labels else None], "select": selection.as_key()}
    assert options.as_key() == before
    record = {"lesions": mode, "labels": list(labels) if labels else None, "roi": list(selection.include),
              "exclude_roi": list(selection.exclude)}
    assert LesionOptions.from_record(record) == options


def test_the_lock_file_describes_its_holder_without_a_path(tmp_path: Path) -> None:
    seen: dict = {}

    def peek() -> None:
        seen.update(json.loads((tmp_path / LOCK_NAME).read_text()))

    with output_lock(tmp_path):
        thread = threading.Thread(target=peek)
        thread.start()
        thread.join()
    assert set(seen) == {"pid", "host", "started_at"} and seen["pid"] == os.getpid()
    assert os.sep not in json.dumps(seen)


@pytest.mark.parametrize("text, shown", [
    ("P1/FDG/pet_2023-08-15.nii.gz", "P1/FDG/pet_<DATE>.nii.gz"),
    ("P1/PET_WB_20230815101500_3.nii.gz", "P1/PET_WB_<DATE>_3.nii.gz"),
    ("pet.15.08.2023.nii", "pet.<DATE>.nii"), ("GTV Aug 15, 2023", "GTV <DATE>"), ("node 15 Aug 2023", "node <DATE>"),
    ("08/15/2023", "<DATE>"), ("1.2.826.0.1.3680043.10.543.777.1.dcm", "<UID>.dcm"),
    # QA2 D3: a UID after a prefix in a file name was shown whole.
    ("ZQXFILENAME_20240110_1.3.12.2.1107.5.1.4.1", "ZQXFILENAME_<DATE>_<UID>"),
    ("IMG1.3.12.2.1107.5.1.4.1.dcm", "IMG<UID>.dcm"), ("PET WB AC 1.2.3.4.5-2 v3.1.0", "PET WB AC <UID>-2 v3.1.0"),
    ("sha256 3e1a20230815aa" + "f" * 50, "sha256 3e1a20230815aa" + "f" * 50),  # a digest stays whole
    ("slice0011.dcm", "slice0011.dcm"), ("SUVmax 0.20230815", "SUVmax 0.20230815"), ("20231399", "20231399"),
])
def test_redact_dates_and_uids_but_not_digests_or_numbers(text: str, shown: str) -> None:
    assert redact(text) == shown
