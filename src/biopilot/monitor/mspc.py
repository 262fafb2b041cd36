"""Batch MSPC: a batch-evolution model for the running batch and a batch-level model at its end.

Choice (and why). The online model normalises each variable by the mean and standard
deviation of the good batches *at the same maturity* (Nomikos & MacGregor 1995, Technometrics
37:41: batch-wise centring and scaling removes the mean trajectory and its changing spread),
adds each variable's change over the last ``lag_h`` hours (normalised the same way), then fits
one observation-level PCA on the normalised observations of all good batches (the
observation-level structure of Wold et al. 1998, Chemom. Intell. Lab. Syst. 44:331; the
hybrid of Lee, Yoo & Lee 2004, J. Biotechnol. 110:119). Every new observation is scored on
its own as it arrives: no need to fill in the unknown future of the batch as batch-wise MPCA
must online, and the model is fitted from n_batches x n_bins observations, well determined
from 20 batches. Hotelling T2 and SPE have pyphi-compatible 95 % / 99 % limits
(:mod:`biopilot.monitor.mspc_pca`). An MSPC alarm is a run of ``alarm_run`` consecutive bins
beyond an alarm limit (a Western Electric-style run rule) whose level is calibrated on good
batches not used for fitting (:meth:`BatchEvolutionModel.calibrate`). The finished batch is
judged by a batch-wise unfolded PCA of its whole trajectory plus final quality (Nomikos &
MacGregor 1995). Derived probe cross-checks (:mod:`biopilot.monitor.mspc_features`) form a
second block with its own Hotelling T2 and alarm limit (multi-block monitoring, MacGregor,
Jaeckle, Kiparissides & Koutoudi 1994, AIChE J. 40:826): a few residual-like variables
would drown in the SPE of the process block, whose limit the good batches' offsets set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d
from sklearn.base import BaseEstimator

from biopilot.monitor.mspc_features import PROBE_STANDARDS, derive, fit_params, probe_limit
from biopilot.monitor.mspc_io import (
    ONLINE_TAGS,
    align,
    batch_bins,
    first_run,
    load_model,
    run_peak,
    save_model,
)
from biopilot.monitor.mspc_pca import ALPHAS, PCAMonitor, hotelling_t2_limit, spe_limit_box

__all__ = ["BatchEvolutionModel", "BatchLevelModel", "first_run", "load"]


class BatchEvolutionModel(BaseEstimator):
    """Online MSPC of a running batch: T2, SPE, limits and contributions per maturity bin.

    Parameters
    ----------
    n_components : int
        Principal components of the observation-level PCA.
    lag_h : float
        Each variable also enters as its change over the last ``lag_h`` hours (0: not): the
        within-batch change, free of the batch's own steady offset (as the lagged variables
        of dynamic PCA, Ku, Storer & Georgakis 1995, Chemom. Intell. Lab. Syst. 30:179).
    period_min : float
        Width of a maturity bin, minutes; each bin holds the mean of its samples.
    variables : tuple of str
        Online tags modelled (default :data:`~biopilot.monitor.mspc_io.ONLINE_TAGS`, the
        process tags; ``PLANT_TAGS`` adds the controller outputs).
    features : tuple of str
        Derived variables of :mod:`biopilot.monitor.mspc_features` (probe cross-checks),
        normalised like the tags, a second block with its own T2 ``t2_checks``; the frames
        must hold the tags they need (at-line ones NaN between samples).
    smooth_bins : int
        Half-width (bins) of the moving window that smooths the per-maturity variance.
    std_floor : float
        Floor of a per-maturity standard deviation, as a fraction of the variable's median
        one (a controlled variable at its setpoint would otherwise divide by ~0).
    alarm_run : int
        Consecutive bins beyond an alarm limit (T2 or SPE) that raise an alarm.
    alarm_margin : float
        :meth:`calibrate` sets each alarm limit to this factor times the run-filtered peak
        of the calibration batches.
    alarm_allowed : float
        Fraction of calibration batches allowed to exceed the alarm limits (before margin).
    probe_limit_sd : float
        A feature that compares a probe with its at-line reference (``PROBE_STANDARDS``) is
        also alarmed on its own, at each reference sample, beyond this many RMS differences
        of good batches (the re-standardisation limit, ``probe_limits_``).

    Attributes
    ----------
    mean_, std_ : ndarray (n_bins, 2m) or (n_bins, m) without lag
        Mean trajectory of the good batches (levels, then changes) and its (smoothed,
        floored) spread.
    pca_ : PCAMonitor
        The observation-level model of the normalised observations of the tags.
    checks_ : PCAMonitor or None
        The features' block, all components kept (its T2 is their Hotelling T2).
    feature_params_ : dict
        What the features learned (:func:`~biopilot.monitor.mspc_features.fit_params`).
    n_bins_, n_batches_ : int
        Bins per batch and good batches used.
    t2_limits_, spe_limits_ : dict of float to float
        Limits at 0.95 and 0.99.
    alarm_limits_ : dict of str to float
        Limits of ``"t2"``, ``"spe"`` (``"t2_checks"``) the alarm rule uses (:meth:`calibrate`).
    probe_limits_ : dict of str to float
        Per probe-standard feature, the limit of the probe minus its reference (e.g. pH):
        from the fitted batches, then from the calibration batches (:meth:`calibrate`).
    """

    def __init__(
        self,
        n_components: int = 3,
        lag_h: float = 24.0,
        period_min: float = 10.0,
        variables: tuple[str, ...] = ONLINE_TAGS,
        features: tuple[str, ...] = (),
        smooth_bins: int = 3,
        std_floor: float = 0.5,
        alarm_run: int = 12,
        alarm_margin: float = 1.2,
        alarm_allowed: float = 0.01,
        probe_limit_sd: float = 4.0,
    ) -> None:
        self.n_components = n_components
        self.lag_h = lag_h
        self.period_min = period_min
        self.variables = variables
        self.features = features
        self.smooth_bins = smooth_bins
        self.std_floor = std_floor
        self.alarm_margin = alarm_margin
        self.alarm_allowed = alarm_allowed
        self.alarm_run = alarm_run
        self.probe_limit_sd = probe_limit_sd

    def fit(self, batches: Sequence[pd.DataFrame], y: object = None) -> BatchEvolutionModel:
        """Fit on the online data of good batches (UTC-indexed frames, one per batch).

        Raises
        ------
        ValueError
            With fewer than 3 batches, or a batch lacking a variable.
        """
        if len(batches) < 3:
            raise ValueError(f"a batch-evolution model needs >= 3 good batches, got {len(batches)}")
        n_bins = min(batch_bins(b, self.period_min) for b in batches)
        self.feature_params_ = fit_params(batches, self.features, self.period_min)
        cube = np.stack([self._align(b, n_bins, fill=True) for b in batches])
        self.mean_ = np.nanmean(cube, axis=0)
        var = uniform_filter1d(
            np.nanvar(cube, axis=0, ddof=1), size=2 * self.smooth_bins + 1, axis=0, mode="nearest"
        )
        sd = np.sqrt(np.clip(var, 0.0, None))  # the moving sum can round below 0
        self.std_ = np.maximum(sd, self.std_floor * np.median(sd, axis=0) + 1e-12)
        Z = ((cube - self.mean_) / self.std_).reshape(-1, cube.shape[2])
        block = self._feature_columns()
        self.pca_ = PCAMonitor(self.n_components).fit(Z[:, ~block])
        self.checks_ = PCAMonitor(int(block.sum())).fit(Z[:, block]) if block.any() else None
        self.n_bins_, self.n_batches_ = n_bins, len(batches)
        self.t2_limits_ = {
            a: hotelling_t2_limit(self.pca_.n_samples_, self.n_components, a) for a in ALPHAS
        }
        self.spe_limits_ = {a: spe_limit_box(self.pca_.spe_train_, a) for a in ALPHAS}
        self.alarm_limits_ = {"t2": self.t2_limits_[0.99], "spe": self.spe_limits_[0.99]}
        if self.checks_ is not None:
            self.alarm_limits_["t2_checks"] = self.checks_.t2_limits_[0.99]
        self.probe_limits_ = self._probe_limits(batches)
        self.n_calibration_batches_ = 0
        return self

    def calibrate(self, batches: Sequence[pd.DataFrame]) -> BatchEvolutionModel:
        """Set the alarm limits from good batches *not* used by :meth:`fit`.

        Consecutive observations of a batch are correlated and a good batch keeps its own
        offset for days, so the 99 % limits of single observations, held for ``alarm_run``
        bins, still flag several good batches in a hundred. The alarm limit of each statistic
        is therefore set on the batch level: ``alarm_margin`` times the peak that its run
        filter reaches (the largest value held for ``alarm_run`` consecutive bins) in all but
        ``alarm_allowed`` of the calibration batches. A batch alarms on *any* statistic, so
        all limits are then raised by one factor until no more than ``alarm_allowed`` of the
        batches exceed one of them. Uncalibrated, the 99 % limits are used. The probe-check
        limits (``probe_limits_``) are learned again from these batches when they hold
        enough reference samples (>= 30), else those of the fitted batches are kept.
        """
        if not batches:
            raise ValueError("calibrate needs good batches not used for fitting")
        keys = list(self.alarm_limits_)
        stats = map(self._statistics, batches)
        peaks = np.array([[run_peak(s[k], self.alarm_run) for k in keys] for s in stats])
        skip = int(np.floor(self.alarm_allowed * len(batches)))
        base = np.sort(peaks, axis=0)[::-1][skip]
        worst = np.sort(np.max(peaks / np.maximum(base, 1e-300), axis=1))[::-1][skip]
        scale = self.alarm_margin * max(1.0, float(worst))
        self.alarm_limits_ = {k: scale * float(v) for k, v in zip(keys, base, strict=True)}
        self.probe_limits_ |= self._probe_limits(batches, strict=False)
        self.n_calibration_batches_ = len(batches)
        return self

    def normalise(self, batch: pd.DataFrame) -> np.ndarray:
        """Return the batch's bins normalised by the good batches at the same maturity.

        Columns: the variables, then (with ``lag_h``) their changes over ``lag_h``.
        """
        X = self._align(batch, None, fill=False)
        k = np.minimum(np.arange(len(X)), self.n_bins_ - 1)  # past the end: last bin's model
        return np.asarray((X - self.mean_[k]) / self.std_[k])

    def transform(self, batch: pd.DataFrame) -> np.ndarray:
        """Return the scores (n_bins, A) of the batch's bins."""
        return self.pca_.transform(self.normalise(batch)[:, ~self._feature_columns()])

    def monitor(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Return T2 and SPE of each bin with their limits and the alarm flag.

        Returns
        -------
        DataFrame
            Index ``time_utc`` (bin start); columns ``maturity_h``, ``score_1..score_A``, ``t2``,
            ``spe``, ``t2_lim95``, ``t2_lim99``, ``spe_lim95``, ``spe_lim99``, with features
            ``t2_checks``, ``t2_checks_lim95``, ``t2_checks_lim99``, then ``beyond`` (a
            statistic beyond its alarm limit) and ``alarm`` (True from the bin that
            completes a run of ``alarm_run`` such bins).
        """
        s = self._statistics(batch)
        n = len(s["t2"])
        start = pd.Timestamp(batch.index[0])
        out = pd.DataFrame(
            {"maturity_h": np.arange(n) * self.period_min / 60.0},
            index=pd.DatetimeIndex(
                start + pd.to_timedelta(np.arange(n) * self.period_min, unit="min"),
                name="time_utc",
            ),
        )
        for j in range(s["scores"].shape[1]):
            out[f"score_{j + 1}"] = s["scores"][:, j]
        out["t2"], out["spe"] = s["t2"], s["spe"]
        for a, tag in ((0.95, "95"), (0.99, "99")):
            out[f"t2_lim{tag}"], out[f"spe_lim{tag}"] = self.t2_limits_[a], self.spe_limits_[a]
        if self.checks_ is not None:
            out["t2_checks"] = s["t2_checks"]
            for a, tag in ((0.95, "95"), (0.99, "99")):
                out[f"t2_checks_lim{tag}"] = self.checks_.t2_limits_[a]
        beyond = np.zeros(n, dtype=bool)
        for key, limit in self.alarm_limits_.items():
            beyond |= s[key] > limit
        out["beyond"] = beyond
        first = first_run(beyond, self.alarm_run)
        out["alarm"] = np.arange(n) >= (first if first is not None else n)
        return out

    def contributions(self, batch: pd.DataFrame, statistic: str = "spe") -> pd.DataFrame:
        """Return contributions per bin (rows sum to the statistic) per tag or feature.

        ``"t2"`` and ``"spe"`` are split over the tags, ``"t2_checks"`` over the features."""
        if statistic not in self.alarm_limits_:
            raise ValueError(f"unknown statistic {statistic!r}; known: {list(self.alarm_limits_)}")
        block = self._feature_columns()
        Z = self.normalise(batch)
        if statistic == "t2_checks" and self.checks_ is not None:
            c, names = self.checks_.contributions(Z[:, block])["t2"], list(self.features)
        else:
            c, names = self.pca_.contributions(Z[:, ~block])[statistic], list(self.variables)
        m = len(names)
        per_tag = c[:, :m] + (c[:, m:] if c.shape[1] > m else 0.0)  # level + change of a tag
        return pd.DataFrame(per_tag, index=self.monitor(batch).index, columns=names)

    def diagnose(self, batch: pd.DataFrame, time_utc: pd.Timestamp) -> pd.Series:
        """Return the contributions behind an alarm at ``time_utc``, largest first.

        The statistic further beyond its alarm limit (T2, SPE or the checks' T2, ratio
        averaged over the ``alarm_run`` bins ending at ``time_utc``) is the one explained; the
        Series is named after it and holds each variable's mean contribution over those bins.
        """
        mon = self.monitor(batch)
        end = int(mon.index.get_indexer([pd.Timestamp(time_utc)], method="ffill")[0])
        rows = slice(max(end - self.alarm_run + 1, 0), end + 1)
        ratio = {
            k: float(np.nanmean(mon[k].iloc[rows])) / lim for k, lim in self.alarm_limits_.items()
        }
        stat = max(ratio, key=lambda k: ratio[k])
        c = self.contributions(batch, stat).iloc[rows].mean()
        return c.sort_values(ascending=False).rename(stat)

    def score(self, batches: Sequence[pd.DataFrame], y: object = None) -> float:
        """Return the fraction of ``batches`` that raise no MSPC alarm."""
        return float(np.mean([not self.monitor(b)["alarm"].any() for b in batches]))

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Save to a versioned JSON model file with training ``metadata``."""
        return save_model(self, path, _metadata(self, metadata))

    def _statistics(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        """Return scores, ``t2`` and ``spe`` of the tags' block, ``t2_checks`` of the features."""
        Z = self.normalise(batch)
        block = self._feature_columns()
        s = self.pca_.score_samples(Z[:, ~block])
        if self.checks_ is not None:
            s["t2_checks"] = self.checks_.score_samples(Z[:, block])["t2"]
        return s

    def _probe_limits(
        self, batches: Sequence[pd.DataFrame], *, strict: bool = True
    ) -> dict[str, float]:
        """Return the limit of each probe-standard feature from good ``batches``.

        Without ``strict``, a feature whose batches hold too few reference samples is left out.
        """
        out = {}
        for f in (f for f in self.features if f in PROBE_STANDARDS):
            try:
                std = PROBE_STANDARDS[f]
                out[f] = probe_limit(batches, std, self.probe_limit_sd, self.period_min)
            except ValueError:
                if strict:
                    raise
        return out

    def _feature_columns(self) -> np.ndarray:
        """Return the mask of the features' columns (levels, then changes, as ``_align``)."""
        m, f = len(self.variables), len(self.features)
        copies = 2 if round(self.lag_h * 60.0 / self.period_min) > 0 else 1
        return np.tile(np.arange(m + f) >= m, copies)

    def _align(self, batch: pd.DataFrame, n_bins: int | None, *, fill: bool) -> np.ndarray:
        X = align(batch, self.variables, self.period_min, n_bins, fill=fill)
        if self.features:
            params = self.feature_params_
            F = derive(batch, self.features, self.period_min, len(X), fill=fill, params=params)
            X = np.hstack([X, F])
        lag = round(self.lag_h * 60.0 / self.period_min)
        if lag <= 0:
            return X
        past = X[np.maximum(np.arange(len(X)) - lag, 0)]
        return np.hstack([X, X - past])


class BatchLevelModel(BaseEstimator):
    """MSPC of finished batches: batch-wise unfolded PCA of whole trajectories + final quality.

    Parameters
    ----------
    n_components : int
        Principal components.
    period_min : float
        Bin width of the unfolded trajectories, minutes.
    variables : tuple of str
        Online tags unfolded (column order: each variable's whole trajectory in turn, as pyphi).

    Attributes
    ----------
    pca_ : PCAMonitor
        PCA of the unfolded matrix (one row per batch).
    columns_ : list of str
        Unfolded column names ``tag@bin`` then the quality names.
    n_bins_ : int
        Bins per trajectory.
    """

    def __init__(
        self,
        n_components: int = 2,
        period_min: float = 60.0,
        variables: tuple[str, ...] = ONLINE_TAGS,
    ) -> None:
        self.n_components = n_components
        self.period_min = period_min
        self.variables = variables

    def fit(self, batches: Sequence[pd.DataFrame], quality: pd.DataFrame | None = None) -> Any:
        """Fit on finished good batches and their final quality (one row per batch, or None)."""
        if len(batches) < self.n_components + 2:
            raise ValueError(f"need >= {self.n_components + 2} batches, got {len(batches)}")
        self.n_bins_ = min(batch_bins(b, self.period_min) for b in batches)
        self.quality_names_ = [] if quality is None else [str(c) for c in quality.columns]
        self.columns_ = [f"{v}@{k}" for v in self.variables for k in range(self.n_bins_)]
        self.columns_ += self.quality_names_
        self.pca_ = PCAMonitor(self.n_components).fit(self.unfold(batches, quality))
        return self

    def unfold(self, batches: Sequence[pd.DataFrame], quality: pd.DataFrame | None = None) -> Any:
        """Return the unfolded matrix: one row per batch, variable-major, quality last."""
        rows = [
            align(b, self.variables, self.period_min, self.n_bins_, fill=True).T.ravel()
            for b in batches
        ]
        X = np.vstack(rows)
        if self.quality_names_:
            if quality is None:
                raise ValueError(f"the model needs final quality {self.quality_names_}")
            X = np.hstack([X, quality[self.quality_names_].to_numpy(dtype=float)])
        return X

    def monitor(self, batches: Sequence[pd.DataFrame], quality: pd.DataFrame | None = None) -> Any:
        """Return per batch its scores, ``t2``, ``spe``, their 95/99 % limits and ``in_control``."""
        s = self.pca_.score_samples(self.unfold(batches, quality))
        out = pd.DataFrame(
            s["scores"], columns=[f"score_{j + 1}" for j in range(self.n_components)]
        )
        out["t2"], out["spe"] = s["t2"], s["spe"]
        for a, tag in ((0.95, "95"), (0.99, "99")):
            out[f"t2_lim{tag}"] = self.pca_.t2_limits_[a]
            out[f"spe_lim{tag}"] = self.pca_.spe_limits_[a]
        out["in_control"] = (out["t2"] <= out["t2_lim99"]) & (out["spe"] <= out["spe_lim99"])
        return out

    def contributions(
        self,
        batches: Sequence[pd.DataFrame],
        quality: pd.DataFrame | None = None,
        statistic: str = "spe",
    ) -> pd.DataFrame:
        """Return contributions to ``statistic`` summed per variable (rows: batches)."""
        c = self.pca_.contributions(self.unfold(batches, quality))[statistic]
        names = [col.split("@")[0] for col in self.columns_]
        return pd.DataFrame(c, columns=names).T.groupby(level=0, sort=False).sum().T

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Save to a versioned JSON model file with training ``metadata``."""
        return save_model(self, path, _metadata(self, metadata))


def load(path: str | Path) -> Any:
    """Load a model saved by ``save``; ConfigError for a foreign or other-version file."""
    classes = {c.__name__: c for c in (BatchEvolutionModel, BatchLevelModel, PCAMonitor)}
    return load_model(path, classes)


def _metadata(model: BaseEstimator, extra: dict[str, Any] | None) -> dict[str, Any]:
    meta = dict(getattr(model, "training_metadata_", {}) or {})
    meta.update(extra or {})
    return meta
