"""Raman soft sensors: spectra in, concentrations out, each with an interval and a trust flag.

One PLS1 pipeline per analyte (range cut, chemotools preprocessing, scikit-learn
``PLSRegression``), its preprocessing and latent variables chosen by cross-validation that
leaves out whole batches. Every prediction carries

- a prediction interval from the out-of-fold CV residuals, leverage-scaled
  (``yhat +- q sqrt(1 + h)``, q the ``interval_level`` quantile of ``|r_cv| / sqrt(1 + h)``;
  split-conformal in spirit, Barber et al. 2021 Ann. Stat. 49:486; leverage as in ASTM
  E1655), and
- a trust flag: Hotelling T2 of the spectrum's PLS scores and DModX of its X residual
  against the calibration spectra, with limits at ``trust_level``. A spectrum beyond either
  limit, or holding NaN/inf, is ``trusted=False`` with the reason; it is never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.cross_decomposition import PLSRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from biopilot.monitor.campaign import ANALYTES
from biopilot.monitor.softsensor_stats import (
    FoldStats,
    SpeLimit,
    hotelling_t2_limit,
    preprocessing_steps,
)
from biopilot.twin.raman import default_wavenumbers_cm1

__all__ = ["AnalyteFit", "RamanSoftSensor", "SoftSensorPrediction", "trust"]


@dataclass(frozen=True)
class SoftSensorPrediction:
    """Soft-sensor outputs for n spectra x k analytes (arrays of shape (n, k)).

    Attributes
    ----------
    analytes : tuple of str
        Column order, units in the names (``glucose_g_per_l``...).
    value, low, high : ndarray
        Prediction and its interval, in the analyte's units; NaN for a non-finite spectrum.
    t2, dmodx : ndarray
        Hotelling T2 of the spectrum in each analyte model, and its normalised DModX.
    trusted : ndarray of bool
        False when T2 or DModX is beyond the model's limit at ``trust_level``, or the
        spectrum holds NaN/inf; use the value only where True.
    reason : ndarray of str
        Why a value is not trusted ("" when trusted).
    """

    analytes: tuple[str, ...]
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    t2: np.ndarray
    dmodx: np.ndarray
    trusted: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def frame(self) -> pd.DataFrame:
        """Return one row per (spectrum, analyte): value, low, high, t2, dmodx, trusted, reason."""
        n, k = self.value.shape
        return pd.DataFrame(
            {
                "spectrum": np.repeat(np.arange(n), k),
                "analyte": np.tile(np.asarray(self.analytes, dtype=object), n),
                **{
                    c: getattr(self, c).ravel()
                    for c in ("value", "low", "high", "t2", "dmodx", "trusted", "reason")
                },
            }
        )

    def column(self, analyte: str) -> pd.DataFrame:
        """Return one analyte's predictions, one row per spectrum."""
        j = self.analytes.index(analyte)
        cols = ("value", "low", "high", "t2", "dmodx", "trusted", "reason")
        return pd.DataFrame({c: getattr(self, c)[:, j] for c in cols})


@dataclass(frozen=True)
class AnalyteFit:
    """What was learned for one analyte besides its pipeline.

    Attributes
    ----------
    preprocessing : str
        Chosen preprocessing (a key of ``PREPROCESSINGS``).
    n_components : int
        Chosen latent variables.
    rmsecv : float
        Grouped CV error at that choice, analyte units.
    rmsecv_by_preprocessing : dict of str to float
        Best RMSECV of each candidate, to show why this one was chosen.
    interval_q : float
        Half-width factor of the interval (quantile of ``|r_cv| / sqrt(1 + h)``).
    n_samples : int
        Calibration spectra used.
    x_mean, score_var : ndarray
        Mean preprocessed spectrum and variance of each PLS score on the calibration set.
    spe : SpeLimit
        Distribution of the calibration X residual.
    """

    preprocessing: str
    n_components: int
    rmsecv: float
    rmsecv_by_preprocessing: dict[str, float]
    interval_q: float
    n_samples: int
    x_mean: np.ndarray
    score_var: np.ndarray
    spe: SpeLimit

    def t2_limit(self, level: float) -> float:
        """Hotelling T2 limit at confidence ``level``."""
        return hotelling_t2_limit(self.n_components, self.n_samples, level)


class RamanSoftSensor(RegressorMixin, BaseEstimator):
    """Raman -> concentrations: one chemotools + PLS1 pipeline per analyte, with trust.

    Parameters
    ----------
    analytes : sequence of str
        What to predict, in the order of ``y``'s columns (default: glucose, lactate,
        glutamine, ammonia, titer, VCD).
    preprocessing : str
        ``"auto"`` (choose among ``candidates`` by grouped CV) or a name of
        :data:`~biopilot.monitor.softsensor_stats.PREPROCESSINGS`.
    candidates : sequence of str
        Preprocessings tried by ``"auto"``.
    range_cm1 : (float, float)
        Raman shift range kept, cm-1 (the analytes' bands lie in 500-1700 cm-1).
    wavenumbers_cm1 : ndarray, optional
        The spectra's axis, cm-1; default the twin's 400-1800 cm-1 in 2 cm-1 steps.
    max_components : int
        Most latent variables tried.
    cv_folds : int
        Folds of the CV, whole batches (``groups``) per fold.
    lv_tolerance : float
        Fewest latent variables whose RMSECV is within this fraction of the best.
    interval_level : float
        Coverage of the prediction interval (0.95 = 95 %).
    trust_level : float
        Confidence of the T2 and DModX limits beyond which a prediction is not trusted.
    """

    def __init__(
        self,
        analytes: Sequence[str] = ANALYTES,
        *,
        preprocessing: str = "auto",
        candidates: Sequence[str] = ("detrend", "sg1", "detrend_snv"),
        range_cm1: tuple[float, float] = (450.0, 1750.0),
        wavenumbers_cm1: np.ndarray | None = None,
        max_components: int = 15,
        cv_folds: int = 5,
        lv_tolerance: float = 0.01,
        interval_level: float = 0.95,
        trust_level: float = 0.99,
    ) -> None:
        self.analytes = analytes
        self.preprocessing = preprocessing
        self.candidates = candidates
        self.range_cm1 = range_cm1
        self.wavenumbers_cm1 = wavenumbers_cm1
        self.max_components = max_components
        self.cv_folds = cv_folds
        self.lv_tolerance = lv_tolerance
        self.interval_level = interval_level
        self.trust_level = trust_level

    def fit(self, X: Any, y: Any, groups: Any = None) -> RamanSoftSensor:
        """Calibrate every analyte's pipeline on spectra ``X`` and references ``y``.

        Parameters
        ----------
        X : array-like, shape (n, n_wavenumbers)
            Raman spectra, counts, finite.
        y : DataFrame or array-like, shape (n, len(analytes))
            References in the analytes' units (DataFrame columns by name); NaN = none, that
            row is left out for that analyte only.
        groups : array-like, shape (n,), optional
            Batch of each spectrum; CV folds never split a batch. Without it, the CV uses
            contiguous blocks (optimistic if spectra of one batch fall in two folds).

        Raises
        ------
        ValueError
            On a spectrum of the wrong length (both lengths named), NaN/inf in ``X``, a
            missing analyte column, fewer than 2 groups, or an unknown preprocessing.
        """
        axis = self._axis()
        X = _spectra(X, axis.size)
        if not np.all(np.isfinite(X)):
            raise ValueError("calibration spectra hold NaN or inf; drop them before fitting")
        Y = self._targets(y, X.shape[0])
        folds = self._folds(groups, X.shape[0])
        names = [self.preprocessing] if self.preprocessing != "auto" else list(self.candidates)
        z_all = {
            p: Pipeline(preprocessing_steps(p, axis, self.range_cm1)).fit_transform(X)
            for p in names
        }
        cache: dict[bytes, dict[str, FoldStats]] = {}
        self.models_: dict[str, Pipeline] = {}
        self.fits_: dict[str, AnalyteFit] = {}
        for j, analyte in enumerate(self.analytes):
            ok = np.isfinite(Y[:, j])
            if ok.sum() < 10:
                raise ValueError(f"{analyte}: {int(ok.sum())} references; need >= 10")
            key = np.packbits(ok).tobytes()
            if key not in cache:  # one set of cross-products per set of rows
                cache[key] = {p: FoldStats(z[ok], folds[ok]) for p, z in z_all.items()}
            self.models_[analyte], self.fits_[analyte] = self._fit_one(X[ok], Y[ok, j], cache[key])
        self.wavenumbers_cm1_ = axis
        self.n_features_in_ = axis.size
        return self

    def predict(self, X: Any) -> SoftSensorPrediction:
        """Predict every analyte with its interval and trust flag.

        Parameters
        ----------
        X : array-like, shape (n, n_wavenumbers) or (n_wavenumbers,)
            Raman spectra, counts. NaN/inf in a spectrum makes its row untrusted (value NaN).

        Returns
        -------
        SoftSensorPrediction
            ``np.asarray(result)`` gives the (n, k) values.

        Raises
        ------
        ValueError
            If a spectrum's length differs from the calibration axis (both lengths named).
        """
        check_is_fitted(self, "models_")
        X = _spectra(X, self.n_features_in_)
        n, k = X.shape[0], len(self.analytes)
        bad = ~np.all(np.isfinite(X), axis=1)
        # A bad row is predicted on a finite, non-constant stand-in (zeros would make SNV
        # divide 0 by 0 and fail the whole call), then blanked below.
        Xg = np.where(bad[:, None], np.linspace(1.0, 2.0, X.shape[1]), X)
        out = {c: np.full((n, k), np.nan) for c in ("value", "low", "high", "t2", "dmodx")}
        trusted = np.zeros((n, k), dtype=bool)
        reason = np.full((n, k), "", dtype=object)
        for j, analyte in enumerate(self.analytes):
            pipe, fit = self.models_[analyte], self.fits_[analyte]
            z = pipe[:-1].transform(Xg)
            pls: PLSRegression = pipe[-1]
            value = pls.predict(z).ravel()
            scores = pls.transform(z)
            t2 = np.sum(scores**2 / fit.score_var, axis=1)
            spe = np.sum((z - fit.x_mean - scores @ pls.x_loadings_.T) ** 2, axis=1)
            dmodx = fit.spe.dmodx(spe)
            half = fit.interval_q * np.sqrt(1.0 + 1.0 / fit.n_samples + t2 / (fit.n_samples - 1))
            t2_lim, dx_lim = fit.t2_limit(self.trust_level), fit.spe.dmodx_limit(self.trust_level)
            trusted[:, j], reason[:, j] = trust(t2, t2_lim, dmodx, dx_lim, self.trust_level)
            for c, v in (("value", value), ("t2", t2), ("dmodx", dmodx)):
                out[c][:, j] = v
            out["low"][:, j], out["high"][:, j] = value - half, value + half
        if bad.any():
            for arr in out.values():
                arr[bad] = np.nan
            trusted[bad] = False
            n_bad = np.count_nonzero(~np.isfinite(X[bad]), axis=1)
            reason[bad] = np.array(
                [f"spectrum holds NaN/inf in {m} of {X.shape[1]} points" for m in n_bad],
                dtype=object,
            )[:, None]
        return SoftSensorPrediction(tuple(self.analytes), trusted=trusted, reason=reason, **out)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean R2 over the analytes (rows with a reference and a finite spectrum)."""
        pred = self.predict(X).value
        Y = self._targets(y, pred.shape[0])
        r2 = []
        for j in range(Y.shape[1]):
            ok = np.isfinite(Y[:, j]) & np.isfinite(pred[:, j])
            w = None if sample_weight is None else np.asarray(sample_weight)[ok]
            r2.append(r2_score(Y[ok, j], pred[ok, j], sample_weight=w))
        return float(np.mean(r2))

    def _fit_one(
        self, X: np.ndarray, y: np.ndarray, stats: dict[str, FoldStats]
    ) -> tuple[Pipeline, AnalyteFit]:
        """Choose preprocessing and latent variables by CV, then fit the final pipeline."""
        a_max = max(1, min(self.max_components, X.shape[0] - 2, X.shape[1] - 1))
        paths = {p: st.cv_path(y, a_max) for p, st in stats.items()}
        chosen = {p: cv.choose(self.lv_tolerance) for p, cv in paths.items()}
        best = {p: float(cv.rmse[chosen[p] - 1]) for p, cv in paths.items()}
        name = min(best, key=best.__getitem__)
        a = chosen[name]
        axis = self._axis()
        pipe = Pipeline(
            [
                *preprocessing_steps(name, axis, self.range_cm1),
                ("pls", PLSRegression(n_components=a, scale=False)),
            ]
        )
        pipe.fit(X, y)
        z = stats[name].z
        pls: PLSRegression = pipe[-1]
        scores = pls.transform(z)
        score_var = np.var(scores, axis=0, ddof=1)
        t2 = np.sum(scores**2 / score_var, axis=1)
        x_mean = z.mean(axis=0)
        spe = np.sum((z - x_mean - scores @ pls.x_loadings_.T) ** 2, axis=1)
        n = X.shape[0]
        resid = np.abs(y - paths[name].predictions[:, a - 1])
        q = float(np.quantile(resid / np.sqrt(1.0 + 1.0 / n + t2 / (n - 1)), self.interval_level))
        fit = AnalyteFit(name, a, best[name], best, q, n, x_mean, score_var, SpeLimit.fit(spe))
        return pipe, fit

    def _axis(self) -> np.ndarray:
        axis = default_wavenumbers_cm1() if self.wavenumbers_cm1 is None else self.wavenumbers_cm1
        return np.asarray(axis, dtype=np.float64)

    def _targets(self, y: Any, n: int) -> np.ndarray:
        if isinstance(y, pd.DataFrame):
            missing = [a for a in self.analytes if a not in y.columns]
            if missing:
                raise ValueError(f"y lacks the analyte columns {missing}")
            Y = y[list(self.analytes)].to_numpy(dtype=np.float64)
        else:
            Y = np.asarray(y, dtype=np.float64)
            Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        if Y.shape != (n, len(self.analytes)):
            raise ValueError(f"y has shape {Y.shape}; expected ({n}, {len(self.analytes)})")
        return Y

    def _folds(self, groups: Any, n: int) -> np.ndarray:
        g = np.arange(n) * self.cv_folds // n if groups is None else np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has shape {g.shape}; expected ({n},)")
        n_groups = np.unique(g).size
        if n_groups < 2:
            raise ValueError("cross-validation needs spectra of >= 2 batches (groups)")
        folds = np.zeros(n, dtype=int)
        splitter = GroupKFold(n_splits=min(self.cv_folds, n_groups))
        for k, (_, test) in enumerate(splitter.split(np.zeros(n), groups=g)):
            folds[test] = k
        return folds


def trust(
    t2: np.ndarray, t2_lim: float, dmodx: np.ndarray, dx_lim: float, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the trust flags of predictions and, where not trusted, why (limits named)."""
    pct = f"{100 * level:g}%"
    reason = np.full(t2.shape, "", dtype=object)
    for i in np.flatnonzero((t2 > t2_lim) | (dmodx > dx_lim)):
        why = []
        if t2[i] > t2_lim:
            why.append(f"T2 {t2[i]:.3g} > {pct} limit {t2_lim:.3g}")
        if dmodx[i] > dx_lim:
            why.append(f"DModX {dmodx[i]:.3g} > {pct} limit {dx_lim:.3g}")
        reason[i] = "; ".join(why)
    return (t2 <= t2_lim) & (dmodx <= dx_lim), reason


def _spectra(X: Any, n_points: int) -> np.ndarray:
    """Return spectra as a float64 (n, n_points) array; ValueError naming both lengths."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"spectra must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[1] != n_points:
        raise ValueError(
            f"a spectrum has {arr.shape[1]} points but the model's wavenumber axis has "
            f"{n_points}; resample it onto the calibration axis first"
        )
    return arr
