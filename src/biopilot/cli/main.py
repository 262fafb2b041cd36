"""The biopilot command: one entry point, a sub-command group per concern."""

from __future__ import annotations

import typer

from biopilot import __version__
from biopilot.cli import (
    audit,
    batch,
    control,
    cost,
    line,
    model,
    mspc,
    plan,
    qc,
    qc_growth,
    qc_train,
    run,
    separate,
    serve,
    simulate,
    twin,
)

app = typer.Typer(
    name="biopilot",
    help="Pilot biomanufacturing lines: digital twin, historian, monitoring, QC, planning, cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run.register(app)
control.register(app)
simulate.register(app)
serve.register(app)
batch.register(app)
qc.app.command("culture")(qc_growth.culture)
qc.app.command("train")(qc_train.train)
qc.app.command("train-net")(qc_train.train_net)
qc.app.command("train-cores")(qc_train.train_cores)
qc.app.command("train-merge")(qc_train.train_merge)
qc.app.command("growth")(qc_growth.growth)
app.add_typer(qc.app, name="qc")
app.add_typer(plan.app, name="plan")
app.add_typer(cost.app, name="cost")
app.add_typer(separate.app, name="separate")
app.add_typer(twin.app, name="twin")
app.add_typer(line.app, name="line")
app.add_typer(model.app, name="model")
app.add_typer(mspc.app, name="mspc")
app.add_typer(audit.app, name="audit")


@app.command()
def version() -> None:
    """Print the biopilot version."""
    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
