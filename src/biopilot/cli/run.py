"""CLI: the main job on embedded defaults (what `make run` starts)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from biopilot.cli._common import JSON_OPTION, console, fail, print_json, print_table
from biopilot.cli.simulate import plan_line, run_line, summary_rows
from biopilot.config import ConfigError
from biopilot.store import Historian

#: The demo line: three bioreactors; the third gets a DO probe drift so the report shows one.
DEMO_UNITS = 3
DEMO_SEED = 7
DEMO_FAULTS = {"BR-03/do_probe_drift@8": 8.0}  # spec -> onset day


def register(app: typer.Typer) -> None:
    """Add the run command to ``app``."""

    @app.command("run")
    def run(
        out: Path = typer.Option(Path("runs"), "--out", help="Folder for the demo's files."),
        days: float = typer.Option(14.0, "--days", help="Campaign length (harvest day)."),
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Simulate a 3-bioreactor, 14-day fed-batch line, store it and write the report."""
        out.mkdir(parents=True, exist_ok=True)
        db = out / "line.db"
        for stale in (db, db.with_name("line.db-wal"), db.with_name("line.db-shm")):
            stale.unlink(missing_ok=True)  # the demo's own historian, rebuilt on every run
        try:
            faults = [f for f, onset in DEMO_FAULTS.items() if onset < days]
            plan = plan_line(DEMO_UNITS, days, DEMO_SEED, faults, None, None)
            with Historian(db) as historian:
                done = run_line(plan, historian, show_progress=not json_out)
                rows = summary_rows(done)
                from biopilot.web.report import write_report

                report = write_report(
                    historian, [rec.batch_id for _, rec in done], out / "report.html",
                    title="biopilot demo line: 3 x 2000 L CHO fed-batch",
                    summary=pd.DataFrame(rows),
                )
        except (ConfigError, ValueError, OSError) as err:
            fail(str(err))
        if json_out:
            print_json({"db": str(db), "report": str(report), "batches": rows})
            return
        print_table("Demo line: key figures from the at-line samples", rows)
        console.print(f"historian: {db}   report: {report}")
        console.print(f"next: biopilot batches list --db {db}")
