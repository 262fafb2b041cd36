"""Uncertainty of the cost of goods: Monte Carlo percentiles, Sobol indices and tornado swings.

Every method draws probabilities ``u`` in [0, 1) and maps them through each input's quantile
function, then evaluates the whole cost model once on the arrays of draws (no loop per draw).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from SALib.analyze import sobol as sobol_analyze
from scipy.stats import qmc

from .cost import evaluate
from .model import ProcessCostModel

__all__ = [
    "METRICS",
    "MonteCarloResult",
    "Percentiles",
    "SobolResult",
    "TornadoBar",
    "monte_carlo",
    "primary_metric",
    "saltelli_matrix",
    "sobol_indices",
    "tornado",
]

#: Outputs summarised by the Monte Carlo, when the model defines them.
METRICS = ("per_batch", "per_gram", "per_dose", "per_patient")

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Percentiles:
    """P5, P50, P95 and mean of one cost output over the draws (report money)."""

    p5: float
    p50: float
    p95: float
    mean: float


@dataclass(frozen=True)
class MonteCarloResult:
    """Monte Carlo summary: percentiles per metric and the draws of the primary metric."""

    draws: int
    seed: int | None
    metrics: dict[str, Percentiles]
    primary: str
    samples: Array

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output (without the raw draws)."""
        return {
            "draws": self.draws,
            "seed": self.seed,
            "primary": self.primary,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
        }


@dataclass(frozen=True)
class SobolResult:
    """First-order (S1) and total (ST) Sobol indices of one output, largest ST first."""

    metric: str
    names: list[str]
    s1: list[float]
    s1_conf: list[float]
    st: list[float]
    st_conf: list[float]
    base_samples: int
    evaluations: int

    def top(self, k: int = 5) -> list[dict[str, float | str]]:
        """The ``k`` most influential inputs as rows ``{input, S1, ST}``."""
        return [
            {"input": n, "S1": a, "ST": b}
            for n, a, b in zip(self.names[:k], self.s1[:k], self.st[:k], strict=True)
        ]

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


@dataclass(frozen=True)
class TornadoBar:
    """Output when one input sits at its low / high quantile and the others at nominal."""

    name: str
    input_low: float
    input_high: float
    output_low: float
    output_high: float

    @property
    def swing(self) -> float:
        """Absolute width of the bar."""
        return abs(self.output_high - self.output_low)


def primary_metric(model: ProcessCostModel) -> str:
    """The output a user most likely wants: per gram, else per dose, else per batch."""
    if model.yields.has_mass:
        return "per_gram"
    if model.yields.doses_per_batch is not None:
        return "per_dose"
    return "per_batch"


def monte_carlo(
    model: ProcessCostModel, n: int = 10_000, seed: int | None = None
) -> MonteCarloResult:
    """Propagate the ``uncertain`` inputs of ``model`` by Monte Carlo.

    Parameters
    ----------
    model
        The process cost model; inputs not listed under ``uncertain`` stay at nominal.
    n
        Number of draws (>= 1).
    seed
        Seed of the random generator, for reproducible percentiles.

    Returns
    -------
    MonteCarloResult
        P5 / P50 / P95 / mean of each metric the model defines, in report money.

    Raises
    ------
    ValueError
        If ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    rng = np.random.default_rng(seed)
    names = list(model.uncertain)
    u = rng.random((n, len(names)))
    out = evaluate(model, _inputs(model, names, u))
    metrics = {}
    for m in METRICS:
        if m in out:
            y = np.broadcast_to(out[m], (n,))
            p5, p50, p95 = np.percentile(y, [5, 50, 95])
            metrics[m] = Percentiles(float(p5), float(p50), float(p95), float(np.mean(y)))
    primary = primary_metric(model)
    samples = np.array(np.broadcast_to(out[primary], (n,)))
    return MonteCarloResult(n, seed, metrics, primary, samples)


def sobol_indices(
    model: ProcessCostModel,
    n_base: int = 1024,
    metric: str | None = None,
    seed: int | None = None,
) -> SobolResult:
    """Sobol sensitivity indices of one output to the ``uncertain`` inputs (SALib, Saltelli).

    Parameters
    ----------
    model
        The process cost model with at least one uncertain input.
    n_base
        Base sample size N (a power of 2); the model is evaluated N x (D + 2) times for D
        uncertain inputs (first-order and total indices, no second order).
    metric
        Output to analyse; default :func:`primary_metric`.
    seed
        Seed of the Sobol sequence scrambling and the bootstrap.

    Returns
    -------
    SobolResult
        S1 and ST with 95 % bootstrap confidence half-widths, sorted by ST descending.

    Raises
    ------
    ValueError
        If the model has no uncertain input, or ``metric`` is not an output of the model.
    """
    names = list(model.uncertain)
    if not names:
        raise ValueError("no uncertain inputs: list some under 'uncertain:' to get Sobol indices")
    metric = metric or primary_metric(model)
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    u = saltelli_matrix(len(names), n_base, seed=seed)
    out = evaluate(model, _inputs(model, names, u))
    if metric not in out:
        raise ValueError(f"metric {metric!r} is not an output of this model; have {sorted(out)}")
    y = np.array(np.broadcast_to(out[metric], (u.shape[0],)))
    si = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed)
    order = np.argsort(-np.nan_to_num(si["ST"], nan=-1.0))
    return SobolResult(
        metric=metric,
        names=[names[i] for i in order],
        s1=[float(si["S1"][i]) for i in order],
        s1_conf=[float(si["S1_conf"][i]) for i in order],
        st=[float(si["ST"][i]) for i in order],
        st_conf=[float(si["ST_conf"][i]) for i in order],
        base_samples=n_base,
        evaluations=int(u.shape[0]),
    )


def tornado(
    model: ProcessCostModel, metric: str | None = None, low_q: float = 0.05, high_q: float = 0.95
) -> list[TornadoBar]:
    """One-at-a-time swings of ``metric`` between each input's ``low_q`` and ``high_q``.

    Returns
    -------
    list of TornadoBar
        One bar per uncertain input, widest first.
    """
    metric = metric or primary_metric(model)
    bars = []
    for name, dist in model.uncertain.items():
        lo, hi = (float(v) for v in dist.ppf(np.array([low_q, high_q])))
        y = evaluate(model, {name: np.array([lo, hi])})[metric]
        y = np.broadcast_to(y, (2,))
        bars.append(TornadoBar(name, lo, hi, float(y[0]), float(y[1])))
    return sorted(bars, key=lambda b: -b.swing)


def saltelli_matrix(n_inputs: int, n_base: int, seed: int | None = None) -> Array:
    """The probabilities ``SALib.sample.sobol.sample`` draws (no second order), vectorised.

    Same scrambled Sobol base sequence of dimension 2D and same row layout (per base point:
    A, then A with column i taken from B for each i, then B), so SALib's analyser reads it;
    SALib builds it with Python loops, far slower for D ~ 100 and N ~ 1000.

    Returns
    -------
    ndarray
        Shape ``(n_base * (n_inputs + 2), n_inputs)``, values in [0, 1).
    """
    d = n_inputs
    with warnings.catch_warnings():
        # scipy warns when N is not a power of 2 (balance properties); documented above.
        warnings.simplefilter("ignore")
        base = qmc.Sobol(d=2 * d, scramble=True, seed=seed).random(n_base)
    a, b = base[:, :d], base[:, d:]
    out = np.repeat(a[:, None, :], d + 2, axis=1)
    cols = np.arange(d)
    out[:, 1 + cols, cols] = b
    out[:, -1, :] = b
    return out.reshape(n_base * (d + 2), d)


def _inputs(model: ProcessCostModel, names: list[str], u: Array) -> dict[str, Array]:
    """Map probabilities ``u`` (draws x inputs) to input values through each quantile function."""
    return {name: model.uncertain[name].ppf(u[:, i]) for i, name in enumerate(names)}
