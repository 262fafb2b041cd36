"""CLI: Connect to a line over OPC UA and record it into the historian."""

from __future__ import annotations

import typer

app = typer.Typer(help="Connect to a line over OPC UA and record it into the historian.", no_args_is_help=True)
