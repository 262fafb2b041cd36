"""Compare a cost model's nominal result with the published figure it claims to reproduce."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cost import CostEstimate, estimate, evaluate, item_costs
from .model import ProcessCostModel

__all__ = ["PublishedCheck", "check_published", "sourced_share"]


@dataclass(frozen=True)
class PublishedCheck:
    """A published figure beside ours: ``deviation`` is (ours - published) / published.

    ``inputs`` says whether the case is built from the source's own line items or reproduces
    its total only; ``sourced_share`` is the share of our nominal cost of one good batch that
    comes from inputs taken from the literature (the rest is assumed, see :func:`sourced_share`).
    """

    case: str
    metric: str
    currency: str
    published: float
    ours: float
    deviation: float
    cite: str
    source: str
    note: str
    inputs: str
    sourced_share: float

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def check_published(model: ProcessCostModel, est: CostEstimate | None = None) -> PublishedCheck:
    """Our nominal figure for the metric the model's ``published`` block names, beside it.

    Raises
    ------
    ValueError
        If the model has no ``published`` block, the block's currency differs from the
        report currency, or the model cannot compute the published metric.
    """
    pub = model.published
    if pub is None:
        raise ValueError(f"{model.name}: no 'published' block to compare with")
    report = model.money.report_currency or model.money.currency
    if pub.currency != report:
        raise ValueError(
            f"published.currency {pub.currency} differs from the report currency {report}; "
            "set money.report_currency and money.exchange_rate"
        )
    est = est or estimate(model)
    ours = getattr(est, pub.metric)
    if ours is None:
        raise ValueError(f"published.metric {pub.metric}: this model cannot compute it")
    return PublishedCheck(
        case=model.name,
        metric=pub.metric,
        currency=est.currency,
        published=pub.value,
        ours=float(ours),
        deviation=(float(ours) - pub.value) / pub.value,
        cite=pub.cite,
        source=pub.source,
        note=pub.note,
        inputs=pub.inputs,
        sourced_share=sourced_share(model),
    )


def sourced_share(model: ProcessCostModel) -> float:
    """Share of the nominal cost of one good batch that comes from inputs out of the literature.

    Each cost item (a material, a labour use, a QC test, the facility block as a whole) is
    sourced when its ``source`` is set and does not start with ``assumed``, assumed when it
    does; an item without ``source`` takes the published case's ``inputs`` (sourced for
    ``line_items``, assumed for ``total_only`` or when there is no published block). The cost of
    failed batches counts like an item without ``source``. Yields and recoveries are not cost
    items: they are not counted here, so a per-gram figure can rest on assumed yields even when
    this share is 1.

    Returns
    -------
    float
        In [0, 1]; 0 when the cost of a batch is 0.
    """
    default = model.published is not None and model.published.inputs == "line_items"

    def sourced(tag: str) -> bool:
        tag = tag.strip().lower()
        return default if not tag else not tag.startswith("assumed")

    fx = model.money.factor
    totals = {k: float(v) for k, v in evaluate(model).items()}
    items = [(sourced(i.source), i.cost * fx) for i in item_costs(model)]
    items.append((sourced(model.facility.source), totals["facility"]))
    items.append((default, totals["failures"]))
    total = totals["per_batch"]
    return min(1.0, sum(c for s, c in items if s) / total) if total > 0 else 0.0  # fp sums
