"""PCA with Hotelling T2 / SPE, their 95 % and 99 % limits and per-variable contributions.

The statistical core shared by the batch-evolution (online) and batch-level (finished batch)
MSPC models. Conventions follow the reference implementation pyphi-mvda (Garcia-Munoz), so the
two agree on the same data: autoscaling with the sample standard deviation (ddof=1), score
variances ``T'T / n``, the T2 limit of a new observation and Box's approximation for SPE.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "ALPHAS",
    "PCAMonitor",
    "hotelling_t2_limit",
    "spe_limit_box",
    "spe_limit_jackson_mudholkar",
]

#: Confidence levels of the control limits.
ALPHAS: tuple[float, float] = (0.95, 0.99)


class PCAMonitor(TransformerMixin, BaseEstimator):
    """Autoscaled PCA that scores new observations with Hotelling T2 and SPE (Q).

    Parameters
    ----------
    n_components : int
        Number of principal components ``A``.
    spe_method : {"box", "jackson_mudholkar"}
        SPE limit: Box's scaled chi-square fitted to the training SPE (default, as
        Nomikos & MacGregor 1995 and pyphi) or Jackson & Mudholkar's from residual eigenvalues.

    Attributes
    ----------
    mean_, scale_ : ndarray (n_features,)
        Autoscaling; a constant column gets scale 1.
    components_ : ndarray (n_features, A)
        Loadings ``P`` (orthonormal columns; the largest-magnitude entry of each positive).
    score_var_ : ndarray (A, A)
        ``T'T / n`` of the training scores.
    explained_variance_ratio_ : ndarray (A,)
        Fraction of the scaled sum of squares explained by each component.
    residual_eigenvalues_ : ndarray
        Eigenvalues of the scaled covariance beyond ``A`` (for Jackson-Mudholkar).
    n_samples_ : int
        Training observations ``n``.
    t2_limits_, spe_limits_ : dict of float to float
        Limits at 0.95 and 0.99.
    t2_train_, spe_train_ : ndarray (n,)
        Statistics of the training observations.
    """

    def __init__(
        self, n_components: int = 3, spe_method: Literal["box", "jackson_mudholkar"] = "box"
    ) -> None:
        self.n_components = n_components
        self.spe_method = spe_method

    def fit(self, X: np.ndarray, y: object = None) -> PCAMonitor:
        """Fit on complete rows of ``X`` (rows with NaN are left out) and compute the limits.

        Raises
        ------
        ValueError
            If fewer than ``n_components + 2`` complete rows remain, or ``n_components`` is
            not between 1 and the number of features.
        """
        X = np.asarray(X, dtype=float)
        X = X[np.isfinite(X).all(axis=1)]
        n, m = X.shape
        a = int(self.n_components)
        if not 1 <= a <= m:
            raise ValueError(f"n_components must be in 1..{m} (got {self.n_components})")
        if n < a + 2:
            raise ValueError(f"need at least {a + 2} complete observations, got {n}")
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0, ddof=1)
        self.scale_ = np.where(sd > 1e-12 * (1.0 + np.abs(self.mean_)), sd, 1.0)
        Z = (X - self.mean_) / self.scale_
        if n >= m:  # tall (observation level): eigenvectors of the small Z'Z
            evals, evecs = np.linalg.eigh(Z.T @ Z)
            order = np.argsort(evals)[::-1]
            evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
        else:  # wide (batch level, unfolded): thin SVD of Z
            _, sv, vt = np.linalg.svd(Z, full_matrices=False)
            evals, evecs = sv**2, vt.T
        P = evecs[:, :a]
        flip = np.sign(P[np.argmax(np.abs(P), axis=0), np.arange(a)])
        self.components_ = P * flip
        T = Z @ self.components_
        self.score_var_ = T.T @ T / n
        self.explained_variance_ratio_ = evals[:a] / max(float(evals.sum()), 1e-300)
        self.residual_eigenvalues_ = evals[a:] / (n - 1)
        self.n_samples_ = n
        self.n_features_in_ = m
        self.t2_train_ = _t2(T, self.score_var_)
        self.spe_train_ = np.sum((Z - T @ self.components_.T) ** 2, axis=1)
        self.t2_limits_ = {al: hotelling_t2_limit(n, a, al) for al in ALPHAS}
        if self.spe_method == "jackson_mudholkar":
            lim = {al: spe_limit_jackson_mudholkar(self.residual_eigenvalues_, al) for al in ALPHAS}
        else:
            lim = {al: spe_limit_box(self.spe_train_, al) for al in ALPHAS}
        self.spe_limits_ = lim
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the scores ``T`` (n, A); rows with missing values are projected on the rest.

        A row's missing values are skipped by projection to the model plane (Nelson, Taylor &
        MacGregor 1996, Chemom. Intell. Lab. Syst. 35:45), as pyphi's ``p2mp``; an all-NaN
        row scores NaN.
        """
        Z = self._scaled(X)
        return self._scores(Z)

    def score_samples(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``{"scores", "t2", "spe", "residuals"}`` for each row of ``X``.

        ``residuals`` are in scaled units, 0 where a value is missing (SPE sums the rest).
        """
        Z = self._scaled(X)
        T = self._scores(Z)
        E = np.where(np.isnan(Z), 0.0, Z - T @ self.components_.T)
        spe = np.where(np.isnan(T[:, 0]), np.nan, np.sum(E**2, axis=1))
        return {"scores": T, "t2": _t2(T, self.score_var_), "spe": spe, "residuals": E}

    def score(self, X: np.ndarray, y: object = None) -> float:
        """Return the fraction of rows of ``X`` within both 99 % limits (1.0: all in control)."""
        s = self.score_samples(X)
        ok = (s["t2"] <= self.t2_limits_[0.99]) & (s["spe"] <= self.spe_limits_[0.99])
        return float(np.mean(ok))

    def contributions(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Return per-variable contributions ``{"t2": (n, m), "spe": (n, m)}``.

        T2 contributions are the complete decomposition ``z_j (P S^-1 t)_j`` of Westerhuis,
        Gurden & Smilde (2000, Chemom. Intell. Lab. Syst. 51:95); a row's sum is its T2 (a
        term may be negative). SPE contributions are the squared scaled residuals; their sum
        is the SPE. A missing value contributes 0.
        """
        Z = self._scaled(X)
        s = self.score_samples(X)
        back = s["scores"] @ np.linalg.inv(self.score_var_) @ self.components_.T
        t2c = np.where(np.isnan(Z), 0.0, np.nan_to_num(Z) * back)
        return {"t2": t2c, "spe": s["residuals"] ** 2}

    # -- helpers ---------------------------------------------------------------------------

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the model has {self.n_features_in_}")
        X = np.where(np.isfinite(X), X, np.nan)
        return (X - self.mean_) / self.scale_

    def _scores(self, Z: np.ndarray) -> np.ndarray:
        P = self.components_
        miss = np.isnan(Z)
        T = np.nan_to_num(Z) @ P
        rows = np.flatnonzero(miss.any(axis=1))
        if rows.size:
            # Group rows by their pattern of missing values: one least-squares solve each.
            patterns, inverse = np.unique(miss[rows], axis=0, return_inverse=True)
            for k, pattern in enumerate(patterns):
                sel = rows[np.ravel(inverse) == k]
                if pattern.all():
                    T[sel] = np.nan
                    continue
                Pk = P[~pattern]
                sol = np.linalg.lstsq(Pk.T @ Pk, Pk.T @ np.nan_to_num(Z[sel][:, ~pattern]).T)
                T[sel] = sol[0].T
        return T


def hotelling_t2_limit(n: int, a: int, alpha: float) -> float:
    """Return the ``alpha`` limit of Hotelling's T2 for a new observation.

    ``(n-1)(n+1)a / (n(n-a)) F_alpha(a, n-a)`` (Tracy, Young & Mason 1992, J. Qual.
    Technol. 24:88; Jackson 1991, A User's Guide to Principal Components, ch. 1), as pyphi.
    """
    if n <= a:
        raise ValueError(f"the T2 limit needs more observations ({n}) than components ({a})")
    return float((n - 1) * (n + 1) * a / (n * (n - a)) * stats.f.ppf(alpha, a, n - a))


def spe_limit_box(spe: np.ndarray, alpha: float) -> float:
    """Return the ``alpha`` limit of SPE by Box's scaled chi-square ``g chi2_h``.

    ``g = v / 2m`` and ``h = 2m^2 / v`` from the mean ``m`` and variance ``v`` (ddof=1) of
    the reference SPE values (Box 1954, Ann. Math. Stat. 25:290; Nomikos & MacGregor 1995,
    Technometrics 37:41, eq. 12). Returns 0 when the SPE values are all ~0.
    """
    values = np.asarray(spe, dtype=float)
    values = values[np.isfinite(values)]
    m = float(values.mean()) if values.size else 0.0
    if m <= 1e-16 or values.size < 2:
        return 0.0
    v = float(values.var(ddof=1))
    if v <= 0.0:
        return m
    return float(v / (2 * m) * stats.chi2.ppf(alpha, 2 * m * m / v))


def spe_limit_jackson_mudholkar(residual_eigenvalues: np.ndarray, alpha: float) -> float:
    """Return the ``alpha`` limit of SPE from the eigenvalues left out of the model.

    Jackson & Mudholkar (1979, Technometrics 21:341), eq. 3.4, with
    ``theta_i = sum(lambda^i)`` and ``h0 = 1 - 2 theta1 theta3 / (3 theta2^2)``.
    """
    lam = np.asarray(residual_eigenvalues, dtype=float)
    th1, th2, th3 = (float(np.sum(lam**i)) for i in (1, 2, 3))
    if th1 <= 0.0 or th2 <= 0.0:
        return 0.0
    h0 = 1.0 - 2.0 * th1 * th3 / (3.0 * th2**2)
    c = float(stats.norm.ppf(alpha))
    core = c * np.sqrt(2 * th2 * h0**2) / th1 + 1 + th2 * h0 * (h0 - 1) / th1**2
    return float(th1 * core ** (1.0 / h0))


def _t2(T: np.ndarray, score_var: np.ndarray) -> np.ndarray:
    return np.sum((T @ np.linalg.inv(score_var)) * T, axis=1)
