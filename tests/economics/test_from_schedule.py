"""Cost inputs taken from the planner's schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from economics_helpers import build

from biopilot.config import ConfigError
from biopilot.economics import apply_schedule, estimate, summarise

schedule_mod = pytest.importorskip("biopilot.planning.schedule")


def _schedule(status: str = "OPTIMAL") -> object:
    """28 days, 2 suites: 3 mAb batches of 100 suite-hours, 1 AAV batch of 100 suite-hours."""
    s = schedule_mod

    def batch(i: int, product: str) -> object:
        t = i * 100.0
        steps = [
            s.Step(procedure="upstream", suite="A", start_h=t, end_h=t + 80),
            s.Step(procedure="downstream", suite="B", start_h=t + 80, end_h=t + 100),
            s.Step(procedure="qc", suite=None, start_h=t + 100, end_h=t + 148),
        ]
        return s.BatchPlan(
            id=f"{product}-{i}", product=product, release_h=t, steps=steps, end_h=t + 100,
            qc_release_h=t + 148, delivered_h=t + 148,
        )  # fmt: skip

    batches = [batch(0, "mab"), batch(1, "mab"), batch(2, "mab"), batch(3, "aav")]
    suites = [
        s.SuitePlan(suite="A", busy_h=320, utilisation=320 / 672, changeover_h=12, changeovers=2,
                    batches=4),
        s.SuitePlan(suite="B", busy_h=80, utilisation=80 / 672, changeover_h=4, changeovers=1,
                    batches=4),
    ]  # fmt: skip
    return s.Schedule(
        site="demo", origin=datetime(2026, 1, 1, tzinfo=UTC), horizon_h=672.0,
        objective="tardiness", status=status, batches=batches, suites=suites,
        batches_per_product={"mab": 3, "aav": 1},
        suite_utilisation={"A": 320 / 672, "B": 80 / 672},
        changeover_hours={"A": 12.0, "B": 4.0},
        expected_failures={"mab": 0.15, "aav": 0.0},
    )  # fmt: skip


def test_summary_annualises_batches_and_shares_the_busy_suite_time() -> None:
    got = summarise(_schedule(), "mab")  # type: ignore[arg-type]
    assert got.batches_per_year == pytest.approx(3 * 8760 / 672)
    assert got.occupancy_fraction == pytest.approx(300 / 400)  # QC (no suite) not counted
    assert got.changeover_hours_per_year == pytest.approx(16 * 8760 / 672)
    assert got.failure_rate == pytest.approx(0.05)


def test_without_charging_idle_time_the_share_is_of_available_suite_hours() -> None:
    got = summarise(_schedule(), "mab", charge_idle=False)  # type: ignore[arg-type]
    assert got.occupancy_fraction == pytest.approx(300 / (2 * 672))


def test_schedule_inputs_replace_assumed_ones_and_their_distributions() -> None:
    uncertain = {"facility.batches_per_year": {"dist": "uniform", "low": 10, "high": 30}}
    model = build(uncertain=uncertain)
    costed = apply_schedule(model, summarise(_schedule(), "mab"))  # type: ignore[arg-type]
    assert costed.facility.batches_per_year == pytest.approx(3 * 8760 / 672)
    assert costed.failure_rate == pytest.approx(0.05)
    assert not costed.uncertain
    assert estimate(costed).failures > 0


def test_infeasible_schedule_or_absent_product_is_refused() -> None:
    with pytest.raises(ConfigError, match="INFEASIBLE"):
        summarise(_schedule("INFEASIBLE"), "mab")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="car_t"):
        summarise(_schedule(), "car_t")  # type: ignore[arg-type]
