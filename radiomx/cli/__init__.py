"""The ``radiomx`` command: Click commands only (parse, call one library function, print, pick the exit code).

Why ``main`` imports the commands only when called: the console script is ``from radiomx.cli import main``, and a
``spawn`` pool worker re-imports the parent's main script (``multiprocessing`` runs it as ``__mp_main__``). With
the commands imported here, every local-pool worker paid Click and all command modules (~90 ms) before its first
scan; now it pays this module only. ``cli`` stays importable (``from radiomx.cli import cli``, PEP 562).
"""

from __future__ import annotations

from typing import Any

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry."""
    from radiomx.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "cli":
        from radiomx.cli.commands import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
