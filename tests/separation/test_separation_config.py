"""Separation inputs: bad YAML is refused with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from biopilot.config import ConfigError, load_yaml
from biopilot.separation import Chip, MediumSpec, Sample, check_half_wave

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "separation"


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _chip_data() -> dict:
    return yaml.safe_load((EXAMPLES / "generic_chip.yaml").read_text())


def _sample_data() -> dict:
    return yaml.safe_load((EXAMPLES / "generic_populations.yaml").read_text())


@pytest.mark.parametrize("stem", ["generic", "augustsson2012"])
def test_examples_load(stem):
    chip = load_yaml(EXAMPLES / f"{stem}_chip.yaml", Chip)
    sample = load_yaml(EXAMPLES / f"{stem}_populations.yaml", Sample)
    assert chip.channel_width_um == 375
    assert any(p.is_target for p in sample.populations)
    assert all(p.compressibility_per_pa and p.compressibility_per_pa > 0
               for p in sample.populations)


def test_negative_compressibility_is_refused_naming_the_field(tmp_path):
    data = _sample_data()
    data["populations"][1]["compressibility_per_pa"] = -4e-10
    with pytest.raises(ConfigError, match=r"populations\.1\.compressibility_per_pa"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_compressibility_in_wrong_unit_is_refused(tmp_path):
    data = _sample_data()
    data["populations"][0]["compressibility_per_pa"] = 422.0  # 1/TPa, not 1/Pa
    with pytest.raises(ConfigError, match="compressibility_per_pa"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_missing_unit_names_the_unit_bearing_field(tmp_path):
    data = _chip_data()
    data["channel_width"] = data.pop("channel_width_um")
    with pytest.raises(ConfigError, match="'channel_width' has no unit: write it as "
                                          "'channel_width_um'"):
        load_yaml(_write(tmp_path, "chip.yaml", data), Chip)


def test_missing_unit_inside_a_population(tmp_path):
    data = _sample_data()
    data["populations"][0]["diameter"] = 12.0
    with pytest.raises(ConfigError, match=r"populations\.0.*'diameter' has no unit"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_empty_populations_are_refused(tmp_path):
    data = _sample_data()
    data["populations"] = []
    with pytest.raises(ConfigError, match=r"populations: .*empty"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_a_target_population_is_required(tmp_path):
    data = _sample_data()
    for p in data["populations"]:
        p["is_target"] = False
    with pytest.raises(ConfigError, match="is_target"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_population_without_preset_must_give_its_properties(tmp_path):
    data = _sample_data()
    data["populations"][0] = {"name": "x", "count": 5, "diameter_um": 10.0, "is_target": True}
    with pytest.raises(ConfigError, match="missing diameter_sd_um, density_kg_per_m3"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_count_or_fraction_not_both(tmp_path):
    data = _sample_data()
    data["populations"][0]["count"] = 10
    with pytest.raises(ConfigError, match="exactly one of count or fraction"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_unknown_preset_lists_the_known_ones(tmp_path):
    data = _sample_data()
    data["populations"][0]["preset"] = "hepatocyte"
    with pytest.raises(ConfigError, match=r"'hepatocyte' is unknown.*mcf7"):
        load_yaml(_write(tmp_path, "pop.yaml", data), Sample)


def test_prefocus_position_must_lie_in_the_half_channel(tmp_path):
    data = _chip_data()
    data.update(prefocused=True, prefocus_distance_from_wall_um=200.0)
    with pytest.raises(ConfigError, match="prefocus_distance_from_wall_um"):
        load_yaml(_write(tmp_path, "chip.yaml", data), Chip)


def test_channel_wider_than_a_half_wave_mode_allows_is_refused():
    chip = load_yaml(EXAMPLES / "generic_chip.yaml", Chip)
    water = MediumSpec(preset="water")
    check_half_wave(chip, water, 2.0e6)  # the designed mode: fine
    with pytest.raises(ValueError, match=r"channel_width_um=375 is wider .* frequency_hz=5e\+06"):
        check_half_wave(chip, water, 5.0e6)
    with pytest.raises(ValueError, match="channel_width_um=375 is narrower"):
        check_half_wave(chip, water, 0.9e6)
