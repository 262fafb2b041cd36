"""The feeding NMPC on the twin: modes, fallback, constraints and faults over short batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from biopilot.config import parse_model
from biopilot.control import (
    ControlDecision,
    Controller,
    ControlMode,
    SetpointLimits,
    ShrinkingHorizonProblem,
    make_problem,
)
from biopilot.models.kinetics import KineticParameters
from biopilot.twin import Bioreactor, Recipe, default_recipe

#: A mismatched plant: faster growth, lower productivity, higher maintenance than nominal.
PLANT = dataclasses.replace(
    KineticParameters(),
    mu_max_per_h=0.044 * 1.15,
    q_mab_g_per_cell_h=1.0e-12 * 0.85,
    m_glc_mmol_per_cell_h=69.2e-12 * 1.2,
)


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    """The default recipe cut to a 4-day batch with the shift on day 3."""
    data = default_recipe().model_dump()
    data.update(harvest_day=4.0, temperature_shift_day=3.0)
    data["bolus_feeds"] = [b for b in data["bolus_feeds"] if b["day"] < 4.0]
    data["continuous_feeds"] = [{**c, "end_day": 4.0} for c in data["continuous_feeds"]]
    return parse_model(Recipe, data, source="short test recipe")


@pytest.fixture(scope="module")
def problem(recipe: Recipe) -> ShrinkingHorizonProblem:
    """The NLP of the short batch (6-h moves), shared by the controllers of this module.

    Its time budget is generous: these tests are about modes and limits, not speed (speed is
    benchmarked), so a loaded machine must not turn a slow solve into a fallback here.
    """
    return make_problem(recipe, time_budget_s=30.0)


def _controller(recipe: Recipe, problem: ShrinkingHorizonProblem, **kw: object) -> Controller:
    return Controller(recipe, problem=problem, shift_candidates_day=(2.0, 3.0), **kw)  # type: ignore[arg-type]


def _hard_limit_breaches(x: np.ndarray, working_volume_l: float, lower: bool = True) -> list[str]:
    out = []
    if x[2] > 6.0 + 1e-6 or (lower and x[2] < 1.0 - 1e-6):
        out.append(f"glucose {x[2]:.2f} g/L")
    if x[8] > 450.0 + 1e-6:
        out.append(f"osmolality {x[8]:.0f} mOsm/kg")
    if x[7] > working_volume_l + 1e-6:
        out.append(f"volume {x[7]:.0f} L")
    if x[4] > 4.0 + 1e-6:
        out.append(f"lactate {x[4]:.2f} g/L")
    return out


def _closed_loop(
    controller: Controller, faults: Sequence[str] = (), lower: bool = True
) -> tuple[list[ControlDecision], list[str]]:
    """Run a short batch on a mismatched plant (true state as the estimate), hourly checks."""
    plant = Bioreactor(controller.recipe, seed=3, parameters=PLANT, faults=faults)
    decisions, breaches = [], []
    wv = plant.recipe.working_volume_l
    while plant.t_h < plant.recipe.harvest_h - 1e-9:
        d = controller.step(plant.state, plant.t_h)
        decisions.append(d)
        for h in range(round(controller.interval_h)):
            u = d.inputs
            if u is not None and h > 0:
                u = dataclasses.replace(u, bolus_l=0.0, glucose_bolus_l=0.0)
            plant.step(u, dt_h=1.0)
            breaches += [
                f"t={plant.t_h:.0f} h {b}" for b in _hard_limit_breaches(plant.state, wv, lower)
            ]
    return decisions, breaches


def test_closed_loop_keeps_the_true_plant_within_its_limits(recipe, problem) -> None:
    decisions, breaches = _closed_loop(_controller(recipe, problem))
    assert breaches == []
    assert all(d.fallback_reason is None for d in decisions)
    assert all(d.inputs is not None for d in decisions)  # automatic: setpoints applied


def test_manual_mode_leaves_the_recipe_in_charge(recipe, problem) -> None:
    c = _controller(recipe, problem, mode=ControlMode.MANUAL)
    d = c.step(Bioreactor(recipe, seed=0).state, 0.0)
    assert d.inputs is None and d.setpoints is None and d.status == "manual" and d.alarm is None


def test_advisory_recommends_and_applies_only_once_accepted(recipe, problem) -> None:
    c = _controller(recipe, problem, mode=ControlMode.ADVISORY)
    d = c.step(Bioreactor(recipe, seed=0).state, 0.0)
    assert d.inputs is None and d.setpoints is not None  # recipe runs until accepted
    sent = c.accept("jdoe")
    assert sent.bolus_l == d.setpoints.feed_bolus_l
    assert sent.glucose_bolus_l == d.setpoints.glucose_bolus_l
    assert c.accepted == [(0.0, "jdoe")]
    with pytest.raises(RuntimeError, match="no recommendation"):
        c.accept("jdoe")


def test_automatic_mode_outputs_the_clamped_plan(recipe, problem) -> None:
    c = _controller(recipe, problem)
    d = c.step(Bioreactor(recipe, seed=0).state, 0.0)
    assert d.setpoints is not None and d.inputs is not None
    assert d.inputs.feed_l_per_h == d.setpoints.feed_l_per_h
    assert d.inputs.temperature_setpoint_c == d.setpoints.temperature_c
    assert d.predicted_states.shape == (problem.n + 1, 12)


def test_a_late_solver_falls_back_to_the_recipe_with_an_alarm(recipe) -> None:
    late = make_problem(recipe, time_budget_s=1e-3)  # every warm solve is late
    c = _controller(recipe, late)
    x = Bioreactor(recipe, seed=0).state
    c.step(x, 0.0)  # the first plan (cold, before inoculation) is not held to the budget
    d = c.step(x, 48.0)
    assert d.alarm is not None and d.alarm.code == "MPC_FALLBACK"
    assert d.fallback_reason is not None and "late" in d.fallback_reason
    assert d.setpoints is not None and d.inputs is not None  # the recipe, sent as setpoints
    assert d.inputs.feed_l_per_h == pytest.approx(8.0 / 24.0)  # the recipe's continuous feed
    assert d.setpoints.temperature_c == recipe.temperature_c


def test_the_fallback_recipe_tops_glucose_up_inside_the_band(recipe) -> None:
    from biopilot.control.fallback import recipe_setpoints
    from biopilot.control.nlp import Bands
    from biopilot.models.kinetics import add_bolus

    bands = Bands()
    x = Bioreactor(recipe, seed=0).state.copy()
    x[2] = 1.5  # glucose low on day 3, when the recipe tops up to 8 g/L (above the band)
    sp = recipe_setpoints(recipe, x, 72.0, 6.0, bands)
    after = add_bolus(x, sp.feed_bolus_l, recipe.media["feed_a"].composition())
    after = add_bolus(after, sp.glucose_bolus_l, recipe.glucose_feed.composition())
    assert sp.feed_bolus_l == 33.0  # the day-3 bolus of the recipe
    assert after[2] == pytest.approx(bands.glucose_max_g_per_l - bands.glucose_backoff_high_g_per_l)
    x[7] = bands.volume_max_l - bands.volume_backoff_l - 5.0  # 5 L of room left
    sp = recipe_setpoints(recipe, x, 72.0, 6.0, bands)
    fed = sp.feed_bolus_l + sp.glucose_bolus_l + sp.feed_l_per_h * 6.0
    assert fed <= 5.0 + 1e-9


def test_feed_pump_failure_does_not_drive_setpoints_out_of_bounds(recipe, problem) -> None:
    c = _controller(recipe, problem)
    decisions, breaches = _closed_loop(c, faults=["feed_pump_failure@1:1.0"], lower=False)
    limits = SetpointLimits()
    for d in decisions:
        if d.setpoints is not None:
            s = d.setpoints
            assert 0.0 <= s.feed_bolus_l <= limits.feed_bolus_max_l
            assert 0.0 <= s.glucose_bolus_l <= limits.glucose_bolus_max_l
            assert 0.0 <= s.feed_l_per_h <= limits.feed_max_l_per_h
            assert limits.temperature_min_c <= s.temperature_c <= limits.temperature_max_c
    assert breaches == []  # no overfeeding when the pump comes back: no upper limit broken


def test_do_probe_drift_leaves_the_loop_safe(recipe, problem) -> None:
    _, breaches = _closed_loop(_controller(recipe, problem), faults=["do_probe_drift@1"])
    assert breaches == []
