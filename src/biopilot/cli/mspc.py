"""CLI: Batch MSPC models and alarms."""

from __future__ import annotations

import typer

app = typer.Typer(help="Batch MSPC models and alarms.", no_args_is_help=True)
