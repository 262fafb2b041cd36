"""The process cost model: a validated description of what one batch consumes and yields.

Money convention: every price in a file is in ``money.currency`` at ``money.price_year``
prices. Results are reported in ``money.report_currency`` at ``money.report_year`` prices:
first converted at the stated fixed ``exchange_rate`` (report units per model unit), then
inflated by ``(1 + inflation_per_year) ** (report_year - price_year)``. Nothing is looked up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from biopilot.config import StrictModel, load_yaml

from .distributions import Distribution, Lognormal, Triangular, Uniform

__all__ = [
    "QC",
    "Facility",
    "LabourUse",
    "Material",
    "Money",
    "ProcessCostModel",
    "Published",
    "Step",
    "Yields",
    "load_process",
]

Currency = Literal["USD", "EUR"]
#: Units a material quantity may be stated in; ``unit_price`` is per one of these.
Unit = Literal["each", "kg", "g", "mg", "L", "mL", "m2", "dose", "kit", "test", "h", "lot"]
Metric = Literal["per_batch", "per_gram", "per_dose", "per_patient"]

#: Names become parts of dotted input paths (``steps.<step>.materials.<item>.unit_price``).
NAME = r"^[^.\s][^.]*$"


class Money(StrictModel):
    """Currency of the prices and the convention that converts them for reporting."""

    currency: Currency
    price_year: int = Field(ge=1980, le=2100)
    report_currency: Currency | None = None
    exchange_rate: float = Field(1.0, gt=0, description="report units per model unit")
    inflation_per_year: float = Field(0.0, ge=-0.2, le=0.5)
    report_year: int | None = Field(None, ge=1980, le=2100)

    @model_validator(mode="after")
    def _convert_explicitly(self) -> Money:
        if self.report_currency not in (None, self.currency) and self.exchange_rate == 1.0:
            raise ValueError(
                f"report_currency {self.report_currency} differs from currency {self.currency}: "
                "state exchange_rate (report units per model unit)"
            )
        return self

    @property
    def factor(self) -> float:
        """Multiplier from model money to report money (exchange then inflation)."""
        years = (self.report_year or self.price_year) - self.price_year
        return self.exchange_rate * (1.0 + self.inflation_per_year) ** years

    @property
    def reported_in(self) -> str:
        """Currency and price year of the reported figures, e.g. ``USD 2021``."""
        return f"{self.report_currency or self.currency} {self.report_year or self.price_year}"


class Material(StrictModel):
    """A material or consumable used by a step: quantity x unit price, reused or single-use."""

    name: str = Field(min_length=1, pattern=NAME)
    quantity: float = Field(ge=0)
    unit: Unit
    unit_price: float = Field(ge=0)
    basis: Literal["batch", "per_l_harvest", "per_kg_biomass"] = "batch"
    reuse_cycles: int = Field(1, ge=1, description="1 for single-use; resin lifetime otherwise")
    source: str = ""


class LabourUse(StrictModel):
    """Labour of one role on a step per batch: hours (x the role's rate) or, as a source
    costed it, money."""

    role: str = Field(min_length=1, pattern=NAME)
    hours: float | None = Field(None, ge=0)
    cost: float | None = Field(None, ge=0)
    source: str = ""

    @model_validator(mode="after")
    def _one_of(self) -> LabourUse:
        if (self.hours is None) == (self.cost is None):
            raise ValueError("give hours (priced at labour_rates_per_hour) or cost, not both")
        return self


class Step(StrictModel):
    """A unit operation: what it consumes, who works on it, and what fraction it recovers."""

    name: str = Field(min_length=1, pattern=NAME)
    recovery_fraction: float = Field(1.0, gt=0, le=1)
    materials: list[Material] = Field(default_factory=list)
    labour: list[LabourUse] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Step:
        _check_unique([m.name for m in self.materials], "materials")
        _check_unique([u.role for u in self.labour], "labour roles")
        return self


class QC(StrictModel):
    """A release or in-process test: how many per batch and what each costs."""

    name: str = Field(min_length=1, pattern=NAME)
    tests_per_batch: float = Field(ge=0)
    cost_per_test: float = Field(ge=0)
    source: str = ""


class Facility(StrictModel):
    """Fixed costs of the site, allocated to this product by its share of suite occupancy."""

    capital_cost: float = Field(ge=0)
    depreciation_years: float = Field(10.0, gt=0)
    salvage_fraction: float = Field(0.0, ge=0, lt=1)
    maintenance_fraction_per_year: float = Field(0.0, ge=0, le=1)
    overhead_per_year: float = Field(0.0, ge=0)
    utilities_per_year: float = Field(0.0, ge=0)
    fixed_staff_fte: float = Field(0.0, ge=0)
    cost_per_fte_year: float = Field(0.0, ge=0)
    changeover_hours_per_year: float = Field(0.0, ge=0)
    changeover_cost_per_hour: float = Field(0.0, ge=0)
    occupancy_fraction: float = Field(1.0, gt=0, le=1, description="share allocated to product")
    batches_per_year: float = Field(gt=0, description="batches started per year")
    source: str = Field("", description="where the facility figures come from, as one block")


class Yields(StrictModel):
    """What a batch delivers, before step recoveries, and how it divides into doses.

    Product per good batch = (``titer_g_per_l`` x ``harvest_volume_l``, or for biomass
    processes ``expression_g_per_kg`` x ``biomass_kg``) x the product of step recoveries.
    Doses come from ``dose_g`` or are stated as ``doses_per_batch`` (cell and gene therapy).
    """

    titer_g_per_l: float | None = Field(None, gt=0)
    harvest_volume_l: float | None = Field(None, gt=0)
    expression_g_per_kg: float | None = Field(None, gt=0)
    biomass_kg: float | None = Field(None, gt=0)
    dose_g: float | None = Field(None, gt=0)
    doses_per_batch: float | None = Field(None, gt=0)
    doses_per_patient: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Yields:
        for a, b in (("titer_g_per_l", "harvest_volume_l"), ("expression_g_per_kg", "biomass_kg")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"{a} and {b} go together: give both or none")
        if self.titer_g_per_l is not None and self.expression_g_per_kg is not None:
            raise ValueError(
                "give titer_g_per_l/harvest_volume_l or expression_g_per_kg/biomass_kg"
            )
        if self.dose_g is not None and not self.has_mass:
            raise ValueError("dose_g needs titer_g_per_l and harvest_volume_l (or biomass)")
        if self.dose_g is not None and self.doses_per_batch is not None:
            raise ValueError("give dose_g or doses_per_batch, not both")
        return self

    @property
    def has_mass(self) -> bool:
        """Whether grams of product per batch can be computed."""
        return self.titer_g_per_l is not None or self.expression_g_per_kg is not None


#: Where a published case's inputs come from: the source's own line items (a genuine test of
#: the model) or only its total, with a breakdown of our own (a plausibility check).
Inputs = Literal["line_items", "total_only"]


class Published(StrictModel):
    """A published figure this model reproduces, with its source.

    Provenance of the inputs: a cost item (material, labour, QC test, the facility block) whose
    ``source`` starts with ``assumed`` is ours; one with another ``source`` comes from the
    literature; one without a ``source`` takes the case's ``inputs``: from the source for
    ``line_items``, assumed for ``total_only``.
    """

    value: float = Field(gt=0)
    metric: Metric
    currency: Currency
    inputs: Inputs = "total_only"
    cite: str = Field(min_length=1, max_length=60, description="short citation, e.g. 'Ran 2020'")
    source: str = Field(min_length=1)
    note: str = ""


class ProcessCostModel(StrictModel):
    """Everything needed to cost one product: steps, labour, QC, facility, yields, failures."""

    name: str = Field(min_length=1)
    money: Money
    labour_rates_per_hour: dict[str, float] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    qc: list[QC] = Field(default_factory=list)
    facility: Facility
    yields: Yields
    failure_rate: float = Field(0.0, ge=0, lt=1)
    failed_batch_cost_fraction: float = Field(1.0, ge=0, le=1)
    uncertain: dict[str, Distribution] = Field(default_factory=dict)
    published: Published | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> ProcessCostModel:
        _check_unique([s.name for s in self.steps], "steps")
        _check_unique([q.name for q in self.qc], "qc")
        for role, rate in self.labour_rates_per_hour.items():
            if rate < 0:
                raise ValueError(f"labour_rates_per_hour.{role}: must be >= 0 (got {rate})")
        for i, step in enumerate(self.steps):
            for j, use in enumerate(step.labour):
                if use.hours is not None and use.role not in self.labour_rates_per_hour:
                    raise ValueError(
                        f"steps.{i}.labour.{j}.role: unknown role {use.role!r}; "
                        f"known: {sorted(self.labour_rates_per_hour)}"
                    )
            for j, m in enumerate(step.materials):
                need = {"per_l_harvest": "harvest_volume_l", "per_kg_biomass": "biomass_kg"}
                if m.basis in need and getattr(self.yields, need[m.basis]) is None:
                    raise ValueError(
                        f"steps.{i}.materials.{j}.basis: {m.basis} needs yields.{need[m.basis]}"
                    )
        # Imported here: cost.py imports this module for the types.
        from .cost import parameters

        known = parameters(self)
        for path in self.uncertain:
            if path not in known:
                close = sorted(k for k in known if k.split(".")[-1] == path.split(".")[-1])
                hint = f"; did you mean one of {close[:5]}" if close else ""
                raise ValueError(f"uncertain.{path}: no such input{hint}")
            _check_range(path, self.uncertain[path])
        return self


def load_process(path: str | Path) -> ProcessCostModel:
    """Load and validate a process cost model from YAML.

    Raises
    ------
    ConfigError
        If the file is missing or malformed, or a field is negative, unknown, missing or
        inconsistent; the message names the file and the field.
    """
    return load_yaml(path, ProcessCostModel)


_FRACTIONS = ("recovery_fraction", "failed_batch_cost_fraction", "occupancy_fraction")
_DIVISORS = (
    "batches_per_year", "depreciation_years", "reuse_cycles", "titer_g_per_l", "harvest_volume_l",
    "expression_g_per_kg", "biomass_kg", "dose_g", "doses_per_batch", "doses_per_patient",
    "recovery_fraction",
)  # fmt: skip


def _check_range(path: str, dist: Triangular | Uniform | Lognormal) -> None:
    """Refuse a distribution that can draw a negative cost, a fraction > 1 or a zero divisor."""
    leaf = path.rsplit(".", 1)[-1]
    low, high = dist.bounds
    bounded = leaf in (*_FRACTIONS, "failure_rate", "salvage_fraction")
    if bounded and isinstance(dist, Lognormal):
        raise ValueError(
            f"uncertain.{path}: a fraction needs a bounded distribution, not lognormal"
        )
    if low < 0:
        raise ValueError(f"uncertain.{path}: can draw negative values (low {low}); must be >= 0")
    if leaf in _DIVISORS and low <= 0:
        raise ValueError(f"uncertain.{path}: must stay > 0 (low {low})")
    if leaf in _FRACTIONS and high > 1:
        raise ValueError(f"uncertain.{path}: a fraction, must stay <= 1 (high {high})")
    if leaf in ("failure_rate", "salvage_fraction") and high >= 1:
        raise ValueError(f"uncertain.{path}: must stay < 1 (high {high})")


def _check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{what}: duplicate name {n!r}")
        seen.add(n)
