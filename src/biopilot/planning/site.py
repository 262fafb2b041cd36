"""The site model: suites, equipment, staff, products and their recipes, as validated YAML.

A site is described once, in hours and UTC datetimes, and checked as a whole: every name a
recipe uses must exist, every procedure must have a suite able to make it, recipes must be
acyclic and every due date must leave at least the minimum lead time. Each refusal names
what conflicts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from biopilot.config import StrictModel

__all__ = [
    "Changeover",
    "Closure",
    "Equipment",
    "Order",
    "Patient",
    "Procedure",
    "Product",
    "Shift",
    "Site",
    "StaffPool",
    "Suite",
    "critical_path_h",
    "longest_shift_h",
    "topological_order",
]

Grade = Literal["A", "B", "C", "D", "CNC"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GRADE_RANK = {"A": 0, "B": 1, "C": 2, "D": 3, "CNC": 4}  # EU GMP Annex 1: A is cleanest


class Suite(StrictModel):
    """A cleanroom suite or module: one batch procedure at a time."""

    name: str = Field(min_length=1)
    grade: Grade = "C"
    capabilities: list[str] = Field(default_factory=list)


class Equipment(StrictModel):
    """A pool of identical equipment shared by the site (incubators, bioreactors, freezers)."""

    name: str = Field(min_length=1)
    count: int = Field(ge=1)


class Shift(StrictModel):
    """A recurring shift: on the given weekdays from ``start_hour`` for ``hours`` (UTC)."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start_hour: int = Field(0, ge=0, le=23)
    hours: float = Field(24.0, gt=0, le=24)


class StaffPool(StrictModel):
    """People of one role: ``headcount`` on each shift; no shifts listed means around the clock."""

    role: str = Field(min_length=1)
    headcount: int = Field(ge=1)
    shifts: list[Shift] = Field(default_factory=list)


class Closure(StrictModel):
    """A calendar closure (shutdown, maintenance) of one suite, or of every suite if none named."""

    suite: str | None = None
    start: AwareDatetime
    end: AwareDatetime
    reason: str = ""


class Procedure(StrictModel):
    """A unit procedure of a recipe (ISA-88): its duration, where it may run, what it uses."""

    name: str = Field(min_length=1)
    duration_h: float = Field(ge=0)
    duration_cv: float = Field(0.0, ge=0, le=2, description="coefficient of variation, for MC")
    in_suite: bool = True
    suites: list[str] = Field(default_factory=list, description="allowed suites; empty: any")
    capability: str | None = None
    min_grade: Grade | None = None
    staff: dict[str, int] = Field(default_factory=dict)
    equipment: dict[str, int] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)


class Order(StrictModel):
    """A campaign order: ``batches`` batches released at ``release`` and due at ``due``."""

    id: str = Field(min_length=1)
    batches: int = Field(1, ge=1)
    release: AwareDatetime | None = None
    due: AwareDatetime | None = None
    weight: float = Field(1.0, gt=0)


class Patient(StrictModel):
    """An autologous patient: one batch released at apheresis, due at the vein-to-vein target."""

    id: str = Field(min_length=1)
    apheresis: AwareDatetime
    target_days: float | None = Field(None, gt=0)
    weight: float = Field(1.0, gt=0)


class Product(StrictModel):
    """A product, its recipe, release and logistics times, and what is asked of it."""

    name: str = Field(min_length=1)
    kind: Literal["campaign", "autologous"] = "campaign"
    procedures: list[Procedure] = Field(min_length=1)
    cleaning_h: float = Field(0.0, ge=0, description="suite cleaning after each procedure")
    qc_release_h: float = Field(0.0, ge=0)
    ship_h: float = Field(0.0, ge=0, description="release to patient / customer")
    shelf_life_h: float | None = Field(None, gt=0)
    failure_rate: float = Field(0.0, ge=0, lt=1)
    rework_delay_h: float = Field(336.0, ge=0, description="re-apheresis after a failed batch")
    vein_to_vein_target_days: float | None = Field(None, gt=0)
    orders: list[Order] = Field(default_factory=list)
    patients: list[Patient] = Field(default_factory=list)

    def procedure(self, name: str) -> Procedure:
        """Return the procedure called ``name``; raise KeyError if there is none."""
        for p in self.procedures:
            if p.name == name:
                return p
        raise KeyError(f"product {self.name!r} has no procedure {name!r}")


class Changeover(StrictModel):
    """Extra suite time when a suite goes from product ``from_product`` to ``to_product``."""

    from_product: str
    to_product: str
    hours: float = Field(ge=0)


class Site(StrictModel):
    """A multi-product modular site; cross-checked as a whole when loaded."""

    name: str = Field(min_length=1)
    start: AwareDatetime
    suites: list[Suite] = Field(min_length=1)
    equipment: list[Equipment] = Field(default_factory=list)
    staff: list[StaffPool] = Field(default_factory=list)
    closures: list[Closure] = Field(default_factory=list)
    products: list[Product] = Field(min_length=1)
    changeovers: list[Changeover] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> Site:
        problems = _cross_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def product(self, name: str) -> Product:
        """Return the product called ``name``; raise KeyError if there is none."""
        for p in self.products:
            if p.name == name:
                return p
        raise KeyError(f"site has no product {name!r}")

    def hours(self, t: datetime) -> float:
        """Hours from the site's ``start`` to ``t``."""
        return (t - self.start) / timedelta(hours=1)

    def eligible_suites(self, proc: Procedure) -> list[str]:
        """Names of the suites where ``proc`` may run (empty for an off-suite procedure)."""
        if not proc.in_suite:
            return []
        return [
            s.name
            for s in self.suites
            if (not proc.suites or s.name in proc.suites)
            and (proc.capability is None or proc.capability in s.capabilities)
            and (proc.min_grade is None or _GRADE_RANK[s.grade] <= _GRADE_RANK[proc.min_grade])
        ]


def topological_order(product: Product) -> list[str]:
    """Procedure names of ``product`` in precedence order.

    Raises
    ------
    ValueError
        If a predecessor is unknown or the precedence is cyclic; the message names the cycle.
    """
    names = [p.name for p in product.procedures]
    preds = {p.name: list(p.after) for p in product.procedures}
    for p in product.procedures:
        for a in p.after:
            if a not in preds:
                raise ValueError(
                    f"product {product.name!r}: procedure {p.name!r} comes after unknown "
                    f"procedure {a!r} (known: {', '.join(names)})"
                )
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = [*path[path.index(n) :], n][::-1]  # in the order the steps would run
            raise ValueError(
                f"product {product.name!r}: cyclic recipe precedence {' -> '.join(cycle)}"
            )
        state[n] = 1
        for a in preds[n]:
            visit(a, [*path, n])
        state[n] = 2
        order.append(n)

    for n in names:
        visit(n, [])
    return order


def critical_path_h(product: Product) -> float:
    """Shortest possible production time of one batch (hours), ignoring every resource."""
    finish: dict[str, float] = {}
    for n in topological_order(product):
        p = product.procedure(n)
        finish[n] = max((finish[a] for a in p.after), default=0.0) + p.duration_h
    return max(finish.values(), default=0.0)


def longest_shift_h(pool: StaffPool) -> float:
    """Longest unbroken time (hours) someone of ``pool`` is on shift; inf around the clock."""
    if not pool.shifts:
        return math.inf
    on = sorted(
        (d * 24.0 + s.start_hour, d * 24.0 + s.start_hour + s.hours)
        for d in range(21)
        for s in pool.shifts
        if WEEKDAYS[d % 7] in s.days
    )
    best, (a, b) = 0.0, on[0]
    for c, e in on[1:]:
        if c > b:
            best, a = max(best, b - a), c
        b = max(b, e)
    best = max(best, b - a)
    return math.inf if best >= 14 * 24 else best


def _cross_problems(site: Site) -> list[str]:
    """Every inconsistency between the parts of ``site``, one message each."""
    out: list[str] = []
    for kind, items in (
        ("suite", [s.name for s in site.suites]),
        ("equipment", [e.name for e in site.equipment]),
        ("staff role", [s.role for s in site.staff]),
        ("product", [p.name for p in site.products]),
    ):
        dup = sorted({n for n in items if items.count(n) > 1})
        if dup:
            out.append(f"duplicate {kind} name(s): {', '.join(dup)}")
    suites = {s.name for s in site.suites}
    equip = {e.name: e.count for e in site.equipment}
    roles = {s.role: s.headcount for s in site.staff}
    stretch = {s.role: longest_shift_h(s) for s in site.staff}
    products = {p.name for p in site.products}
    for c in site.closures:
        if c.suite is not None and c.suite not in suites:
            out.append(f"closure names unknown suite {c.suite!r}")
        if c.end <= c.start:
            out.append(f"closure of {c.suite or 'all suites'} ends before it starts")
    for ch in site.changeovers:
        for end in (ch.from_product, ch.to_product):
            if end not in products:
                out.append(f"changeover names unknown product {end!r}")
    for prod in site.products:
        out.extend(_product_problems(site, prod, suites, equip, roles, stretch))
    return out


def _product_problems(
    site: Site,
    prod: Product,
    suites: set[str],
    equip: dict[str, int],
    roles: dict[str, int],
    stretch: dict[str, float],
) -> list[str]:
    """Inconsistencies of one product with the site."""
    out: list[str] = []
    names = [p.name for p in prod.procedures]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(f"product {prod.name!r}: duplicate procedure name(s) {', '.join(dup)}")
    for proc in prod.procedures:
        where = f"product {prod.name!r} procedure {proc.name!r}"
        unknown = [s for s in proc.suites if s not in suites]
        if unknown:
            out.append(f"{where}: unknown suite(s) {', '.join(unknown)}")
        elif proc.in_suite and not site.eligible_suites(proc):
            need = [f"suites {proc.suites}" if proc.suites else ""]
            need += [f"capability {proc.capability!r}" if proc.capability else ""]
            need += [f"grade {proc.min_grade} or cleaner" if proc.min_grade else ""]
            out.append(f"{where}: no suite can make it (needs {', '.join(n for n in need if n)})")
        for res, qty in proc.staff.items():
            if res not in roles:
                out.append(f"{where}: unknown staff role {res!r}")
            elif qty > roles[res]:
                out.append(f"{where}: needs {qty} {res} but the headcount is {roles[res]}")
            elif proc.duration_h > stretch[res]:
                out.append(
                    f"{where}: needs {res} for {proc.duration_h:g} h but {res} is never on "
                    f"shift for more than {stretch[res]:g} h at a stretch"
                )
        for res, qty in proc.equipment.items():
            if res not in equip:
                out.append(f"{where}: unknown equipment {res!r}")
            elif qty > equip[res]:
                out.append(f"{where}: needs {qty} {res} but the site has {equip[res]}")
    try:
        lead_h = critical_path_h(prod) + prod.qc_release_h + prod.ship_h
    except ValueError as err:
        return [*out, str(err)]
    if prod.kind == "autologous" and prod.orders:
        out.append(f"product {prod.name!r} is autologous: list patients, not orders")
    if prod.kind == "campaign" and prod.patients:
        out.append(f"product {prod.name!r} is a campaign product: list orders, not patients")
    for o in prod.orders:
        release = o.release or site.start
        if o.due is not None and (o.due - release) / timedelta(hours=1) < lead_h:
            out.append(
                f"product {prod.name!r} order {o.id!r}: due {o.due.isoformat()} is before its "
                f"minimum lead time of {lead_h:g} h from release {release.isoformat()}"
            )
    for pt in prod.patients:
        target = pt.target_days or prod.vein_to_vein_target_days
        if target is None:
            out.append(f"product {prod.name!r} patient {pt.id!r}: no vein-to-vein target")
        elif target * 24 < lead_h:
            out.append(
                f"product {prod.name!r} patient {pt.id!r}: vein-to-vein target {target:g} d is "
                f"shorter than the minimum lead time of {lead_h / 24:g} d"
            )
    return out
