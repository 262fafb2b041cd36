"""CLI: Design and simulate acoustophoretic cell separation."""

from __future__ import annotations

import typer

app = typer.Typer(help="Design and simulate acoustophoretic cell separation.", no_args_is_help=True)
