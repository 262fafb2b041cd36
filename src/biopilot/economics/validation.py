"""Compare a cost model's nominal result with the published figure it claims to reproduce."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cost import CostEstimate, estimate
from .model import ProcessCostModel

__all__ = ["PublishedCheck", "check_published"]


@dataclass(frozen=True)
class PublishedCheck:
    """A published figure beside ours: ``deviation`` is (ours - published) / published."""

    case: str
    metric: str
    currency: str
    published: float
    ours: float
    deviation: float
    cite: str
    source: str
    note: str

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
    )
