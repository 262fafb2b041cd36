"""Faults: parsed from text with clear errors, and each visible in its signals."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.config import ConfigError
from biopilot.twin.bioreactor import simulate_batch
from biopilot.twin.faults import FAULT_NAMES, DoProbeDrift, FeedPumpFailure, parse_fault

FAULT_SEED = 5  # the seed of the normal_batch fixture

MIN_PER_DAY = 1440


def _faulty(text: str):
    return simulate_batch(seed=FAULT_SEED, raman=False, faults=[text])


def _window(frame, col, d0, d1):
    return frame[col].iloc[round(d0 * MIN_PER_DAY) : round(d1 * MIN_PER_DAY)]


def test_parse_fault_reads_name_day_and_magnitude():
    f = parse_fault("do_probe_drift@6")
    assert isinstance(f, DoProbeDrift) and f.onset_day == 6.0
    g = parse_fault("feed_pump_failure@7.5:0.5")
    assert isinstance(g, FeedPumpFailure) and g.magnitude == 0.5 and g.onset_h == 180.0


def test_unknown_fault_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        parse_fault("pump_explosion@3")
    assert "pump_explosion" in str(err.value)
    assert all(name in str(err.value) for name in FAULT_NAMES)


@pytest.mark.parametrize(
    "text, field",
    [
        ("do_probe_drift@six", "onset_day"),
        ("do_probe_drift@-1", "onset_day"),
        ("aeration_failure@5:2", "magnitude"),
        ("contamination@5:x", "magnitude"),
    ],
)
def test_bad_day_or_magnitude_names_the_field(text, field):
    with pytest.raises(ConfigError, match=field):
        parse_fault(text)


def test_missing_day_is_refused():
    with pytest.raises(ConfigError, match="NAME@DAY"):
        parse_fault("contamination")


def test_feed_pump_failure_starves_the_culture(normal_batch):
    b = _faulty("feed_pump_failure@6")
    assert (
        _window(b.online, "volume_l", 8.9, 9.0).mean()
        < _window(normal_batch.online, "volume_l", 8.9, 9.0).mean() - 50
    )
    assert (
        b.truth["glutamine_mmol_per_l"].iloc[9 * MIN_PER_DAY - 60]
        < 0.5 * normal_batch.truth["glutamine_mmol_per_l"].iloc[9 * MIN_PER_DAY - 60]
    )
    assert any(e.kind == "bolus_feed" and "planned" in e.message for e in b.events)


def test_do_probe_drift_shows_in_gassing_and_true_do(normal_batch):
    b = _faulty("do_probe_drift@6")
    late = (9.0, 10.0)
    o2_f, o2_n = (_window(x.online, "o2_fraction_pct", *late).mean() for x in (b, normal_batch))
    assert o2_f > o2_n + 1.5
    assert _window(b.truth, "do_pct", *late).mean() > b.recipe.do_setpoint_pct + 8.0
    assert abs(_window(b.online, "do_pct", *late).median() - b.recipe.do_setpoint_pct) < 2.0


def test_ph_probe_drift_shows_in_base_and_offline_ph(normal_batch):
    b = _faulty("ph_probe_drift@6")
    assert b.online["base_added_ml"].iloc[-1] > normal_batch.online["base_added_ml"].iloc[-1] + 200
    assert b.atline["ph_offline"].iloc[12] > b.recipe.ph_setpoint + 0.15
    assert abs(_window(b.online, "ph", 11, 12).median() - b.recipe.ph_setpoint) < 0.05


def test_temperature_excursion_is_seen_by_the_probe(normal_batch):
    b = _faulty("temperature_excursion@7")
    assert _window(b.online, "temperature_c", 7.1, 7.5).mean() > b.recipe.shift_temperature_c + 2.0
    assert (
        _window(normal_batch.online, "temperature_c", 7.1, 7.5).mean()
        < b.recipe.shift_temperature_c + 0.2
    )


def test_aeration_failure_drops_do(normal_batch):
    b = _faulty("aeration_failure@8")
    assert _window(b.online, "do_pct", 8.2, 9.0).min() < 20.0
    assert _window(normal_batch.online, "do_pct", 8.2, 9.0).min() > 30.0


def test_contamination_makes_our_jump(normal_batch):
    b = _faulty("contamination@9")
    after = (9.5, 10.0)
    assert (
        _window(b.online, "our_mmol_per_l_h", *after).mean()
        > _window(normal_batch.online, "our_mmol_per_l_h", *after).mean() + 4.0
    )
    assert _window(b.online, "our_mmol_per_l_h", 8.0, 8.9).mean() == pytest.approx(
        _window(normal_batch.online, "our_mmol_per_l_h", 8.0, 8.9).mean(), rel=1e-6
    )


def test_fault_onset_is_an_event():
    b = _faulty("contamination@9")
    onset = [e for e in b.events if e.kind == "fault_onset"]
    assert len(onset) == 1 and onset[0].time_utc == b.online.index[9 * MIN_PER_DAY]


def test_probe_drift_leaves_the_culture_unchanged(normal_batch):
    b = _faulty("do_probe_drift@6")
    np.testing.assert_array_equal(b.truth["titer_g_per_l"], normal_batch.truth["titer_g_per_l"])


def test_controller_outputs_mix_to_the_o2_fraction(normal_batch):
    on = normal_batch.online.iloc[10 * MIN_PER_DAY :].dropna()
    air, o2 = on["air_flow_slpm"], on["o2_flow_slpm"]
    mixed = 100.0 * (0.2095 * air + o2) / (air + o2)
    error = mixed - on["o2_fraction_pct"]  # flow meters: ~0.5 % noise each
    assert abs(error.mean()) < 0.1 and error.abs().max() < 2.0


def test_do_probe_drift_before_enrichment_shows_in_the_air_flow(normal_batch):
    b = _faulty("do_probe_drift@1:-8")  # reads low: the loop gasses harder
    assert normal_batch.online["o2_flow_slpm"].iloc[: 2 * MIN_PER_DAY].max() < 1.0
    air_f, air_n = (_window(x.online, "air_flow_slpm", 1.8, 2.0).mean() for x in (b, normal_batch))
    assert air_f > 1.1 * air_n


def test_ph_probe_reading_high_makes_the_loop_sparge_co2(normal_batch):
    b = _faulty("ph_probe_drift@6:0.05")
    # Once the true pH sits lower, the loop only follows the drift rate: a small extra flow.
    co2_f, co2_n = (_window(x.online, "co2_flow_slpm", 7.0, 12.0).mean() for x in (b, normal_batch))
    assert co2_f > co2_n + 0.1
    base = "base_pump_ml_per_h"
    assert (
        _window(b.online, base, 12.0, 14.0).max() < _window(normal_batch.online, base, 12, 14).max()
    )
