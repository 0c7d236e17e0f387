"""Every command and every option is in docs/cli.md, and every command's --help has a summary and an example.

Like sqlite-utils' tests/test_docs.py: the Click command tree is walked, so a command added later (one module and
one ``cli.add_command`` line) is checked without editing this file, and a failure names exactly what to add.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from radiomx.cli import cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], (*path, name))


COMMANDS = [(" ".join(("radiomx", *path)), cmd) for path, cmd in _walk(cli)]
OPTIONS = [(name, opt) for name, cmd in COMMANDS for p in cmd.params if isinstance(p, click.Option)
           for opt in p.opts if opt.startswith("--")]


def _section(name: str) -> str:
    """The text under ``## `radiomx params show` `` (or ``###``) up to the next heading of that level or above."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(rf"^(#+) `{re.escape(name)}`[^\n]*\n", text, re.M)
    if not m:
        return ""
    end = re.search(rf"^#{{1,{len(m.group(1))}}} ", text[m.end():], re.M)
    return text[m.end(): m.end() + end.start() if end else len(text)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


def _documented(name: str) -> str:
    """A command's section plus the sections it links to (``[cohort options](#cohort-options)``), so options
    shared by several commands are described once."""
    own = _section(name)
    text = DOCS.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(#([a-z0-9-]+)\)", own))
    parts = [own]
    for m in re.finditer(r"^(#+) (.+)$", text, re.M):
        if _slug(m.group(2)) in linked:
            rest = text[m.end():]
            end = re.search(rf"^#{{1,{len(m.group(1))}}} ", rest, re.M)
            parts.append(rest[: end.start() if end else len(rest)])
    return "\n".join(parts)


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_every_command_has_a_section(name):
    assert _section(name), f"docs/cli.md: add a heading '## `{name}`' with a summary, its options and an example"


@pytest.mark.parametrize("name, option", OPTIONS, ids=[f"{n} {o}" for n, o in OPTIONS])
def test_every_option_is_documented_in_its_commands_section(name, option):
    assert re.search(rf"`{re.escape(option)}(?![\w-])", _documented(name)), (
        f"docs/cli.md: under '## `{name}`' add a line '- `{option}` ...' saying what it does")


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_every_section_has_an_example(name):
    assert re.search(rf"```sh\n[^`]*{re.escape(name)}", _section(name)), (
        f"docs/cli.md: under '## `{name}`' add a ```sh block with an example that runs `{name}`")


@pytest.mark.parametrize("name, command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_has_a_one_line_summary_and_a_worked_example(name, command):
    result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
    assert result.exit_code == 0, result.output
    summary = (command.help or "").strip().splitlines()
    assert summary and summary[0].endswith("."), f"{name}: the docstring's first line must be a one-line summary"
    assert len(summary[0]) <= 120, f"{name}: keep the summary line under 120 characters"
    assert re.search(r"^\s*Examples?:\n\s+radiomx ", result.output, re.M), (
        f"{name}: add an epilog '\\b\\nExample:\\n  radiomx ...' (a command a user can paste) to its --help")
