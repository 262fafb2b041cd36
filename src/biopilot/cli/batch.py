"""CLI: list, show, export and report batches kept in the historian."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the batches/batch/report commands to ``app``."""
