"""The demo's unit under model predictive control: its feeding decided by the NMPC, over OPC UA.

A :data:`~biopilot.cli.run_live.LineTask` that runs a :class:`~biopilot.control.ControlLoop`
on one unit of the live line: the state estimate comes from the online monitor's UKF, the
setpoints and doses go to the plant through its own OPC UA session, each applied decision is
told to the estimator (the plant does not serve its feed log), stored as a batch event (the
cockpit's controller panel reads it) and written to the audit trail as a setpoint change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, cast

from asyncua import Client, ua

from biopilot.cli.run_live import LineContext, LineTask
from biopilot.control import Controller, ControlLoop, ControlMode, LoopStep, make_problem
from biopilot.line.address_space import node_text
from biopilot.store.audit import AuditTrail
from biopilot.store.records import NewEvent
from biopilot.twin import Recipe, default_recipe
from biopilot.twin.process import recipe_state0
from biopilot.web.api_control import ACCEPT_KEY, MODE_KEY

__all__ = ["MPC_ACTOR", "mpc_task", "primed_controller"]

#: Who the audit trail names for the controller's automatic setpoint changes.
MPC_ACTOR = "system:nmpc"
_log = logging.getLogger(__name__)


def primed_controller(recipe: Recipe | None = None) -> Controller:
    """Return an automatic controller whose first (cold, seconds-long) plan is made now.

    Made before the plant starts, so the loop's first decision on the line is a warm solve.
    """
    recipe = default_recipe() if recipe is None else recipe
    controller = Controller(recipe, problem=make_problem(recipe))
    controller.step(recipe_state0(recipe), 0.0)
    return controller


def mpc_task(
    controller: Controller, unit: str, *, site: str = "Site", area: str = "Area"
) -> LineTask:
    """Return the line task that runs ``controller`` on ``unit`` until the line stops."""

    async def task(ctx: LineContext) -> None:
        monitor = ctx.monitor.units[unit]
        # The MSPC model knows recipe-fed batches; a fed unit keeps the probe checks only.
        monitor.restrict_mspc([k for k in monitor.mspc_alarms if k == "t2_checks"])
        audit = AuditTrail(ctx.historian)
        while not ctx.stop.is_set():
            try:
                async with Client(ctx.endpoint) as client:
                    session = _Session(client, unit, site, area)
                    loop = ControlLoop(controller, unit, session.write, _estimate(monitor))
                    await _drive(ctx, loop, session, monitor, audit)
                return
            except (OSError, TimeoutError, ua.UaError) as err:  # the plant went away: retry
                _log.warning("MPC on %s: %s; reconnecting", unit, err)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.stop.wait(), 1.0)

    return task


class _Session:
    """Writes a unit's setpoints and reads its clock through one OPC UA session."""

    def __init__(self, client: Client, unit: str, site: str, area: str) -> None:
        self.client, self.unit = client, unit
        self.node = lambda tag, leaf: client.get_node(node_text(2, site, area, unit, tag, leaf))

    async def write(self, unit: str, tag: str, value: float) -> None:
        await self.node(tag, "SP").write_value(ua.Variant(float(value), ua.VariantType.Double))

    async def plant_time(self) -> datetime:
        """The plant's time now: the source time of the unit's latest reading."""
        dv = await self.node("ph", "PV").read_data_value()
        if dv.SourceTimestamp is None:
            raise ua.UaError(f"{self.unit}/ph has no source time: the plant is not serving")
        return cast(datetime, dv.SourceTimestamp)


def _estimate(monitor: Any) -> Any:
    def read() -> tuple[float, Any] | None:
        est = monitor.estimate  # one reference, replaced whole by the monitor's thread
        return None if est is None else (float(est.t_h), est)

    return read


async def _drive(
    ctx: LineContext, loop: ControlLoop, session: _Session, monitor: Any, audit: AuditTrail
) -> None:
    harvest_h = loop.controller.recipe.harvest_h
    seen, polled = 0, 0.0
    while not ctx.stop.is_set() and loop.next_h < harvest_h - 1e-9:
        now = asyncio.get_running_loop().time()
        if now - polled >= 1.0:  # the cockpit's decisions, through the historian
            polled = now
            decisions, seen = await asyncio.to_thread(_operator_events, ctx, loop.unit, seen)
            for kind, body in decisions:
                pending = loop.controller.pending
                if kind == MODE_KEY:
                    loop.controller.mode = ControlMode(body["mode"])
                    _log.info("%s: controller %s by %s", loop.unit, body["mode"], body["user"])
                elif pending is not None and body.get("t_h") == pending.t_h:
                    accepted = await loop.accept(body["user"])
                    await _apply(ctx, loop, session, monitor, audit, accepted)
        step = await loop.tick()
        if step is not None:
            await _apply(ctx, loop, session, monitor, audit, step)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.stop.wait(), 0.2)


async def _apply(
    ctx: LineContext,
    loop: ControlLoop,
    session: _Session,
    monitor: Any,
    audit: AuditTrail,
    step: LoopStep,
) -> None:
    """Record a step at the plant's time (estimator, event, audit)."""
    when = await session.plant_time()
    await asyncio.to_thread(_record, ctx, loop, step, monitor, audit, when)


def _operator_events(
    ctx: LineContext, unit: str, after_id: int
) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The cockpit's controller decisions on ``unit`` stored after event ``after_id``."""
    batch = ctx.monitor.batch_of(unit)
    if batch is None:
        return [], after_id
    out, last = [], after_id
    for e in ctx.historian.read_events(batch_id=batch, kinds=["operation"]):
        if e.id <= after_id:
            continue
        last = max(last, e.id)
        for key in (MODE_KEY, ACCEPT_KEY):
            if isinstance(e.payload.get(key), dict):
                out.append((key, e.payload[key]))
    return out, last


def _record(
    ctx: LineContext,
    loop: ControlLoop,
    step: LoopStep,
    monitor: Any,
    audit: AuditTrail,
    when: datetime,
) -> None:
    """Tell the estimator, store the decision as an event, audit the setpoint change."""
    d, unit = step.decision, loop.unit
    sp = d.setpoints if step.error is None and step.written and d.setpoints is not None else None
    if sp is not None:
        recipe = loop.controller.recipe
        bolus_medium, feed_medium = loop.controller.media_names
        feed = recipe.media[feed_medium].composition()
        u = (
            sp.feed_l_per_h,
            feed.glucose_g_per_l,
            feed.glutamine_mmol_per_l,
            feed.osmolality_mosm_per_kg,
            sp.temperature_c,
        )
        doses = [(sp.feed_bolus_l, recipe.media[bolus_medium].composition())]
        if recipe.glucose_feed is not None:
            doses.append((sp.glucose_bolus_l, recipe.glucose_feed.composition()))
        monitor.log_inputs(when, u, [(v, c) for v, c in doses if v > 0])
    payload = {
        "mode": str(d.mode),
        "t_h": d.t_h,
        "status": d.status,
        "solve_time_s": round(d.solve_time_s, 3),
        "predicted_harvest_kg": None if d.predicted_harvest_kg != d.predicted_harvest_kg
        else round(d.predicted_harvest_kg, 3),
        "setpoints": None if d.setpoints is None else {
            "feed_bolus_l": d.setpoints.feed_bolus_l,
            "glucose_bolus_l": d.setpoints.glucose_bolus_l,
            "feed_l_per_h": d.setpoints.feed_l_per_h,
            "temperature_c": d.setpoints.temperature_c,
        },
        "written": {k: (v if v == v else None) for k, v in step.written.items()},  # NaN: None
        "fallback_reason": d.fallback_reason,
        "error": step.error,
    }  # fmt: skip
    alarm = step.alarm
    event = NewEvent(
        time_utc=when,
        kind="alarm" if alarm is not None else "setpoint_change",
        severity="high" if alarm is not None else "info",
        message=alarm.message if alarm is not None else f"NMPC {d.mode}: {d.status}",
        payload={"controller": payload},
    )
    batch = ctx.monitor.batch_of(unit)
    ctx.historian.write_events(batch, unit, [event])
    if step.written:
        why = f"NMPC {d.mode} mode, decision at batch hour {d.t_h:g}"
        if d.inputs is None and step.alarm is None and loop.controller.accepted:
            why += f", accepted by {loop.controller.accepted[-1][1]}"
        audit.record(MPC_ACTOR, "setpoint_change", "unit", unit, reason=why, new=payload["written"])
