"""Replay a logged batch through the state estimator, as the live loop would have run it.

Used to evaluate the estimator on twin batches (benchmarks, tests) and to re-estimate a
finished batch from its record. Measurements stamped at a bolus time follow the plant's order:
the at-line sample is drawn before the feed, the online probes read after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biopilot.monitor.estimator import Estimate, EstimatorConfig, StateEstimator
from biopilot.monitor.estimator_inputs import FeedSchedule
from biopilot.monitor.estimator_measure import (
    ONLINE_TAGS,
    Measurement,
    Rejection,
    atline_measurements,
    online_measurements,
)
from biopilot.twin.batch import BatchResult

__all__ = ["SOFT_SENSOR_SD", "Replay", "replay_batch", "simulated_soft_sensor"]

#: Error sd of a Raman soft sensor at the issue's RMSEP targets (glucose 0.5 g/L, lactate
#: 0.4 g/L, titer 0.2 g/L, VCD 10 %), a little under them: (absolute, relative).
SOFT_SENSOR_SD: Mapping[str, tuple[float, float]] = {
    "glucose_g_per_l": (0.4, 0.0),
    "lactate_g_per_l": (0.3, 0.0),
    "titer_g_per_l": (0.15, 0.0),
    "vcd_cells_per_ml": (0.0, 0.08),
}


@dataclass
class Replay:
    """Estimates of a replayed batch.

    Attributes
    ----------
    table : DataFrame
        Per recorded time (index ``time_utc``): each state's mean, ``<state>_std`` and
        ``<state>_true`` (when the batch has a truth), and ``t_h``.
    rejected : list of (Timestamp, Rejection)
        Every measurement skipped, when.
    nis : list of (float, int)
        NIS and its degrees of freedom at every step that fused at-line samples.
    estimates : int
        Number of estimator steps.
    """

    table: pd.DataFrame
    rejected: list[tuple[pd.Timestamp, Rejection]]
    nis: list[tuple[float, int]]
    estimates: int


def replay_batch(
    batch: BatchResult,
    *,
    estimator: StateEstimator | None = None,
    config: EstimatorConfig | None = None,
    step_min: int = 5,
    record_min: int = 15,
    online_tags: Sequence[str] = ONLINE_TAGS,
    atline: bool = True,
    extra: Mapping[pd.Timestamp, Sequence[Measurement]] | None = None,
    until_h: float | None = None,
    on_estimate: Callable[[Estimate], None] | None = None,
) -> Replay:
    """Run the estimator through ``batch``: online every ``step_min``, at-line daily.

    Parameters
    ----------
    batch : BatchResult
        A twin batch (or a batch record of the same shape).
    estimator : StateEstimator, optional
        Default: the batch's recipe, its logged boluses, nominal parameters, ``config``.
    config : EstimatorConfig, optional
        Tuning of the default estimator.
    step_min, record_min : int
        Estimator step and recording period, minutes (``record_min`` a multiple of it).
    online_tags : sequence of str
        Online tags fused (empty: none).
    atline : bool
        Fuse the daily at-line assays.
    extra : mapping of Timestamp to measurements, optional
        More measurements (soft sensors) fused at those times (on the step grid).
    until_h : float, optional
        Stop after this many hours.
    on_estimate : callable, optional
        Called with every :class:`Estimate` (each step, not only the recorded ones).

    Returns
    -------
    Replay
    """
    est = estimator or StateEstimator(
        batch.recipe,
        schedule=FeedSchedule.from_batch(batch),
        start_utc=batch.start_utc,
        config=config,
    )
    on, at, truth = batch.online, batch.atline, batch.truth
    atimes = set(at.index) if atline else set()
    extra = extra or {}
    tags = [t for t in online_tags if t in on.columns]
    values = on[tags].to_numpy(dtype=float)
    n = len(on) if until_h is None else min(len(on), round(until_h * 60) + 1)
    rows: list[tuple[pd.Timestamp, Estimate]] = []
    rejected: list[tuple[pd.Timestamp, Rejection]] = []
    nis: list[tuple[float, int]] = []
    steps = 0
    fed = {round(b.t_h * 60.0) for b in est.schedule.boluses}
    for i in range(step_min, n, step_min):
        ts = on.index[i]
        if ts in atimes or i in fed:  # the sample before the feed, the probes after it
            e = est.step(atline_measurements(at.loc[ts].to_dict()) if ts in atimes else [], ts)
            if on_estimate is not None:
                on_estimate(e)
            rejected += [(ts, r) for r in e.rejected]
            if ts in atimes:
                nis.append((e.nis, e.nis_dof))
            steps += 1
        ms = online_measurements(dict(zip(tags, values[i], strict=True)), tags)
        e = est.step([*ms, *extra.get(ts, ())], ts)
        if on_estimate is not None:
            on_estimate(e)
        rejected += [(ts, r) for r in e.rejected]
        steps += 1
        if i % record_min == 0:
            rows.append((ts, e))
    return Replay(_table(rows, truth), rejected, nis, steps)


def simulated_soft_sensor(
    batch: BatchResult,
    rng: np.random.Generator,
    *,
    every_min: int = 15,
    tau_h: float = 6.0,
    untrusted_fraction: float = 0.03,
    sd: Mapping[str, tuple[float, float]] = SOFT_SENSOR_SD,
    source: str = "raman",
) -> dict[pd.Timestamp, list[Measurement]]:
    """Return soft-sensor-like predictions of ``batch``: truth plus error, every ``every_min``.

    A stand-in for :mod:`biopilot.monitor.softsensor` outputs. The error is a first-order
    autoregressive process of time constant ``tau_h`` (a calibration model's error is
    correlated in time, not white) with the sd of :data:`SOFT_SENSOR_SD`; a fraction
    ``untrusted_fraction`` of predictions are gross errors flagged untrusted (a spectrum
    outside the calibration space). Tags are ``"<source>/<state>"``.
    """
    truth = batch.truth.iloc[::every_min]
    a = float(np.exp(-every_min / 60.0 / tau_h))
    out: dict[pd.Timestamp, list[Measurement]] = {ts: [] for ts in truth.index}
    for name, (abs_sd, rel_sd) in sd.items():
        true = truth[name].to_numpy()
        z = _ar1(rng, len(true), a)
        scale = abs_sd + rel_sd * np.abs(true)
        value = np.maximum(true + scale * z, 0.0)
        bad = rng.random(len(true)) < untrusted_fraction
        value = np.where(bad, value + 5.0 * scale, value)
        for ts, v, s, b in zip(truth.index, value, scale, bad, strict=True):
            out[ts].append(Measurement(f"{source}/{name}", float(v), float(s * s), not b))
    return out


def _ar1(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
    """Unit-variance AR(1) series with lag-one correlation ``a``."""
    e = rng.standard_normal(n)
    z = np.empty(n)
    z[0] = e[0]
    k = np.sqrt(1.0 - a * a)
    for i in range(1, n):
        z[i] = a * z[i - 1] + k * e[i]
    return z


def _table(rows: Iterable[tuple[pd.Timestamp, Estimate]], truth: pd.DataFrame) -> pd.DataFrame:
    recs = []
    for ts, e in rows:
        rec: dict[str, float] = {"t_h": e.t_h}
        for name, m in e.mean.items():
            rec[name] = m
            rec[f"{name}_std"] = e.std[name]
            if name in truth.columns:
                rec[f"{name}_true"] = float(truth.at[ts, name])
        recs.append(rec)
    return pd.DataFrame(recs, index=pd.DatetimeIndex([ts for ts, _ in rows], name="time_utc"))
