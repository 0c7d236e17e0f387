"""One exit-code table (``radiomx.errors``): every command returns through it, and every copy of it agrees.

README.md and docs/cli.md hold the table as ``exit_code_table()`` renders it, right after a marker line; ``radiomx
--help`` says ``exit_code_summary()``. To change a meaning, edit ``EXIT_CODES`` and paste ``exit_code_table()``
after both markers (this test prints it when they differ).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import (
    EXIT_CODES,
    ClusterError,
    ConfigError,
    ExitCode,
    LockHeldError,
    OutputError,
    RadiomxError,
    ScanError,
    exit_code,
    exit_code_summary,
    exit_code_table,
)
from radiomx.records import Failure, ScanKey
from radiomx.run.summary import RunSummary
from radiomx.store.acknowledged import Acknowledgements
from radiomx.vocabulary import Stage

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- exit codes: generated from radiomx/errors.py EXIT_CODES (tests/test_exit_codes.py) -->\n"


@pytest.mark.parametrize("doc", ["README.md", "docs/cli.md"])
def test_the_docs_table_is_the_generated_one(doc: str) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    assert MARKER in text, f"{doc}: the exit-code table's marker is missing"
    shown = text.split(MARKER, 1)[1].split("\n\n", 1)[0]
    assert shown == exit_code_table(), f"{doc}: paste this after the marker:\n{exit_code_table()}"


def test_no_other_copy_of_the_exit_codes_in_prose() -> None:
    """An enumeration of the codes ("0 ..., 1 ..., 2 ...") anywhere else would drift: docs link to the table."""
    enumeration = re.compile(r"\b0\b[^|]{3,120}?\b1\b[^|]{3,160}?\b2\b[^|]{0,60}?(usage|config|nothing)",
                             re.IGNORECASE)
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "radiomx").rglob("*.py"))]
    hits = []
    for path in files:
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        text = " ".join(text.replace(MARKER + exit_code_table(), "").split())
        hits += [f"{path.relative_to(REPO)}: {m.group(0)[:80]}" for m in enumerate_matches(enumeration, text)]
    assert not hits, hits


def enumerate_matches(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    return [m for m in pattern.finditer(text) if "exit" in text[max(0, m.start() - 80):m.start()].lower()]


def test_help_says_the_table() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert " ".join(exit_code_summary().split()) in " ".join(result.stdout.split())


@pytest.mark.parametrize("raised, code", [
    (ConfigError("bad"), ExitCode.USAGE), (LockHeldError("held"), ExitCode.USAGE),
    (ClusterError("down"), ExitCode.USAGE), (OutputError("full"), ExitCode.USAGE),
    (ScanError(Stage.LOAD, "x", "bad"), ExitCode.FAILURES), (RadiomxError("other"), ExitCode.FAILURES),
    (BrokenPipeError(), ExitCode.BROKEN_PIPE),
])
def test_raised_errors_map_by_the_table(raised: BaseException, code: ExitCode) -> None:
    assert exit_code(raised) == code
    assert code in EXIT_CODES


def test_click_usage_errors_agree_with_the_table() -> None:
    """Click exits 2 for its own usage errors (a bad option), the table's USAGE."""
    assert click.UsageError("x").exit_code == ExitCode.USAGE


def test_a_summary_exits_by_its_unacknowledged_failures(tmp_path: Path) -> None:
    key = ScanKey("P001", "", "18F-FDG")
    failure = Failure(key, Stage.LOAD, "P001/FDG/pet.nii.gz", "cannot read")
    assert exit_code(RunSummary(out=tmp_path)) == ExitCode.OK
    assert exit_code(RunSummary(out=tmp_path, failures=[failure])) == ExitCode.FAILURES
    (tmp_path / "acknowledged.tsv").write_text("patient_id\tsession\ttracer\tstage\treason\n"
                                               "P001\t\t18F-FDG\tload\tknown broken export\n")
    from radiomx.store.acknowledged import read_acknowledgements

    accepted = read_acknowledgements(tmp_path)
    assert isinstance(accepted, Acknowledgements)
    summary = RunSummary(out=tmp_path, failures=[failure], acknowledgements=accepted)
    assert exit_code(summary) == ExitCode.OK and summary.exit_code == 0
    assert exit_code(None) == ExitCode.OK and exit_code(ExitCode.USAGE) == ExitCode.USAGE


def test_every_command_returns_through_the_group() -> None:
    """No command picks its exit code itself: SystemExit and sys.exit appear only in the group
    (``radiomx/cli/commands.py``), and nothing but ``radiomx.errors`` defines an exit code."""
    for path in sorted((REPO / "radiomx").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "commands.py":
            assert "SystemExit" not in text and "sys.exit(" not in text, path
        if path.name != "errors.py":
            assert not re.search(r"^\s+exit_code\s*=\s*\d", text, re.MULTILINE), path
