"""Culture growth from a time series of QC frames: doubling time, plateau, time to a level.

A cell-therapy expansion imaged in the incubator gives, every few hours, a viable cell
density and a confluence per field. Their growth tells the operator whether the culture
expands as it should (population doubling time, with its 95 % confidence interval) and when
it will reach the passage or harvest confluence. Two models, fitted in log space (the
scatter of counts between fields is proportional to the count, as Poisson and seeding
variation are):

- ``exponential``: ``y = y0 exp(r t)``, the early, unconstrained phase (ordinary least
  squares on ``log y``, via :func:`scipy.stats.linregress`);
- ``logistic``: ``y = K / (1 + (K / y0 - 1) exp(-r t))``, which bends towards the plateau
  ``K`` as the culture fills the vessel (Verhulst; the usual model of adherent expansions,
  e.g. Ulrich et al. 2020, Biotechnol. Bioeng. 117:1393, for mesenchymal stromal cells), by
  :func:`scipy.optimize.curve_fit`.

The doubling time is ``ln 2 / r`` in both; its interval is the rate's Student-t interval
mapped through ``ln 2 / r``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

__all__ = ["GrowthFit", "fit_growth"]

Model = Literal["exponential", "logistic"]
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class GrowthFit:
    """A growth curve fitted to a series, with what an operator reads from it.

    Attributes
    ----------
    model : {"exponential", "logistic"}
        The fitted model.
    rate_per_h : float
        Specific growth rate ``r`` at low density, 1/h.
    rate_ci95_per_h : (float, float)
        Its 95 % confidence interval.
    start : float
        Fitted value at ``t = 0``, in the series' unit.
    capacity : float
        Logistic plateau ``K`` in the series' unit (``inf`` for the exponential model).
    n_points : int
        Points fitted.
    rmse_log : float
        Root-mean-square residual of ``ln y`` (0.1 is a 10 % scatter between fields).
    """

    model: Model
    rate_per_h: float
    rate_ci95_per_h: tuple[float, float]
    start: float
    capacity: float
    n_points: int
    rmse_log: float

    @property
    def doubling_h(self) -> float:
        """Population doubling time ``ln 2 / r``, h (``inf`` when the culture does not grow)."""
        return _doubling(self.rate_per_h)

    @property
    def doubling_ci95_h(self) -> tuple[float, float]:
        """95 % interval of the doubling time, h (upper bound ``inf`` if growth is not proven)."""
        lo, hi = self.rate_ci95_per_h
        return _doubling(hi), _doubling(lo)

    def predict(self, t_h: ArrayLike) -> NDArray[np.float64]:
        """Fitted value at times ``t_h`` (hours from the first frame's origin)."""
        t = np.asarray(t_h, float)
        if self.model == "exponential":
            return self.start * np.exp(self.rate_per_h * t)
        return _logistic(t, self.start, self.rate_per_h, self.capacity)

    def time_to(self, level: float) -> float:
        """Hours from ``t = 0`` until the fitted curve reaches ``level`` (NaN if it never does).

        Examples
        --------
        >>> fit = GrowthFit("logistic", 0.03, (0.02, 0.04), 0.1, 0.9, 8, 0.05)
        >>> round(fit.time_to(0.8), 1), fit.time_to(0.95)
        (138.6, nan)
        """
        if not level > 0 or self.rate_per_h <= 0:
            return math.nan
        y0, r, k = self.start, self.rate_per_h, self.capacity
        if self.model == "exponential":
            return math.log(level / y0) / r
        if level >= k:
            return math.nan
        return -math.log((k / level - 1.0) / (k / y0 - 1.0)) / r

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary (infinite values become None)."""
        def plain(v: float) -> float | None:
            return v if math.isfinite(v) else None

        lo, hi = self.doubling_ci95_h
        return {
            "model": self.model, "n_points": self.n_points,
            "rate_per_h": self.rate_per_h, "doubling_h": plain(self.doubling_h),
            "doubling_ci95_h": [plain(lo), plain(hi)],
            "start": self.start, "capacity": plain(self.capacity), "rmse_log": self.rmse_log,
        }


def fit_growth(
    t_h: ArrayLike, values: ArrayLike, *, model: Model = "logistic",
    max_capacity: float | None = None, capacity: float | None = None,
) -> GrowthFit:
    """Fit a growth curve to a series of cell densities or confluences.

    Parameters
    ----------
    t_h : array_like
        Acquisition times, hours (any origin; ``t = 0`` is the fit's origin).
    values : array_like
        Positive values at those times: viable cells per cm^2 for the doubling time, or
        confluence (0-1) for the time to passage.
    model : {"logistic", "exponential"}
        ``logistic`` needs at least 4 points, ``exponential`` at least 3.
    max_capacity : float, optional
        Largest plateau allowed (1.0 for a confluence); by default 100 times the largest value.
    capacity : float, optional
        The plateau, when it is known (the confluence at which this line stops growing in
        this vessel): only ``y0`` and ``r`` are fitted. Before the curve bends the plateau is
        poorly determined by the data, and a known one predicts the time to passage far better.

    Returns
    -------
    GrowthFit

    Raises
    ------
    ValueError
        If the lengths differ, there are too few points or distinct times, or a value is
        not finite and positive (an empty frame: drop it or image more area).

    Examples
    --------
    >>> t = np.arange(0.0, 97.0, 12.0)
    >>> fit = fit_growth(t, 1e4 * 2 ** (t / 24), model="exponential")
    >>> round(fit.doubling_h, 3)
    24.0
    """
    t, y = _validate(t_h, values, 4 if model == "logistic" and capacity is None else 3)
    log_y = np.log(y)
    lin = stats.linregress(t, log_y)
    if model == "exponential":
        half = float(stats.t.ppf(0.975, t.size - 2)) * float(lin.stderr)
        resid = log_y - (lin.intercept + lin.slope * t)
        r = float(lin.slope)
        return GrowthFit("exponential", r, (r - half, r + half), float(math.exp(lin.intercept)),
                         math.inf, t.size, _rms(resid))
    if model != "logistic":
        raise ValueError(f"model must be 'logistic' or 'exponential', got {model!r}")
    if capacity is not None:
        return _fixed_plateau(t, log_y, capacity, lin)
    top = math.log(max_capacity if max_capacity is not None else 100.0 * float(y.max()))
    if top <= float(log_y.max()):
        raise ValueError(f"max_capacity {max_capacity} is below the largest value {y.max():.4g}")
    p0 = [float(lin.intercept), max(float(lin.slope), 1e-3), 0.5 * (top + float(log_y.max()))]
    lower = [-np.inf, -5.0, float(log_y.max()) - 1e-9]
    upper = [top, 5.0, top]
    p0[0] = min(p0[0], top - 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimize.OptimizeWarning)  # a flat K: inf covariance
        params, cov = optimize.curve_fit(_log_logistic, t, log_y, p0=p0, bounds=(lower, upper))
    a, r, b = (float(v) for v in params)
    var = float(cov[1, 1]) if np.all(np.isfinite(cov[1, 1])) else math.inf
    half = float(stats.t.ppf(0.975, t.size - 3)) * math.sqrt(max(var, 0.0))
    resid = log_y - _log_logistic(t, a, r, b)
    return GrowthFit("logistic", r, (r - half, r + half), math.exp(a), math.exp(b), t.size,
                     _rms(resid))


def _fixed_plateau(
    t: NDArray[np.float64], log_y: NDArray[np.float64], capacity: float, lin: Any
) -> GrowthFit:
    """Logistic fit of ``y0`` and ``r`` under a known plateau."""
    if not capacity > math.exp(float(log_y.max())):
        raise ValueError(f"capacity {capacity} must exceed the largest value "
                         f"{math.exp(float(log_y.max())):.4g}")
    b = math.log(capacity)

    def model(tt: NDArray[np.float64], a: float, r: float) -> NDArray[np.float64]:
        return _log_logistic(tt, a, r, b)

    p0 = [min(float(lin.intercept), b - 1e-6), max(float(lin.slope), 1e-3)]
    params, cov = optimize.curve_fit(model, t, log_y, p0=p0,
                                     bounds=([-np.inf, -5.0], [b - 1e-9, 5.0]))
    a, r = (float(v) for v in params)
    half = float(stats.t.ppf(0.975, t.size - 2)) * math.sqrt(max(float(cov[1, 1]), 0.0))
    return GrowthFit("logistic", r, (r - half, r + half), math.exp(a), capacity, t.size,
                     _rms(log_y - model(t, a, r)))


def _log_logistic(t: NDArray[np.float64], a: float, r: float, b: float) -> NDArray[np.float64]:
    """``ln`` of the logistic curve with ``ln y0 = a`` and ``ln K = b``."""
    return b - np.log1p(np.expm1(b - a) * np.exp(-r * t))


def _logistic(t: NDArray[np.float64], y0: float, r: float, k: float) -> NDArray[np.float64]:
    """Logistic curve from ``y0`` at rate ``r`` towards ``k``."""
    return k / (1.0 + (k / y0 - 1.0) * np.exp(-r * t))


def _doubling(rate: float) -> float:
    """``ln 2 / rate``; ``inf`` for a rate of 0 or less."""
    return _LN2 / rate if rate > 0 else math.inf


def _rms(resid: NDArray[np.float64]) -> float:
    """Root-mean-square of residuals."""
    return float(np.sqrt(np.mean(resid**2)))


def _validate(
    t_h: ArrayLike, values: ArrayLike, min_points: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Times and values as float arrays, checked."""
    t = np.asarray(t_h, float).ravel()
    y = np.asarray(values, float).ravel()
    if t.size != y.size:
        raise ValueError(f"{t.size} times but {y.size} values")
    if t.size < min_points:
        raise ValueError(f"a growth fit needs at least {min_points} points, got {t.size}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"time {int(np.flatnonzero(~np.isfinite(t))[0])} is not finite")
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
    if bad.size:
        raise ValueError(
            f"value {int(bad[0])} (t = {t[bad[0]]:g} h) is {y[bad[0]]:g}: growth is fitted on "
            "positive values (a frame without cells gives no density; drop it or image more)"
        )
    if np.unique(t).size < 3:
        raise ValueError("a growth fit needs at least 3 distinct times")
    return t, y
