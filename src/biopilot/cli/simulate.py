"""CLI: simulate a line of bioreactors with the digital twin into the historian."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the simulate command to ``app``."""
