"""CLI: Holographic in-process QC of cells: synthesise, analyse, release."""

from __future__ import annotations

import typer

app = typer.Typer(help="Holographic in-process QC of cells: synthesise, analyse, release.", no_args_is_help=True)
