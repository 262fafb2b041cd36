"""CLI: run the feeding NMPC on one unit of a running line, over OPC UA (``biopilot control``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, console, fail, print_json, print_table
from biopilot.cli.run_live import LineContext, setpoint_tagmap
from biopilot.cli.run_mpc import mpc_task, primed_controller
from biopilot.control import ControlMode
from biopilot.line import LineClient, LineConfigError, twin_tagmap
from biopilot.monitor.online import OnlineMonitor
from biopilot.monitor.online_models import build_online_models
from biopilot.store import Historian
from biopilot.store.line_ingest import HistorianSink, TagInfo
from biopilot.twin.bioreactor import DEFAULT_START_UTC

__all__ = ["register"]

control_app = typer.Typer(help="Model predictive feeding control of a unit, over OPC UA.")


def register(app: typer.Typer) -> None:
    """Add the control commands to ``app``."""
    app.add_typer(control_app, name="control")


@control_app.command("run")
def run(
    url: str = typer.Argument(..., help="The line's OPC UA endpoint, opc.tcp://HOST:PORT."),
    unit: str = typer.Option("BR-01", "--unit", help="The unit whose feeding is controlled."),
    units: int = typer.Option(3, "--units", min=1, help="Units the twin server serves."),
    mode: ControlMode = typer.Option(
        ControlMode.AUTOMATIC,
        "--mode",
        help="automatic: setpoints written; advisory: recommended, stored, not written; "
        "manual: the recipe runs (NaN written to the setpoints).",
    ),
    db: Path = typer.Option(Path("control.db"), "--db", help="Historian of the run (SQLite)."),
    hours: float = typer.Option(
        0.0, "--hours", min=0.0, help="Stop after this many batch hours (0: at harvest)."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Ingest the unit, estimate its state (soft sensors + UKF) and run the NMPC on it."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    if not url.startswith("opc.tcp://"):
        fail(f"url must start with opc.tcp://, got {url!r}")
    tagmap = twin_tagmap(units)
    if unit not in {t.unit for t in tagmap.tags}:
        names = sorted({t.unit for t in tagmap.tags})
        fail(f"--unit {unit!r}: a {units}-unit twin line has {names}")
    if not json_out:
        console.print("training the monitor's models on the twin (soft sensors, MSPC)...")
    models = build_online_models(soft_sensor_batches=6, mspc_batches=10, calibration_batches=0)
    if not json_out:
        console.print(f"NMPC on {unit} ({mode}): first plan (cold solve)...")
    controller = primed_controller()
    controller.mode = mode
    try:
        steps = asyncio.run(_control(url, unit, units, controller, models, db, hours, json_out))
    except (LineConfigError, OSError, RuntimeError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted: what was stored stays in the historian", 130)
    if json_out:
        print_json({"db": str(db), "unit": unit, "mode": str(mode), "decisions": steps})
        return
    print_table(f"NMPC decisions on {unit}", steps)
    console.print(f"historian: {db}   (events and audit trail: biopilot batches list --db {db})")


async def _control(
    url: str,
    unit: str,
    units: int,
    controller: Any,
    models: Any,
    db: Path,
    hours: float,
    quiet: bool,
) -> list[dict[str, Any]]:
    """Ingest ``unit`` into ``db``, monitor it and run the controller until ``hours``."""
    tagmap = twin_tagmap(units)
    mine = [t for t in tagmap.tags if t.unit == unit]
    infos = [TagInfo(t.unit, t.tag, t.units, t.kind == "spectrum") for t in mine]
    with Historian(db) as historian:
        sink = HistorianSink(historian, tagmap.site, tagmap.area, infos, batch_code="CTRL")
        monitor = OnlineMonitor(
            models,
            [unit],
            historian=historian,
            batch_of=sink.batch_ids.get,
            start_utc=DEFAULT_START_UTC,
        )

        async def fan_out(samples: list[Any]) -> None:
            await sink(samples)
            monitor.feed(samples)

        sub = tagmap.model_copy(update={"tags": mine})
        client = LineClient(url, sub, fan_out, since=sink.last_times(), backfill_all=True)
        sink.axes = client.axes
        stop, stop_ingest, stop_monitor = asyncio.Event(), asyncio.Event(), asyncio.Event()
        ingest = asyncio.create_task(client.run(stop_ingest))
        watch = asyncio.create_task(monitor.run(stop_monitor, period_s=0.5))
        ctx = LineContext(url, setpoint_tagmap(units), client, monitor, historian, None, stop)
        task: asyncio.Future[None] = asyncio.ensure_future(mpc_task(controller, unit)(ctx))
        shown = 0
        end_h = hours or controller.recipe.harvest_h
        try:
            while not task.done():
                steps = controller_steps(historian, sink, unit)
                for row in steps[shown:]:
                    if not quiet:
                        console.print(_line(row))
                shown = len(steps)
                est = monitor.units[unit].estimate
                if est is not None and est.t_h >= end_h:
                    break
                if ingest.done():
                    ingest.result()
                if watch.done():  # the estimate would never reach end_h: say why, stop
                    watch.result()
                    raise RuntimeError("the online monitor stopped before the run's end")
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, 10.0)
            stop_ingest.set()
            await asyncio.gather(ingest, return_exceptions=True)
            await sink.flush()
            stop_monitor.set()
            await asyncio.gather(watch, return_exceptions=True)
        return controller_steps(historian, sink, unit)


def controller_steps(historian: Historian, sink: HistorianSink, unit: str) -> list[dict[str, Any]]:
    """The controller decisions stored for ``unit``'s batch, as table rows."""
    batch = sink.batch_ids.get(unit)
    if batch is None:
        return []
    rows = []
    for e in historian.read_events(batch, kinds=["setpoint_change", "alarm"]):  # decisions
        d = e.payload.get("controller")
        if not isinstance(d, dict):
            continue
        sp = d.get("setpoints") or {}
        rows.append({
            "batch h": d["t_h"], "mode": d["mode"],
            "plan": "fallback" if d.get("fallback_reason") else _plan(str(d["status"])),
            "solve s": d["solve_time_s"], "feed L/h": sp.get("feed_l_per_h"),
            "bolus L": sp.get("feed_bolus_l"), "glucose L": sp.get("glucose_bolus_l"),
            "T degC": sp.get("temperature_c"), "written": len(d.get("written") or {}),
            "error": d.get("error") or d.get("fallback_reason") or "",
        })  # fmt: skip
    return rows


def _plan(status: str) -> str:
    """A short name of how the plan was obtained (the full status is in the stored event)."""
    for prefix, name in (
        ("previous plan", "re-simulated"),
        ("suboptimal", "capped"),
        ("Solve", "solved"),
        ("manual", "manual"),
        ("harvest", "harvest"),
    ):
        if status.startswith(prefix):
            return name
    return "failed"


def _line(row: dict[str, Any]) -> str:
    fmt = {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in row.items()}
    return "  ".join(f"{k} {v}" for k, v in fmt.items() if v not in ("", None))
