"""The biopilot command: one entry point, a sub-command group per concern."""

from __future__ import annotations

import typer

from biopilot import __version__
from biopilot.cli import batch, cost, plan, qc, separate, simulate

app = typer.Typer(
    name="biopilot",
    help="Pilot biomanufacturing lines: digital twin, historian, monitoring, QC, planning, cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate.register(app)
batch.register(app)
app.add_typer(qc.app, name="qc")
app.add_typer(plan.app, name="plan")
app.add_typer(cost.app, name="cost")
app.add_typer(separate.app, name="separate")


@app.command()
def version() -> None:
    """Print the biopilot version."""
    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
