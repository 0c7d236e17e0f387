"""``--log-format json``: every stderr line of real runs is an object with a severity and an event, as docs/cli.md
("JSON log lines") documents them, so that a cron alert can tell a failed scan from a harmless warning."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import make_cohort, write_volume

REPO = Path(__file__).resolve().parent.parent
RADIOMX = [sys.executable, "-m", "radiomx", "--log-format", "json"]
SEVERITY_LEVEL = {"failure": "error", "warning": "warning", "info": "info"}


def documented_events() -> dict[str, str]:
    """event -> severity, from the events table of docs/cli.md."""
    text = (REPO / "docs" / "cli.md").read_text()
    table = text[text.index("| event | severity |"):text.index("A cron alert")]
    events = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            events[name] = cells[1]
    return events


def lines_of(stderr: str) -> list[dict]:
    parsed = [json.loads(line) for line in stderr.splitlines()]  # every line is one object, or this raises
    events = documented_events()
    for line in parsed:
        assert {"ts", "level", "severity", "event", "logger", "message"} <= set(line), line
        assert line["severity"] in SEVERITY_LEVEL and line["event"] in events, line
        assert line["level"] == SEVERITY_LEVEL[line["severity"]], line
        if line["event"] != "library":
            assert events[line["event"]] == line["severity"], line
    return parsed


def test_a_failure_a_warning_and_an_acknowledged_failure_are_told_apart(tmp_path):
    """Issue 21.7: a FAILED line and a reference WARNING both said ``"level": "warning"``. Real lines of a real
    process: the failed scan is severity failure, the implausible reference region warning, the acknowledged
    failure info, the draft parameter file and the vanished scan warnings, the summary info with exit code 1."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}, "P003": {"FDG": 1},
                                               "P004": {"FDG": 1}})
    write_volume(np.ones((24, 32, 32), np.uint8), cohort / "P001" / "FDG" / "ref-kidney.nii.gz")  # unknown region
    for patient in ("P002", "P003"):
        (cohort / patient / "FDG" / "mask.nii.gz").unlink()
    out, mine = tmp_path / "out", tmp_path / "mine"
    subprocess.run([*RADIOMX, "params", "new", "fdg", "--params-dir", str(mine)], check=True, capture_output=True)
    first = subprocess.run([*RADIOMX, "extract", str(cohort), "-o", str(out), "-j", "1"], capture_output=True,
                           text=True)
    assert first.returncode == 1, first.stderr
    (out / "acknowledged.tsv").write_text("patient_id\tsession\ttracer\tstage\treason\nP003\t\tFDG\tdiscover\t"
                                          "mask lost at the site\n")
    (cohort / "P004" / "FDG" / "mask.nii.gz").rename(tmp_path / "kept.nii.gz")
    (cohort / "P004" / "FDG" / "pet.nii.gz").rename(tmp_path / "kept-pet.nii.gz")
    run = subprocess.run([*RADIOMX, "extract", str(cohort), "-o", str(out), "-j", "1", "--params-dir", str(mine)],
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    lines = lines_of(run.stderr)
    by_event: dict[str, list[dict]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    (failed,) = by_event["scan_failed"]
    assert (failed["severity"], failed["patient_id"], failed["stage"]) == ("failure", "P002", "discover")
    assert failed["message"].startswith("FAILED P002/18F-FDG [discover]") and "no mask found" in failed["detail"]
    (warning,) = by_event["scan_warning"]
    assert (warning["severity"], warning["patient_id"], warning["stage"]) == ("warning", "P001", "reference")
    (known,) = by_event["failure_acknowledged"]
    assert (known["severity"], known["patient_id"], known["reason"]) == ("info", "P003", "mask lost at the site")
    assert by_event["params_draft"][0]["severity"] == "warning" and by_event["params_draft"][0]["drafts"]
    (vanished,) = by_event["scans_vanished"]
    assert vanished["severity"] == "warning" and vanished["scans"] == ["P004/18F-FDG"]
    (summary,) = by_event["run_summary"]
    assert summary["severity"] == "info" and summary["exit_code"] == 1 and summary["acknowledged_scans"] == 1
    assert [line["patient_id"] for line in lines if line["severity"] == "failure"] == ["P002"]


def test_errors_and_other_commands_speak_the_same_schema(tmp_path):
    """An exit-2 error, and the lines of compare, report, publish and status-like commands, parse the same way."""
    error = subprocess.run([*RADIOMX, "extract", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")],
                           capture_output=True, text=True)
    assert error.returncode == 2
    (line,) = lines_of(error.stderr)
    assert (line["event"], line["severity"], line["exit_code"]) == ("error", "failure", 2)
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1, "pentixafor": 1}})
    out = tmp_path / "out"
    for command in (["extract", str(cohort), "-o", str(out), "-j", "1", "--dry-run"],
                    ["extract", str(cohort), "-o", str(out), "-j", "1"],
                    ["compare", str(out), "--tracers", "pentixafor,fdg"], ["report", str(out)],
                    ["publish", str(out)], ["qc", str(out)]):
        done = subprocess.run([*RADIOMX, *command], capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)
        events = [line["event"] for line in lines_of(done.stderr)]
        assert events and all(e != "message" for e in events), (command, events)


def test_every_event_the_code_emits_is_documented():
    """The events table of docs/cli.md names every ``emit("<event>", ...)`` of the CLI, and nothing else."""
    emitted = set()
    for path in (REPO / "radiomx" / "cli").glob("*.py"):
        emitted |= set(re.findall(r'\bemit\(\s*"(\w+)"', path.read_text()))
    assert emitted == set(documented_events()) - {"library"}, emitted ^ (set(documented_events()) - {"library"})
