"""What a controller hands the operator and the plant: modes, setpoints, limits, decisions, alarms.

Setpoints are clamped to the equipment's limits and rate-limited against the last applied
ones before anything leaves the controller; a decision records what was proposed, what may be
applied, the prediction behind it and why it fell back to the recipe, if it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from biopilot.twin import PlantInputs

__all__ = [
    "Alarm",
    "ControlDecision",
    "ControlMode",
    "SetpointLimits",
    "Setpoints",
    "clamp_setpoints",
]


class ControlMode(StrEnum):
    """How the controller's output reaches the plant."""

    MANUAL = "manual"  # the recipe runs; the controller stays out
    ADVISORY = "advisory"  # the controller recommends; an authorised user accepts
    AUTOMATIC = "automatic"  # the controller's setpoints are applied


@dataclass(frozen=True)
class Setpoints:
    """One control interval's moves: boluses at its start, a held feed rate and temperature.

    ``feed_bolus_l`` of the bolus medium and ``glucose_bolus_l`` of glucose stock (L),
    ``feed_l_per_h`` of the continuous medium (L/h), ``temperature_c`` setpoint (degC).
    """

    feed_bolus_l: float = 0.0
    glucose_bolus_l: float = 0.0
    feed_l_per_h: float = 0.0
    temperature_c: float = 36.5

    def moves(self) -> np.ndarray:
        """Return ``[feed bolus L, glucose bolus L, feed L/h]`` (the NLP's move vector)."""
        return np.array([self.feed_bolus_l, self.glucose_bolus_l, self.feed_l_per_h])

    def plant_inputs(self, bolus_medium: str, feed_medium: str) -> PlantInputs:
        """Return the twin's (or the line's) inputs for the first step of the interval."""
        return PlantInputs(
            feed_l_per_h=self.feed_l_per_h,
            feed_medium=feed_medium,
            bolus_l=self.feed_bolus_l,
            bolus_medium=bolus_medium,
            glucose_bolus_l=self.glucose_bolus_l,
            temperature_setpoint_c=self.temperature_c,
        )


@dataclass(frozen=True)
class SetpointLimits:
    """Equipment limits (clamp) and the largest change per control interval (rate limit)."""

    feed_bolus_max_l: float = 60.0
    glucose_bolus_max_l: float = 20.0
    feed_max_l_per_h: float = 1.0
    feed_step_max_l_per_h: float = 0.5
    temperature_min_c: float = 32.0
    temperature_max_c: float = 37.5
    temperature_step_max_c: float = 4.0
    bolus_min_l: float = 0.1  # smallest dose a bolus pump delivers; below it nothing is dosed


@dataclass(frozen=True)
class Alarm:
    """An alarm raised by the controller (stored as an event by whoever logs decisions)."""

    t_h: float
    code: str
    message: str
    severity: str = "warning"


@dataclass(frozen=True)
class ControlDecision:
    """What one controller step decided, and on what grounds.

    Attributes
    ----------
    t_h : float
        Batch time of the decision, hours from inoculation.
    mode : ControlMode
        Mode the controller was in.
    setpoints : Setpoints or None
        The (clamped, rate-limited) recommendation; None in manual mode or on fallback.
    inputs : PlantInputs or None
        What to send the plant for the interval's first step; None = follow the recipe
        (manual mode, advisory mode until accepted, fallback).
    predicted_states : ndarray
        Predicted states (rows: interval boundaries to harvest; STATE_NAMES columns).
    predicted_harvest_kg : float
        Predicted harvested mAb, kg (NaN if no solve).
    status : str
        Solver status, or "manual".
    solve_time_s : float
        Wall time of the solves of this step, seconds.
    fallback_reason : str or None
        Why the recipe was used instead of the plan.
    alarm : Alarm or None
        Raised on fallback.
    shift_h : float or None
        Temperature-shift time of the plan, hours (None = no shift planned).
    theta : ndarray
        Parameter multipliers the plan used.
    notes : tuple of str
        Clamping and rate-limiting applied to the plan's first move.
    """

    t_h: float
    mode: ControlMode
    setpoints: Setpoints | None
    inputs: PlantInputs | None
    predicted_states: np.ndarray
    predicted_harvest_kg: float
    status: str
    solve_time_s: float
    fallback_reason: str | None = None
    alarm: Alarm | None = None
    shift_h: float | None = None
    theta: np.ndarray = field(default_factory=lambda: np.ones(0))
    notes: tuple[str, ...] = ()


def clamp_setpoints(
    proposed: Setpoints, previous: Setpoints | None, limits: SetpointLimits
) -> tuple[Setpoints, tuple[str, ...]]:
    """Clamp ``proposed`` to ``limits`` and rate-limit it against ``previous``.

    Non-finite values are replaced by the previous value (or the safe zero / lower bound).

    Returns
    -------
    (Setpoints, tuple of str)
        The safe setpoints and one note per value that was changed.
    """
    prev = Setpoints(temperature_c=proposed.temperature_c) if previous is None else previous
    notes: list[str] = []

    def safe(name: str, value: float, lo: float, hi: float, step: float | None) -> float:
        v = value if np.isfinite(value) else getattr(prev, name)
        if not np.isfinite(v):
            v = lo
        if step is None and v < lim.bolus_min_l:  # a bolus: below the pump's smallest dose
            v = 0.0
        if step is not None:
            v = min(max(v, getattr(prev, name) - step), getattr(prev, name) + step)
        v = min(max(v, lo), hi)
        if abs(v - value) > 1e-6 or not np.isfinite(value):
            notes.append(f"{name}: {value:.4g} -> {v:.4g}")
        return float(v)

    lim = limits
    return (
        replace(
            proposed,
            feed_bolus_l=safe(
                "feed_bolus_l", proposed.feed_bolus_l, 0.0, lim.feed_bolus_max_l, None
            ),
            glucose_bolus_l=safe(
                "glucose_bolus_l", proposed.glucose_bolus_l, 0.0, lim.glucose_bolus_max_l, None
            ),
            feed_l_per_h=safe(
                "feed_l_per_h",
                proposed.feed_l_per_h,
                0.0,
                lim.feed_max_l_per_h,
                lim.feed_step_max_l_per_h,
            ),
            temperature_c=safe(
                "temperature_c",
                proposed.temperature_c,
                lim.temperature_min_c,
                lim.temperature_max_c,
                lim.temperature_step_max_c,
            ),
        ),
        tuple(notes),
    )
