"""The CHO kinetics: one set of equations for numpy, floats and CasADi, with sane behaviour."""

from __future__ import annotations

import dataclasses

import casadi as ca
import numpy as np
import pytest

from biopilot.models.kinetics import (
    FLOAT_OPS,
    INPUT_NAMES,
    NUMPY_OPS,
    STATE_NAMES,
    FeedComposition,
    KineticParameters,
    add_bolus,
    casadi_ops,
    derivatives,
    initial_state,
    rates,
)

P = KineticParameters()
IDX = {n: i for i, n in enumerate(STATE_NAMES)}


def _states(n: int, seed: int = 0) -> np.ndarray:
    """Plausible random culture states, shape (n_states, n)."""
    rng = np.random.default_rng(seed)
    x = np.empty((len(STATE_NAMES), n))
    x[0] = rng.uniform(5e5, 3e7, n)
    x[1] = rng.uniform(0, 5e6, n)
    x[2] = rng.uniform(0, 10, n)
    x[3] = rng.uniform(0, 8, n)
    x[4] = rng.uniform(0, 4, n)
    x[5] = rng.uniform(0, 12, n)
    x[6] = rng.uniform(0, 7, n)
    x[7] = rng.uniform(1000, 2000, n)
    x[8] = rng.uniform(280, 480, n)
    x[9:] = rng.uniform(0, 1e5, (3, n))
    return x


def _inputs(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.uniform(0, 5, n),
            rng.uniform(0, 100, n),
            rng.uniform(0, 200, n),
            rng.uniform(300, 1500, n),
            rng.uniform(31, 37, n),
        ]
    )


def test_casadi_and_numpy_derivatives_agree():
    xs, us = ca.SX.sym("x", len(STATE_NAMES)), ca.SX.sym("u", len(INPUT_NAMES))
    f = ca.Function("f", [xs, us], [derivatives(xs, us, P, casadi_ops())])
    x, u = _states(20), _inputs(20)
    expected = derivatives(x, u, P, NUMPY_OPS)
    got = np.array(f.map(20)(x, u))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_casadi_mx_builds_and_agrees_on_one_state():
    xs, us = ca.MX.sym("x", len(STATE_NAMES)), ca.MX.sym("u", len(INPUT_NAMES))
    f = ca.Function("f", [xs, us], [derivatives(xs, us, P, casadi_ops())])
    x, u = _states(1)[:, 0], _inputs(1)[:, 0]
    np.testing.assert_allclose(np.array(f(x, u)).ravel(), derivatives(x, u, P), rtol=1e-10)


def test_vectorised_particles_match_one_by_one_float_evaluation():
    x, u = _states(7), _inputs(7)
    many = derivatives(x, u, P, NUMPY_OPS)
    assert many.shape == x.shape
    for j in range(7):
        one = derivatives(x[:, j].tolist(), u[:, j].tolist(), P, FLOAT_OPS)
        np.testing.assert_allclose(one, many[:, j], rtol=1e-12)


def test_state_names_carry_units():
    assert STATE_NAMES[0] == "vcd_cells_per_ml"
    assert all(any(s in n for s in ("_per_", "_l", "_g", "_kg")) for n in STATE_NAMES)


def test_cells_grow_on_fresh_medium_and_consume_glucose():
    x = initial_state(5e5, 1400.0, 6.0, 6.0)
    d = derivatives(x, np.array([0.0, 0.0, 0.0, 300.0, 36.5]), P)
    assert d[IDX["vcd_cells_per_ml"]] > 0
    assert d[IDX["glucose_g_per_l"]] < 0
    assert d[IDX["lactate_g_per_l"]] > 0  # growth phase: lactate produced
    assert d[IDX["glucose_consumed_g"]] > 0


def test_lactate_is_consumed_once_growth_stalls():
    x = initial_state(1.5e7, 1600.0, 6.0, 4.0)
    x[IDX["lactate_g_per_l"]] = 2.0
    x[IDX["ammonia_mmol_per_l"]] = 12.0  # inhibited growth
    r = rates(x, np.array([0.0, 0.0, 0.0, 300.0, 33.0]), P)
    assert r.q_lac_mmol_per_cell_h < 0


def test_lactate_consumption_switches_on_when_glucose_runs_out():
    x = initial_state(5e6, 1600.0, 0.01, 4.0)
    x[IDX["lactate_g_per_l"]] = 2.0
    r = rates(x, np.array([0.0, 0.0, 0.0, 300.0, 36.5]), P)
    assert r.q_lac_mmol_per_cell_h < 0


def test_temperature_shift_slows_growth_and_raises_productivity():
    x = initial_state(5e6, 1400.0, 6.0, 6.0)
    warm = rates(x, np.array([0.0, 0.0, 0.0, 300.0, 37.0]), P)
    cold = rates(x, np.array([0.0, 0.0, 0.0, 300.0, 33.0]), P)
    assert cold.mu_per_h < 0.8 * warm.mu_per_h
    assert cold.q_mab_g_per_cell_h > 1.2 * warm.q_mab_g_per_cell_h


def test_by_products_inhibit_growth_and_raise_death():
    clean = initial_state(5e6, 1400.0, 6.0, 6.0)
    dirty = clean.copy()
    dirty[IDX["lactate_g_per_l"]], dirty[IDX["ammonia_mmol_per_l"]] = 4.0, 10.0
    u = np.array([0.0, 0.0, 0.0, 300.0, 36.5])
    assert rates(dirty, u, P).mu_per_h < 0.5 * rates(clean, u, P).mu_per_h
    assert rates(dirty, u, P).death_per_h > rates(clean, u, P).death_per_h


def test_bolus_conserves_mass_and_books_fed_glucose():
    x = _states(1)[:, 0]
    feed = FeedComposition(glucose_g_per_l=80.0, glutamine_mmol_per_l=150.0)
    y = np.asarray(add_bolus(x, 50.0, feed))
    v0, v1 = x[IDX["volume_l"]], y[IDX["volume_l"]]
    assert v1 == pytest.approx(v0 + 50.0)
    glc = IDX["glucose_g_per_l"]
    assert y[glc] * v1 == pytest.approx(x[glc] * v0 + 80.0 * 50.0)
    assert y[IDX["titer_g_per_l"]] * v1 == pytest.approx(x[IDX["titer_g_per_l"]] * v0)
    assert y[IDX["glucose_fed_g"]] - x[IDX["glucose_fed_g"]] == pytest.approx(4000.0)


def test_continuous_feed_conserves_glucose_in_the_derivatives():
    x, u = _states(5), _inputs(5)
    d = derivatives(x, u, P)
    v, g = x[IDX["volume_l"]], x[IDX["glucose_g_per_l"]]
    # d(V*G)/dt = fed - consumed
    lhs = d[IDX["volume_l"]] * g + v * d[IDX["glucose_g_per_l"]]
    rhs = d[IDX["glucose_fed_g"]] - d[IDX["glucose_consumed_g"]]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


def test_parameters_are_frozen_and_replaceable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.mu_max_per_h = 1.0  # type: ignore[misc]
    assert dataclasses.replace(P, mu_max_per_h=0.03).mu_max_per_h == 0.03
