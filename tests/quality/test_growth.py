"""Growth fits: doubling time, plateau and time to passage from a series of frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biopilot.quality.growth import GrowthFit, fit_growth

T = np.arange(0.0, 145.0, 8.0)


def _logistic(t, y0, doubling, k):
    r = math.log(2.0) / doubling
    return k / (1.0 + (k / y0 - 1.0) * np.exp(-r * t))


def test_exponential_series_gives_its_doubling_time_exactly():
    fit = fit_growth(T, 2e4 * 2 ** (T / 22.0), model="exponential")
    assert fit.doubling_h == pytest.approx(22.0, rel=1e-9)
    assert fit.start == pytest.approx(2e4, rel=1e-9)
    assert fit.capacity == math.inf


def test_logistic_fit_recovers_rate_and_plateau_and_its_interval_covers_them():
    rng = np.random.default_rng(3)
    covered = 0
    t = np.arange(0.0, 241.0, 8.0)  # 10 days: the curve bends, so the plateau is in the data
    for _ in range(20):
        y = _logistic(t, 0.04, 30.0, 0.85) * np.exp(rng.normal(0.0, 0.05, t.size))
        fit = fit_growth(t, y, max_capacity=1.0)
        lo, hi = fit.doubling_ci95_h
        covered += lo <= 30.0 <= hi
        assert fit.doubling_h == pytest.approx(30.0, rel=0.15)
        assert fit.capacity == pytest.approx(0.85, rel=0.1)
    assert covered >= 17  # a 95 % interval: 19 of 20 expected


def test_known_plateau_predicts_passage_from_the_early_frames():
    early = T[T <= 72]
    noise = np.random.default_rng(1).normal(0.0, 0.03, early.size)
    y = _logistic(early, 0.05, 24.0, 0.8) * np.exp(noise)
    free = fit_growth(early, y, max_capacity=1.0)
    known = fit_growth(early, y, capacity=0.8)
    truth = GrowthFit("logistic", math.log(2) / 24.0, (0, 0), 0.05, 0.8, 0, 0.0).time_to(0.7)
    assert known.time_to(0.7) == pytest.approx(truth, abs=8.0)
    assert known.capacity == 0.8
    assert abs(known.time_to(0.7) - truth) <= abs(np.nan_to_num(free.time_to(0.7), nan=1e9) - truth)


def test_time_to_a_level_above_the_plateau_or_without_growth_is_nan():
    fit = GrowthFit("logistic", 0.03, (0.02, 0.04), 0.1, 0.6, 8, 0.0)
    assert math.isnan(fit.time_to(0.7))
    assert fit.predict([0.0])[0] == pytest.approx(0.1)
    still = fit_growth([0, 8, 16, 24], [100.0, 99.0, 101.0, 100.0], model="exponential")
    assert still.doubling_ci95_h[1] == math.inf  # growth not proven
    assert fit_growth([0, 8, 16], [100, 90, 80], model="exponential").doubling_h == math.inf


def test_summary_is_plain_data():
    d = fit_growth(T, 1e3 * 2 ** (T / 20.0), model="exponential").as_dict()
    assert d["capacity"] is None and d["doubling_h"] == pytest.approx(20.0)
    assert d["model"] == "exponential" and d["n_points"] == T.size


@pytest.mark.parametrize(
    ("t", "y", "kw", "match"),
    [
        ([0, 1, 2], [1, 2], {}, "3 times but 2 values"),
        ([0, 1, 2], [1, 2, 4], {}, "at least 4 points"),
        ([0, 1, 2, 3], [1, 2, 0, 8], {}, r"value 2 \(t = 2 h\) is 0"),
        ([0, 1, 2, 3], [1, 2, np.nan, 8], {}, "value 2"),
        ([0, np.nan, 2, 3], [1, 2, 4, 8], {}, "time 1 is not finite"),
        ([0, 0, 1, 1], [1, 2, 4, 8], {}, "3 distinct times"),
        ([0, 1, 2, 3], [1, 2, 4, 8], {"capacity": 5.0}, "capacity 5.0 must exceed"),
        ([0, 1, 2, 3], [1, 2, 4, 8], {"model": "gompertz"}, "model must be"),
    ],
)
def test_bad_series_are_named(t, y, kw, match):
    with pytest.raises(ValueError, match=match):
        fit_growth(t, y, **kw)
