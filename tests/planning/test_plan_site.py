"""The site model refuses bad sites with a message naming what conflicts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from biopilot.config import ConfigError, load_yaml
from biopilot.planning import Site, parse_duration_h

EXAMPLES = Path(__file__).parents[2] / "examples" / "planning"


def _demo() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "demo_site.yaml").read_text())


def _load(tmp_path: Path, data: dict[str, Any]) -> Site:
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_yaml(p, Site)


def _error(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    return str(err.value)


def test_demo_site_loads_with_three_products() -> None:
    site = load_yaml(EXAMPLES / "demo_site.yaml", Site)
    assert [p.name for p in site.products] == ["mAb-A", "AAV-9", "CAR-T-19"]
    assert site.product("CAR-T-19").kind == "autologous"


def test_product_no_suite_can_make_is_named(tmp_path: Path) -> None:
    data = _demo()
    data["products"][1]["procedures"][0]["capability"] = "lentiviral"
    msg = _error(tmp_path, data)
    assert "'AAV-9' procedure 'cell_expansion': no suite can make it" in msg
    assert "lentiviral" in msg


def test_due_date_before_minimum_lead_time_is_named(tmp_path: Path) -> None:
    data = _demo()
    data["products"][0]["orders"][0]["due"] = "2026-01-20T00:00:00Z"
    msg = _error(tmp_path, data)
    assert "order 'MAB-2601'" in msg and "minimum lead time" in msg


def test_vein_to_vein_target_shorter_than_lead_time_is_named(tmp_path: Path) -> None:
    data = _demo()
    data["products"][2]["patients"][0]["target_days"] = 5
    assert "patient 'PT-001'" in _error(tmp_path, data)


def test_cyclic_recipe_names_the_cycle(tmp_path: Path) -> None:
    data = _demo()
    data["products"][0]["procedures"][0]["after"] = ["harvest"]
    msg = _error(tmp_path, data)
    assert "cyclic recipe precedence" in msg
    assert "seed_train -> production_fed_batch -> harvest -> seed_train" in msg


def test_negative_duration_names_the_field(tmp_path: Path) -> None:
    data = _demo()
    data["products"][0]["procedures"][1]["duration_h"] = -4
    msg = _error(tmp_path, data)
    assert "products.0.procedures.1.duration_h" in msg


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("suites",), "NOPE", "unknown suite(s) NOPE"),
        (("staff",), {"welder": 1}, "unknown staff role 'welder'"),
        (("equipment",), {"centrifuge": 1}, "unknown equipment 'centrifuge'"),
        (("after",), ["mixing"], "unknown procedure 'mixing'"),
    ],
)
def test_unknown_names_are_refused(
    tmp_path: Path, path: tuple[str], value: Any, expected: str
) -> None:
    data = _demo()
    proc = data["products"][0]["procedures"][2]
    proc[path[0]] = [value] if path[0] == "suites" else value
    assert expected in _error(tmp_path, data)


def test_unknown_changeover_product_and_closure_suite(tmp_path: Path) -> None:
    data = _demo()
    data["changeovers"].append({"from_product": "mAb-A", "to_product": "insulin", "hours": 3})
    data["closures"][0]["suite"] = "FILL-9"
    msg = _error(tmp_path, data)
    assert "unknown product 'insulin'" in msg and "unknown suite 'FILL-9'" in msg


def test_procedure_longer_than_every_shift_is_refused(tmp_path: Path) -> None:
    data = _demo()
    data["products"][1]["procedures"][1]["staff"] = {"aseptic_operator": 1}
    assert "never on shift for more than 16 h" in _error(tmp_path, data)


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(_demo())
    data["suites"][0]["colour"] = "blue"
    assert "suites.0.colour" in _error(tmp_path, data)


@pytest.mark.parametrize(("text", "hours"), [("28d", 672.0), ("12h", 12.0), ("2w", 336.0)])
def test_durations_parse(text: str, hours: float) -> None:
    assert parse_duration_h(text) == hours


@pytest.mark.parametrize("text", ["28", "d", "-3d", "3 months", "0h"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive number and a unit h, d or w"):
        parse_duration_h(text)
