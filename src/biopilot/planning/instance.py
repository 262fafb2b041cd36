"""The site compiled for a horizon: batches and operations on an integer minute grid.

The solver, the dispatcher, the checker and the Monte Carlo all read this one form, so a
batch means the same thing everywhere. Time ``0`` is the site's ``start``; times are minutes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta

from biopilot.planning.site import (
    WEEKDAYS,
    Product,
    Site,
    StaffPool,
    critical_path_h,
    topological_order,
)

__all__ = [
    "Batch",
    "Instance",
    "Op",
    "compile_site",
    "lower_bound",
    "off_shift_blocks",
    "parse_duration_h",
]

MIN_PER_H = 60
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")
_UNIT_H = {"h": 1.0, "d": 24.0, "w": 168.0}


def parse_duration_h(text: str) -> float:
    """Parse a duration such as ``28d``, ``12h`` or ``2w`` into hours.

    Raises
    ------
    ValueError
        If ``text`` is not a positive number followed by ``h``, ``d`` or ``w``.
    """
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(
            f"invalid duration {text!r}: expected a positive number and a unit h, d or w "
            "(e.g. 28d, 12h, 2w)"
        )
    return float(m.group(1)) * _UNIT_H[m.group(2)]


@dataclass(frozen=True)
class Op:
    """One unit procedure of one batch: duration, eligible suites, resources, predecessors."""

    batch: int
    name: str
    duration: int
    suites: tuple[int, ...]
    staff: tuple[tuple[int, int], ...]
    equipment: tuple[tuple[int, int], ...]
    preds: tuple[int, ...]
    cv: float = 0.0


@dataclass(frozen=True)
class Batch:
    """One batch: its product, release, due time, operations (in precedence order), tail."""

    id: str
    product: int
    release: int
    due: int | None
    weight: float
    ops: tuple[int, ...]
    tail: int
    min_lead: int
    earliest_delivery: int | None = None
    patient: str | None = None


@dataclass
class Instance:
    """A site compiled for a horizon; see the module docstring for units."""

    site: Site
    horizon: int
    suites: list[str]
    products: list[str]
    roles: list[str]
    equipment: list[str]
    batches: list[Batch]
    ops: list[Op]
    clean: list[int]
    setup: list[list[int]]
    role_capacity: list[int]
    equipment_capacity: list[int]
    closures: list[list[tuple[int, int]]] = field(default_factory=list)
    closure_names: list[list[str]] = field(default_factory=list)

    def suite_time(self, op: int) -> int:
        """Minutes the operation holds its suite: duration plus the product's cleaning."""
        o = self.ops[op]
        return o.duration + self.clean[self.batches[o.batch].product]

    def upper_time(self, batches: list[int]) -> int:
        """A time by which any of ``batches`` can surely be finished (a serial schedule)."""
        shift_wait = 7 * 24 * MIN_PER_H if any(p.shifts for p in self.site.staff) else 0
        max_setup = max((max(r) for r in self.setup), default=0)
        per_op = max_setup + shift_wait
        total = sum(self.suite_time(o) + per_op for b in batches for o in self.batches[b].ops)
        start = max((self.batches[b].release for b in batches), default=0)
        start = max([start, *(e for c in self.closures for _, e in c)])  # after every closure
        return start + total + max((self.batches[b].tail for b in batches), default=0)


def compile_site(site: Site, horizon_h: float) -> Instance:
    """Compile ``site`` for the batches released within ``horizon_h`` hours of its start.

    Orders with no release date are released at the site's start; patients at apheresis.
    """
    horizon = round(horizon_h * MIN_PER_H)
    suites = [s.name for s in site.suites]
    s_idx = {n: i for i, n in enumerate(suites)}
    roles = [s.role for s in site.staff]
    equip = [e.name for e in site.equipment]
    products = [p.name for p in site.products]
    p_idx = {n: i for i, n in enumerate(products)}
    setup = [[0] * len(products) for _ in products]
    for ch in site.changeovers:
        if ch.from_product != ch.to_product:
            setup[p_idx[ch.from_product]][p_idx[ch.to_product]] = _m(ch.hours)
    inst = Instance(
        site=site,
        horizon=horizon,
        suites=suites,
        products=products,
        roles=roles,
        equipment=equip,
        batches=[],
        ops=[],
        clean=[_m(p.cleaning_h) for p in site.products],
        setup=setup,
        role_capacity=[s.headcount for s in site.staff],
        equipment_capacity=[e.count for e in site.equipment],
        closures=[[] for _ in suites],
        closure_names=[[] for _ in suites],
    )
    for c in site.closures:
        for i in [s_idx[c.suite]] if c.suite else range(len(suites)):
            inst.closures[i].append((_m(site.hours(c.start)), _m(site.hours(c.end))))
            inst.closure_names[i].append(c.reason or "closure")
    for pi, prod in enumerate(site.products):
        order = topological_order(prod)
        lead = _m(critical_path_h(prod))
        tail = _m(prod.qc_release_h + prod.ship_h)
        shelf = None if prod.shelf_life_h is None else _m(prod.shelf_life_h)
        for rel, due, weight, bid, patient in _demands(site, prod):
            if rel >= horizon:
                continue
            first = len(inst.ops)
            pos = {n: first + k for k, n in enumerate(order)}
            for n in order:
                proc = prod.procedure(n)
                inst.ops.append(
                    Op(
                        batch=len(inst.batches),
                        name=n,
                        duration=_m(proc.duration_h),
                        suites=tuple(s_idx[s] for s in site.eligible_suites(proc)),
                        staff=tuple((roles.index(r), q) for r, q in proc.staff.items() if q),
                        equipment=tuple(
                            (equip.index(e), q) for e, q in proc.equipment.items() if q
                        ),
                        preds=tuple(pos[a] for a in proc.after),
                        cv=proc.duration_cv,
                    )
                )
            inst.batches.append(
                Batch(
                    id=bid,
                    product=pi,
                    release=max(rel, 0),
                    due=due,
                    weight=weight,
                    ops=tuple(range(first, len(inst.ops))),
                    tail=tail,
                    min_lead=lead + tail,
                    earliest_delivery=None if due is None or shelf is None else due - shelf,
                    patient=patient,
                )
            )
    return inst


def off_shift_blocks(pool: StaffPool, site: Site, t0: int, t1: int) -> list[tuple[int, int]]:
    """Minutes in ``[t0, t1)`` when nobody of ``pool`` is on shift, as ``(start, end)`` pairs."""
    if not pool.shifts:
        return []
    on: list[tuple[int, int]] = []
    day0 = site.start.replace(hour=0, minute=0, second=0, microsecond=0)
    base = _m(site.hours(day0))
    for d in range(t0 // (24 * MIN_PER_H) - 2, t1 // (24 * MIN_PER_H) + 2):
        wd = WEEKDAYS[(day0 + timedelta(days=d)).weekday()]
        for s in pool.shifts:
            if wd in s.days:
                a = base + d * 24 * MIN_PER_H + s.start_hour * MIN_PER_H
                on.append((a, a + _m(s.hours)))
    on.sort()
    out, t = [], t0
    for a, b in on:
        if a > t:
            out.append((t, min(a, t1)))
        t = max(t, b)
        if t >= t1:
            break
    if t < t1:
        out.append((t, t1))
    return [(a, b) for a, b in out if b > a]


def lower_bound(inst: Instance, objective: str, batches: list[int] | None = None) -> float:
    """A valid bound on ``objective`` (minutes, or batches for throughput), from relaxations.

    tardiness: each batch alone at its critical path (resources relaxed), summed and weighted.
    makespan: the larger of the longest release + critical path and, for each set of eligible
    suites, the earliest release plus the work that can only go there over the set's size.
    throughput: an upper bound, the batches that could each finish within the horizon.
    """
    ids = range(len(inst.batches)) if batches is None else batches
    bs = [inst.batches[i] for i in ids]
    if objective == "tardiness":
        return sum(b.weight * max(0, b.release + b.min_lead - b.due) for b in bs if b.due)
    if objective == "throughput":
        return float(sum(b.release + b.min_lead <= inst.horizon for b in bs))
    best = max((b.release + b.min_lead - b.tail for b in bs), default=0)
    work: dict[tuple[int, ...], int] = {}
    for b in bs:
        for o in b.ops:
            if inst.ops[o].suites:
                key = inst.ops[o].suites
                work[key] = work.get(key, 0) + inst.ops[o].duration
    r0 = min((b.release for b in bs), default=0)
    for key in work:
        inside = sum(w for k, w in work.items() if set(k) <= set(key))
        best = max(best, r0 + math.ceil(inside / len(key)))
    return float(best)


def _m(hours: float) -> int:
    """Hours to whole minutes."""
    return round(hours * MIN_PER_H)


def _demands(site: Site, prod: Product) -> list[tuple[int, int | None, float, str, str | None]]:
    """(release, due, weight, batch id, patient) for each batch asked of ``prod``, minutes."""
    out: list[tuple[int, int | None, float, str, str | None]] = []
    for o in prod.orders:
        rel = _m(site.hours(o.release)) if o.release else 0
        due = _m(site.hours(o.due)) if o.due else None
        for k in range(o.batches):
            bid = o.id if o.batches == 1 else f"{o.id}-{k + 1}"
            out.append((rel, due, o.weight, bid, None))
    for pt in prod.patients:
        rel = _m(site.hours(pt.apheresis))
        target = pt.target_days or prod.vein_to_vein_target_days or 0.0
        out.append((rel, rel + _m(target * 24), pt.weight, f"{prod.name}-{pt.id}", pt.id))
    return out
