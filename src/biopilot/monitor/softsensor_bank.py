"""Raman soft sensors that co-add spectra per analyte: one sensor per co-add window.

Titer and VCD change by a few per cent an hour while their Raman bands are weak: one 15-min
spectrum predicts them to ~0.37 g/L and ~12 %, the twin's noise floor. The trailing mean of
the last 8 spectra (2 h, causal, as a live monitor can compute it) halves the noise variance
four- to eightfold at the cost of about an hour of lag, which these slow analytes can afford;
glucose, which the feed steps within minutes, keeps single spectra. Co-adding consecutive
acquisitions is what in-line Raman practice does to reach SNR (e.g. 75 co-added 10-s scans per
12.5-min spectrum, Abu-Absi et al. 2011 Biotechnol. Bioeng. 108:1215); here the window is set
per analyte. Each window has its own :class:`RamanSoftSensor`, calibrated on spectra co-added
the same way, so its interval and trust limits describe what it is given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from biopilot.monitor.campaign import coadd_spectra, trailing_mean
from biopilot.monitor.softsensor import (
    AnalyteFit,
    RamanSoftSensor,
    SoftSensorPrediction,
    trust,
)

__all__ = ["DEFAULT_COADD", "SoftSensorBank", "SpectrumStream", "trailing_mean"]

#: Spectra co-added per analyte by default (15-min spectra: 8 = the last 2 h); others: 1.
DEFAULT_COADD: dict[str, int] = {"titer_g_per_l": 8, "vcd_cells_per_ml": 8}

_FIELDS = ("value", "low", "high", "t2", "dmodx", "trusted", "reason")


def _partial(
    pred: SoftSensorPrediction, sensor: RamanSoftSensor, n: np.ndarray, window: int
) -> SoftSensorPrediction:
    """Re-judge rows that average fewer than ``window`` spectra (a batch's first ones).

    Their noise sd is ``sqrt(window / n)`` times the calibration co-adds': the interval widens
    by that factor and DModX (noise-dominated) is referred back to a full co-add before its
    limit, so a batch's first spectra are neither over-trusted nor flagged for being few.
    """
    short = np.flatnonzero((n > 0) & (n < window))
    if short.size == 0:
        return pred
    f = np.sqrt(window / n[short])
    out = {c: np.array(getattr(pred, c), copy=True) for c in _FIELDS}
    for j, a in enumerate(pred.analytes):
        fit = sensor.fits_[a]
        value = out["value"][short, j]
        half = (out["high"][short, j] - value) * f
        out["low"][short, j], out["high"][short, j] = value - half, value + half
        out["dmodx"][short, j] = out["dmodx"][short, j] / f
        t2_lim, dx_lim = fit.t2_limit(sensor.trust_level), fit.spe.dmodx_limit(sensor.trust_level)
        ok, why = trust(out["t2"][short, j], t2_lim, out["dmodx"][short, j], dx_lim,
                        sensor.trust_level)  # fmt: skip
        out["trusted"][short, j] = ok
        out["reason"][short, j] = [r and f"{r} (co-add of {k:g} of {window})"
                                   for r, k in zip(why, n[short], strict=True)]  # fmt: skip
    return SoftSensorPrediction(pred.analytes, **out)


class SoftSensorBank:
    """Raman soft sensors with a co-add window per analyte (a sensor per window).

    Parameters
    ----------
    sensors : mapping of int to RamanSoftSensor
        Fitted sensors by co-add window (spectra averaged, trailing); each predicts its own
        analytes, calibrated on spectra co-added over that window. The windows' analytes must
        not overlap.

    Raises
    ------
    ValueError
        On an empty bank, a window < 1, overlapping analytes or sensors on other axes.
    """

    def __init__(self, sensors: Mapping[int, RamanSoftSensor]) -> None:
        if not sensors or min(sensors) < 1:
            raise ValueError(f"need >= 1 sensor, windows >= 1; got windows {sorted(sensors)}")
        seen: dict[str, int] = {}
        for w, s in sensors.items():
            for a in s.analytes:
                if a in seen:
                    raise ValueError(f"{a} is predicted by the {seen[a]}- and {w}-spectrum sensors")
                seen[a] = w
        sizes = {s.n_features_in_ for s in sensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"the sensors read spectra of different lengths: {sorted(sizes)}")
        self.sensors = dict(sorted(sensors.items()))
        self.coadd = seen
        self.analytes = tuple(seen)
        first = next(iter(self.sensors.values()))
        self.n_features_in_ = first.n_features_in_
        self.wavenumbers_cm1_ = first.wavenumbers_cm1_
        self.interval_level = first.interval_level

    @property
    def history_needed(self) -> int:
        """Spectra before the first one given that :meth:`predict` can use (largest window - 1)."""
        return max(self.sensors) - 1

    @property
    def fits_(self) -> dict[str, AnalyteFit]:
        """What was learned per analyte, over every window."""
        return {a: f for s in self.sensors.values() for a, f in s.fits_.items()}

    def get_params(self) -> dict[str, Any]:
        """The sensors' common hyper-parameters and the co-add window of each analyte."""
        first = next(iter(self.sensors.values()))
        params = {k: v for k, v in first.get_params().items() if k != "analytes"}
        return params | {"coadd": dict(self.coadd)}

    def predict(self, X: Any, *, history: Any = None) -> SoftSensorPrediction:
        """Predict every analyte from consecutive spectra of one unit, oldest first.

        Parameters
        ----------
        X : array-like, shape (n, n_wavenumbers) or (n_wavenumbers,)
            Consecutive Raman spectra of one unit, counts, in time order. A row holding
            NaN/inf is untrusted (value NaN) and left out of its neighbours' co-adds.
        history : array-like, shape (m, n_wavenumbers), optional
            The spectra just before ``X`` (up to :attr:`history_needed` are used), so the
            first rows' co-adds are full; without it they average what ``X`` holds.

        Raises
        ------
        ValueError
            If a spectrum's length differs from the calibration axis (both lengths named).
        """
        x = np.asarray(X, dtype=np.float64)
        x = x[None, :] if x.ndim == 1 else x
        past = np.empty((0, x.shape[-1])) if history is None else np.asarray(history, np.float64)
        past = (
            past.reshape(-1, x.shape[-1])[-self.history_needed :]
            if self.history_needed
            else past[:0]
        )
        bad = ~np.all(np.isfinite(x), axis=1)
        parts: dict[str, SoftSensorPrediction] = {}
        for w, sensor in self.sensors.items():
            if w == 1:
                parts |= dict.fromkeys(sensor.analytes, sensor.predict(x))
                continue
            rows, n = (v[past.shape[0] :] for v in coadd_spectra(np.vstack([past, x]), w))
            rows = np.where(bad[:, None], x, rows)  # a bad spectrum stays bad in every window
            pred = _partial(sensor.predict(rows), sensor, np.where(bad, w, n), w)
            parts |= dict.fromkeys(pred.analytes, pred)
        cols = {f: [] for f in _FIELDS}  # type: dict[str, list[np.ndarray]]
        for a in self.analytes:
            pred = parts[a]
            j = pred.analytes.index(a)
            for f in _FIELDS:
                cols[f].append(getattr(pred, f)[:, j])
        return SoftSensorPrediction(
            self.analytes, **{f: np.column_stack(v) for f, v in cols.items()}
        )


class SpectrumStream:
    """Predict one unit's spectra as they arrive, keeping the recent ones a bank co-adds.

    Parameters
    ----------
    sensor : RamanSoftSensor or SoftSensorBank
        The soft sensors.
    span_h : float
        Spectra more than this many hours before a new one are not co-added with it (a gap
        in the line: what came before no longer describes the culture now).
    """

    def __init__(self, sensor: RamanSoftSensor | SoftSensorBank, span_h: float = 2.0) -> None:
        self.sensor = sensor
        self.span = pd.Timedelta(hours=span_h)
        need = sensor.history_needed if isinstance(sensor, SoftSensorBank) else 0
        self._past: deque[tuple[pd.Timestamp, np.ndarray]] = deque(maxlen=need)

    def predict(self, times: Sequence[Any], X: np.ndarray) -> SoftSensorPrediction:
        """Predict consecutive spectra ``X`` taken at ``times``; then remember them.

        Raises
        ------
        ValueError
            As the sensor's ``predict`` (nothing is remembered then).
        """
        stamps = [pd.Timestamp(t) for t in times]
        if isinstance(self.sensor, SoftSensorBank):
            bank: SoftSensorBank = self.sensor  # sklearn is untyped: isinstance does not narrow
            recent = [x for t, x in self._past if t >= stamps[0] - self.span]
            pred = bank.predict(X, history=np.stack(recent) if recent else None)
        else:
            pred = self.sensor.predict(X)
        self._past.extend(zip(stamps, np.asarray(X, dtype=np.float64), strict=True))
        return pred
