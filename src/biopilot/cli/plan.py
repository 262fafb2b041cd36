"""CLI: Schedule multi-product modular sites."""

from __future__ import annotations

import typer

app = typer.Typer(help="Schedule multi-product modular sites.", no_args_is_help=True)
