"""Specifications of cell quality and their verdict: pass, fail or review, with the reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from biopilot.config import StrictModel, load_yaml
from biopilot.quality.attributes import QCAttributes

__all__ = ["Check", "Decision", "Disposition", "Spec", "evaluate", "load_spec"]

Disposition = Literal["pass", "fail", "review"]

# Attributes that are fractions of a cell count: their uncertainty is binomial.
_FRACTIONS = {"viability": "n_cells", "differentiated_fraction": "n_live"}
_Z95 = 1.959964  # two-sided 95 % normal quantile


class Spec(StrictModel):
    """Release specification of a cell product, per batch (limits are inclusive).

    A limit left out is not checked. Fractions are 0-1. ``review_margin`` marks a value
    that passes but lies within this relative distance of a limit; for fractions the
    95 % Wilson interval of the count is used instead (a value whose interval crosses a
    limit cannot be decided from the cells seen). A batch whose segmented area lies for more
    than ``max_clustered_fraction`` in clumps too large to be one cell needs review: its
    counts are not trustworthy (dilute the sample and image it again). A batch with a frame
    whose phase reproduces less than ``min_hologram_agreement`` of its hologram's fringes
    needs review: that reconstruction is not the sample, whatever its cells say. The default,
    0.5, lies in the gap between the frames whose cells could be trusted (0.58 and more) and
    those whose could not: dense suspensions of thick cells, an autofocus 46-120 um off, F1
    0.07-0.82, count errors up to 51 % or dry mass 7-51 % low, scored -0.99 to 0.36 (64
    frames apart from the benchmark, sessions 11 and 16; benchmark frame 006, a suspension at
    40 %, 0.08). A frame of debris alone, which the network leaves out by design, scores
    ~0.18 and is sent to review too (:mod:`biopilot.imaging.agreement`).
    """

    product: str = Field(min_length=1)
    version: str = "1"
    min_cells_counted: int = Field(default=200, ge=1)
    review_margin: float = Field(default=0.05, ge=0.0, le=0.5)
    max_clustered_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    min_hologram_agreement: float = Field(default=0.5, ge=-1.0, le=1.0)
    viability_min: float | None = Field(default=None, ge=0.0, le=1.0)
    viable_cells_per_cm2_min: float | None = Field(default=None, ge=0.0)
    viable_cells_per_cm2_max: float | None = Field(default=None, gt=0.0)
    viable_cells_per_ml_min: float | None = Field(default=None, ge=0.0)
    viable_cells_per_ml_max: float | None = Field(default=None, gt=0.0)
    confluence_min: float | None = Field(default=None, ge=0.0, le=1.0)
    confluence_max: float | None = Field(default=None, ge=0.0, le=1.0)
    differentiated_fraction_min: float | None = Field(default=None, ge=0.0, le=1.0)
    differentiated_fraction_max: float | None = Field(default=None, ge=0.0, le=1.0)
    dry_mass_pg_median_min: float | None = Field(default=None, ge=0.0)
    dry_mass_pg_median_max: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _min_below_max(self) -> Spec:
        for attr, lo, hi in self._limits():
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{attr}_min ({lo}) is above {attr}_max ({hi})")
        return self

    def _limits(self) -> list[tuple[str, float | None, float | None]]:
        fields = type(self).model_fields
        names = dict.fromkeys(n[:-4] for n in fields if n.endswith(("_min", "_max")))
        return [
            (a, getattr(self, f"{a}_min", None), getattr(self, f"{a}_max", None)) for a in names
        ]


@dataclass(frozen=True)
class Check:
    """One attribute against its limits."""

    attribute: str
    value: float | None
    low: float | None
    high: float | None
    verdict: Disposition
    reason: str


@dataclass(frozen=True)
class Decision:
    """The verdict on a batch: disposition, the reasons (fail and review first), the checks."""

    disposition: Disposition
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "disposition": self.disposition,
            "reasons": list(self.reasons),
            "checks": [c.__dict__ for c in self.checks],
        }


def load_spec(path: str | Path) -> Spec:
    """Read and validate a specification YAML; ConfigError names each bad field."""
    return load_yaml(path, Spec)


def evaluate(spec: Spec, qc: QCAttributes) -> Decision:
    """Judge quality attributes against a specification.

    Each limited attribute fails when outside its limits, needs review when it was not
    measured or passes too close to a limit (see :class:`Spec`), and passes otherwise. The
    batch needs review when fewer than ``min_cells_counted`` cells were seen, too much of
    its cell area is in unsplit clumps (``max_clustered_fraction``) or a frame's phase does
    not explain its hologram (``min_hologram_agreement``). The
    disposition is fail if any check fails, else review if any needs review, else pass.

    Parameters
    ----------
    spec : Spec
        The specification.
    qc : QCAttributes
        Attributes of the batch (see :func:`~biopilot.quality.batch_attributes`).

    Returns
    -------
    Decision

    Examples
    --------
    >>> from biopilot.quality.attributes import QCAttributes
    >>> qc = QCAttributes(1, 1000, 930, 10.0, 9300.0, float("nan"), 0.93, 0.3, 0.1,
    ...                   200.0, 190.0, 120.0, 300.0, 0.3)
    >>> evaluate(Spec(product="demo", viability_min=0.7), qc).disposition
    'pass'
    """
    checks = [
        _check(spec, qc, a, lo, hi)
        for a, lo, hi in spec._limits()
        if lo is not None or hi is not None
    ]
    if qc.n_cells < spec.min_cells_counted:
        checks.append(
            Check(
                "n_cells",
                float(qc.n_cells),
                float(spec.min_cells_counted),
                None,
                "review",
                f"too few cells to decide: {qc.n_cells} counted, {spec.min_cells_counted} needed",
            )
        )
    clustered = qc.clustered_fraction
    if not math.isnan(clustered) and clustered > spec.max_clustered_fraction:
        checks.append(
            Check(
                "clustered_fraction",
                clustered,
                None,
                spec.max_clustered_fraction,
                "review",
                f"{clustered:.0%} of the cell area is in clumps too large to be single cells "
                f"(> {spec.max_clustered_fraction:.0%}): counts unreliable, dilute and re-image",
            )
        )
    agreement = qc.hologram_agreement
    if not math.isnan(agreement) and agreement < spec.min_hologram_agreement:
        checks.append(
            Check(
                "hologram_agreement",
                agreement,
                spec.min_hologram_agreement,
                None,
                "review",
                f"a frame's phase reproduces {agreement:.2f} of its hologram's fringes "
                f"(< {spec.min_hologram_agreement:.2f}): that reconstruction is not the sample; "
                "check the optics metadata; dilute a dense sample and re-image",
            )
        )
    order: dict[Disposition, int] = {"fail": 0, "review": 1, "pass": 2}
    worst: Disposition = min((c.verdict for c in checks), key=order.__getitem__, default="pass")
    reasons = [
        c.reason for c in sorted(checks, key=lambda c: order[c.verdict]) if c.verdict != "pass"
    ]
    return Decision(
        disposition=worst, reasons=reasons or ["all attributes within specification"], checks=checks
    )


def _check(spec: Spec, qc: QCAttributes, attr: str, lo: float | None, hi: float | None) -> Check:
    value = getattr(qc, attr)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Check(attr, None, lo, hi, "review", f"{attr} was not measured")
    if lo is not None and value < lo:
        return Check(
            attr, value, lo, hi, "fail", f"{attr} {value:.4g} is below the minimum {lo:.4g}"
        )
    if hi is not None and value > hi:
        return Check(
            attr, value, lo, hi, "fail", f"{attr} {value:.4g} is above the maximum {hi:.4g}"
        )
    if attr in _FRACTIONS:
        n = int(getattr(qc, _FRACTIONS[attr]))
        low, high = _wilson(value, n)
        close = (lo is not None and low < lo) or (hi is not None and high > hi)
        why = f"95 % interval {low:.3g}-{high:.3g} from {n} cells"
    else:
        margin = spec.review_margin
        close = (lo is not None and value < lo + margin * abs(lo)) or (
            hi is not None and value > hi - margin * abs(hi)
        )
        why = f"within {margin:.0%} of a limit"
    if close:
        return Check(
            attr,
            value,
            lo,
            hi,
            "review",
            f"{attr} {value:.4g} passes but is close to a limit ({why})",
        )
    return Check(attr, value, lo, hi, "pass", f"{attr} {value:.4g} within limits")


def _wilson(p: float, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``p`` seen in ``n`` trials (Wilson 1927)."""
    if n <= 0:
        return 0.0, 1.0
    z2 = _Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
