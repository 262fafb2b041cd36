"""CLI: the main job on embedded defaults (what `make run` starts): the live, monitored line.

``biopilot run`` trains the monitor's models on the twin (soft sensors, MSPC), starts the
plant -- three twin bioreactors served over OPC UA on an accelerated clock, BR-03 with a DO
probe drift -- records them into ``OUT/line.db`` through the line client, monitors them
online with a live terminal view, and writes ``OUT/report.html``. The cockpit serves the same
historian from the moment the line goes live (its own process) until Ctrl-C after the run
(``--no-serve``: none, for tests and CI). A first Ctrl-C during the live phase stops the plant
and finishes the run (everything served is still stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, console, fail, print_json, print_table, progress
from biopilot.cli.run_cockpit import CockpitProcess
from biopilot.cli.run_live import LineTask, LiveResult, LiveSettings, run_live
from biopilot.cli.run_plant import PlantConfig, PlantProcess
from biopilot.config import ConfigError
from biopilot.line import LineConfigError
from biopilot.line.twin_server import unit_names

__all__ = ["DEMO_FAULTS", "DEMO_SEED", "DEMO_SPEED", "DEMO_UNITS", "register", "run_demo"]

#: The demo line: three bioreactors; the third gets a DO probe drift so the monitor shows one.
DEMO_UNITS = 3
DEMO_SEED = 11  # units run twin seeds 11, 12, 13: typical batches, in control without a fault
DEMO_FAULTS = ("BR-03/do_probe_drift@8",)
#: Simulated seconds per wall second: a 14-day batch in about 2.5 minutes.
DEMO_SPEED = 8000.0
_SYSTEM = "system:biopilot-run"  # who deploys the demo's models (audit trail)


def register(app: typer.Typer) -> None:
    """Add the run command to ``app``."""

    @app.command("run")
    def run(
        out: Path = typer.Option(Path("runs"), "--out", help="Folder for the demo's files."),
        days: float = typer.Option(
            14.0, "--days", min=0.1, max=14.0, help="Culture days to run (14: to harvest)."
        ),
        speed: float = typer.Option(
            DEMO_SPEED, "--speed", min=1.0,
            help="Simulated seconds per wall second (8000: 14 days in ~2.5 min).",
        ),
        seed: int = typer.Option(DEMO_SEED, "--seed", help="Unit i runs twin seed + i - 1."),
        fault: list[str] = typer.Option(
            list(DEMO_FAULTS), "--fault",
            help="UNIT/NAME@DAY[:MAGNITUDE] injected in the plant (repeatable; 'none': none).",
        ),
        port: int = typer.Option(
            4840, "--port", min=0, max=65535, help="OPC UA port of the plant (0, busy: a free one)."
        ),
        serve: bool = typer.Option(
            True, "--serve/--no-serve", help="Cockpit on 127.0.0.1:PORT, live and after the run."
        ),
        http_port: int = typer.Option(
            8000, "--http-port", min=1, max=65535, help="Cockpit port (busy: a free one)."
        ),
        campaign: int = typer.Option(
            16, "--campaign", min=2, help="Designed twin batches the soft sensors learn from."
        ),
        good_batches: int = typer.Option(
            20, "--good-batches", min=4,
            help="Good twin batches of the MSPC model (and twice as many for its alarm limits).",
        ),
        mpc_unit: str = typer.Option(
            "BR-02", "--mpc-unit",
            help="Unit whose feeding the NMPC decides over OPC UA ('none': all on the recipe).",
        ),
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Run the live line: twin over OPC UA, ingest, monitor, NMPC, report, cockpit."""
        faults = [f for f in fault if f.lower() != "none"]
        if serve and (free := _free_or_any(http_port)) != http_port:
            console.print(f"[yellow]port {http_port} is busy: the cockpit will be on {free}[/]")
            http_port = free
        cockpit = CockpitProcess(out / "line.db", http_port, out / "cockpit.log") if serve else None
        with _sigterm_exits():
            try:
                summary = run_demo(out, days=days, speed=speed, seed=seed, faults=faults,
                                   port=port, quiet=json_out, training=(campaign, good_batches),
                                   mpc_unit=None if mpc_unit.lower() == "none" else mpc_unit,
                                   cockpit=cockpit)
            except (ConfigError, LineConfigError, ValueError, OSError, RuntimeError) as err:
                _stop(cockpit)
                fail(str(err))
            except KeyboardInterrupt:
                _stop(cockpit)
                fail("interrupted: the run was aborted (what was stored stays in the historian)",
                     130)
            if json_out:
                print_json(summary)
            else:
                _print_summary(summary)
            if cockpit is not None:
                _print_logins(cockpit)
                with contextlib.suppress(KeyboardInterrupt):
                    cockpit.wait()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM leaves through SystemExit (children stopped on the way out) while inside.

    The caller's own handler is back afterwards: the command may run inside another program
    (a test runner), whose handling of SIGTERM must not be left changed.
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: leave through SystemExit, so the children are stopped on the way out."""
    raise SystemExit(128 + signum)


def _stop(cockpit: CockpitProcess | None) -> None:
    if cockpit is not None:
        cockpit.stop()


def _print_logins(cockpit: CockpitProcess) -> None:
    """Where the cockpit is and the demo logins."""
    from biopilot.web.demo import DEMO_USERS

    rows = [{"user": d.username, "password": d.password, "role": d.role.value}
            for d in DEMO_USERS]  # fmt: skip
    print_table("demo users (never use on a real line)", rows)
    console.print(f"cockpit: {cockpit.url}  (API: {cockpit.url}docs; Ctrl-C stops it)")


def run_demo(
    out: Path,
    *,
    days: float = 14.0,
    speed: float = DEMO_SPEED,
    seed: int = DEMO_SEED,
    faults: Sequence[str] = DEMO_FAULTS,
    port: int = 4840,
    quiet: bool = False,
    training: tuple[int, int] = (16, 20),
    tasks: Sequence[LineTask] = (),
    mpc_unit: str | None = None,
    cockpit: CockpitProcess | None = None,
) -> dict[str, Any]:
    """Run the live demo line into ``out``; return its summary (JSON-ready).

    ``cockpit`` is started on the new historian as the line goes live, so the browser
    follows the run (it serves on after; the caller stops it).

    ``training`` is (designed batches of the soft sensors, good batches of the MSPC model);
    the MSPC alarm limits are calibrated on twice as many further good batches.

    ``tasks`` run beside the ingest (see :data:`~biopilot.cli.run_live.LineTask`): the seam
    for a controller writing setpoints to a unit over OPC UA; ``mpc_unit`` adds the NMPC's
    (:mod:`biopilot.cli.run_mpc`) on that unit.

    Raises
    ------
    ConfigError
        For a bad fault specification (the message names it).
    RuntimeError
        If the plant does not start or the ingest cannot connect.
    """
    from biopilot.cli.simulate import plan_line

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    if mpc_unit is not None and mpc_unit not in unit_names(DEMO_UNITS):
        raise ValueError(f"--mpc-unit {mpc_unit!r}: the demo line has {unit_names(DEMO_UNITS)}")
    plan = plan_line(DEMO_UNITS, None, seed, list(faults), None, None, raman=True)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "line.db"
    for stale in (db, db.with_name("line.db-wal"), db.with_name("line.db-shm")):
        stale.unlink(missing_ok=True)  # the demo's own historian, rebuilt on every run
    config = PlantConfig(units=DEMO_UNITS, seed=seed, speed=speed, port=_free_or_any(port),
                         faults=plan.faults, until_h=days * 24.0)
    plant = PlantProcess(config)
    t0 = time.monotonic()
    plant.start()  # imports and listens while the models train
    try:
        models = _train(quiet, *training)
        if mpc_unit is not None:
            tasks = [*tasks, _mpc(mpc_unit, quiet)]
        startup_s = time.monotonic() - t0
        if cockpit is not None:
            _start_cockpit(cockpit, db, quiet)
        try:
            result = asyncio.run(_live(LiveSettings(db=db), plant, models, tasks, quiet))
        except asyncio.CancelledError:  # a second Ctrl-C
            raise KeyboardInterrupt from None
    finally:
        if plant.served is None:
            with contextlib.suppress(Exception):
                asyncio.run(plant.stop(timeout_s=5.0))
    files = _save_models(models, out, db)
    units = _unit_rows(db, result, plan, mpc_unit)
    qc = _imaging(db, result, quiet)
    report = _report(db, result, units, out / "report.html", qc)
    summary = _summary(db, report, files, result, units, startup_s, time.monotonic() - t0, speed)
    return summary | {"imaging_qc": qc}


def _start_cockpit(cockpit: CockpitProcess, db: Path, quiet: bool) -> None:
    """Create the historian and start the cockpit on it."""
    from biopilot.store import Historian

    Historian(db).close()
    cockpit.start()
    if not quiet:
        _print_logins(cockpit)


def _mpc(unit: str, quiet: bool) -> LineTask:
    """The NMPC task of ``unit``, its first plan made now (before the line runs)."""
    from biopilot.cli.run_mpc import mpc_task, primed_controller

    if not quiet:
        console.print(f"NMPC on {unit}: first plan (cold solve, before inoculation)...")
    return mpc_task(primed_controller(), unit)


def _train(quiet: bool, campaign: int, good: int) -> Any:
    """Train the monitor's models on the twin, with a progress bar."""
    from biopilot.monitor.online_models import build_online_models

    with progress(not quiet) as bar:
        tasks: dict[str, Any] = {}

        def tell(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(f"training: {step}", total=total)
            bar.update(tasks[step], completed=done)

        return build_online_models(soft_sensor_batches=campaign, mspc_batches=good,
                                   calibration_batches=2 * good, progress=tell)


async def _live(
    settings: LiveSettings, plant: PlantProcess, models: Any, tasks: Sequence[LineTask],
    quiet: bool,
) -> LiveResult:
    """Run the line with the live view; the first Ctrl-C stops the plant, the second aborts."""
    from biopilot.cli.live_view import LiveView

    interrupt = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_sigint() -> None:
        if interrupt.is_set() and main is not None:
            main.cancel()
        interrupt.set()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        if quiet:
            return await run_live(settings, plant, models, tasks=tasks, interrupt=interrupt)
        with LiveView(console) as view:
            return await run_live(settings, plant, models, tasks=tasks, view=view,
                                  interrupt=interrupt)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


def _save_models(models: Any, out: Path, db: Path) -> dict[str, str]:
    """Save the models beside the historian and record their deployment in the audit trail."""
    from biopilot.monitor.modelio import save_model
    from biopilot.store import Historian
    from biopilot.store.audit import AuditTrail

    mspc = models.mspc.save(out / "mspc_model.json", models.metadata["mspc"])
    soft = save_model(models.soft_sensor, out / "softsensor.bpmodel",
                      models.metadata["soft_sensor"])
    with Historian(db) as historian:
        audit = AuditTrail(historian)
        for name, path in (("mspc", mspc), ("softsensor", soft)):
            audit.record(_SYSTEM, "model_deploy", "model", path.name,
                         reason="demo line start-up: trained on the digital twin",
                         new={"file": path.name, "monitor": name})
    return {"mspc_model": str(mspc), "soft_sensor_model": str(soft)}


def _imaging(db: Path, result: LiveResult, quiet: bool) -> list[dict[str, Any]]:
    """Image each batch's harvest sample in the imaging incubator and file the QC results."""
    from biopilot.cli.run_imaging import image_harvest_samples
    from biopilot.store import Historian

    if not quiet:
        console.print("imaging incubator: harvest samples on the lens-free sensor...")
    with Historian(db) as historian:
        return image_harvest_samples(historian, result.batch_ids)


def _report(
    db: Path, result: LiveResult, units: list[dict[str, Any]], path: Path,
    qc: list[dict[str, Any]],
) -> Path:
    import pandas as pd

    from biopilot.store import Historian
    from biopilot.web.report import write_report

    if not result.batch_ids:
        raise RuntimeError("nothing was recorded: no batch to report on")
    with Historian(db) as historian:
        return write_report(historian, list(result.batch_ids.values()), path,
                            title="biopilot demo line: 3 x 2000 L CHO fed-batch, live over OPC UA",
                            summary=pd.DataFrame(units),
                            extra_sections=[("Imaging QC: harvest samples (lens-free holography)",
                                             pd.DataFrame(qc).to_html(index=False, border=0))])


def _unit_rows(
    db: Path, result: LiveResult, plan: Any, mpc_unit: str | None
) -> list[dict[str, Any]]:
    """Per unit: batch, feeding, faults, samples served and stored, alarms raised, estimates."""
    from biopilot.store import Historian

    rows: list[dict[str, Any]] = []
    with Historian(db) as historian:
        for unit, batch_id in result.batch_ids.items():
            info = historian.batch(batch_id)
            alarms = Counter(
                e.payload.get("alarm") for e in historian.read_events(batch_id, kinds=["alarm"])
                if e.payload.get("transition") == "raised"
            )
            served = sum(n for (u, _), n in result.served.items() if u == unit)
            stored = sum(n for (u, t), n in result.stored.items()
                         if u == unit and (u, t) in result.served)
            last = result.estimates.get(unit, {})
            rows.append({
                "unit": unit, "batch": info.code, "status": info.status,
                # The MSPC process block knows recipe-fed batches: a fed unit's is information.
                "fed by": "NMPC (MSPC: probe checks)" if unit == mpc_unit else "recipe",
                "faults": ", ".join(f"{f.kind}@{f.onset_day:g}" for f in plan.faults[unit]) or "-",
                "served": served, "stored": stored,
                "VCD 1e6/mL": last.get("vcd_cells_per_ml", float("nan")) / 1e6,
                "titer g/L": last.get("titer_g_per_l", float("nan")),
                "alarms raised": ", ".join(f"{k} x{n}" for k, n in sorted(alarms.items())) or "-",
            })
    return rows


def _summary(
    db: Path, report: Path, files: dict[str, str], result: LiveResult,
    units: list[dict[str, Any]], startup_s: float, total_s: float, speed: float,
) -> dict[str, Any]:
    return {
        "db": str(db),
        "report": str(report),
        **files,
        "simulated_days": round(result.plant_h / 24.0, 3),
        "speed_sim_s_per_wall_s": speed,
        "startup_s": round(startup_s, 1),
        "live_s": round(result.wall_s, 1),
        "total_s": round(total_s, 1),
        "interrupted": result.interrupted,
        "missing_samples": sum(result.missing.values()),
        "units": units,
        "ingest": result.client,
        "monitor": result.monitor,
        "task_errors": result.task_errors,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    shown = ["unit", "batch", "fed by", "faults", "served", "stored", "VCD 1e6/mL", "titer g/L"]
    print_table("Demo line: what the plant served, the historian stored, the monitor estimated",
                summary["units"], shown)
    for u in summary["units"]:
        console.print(f"{u['unit']} alarms raised: {u['alarms raised']}", highlight=False)
    print_table("Imaging QC: harvest samples on the lens-free sensor", summary["imaging_qc"])
    missing = summary["missing_samples"]
    state = "[green]nothing lost[/]" if not missing else f"[bold red]{missing} samples missing[/]"
    console.print(
        f"{summary['simulated_days']:g} simulated days in {summary['live_s']:g} s "
        f"(start-up {summary['startup_s']:g} s, total {summary['total_s']:g} s); {state}"
    )
    console.print(f"historian: {summary['db']}   report: {summary['report']}")
    console.print(f"models: {summary['mspc_model']}, {summary['soft_sensor_model']}")


def _free_or_any(port: int) -> int:
    """``port`` if it is free on loopback, else a free one (0 asks for a free one)."""
    from biopilot.line.server import free_port

    if port == 0:
        return free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port
