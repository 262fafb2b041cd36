"""Monte Carlo percentiles, Sobol ranking and tornado swings of the cost of goods."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from economics_helpers import build

from biopilot.config import parse_model
from biopilot.economics import (
    ProcessCostModel,
    evaluate,
    monte_carlo,
    primary_metric,
    sobol_indices,
    tornado,
)
from biopilot.economics.distributions import Lognormal, Triangular, Uniform

UNCERTAIN = {
    "yields.titer_g_per_l": {"dist": "triangular", "low": 1.0, "mode": 3.0, "high": 6.0},
    "steps.capture.materials.resin.unit_price": {"dist": "uniform", "low": 9900, "high": 10100},
    "qc.release.cost_per_test": {"dist": "lognormal", "median": 1000, "gsd": 1.05},
}


def test_triangular_uniform_lognormal_quantiles_match_their_definitions() -> None:
    tri = parse_model(Triangular, {"dist": "triangular", "low": 0, "mode": 0, "high": 1})
    # F(x) = 1 - (1 - x)^2 for a right triangle on [0, 1]: median 1 - sqrt(0.5)
    assert tri.ppf(np.array([0.5]))[0] == pytest.approx(1 - np.sqrt(0.5))
    uni = parse_model(Uniform, {"dist": "uniform", "low": 2, "high": 4})
    np.testing.assert_allclose(uni.ppf(np.array([0.0, 0.25, 1.0])), [2, 2.5, 4])
    logn = parse_model(Lognormal, {"dist": "lognormal", "median": 5, "gsd": 2})
    assert logn.ppf(np.array([0.5]))[0] == pytest.approx(5)
    assert logn.ppf(np.array([0.841344746]))[0] == pytest.approx(10, rel=1e-6)


def test_monte_carlo_percentiles_are_ordered_and_reproducible() -> None:
    model = build(uncertain=UNCERTAIN)
    a, b = monte_carlo(model, 10_000, seed=7), monte_carlo(model, 10_000, seed=7)
    p = a.metrics["per_gram"]
    assert p.p5 < p.p50 < p.p95
    assert a.metrics == b.metrics
    assert a.draws == 10_000 and a.samples.shape == (10_000,)


def test_monte_carlo_of_a_triangular_titer_matches_the_analytic_percentiles() -> None:
    # per gram = C / (titer x V x r); with only the titer uncertain, the P5 of the cost is
    # the cost at the titer's P95 (monotone decreasing), to sampling error.
    model = build(uncertain={"yields.titer_g_per_l": UNCERTAIN["yields.titer_g_per_l"]})
    mc = monte_carlo(model, 10_000, seed=1)
    tri = model.uncertain["yields.titer_g_per_l"]
    at = evaluate(model, {"yields.titer_g_per_l": tri.ppf(np.array([0.95, 0.5, 0.05]))})
    p = mc.metrics["per_gram"]
    np.testing.assert_allclose([p.p5, p.p50, p.p95], at["per_gram"], rtol=0.03)


def test_vectorised_draws_equal_one_evaluation_per_draw() -> None:
    model = build(uncertain=UNCERTAIN)
    draws = {"yields.titer_g_per_l": np.array([1.5, 3.0, 5.5]),
             "qc.release.cost_per_test": np.array([900.0, 1000.0, 1200.0])}  # fmt: skip
    together = evaluate(model, draws)["per_gram"]
    one_by_one = [
        float(evaluate(model, {k: v[i] for k, v in draws.items()})["per_gram"]) for i in range(3)
    ]
    np.testing.assert_allclose(together, one_by_one)


def test_without_uncertain_inputs_every_draw_is_the_nominal_cost(
    model: ProcessCostModel,
) -> None:
    mc = monte_carlo(model, 100, seed=0)
    p = mc.metrics["per_batch"]
    assert p.p5 == pytest.approx(p.p95)


def test_sobol_ranks_the_dominant_input_first() -> None:
    model = build(uncertain=UNCERTAIN)
    s = sobol_indices(model, n_base=512, seed=3)
    assert s.names[0] == "yields.titer_g_per_l"
    assert s.st[0] > 0.9
    assert max(s.st[1:]) < 0.05
    assert s.evaluations == 512 * (len(UNCERTAIN) + 2)


def test_sobol_needs_an_uncertain_input(model: ProcessCostModel) -> None:
    with pytest.raises(ValueError, match="no uncertain inputs"):
        sobol_indices(model, 64)


def test_sobol_of_an_unknown_metric_is_refused() -> None:
    qc_only = {"qc.release.cost_per_test": UNCERTAIN["qc.release.cost_per_test"]}
    model = build(uncertain=qc_only, yields={"doses_per_batch": 10}, steps=[
        {"name": "s", "materials": [{"name": "m", "quantity": 1, "unit": "kit",
                                     "unit_price": 1}]}])  # fmt: skip
    with pytest.raises(ValueError, match="per_gram"):
        sobol_indices(model, 64, metric="per_gram")


def test_tornado_bars_are_sorted_widest_first_and_bracket_the_nominal() -> None:
    model = build(uncertain=UNCERTAIN)
    bars = tornado(model)
    assert bars[0].name == "yields.titer_g_per_l"
    assert all(a.swing >= b.swing for a, b in itertools.pairwise(bars))
    nominal = float(evaluate(model)["per_gram"])
    top = bars[0]
    assert min(top.output_low, top.output_high) < nominal < max(top.output_low, top.output_high)


def test_primary_metric_follows_what_the_model_can_compute(model: ProcessCostModel) -> None:
    assert primary_metric(model) == "per_gram"


def test_our_saltelli_matrix_is_exactly_salibs() -> None:
    from SALib.sample import sobol as salib_sample

    from biopilot.economics.uncertainty import saltelli_matrix

    problem = {"num_vars": 5, "names": list("abcde"), "bounds": [[0.0, 1.0]] * 5}
    ref = salib_sample.sample(problem, 128, calc_second_order=False, seed=9)
    np.testing.assert_array_equal(saltelli_matrix(5, 128, seed=9), ref)
