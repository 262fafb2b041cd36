"""Cost of goods arithmetic: components add up, failures, yields, money convention."""

from __future__ import annotations

import numpy as np
import pytest
from economics_helpers import build

from biopilot.economics import COMPONENTS, ProcessCostModel, estimate, evaluate, parameters


def test_components_add_up_to_the_cost_per_batch(model: ProcessCostModel) -> None:
    est = estimate(build(failure_rate=0.1))
    assert sum(getattr(est, c) for c in COMPONENTS) == pytest.approx(est.per_batch)
    # by hand: media 1000 L x 10; resin 10 L x 10000 / 100; labour 10 h x 100 + 500
    assert est.materials == pytest.approx(10_000 + 1_000)
    assert est.labour == pytest.approx(1_500)
    assert est.qc == pytest.approx(5_000)
    assert est.facility == pytest.approx(1.0e7 / 10 / 20)


def test_components_add_up_on_arrays_of_draws(model: ProcessCostModel) -> None:
    out = evaluate(model, {"failure_rate": np.array([0.0, 0.05, 0.3])})
    total = sum(out[c] for c in COMPONENTS)
    np.testing.assert_allclose(total, out["per_batch"])
    assert out["per_batch"].shape == (3,)


@pytest.mark.parametrize("f", [0.01, 0.05, 0.2, 0.5])
def test_failed_batches_scale_the_good_batch_cost_by_one_over_one_minus_f(f: float) -> None:
    good = estimate(build()).per_batch
    assert estimate(build(failure_rate=f)).per_batch == pytest.approx(good / (1 - f))


def test_a_failure_found_early_costs_only_its_share_of_variable_cost() -> None:
    base = estimate(build())
    variable = base.materials + base.labour + base.qc
    est = estimate(build(failure_rate=0.2, failed_batch_cost_fraction=0.25))
    expected = (variable * (0.8 + 0.2 * 0.25) + base.facility) / 0.8
    assert est.per_batch == pytest.approx(expected)
    assert est.per_batch < estimate(build(failure_rate=0.2)).per_batch


def test_product_per_batch_is_titer_times_volume_times_recoveries(
    model: ProcessCostModel,
) -> None:
    est = estimate(model)
    assert est.product_g_per_batch == pytest.approx(3.0 * 1000 * 0.8)
    assert est.per_gram == pytest.approx(est.per_batch / 2400)
    assert est.doses_per_batch == pytest.approx(2400 / 0.5)
    assert est.per_dose == pytest.approx(est.per_batch / 4800)


def test_higher_titer_lowers_cost_per_gram_but_not_per_batch_of_fixed_items() -> None:
    low, high = (
        estimate(build()),
        estimate(build(yields={"titer_g_per_l": 6.0, "harvest_volume_l": 1000.0})),
    )
    assert high.per_batch == pytest.approx(low.per_batch)
    assert high.per_gram == pytest.approx(low.per_gram / 2)


def test_per_litre_materials_follow_the_harvest_volume() -> None:
    est = estimate(build(yields={"titer_g_per_l": 3.0, "harvest_volume_l": 2000.0}))
    assert est.materials == pytest.approx(20_000 + 1_000)


def test_biomass_process_costs_per_kg_and_per_gram() -> None:
    steps = [{"name": "grow", "materials": [{"name": "nutrients", "quantity": 2, "unit": "kg",
              "unit_price": 3, "basis": "per_kg_biomass"}]}]  # fmt: skip
    est = estimate(
        build(steps=steps, qc=[], yields={"expression_g_per_kg": 1.0, "biomass_kg": 100.0})
    )
    assert est.materials == pytest.approx(600)
    assert est.product_g_per_batch == pytest.approx(100)
    assert est.per_dose is None


def test_autologous_cost_per_patient_uses_doses_per_batch() -> None:
    steps = [{"name": "expand", "materials": [{"name": "kit", "quantity": 1, "unit": "kit",
              "unit_price": 5000}]}]  # fmt: skip
    est = estimate(build(steps=steps, yields={"doses_per_batch": 1, "doses_per_patient": 2}))
    assert est.per_gram is None
    assert est.per_dose == pytest.approx(est.per_batch)
    assert est.per_patient == pytest.approx(2 * est.per_batch)


def test_facility_cost_is_allocated_by_occupancy_and_batches() -> None:
    facility = {"capital_cost": 1.0e7, "depreciation_years": 10, "salvage_fraction": 0.1,
                "maintenance_fraction_per_year": 0.02, "overhead_per_year": 1e5,
                "utilities_per_year": 5e4, "fixed_staff_fte": 2, "cost_per_fte_year": 1e5,
                "changeover_hours_per_year": 100, "changeover_cost_per_hour": 500,
                "occupancy_fraction": 0.25, "batches_per_year": 10}  # fmt: skip
    annual = 1e7 * 0.9 / 10 + 1e7 * 0.02 + 1e5 + 5e4 + 2e5 + 5e4
    assert estimate(build(facility=facility)).facility == pytest.approx(annual * 0.25 / 10)


def test_money_is_converted_then_inflated_as_stated() -> None:
    money = {"currency": "EUR", "price_year": 2020, "report_currency": "USD",
             "exchange_rate": 1.1, "inflation_per_year": 0.03, "report_year": 2024}  # fmt: skip
    base, moved = estimate(build()), estimate(build(money=money))
    assert moved.currency == "USD 2024"
    assert moved.per_batch == pytest.approx(base.per_batch * 1.1 * 1.03**4)


def test_every_input_has_a_path_and_evaluate_refuses_unknown_ones(
    model: ProcessCostModel,
) -> None:
    p = parameters(model)
    assert p["steps.capture.materials.resin.unit_price"] == 10000
    assert p["steps.capture.labour.operator.cost"] == 500
    with pytest.raises(KeyError, match="no such cost input"):
        evaluate(model, {"steps.capture.materials.gold.unit_price": 1.0})


def test_by_step_lists_materials_and_labour_of_each_step(model: ProcessCostModel) -> None:
    assert estimate(model).by_step == pytest.approx({"culture": 11_000, "capture": 1_500})
