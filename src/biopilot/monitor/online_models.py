"""The models a live monitor runs, trained at start-up on the twin: soft sensors and batch MSPC.

A new line has no history to learn from, so the demo calibrates on the digital twin: the
Raman soft sensors on a small designed campaign (:mod:`biopilot.monitor.campaign`, a Latin
hypercube over recipe factors), the batch-evolution MSPC model on good twin batches of the
platform recipe, its alarm limits on further good batches (as ``biopilot mspc train`` and the
benchmark do). The probe cross-checks of :mod:`biopilot.monitor.mspc_features` are used
where the line serves their tags: over OPC UA the twin serves its online tags but not the
daily at-line pH, so the live model keeps the oxygen balance and leaves the pH check out.
About 12 s on one core with the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from biopilot.monitor.campaign import calibration_sets, design_campaign, run_campaign
from biopilot.monitor.mspc import BatchEvolutionModel
from biopilot.monitor.mspc_features import FEATURES, PROBE_CHECKS
from biopilot.monitor.mspc_io import ONLINE_TAGS
from biopilot.monitor.softsensor import RamanSoftSensor
from biopilot.monitor.softsensor_bank import DEFAULT_COADD, SoftSensorBank
from biopilot.monitor.softsensor_train import train_soft_sensor
from biopilot.twin import simulate_batch
from biopilot.twin.bioreactor import ONLINE_TAGS as TWIN_ONLINE_TAGS

__all__ = ["MSPC_SEED0", "OnlineModels", "available_checks", "build_online_models", "mspc_limits"]

#: Twin seeds of the MSPC training batches (the demo line's units run seeds 7, 8, 9...).
MSPC_SEED0 = 10_000


@dataclass(frozen=True)
class OnlineModels:
    """What the online monitor runs, with how each model was trained.

    Attributes
    ----------
    soft_sensor : RamanSoftSensor or SoftSensorBank
        Raman -> glucose, lactate, glutamine, ammonia, titer, VCD, with intervals and trust
        (titer and VCD from the trailing mean of the last 8 spectra: :data:`DEFAULT_COADD`).
    mspc : BatchEvolutionModel
        Online T2/SPE (and the probe checks' T2) with 95/99 % and calibrated alarm limits.
    metadata : dict
        JSON-ready training record per model (``soft_sensor``, ``mspc``).
    """

    soft_sensor: RamanSoftSensor | SoftSensorBank
    mspc: BatchEvolutionModel
    metadata: dict[str, Any] = field(default_factory=dict)


def available_checks(tags: Iterable[str]) -> tuple[str, ...]:
    """Return the probe cross-checks (:data:`PROBE_CHECKS`) computable from ``tags``."""
    have = set(tags)
    return tuple(f for f in PROBE_CHECKS if set(FEATURES[f].tags) <= have)


def build_online_models(
    *,
    seed: int = 0,
    soft_sensor_batches: int = 16,
    every: int = 4,
    mspc_batches: int = 20,
    calibration_batches: int = 40,
    alarm_margin: float = 1.5,
    served_tags: Iterable[str] = TWIN_ONLINE_TAGS,
    progress: Callable[[str, int, int], None] | None = None,
) -> OnlineModels:
    """Train the soft sensors and the MSPC model on twin batches.

    Parameters
    ----------
    seed : int
        Seed of the calibration campaign's design and batches.
    soft_sensor_batches : int
        Designed twin batches the soft sensors are calibrated on (>= 2).
    every : int
        Keep every ``every``-th 15-min spectrum of the campaign.
    mspc_batches, calibration_batches : int
        Good twin batches the MSPC model is fitted on (>= 3; the issue asks >= 20), and
        further good batches its alarm limits are calibrated on (0: the 99 % limits).
    alarm_margin : float
        Alarm limits over the calibration batches' run peaks (see
        :meth:`BatchEvolutionModel.calibrate`). The benchmark's 1.2 goes with 130
        calibration batches; with 40, 1.5 keeps false alarms near 1 % (1 of 120 normal twin
        batches) and still flags a -4 %/day DO probe drift about a day after its onset.
    served_tags : iterable of str
        Tags the line serves online; picks the probe cross-checks (:func:`available_checks`).
    progress : callable, optional
        ``progress(step, done, total)`` after each simulated batch and each fit.

    Returns
    -------
    OnlineModels

    Raises
    ------
    ValueError
        On too few batches.
    """
    if soft_sensor_batches < 2 or mspc_batches < 3 or calibration_batches < 0:
        raise ValueError(
            "need >= 2 soft-sensor batches, >= 3 MSPC batches and >= 0 calibration batches, got "
            f"{soft_sensor_batches}, {mspc_batches}, {calibration_batches}"
        )
    tell = progress or (lambda step, done, total: None)
    runs = design_campaign(soft_sensor_batches, seed=seed)
    campaign = run_campaign(
        runs, progress=lambda i: tell("soft-sensor campaign", i + 1, soft_sensor_batches)
    )
    cal = calibration_sets(campaign, DEFAULT_COADD.values(), every=every, runs=runs)
    soft, soft_meta = train_soft_sensor(
        cal,
        source={"twin campaign": soft_sensor_batches, "seed": seed, "every": every},
        coadd=DEFAULT_COADD,
        max_components=12,
        cv_folds=4,
    )
    tell("soft-sensor fit", 1, 1)
    n = mspc_batches + calibration_batches
    frames = []
    for i in range(n):
        frames.append(simulate_batch(seed=MSPC_SEED0 + seed + i, raman=False).online)
        tell("MSPC good batches", i + 1, n)
    checks = available_checks(served_tags)
    mspc = BatchEvolutionModel(variables=ONLINE_TAGS, features=checks, alarm_margin=alarm_margin)
    mspc.fit(frames[:mspc_batches])
    if calibration_batches:
        mspc.calibrate(frames[mspc_batches:])
    tell("MSPC fit", 1, 1)
    mspc_meta = {
        "good_batches": mspc_batches,
        "calibration_batches": calibration_batches,
        "seeds": [MSPC_SEED0 + seed, MSPC_SEED0 + seed + n - 1],
        "variables": list(mspc.variables),
        "features": list(checks),
        "limits": mspc_limits(mspc),
    }
    return OnlineModels(soft, mspc, {"soft_sensor": _brief(soft_meta), "mspc": mspc_meta})


def mspc_limits(model: BatchEvolutionModel) -> dict[str, dict[str, float]]:
    """Return the 95/99 % and alarm limits of each statistic (``t2``, ``spe``, ``t2_checks``)."""
    out = {
        "t2": {"95": model.t2_limits_[0.95], "99": model.t2_limits_[0.99]},
        "spe": {"95": model.spe_limits_[0.95], "99": model.spe_limits_[0.99]},
    }
    if model.checks_ is not None:
        lim = model.checks_.t2_limits_
        out["t2_checks"] = {"95": lim[0.95], "99": lim[0.99]}
    for key, limit in model.alarm_limits_.items():
        out[key]["alarm"] = float(limit)
    return {k: {q: float(v) for q, v in d.items()} for k, d in out.items()}


def _brief(meta: dict[str, Any]) -> dict[str, Any]:
    """The soft sensor's training record without the per-preprocessing CV tables."""
    cv = {
        a: {k: v for k, v in f.items() if k != "rmsecv_by_preprocessing"}
        for a, f in meta.get("cv", {}).items()
    }
    return {k: v for k, v in meta.items() if k not in ("cv", "batches")} | {"cv": cv}
