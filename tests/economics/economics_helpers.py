"""Helpers of the economics tests: a small process cost model built in code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biopilot.config import parse_model
from biopilot.economics import ProcessCostModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "economics"


def small_process(**changes: Any) -> dict[str, Any]:
    """A two-step process as a plain dict; ``changes`` replace top-level keys."""
    data: dict[str, Any] = {
        "name": "small",
        "money": {"currency": "USD", "price_year": 2024},
        "labour_rates_per_hour": {"operator": 100.0},
        "steps": [
            {
                "name": "culture",
                "materials": [
                    {"name": "media", "quantity": 1, "unit": "L", "unit_price": 10,
                     "basis": "per_l_harvest"},
                ],
                "labour": [{"role": "operator", "hours": 10}],
            },
            {
                "name": "capture",
                "recovery_fraction": 0.8,
                "materials": [
                    {"name": "resin", "quantity": 10, "unit": "L", "unit_price": 10000,
                     "reuse_cycles": 100},
                ],
                "labour": [{"role": "operator", "cost": 500}],
            },
        ],
        "qc": [{"name": "release", "tests_per_batch": 5, "cost_per_test": 1000}],
        "facility": {"capital_cost": 1.0e7, "depreciation_years": 10, "batches_per_year": 20},
        "yields": {"titer_g_per_l": 3.0, "harvest_volume_l": 1000.0, "dose_g": 0.5},
        "failure_rate": 0.0,
    }  # fmt: skip
    data.update(changes)
    return data


def build(**changes: Any) -> ProcessCostModel:
    """Validate :func:`small_process` with ``changes`` into a model."""
    return parse_model(ProcessCostModel, small_process(**changes))
