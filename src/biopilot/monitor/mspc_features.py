"""Derived MSPC variables that engineers compute from the plant's tags: probe cross-checks.

Each feature is computed on the maturity grid of :func:`~biopilot.monitor.mspc_io.align` from
data available at the end of each bin, never later (the model scores a running batch):

``ph_online_minus_offline``
    Online pH probe minus the at-line pH (blood-gas analyser) of the last daily sample,
    carried forward until the next one. Plants compare the two at every sample and
    re-standardise the probe beyond ~0.05-0.1 pH (site practice; in-process one-point
    standardisation: Mettler-Toledo, *A Guide to pH Measurement*, 2013). The result counts
    from the bin after the sample's, the time the analyser takes to report.
``o2_balance_residual_frac``
    The oxygen balance: the kLa that the off-gas OUR and the DO reading imply,
    ``OUR / (C*_air (y_O2 / 0.2095 - DO / 100))``, over the kLa that the sparge flow (air +
    O2) gives, minus 1; mean of the last two hours (off-gas rates are noisy, ~3 %, and a
    balance is struck over a window). The kLa of the flow is the vessel's kLa
    characterisation (kLa against gas flow, as in van 't Riet 1979, Ind. Eng. Chem. Process
    Des. Dev. 18:357), here an affine fit on the good batches (:func:`fit_params`). A DO
    probe that drifts, read by a loop that holds it at setpoint, moves the residual while
    flows and OUR look plausible.

A probe with an at-line reference (:data:`PROBE_STANDARDS`) is also checked on its own at each
reference sample, as plants do before re-standardising it: :func:`probe_differences` gives
the differences, :func:`probe_limit` the alarm limit learned from good batches, and
:class:`~biopilot.monitor.alarms_rules.ProbeCheckRule` the alarm of a running batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biopilot.monitor.mspc_io import align

__all__ = [
    "FEATURES",
    "PROBE_CHECKS",
    "PROBE_STANDARDS",
    "Feature",
    "ProbeStandard",
    "derive",
    "fit_params",
    "probe_differences",
    "probe_limit",
    "required_tags",
]

# Air-saturated dissolved O2 at 37 degC in culture medium, mmol/L (~0.19-0.21; Ozturk 1996,
# Cytotechnology 22:3); only scales the apparent kLa.
_O2_SAT_MMOL_PER_L = 0.20
_AIR_O2_PCT = 20.95
_MIN_DRIVING_PCT = 5.0  # below: the DO is near saturation and kLa undefined
_MIN_FLOW_SLPM = 0.5  # below: no sparge to speak of
_BALANCE_WINDOW_H = 2.0  # trailing window of the oxygen balance

Binned = dict[str, np.ndarray]


@dataclass(frozen=True)
class Feature:
    """A derived variable: the tags it needs, its function and what it learns from good batches.

    ``compute(binned tags, period_min, params)`` returns one value per bin; ``fit(list of
    binned tags of good batches)`` returns its ``params`` (None: it learns nothing).
    """

    name: str
    tags: tuple[str, ...]
    compute: Callable[[Binned, float, Sequence[float]], np.ndarray]
    fit: Callable[[list[Binned]], list[float]] | None = None


def _ph_online_minus_offline(x: Binned, period_min: float, params: Sequence[float]) -> np.ndarray:
    diff = x["ph"] - x["ph_offline"]  # NaN except in the bins of a daily sample
    reported = np.concatenate([[np.nan], diff[:-1]])  # known one bin later
    return np.asarray(pd.Series(reported).ffill().to_numpy(dtype=float))


def _kla_and_flow(x: Binned) -> tuple[np.ndarray, np.ndarray]:
    """Return the apparent kLa (1/h) and the sparge flow (SLPM), NaN where undefined."""
    driving_pct = 100.0 * x["o2_fraction_pct"] / _AIR_O2_PCT - x["do_pct"]
    flow = x["air_flow_slpm"] + x["o2_flow_slpm"]
    ok = (driving_pct > _MIN_DRIVING_PCT) & (flow > _MIN_FLOW_SLPM)
    kla = x["our_mmol_per_l_h"] / (_O2_SAT_MMOL_PER_L * np.where(ok, driving_pct, 1.0) / 100.0)
    return np.where(ok, kla, np.nan), np.where(ok, flow, np.nan)


def _fit_kla_characterisation(batches: list[Binned]) -> list[float]:
    """Return ``[a, b]`` of ``kLa = a + b flow`` by least squares over the good batches' bins."""
    kla, flow = (np.concatenate(v) for v in zip(*map(_kla_and_flow, batches), strict=True))
    ok = np.isfinite(kla) & np.isfinite(flow)
    if ok.sum() < 2:
        raise ValueError("the oxygen balance needs OUR, DO, O2 fraction and gas flows")
    b, a = np.polyfit(flow[ok], kla[ok], 1)
    return [float(a), float(b)]


def _o2_balance_residual(x: Binned, period_min: float, params: Sequence[float]) -> np.ndarray:
    kla, flow = _kla_and_flow(x)
    a, b = params
    residual = pd.Series(kla / (a + b * flow) - 1.0)
    window = max(1, round(_BALANCE_WINDOW_H * 60.0 / period_min))
    return np.asarray(residual.rolling(window, min_periods=1).mean().to_numpy(dtype=float))


#: The derived variables by name.
FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("ph_online_minus_offline", ("ph", "ph_offline"), _ph_online_minus_offline),
        Feature(
            "o2_balance_residual_frac",
            ("our_mmol_per_l_h", "do_pct", "o2_fraction_pct", "air_flow_slpm", "o2_flow_slpm"),
            _o2_balance_residual,
            _fit_kla_characterisation,
        ),
    )
}


#: The probe cross-checks: at-line vs online pH, and the oxygen balance.
PROBE_CHECKS: tuple[str, ...] = tuple(FEATURES)


@dataclass(frozen=True)
class ProbeStandard:
    """An online probe that the plant re-standardises against an at-line reference."""

    probe: str
    reference: str
    unit: str
    label: str


#: The probe checks with an at-line reference, by feature name.
PROBE_STANDARDS: dict[str, ProbeStandard] = {
    "ph_online_minus_offline": ProbeStandard("ph", "ph_offline", "pH", "pH probe vs at-line"),
}


def probe_differences(
    batch: pd.DataFrame, standard: ProbeStandard, window_min: float = 10.0
) -> pd.Series:
    """Return the probe minus its reference at each good reference sample of ``batch``.

    The probe's value is the mean of its good readings in the ``window_min`` minutes up to
    the sample (``t - window < t_reading <= t``), as
    :class:`~biopilot.monitor.alarms_rules.ProbeCheckRule` computes it online; samples
    without probe readings in their window are left out. Index: the reference sample times.
    """
    probe = batch[standard.probe].replace([np.inf, -np.inf], np.nan).dropna()
    ref = batch[standard.reference].replace([np.inf, -np.inf], np.nan).dropna()
    t = pd.DatetimeIndex(probe.index).as_unit("ns").asi8
    at = pd.DatetimeIndex(ref.index).as_unit("ns")
    lo = np.searchsorted(t, (at - pd.Timedelta(minutes=window_min)).asi8, "right")
    hi = np.searchsorted(t, at.asi8, "right")
    values = probe.to_numpy(dtype=float)
    diff = [
        values[a:b].mean() - r if b > a else np.nan for a, b, r in zip(lo, hi, ref, strict=True)
    ]
    return pd.Series(diff, index=ref.index, name=standard.probe).dropna()


def probe_limit(
    batches: Sequence[pd.DataFrame], standard: ProbeStandard, k: float, window_min: float = 10.0
) -> float:
    """Return the alarm limit of a probe check: ``k`` times the RMS difference of good batches.

    The differences of good batches are centred on 0 and independent from sample to sample
    (the analyser's error dominates); the RMS about 0 counts a standing offset as spread.
    With k = 4 a batch of 15 daily samples raises a false alarm ~0.1 % of the time
    (two-sided normal tail 6e-5 per sample).

    Raises
    ------
    ValueError
        With fewer than 30 differences (too few to estimate the spread).
    """
    d = np.concatenate([probe_differences(b, standard, window_min).to_numpy() for b in batches])
    if len(d) < 30:
        raise ValueError(
            f"the {standard.label} limit needs >= 30 reference samples in good batches, "
            f"got {len(d)}"
        )
    return float(k * np.sqrt(np.mean(d**2)))


def required_tags(features: Sequence[str]) -> tuple[str, ...]:
    """Return the tags ``features`` are computed from, in first-use order.

    Raises
    ------
    ValueError
        Naming an unknown feature and the known ones.
    """
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown MSPC features {unknown}; known: {sorted(FEATURES)}")
    return tuple(dict.fromkeys(t for f in features for t in FEATURES[f].tags))


def fit_params(
    batches: Sequence[pd.DataFrame], features: Sequence[str], period_min: float
) -> dict[str, list[float]]:
    """Return what each feature learns from good ``batches`` (e.g. the kLa characterisation).

    Raises
    ------
    ValueError
        For an unknown feature, or batches lacking the tags a feature learns from.
    """
    required_tags(features)  # refuses unknown features
    learning = [f for f in features if FEATURES[f].fit is not None]
    binned = [_binned(b, required_tags(learning), period_min, None) for b in batches]
    return {f: FEATURES[f].fit(binned) for f in learning}  # type: ignore[misc]


def derive(
    online: pd.DataFrame,
    features: Sequence[str],
    period_min: float,
    n_bins: int | None = None,
    *,
    fill: bool = False,
    params: Mapping[str, Sequence[float]] | None = None,
) -> np.ndarray:
    """Return the ``features`` of a batch on its maturity grid, (n_bins, len(features)).

    Parameters
    ----------
    online : DataFrame
        The batch's tags (UTC index); at-line tags such as ``ph_offline`` hold NaN between
        their samples.
    features : sequence of str
        Names in :data:`FEATURES`.
    period_min : float
        Bin width, minutes.
    n_bins : int, optional
        Bins to return (default: up to the batch's last sample).
    fill : bool
        Interpolate bins still undefined (before the first at-line result, gaps), as
        :func:`~biopilot.monitor.mspc_io.align` does for training and finished batches.
    params : mapping, optional
        What :func:`fit_params` learned, for the features that learn.

    Raises
    ------
    ValueError
        For an unknown feature, a batch lacking a tag a feature needs, or missing params.
    """
    params = params or {}
    lacking = [f for f in features if FEATURES.get(f) and FEATURES[f].fit and f not in params]
    if lacking:
        raise ValueError(f"features {lacking} need the parameters fit_params learns")
    x = _binned(online, required_tags(features), period_min, n_bins)
    out = pd.DataFrame({f: FEATURES[f].compute(x, period_min, params.get(f, ())) for f in features})
    if fill:
        out = out.interpolate(limit_direction="both")
    n = len(next(iter(x.values())))
    return np.asarray(out.to_numpy(dtype=float)).reshape(n, len(features))


def _binned(
    online: pd.DataFrame, tags: Sequence[str], period_min: float, n_bins: int | None
) -> Binned:
    raw = align(online, tags, period_min, n_bins, fill=False)
    return {t: raw[:, j] for j, t in enumerate(tags)}
