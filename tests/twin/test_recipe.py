"""Recipes: the default loads, bad input is refused with a message naming field and range."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from biopilot.config import ConfigError
from biopilot.twin.recipe import Recipe, default_recipe, load_recipe


def _write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _default_data() -> dict:
    return default_recipe().model_dump()


def test_default_recipe_is_a_platform_fed_batch():
    r = default_recipe()
    assert r.harvest_day == 14
    assert r.temperature_shift_day is not None and r.temperature_shift_day < r.harvest_day
    assert r.bolus_feeds and r.continuous_feeds and r.glucose_feed is not None
    assert r.scheduled_volume_l(r.harvest_day) <= r.working_volume_l


def test_recipe_round_trips_through_yaml(tmp_path):
    assert load_recipe(_write(tmp_path, _default_data())) == default_recipe()


def test_negative_feed_volume_names_the_field_and_the_bound(tmp_path):
    data = _default_data()
    data["bolus_feeds"][2]["volume_l"] = -5.0
    with pytest.raises(ConfigError) as err:
        load_recipe(_write(tmp_path, data))
    assert "bolus_feeds.2.volume_l" in str(err.value)
    assert "greater than 0" in str(err.value)


def test_negative_continuous_rate_is_refused(tmp_path):
    data = _default_data()
    data["continuous_feeds"][0]["rate_l_per_day"] = -1.0
    with pytest.raises(ConfigError, match=r"continuous_feeds\.0\.rate_l_per_day"):
        load_recipe(_write(tmp_path, data))


def test_out_of_range_setpoint_names_the_range(tmp_path):
    data = _default_data()
    data["ph_setpoint"] = 8.5
    with pytest.raises(ConfigError) as err:
        load_recipe(_write(tmp_path, data))
    assert "ph_setpoint" in str(err.value) and "7.6" in str(err.value)


def test_harvest_before_shift_is_refused(tmp_path):
    data = _default_data()
    data["harvest_day"], data["temperature_shift_day"] = 4.0, 5.0
    data["bolus_feeds"], data["continuous_feeds"] = [], []
    with pytest.raises(ConfigError) as err:
        load_recipe(_write(tmp_path, data))
    assert "harvest_day" in str(err.value) and "temperature_shift_day" in str(err.value)


def test_feed_after_harvest_is_refused(tmp_path):
    data = _default_data()
    data["bolus_feeds"].append({"day": 15.0, "medium": "feed_a", "volume_l": 1.0})
    with pytest.raises(ConfigError, match=r"bolus_feeds\[10\].*harvest_day"):
        load_recipe(_write(tmp_path, data))


def test_overfilling_feed_is_named(tmp_path):
    data = _default_data()
    data["bolus_feeds"][5]["volume_l"] = 900.0
    with pytest.raises(ConfigError) as err:
        load_recipe(_write(tmp_path, data))
    assert "bolus_feeds[5]" in str(err.value) and "working_volume_l" in str(err.value)


def test_unknown_medium_lists_the_known_ones(tmp_path):
    data = _default_data()
    data["bolus_feeds"][0]["medium"] = "feed_z"
    with pytest.raises(ConfigError, match=r"feed_z.*feed_a, feed_b"):
        load_recipe(_write(tmp_path, data))


def test_unknown_field_is_refused(tmp_path):
    data = _default_data()
    data["seeding_density"] = 1e6  # units missing from the name
    with pytest.raises(ConfigError, match="seeding_density"):
        load_recipe(_write(tmp_path, data))


def test_malformed_yaml_says_where(tmp_path):
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_recipe(_write(tmp_path, "harvest_day: [14\nph_setpoint: 7.0\n"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_recipe(tmp_path / "nope.yaml")


def test_recipe_can_be_built_in_python():
    r = Recipe(harvest_day=10, temperature_shift_day=None)
    assert r.harvest_h == 240.0
