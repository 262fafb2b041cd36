"""Statistics behind the Raman soft sensors: preprocessing, fast grouped PLS CV, T2/DModX limits.

Cross-validation fits many PLS1 models (folds x preprocessings x latent variables x
analytes). Refitting scikit-learn's NIPALS each time costs seconds per fit on a campaign of
tens of thousands of spectra, so the CV uses the kernel algorithm of Dayal & MacGregor
(1997 J. Chemometrics 11:73, algorithm 1), which needs only X'X and X'y: the statistics of a
training fold are the totals minus those of the held-out fold, and one pass gives the whole
latent-variable path. It gives the same predictions as NIPALS (checked in the tests); the
final model is then fitted with scikit-learn's ``PLSRegression``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from chemotools.baseline import AirPls, PolynomialCorrection
from chemotools.derivative import SavitzkyGolay
from chemotools.feature_selection import RangeCut
from chemotools.scatter import StandardNormalVariate
from scipy import stats
from sklearn.base import TransformerMixin

__all__ = [
    "PREPROCESSINGS",
    "CVPath",
    "FoldStats",
    "SpeLimit",
    "hotelling_t2_limit",
    "kernel_pls1_path",
    "preprocessing_steps",
]

Step = tuple[str, TransformerMixin]

#: Preprocessings the soft sensor may choose from, by name. Each works spectrum by spectrum
#: (nothing is learned from the other spectra), so it is applied once before the CV.
#: - ``detrend``: least-squares quadratic baseline removed over the range (Lieber &
#:   Mahadevan-Jansen 2003 Appl. Spectrosc. 57:1363 model fluorescence as a low-order
#:   polynomial); keeps the full band areas, so the best signal-to-noise for broad bands.
#: - ``sg1``: Savitzky-Golay 1st derivative, 15 points (30 cm-1), quadratic; the usual
#:   choice for in-line Raman of CHO cultures (Abu-Absi et al. 2011 Biotechnol. Bioeng.
#:   108:1215), robust to any smooth baseline but it amplifies detector noise.
#: - ``detrend_snv``: ``detrend`` then standard normal variate (Barnes et al. 1989 Appl.
#:   Spectrosc. 43:772), against laser-power drift.
#: - ``airpls``: adaptive iteratively reweighted penalised least squares baseline (Zhang
#:   et al. 2010 Analyst 135:1138); generic, but about 100x slower than ``detrend``.
PREPROCESSINGS: dict[str, Callable[[], list[Step]]] = {
    "detrend": lambda: [("baseline", PolynomialCorrection(order=2))],
    "sg1": lambda: [("derivative", SavitzkyGolay(window_length=15, polyorder=2, deriv=1))],
    "detrend_snv": lambda: [
        ("baseline", PolynomialCorrection(order=2)),
        ("snv", StandardNormalVariate()),
    ],
    "airpls": lambda: [("baseline", AirPls(lam=1e5))],
}


@dataclass(frozen=True)
class CVPath:
    """Grouped cross-validation of PLS1 over 1..A latent variables.

    Attributes
    ----------
    rmse : ndarray, shape (A,)
        Root-mean-square error of cross-validation with 1..A latent variables, in the
        analyte's units.
    predictions : ndarray, shape (n, A)
        Out-of-fold prediction of every spectrum with 1..A latent variables.
    """

    rmse: np.ndarray
    predictions: np.ndarray

    def choose(self, tolerance: float) -> int:
        """Return the fewest latent variables whose RMSECV is within ``tolerance`` of the best."""
        best = float(np.min(self.rmse))
        return int(np.argmax(self.rmse <= best * (1.0 + tolerance))) + 1


@dataclass(frozen=True)
class SpeLimit:
    """Moment-matched g chi2(h) distribution of the squared X residual (SPE).

    Nomikos & MacGregor (1995 Technometrics 37:41, eq. 7): ``g = var / (2 mean)`` and
    ``h = 2 mean^2 / var`` of the calibration SPE. DModX is reported normalised,
    ``sqrt(SPE / mean)`` (SIMCA's DModX with s0 from the calibration set).
    """

    mean: float
    g: float
    h: float

    @classmethod
    def fit(cls, spe: np.ndarray) -> SpeLimit:
        """Match the distribution to calibration SPE values."""
        mean, var = float(np.mean(spe)), float(np.var(spe))
        var = max(var, 1e-12 * mean * mean)
        return cls(mean=mean, g=var / (2.0 * mean), h=2.0 * mean * mean / var)

    def dmodx(self, spe: np.ndarray) -> np.ndarray:
        """Normalised DModX of SPE values (1 = a typical calibration spectrum)."""
        return np.sqrt(np.asarray(spe) / self.mean)

    def dmodx_limit(self, level: float) -> float:
        """DModX limit at confidence ``level`` (e.g. 0.95, 0.99)."""
        return float(np.sqrt(self.g * stats.chi2.ppf(level, self.h) / self.mean))


def preprocessing_steps(
    name: str, wavenumbers_cm1: np.ndarray, range_cm1: tuple[float, float]
) -> list[Step]:
    """Return the pipeline steps of preprocessing ``name``: a range cut, then the rest.

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`PREPROCESSINGS` (the message lists them) or the range
        holds fewer than 20 points of the axis.
    """
    if name not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {name!r}; choose from {sorted(PREPROCESSINGS)}")
    lo, hi = range_cm1
    inside = int(np.count_nonzero((wavenumbers_cm1 >= lo) & (wavenumbers_cm1 <= hi)))
    if inside < 20:
        raise ValueError(f"range_cm1 {range_cm1} holds {inside} points of the axis; need >= 20")
    cut = RangeCut(start=lo, end=hi, x_axis=np.asarray(wavenumbers_cm1, dtype=float))
    return [("cut", cut), *PREPROCESSINGS[name]()]


def kernel_pls1_path(xx: np.ndarray, xy: np.ndarray, n_components: int) -> np.ndarray:
    """Regression vectors of PLS1 with 1..A latent variables from centred X'X and X'y.

    Parameters
    ----------
    xx : ndarray, shape (m, m)
        Centred cross-product X'X.
    xy : ndarray, shape (m,)
        Centred cross-product X'y.
    n_components : int
        A, the largest number of latent variables.

    Returns
    -------
    ndarray, shape (m, A)
        Column a-1 is the regression vector b with a latent variables (y - ybar =
        (x - xbar) b). Columns stop growing once X'y is exhausted.
    """
    m = xy.size
    xy0 = xy.astype(np.float64, copy=True)
    xy = xy0.copy()
    r_all = np.zeros((m, n_components))
    p_all = np.zeros((m, n_components))
    coef = np.zeros((m, n_components))
    b = np.zeros(m)
    norm0 = float(np.linalg.norm(xy0))
    for a in range(n_components):
        norm = float(np.linalg.norm(xy))
        if norm0 == 0.0 or norm <= 1e-10 * norm0:  # X'y exhausted: the path is complete
            coef[:, a:] = b[:, None]
            break
        w = xy / norm
        r = w - r_all[:, :a] @ (p_all[:, :a].T @ w)
        xxr = xx @ r
        tt = float(r @ xxr)
        p = xxr / tt
        q = float(r @ xy) / tt
        xy -= p * (q * tt)
        r_all[:, a], p_all[:, a] = r, p
        b = b + r * q
        coef[:, a] = b
    return coef


class FoldStats:
    """Cross-products of preprocessed spectra per CV fold, reused for every analyte.

    Parameters
    ----------
    z : ndarray, shape (n, m)
        Preprocessed spectra.
    folds : ndarray of int, shape (n,)
        Fold of each row (whole batches per fold).
    """

    def __init__(self, z: np.ndarray, folds: np.ndarray) -> None:
        self.z = np.asarray(z, dtype=np.float64)
        self.folds = np.asarray(folds)
        self.ids = np.unique(self.folds)
        parts = [self.z[self.folds == k] for k in self.ids]
        self.n = np.array([p.shape[0] for p in parts], dtype=float)
        self.sx = [p.sum(axis=0) for p in parts]
        self.sxx = [p.T @ p for p in parts]
        self.sxx_total = sum(self.sxx)

    def cv_path(self, y: np.ndarray, n_components: int) -> CVPath:
        """Cross-validate PLS1 of ``y`` (finite, one per row) over 1..``n_components`` LVs."""
        y = np.asarray(y, dtype=np.float64)
        sy = [float(y[self.folds == k].sum()) for k in self.ids]
        sxy = [self.z[self.folds == k].T @ y[self.folds == k] for k in self.ids]
        n_t, sx_t, sy_t, sxy_t = self.n.sum(), sum(self.sx), sum(sy), sum(sxy)
        pred = np.zeros((y.size, n_components))
        for i, k in enumerate(self.ids):
            n = n_t - self.n[i]
            xbar, ybar = (sx_t - self.sx[i]) / n, (sy_t - sy[i]) / n
            xx = (self.sxx_total - self.sxx[i]) - n * np.outer(xbar, xbar)
            xy = (sxy_t - sxy[i]) - n * xbar * ybar
            coef = kernel_pls1_path(xx, xy, n_components)
            rows = self.folds == k
            pred[rows] = (self.z[rows] - xbar) @ coef + ybar
        rmse = np.sqrt(np.mean((pred - y[:, None]) ** 2, axis=0))
        return CVPath(rmse=rmse, predictions=pred)


def hotelling_t2_limit(n_components: int, n_samples: int, level: float) -> float:
    """Hotelling T2 limit of a new observation against a calibration of ``n_samples``.

    ``A (n^2 - 1) / (n (n - A)) F(level; A, n - A)`` (Tracy, Young & Mason 1992 J. Qual.
    Technol. 24:88, eq. 4 for a future observation).
    """
    a, n = n_components, n_samples
    if n <= a:
        return float("inf")
    return float(a * (n * n - 1) / (n * (n - a)) * stats.f.ppf(level, a, n - a))
