"""The typed schedule a solve returns, what downstream packages read, and its checker.

Times in a :class:`Schedule` are hours from ``origin`` (the site's start, UTC). The economics
package reads four plain attributes: ``batches_per_product`` (scheduled batches per product),
``suite_utilisation`` (busy fraction of the horizon per suite, 0-1), ``changeover_hours``
(cleaning plus product changeover hours per suite) and ``expected_failures`` (batches per
product expected to fail, from each product's ``failure_rate``).
"""

from __future__ import annotations

import itertools
from datetime import datetime

from pydantic import BaseModel, Field

from biopilot.planning.instance import MIN_PER_H, Instance, off_shift_blocks
from biopilot.planning.model import Placement

__all__ = ["BatchPlan", "Schedule", "Step", "SuitePlan", "check_schedule", "make_schedule"]


class Step(BaseModel):
    """One procedure of a batch: where it runs and when (hours from the origin)."""

    procedure: str
    suite: str | None
    start_h: float
    end_h: float


class BatchPlan(BaseModel):
    """One batch: product, steps, QC release, due and lateness (hours from the origin)."""

    id: str
    product: str
    patient: str | None = None
    release_h: float
    steps: list[Step]
    end_h: float
    qc_release_h: float
    delivered_h: float
    due_h: float | None = None
    lateness_h: float | None = None
    tardiness_h: float = 0.0


class SuitePlan(BaseModel):
    """One suite: busy hours, utilisation over the horizon, changeovers."""

    suite: str
    busy_h: float
    utilisation: float
    changeover_h: float
    changeovers: int
    batches: int


class Schedule(BaseModel):
    """A solved schedule and the solver's account of it.

    ``objective_value`` and ``best_bound`` are in hours for tardiness and makespan and in
    batches for throughput; ``gap`` is ``|value - bound| / max(|value|, 1e-9)`` (0 proven).
    """

    site: str
    origin: datetime
    horizon_h: float
    objective: str
    status: str
    objective_value: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    bound_method: str = ""
    wall_time_s: float = 0.0
    batches: list[BatchPlan] = Field(default_factory=list)
    suites: list[SuitePlan] = Field(default_factory=list)
    unscheduled: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    batches_per_product: dict[str, int] = Field(default_factory=dict)
    suite_utilisation: dict[str, float] = Field(default_factory=dict)
    changeover_hours: dict[str, float] = Field(default_factory=dict)
    expected_failures: dict[str, float] = Field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        """True when the schedule holds a solution."""
        return self.status in ("OPTIMAL", "FEASIBLE")


def make_schedule(
    inst: Instance,
    placements: dict[int, Placement],
    *,
    objective: str,
    status: str,
    best_bound: float | None,
    bound_method: str,
    wall_time_s: float,
    conflicts: list[str] | None = None,
) -> Schedule:
    """Assemble a :class:`Schedule` from operation placements (minutes) of ``inst``.

    The objective value is recomputed from the placements, so it is exact whatever solved.
    """
    h = 1.0 / MIN_PER_H
    plans, missing = [], []
    for batch in inst.batches:
        if not all(o in placements for o in batch.ops):
            missing.append(batch.id)
            continue
        steps = [
            Step(
                procedure=inst.ops[o].name,
                suite=None if (k := placements[o].suite) is None else inst.suites[k],
                start_h=placements[o].start * h,
                end_h=(placements[o].start + inst.ops[o].duration) * h,
            )
            for o in batch.ops
        ]
        prod = inst.site.products[batch.product]
        end = max(s.end_h for s in steps)
        delivered = end + batch.tail * h
        late = None if batch.due is None else delivered - batch.due * h
        plans.append(
            BatchPlan(
                id=batch.id,
                product=inst.products[batch.product],
                patient=batch.patient,
                release_h=batch.release * h,
                steps=steps,
                end_h=end,
                qc_release_h=end + prod.qc_release_h,
                delivered_h=delivered,
                due_h=None if batch.due is None else batch.due * h,
                lateness_h=late,
                tardiness_h=max(0.0, late or 0.0),
            )
        )
    suites = _suite_plans(inst, placements)
    value = _objective_value(inst, plans, objective) if plans or objective == "throughput" else None
    if status not in ("OPTIMAL", "FEASIBLE"):
        value = None
    gap = None
    if value is not None and best_bound is not None:
        gap = abs(value - best_bound) / max(abs(value), 1e-9) if value != best_bound else 0.0
    per_product = {p: sum(b.product == p for b in plans) for p in inst.products}
    return Schedule(
        site=inst.site.name,
        origin=inst.site.start,
        horizon_h=inst.horizon * h,
        objective=objective,
        status=status,
        objective_value=value,
        best_bound=best_bound,
        gap=gap,
        bound_method=bound_method,
        wall_time_s=wall_time_s,
        batches=plans,
        suites=suites,
        unscheduled=missing,
        conflicts=conflicts or [],
        batches_per_product=per_product,
        suite_utilisation={s.suite: s.utilisation for s in suites},
        changeover_hours={s.suite: s.changeover_h for s in suites},
        expected_failures={
            p.name: per_product[p.name] * p.failure_rate for p in inst.site.products
        },
    )


def check_schedule(inst: Instance, schedule: Schedule | dict[int, Placement]) -> list[str]:
    """Every rule a schedule breaks, one message each (empty when the schedule is valid).

    Checks suites allowed, release, precedence, one operation at a time per suite with
    cleaning and changeovers between consecutive operations, closures, and staff and
    equipment capacity (off-shift time counts as zero capacity). ``schedule`` is a
    :class:`Schedule` of ``inst`` or operation placements (minutes).
    """
    placements = schedule if isinstance(schedule, dict) else _placements(inst, schedule)
    out: list[str] = []
    by_suite: dict[int, list[tuple[int, int, int]]] = {}
    for oi, pl in placements.items():
        op, batch = inst.ops[oi], inst.batches[inst.ops[oi].batch]
        if op.suites and pl.suite not in op.suites:
            out.append(f"{batch.id}/{op.name}: suite {pl.suite} is not allowed")
        if pl.start < batch.release:
            out.append(f"{batch.id}/{op.name}: starts before release")
        for p in op.preds:
            if p in placements and pl.start < placements[p].start + inst.ops[p].duration:
                out.append(f"{batch.id}/{op.name}: starts before {inst.ops[p].name} ends")
        if pl.suite is not None:
            by_suite.setdefault(pl.suite, []).append((pl.start, oi, batch.product))
    for k, items in by_suite.items():
        items.sort()
        for (s1, o1, p1), (s2, o2, p2) in itertools.pairwise(items):
            gap = inst.setup[p1][p2] if p1 != p2 else 0
            if s2 < s1 + inst.suite_time(o1) + gap:
                out.append(
                    f"suite {inst.suites[k]}: {inst.batches[inst.ops[o2].batch].id}/"
                    f"{inst.ops[o2].name} starts before the previous operation, its cleaning "
                    f"and changeover are over"
                )
        for a, e in inst.closures[k]:
            for s, o, _ in items:
                if s < e and s + inst.suite_time(o) > a:
                    out.append(f"suite {inst.suites[k]}: operation during a closure")
    end = max((p.start + inst.ops[o].duration for o, p in placements.items()), default=0)
    for r, pool in enumerate(inst.site.staff):
        cap = inst.role_capacity[r]
        blocks = [(a, b, cap) for a, b in off_shift_blocks(pool, inst.site, 0, end)]
        out += _over_capacity(inst, placements, blocks, cap, r, "staff")
    for e in range(len(inst.equipment)):
        out += _over_capacity(inst, placements, [], inst.equipment_capacity[e], e, "equipment")
    return out


def _placements(inst: Instance, schedule: Schedule) -> dict[int, Placement]:
    """The placements (minutes) behind a schedule of ``inst``."""
    plans = {b.id: b for b in schedule.batches}
    k = {n: i for i, n in enumerate(inst.suites)}
    out = {}
    for batch in inst.batches:
        if batch.id in plans:
            for oi, st in zip(batch.ops, plans[batch.id].steps, strict=True):
                suite = None if st.suite is None else k[st.suite]
                out[oi] = Placement(suite, round(st.start_h * MIN_PER_H))
    return out


def _over_capacity(
    inst: Instance,
    placements: dict[int, Placement],
    blocks: list[tuple[int, int, int]],
    cap: int,
    res: int,
    kind: str,
) -> list[str]:
    """Times when the usage of one resource exceeds its capacity (a sweep over events)."""
    events: list[tuple[int, int]] = []
    for a, b, q in blocks:
        events += [(a, q), (b, -q)]
    for oi, pl in placements.items():
        op = inst.ops[oi]
        for r, q in op.staff if kind == "staff" else op.equipment:
            if r == res and op.duration > 0:
                events += [(pl.start, q), (pl.start + op.duration, -q)]
    level = 0
    for t, d in sorted(events, key=lambda x: (x[0], x[1])):
        level += d
        if level > cap:
            name = inst.roles[res] if kind == "staff" else inst.equipment[res]
            return [f"{kind} {name}: {level} in use at minute {t}, capacity {cap}"]
    return []


def _suite_plans(inst: Instance, placements: dict[int, Placement]) -> list[SuitePlan]:
    """Busy hours, utilisation over the horizon and changeovers of each suite."""
    out = []
    for k, name in enumerate(inst.suites):
        items = sorted((pl.start, oi) for oi, pl in placements.items() if pl.suite == k)
        busy = sum(inst.ops[o].duration for _, o in items)
        inside = sum(
            max(0, min(s + inst.ops[o].duration, inst.horizon) - max(s, 0)) for s, o in items
        )
        change, count = 0, 0
        for i, (_, o) in enumerate(items):
            p1 = inst.batches[inst.ops[o].batch].product
            change += inst.clean[p1]
            if i + 1 < len(items):
                p2 = inst.batches[inst.ops[items[i + 1][1]].batch].product
                if p1 != p2:
                    change += inst.setup[p1][p2]
                    count += 1
        out.append(
            SuitePlan(
                suite=name,
                busy_h=busy / MIN_PER_H,
                utilisation=inside / inst.horizon if inst.horizon else 0.0,
                changeover_h=change / MIN_PER_H,
                changeovers=count,
                batches=len({inst.ops[o].batch for _, o in items}),
            )
        )
    return out


def _objective_value(inst: Instance, plans: list[BatchPlan], objective: str) -> float:
    """The objective measured on the schedule: hours, or batches for throughput."""
    weights = {b.id: b.weight for b in inst.batches}
    if objective == "throughput":
        end = inst.horizon / MIN_PER_H + 1e-9
        return float(sum(weights[p.id] for p in plans if p.delivered_h <= end))
    if objective == "makespan":
        return max((p.end_h for p in plans), default=0.0)
    return sum(weights[p.id] * p.tardiness_h for p in plans)
