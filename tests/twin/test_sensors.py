"""Sensor models: stated noise, determinism, dropouts flagged bad, assay precision."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.twin.sensors import (
    ASSAYS,
    ONLINE_SENSORS,
    assay_readings,
    draw_assay_errors,
    online_readings,
)

N = 14 * 1440


def _truth() -> dict[str, np.ndarray]:
    values = {
        "ph": 7.0,
        "do_pct": 40.0,
        "temperature_c": 36.5,
        "our_mmol_per_l_h": 3.0,
        "cer_mmol_per_l_h": 2.8,
        "capacitance_pf_per_cm": 20.0,
        "base_added_ml": 500.0,
        "volume_l": 1500.0,
        "o2_fraction_pct": 30.0,
        "air_flow_slpm": 60.0,
        "o2_flow_slpm": 0.0,
        "co2_flow_slpm": 2.0,
        "base_pump_ml_per_h": 150.0,
    }
    return {k: np.full(N, v) for k, v in values.items()}


@pytest.mark.parametrize(
    "tag, sd", [("ph", 0.01), ("do_pct", 0.5), ("temperature_c", 0.05), ("volume_l", 0.5)]
)
def test_online_noise_has_the_stated_size(tag, sd):
    values, _ = online_readings(_truth(), np.random.default_rng(0))
    assert np.nanstd(values[tag]) == pytest.approx(sd, rel=0.1)
    assert np.nanmean(values[tag]) == pytest.approx(_truth()[tag][0], abs=3 * sd)


def test_mass_flow_readings_have_the_stated_noise_and_are_never_negative():
    values, _ = online_readings(_truth(), np.random.default_rng(0))
    spec = next(s for s in ONLINE_SENSORS if s.tag == "air_flow_slpm")
    assert np.nanstd(values["air_flow_slpm"]) == pytest.approx(
        spec.noise_sd + spec.noise_cv * 60.0, rel=0.1
    )
    assert values["o2_flow_slpm"].min() == 0.0  # no O2 flowing: noise clipped at zero
    assert (values["co2_flow_slpm"] >= 0.0).all()
    assert (values["base_pump_ml_per_h"] == 150.0).all()  # a pump's output, exact


def test_off_gas_is_held_between_analyser_cycles():
    values, _ = online_readings(_truth(), np.random.default_rng(0))
    our = values["our_mmol_per_l_h"][:10]
    assert our[0] == our[4] and our[5] == our[9] and our[0] != our[5]


def test_readings_are_deterministic_given_the_generator():
    a, qa = online_readings(_truth(), np.random.default_rng(3))
    b, qb = online_readings(_truth(), np.random.default_rng(3))
    for s in ONLINE_SENSORS:
        np.testing.assert_array_equal(a[s.tag], b[s.tag])
        np.testing.assert_array_equal(qa[s.tag], qb[s.tag])


def test_dropouts_are_nan_and_flagged_bad_then_uncertain():
    values, quality = online_readings(_truth(), np.random.default_rng(1))
    q = quality["our_mmol_per_l_h"]
    assert (q == 2).any(), "a 14-day run should see off-gas dropouts"
    assert np.isnan(values["our_mmol_per_l_h"][q == 2]).all()
    assert not np.isnan(values["our_mmol_per_l_h"][q != 2]).any()
    after = np.flatnonzero((q[:-1] == 2) & (q[1:] != 2)) + 1
    assert (q[after] == 1).all()


def test_assay_errors_match_the_stated_precision():
    n = 20000
    errors = draw_assay_errors(np.random.default_rng(0), n)
    truth = {a.tag: np.full(n, 10.0) for a in ASSAYS}
    readings = assay_readings(truth, errors)
    for a in ASSAYS:
        r = readings[a.tag]
        expected = a.cv * 10.0 + a.sd
        assert np.nanstd(r) == pytest.approx(expected, rel=0.05), a.tag
        assert 0.0 < np.isnan(r).mean() < 0.03
