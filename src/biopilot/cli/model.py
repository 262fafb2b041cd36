"""CLI: Train and inspect soft-sensor models."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train and inspect soft-sensor models.", no_args_is_help=True)
