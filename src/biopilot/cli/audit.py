"""CLI: GMP audit trail and users."""

from __future__ import annotations

import typer

app = typer.Typer(help="GMP audit trail and users.", no_args_is_help=True)
