"""The bioreactor twin: industrial plausibility, mass balance, reproducibility, data shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biopilot.twin.bioreactor import Bioreactor, PlantInputs, simulate_batch
from biopilot.twin.recipe import default_recipe

SEEDS = (1, 2, 3)


def _day(batch, column: str, day: float) -> float:
    return float(batch.truth[column].iloc[round(day * 1440)])


@pytest.mark.parametrize("seed", SEEDS)
def test_default_recipe_is_industrially_plausible(platform_batches, seed):
    b = platform_batches[seed]
    vcd, lactate = b.truth["vcd_cells_per_ml"], b.truth["lactate_g_per_l"]
    assert 1e7 <= vcd.max() <= 3e7
    assert 3.0 <= b.truth["titer_g_per_l"].iloc[-1] <= 7.0
    assert _day(b, "viability_pct", 10) > 80.0
    assert _day(b, "viability_pct", 14) < _day(b, "viability_pct", 10) - 5.0
    peak_at = int(np.argmax(lactate.to_numpy()))
    assert lactate.max() > 1.0 and peak_at < 8 * 1440  # produced in the growth phase...
    assert lactate.iloc[-1] < 0.5 * lactate.max()  # ...then consumed


def test_glucose_mass_balance_closes(platform_batches):
    b = platform_batches[1]
    r = b.recipe
    fed = 0.0
    for e in b.events:
        if e.kind == "bolus_feed":
            medium = e.message.split(" L of ")[1]
            fed += e.value * r.media[medium].glucose_g_per_l
        elif e.kind == "glucose_feed":
            fed += e.value * r.glucose_feed.stock_g_per_l
    for c in r.continuous_feeds:
        fed += c.rate_l_per_day * (c.end_day - c.start_day) * r.media[c.medium].glucose_g_per_l
    last = b.truth.iloc[-1]
    initial = r.initial_volume_l * r.initial_glucose_g_per_l
    remaining = last["volume_l"] * last["glucose_g_per_l"]
    assert initial + fed == pytest.approx(last["glucose_consumed_g"] + remaining, rel=1e-3)
    assert last["glucose_fed_g"] == pytest.approx(fed, rel=1e-3)


def test_same_seed_gives_the_same_batch_bit_for_bit():
    a, b = simulate_batch(seed=11), simulate_batch(seed=11)
    np.testing.assert_array_equal(a.online.to_numpy(), b.online.to_numpy())
    np.testing.assert_array_equal(a.atline.to_numpy(), b.atline.to_numpy())
    np.testing.assert_array_equal(a.truth.to_numpy(), b.truth.to_numpy())
    np.testing.assert_array_equal(a.raman.spectra, b.raman.spectra)
    assert a.parameters == b.parameters
    assert a.samples().equals(b.samples())


def test_different_seeds_give_different_batches(platform_batches):
    a, b = platform_batches[1], platform_batches[2]
    assert a.parameters != b.parameters
    assert not np.allclose(a.truth["titer_g_per_l"], b.truth["titer_g_per_l"])


def test_without_variability_only_the_measurements_differ():
    a = simulate_batch(seed=1, raman=False, variability=False)
    b = simulate_batch(seed=2, raman=False, variability=False)
    assert a.parameters == b.parameters
    # Identical cultures until the first glucose top-up, which follows the (noisy) assay.
    first_top_up = 3 * 1440
    np.testing.assert_array_equal(a.truth.iloc[:first_top_up], b.truth.iloc[:first_top_up])
    assert not np.array_equal(a.online["ph"].to_numpy(), b.online["ph"].to_numpy())


def test_online_data_is_one_minute_utc_from_start(platform_batches):
    b = platform_batches[1]
    idx = b.online.index
    assert str(idx.tz) == "UTC" and idx[0] == b.start_utc
    assert (idx[1:] - idx[:-1] == pd.Timedelta(minutes=1)).all()
    assert idx[-1] - idx[0] == pd.Timedelta(days=14)
    expected = {
        "ph",
        "do_pct",
        "temperature_c",
        "our_mmol_per_l_h",
        "cer_mmol_per_l_h",
        "capacitance_pf_per_cm",
        "base_added_ml",
        "volume_l",
    }
    assert expected <= set(b.online.columns)


def test_start_time_is_respected_and_converted_to_utc():
    b = simulate_batch(seed=1, raman=False, start_utc="2026-03-01T10:00:00+01:00")
    assert b.online.index[0] == pd.Timestamp("2026-03-01T09:00:00Z")


def test_loops_hold_their_setpoints(platform_batches):
    b = platform_batches[1]
    r = b.recipe
    assert abs(b.online["ph"].median() - r.ph_setpoint) < 0.03
    assert abs(b.online["do_pct"].median() - r.do_setpoint_pct) < 2.0
    late = b.online["temperature_c"].iloc[7 * 1440 :]
    assert abs(late.median() - r.shift_temperature_c) < 0.1
    assert b.online["base_added_ml"].is_monotonic_increasing


def test_atline_samples_are_daily_with_assay_error(platform_batches):
    b = platform_batches[1]
    at = b.atline
    assert len(at) == 15 and (at.index[1:] - at.index[:-1] == pd.Timedelta(days=1)).all()
    truth = b.truth["titer_g_per_l"].iloc[::1440].to_numpy()[1:]
    measured = at["titer_g_per_l"].to_numpy()[1:]
    ok = ~np.isnan(measured)
    assert not np.array_equal(measured[ok], truth[ok])
    np.testing.assert_allclose(measured[ok], truth[ok], rtol=0.15, atol=0.02)


def test_samples_table_for_the_historian(platform_batches):
    b = platform_batches[1]
    s = b.samples()
    assert list(s.columns) == ["time_utc", "tag", "value", "quality"]
    assert str(s["time_utc"].dt.tz) == "UTC"
    assert set(s["quality"].astype(str)) <= {"good", "uncertain", "bad"}
    bad = s["quality"] == "bad"
    assert s.loc[bad, "value"].isna().all() and not s.loc[~bad, "value"].isna().any()
    assert {"ph", "glucose_g_per_l", "vcd_cells_per_ml"} <= set(s["tag"])
    assert len(s) == b.online.size + b.atline.size


def test_raman_spectra_every_15_minutes():
    b = simulate_batch(seed=4)
    assert b.raman is not None
    n = 14 * 24 * 4 + 1
    assert b.raman.spectra.shape == (n, b.raman.wavenumbers_cm1.size)
    assert b.raman.spectra.dtype == np.float32
    assert (b.raman.time_utc[1:] - b.raman.time_utc[:-1] == pd.Timedelta(minutes=15)).all()
    assert simulate_batch(seed=4, raman=False).raman is None


def test_events_and_phases_tell_the_story(platform_batches):
    b = platform_batches[1]
    kinds = [e.kind for e in b.events]
    assert kinds[0] == "inoculation" and kinds[-1] == "harvest"
    assert kinds.count("bolus_feed") == 10 and "temperature_shift" in kinds
    assert all(e.time_utc.tzinfo is not None for e in b.events)
    names = [p.name for p in b.phases]
    assert names == ["inoculation", "growth", "production", "harvest"]
    for a, c in zip(b.phases[:-1], b.phases[1:], strict=True):
        assert a.end_utc == c.start_utc
    assert b.phases[-1].end_utc == b.online.index[-1]


def test_stepping_plant_follows_the_same_equations(platform_batches):
    batch = platform_batches[1]
    plant = Bioreactor(default_recipe(), seed=1)
    hours = 5 * 24 + 5  # through the first feeds, glucose top-ups and the shift on day 5
    for _ in range(hours):
        readings = plant.step(None, dt_h=1.0)
    assert plant.time_utc == batch.online.index[hours * 60]
    np.testing.assert_allclose(plant.state, batch.truth.iloc[hours * 60, :12].to_numpy(), rtol=1e-4)
    assert set(readings) == set(batch.online.columns)


def test_stepping_plant_accepts_controller_inputs():
    plant = Bioreactor(seed=2)
    before = plant.state.copy()
    plant.step(
        PlantInputs(bolus_l=20.0, bolus_medium="feed_a", feed_l_per_h=1.0, feed_medium="feed_b"),
        dt_h=0.5,
    )
    assert plant.state[7] == pytest.approx(before[7] + 20.0 + 0.5, rel=1e-3)


def test_volume_never_exceeds_the_working_volume():
    recipe = default_recipe().model_copy(update={"working_volume_l": 1800.0})
    b = simulate_batch(recipe, seed=1, raman=False)
    assert b.truth["volume_l"].max() <= 1800.0 + b.truth["base_added_l"].max()
    assert any("planned" in e.message for e in b.events if e.kind == "glucose_feed")
