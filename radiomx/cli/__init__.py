"""The ``radiomx`` command: Click commands only (parse, call one library function, print, pick the exit code)."""

from radiomx.cli.commands import cli, main

__all__ = ["cli", "main"]
