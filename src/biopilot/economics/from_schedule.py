"""Cost inputs from the planner's schedule: batches a year, suite occupancy, changeovers, failures.

A :class:`biopilot.planning.schedule.Schedule` covers ``horizon_h`` hours; this module
annualises it (x 8760 h / horizon) into a small typed :class:`ScheduleSummary` for one
product, then writes that summary into a process cost model.

Allocation convention: the site's annual facility cost is shared among products by their
share of the *busy* suite-hours (steps placed in suites), so idle capacity is charged to the
products made, as full-absorption costing does. ``charge_idle=False`` divides by the
*available* suite-hours instead, leaving idle capacity out of the product's cost.
Either way the process file's ``facility`` block must then describe the whole site the
schedule covers (its capital, overheads, staff), not one suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from biopilot.config import ConfigError

from .model import ProcessCostModel

if TYPE_CHECKING:
    from biopilot.planning.schedule import Schedule

__all__ = ["HOURS_PER_YEAR", "ScheduleSummary", "apply_schedule", "summarise"]

HOURS_PER_YEAR = 8760.0


@dataclass(frozen=True)
class ScheduleSummary:
    """What the cost model needs from a schedule, for one product, per year."""

    product: str
    batches_per_year: float
    occupancy_fraction: float
    changeover_hours_per_year: float
    failure_rate: float


def summarise(schedule: Schedule, product: str, charge_idle: bool = True) -> ScheduleSummary:
    """Annualised batches, occupancy share, changeovers and failure rate of ``product``.

    Parameters
    ----------
    schedule
        A feasible schedule from ``biopilot.planning``.
    product
        Product name as the site model spells it.
    charge_idle
        Share the facility by busy suite-hours (True) or by available suite-hours (False).

    Raises
    ------
    ConfigError
        If the schedule is not feasible, has no batch of ``product``, or no suite time.
    """
    if not schedule.feasible:
        raise ConfigError(f"schedule of {schedule.site} is {schedule.status}: nothing to cost")
    n = schedule.batches_per_product.get(product, 0)
    if n <= 0:
        known = sorted(k for k, v in schedule.batches_per_product.items() if v > 0)
        raise ConfigError(f"product {product!r} has no scheduled batch; scheduled: {known}")
    busy = {p: 0.0 for p in schedule.batches_per_product}
    for batch in schedule.batches:
        hours = sum(s.end_h - s.start_h for s in batch.steps if s.suite is not None)
        busy[batch.product] = busy.get(batch.product, 0.0) + hours
    available = len(schedule.suites) * schedule.horizon_h
    total = sum(busy.values()) if charge_idle else available
    if total <= 0 or busy[product] <= 0:
        raise ConfigError(f"schedule of {schedule.site}: no suite time for {product!r}")
    per_year = HOURS_PER_YEAR / schedule.horizon_h
    failures = schedule.expected_failures.get(product, 0.0)
    return ScheduleSummary(
        product=product,
        batches_per_year=n * per_year,
        occupancy_fraction=min(1.0, busy[product] / total),
        changeover_hours_per_year=sum(schedule.changeover_hours.values()) * per_year,
        failure_rate=min(failures / n, 0.99),
    )


def apply_schedule(model: ProcessCostModel, summary: ScheduleSummary) -> ProcessCostModel:
    """A copy of ``model`` costed on the schedule: its distributions for those inputs removed.

    ``changeover_hours_per_year`` is site-wide; it is shared like the rest of the facility
    by ``occupancy_fraction``, at the model's ``facility.changeover_cost_per_hour``.
    """
    data = model.model_dump()
    data["facility"].update(
        batches_per_year=summary.batches_per_year,
        occupancy_fraction=summary.occupancy_fraction,
        changeover_hours_per_year=summary.changeover_hours_per_year,
    )
    data["failure_rate"] = summary.failure_rate
    for key in (
        "facility.batches_per_year",
        "facility.occupancy_fraction",
        "facility.changeover_hours_per_year",
        "failure_rate",
    ):
        data["uncertain"].pop(key, None)
    return ProcessCostModel.model_validate(data)
