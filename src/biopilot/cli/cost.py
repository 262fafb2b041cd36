"""CLI: Cost of goods with uncertainty."""

from __future__ import annotations

import typer

app = typer.Typer(help="Cost of goods with uncertainty.", no_args_is_help=True)
