"""The state row of a scan is built in one place (``records.new_state_row``) and must be what the store's schema says:
a column added to one and not the other would fail every commit, or be silently dropped."""

from __future__ import annotations

import pytest

from radiomx.records import ScanKey, new_state_row
from radiomx.store.tables import SCANS_SCHEMA

#: Added by the store when it commits (the scan's outcome and the commit time), not by who computes the scan.
STORE_ADDED = {"status", "updated_at"}


def test_state_row_has_exactly_the_schema_columns() -> None:
    row = new_state_row(ScanKey("P001", "", "18F-FDG"))
    assert set(row) == set(SCANS_SCHEMA.names) - STORE_ADDED
    assert (row["patient_id"], row["session"], row["tracer"], row["n_lesions"], row["work_key"]) == (
        "P001", "", "18F-FDG", 0, "")


def test_state_row_refuses_a_column_the_schema_does_not_have() -> None:
    with pytest.raises(KeyError, match="not a state column"):
        new_state_row(ScanKey("P001", "", "18F-FDG"), n_lesion=3)
