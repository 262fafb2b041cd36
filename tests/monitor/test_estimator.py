"""State estimator (UKF): convergence, robustness, uncertainty, the shared equations, API."""

from __future__ import annotations

import dataclasses
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from biopilot.models.kinetics import STATE_NAMES, FeedComposition, KineticParameters
from biopilot.monitor.estimator import EstimatorConfig, StateEstimator
from biopilot.monitor.estimator_inputs import FeedSchedule, StepInputs
from biopilot.monitor.estimator_measure import (
    Measurement,
    atline_measurements,
    measurement_from_interval,
    online_measurements,
    soft_sensor_measurements,
)
from biopilot.monitor.estimator_replay import replay_batch
from biopilot.twin.bioreactor import simulate_batch
from biopilot.twin.process import integrate, recipe_state0, segment_inputs

VCD, TITER, GLC = "vcd_cells_per_ml", "titer_g_per_l", "glucose_g_per_l"


@pytest.fixture(scope="module")
def batch():
    """One default-recipe batch with parameter variability (no Raman)."""
    return simulate_batch(seed=11, raman=False)


def _estimator(batch, **kw):
    return StateEstimator(
        batch.recipe, schedule=FeedSchedule.from_batch(batch), start_utc=batch.start_utc, **kw
    )


def _rel(est, true):
    return abs(est - true) / true


def test_converges_from_a_wrong_initial_state(batch):
    x0 = recipe_state0(batch.recipe)
    x0[STATE_NAMES.index(VCD)] *= 2.5
    x0[STATE_NAMES.index(GLC)] *= 1.4
    est = _estimator(batch, x0=x0)
    first = est.estimate()
    assert _rel(first.mean[VCD], batch.truth[VCD].iloc[0]) > 1.0
    rep = replay_batch(batch, estimator=est, step_min=15, until_h=96.0)
    last = rep.table.iloc[-1]
    assert _rel(last[VCD], last[f"{VCD}_true"]) < 0.08
    assert abs(last[GLC] - last[f"{GLC}_true"]) < 0.3
    assert abs(last[TITER] - last[f"{TITER}_true"]) < 0.03


def test_nan_and_outlier_are_rejected_without_divergence(batch):
    est = _estimator(batch)
    replay_batch(batch, estimator=est, step_min=15, until_h=47.0)
    t = batch.start_utc + pd.Timedelta(hours=48)
    true_vcd = float(batch.truth.at[t, VCD])
    e = est.step(
        {
            "capacitance_pf_per_cm": (math.nan, 0.01),
            "our_mmol_per_l_h": (None, 0.01),
            VCD: (5.0 * true_vcd, (0.05 * true_vcd) ** 2),  # a mis-diluted sample
        },
        t,
    )
    reasons = {r.tag: r.reason for r in e.rejected}
    assert reasons == {
        "capacitance_pf_per_cm": "missing",
        "our_mmol_per_l_h": "missing",
        VCD: "gated",
    }
    assert next(r.nis for r in e.rejected if r.tag == VCD) > 100.0
    assert e.used == () and math.isnan(e.nis)
    assert _rel(e.mean[VCD], true_vcd) < 0.08
    # ... and it keeps tracking afterwards.
    for k in range(1, 25):
        tk = t + pd.Timedelta(hours=k)
        e = est.step(online_measurements(batch.online.loc[tk].to_dict()), tk)
    assert _rel(e.mean[VCD], float(batch.truth.at[tk, VCD])) < 0.08


def test_untrusted_unknown_and_bad_variance_are_reported(batch):
    est = _estimator(batch)
    e = est.step(
        [
            Measurement("raman/glucose_g_per_l", 5.9, 0.16, trusted=False),
            Measurement("ph_offline", 7.0, 0.0004),
            Measurement("raman/titer_g_per_l", 0.0, -1.0),
            Measurement("raman/lactate_g_per_l", 0.01, 0.09),
        ],
        dt_h=0.25,
    )
    assert {(r.tag, r.reason) for r in e.rejected} == {
        ("raman/glucose_g_per_l", "untrusted"),
        ("ph_offline", "no model"),
        ("raman/titer_g_per_l", "bad variance"),
    }
    assert e.used == ("raman/lactate_g_per_l",) and e.nis_dof == 1


def test_uncertainty_grows_between_samples_and_shrinks_at_a_sample(batch):
    est = _estimator(batch)
    sds = []
    for h in range(1, 49):
        t = batch.start_utc + pd.Timedelta(hours=h)
        ms = atline_measurements(batch.atline.loc[t].to_dict()) if h % 24 == 0 else []
        before = est.step(None, t).std[TITER]
        sds.append((before, est.step(ms, t).std[TITER] if ms else before))
    prior = [b for b, _ in sds]
    assert all(b > a for a, b in itertools.pairwise(prior[24:47]))  # day 2 grows
    assert prior[47] > 3 * sds[23][1]  # a day without a sample
    for h in (23, 47):  # 24 h and 48 h: the sample shrinks it
        assert sds[h][1] < 0.5 * sds[h][0]


def test_prediction_runs_the_shared_kinetics(batch):
    """Without measurements and with no spread, the mean is the kinetics' own trajectory."""
    recipe = batch.recipe
    tight = EstimatorConfig(
        uncertain=(),
        prior_sd=dict.fromkeys(STATE_NAMES, (1e-6, 0.0)),
        state_noise=dict.fromkeys(STATE_NAMES, (0.0, 0.0)),
    )
    for p in (KineticParameters(), KineticParameters(mu_max_per_h=0.05, q_mab_g_per_cell_h=2e-12)):
        est = StateEstimator(recipe, parameters=p, config=tight)
        e = est.step(dt_h=48.0)
        u = segment_inputs(recipe, (), 0.0, 48.0)
        ref = integrate(recipe_state0(recipe), u, p, np.array([0.0, 48.0]))[-1]
        for name in (VCD, GLC, TITER, "lactate_g_per_l"):
            i = STATE_NAMES.index(name)
            assert e.mean[name] == pytest.approx(ref[i], rel=2e-3), name


def test_changing_kinetic_parameters_changes_the_prediction(batch):
    fast = dataclasses.replace(KineticParameters(), mu_max_per_h=0.05)
    slow = _estimator(batch).step(dt_h=72.0).mean[VCD]
    quick = _estimator(batch, parameters=fast).step(dt_h=72.0).mean[VCD]
    assert quick > 1.08 * slow  # +14 % mu_max, 3 days


def test_logged_boluses_enter_at_their_time(batch):
    est = _estimator(batch)
    t_feed = 72.0
    fed = sum(b.volume_l for b in est.schedule.boluses if b.t_h == t_feed)
    assert fed > 30.0
    v_before = est.step(dt_h=t_feed).mean["volume_l"]
    v_after = est.step(dt_h=0.0).mean["volume_l"]  # a second step at the same time
    assert v_after - v_before == pytest.approx(fed, rel=1e-6)
    v_next = est.step(dt_h=1.0 / 60.0).mean["volume_l"]
    assert v_next - v_after < 0.1  # not added twice


def test_time_must_be_utc_and_move_forward(batch):
    est = _estimator(batch)
    est.step(dt_h=1.0)
    with pytest.raises(ValueError, match="backwards"):
        est.step(None, batch.start_utc)
    with pytest.raises(ValueError, match="timezone-aware"):
        est.step(None, pd.Timestamp("2026-01-06T08:00:00"))
    with pytest.raises(ValueError, match="start_utc"):
        StateEstimator(batch.recipe).step(None, batch.start_utc)


def test_interval_to_variance():
    m = measurement_from_interval("raman/glucose_g_per_l", 4.0, 4.0 - 1.959964, 4.0 + 1.959964)
    assert m.variance == pytest.approx(1.0, rel=1e-6) and m.trusted


def test_estimate_reports_mean_std_and_interval(batch):
    e = _estimator(batch).step({VCD: (8e5, 4e8)}, dt_h=0.5)
    assert set(e.mean) == set(STATE_NAMES) == set(e.std)
    lo, hi = e.interval(VCD)
    assert lo < e.mean[VCD] < hi and hi - lo == pytest.approx(4 * e.std[VCD])
    assert e.time_utc == batch.start_utc + pd.Timedelta(minutes=30)
    assert set(e.multipliers) >= {"mu_max", "q_mab", "capacitance"}


def test_soft_sensor_prediction_becomes_measurements(batch):
    """A soft sensor's n x k prediction (interval, trust flag) maps to tagged measurements."""
    pred = SimpleNamespace(
        analytes=("glucose_g_per_l", "titer_g_per_l"),
        value=np.array([[5.8, 0.02], [5.7, 0.03]]),
        low=np.array([[5.0, -0.3], [4.9, -0.3]]),
        high=np.array([[6.6, 0.34], [6.5, 0.36]]),
        trusted=np.array([[True, True], [True, False]]),
    )
    ms = soft_sensor_measurements(pred, row=1)
    assert [m.tag for m in ms] == ["raman/glucose_g_per_l", "raman/titer_g_per_l"]
    assert ms[0].variance == pytest.approx((0.8 / 1.959964) ** 2, rel=1e-5)
    e = _estimator(batch).step(ms, dt_h=0.25)
    assert e.used == ("raman/glucose_g_per_l",)
    assert [(r.tag, r.reason) for r in e.rejected] == [("raman/titer_g_per_l", "untrusted")]


def test_inputs_logged_by_a_live_plant_replace_the_schedule(batch):
    """StepInputs: a feed rate held over the step and a bolus at its start, as logged."""
    est = _estimator(batch)
    v0 = est.estimate().mean["volume_l"]
    feed = FeedComposition(80.0, 180.0, 1300.0)
    e = est.step(
        dt_h=1.0, inputs=StepInputs(u=(2.0, 80.0, 180.0, 1300.0, 36.5), boluses=[(10.0, feed)])
    )
    assert e.mean["volume_l"] - v0 == pytest.approx(12.0, abs=0.2)  # + pH-control base
    assert e.mean[GLC] > 6.0  # the feed's glucose came in
    with pytest.raises(ValueError, match="expected 5 values"):
        est.step(dt_h=1.0, inputs=StepInputs(u=(1.0, 2.0)))


def test_inputs_held_by_a_controller_replace_the_recipe_schedule() -> None:
    from biopilot.monitor.estimator import StateEstimator

    recipe_run, held = StateEstimator(), StateEstimator()
    held.held_u = (2.0, 0.0, 180.0, 900.0, 36.5)  # 2 L/h of amino-acid feed, from t = 0
    v0 = recipe_run.step(dt_h=0.0).mean["volume_l"]
    v_recipe = recipe_run.step(dt_h=10.0).mean["volume_l"]
    v_held = held.step(dt_h=10.0).mean["volume_l"]
    assert v_recipe == pytest.approx(v0, abs=2.0)  # no recipe feed on day 0 (base only)
    assert v_held - v_recipe == pytest.approx(20.0, abs=1.0)  # the controller's 2 L/h x 10 h
