"""Clamping, rate limiting and estimate parsing of the controller's output and input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from biopilot.control import SetpointLimits, Setpoints, clamp_setpoints, state_vector
from biopilot.models.kinetics import STATE_NAMES


def test_clamp_caps_boluses_and_rate_limits_feed_and_temperature() -> None:
    previous = Setpoints(10.0, 1.0, 0.2, 36.5)
    proposed = Setpoints(100.0, -3.0, 5.0, 20.0)
    safe, notes = clamp_setpoints(proposed, previous, SetpointLimits())
    assert safe.feed_bolus_l == 60.0  # pump limit
    assert safe.glucose_bolus_l == 0.0  # never negative
    assert safe.feed_l_per_h == pytest.approx(0.7)  # 0.2 + at most 0.5 per interval
    assert safe.temperature_c == pytest.approx(32.5)  # 36.5 - at most 4 degC per interval
    assert len(notes) == 4


def test_clamp_replaces_non_finite_values_by_the_previous_ones() -> None:
    previous = Setpoints(10.0, 1.0, 0.2, 33.0)
    safe, _ = clamp_setpoints(
        Setpoints(math.nan, math.inf, math.nan, math.nan), previous, SetpointLimits()
    )
    assert safe == Setpoints(10.0, 1.0, 0.2, 33.0)


def test_state_vector_reads_arrays_mappings_and_estimate_objects() -> None:
    x = np.arange(len(STATE_NAMES), dtype=float)
    by_name = dict(zip(STATE_NAMES, x.tolist(), strict=True))
    assert np.array_equal(state_vector(x), x)
    assert np.array_equal(state_vector(by_name), x)
    assert np.array_equal(state_vector(SimpleNamespace(mean=by_name)), x)
    with pytest.raises(ValueError, match="missing"):
        state_vector({"glucose_g_per_l": 3.0})
    with pytest.raises(ValueError, match="finite"):
        state_vector(np.full(len(STATE_NAMES), np.nan))
