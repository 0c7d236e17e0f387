"""The order of a patient's sessions (radiomx.derive.sessions): declared in radiomx.toml or by sessions.tsv
acq_time, never guessed from names, and no date in anything it returns."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiomx.derive.sessions import (
    ACQ_TIME,
    DECLARED,
    ONE_SESSION,
    UNDECLARED,
    SessionDeclaration,
    order_sessions,
    session_declaration,
)
from radiomx.errors import ConfigError


def toml(tmp_path: Path, text: str) -> Path:
    (tmp_path / "radiomx.toml").write_text(text)
    return tmp_path


def test_a_declared_order_and_baseline(tmp_path):
    cohort = toml(tmp_path, '[sessions]\norder = ["ses-screen", "base", "interim", "eot"]\nbaseline = "base"\n')
    declaration = session_declaration(cohort)
    assert declaration == SessionDeclaration(("screen", "base", "interim", "eot"), "base")
    order = order_sessions(["eot", "base", "extra"], declaration)
    assert (order.sessions, order.baseline, order.source) == (("screen", "base", "interim", "eot"), "base", DECLARED)
    assert order.unplaced == (("extra", "not in radiomx.toml [sessions] order: not compared"),)
    assert session_declaration(toml(tmp_path, "")).baseline is None


@pytest.mark.parametrize("text, message", [
    ('[sessions]\nsort = "name"\n', "unknown [sessions] key(s): sort"),
    ('[sessions]\norder = "base, fu"\n', "order must be a list of session labels"),
    ('[sessions]\norder = ["base", "fu", "base"]\n', "order names base twice"),
    ('[sessions]\norder = ["base", "fu"]\nbaseline = "screen"\n', "baseline 'screen' is not in order"),
    ('[sessions]\nbaseline = 1\n', "baseline must be a session label"),
])
def test_a_bad_declaration_is_a_configuration_error_naming_the_file(tmp_path, text, message):
    cohort = toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        session_declaration(cohort)
    assert str(caught.value).startswith(f"{cohort / 'radiomx.toml'}: ") and message in str(caught.value)


def test_names_are_never_sorted_without_a_declaration():
    order = order_sessions(["1", "2"])
    assert order.sessions == () and order.baseline is None
    assert order.unplaced == (("1", UNDECLARED), ("2", UNDECLARED))


def test_one_session_needs_no_declaration():
    assert order_sessions([""]) == order_sessions([""], SessionDeclaration())
    order = order_sessions([""])
    assert (order.sessions, order.baseline, order.source, order.unplaced) == (("",), "", ONE_SESSION, ())


def test_acq_time_orders_with_offsets_and_lists_what_it_cannot_place():
    times = {"b": "2021-03-02T00:30:00Z", "a": "2021-03-01T23:30:00-02:00",  # a is 01:30 UTC on the 2nd: after b
             "c": "2021-01-10T08:00:00", "d": "2021-01-10T08:00:00", "e": "2021-13-45T99:00"}
    order = order_sessions(["a", "b", "c", "d", "e", "f"], SessionDeclaration(), times)
    assert (order.sessions, order.baseline, order.source) == (("b", "a"), "b", ACQ_TIME)
    unplaced = dict(order.unplaced)
    assert unplaced["c"] == "same acq_time as session d: order unknown"
    assert unplaced["e"] == "acq_time '9999-99-99T99:99' (digits masked) is not an ISO 8601 date-time"
    assert unplaced["f"] == "no acq_time in sessions.tsv: not placed in time"
    assert "2021" not in repr(order), "the order carries no date"


def test_a_declared_baseline_applies_to_acq_time_order():
    order = order_sessions(["x", "y"], SessionDeclaration((), "y"), {"x": "2020-01-01", "y": "2020-02-01"})
    assert (order.sessions, order.baseline) == (("x", "y"), "y")
