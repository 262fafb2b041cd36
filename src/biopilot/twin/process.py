"""Integrate the culture kinetics through a recipe: feeds, shift, glucose top-ups and faults."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import odeint

from biopilot.models.kinetics import (
    FLOAT_OPS,
    INPUT_NAMES,
    STATE_NAMES,
    KineticParameters,
    add_bolus,
    derivatives,
    initial_state,
)
from biopilot.twin.faults import Fault, feed_factor, temperature_offset_c
from biopilot.twin.recipe import Recipe

__all__ = [
    "FeedEvent",
    "Trajectory",
    "bolus_plan",
    "deliver",
    "integrate",
    "integrate_recipe",
    "recipe_state0",
    "segment_inputs",
    "temperature_setpoint_c",
]

# Absolute tolerances per state (cells/mL, g/L, mmol/L, L, mOsm/kg, g, g, L).
_ATOL = np.array([1.0, 1.0, 1e-7, 1e-7, 1e-7, 1e-7, 1e-7, 1e-6, 1e-5, 1e-5, 1e-5, 1e-8])
_RTOL = 1e-7


@dataclass(frozen=True)
class FeedEvent:
    """A bolus actually delivered to the vessel (after any pump fault)."""

    t_h: float
    kind: str  # "bolus_feed" or "glucose_feed"
    medium: str
    volume_l: float
    glucose_g: float
    planned_volume_l: float


@dataclass
class Trajectory:
    """True states and inputs of a batch on a regular time grid (hours)."""

    t_h: np.ndarray
    states: np.ndarray  # (n_states, n_t)
    inputs: np.ndarray  # (n_inputs, n_t)
    feeds: list[FeedEvent] = field(default_factory=list)
    pre_event: dict[float, np.ndarray] = field(default_factory=dict)  # state before boluses


def recipe_state0(recipe: Recipe, seed_factor: float = 1.0) -> np.ndarray:
    """Return the state at inoculation for ``recipe`` (seeding density times ``seed_factor``)."""
    return initial_state(
        recipe.seeding_density_cells_per_ml * seed_factor,
        recipe.initial_volume_l,
        recipe.initial_glucose_g_per_l,
        recipe.initial_glutamine_mmol_per_l,
        recipe.initial_osmolality_mosm_per_kg,
        recipe.seeding_viability_pct / 100.0,
    )


def integrate(
    x0: np.ndarray, u: Sequence[float], p: KineticParameters, t_h: np.ndarray
) -> np.ndarray:
    """Integrate the kinetics with constant inputs ``u`` over times ``t_h`` (first = start).

    Returns
    -------
    ndarray
        States at ``t_h``, shape ``(len(t_h), n_states)``.
    """
    uu = [float(v) for v in u]

    def rhs(_t: float, x: np.ndarray) -> list[float]:
        return derivatives(x.tolist(), uu, p, FLOAT_OPS)

    return np.asarray(odeint(rhs, x0, t_h, rtol=_RTOL, atol=_ATOL, tfirst=True, mxstep=20000))


def integrate_recipe(
    recipe: Recipe,
    p: KineticParameters,
    *,
    step_h: float = 1.0 / 60.0,
    x0: np.ndarray | None = None,
    glucose_assay_factors: np.ndarray | None = None,
    faults: Sequence[Fault] = (),
) -> Trajectory:
    """Simulate the true culture through ``recipe`` on a grid of ``step_h`` hours.

    Parameters
    ----------
    recipe : Recipe
        Feeds, temperature profile, glucose top-up rule and harvest time.
    p : KineticParameters
        Kinetic parameters of this batch.
    step_h : float
        Output grid step, hours (1 min by default).
    x0 : ndarray, optional
        State at inoculation; default :func:`recipe_state0`.
    glucose_assay_factors : ndarray, optional
        Multiplicative error of each daily at-line glucose reading that drives the top-up
        (index = day); default exact.
    faults : sequence of Fault
        Faults that act on the process (feed pump, temperature).

    Returns
    -------
    Trajectory
        States and inputs on the grid, and the boluses delivered.
    """
    n = round(recipe.harvest_h / step_h) + 1
    t = np.arange(n) * step_h
    x = recipe_state0(recipe) if x0 is None else np.asarray(x0, dtype=float)
    plan = bolus_plan(recipe, faults)
    states = np.empty((len(STATE_NAMES), n))
    inputs = np.empty((len(INPUT_NAMES), n))
    feeds: list[FeedEvent] = []
    pre: dict[float, np.ndarray] = {}
    cuts = sorted({0.0, *plan, recipe.harvest_h})
    for a, b in itertools.pairwise(cuts):
        pre[a] = x.copy()
        for kind, medium, planned in plan.get(a, []):
            x = deliver(x, recipe, faults, a, kind, medium, planned, glucose_assay_factors, feeds)
        u = segment_inputs(recipe, faults, a, b)
        lo, hi = np.searchsorted(t, [a - 1e-9, b - 1e-9])
        on_grid = hi > lo and abs(t[lo] - a) < 1e-9
        grid = np.concatenate((t[lo:hi] if on_grid else [a, *t[lo:hi]], [b]))
        sol = integrate(x, u, p, grid)
        states[:, lo:hi] = sol[0 if on_grid else 1 : -1].T
        inputs[:, lo:hi] = np.asarray(u)[:, None]
        x = sol[-1]
    states[:, -1] = x
    inputs[:, -1] = inputs[:, -2]
    pre[recipe.harvest_h] = x.copy()
    return Trajectory(t, states, inputs, feeds, pre)


def segment_inputs(recipe: Recipe, faults: Sequence[Fault], a: float, b: float) -> list[float]:
    """Return the kinetic inputs held constant on ``[a, b)`` hours (feeds mixed, temperature)."""
    mid = 0.5 * (a + b)
    day = mid / 24.0
    rate = glc = gln = osm = 0.0
    pump = feed_factor(faults, mid)
    for c in recipe.continuous_feeds:
        if c.start_day <= day < c.end_day:
            m = recipe.media[c.medium]
            r = c.rate_l_per_day / 24.0 * pump
            rate += r
            glc += r * m.glucose_g_per_l
            gln += r * m.glutamine_mmol_per_l
            osm += r * m.osmolality_mosm_per_kg
    scale = 1.0 / rate if rate > 0 else 0.0
    return [
        rate,
        glc * scale,
        gln * scale,
        osm * scale if rate > 0 else 300.0,
        temperature_setpoint_c(recipe, mid) + temperature_offset_c(faults, mid),
    ]


def temperature_setpoint_c(recipe: Recipe, t_h: float) -> float:
    """Return the recipe's culture temperature setpoint at ``t_h`` hours, degC."""
    shift = recipe.temperature_shift_day
    if shift is not None and t_h >= shift * 24.0:
        return recipe.shift_temperature_c
    return recipe.temperature_c


def bolus_plan(
    recipe: Recipe, faults: Sequence[Fault]
) -> dict[float, list[tuple[str, str, float]]]:
    """Return the bolus plan keyed by time (h), with every input breakpoint as a key."""
    plan: dict[float, list[tuple[str, str, float]]] = {}
    horizon = recipe.harvest_h
    for b in sorted(recipe.bolus_feeds, key=lambda b: b.day):
        plan.setdefault(b.day * 24.0, []).append(("bolus_feed", b.medium, b.volume_l))
    g = recipe.glucose_feed
    if g is not None:
        day = int(np.ceil(g.start_day))
        while (t := day * 24.0 + recipe.sample_hour_of_day) < horizon:
            plan.setdefault(t, []).append(("glucose_feed", "glucose", float(day)))
            day += 1
    shift = recipe.temperature_shift_day
    breaks = [] if shift is None else [shift * 24.0]
    breaks += [24.0 * d for c in recipe.continuous_feeds for d in (c.start_day, c.end_day)]
    breaks += [t for f in faults for t in f.breakpoints_h()]
    for t in breaks:
        if t and 0.0 < t < horizon:
            plan.setdefault(float(t), [])
    return {t: v for t, v in plan.items() if 0.0 <= t < horizon}


def deliver(
    x: np.ndarray,
    recipe: Recipe,
    faults: Sequence[Fault],
    t_h: float,
    kind: str,
    medium: str,
    planned: float,
    assay: np.ndarray | None,
    log: list[FeedEvent],
) -> np.ndarray:
    """Apply one bolus at ``t_h``: a planned feed, or the glucose top-up of day ``planned``.

    The delivered volume is cut by any feed-pump fault and by the headroom left below the
    working volume; the logged :class:`FeedEvent` keeps what was planned.
    """
    if kind == "glucose_feed":
        g = recipe.glucose_feed
        assert g is not None
        day = int(planned)
        factor = 1.0 if assay is None or day >= len(assay) else float(assay[day])
        measured = x[2] * factor
        if measured >= g.trigger_below_g_per_l:
            return x
        planned = (g.target_g_per_l - measured) * x[7] / (g.stock_g_per_l - g.target_g_per_l)
        comp = g.composition()
    else:
        comp = recipe.media[medium].composition()
    # A pump failure cuts the delivery; the vessel is never filled above its working volume.
    headroom = max(recipe.working_volume_l - float(x[7]), 0.0)
    volume = min(planned * feed_factor(faults, t_h), headroom)
    if volume > 0:
        x = np.asarray(add_bolus(x, volume, comp))
    log.append(FeedEvent(t_h, kind, medium, volume, volume * comp.glucose_g_per_l, planned))
    return x
