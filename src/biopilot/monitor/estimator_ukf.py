"""Unscented-transform numerics of the state estimator: sigma points, moments, gated update.

Written by hand rather than taken from filterpy because the estimator needs what filterpy's
``UnscentedKalmanFilter`` does not give together: all sigma points propagated in one vectorised
call of the shared kinetics, a different set of measurements at every step (asynchronous
sensors), a per-measurement innovation gate, and state clipping. The algebra is that of
Wan & van der Merwe (2000, "The unscented Kalman filter for nonlinear estimation", IEEE
AS-SPCC) and Julier & Uhlmann (2004, Proc. IEEE 92:401).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GatedUpdate",
    "UnscentedWeights",
    "gated_update",
    "moments",
    "rk4",
    "sigma_points",
    "spd",
    "unscented_weights",
]


@dataclass(frozen=True)
class UnscentedWeights:
    """Mean and covariance weights of the ``2n+1`` sigma points and their spread."""

    mean: np.ndarray
    cov: np.ndarray
    spread: float


@dataclass(frozen=True)
class GatedUpdate:
    """Result of a measurement update: posterior, which rows were used, and their NIS."""

    mean: np.ndarray
    cov: np.ndarray
    accepted: np.ndarray  # bool per measurement
    nis_each: np.ndarray  # nu_i^2 / S_ii per measurement
    nis: float  # nu' S^-1 nu over the accepted measurements (nan if none)


def unscented_weights(
    n: int, alpha: float = 1.0, beta: float = 0.0, kappa: float = 0.0
) -> UnscentedWeights:
    """Return the scaled unscented-transform weights (Wan & van der Merwe 2000, eq. 15).

    With the defaults (alpha=1, beta=0, kappa=0) this is the spherical-radial cubature rule
    of Arasaratnam & Haykin (2009, IEEE TAC 54:1254): all weights are 1/(2n) and positive,
    so the propagated covariance is a sum of outer products and stays positive semi-definite.
    """
    lam = alpha**2 * (n + kappa) - n
    c = n + lam
    if c <= 0:
        raise ValueError(f"alpha^2 (n + kappa) must be positive, got {c}")
    wm = np.full(2 * n + 1, 0.5 / c)
    wm[0] = lam / c
    wc = wm.copy()
    wc[0] += 1.0 - alpha**2 + beta
    return UnscentedWeights(wm, wc, math.sqrt(c))


def spd(cov: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Return ``cov`` made symmetric, with eigenvalues at least ``floor`` (if needed)."""
    cov = 0.5 * (cov + cov.T)
    try:
        np.linalg.cholesky(cov)
        return cov
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return (v * np.maximum(w, floor)) @ v.T


def sigma_points(mean: np.ndarray, cov: np.ndarray, spread: float) -> np.ndarray:
    """Return the ``(n, 2n+1)`` sigma points ``mean, mean +- spread * chol(cov)``."""
    root = np.linalg.cholesky(spd(cov))
    return np.concatenate(
        [mean[:, None], mean[:, None] + spread * root, mean[:, None] - spread * root], axis=1
    )


def moments(points: np.ndarray, w: UnscentedWeights) -> tuple[np.ndarray, np.ndarray]:
    """Return the weighted mean and covariance of sigma points ``(n, 2n+1)``."""
    mean = points @ w.mean
    d = points - mean[:, None]
    return mean, (d * w.cov) @ d.T


def rk4(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    span_h: float,
    max_step_h: float,
    lower: np.ndarray,
) -> np.ndarray:
    """Integrate ``dx/dt = f(x)`` over ``span_h`` hours by classic RK4, clipping at ``lower``.

    ``x`` may hold many columns (sigma points); ``f`` is called on all of them at once. The
    state is clipped to ``lower`` after every step (the constraint of Kolås et al. 2009,
    Comput. Chem. Eng. 33:1386, applied to the sigma points).
    """
    if span_h <= 0:
        return x
    n = max(1, math.ceil(span_h / max_step_h - 1e-9))
    h = span_h / n
    lo = lower[:, None]
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = np.maximum(x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), lo)
    return x


def gated_update(
    mean: np.ndarray,
    cov: np.ndarray,
    points: np.ndarray,
    y_points: np.ndarray,
    y: np.ndarray,
    r: np.ndarray,
    w: UnscentedWeights,
    gate: float,
) -> GatedUpdate:
    """Fuse measurements ``y`` (variances ``r``) predicted by ``y_points`` at sigma ``points``.

    Each measurement is first tested alone: its normalised innovation squared
    ``nu_i^2 / S_ii`` above ``gate`` (a chi-square(1) quantile) rejects it as an outlier
    (validation gating; Bar-Shalom, Li & Kirubarajan 2001, "Estimation with Applications to
    Tracking and Navigation").
    The accepted ones update the state jointly (Wan & van der Merwe 2000, Algorithm 3.1).
    """
    y_hat = y_points @ w.mean
    dy = y_points - y_hat[:, None]
    s = (dy * w.cov) @ dy.T + np.diag(r)
    pxy = ((points - mean[:, None]) * w.cov) @ dy.T
    nu = y - y_hat
    nis_each = nu**2 / np.diag(s)
    ok = nis_each <= gate
    if not ok.any():
        return GatedUpdate(mean, cov, ok, nis_each, math.nan)
    s_ok = s[np.ix_(ok, ok)]
    gain = np.linalg.solve(s_ok, pxy[:, ok].T).T
    new_mean = mean + gain @ nu[ok]
    new_cov = spd(cov - gain @ s_ok @ gain.T)
    nis = float(nu[ok] @ np.linalg.solve(s_ok, nu[ok]))
    return GatedUpdate(new_mean, new_cov, ok, nis_each, nis)
