"""Sensor models of the twin: online probe noise, rates and dropouts, at-line assay errors.

Noise values are one standard deviation. Online probes follow vendor-stated repeatability;
at-line assays the precision typical of the analysers used in CHO process development. All
randomness comes from the ``rng`` passed in, so a batch is reproducible from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ASSAYS",
    "ONLINE_SENSORS",
    "QUALITY_LABELS",
    "Assay",
    "SensorSpec",
    "assay_readings",
    "draw_assay_errors",
    "glucose_factors",
    "online_readings",
]

#: Quality codes used in arrays: 0 good, 1 uncertain, 2 bad (value NaN).
QUALITY_LABELS: tuple[str, str, str] = ("good", "uncertain", "bad")


@dataclass(frozen=True)
class SensorSpec:
    """An online sensor: noise (absolute sd plus relative CV), resolution, period, dropouts.

    ``floor`` clips readings below it (a flow meter reports no negative flow; None: no clip).
    """

    tag: str
    noise_sd: float
    noise_cv: float = 0.0
    resolution: float = 0.0  # a power of ten (0 = none)
    period_min: int = 1
    dropouts_per_day: float = 0.0
    floor: float | None = None


#: Online sensors, sampled once a minute (off-gas held between analyser cycles).
ONLINE_SENSORS: tuple[SensorSpec, ...] = (
    # Glass pH electrode, repeatability ~0.01 pH (Mettler-Toledo InPro 3253i data sheet).
    SensorSpec("ph", 0.01, resolution=0.001, dropouts_per_day=0.05),
    # Optical DO, +-1 % at 21 % O2 (Hamilton VisiFerm data sheet) -> sd 0.5 % air sat.
    SensorSpec("do_pct", 0.5, resolution=0.1, dropouts_per_day=0.05),
    # Pt100 class A in a thermowell, sd 0.05 degC.
    SensorSpec("temperature_c", 0.05, resolution=0.01),
    # Off-gas mass spectrometer multiplexed over units: a reading every 5 min, ~3 % on OUR/CER.
    SensorSpec(
        "our_mmol_per_l_h",
        0.01,
        noise_cv=0.03,
        resolution=0.001,
        period_min=5,
        dropouts_per_day=0.2,
    ),
    SensorSpec(
        "cer_mmol_per_l_h",
        0.01,
        noise_cv=0.03,
        resolution=0.001,
        period_min=5,
        dropouts_per_day=0.2,
    ),
    # Capacitance (Aber Futura / Hamilton Incyte), ~2 % plus 0.1 pF/cm.
    SensorSpec("capacitance_pf_per_cm", 0.1, noise_cv=0.02, resolution=0.01, dropouts_per_day=0.1),
    # Base pump totaliser, 1 mL resolution, no noise.
    SensorSpec("base_added_ml", 0.0, resolution=1.0),
    # Load cell of a 2000 L SUB, +-0.05 % of span -> sd 0.5 L.
    SensorSpec("volume_l", 0.5, resolution=0.1),
    # O2 fraction of the sparge gas (mass-flow controller setpoint), exact.
    SensorSpec("o2_fraction_pct", 0.0, resolution=0.1),
    # Controller outputs, appended last so the tags above draw the same noise as before.
    # Thermal mass-flow controllers: repeatability 0.2 % of rate, accuracy ~0.5 % of rate +
    # 0.1 % of full scale (Brooks SLA5800, Bronkhorst EL-FLOW data sheets) -> sd 0.5 % of
    # the reading + 0.05 SLPM (0.1 % of a 50 SLPM scale); no dropouts (the controller's own).
    SensorSpec("air_flow_slpm", 0.05, noise_cv=0.005, resolution=0.01, floor=0.0),
    SensorSpec("o2_flow_slpm", 0.05, noise_cv=0.005, resolution=0.01, floor=0.0),
    SensorSpec("co2_flow_slpm", 0.01, noise_cv=0.005, resolution=0.01, floor=0.0),
    # Base pump rate, the controller output scaled by the calibrated pump (speed, no meter).
    SensorSpec("base_pump_ml_per_h", 0.0, resolution=1.0),
)


@dataclass(frozen=True)
class Assay:
    """An at-line assay: relative CV or absolute sd of one measurement."""

    tag: str
    cv: float = 0.0
    sd: float = 0.0


#: Daily at-line assays.
ASSAYS: tuple[Assay, ...] = (
    Assay("vcd_cells_per_ml", cv=0.05),  # Cedex HiRes trypan blue, CV ~5 % (Roche spec)
    Assay("viability_pct", sd=1.5),  # Cedex HiRes, +-1-2 % absolute
    Assay("glucose_g_per_l", cv=0.03),  # BioProfile FLEX2 / Cedex Bio, CV 2-4 %
    Assay("lactate_g_per_l", cv=0.04),  # BioProfile FLEX2, CV 3-5 %
    Assay("glutamine_mmol_per_l", cv=0.06),  # BioProfile FLEX2, CV 5-7 %
    Assay("ammonia_mmol_per_l", cv=0.06),  # BioProfile FLEX2 NH4+ electrode, CV 5-8 %
    Assay("titer_g_per_l", cv=0.03),  # Protein A HPLC, CV 2-3 %
    Assay("osmolality_mosm_per_kg", sd=3.0),  # freezing-point osmometer, +-2-3 mOsm/kg
    Assay("ph_offline", sd=0.02),  # blood-gas analyser (e.g. BioProfile pH), +-0.02
)
_ASSAY_FAIL_PROBABILITY = 0.01  # a sample lost or rejected now and then


def draw_assay_errors(rng: np.random.Generator, n_samples: int) -> dict[str, np.ndarray]:
    """Draw the standard-normal error of every assay of ``n_samples`` daily samples.

    Drawn up front so the glucose reading that drives the top-up is the one reported.
    The key ``"_failed"`` holds a boolean mask of lost measurements (per assay, per sample).
    """
    errors: dict[str, np.ndarray] = {a.tag: rng.standard_normal(n_samples) for a in ASSAYS}
    failed = rng.random((len(ASSAYS), n_samples)) < _ASSAY_FAIL_PROBABILITY
    errors["_failed"] = failed
    return errors


def glucose_factors(errors: Mapping[str, np.ndarray]) -> np.ndarray:
    """Return the multiplicative error of each daily glucose reading."""
    cv = next(a.cv for a in ASSAYS if a.tag == "glucose_g_per_l")
    return 1.0 + cv * errors["glucose_g_per_l"]


def assay_readings(
    truth: Mapping[str, np.ndarray], errors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Return the at-line readings of the ``truth`` samples with assay error (NaN = lost).

    Negative readings are clipped at 0, as an analyser reports them.
    """
    out = {}
    failed = errors["_failed"]
    for i, a in enumerate(ASSAYS):
        true = np.asarray(truth[a.tag], dtype=float)
        z = errors[a.tag][: true.size]
        value = true * (1.0 + a.cv * z) + a.sd * z
        value = np.maximum(value, 0.0) if a.tag != "ph_offline" else value
        out[a.tag] = np.where(failed[i, : true.size], np.nan, value)
    return out


def online_readings(
    truth: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return noisy online readings (one per minute) and their quality codes.

    Parameters
    ----------
    truth : mapping of tag to ndarray
        The value each probe would read without noise, per minute.
    rng : numpy.random.Generator
        Source of noise and dropouts.

    Returns
    -------
    values, quality : dict of ndarray
        Readings (NaN during a dropout) and quality codes (0 good; 1 uncertain for the five
        minutes after a dropout while the signal settles; 2 bad during it).
    """
    values, quality = {}, {}
    for s in ONLINE_SENSORS:
        true = np.asarray(truth[s.tag], dtype=float)
        n = true.size
        idx = (np.arange(n) // s.period_min) * s.period_min  # sample and hold
        noise = rng.standard_normal(n)[idx]
        v = true[idx] + noise * (s.noise_sd + s.noise_cv * np.abs(true[idx]))
        if s.resolution:
            v = np.round(v, max(0, -math.floor(math.log10(s.resolution) + 1e-9)))
        if s.floor is not None:
            v = np.maximum(v, s.floor)
        q = np.zeros(n, dtype=np.int8)
        n_drop = rng.poisson(s.dropouts_per_day * n / 1440.0) if s.dropouts_per_day else 0
        for start, length in zip(
            rng.integers(0, n, n_drop), rng.integers(1, 30, n_drop), strict=True
        ):
            q[start : start + length + 5] = np.maximum(q[start : start + length + 5], 1)
            q[start : start + length] = 2
        values[s.tag] = np.where(q == 2, np.nan, v)
        quality[s.tag] = q
    return values, quality
