"""Cost of goods per batch, per gram and per dose, evaluated on scalars or on arrays of draws.

The model is flattened into named scalar inputs (dotted paths such as
``steps.capture.materials.protein_a_resin.unit_price``); :func:`evaluate` computes every cost
from those inputs with numpy broadcasting, so one call costs 10,000 Monte Carlo draws at once.

Failure convention: a failed batch consumes ``failed_batch_cost_fraction`` of the variable
cost (materials, labour, QC) of a good batch and its full share of facility time. With
failure rate ``f`` and fraction ``phi`` the cost per good batch is::

    (variable * ((1 - f) + f * phi) + facility) / (1 - f)

which is the good-batch cost scaled by ``1 / (1 - f)`` when ``phi = 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from .model import ProcessCostModel

__all__ = [
    "COMPONENTS",
    "CostEstimate",
    "ItemCost",
    "estimate",
    "evaluate",
    "item_costs",
    "parameters",
]

#: Components of the cost of one good batch; they add up to ``per_batch``.
COMPONENTS = ("materials", "labour", "qc", "facility", "failures")

Array = NDArray[np.float64]
_Getter = Callable[[str], Array]


@dataclass(frozen=True)
class CostEstimate:
    """Nominal cost of one good batch, by component and per unit of product.

    Money is in ``currency`` (report currency and price year). ``per_gram`` is None when the
    model gives no product mass; ``per_dose`` and ``per_patient`` are None without doses.
    """

    name: str
    currency: str
    materials: float
    labour: float
    qc: float
    facility: float
    failures: float
    per_batch: float
    product_g_per_batch: float | None
    doses_per_batch: float | None
    per_gram: float | None
    per_dose: float | None
    per_patient: float | None
    by_step: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def parameters(model: ProcessCostModel) -> dict[str, float]:
    """Every scalar input of ``model`` by its dotted path, at its nominal value.

    These paths are the names allowed under ``uncertain:`` in a process file.
    """
    p: dict[str, float] = {"failure_rate": model.failure_rate}
    p["failed_batch_cost_fraction"] = model.failed_batch_cost_fraction
    for role, rate in model.labour_rates_per_hour.items():
        p[f"labour_rates_per_hour.{role}"] = rate
    for step in model.steps:
        s = f"steps.{step.name}"
        p[f"{s}.recovery_fraction"] = step.recovery_fraction
        for m in step.materials:
            p[f"{s}.materials.{m.name}.quantity"] = m.quantity
            p[f"{s}.materials.{m.name}.unit_price"] = m.unit_price
            p[f"{s}.materials.{m.name}.reuse_cycles"] = float(m.reuse_cycles)
        for use in step.labour:
            if use.hours is not None:
                p[f"{s}.labour.{use.role}.hours"] = use.hours
            else:
                p[f"{s}.labour.{use.role}.cost"] = float(use.cost or 0.0)
    for q in model.qc:
        p[f"qc.{q.name}.tests_per_batch"] = q.tests_per_batch
        p[f"qc.{q.name}.cost_per_test"] = q.cost_per_test
    for key, value in model.facility.model_dump(exclude={"source"}).items():
        p[f"facility.{key}"] = float(value)
    for key, value in model.yields.model_dump().items():
        if value is not None:
            p[f"yields.{key}"] = float(value)
    return p


def evaluate(
    model: ProcessCostModel, values: Mapping[str, ArrayLike] | None = None
) -> dict[str, Array]:
    """Cost of one good batch and per unit of product, for nominal or drawn inputs.

    Parameters
    ----------
    model
        The validated process cost model.
    values
        Inputs to replace, by dotted path (see :func:`parameters`), each a scalar or an
        array; arrays of the same length are evaluated element-wise (one draw per element).

    Returns
    -------
    dict of str to ndarray
        ``materials``, ``labour``, ``qc``, ``facility``, ``failures`` and their sum
        ``per_batch`` (report money per good batch); ``product_g`` and ``per_gram`` when the
        model has titer and volume (or expression and biomass); ``doses``, ``per_dose`` and
        ``per_patient`` when it has doses. Array-valued when any input is.

    Raises
    ------
    KeyError
        If ``values`` names an input the model does not have.
    """
    p: dict[str, ArrayLike] = dict(parameters(model))
    for key, value in (values or {}).items():
        if key not in p:
            raise KeyError(f"no such cost input: {key}")
        p[key] = value

    def g(key: str) -> Array:
        return np.asarray(p[key], dtype=np.float64)

    y = model.yields
    # Materials on a per-litre / per-kg basis are validated to exist only with that yield.
    scale = {
        "batch": _one(),
        "per_l_harvest": g("yields.harvest_volume_l") if y.harvest_volume_l else _one(),
        "per_kg_biomass": g("yields.biomass_kg") if y.biomass_kg else _one(),
    }
    materials, labour, recovery = _zero(), _zero(), _one()
    for step in model.steps:
        s = f"steps.{step.name}"
        recovery = recovery * g(f"{s}.recovery_fraction")
        for m in step.materials:
            k = f"{s}.materials.{m.name}"
            cost = g(f"{k}.quantity") * g(f"{k}.unit_price") / g(f"{k}.reuse_cycles")
            materials = materials + cost * scale[m.basis]
        for use in step.labour:
            k = f"{s}.labour.{use.role}"
            if use.hours is None:
                labour = labour + g(f"{k}.cost")
            else:
                labour = labour + g(f"{k}.hours") * g(f"labour_rates_per_hour.{use.role}")
    qc = _zero()
    for q in model.qc:
        qc = qc + g(f"qc.{q.name}.tests_per_batch") * g(f"qc.{q.name}.cost_per_test")
    facility = _facility_per_batch(g)

    f, phi = g("failure_rate"), g("failed_batch_cost_fraction")
    variable = materials + labour + qc
    failures = f / (1.0 - f) * (phi * variable + facility)
    fx = model.money.factor
    out: dict[str, Array] = {
        "materials": materials * fx,
        "labour": labour * fx,
        "qc": qc * fx,
        "facility": facility * fx,
        "failures": failures * fx,
    }
    out["per_batch"] = sum((out[c] for c in COMPONENTS), _zero())
    if y.titer_g_per_l is not None:
        out["product_g"] = g("yields.titer_g_per_l") * g("yields.harvest_volume_l") * recovery
    elif y.expression_g_per_kg is not None:
        out["product_g"] = g("yields.expression_g_per_kg") * g("yields.biomass_kg") * recovery
    if "product_g" in out:
        out["per_gram"] = out["per_batch"] / out["product_g"]
    doses = _doses(model, g, out.get("product_g"))
    if doses is not None:
        out["doses"] = doses
        out["per_dose"] = out["per_batch"] / doses
        out["per_patient"] = out["per_dose"] * g("yields.doses_per_patient")
    return out


def estimate(model: ProcessCostModel) -> CostEstimate:
    """Nominal cost of ``model``: components per good batch and per gram / dose / patient."""
    r = {k: float(v) for k, v in evaluate(model).items()}
    return CostEstimate(
        name=model.name,
        currency=model.money.reported_in,
        materials=r["materials"],
        labour=r["labour"],
        qc=r["qc"],
        facility=r["facility"],
        failures=r["failures"],
        per_batch=r["per_batch"],
        product_g_per_batch=r.get("product_g"),
        doses_per_batch=r.get("doses"),
        per_gram=r.get("per_gram"),
        per_dose=r.get("per_dose"),
        per_patient=r.get("per_patient"),
        by_step=_by_step(model),
    )


@dataclass(frozen=True)
class ItemCost:
    """Nominal cost of one cost item of one batch, in model money, with its ``source`` tag.

    ``kind`` is ``material``, ``labour`` or ``qc``; ``step`` is None for QC tests.
    """

    kind: str
    step: str | None
    name: str
    cost: float
    source: str


def item_costs(model: ProcessCostModel) -> list[ItemCost]:
    """Every material, labour use and QC test of one batch at nominal inputs (no facility)."""
    rates = model.labour_rates_per_hour
    y = model.yields
    scale = {"batch": 1.0, "per_l_harvest": y.harvest_volume_l, "per_kg_biomass": y.biomass_kg}
    out = []
    for step in model.steps:
        for m in step.materials:
            cost = m.quantity * m.unit_price / m.reuse_cycles * (scale[m.basis] or 0.0)
            out.append(ItemCost("material", step.name, m.name, cost, m.source))
        for u in step.labour:
            cost = (u.cost or 0.0) if u.hours is None else u.hours * rates[u.role]
            out.append(ItemCost("labour", step.name, u.role, cost, u.source))
    for q in model.qc:
        out.append(ItemCost("qc", None, q.name, q.tests_per_batch * q.cost_per_test, q.source))
    return out


def _facility_per_batch(g: _Getter) -> Array:
    """Annual facility cost x occupancy share / batches started per year."""

    def f(key: str) -> Array:
        return g(f"facility.{key}")

    capital = f("capital_cost")
    annual = (
        capital * (1.0 - f("salvage_fraction")) / f("depreciation_years")
        + capital * f("maintenance_fraction_per_year")
        + f("overhead_per_year")
        + f("utilities_per_year")
        + f("fixed_staff_fte") * f("cost_per_fte_year")
        + f("changeover_hours_per_year") * f("changeover_cost_per_hour")
    )
    return annual * f("occupancy_fraction") / f("batches_per_year")


def _doses(model: ProcessCostModel, g: _Getter, product_g: Array | None) -> Array | None:
    y = model.yields
    if y.doses_per_batch is not None:
        return g("yields.doses_per_batch")
    if y.dose_g is not None and product_g is not None:
        return product_g / g("yields.dose_g")
    return None


def _by_step(model: ProcessCostModel) -> dict[str, float]:
    """Nominal materials + labour of one batch by step, in report money (no failures)."""
    out = {step.name: 0.0 for step in model.steps}
    for item in item_costs(model):
        if item.step is not None:
            out[item.step] += item.cost * model.money.factor
    return out


def _zero() -> Array:
    return np.zeros((), dtype=np.float64)


def _one() -> Array:
    return np.ones((), dtype=np.float64)
