"""The closed loop over the line: every control interval, decide and write setpoints (OPC UA).

:class:`ControlLoop` wraps a :class:`~biopilot.control.Controller` for one unit. It polls an
estimate source (the state estimator of the monitor, or anything returning the batch time and
an estimate), and when the unit's batch time reaches the next control time it decides (the
solve runs in a worker thread, so the line keeps being served and ingested) and writes the
setpoints through a writer such as :meth:`biopilot.line.LineClient.write`:
``temperature_c`` and ``feed`` (held), ``bolus`` and ``glucose_bolus`` (dose commands). In
manual mode, or in advisory mode until a recommendation is accepted, it writes NaN to the held
setpoints once, which hands the unit back to its recipe. A write that fails (connection lost,
value refused) is recorded and alarmed; the loop goes on and the next interval writes again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from biopilot.control.controller import Controller
from biopilot.control.setpoints import Alarm, ControlDecision, ControlMode, Setpoints

__all__ = ["ControlLoop", "LoopStep", "SetpointWriter"]

#: Writes ``value`` to setpoint ``tag`` of ``unit`` (e.g. :meth:`LineClient.write`).
SetpointWriter = Callable[[str, str, float], Awaitable[None]]
#: Returns (batch time in hours, state estimate), or None while nothing is known yet.
EstimateSource = Callable[[], "tuple[float, Any] | None"]
_HELD = ("temperature_c", "feed")


@dataclass
class LoopStep:
    """One control step: the decision, what was written, and any write error."""

    decision: ControlDecision
    written: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    alarm: Alarm | None = None


class ControlLoop:
    """Run ``controller`` on ``unit`` of a line, writing its setpoints through ``write``.

    Parameters
    ----------
    controller : Controller
        The unit's controller (its mode decides whether anything is sent).
    unit : str
        The unit's name in the line's tag map.
    write : SetpointWriter
        Sends one setpoint (awaited).
    estimate : callable
        Returns ``(t_h, estimate)`` of the unit now, or None.
    on_step : callable, optional
        Called with each :class:`LoopStep` (store it as a batch event, audit it, show it).
    """

    def __init__(
        self,
        controller: Controller,
        unit: str,
        write: SetpointWriter,
        estimate: EstimateSource,
        *,
        on_step: Callable[[LoopStep], None] | None = None,
    ) -> None:
        self.controller, self.unit = controller, unit
        self.write, self.estimate, self.on_step = write, estimate, on_step
        self.next_h = 0.0
        self.steps: list[LoopStep] = []
        self._holding = False  # True while held setpoints of ours are in force on the unit

    async def tick(self) -> LoopStep | None:
        """Decide and write if the unit reached the next control time; else return None."""
        got = self.estimate()
        if got is None:
            return None
        t_h, est = got
        if t_h < self.next_h - 1e-9:
            return None
        interval = self.controller.interval_h
        t_k = math.floor(t_h / interval + 1e-9) * interval
        decision = await asyncio.to_thread(self.controller.step, est, t_k)
        self.next_h = t_k + interval
        step = LoopStep(decision, alarm=decision.alarm)
        if decision.inputs is not None and decision.setpoints is not None:
            await self._send(step, decision.setpoints)
        elif self._holding or decision.mode is ControlMode.MANUAL:
            await self._release(step)
        return self._done(step)

    async def accept(self, user: str) -> LoopStep:
        """Accept the pending advisory recommendation as ``user`` and write it now.

        Raises
        ------
        RuntimeError
            If no recommendation is pending.
        """
        pending = self.controller.pending
        self.controller.accept(user)
        assert pending is not None and pending.setpoints is not None
        step = LoopStep(pending)
        await self._send(step, pending.setpoints)
        return self._done(step)

    async def _send(self, step: LoopStep, sp: Setpoints) -> None:
        values = {
            "temperature_c": sp.temperature_c,
            "feed": sp.feed_l_per_h,
            "bolus": sp.feed_bolus_l,
            "glucose_bolus": sp.glucose_bolus_l,
        }
        await self._write_all(step, {k: v for k, v in values.items() if k in _HELD or v > 0})
        self._holding = True

    async def _release(self, step: LoopStep) -> None:
        await self._write_all(step, dict.fromkeys(_HELD, math.nan))
        if step.error is None:
            self._holding = False

    async def _write_all(self, step: LoopStep, values: dict[str, float]) -> None:
        for tag, value in values.items():
            try:
                await self.write(self.unit, tag, value)
            except Exception as err:
                step.error = f"{self.unit}/{tag} not written: {type(err).__name__}: {err}"
                step.alarm = Alarm(step.decision.t_h, "MPC_WRITE_FAILED", step.error, "alarm")
                return
            step.written[tag] = value

    def _done(self, step: LoopStep) -> LoopStep:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step
