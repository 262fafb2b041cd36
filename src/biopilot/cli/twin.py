"""CLI: Serve the digital twin as an OPC UA server."""

from __future__ import annotations

import typer

app = typer.Typer(help="Serve the digital twin as an OPC UA server.", no_args_is_help=True)
