"""Bad process files are refused with a message that names the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from economics_helpers import small_process

from biopilot.config import ConfigError
from biopilot.economics import load_process


def _load(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "process.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_process(path)


def _refused(tmp_path: Path, data: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_valid_file_loads(tmp_path: Path) -> None:
    _load(tmp_path, small_process())


def test_negative_unit_price_names_the_field(tmp_path: Path) -> None:
    data = small_process()
    data["steps"][1]["materials"][0]["unit_price"] = -5
    _refused(tmp_path, data, "steps.1.materials.0.unit_price", "greater than or equal to 0")


def test_negative_qc_cost_and_capital_are_refused(tmp_path: Path) -> None:
    data = small_process()
    data["qc"][0]["cost_per_test"] = -1
    data["facility"]["capital_cost"] = -1e6
    _refused(tmp_path, data, "qc.0.cost_per_test", "facility.capital_cost")


def test_unknown_unit_names_the_field_and_the_allowed_units(tmp_path: Path) -> None:
    data = small_process()
    data["steps"][0]["materials"][0]["unit"] = "gallon"
    _refused(tmp_path, data, "steps.0.materials.0.unit", "'kg'", "gallon")


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = small_process()
    del data["facility"]["batches_per_year"]
    _refused(tmp_path, data, "facility.batches_per_year", "Field required")


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, small_process(discount=0.1), "discount", "Extra inputs")


def test_labour_role_without_a_rate_is_refused(tmp_path: Path) -> None:
    data = small_process()
    data["steps"][0]["labour"][0]["role"] = "wizard"
    _refused(tmp_path, data, "steps.0.labour.0.role", "wizard", "operator")


def test_labour_needs_hours_or_cost_not_both(tmp_path: Path) -> None:
    data = small_process()
    data["steps"][0]["labour"][0]["cost"] = 100
    _refused(tmp_path, data, "steps.0.labour.0", "hours")


def test_failure_rate_of_one_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, small_process(failure_rate=1.0), "failure_rate", "less than 1")


def test_duplicate_step_names_are_refused(tmp_path: Path) -> None:
    data = small_process()
    data["steps"][1]["name"] = "culture"
    _refused(tmp_path, data, "duplicate", "culture")


def test_uncertain_path_must_exist_and_gets_a_hint(tmp_path: Path) -> None:
    data = small_process(uncertain={"steps.capture.materials.resn.unit_price":
                                    {"dist": "uniform", "low": 1, "high": 2}})  # fmt: skip
    _refused(tmp_path, data, "uncertain.steps.capture.materials.resn.unit_price",
             "steps.capture.materials.resin.unit_price")  # fmt: skip


@pytest.mark.parametrize(
    ("path", "dist", "fragment"),
    [
        ("qc.release.cost_per_test", {"dist": "uniform", "low": -10, "high": 5}, "negative"),
        ("failure_rate", {"dist": "uniform", "low": 0.0, "high": 1.0}, "< 1"),
        ("steps.capture.recovery_fraction",
         {"dist": "triangular", "low": 0.5, "mode": 0.9, "high": 1.2}, "<= 1"),
        ("steps.capture.recovery_fraction", {"dist": "lognormal", "median": 0.8, "gsd": 1.1},
         "bounded"),
        ("facility.batches_per_year", {"dist": "uniform", "low": 0, "high": 5}, "> 0"),
        ("yields.titer_g_per_l", {"dist": "triangular", "low": 3, "mode": 2, "high": 4},
         "low <= mode <= high"),
        ("yields.titer_g_per_l", {"dist": "lognormal", "median": 3, "gsd": 0.5}, "gsd"),
        ("yields.titer_g_per_l", {"dist": "normal", "mean": 3, "sd": 1}, "dist"),
    ],
)  # fmt: skip
def test_distributions_that_could_draw_nonsense_are_refused(
    tmp_path: Path, path: str, dist: dict[str, Any], fragment: str
) -> None:
    _refused(tmp_path, small_process(uncertain={path: dist}), f"uncertain.{path}", fragment)


def test_report_currency_needs_an_exchange_rate(tmp_path: Path) -> None:
    money = {"currency": "EUR", "price_year": 2020, "report_currency": "USD"}
    _refused(tmp_path, small_process(money=money), "money", "exchange_rate")


def test_unknown_currency_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, small_process(money={"currency": "GBP", "price_year": 2020}),
             "money.currency", "GBP")  # fmt: skip


def test_titer_without_volume_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, small_process(yields={"titer_g_per_l": 3}), "yields", "harvest_volume_l")


def test_missing_file_and_malformed_yaml_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_process(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_process(bad)


def test_published_inputs_must_be_line_items_or_total_only(tmp_path: Path) -> None:
    published = {"value": 1, "metric": "per_batch", "currency": "USD", "cite": "x",
                 "source": "x", "inputs": "some"}  # fmt: skip
    _refused(tmp_path, small_process(published=published), "published.inputs",
             "'line_items'", "'total_only'")  # fmt: skip
